/**
 * The ActiveSync client against the lab, over real HTTPS from the external client address: Autodiscover,
 * the first session and Ping for bob, carol and diego along the flows of docs/flows.md (EAS-1, EAS-2, EAS-3A,
 * EAS-3B), the base64 query form, EAS-legacy's 451 followed to the regional namespace, a wrong password,
 * and `coexist activesync` run as a process. Hops are checked against X-Coexist-Path and against what the
 * servers themselves recorded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ActiveSyncClientOptions, ActiveSyncStep } from '../../src/client/activesync/index.ts';
import { ActiveSyncAuthError, ActiveSyncClient } from '../../src/client/activesync/index.ts';
import { parseEstate } from '../../src/config/index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { demoPassword, startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { LabClient } from '../support/lab-client.ts';
import { labClient, LineSink } from '../support/lab-client.ts';
import type { CliResult } from '../support/run-cli.ts';
import { runCliProcess } from '../support/run-cli.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const primary = 'https://mail.o365info.com/Microsoft-Server-ActiveSync';
const regional = 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync';
const legacy = 'https://legacy.mail.o365info.com/Microsoft-Server-ActiveSync';

async function startLabWith(policyLine?: string): Promise<{ lab: Lab; sink: LineSink }> {
  let text = await readFile(estateFile, 'utf8');
  if (policyLine) text = text.replace(/activesyncCrossSite: proxy/, policyLine);
  const sink = new LineSink();
  const lab = await startLab({
    index: parseEstate(text, estateFile).index,
    logger: createLogger({ level: 'info', destination: sink }),
    maxPingHoldMs: 300,
  });
  return { lab, sink };
}

/** The flows of docs/flows.md for a device on the primary namespace, and the servers each answer comes back through. */
const primaryFlows: readonly [flow: string, user: string, hops: string[]][] = [
  ['EAS-1', 'bob', ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY']],
  ['EAS-2', 'carol', ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-LA', 'MBX2007-LA']],
  ['EAS-3A', 'diego', ['CAS2013-NY', 'CAS2007-MAD', 'MBX2007-MAD']],
];

/**
 * Where mobile Autodiscover sends each user and the path from there. The front end answers it from the
 * directory (architecture.md): 2007 mailboxes in New York get the legacy namespace, Madrid's the regional
 * one (EAS-3B), and Los Angeles (no external URL) the primary namespace (EAS-2).
 */
const autodiscovered: readonly [user: string, url: string, hops: string[]][] = [
  ['bob', legacy, ['CAS2007-NY', 'MBX2007-NY']],
  ['carol', primary, ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-LA', 'MBX2007-LA']],
  ['diego', regional, ['CAS2007-MAD', 'MBX2007-MAD']],
];

let devices = 0;
const newDevice = (user: string): string => `E2E${user.toUpperCase()}${++devices}`;

describe('the ActiveSync client against the o365info lab', () => {
  let lab: Lab;
  let sink: LineSink;
  let external: LabClient;

  before(async () => {
    ({ lab, sink } = await startLabWith());
    external = labClient(lab, 'external');
  });
  after(async () => {
    await external.close();
    await lab.close();
  });

  const easClient = (user: string, o: Partial<ActiveSyncClientOptions> = {}): ActiveSyncClient =>
    new ActiveSyncClient({
      email: `${user}@o365info.com`,
      password: demoPassword,
      deviceId: newDevice(user),
      dispatcher: external.dispatcher,
      ...o,
    });

  /** The servers that recorded the step's request, once its entry server has reported. */
  async function recorded(step: ActiveSyncStep): Promise<string[]> {
    assert.ok(step.requestId, `${step.command} has a request-id`);
    await lab.recorder.waitFor(step.requestId, step.path[0] ?? '');
    return lab.recorder.path(step.requestId);
  }

  for (const [user, url, hops] of autodiscovered) {
    test(`${user}: Autodiscover from outside gives ${url}; the first session there comes back through ${hops.join(' -> ')}`, async () => {
      const c = easClient(user);
      const s = await c.firstSession();
      assert.equal(s.autodiscover?.url, url);
      assert.equal(s.url, url);
      const [discover, ...eas] = s.steps;
      assert.equal(discover?.command, 'Autodiscover');
      assert.deepEqual(
        discover?.path,
        ['CAS2013-NY'],
        'the front end answers Autodiscover for 2007 mailboxes',
      );
      assert.deepEqual(
        eas.map((x) => x.command),
        ['OPTIONS', 'Provision', 'Provision', 'FolderSync', 'Sync', 'Sync'],
      );
      for (const step of eas) {
        assert.equal(step.status, 200, step.command);
        assert.deepEqual(step.path, hops, `${step.command}: X-Coexist-Path`);
        assert.equal(step.beServer, hops.at(-1), `${step.command}: X-BEServer`);
      }
      assert.deepEqual(await recorded(eas.at(-1) as ActiveSyncStep), hops, 'what the servers recorded');
      assert.equal(s.protocolVersion, '12.1', 'Exchange 2007 speaks ActiveSync up to 12.1');
      assert.match(s.provision.policyKey ?? '', /^\d+$/);
      assert.equal(s.inbox.displayName, 'Inbox');
      assert.ok(s.items.length >= 2, 'the Inbox has its messages');
      assert.ok(s.items.every((i) => i.change === 'add' && i.subject && i.from && i.dateReceived && i.body));
      assert.match(s.items[0]?.subject ?? '', new RegExp(hops.at(-1) as string));
    });
  }

  for (const [flow, user, hops] of primaryFlows) {
    test(`${flow}: ${user} on the primary namespace, every step through ${hops.join(' -> ')}; Ping answers`, async () => {
      const c = easClient(user, { url: primary });
      const s = await c.firstSession();
      assert.equal(s.autodiscover, undefined, 'no Autodiscover with a URL');
      assert.equal(s.url, primary);
      for (const step of s.steps) {
        assert.deepEqual(step.path, hops, `${step.command}: X-Coexist-Path`);
        assert.equal(step.feServer, 'CAS2013-NY', `${step.command}: X-FEServer`);
        assert.equal(step.beServer, hops.at(-1), `${step.command}: X-BEServer`);
      }
      assert.deepEqual(await recorded(s.steps.at(-1) as ActiveSyncStep), hops);
      assert.ok(s.items.length >= 2);
      // The lab holds a Ping for at most maxPingHoldMs (300 ms): heartbeat 60 s, the minimum, expires quickly.
      const started = Date.now();
      const ping = await c.ping([s.inbox], 60);
      assert.deepEqual(ping, { status: 1, outcome: 'no-changes', changedFolders: [] });
      assert.ok(Date.now() - started < 10_000);
      assert.deepEqual(c.steps.at(-1)?.path, hops, 'the Ping went the same way');
      const tooShort = await c.ping([s.inbox], 10);
      assert.equal(tooShort.status, 5);
      assert.equal(tooShort.heartbeatInterval, 60, "the server's minimum");
    });
  }

  test('the base64 query form: the same session and path (EAS-2, carol)', async () => {
    const c = easClient('carol', { url: primary, queryForm: 'base64' });
    const s = await c.firstSession();
    assert.ok(
      s.steps
        .filter((x) => x.method === 'POST')
        .every((x) => x.queryForm === 'base64' && !x.url.includes('Cmd=')),
    );
    for (const step of s.steps) assert.deepEqual(step.path, primaryFlows[1]?.[2]);
    assert.ok(s.items.length >= 2);
    assert.equal((await c.ping([s.inbox], 60)).status, 1);
  });

  test('alice (2013) speaks 14.1 and gets a 14.1 Provision through MBX2013-NY', async () => {
    const s = await easClient('alice').firstSession();
    assert.equal(s.protocolVersion, '14.1');
    assert.equal(s.url, primary);
    for (const step of s.steps.slice(1)) assert.deepEqual(step.path, ['CAS2013-NY', 'MBX2013-NY']);
    assert.ok(s.items.length >= 2);
  });

  test('a wrong password: ActiveSyncAuthError at Autodiscover, and at the first command with a URL', async () => {
    for (const [url, step] of [
      [undefined, 'Autodiscover'],
      [primary, 'OPTIONS'],
    ] as const) {
      const c = easClient('bob', { password: 'Not-The-Password-1', ...(url ? { url } : {}) });
      const err = await c.firstSession().then(
        () => assert.fail('no error'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ActiveSyncAuthError, String(err));
      assert.equal(err.step, step);
      assert.ok(!err.message.includes('Not-The-Password-1'));
    }
  });

  describe('coexist activesync (the CLI, as a process)', () => {
    const cli = (args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> =>
      runCliProcess('activesync', lab, args, { env, timeoutMs: 20_000 });

    test('bob via Autodiscover, with a Ping: every step and its hops printed, exit 0, no password', async () => {
      const r = await cli(['--user', 'bob@o365info.com', '--ping', '60'], { COEXIST_PASSWORD: demoPassword });
      assert.equal(r.code, 0, r.stderr);
      for (const command of ['Autodiscover', 'OPTIONS', 'Provision', 'FolderSync', 'Sync', 'Ping'])
        assert.match(r.stdout, new RegExp(`^ +\\d+  ${command} +200 `, 'm'), command);
      assert.match(r.stdout, /Autodiscover +200 .*hops: CAS2013-NY {2}/);
      assert.match(r.stdout, /FolderSync +200 .*hops: CAS2007-NY -> MBX2007-NY/);
      assert.match(
        r.stdout,
        /^ActiveSync URL: https:\/\/legacy\.mail\.o365info\.com\/Microsoft-Server-ActiveSync$/m,
      );
      assert.match(r.stdout, /^Inbox \[1\]: 2 items/m);
      assert.match(r.stdout, /Welcome to MBX2007-NY, Bob/);
      assert.match(r.stdout, /^Ping \(60 s\): Status 1, no-changes/m);
      assert.ok(!(r.stdout + r.stderr).includes(demoPassword));
    });

    test('diego on the primary namespace, base64, --json: EAS-3A hops in the steps', async () => {
      const r = await cli(
        [
          '--user',
          'diego@o365info.com',
          '--url',
          primary,
          '--query',
          'base64',
          '--device-id',
          'CLIDIEGO1',
          '--json',
        ],
        { COEXIST_PASSWORD: demoPassword },
      );
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { steps: ActiveSyncStep[]; items: unknown[]; url: string };
      assert.equal(out.url, primary);
      assert.ok(out.steps.every((s) => s.path.join(',') === 'CAS2013-NY,CAS2007-MAD,MBX2007-MAD'));
      assert.equal(out.items.length, 2);
      assert.ok(!r.stdout.includes(demoPassword));
    });

    test('a wrong password: a one-line reason, a non-zero exit, and the password never printed', async () => {
      const wrong = 'Wrong-Password-42';
      const r = await cli(['--user', 'bob@o365info.com', '--password', wrong, '--url', primary]);
      assert.equal(r.code, 1, 'a session that failed (2 is kept for usage errors)');
      assert.match(r.stderr, /^coexist activesync: OPTIONS: authentication failed \(HTTP 401\)/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(!(r.stdout + r.stderr).includes(wrong));
      assert.ok(!(r.stdout + r.stderr).includes(demoPassword));
    });
  });

  test('no credential reached any server log line', () => {
    const text = sink.lines.join('\n');
    assert.ok(sink.lines.length > 10);
    assert.ok(!text.includes(demoPassword));
    assert.ok(!text.includes(Buffer.from(`bob@o365info.com:${demoPassword}`).toString('base64')));
  });
});

describe('EAS-legacy: diego on the primary namespace under activesyncCrossSite=redirect-451', () => {
  let lab: Lab;
  let external: LabClient;
  before(async () => {
    ({ lab } = await startLabWith('activesyncCrossSite: redirect-451'));
    external = labClient(lab, 'external');
  });
  after(async () => {
    await external.close();
    await lab.close();
  });

  test('the 451 X-MS-Location is followed and the session completes at the regional namespace (EAS-3B)', async () => {
    const c = new ActiveSyncClient({
      email: 'diego@o365info.com',
      password: demoPassword,
      deviceId: 'E2ELEGACY1',
      dispatcher: external.dispatcher,
      url: primary,
    });
    const s = await c.firstSession();
    const [redirected, resent, ...rest] = s.steps;
    assert.equal(redirected?.status, 451);
    assert.equal(redirected?.redirect, regional);
    assert.deepEqual(redirected?.path, ['CAS2013-NY'], 'the front end answered the 451 itself');
    assert.ok(resent?.url.startsWith(regional), 'the same command, re-sent to X-MS-Location');
    assert.equal(resent?.command, redirected?.command);
    assert.equal(s.url, regional, 'kept for later commands');
    for (const step of [resent, ...rest]) {
      assert.ok(step?.url.startsWith(regional), step?.command);
      assert.deepEqual(step?.path, ['CAS2007-MAD', 'MBX2007-MAD'], step?.command);
    }
    assert.ok(s.items.length >= 2);
    assert.match(s.items[0]?.subject ?? '', /MBX2007-MAD/);
    assert.equal((await c.ping([s.inbox], 60)).status, 1);
  });

  test('with redirects off, the 451 is a typed redirect error naming the new URL', async () => {
    const c = new ActiveSyncClient({
      email: 'diego@o365info.com',
      password: demoPassword,
      deviceId: 'E2ELEGACY2',
      dispatcher: external.dispatcher,
      url: primary,
      followRedirects: false,
    });
    await assert.rejects(c.firstSession(), (err: Error & { kind?: string }) => {
      assert.equal(err.kind, 'redirect');
      assert.ok(err.message.includes(regional));
      return true;
    });
  });
});
