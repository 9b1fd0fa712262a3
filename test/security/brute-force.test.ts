/**
 * Attack: password guessing and password spraying against the front door (docs/security.md "Extranet
 * smart lockout"). Each wrong Basic password is a bind against the directory, so unbraked guessing also
 * locks the user's Active Directory account for every application. The extranet smart lockout counts
 * failures per account from unfamiliar sources and per source across accounts, and past a threshold
 * answers such sources with the protocol's own failure without asking the directory, while the user's
 * phone (a source that signed the account in before) keeps working. Real sockets into the lab, each
 * client from its own loopback address; the lab's clock and the delay are the test's, so nothing waits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Dispatcher } from 'undici';
import { Agent, buildConnector, request } from 'undici';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { basic, demoPassword } from '../support/lab-client.ts';
import { accessLines, loggedLab } from '../support/logged-lab.ts';

const primary = 'https://mail.o365info.com';
const eas = `${primary}/Microsoft-Server-ActiveSync`;
/** The front end the primary namespace resolves to (examples/o365info.yaml). */
const front = 'CAS2013-NY';
const windowSeconds = 600;
/** Below the default 20, so the spray (each wrong password an scrypt check in the lab) stays quick. */
const sourceThreshold = 10;
// Sources: bob's phone is the lab's usual external client; each attacker has a loopback address of its own.
const phone = labAddresses.externalClient;
const guesser = '127.0.0.66';
const sprayer = '127.0.0.77';

interface Answer {
  readonly status: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly requestId: string;
}

describe('attack: password guessing and spraying', () => {
  let lab: Lab;
  let sink: LineSink;
  let now = 1_800_000_000_000;
  const slept: number[] = [];
  const agents = new Map<string, Agent>();

  before(async () => {
    ({ lab, sink } = await loggedLab({
      lockout: {
        windowSeconds,
        sourceThreshold,
        now: () => now,
        sleep: (ms) => {
          slept.push(ms);
          return Promise.resolve();
        },
      },
    }));
  });
  after(async () => {
    await Promise.all([...agents.values()].map((a) => a.close()));
    await lab.close();
  });

  /** An undici agent whose connections come from `source` and reach the estate's names through the lab. */
  function agentFrom(source: string): Agent {
    let agent = agents.get(source);
    if (!agent) {
      const base = buildConnector({ ca: lab.ca.certPem });
      agent = new Agent({
        localAddress: source,
        connect: (opts, cb) => {
          const to = lab.resolve(opts.hostname, Number(opts.port) || 443);
          if (!to) return base(opts, cb);
          return base(
            { ...opts, hostname: to.address, port: String(to.port), servername: opts.hostname },
            cb,
          );
        },
      });
      agents.set(source, agent);
    }
    return agent;
  }

  /** ActiveSync OPTIONS with Basic credentials, from `source`. */
  async function easFrom(source: string, user: string, password: string): Promise<Answer> {
    const r = await request(eas, {
      dispatcher: agentFrom(source),
      method: 'OPTIONS',
      headers: { authorization: basic(user, password) },
    });
    await r.body.dump();
    return { status: r.statusCode, headers: r.headers, requestId: String(r.headers['request-id'] ?? '') };
  }

  /** The front end's access line of a request. */
  function accessLine(requestId: string): Record<string, unknown> {
    const line = accessLines(sink, requestId)[0];
    assert.ok(line, `an access line for ${requestId}`);
    return line;
  }

  /** A series of the front end's metrics, summed over the series matching `labels`. */
  async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = lab.metrics.get(front)?.registry.getSingleMetric(name);
    assert.ok(m, `${front} has ${name}`);
    const { values } = await m.get();
    return values
      .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
      .reduce((sum, v) => sum + v.value, 0);
  }

  /** Questions the front end put to its directory to check a password (the cache's hits included). */
  const passwordQuestions = (): Promise<number> =>
    metric('coexist_directory_requests_total', { kind: 'auth' });

  /** The lockout's log lines (not the access lines). */
  const transitions = (): Record<string, unknown>[] =>
    sink.records().filter((l) => l['msg'] === 'sign-in locked' || l['msg'] === 'sign-in unlocked');

  test('20 wrong passwords from an unfamiliar source lock bob there, not on his phone; the window ends it', async () => {
    // bob's phone signs in: its address becomes familiar to bob.
    assert.equal((await easFrom(phone, 'bob@o365info.com', demoPassword)).status, 200);

    const auths: unknown[] = [];
    for (let i = 0; i < 20; i++) {
      const a = await easFrom(guesser, 'bob@o365info.com', `Wrong-Guess-${i}!`);
      assert.equal(a.status, 401, `guess ${i}`);
      assert.match(
        String(a.headers['www-authenticate']),
        /^Basic realm=/,
        'the same challenge, locked or not',
      );
      auths.push(accessLine(a.requestId)['auth']);
    }
    assert.deepEqual(auths, [...Array(5).fill('bad_credentials'), ...Array(15).fill('locked')]);
    // Failures 3, 4 and 5 were answered after a growing delay; the locked ones at once.
    assert.deepEqual(slept, [250, 500, 1000]);

    // Now even the right password from that source is refused, and the directory is not asked.
    const asked = await passwordQuestions();
    const right = await easFrom(guesser, 'BOB@o365info.com', demoPassword);
    assert.equal(right.status, 401, 'the right password from the locked-out source is refused');
    assert.equal(accessLine(right.requestId)['auth'], 'locked');
    assert.equal(accessLine(right.requestId)['code'], 'CX_AUTH_FAILED', 'the answer of a wrong password');
    assert.equal(await passwordQuestions(), asked, 'no password check reached the directory');
    assert.deepEqual(lab.recorder.records(right.requestId), [], 'no server of the estate acted on it');

    // OWA's logon form from that source: the failed-logon answer, no session.
    const owa = await request(`${primary}/owa/auth.owa`, {
      dispatcher: agentFrom(guesser),
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        username: 'bob@o365info.com',
        password: demoPassword,
        destination: `${primary}/owa/`,
      }).toString(),
    });
    await owa.body.dump();
    assert.equal(owa.statusCode, 302);
    assert.match(String(owa.headers['location']), /reason=2/);
    assert.equal(owa.headers['set-cookie'], undefined);
    assert.equal(accessLine(String(owa.headers['request-id']))['auth'], 'locked');
    assert.equal(await passwordQuestions(), asked);

    // bob's phone, a familiar source, still signs in.
    const fromPhone = await easFrom(phone, 'bob@o365info.com', demoPassword);
    assert.equal(fromPhone.status, 200, "bob's phone is not locked out");
    assert.equal(accessLine(fromPhone.requestId)['auth'], 'ok');

    // One log line for the lock: account and source, never a password.
    const locked = transitions();
    assert.equal(locked.length, 1, JSON.stringify(locked));
    assert.equal(locked[0]?.['server'], front);
    assert.equal(locked[0]?.['scope'], 'unfamiliar');
    assert.equal(locked[0]?.['account'], 'bob@o365info.com');
    assert.equal(locked[0]?.['source'], guesser);
    const log = sink.lines.join('\n');
    assert.ok(!log.includes('Wrong-Guess-') && !log.includes(demoPassword), 'no password in any log line');
    assert.equal(await metric('coexist_lockouts_total', { scope: 'unfamiliar' }), 1);
    assert.equal(await metric('coexist_lockout_refused_total', { scope: 'unfamiliar' }), 17);
    assert.equal(await metric('coexist_signin_failures_total', { familiarity: 'unfamiliar' }), 5);
    assert.equal(await metric('coexist_auth_total', { result: 'locked' }), 17);

    // The window passes: the source may sign in again, and the unlock is logged once.
    now += windowSeconds * 1000;
    const later = await easFrom(guesser, 'bob@o365info.com', demoPassword);
    assert.equal(later.status, 200, 'after the window the source can sign in again');
    assert.deepEqual(
      transitions().map((l) => [l['msg'], l['account'], l['source']]),
      [
        ['sign-in locked', 'bob@o365info.com', guesser],
        ['sign-in unlocked', 'bob@o365info.com', guesser],
      ],
    );
  });

  test('a password spray over many accounts from one source hits the per-source limit', async () => {
    // Real accounts and invented ones: an unknown user is a failed sign-in too (no oracle of who exists).
    const accounts = [
      'alice@o365info.com',
      'diego@o365info.com',
      ...Array.from({ length: sourceThreshold - 2 }, (_, i) => `user${i}@o365info.com`),
    ];
    for (const user of accounts) {
      const a = await easFrom(sprayer, user, 'Spring2026!');
      assert.equal(a.status, 401);
      assert.equal(accessLine(a.requestId)['auth'], 'bad_credentials', `${user}: asked once`);
    }
    const asked = await passwordQuestions();
    // carol never signed in from the sprayer's address: refused at once, even with her right password.
    const carol = await easFrom(sprayer, 'carol@o365info.com', demoPassword);
    assert.equal(carol.status, 401);
    assert.equal(accessLine(carol.requestId)['auth'], 'locked');
    assert.equal(await passwordQuestions(), asked, 'the spray stops reaching the directory');
    // From anywhere else carol signs in.
    assert.equal((await easFrom(phone, 'carol@o365info.com', demoPassword)).status, 200);
    const spray = transitions().filter((l) => l['scope'] === 'source');
    assert.equal(spray.length, 1);
    assert.equal(spray[0]?.['source'], sprayer);
    assert.equal(await metric('coexist_lockouts_total', { scope: 'source' }), 1);
  });
});
