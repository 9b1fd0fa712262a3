/**
 * Stateless OWA across front ends (docs/operations.md "Several front ends"): two CAS2013-NY front ends of the
 * lab sharing one session key file and one real redis-server on loopback, with the lab's servers behind them,
 * and a browser whose requests land on either, as behind a layer-4 load balancer with no affinity. A logon on
 * A is a session on B; a logoff on A is honoured on B; wrong passwords on A and B add up to one lockout;
 * Redis stopped mid-run: sign-ins and sessions carry on (degraded: one log line, the gauge at 0); Redis back:
 * shared again, a logoff on A honoured on B again. Key rotation: a cookie made under the old key opens while
 * that key is second in the file, and not once it is gone.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readSessionKeyFile } from '../../src/dataplane/session-keys.ts';
import type { Lab } from '../../src/lab/index.ts';
import type { RedisDaemon } from '../../src/lab/redis.ts';
import { startRedis } from '../../src/lab/redis.ts';
import type { FrontEnd } from '../support/front-ends.ts';
import { startFrontEnd } from '../support/front-ends.ts';
import { demoPassword } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';

const mail = 'https://mail.o365info.com';
const formType = { 'content-type': 'application/x-www-form-urlencoded' };
const logonBody = (user: string, password: string): string =>
  `destination=${encodeURIComponent(`${mail}/owa/`)}&flags=4&forcedownlevel=0` +
  `&username=${encodeURIComponent(user)}&password=${encodeURIComponent(password)}&isUtf8=1`;
const unfamiliarThreshold = 4;

/** The `name=value` of a Set-Cookie header. */
const cookieOf = (setCookie: unknown): string => String(setCookie).split(';')[0] as string;

describe('OWA across two front ends sharing a key file and Redis', () => {
  let lab: Lab;
  let redis: RedisDaemon;
  let dir = '';
  let keyFile = '';
  let a: FrontEnd;
  let b: FrontEnd;
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);

  before(async () => {
    redis = await startRedis();
    dir = await mkdtemp(join(tmpdir(), 'coexist-fe-'));
    keyFile = join(dir, 'session-keys');
    await writeFile(keyFile, `# current\n${oldKey.toString('base64')}\n`, { mode: 0o600 });
    ({ lab } = await loggedLab());
    const options = {
      sessionKeys: readSessionKeyFile(keyFile),
      redis: { url: redis.url, probeMs: 50, timeoutMs: 300 },
      // The delay after a failure is the lockout's own concern (brute-force.test.ts): none here.
      lockout: { unfamiliarThreshold, sleep: () => Promise.resolve() },
    };
    a = await startFrontEnd(lab, options);
    b = await startFrontEnd(lab, options);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await lab?.close();
    await redis?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const logon = (fe: FrontEnd, user: string, password = demoPassword) =>
    fe.fetch(`${mail}/owa/auth.owa`, { headers: formType, body: logonBody(user, password) });
  const mailbox = (fe: FrontEnd, cookie: string) => fe.fetch(`${mail}/owa/`, { headers: { cookie } });
  const gauge = async (fe: FrontEnd): Promise<string | undefined> =>
    (await fe.metrics.registry.metrics()).split('\n').find((l) => l.startsWith('coexist_shared_store_up{'));

  async function signIn(fe: FrontEnd, user: string): Promise<string> {
    const r = await logon(fe, user);
    assert.equal(r.status, 302, r.body);
    assert.equal(r.headers['location'], `${mail}/owa/`);
    return cookieOf(r.headers['set-cookie']);
  }

  function assertLogonPage(r: { status: number; headers: Record<string, unknown> }): void {
    assert.equal(r.status, 302);
    assert.match(String(r.headers['location']), /^\/owa\/auth\/logon\.aspx\?/);
  }

  test('a logon through A is a session on B: the next request lands on B and reaches the mailbox', async () => {
    const cookie = await signIn(a, 'alice@o365info.com');
    const page = await mailbox(b, cookie);
    assert.equal(page.status, 200);
    assert.match(page.body, /alice@o365info\.com/);
    assert.match(String(page.headers['x-coexist-path']), /MBX2013-NY/);
    assert.equal(await gauge(a), 'coexist_shared_store_up{server="CAS2013-NY"} 1');
  });

  test('a logoff on A is honoured on B: the old cookie gets the logon page there', async () => {
    const cookie = await signIn(a, 'alice@o365info.com');
    assert.equal((await mailbox(b, cookie)).status, 200);
    const off = await a.fetch(`${mail}/owa/auth/logoff.aspx`, { headers: { cookie } });
    assert.equal(off.status, 302);
    assertLogonPage(await mailbox(b, cookie));
    const refused = b.log.lines.find((l) => l['msg'] === 'owa session refused' && l['reason'] === 'revoked');
    assert.ok(refused, 'B logged why');
  });

  test('wrong passwords on A and on B add up to one lockout', async () => {
    for (const fe of [a, b, a, b]) {
      const r = await logon(fe, 'diego@o365info.com', 'wrong-password');
      assert.equal(r.status, 302);
      assert.match(String(r.headers['location']), /reason=2/);
    }
    // Four failures, two on each: the account is locked for this unfamiliar source on both, even with
    // the right password (a locked attempt gets the very answer of a wrong one).
    for (const fe of [a, b]) {
      const r = await logon(fe, 'diego@o365info.com');
      assert.match(String(r.headers['location']), /reason=2/, 'refused while locked');
    }
    const locked = [...a.log.lines, ...b.log.lines].filter((l) => l['msg'] === 'sign-in locked');
    assert.equal(locked.length, 1, 'locked once, by the front end that counted the fourth');
    assert.equal(locked[0]?.['failures'], unfamiliarThreshold);
  });

  test('Redis stopped mid-run: sign-ins continue, degraded, with one log line and the gauge at 0', async () => {
    const downA = a.log.next((l) => /shared store: Redis unavailable/.test(String(l['msg'])));
    const downB = b.log.next((l) => /shared store: Redis unavailable/.test(String(l['msg'])));
    await redis.stop();
    const cookie = await signIn(a, 'alice@o365info.com');
    await downA;
    assert.equal(await gauge(a), 'coexist_shared_store_up{server="CAS2013-NY"} 0');
    // The cookie carries the session: B serves it without Redis too.
    assert.equal((await mailbox(b, cookie)).status, 200);
    await downB; // B asked Redis whether the session was revoked, and noticed
    assert.equal((await mailbox(a, cookie)).status, 200);
    const second = await signIn(a, 'bob@o365info.com');
    assert.ok(second);
    const warns = a.log.lines.filter((l) => /shared store: Redis unavailable/.test(String(l['msg'])));
    assert.equal(warns.length, 1, 'one line for the change, not one per request');
    assert.equal(warns[0]?.['level'], 40);
    // A logoff while Redis is away is honoured where it was made.
    const off = await a.fetch(`${mail}/owa/auth/logoff.aspx`, { headers: { cookie } });
    assert.equal(off.status, 302);
    assertLogonPage(await mailbox(a, cookie));
  });

  test('Redis back: shared again, a logoff on A honoured on B again', async () => {
    const upA = a.log.next((l) => l['msg'] === 'shared store: Redis in use');
    const upB = b.log.next((l) => l['msg'] === 'shared store: Redis in use');
    await redis.start();
    await Promise.all([upA, upB]);
    assert.equal(await gauge(a), 'coexist_shared_store_up{server="CAS2013-NY"} 1');
    const cookie = await signIn(a, 'alice@o365info.com');
    assert.equal((await mailbox(b, cookie)).status, 200);
    await a.fetch(`${mail}/owa/auth/logoff.aspx`, { headers: { cookie } });
    assertLogonPage(await mailbox(b, cookie));
  });

  test('key rotation: an old cookie opens while its key is second, not once it is gone', async () => {
    const old = await signIn(a, 'alice@o365info.com');
    // The new key first, the old one second: a front end restarted on the rotated file.
    await writeFile(keyFile, `${newKey.toString('base64')}\n${oldKey.toString('base64')}\n`, { mode: 0o600 });
    const rotated = await startFrontEnd(lab, { sessionKeys: readSessionKeyFile(keyFile) });
    try {
      assert.equal((await mailbox(rotated, old)).status, 200, 'the old key, second, still opens');
      const fresh = await signIn(rotated, 'alice@o365info.com');
      assert.equal((await mailbox(rotated, fresh)).status, 200);
      assertLogonPage(await mailbox(a, fresh)); // a front end not yet given the new key
    } finally {
      await rotated.close();
    }
    await writeFile(keyFile, `${newKey.toString('base64')}\n`, { mode: 0o600 });
    const retired = await startFrontEnd(lab, { sessionKeys: readSessionKeyFile(keyFile) });
    try {
      assertLogonPage(await mailbox(retired, old));
      const line = retired.log.lines.find((l) => l['msg'] === 'owa session refused');
      assert.equal(line?.['reason'], 'unknown-key');
    } finally {
      await retired.close();
    }
  });
});
