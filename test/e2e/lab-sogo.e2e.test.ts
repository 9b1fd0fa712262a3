/**
 * A real ActiveSync server behind the lab: `startLab({ activeSync: 'sogo' })` puts a SOGo stack (Dovecot
 * IMAP, PostgreSQL, memcached; src/lab/sogo/) behind each 2007 mailbox server, and coexist's ActiveSync
 * client walks EAS-1 (bob), EAS-2 (carol) and EAS-3A (diego) through it: OPTIONS, Provision, FolderSync,
 * Sync (a message delivered over IMAP comes back byte for byte) and Ping (a message arriving during the
 * Ping ends it with the Inbox changed). EAS-legacy: the 451 is followed and the sync completes at the
 * regional namespace. Every answer's X-Coexist-Path is the flow of docs/flows.md, and SOGo (not the lab's
 * simulator) is what answered: its OPTIONS headers, its opaque sync keys and its Inbox.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ActiveSyncClientOptions, Folder } from '../../src/client/activesync/index.ts';
import { ActiveSyncClient } from '../../src/client/activesync/index.ts';
import { parseEstate } from '../../src/config/index.ts';
import type { Lab, SogoStack } from '../../src/lab/index.ts';
import { demoPassword, sogoAvailable, startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { LabClient } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const primary = 'https://mail.o365info.com/Microsoft-Server-ActiveSync';
const regional = 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync';

/** SOGo's longest Ping here: long enough that a delivery, not the heartbeat, ends the Ping below. */
const sogoMaxPingSeconds = 60;

async function startSogoLab(policyLine?: string): Promise<Lab> {
  const missing = sogoAvailable();
  if (missing) throw new Error(missing);
  let text = await readFile(estateFile, 'utf8');
  if (policyLine) text = text.replace(/activesyncCrossSite: proxy/, policyLine);
  return startLab({
    index: parseEstate(text, estateFile).index,
    logger: createLogger({ level: 'silent' }),
    activeSync: 'sogo',
    sogoMaxPingSeconds,
  });
}

const flows: readonly [flow: string, user: string, mailboxServer: string, hops: string[]][] = [
  ['EAS-1', 'bob', 'MBX2007-NY', ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY']],
  ['EAS-2', 'carol', 'MBX2007-LA', ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-LA', 'MBX2007-LA']],
  ['EAS-3A', 'diego', 'MBX2007-MAD', ['CAS2013-NY', 'CAS2007-MAD', 'MBX2007-MAD']],
];

let devices = 0;
/** A new DeviceId per client: SOGo keeps sync state per device, so each test starts clean. */
const newDevice = (user: string): string => `SOGO${user.toUpperCase()}${Date.now() % 1e6}${++devices}`;

/** Whether someone holds an established TCP connection to 127.0.0.1:`port` (its client side, from /proc/net/tcp). */
function connectedTo(port: number): boolean {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, , remote = '', state] = line.trim().split(/\s+/);
    if (state === '01' && remote === `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`)
      return true;
  }
  return false;
}

/**
 * Wait until the Ping is held by SOGo rather than for a fixed time: each request the lab hands to SOGo has
 * a connection of its own (SOGo closes every connection after its answer), so an established connection
 * to the stack's port is the Ping in flight there. Stops waiting if the Ping ends first.
 */
async function heldAtSogo(stack: SogoStack, ping: Promise<unknown>): Promise<void> {
  let ended = false;
  void ping.then(
    () => (ended = true),
    () => (ended = true),
  );
  while (!ended && !connectedTo(stack.port)) await new Promise((r) => setTimeout(r, 20));
}

const stackOf = (lab: Lab, server: string): SogoStack => {
  const stack = lab.sogo.get(server);
  assert.ok(stack, `a SOGo stack stands in for ${server}`);
  return stack;
};

describe('the lab on a real ActiveSync server (SOGo behind the 2007 mailbox servers)', () => {
  let lab: Lab;
  let external: LabClient;

  before(async () => {
    lab = await startSogoLab();
    external = labClient(lab, 'external');
  });
  after(async () => {
    await external?.close();
    await lab?.close();
  });

  const client = (user: string, o: Partial<ActiveSyncClientOptions> = {}): ActiveSyncClient =>
    new ActiveSyncClient({
      email: `${user}@o365info.com`,
      password: demoPassword,
      deviceId: newDevice(user),
      dispatcher: external.dispatcher,
      url: primary,
      ...o,
    });

  test('one stack per 2007 mailbox server that holds mailboxes, each with that server’s users only', () => {
    assert.deepEqual([...lab.sogo.keys()].sort(), ['MBX2007-LA', 'MBX2007-MAD', 'MBX2007-NY']);
  });

  for (const [flow, user, mailboxServer, hops] of flows) {
    test(`${flow}: ${user} syncs from SOGo through ${hops.join(' -> ')}; IMAP delivery arrives byte for byte; Ping ends on new mail`, async () => {
      const stack = stackOf(lab, mailboxServer);
      const c = client(user);
      const s = await c.firstSession();

      // SOGo answered, not the simulator: its version list (no 16.x) and no policy to enforce.
      assert.deepEqual(s.options.versions.at(-1), '14.1');
      assert.equal(s.protocolVersion, '14.1');
      assert.equal(s.provision.policyKey, undefined, 'SOGo sends no PolicyKey (docs/lab.md §3.4)');
      for (const step of s.steps) {
        assert.ok(step.status === 200, `${step.command} ${step.status}`);
        assert.deepEqual(step.path, hops, `${step.command}: X-Coexist-Path`);
        assert.equal(step.feServer, 'CAS2013-NY');
      }
      assert.equal(s.inbox.displayName, 'INBOX', "SOGo's name for the Inbox");
      // What the servers themselves recorded: every coexist and simulator hop of the flow, the 2007 CAS
      // handing over to the mailbox server at SOGo's own path, and no record from the simulator there.
      const last = s.steps.at(-1);
      const id = last?.requestId ?? '';
      await lab.recorder.waitFor(id, hops.at(-2) as string);
      await lab.recorder.waitFor(id, 'CAS2013-NY');
      assert.deepEqual(lab.recorder.path(id), hops.slice(0, -1));
      const handoff = lab.recorder.records(id).find((r) => r.server === hops.at(-2));
      assert.equal(handoff?.to, mailboxServer);
      assert.equal(handoff?.via, 'store');
      assert.match(
        handoff?.url ?? '',
        /^http:\/\/127\.0\.0\.1:\d+\/SOGo\/Microsoft-Server-ActiveSync\?Cmd=Sync&/,
      );
      assert.ok(
        !lab.recorder.records(id).some((r) => r.server === mailboxServer),
        'SOGo answered, not the simulator',
      );
      const seeded = s.items.find((i) => i.subject === `Welcome to ${mailboxServer}, ${displayName(user)}`);
      assert.ok(seeded, `the seeded message is in ${user}'s Inbox: ${JSON.stringify(s.items)}`);
      assert.match(seeded.body ?? '', /a real ActiveSync server, SOGo/);

      // Delivered over IMAP, then synced through every hop: the same subject and body, byte for byte.
      // Two CRLF-terminated lines: a message body's lines end so on the wire (RFC 5322), and so in the store.
      const body = `Grüße aus ${mailboxServer} — ${flow} ✓\r\n${newDevice(user)} & <ok>\r\n`;
      const subject = `Delivered to ${user} over IMAP (${flow})`;
      await stack.deliver(`${user}@o365info.com`, {
        from: 'Carol Sender <carol.sender@example.net>',
        to: `${user}@o365info.com`,
        subject,
        body,
      });
      const next = await c.sync(s.inbox.serverId, s.inboxSyncKey);
      const delivered = next.items.find((i) => i.subject === subject);
      assert.ok(delivered, `the delivered message arrives: ${JSON.stringify(next.items)}`);
      assert.equal(delivered.change, 'add');
      assert.equal(Buffer.from(delivered.body ?? '').toString('hex'), Buffer.from(body).toString('hex'));
      assert.deepEqual(c.steps.at(-1)?.path, hops);

      // Ping: held by SOGo until a message arrives, then Status 2 naming the Inbox.
      const pinging = c.ping([s.inbox], sogoMaxPingSeconds);
      await heldAtSogo(stack, pinging);
      const pushed = `Pushed during the Ping (${flow})`;
      await stack.deliver(`${user}@o365info.com`, {
        from: 'Carol Sender <carol.sender@example.net>',
        to: `${user}@o365info.com`,
        subject: pushed,
        body: 'New mail while the phone waits.',
      });
      const ping = await pinging;
      assert.equal(ping.status, 2, JSON.stringify(ping));
      assert.deepEqual(ping.changedFolders, [s.inbox.serverId]);
      assert.deepEqual(c.steps.at(-1)?.path, hops, 'the Ping went the same way');
      const after = await c.sync(s.inbox.serverId, next.syncKey);
      assert.ok(after.items.some((i) => i.subject === pushed));
    });
  }

  test('the base64 query form reaches SOGo too (EAS-1, bob)', async () => {
    const s = await client('bob', { queryForm: 'base64' }).firstSession();
    assert.ok(s.steps.filter((x) => x.method === 'POST').every((x) => x.queryForm === 'base64'));
    for (const step of s.steps) assert.deepEqual(step.path, flows[0]?.[3]);
    assert.ok(s.items.length >= 1);
  });

  test("a user of another stack is not known there: SOGo's own 401 comes back through the hops", async () => {
    // carol's mailbox is in Los Angeles; her credentials sent straight at New York's stack fail there.
    const ny = stackOf(lab, 'MBX2007-NY');
    const answer = await fetch(ny.activeSyncUrl, {
      method: 'OPTIONS',
      headers: {
        authorization: `Basic ${Buffer.from(`carol@o365info.com:${demoPassword}`).toString('base64')}`,
      },
    });
    assert.equal(answer.status, 401);
  });
});

describe('EAS-legacy on SOGo: diego on the primary namespace under activesyncCrossSite=redirect-451', () => {
  let lab: Lab;
  let external: LabClient;
  before(async () => {
    lab = await startSogoLab('activesyncCrossSite: redirect-451');
    external = labClient(lab, 'external');
  });
  after(async () => {
    await external?.close();
    await lab?.close();
  });

  test('451 X-MS-Location, followed; the sync completes at the regional namespace against SOGo', async () => {
    const c = new ActiveSyncClient({
      email: 'diego@o365info.com',
      password: demoPassword,
      deviceId: newDevice('diego'),
      dispatcher: external.dispatcher,
      url: primary,
    });
    const s = await c.firstSession();
    const [redirected, resent] = s.steps;
    assert.equal(redirected?.status, 451);
    assert.equal(redirected?.redirect, regional);
    assert.deepEqual(redirected?.path, ['CAS2013-NY'], 'the front end answered the 451 itself');
    assert.equal(resent?.command, redirected?.command);
    assert.equal(s.url, regional);
    for (const step of s.steps.slice(1)) {
      assert.equal(step.status, 200, step.command);
      assert.deepEqual(step.path, ['CAS2007-MAD', 'MBX2007-MAD'], `${step.command}: EAS-3B from there`);
    }
    assert.equal(s.protocolVersion, '14.1');
    assert.ok(
      s.items.some((i: { subject?: string }) => i.subject?.startsWith('Welcome to MBX2007-MAD')),
      'the Inbox came from the Madrid stack',
    );
    const inbox: Folder = s.inbox;
    assert.equal(inbox.displayName, 'INBOX');
  });
});

function displayName(user: string): string {
  return { bob: 'Bob', carol: 'Carol', diego: 'Diego' }[user] ?? user;
}
