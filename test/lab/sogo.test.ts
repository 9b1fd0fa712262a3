/**
 * The SOGo ActiveSync stack (src/lab/sogo/) against the real thing: SOGo 5.8, Dovecot, PostgreSQL and
 * memcached from Debian (.ci/run installs them). Never skipped: without the packages every test fails with
 * what to install. Two stacks start side by side, as two mailbox sites of an estate would; requests go out
 * on a fresh connection each (`reset: true`), because SOGo closes every connection without saying so (lab
 * notes real-activesync-sogo.md §4).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import {
  childElement,
  childElements,
  decodeWbxml,
  encodeWbxml,
  textOf,
  wbxmlElement as el,
  type WbxmlElement,
} from '../../src/codec/wbxml.ts';
import { sogoAvailable, startSogoStack, type SogoStack, type SogoUser } from '../../src/lab/sogo/index.ts';

const password = 'Coexist-Lab-2026!';
const alice: SogoUser = {
  login: 'alice',
  password,
  displayName: 'Alice Example',
  email: 'alice@o365info.com',
};
const bob: SogoUser = {
  login: 'bob@o365info.com',
  password,
  displayName: 'Bob Example',
  email: 'bob@o365info.com',
};
const carol: SogoUser = {
  login: 'carol@o365info.com',
  password: `${password} "quoted" \\ 'single' $HOME`,
  displayName: 'Carol Example',
  email: 'carol@o365info.com',
};
const seeded = {
  from: 'Dave Sender <dave@o365info.com>',
  to: 'bob@o365info.com',
  subject: 'Seeded for Bob',
  body: 'Hello Bob, this message was in the INBOX before SOGo started.',
};

const basic = (login: string, secret: string): string =>
  `Basic ${Buffer.from(`${login}:${secret}`, 'utf8').toString('base64')}`;

interface EasResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly bytes: Uint8Array;
  readonly root: WbxmlElement | undefined;
}

/** One EAS request on a fresh connection; the body is decoded when there is one. */
async function eas(
  stack: SogoStack,
  o: {
    method?: 'POST' | 'OPTIONS';
    cmd?: string;
    auth?: { login: string; password: string };
    deviceId?: string;
    body?: WbxmlElement;
  },
): Promise<EasResponse> {
  const query = new URLSearchParams({
    Cmd: o.cmd ?? 'FolderSync',
    User: o.auth?.login ?? 'nobody',
    DeviceId: o.deviceId ?? 'LAB0000',
    DeviceType: 'SmartPhone',
  });
  const headers: Record<string, string> = { 'ms-asprotocolversion': '14.1' };
  if (o.auth) headers.authorization = basic(o.auth.login, o.auth.password);
  if (o.body) headers['content-type'] = 'application/vnd.ms-sync.wbxml';
  const res = await request(`${stack.activeSyncUrl}${o.method === 'OPTIONS' ? '' : `?${query}`}`, {
    method: o.method ?? 'POST',
    headers,
    body: o.body ? encodeWbxml(o.body) : undefined,
    reset: true,
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  });
  const bytes = new Uint8Array(await res.body.arrayBuffer());
  const isWbxml = String(res.headers['content-type'] ?? '').includes('vnd.ms-sync.wbxml');
  return {
    status: res.statusCode,
    headers: res.headers,
    bytes,
    root: isWbxml && bytes.length > 0 ? decodeWbxml(bytes) : undefined,
  };
}

/** The text of an element, its opaque data decoded as UTF-8 too (SOGo may send either). */
const dataText = (e: WbxmlElement | undefined): string =>
  (e?.children ?? [])
    .map((c) => (typeof c === 'string' ? c : c instanceof Uint8Array ? Buffer.from(c).toString('utf8') : ''))
    .join('');

/** A Sync of one collection: the key, and GetChanges with a body preference after the initial key. */
function syncRequest(syncKey: string, collectionId: string, bodyType?: 1 | 4): WbxmlElement {
  const collection =
    bodyType === undefined
      ? el(
          'AirSync',
          'Collection',
          el('AirSync', 'SyncKey', syncKey),
          el('AirSync', 'CollectionId', collectionId),
        )
      : el(
          'AirSync',
          'Collection',
          el('AirSync', 'SyncKey', syncKey),
          el('AirSync', 'CollectionId', collectionId),
          el('AirSync', 'DeletesAsMoves', 1),
          el('AirSync', 'GetChanges', 1),
          el('AirSync', 'WindowSize', 25),
          el(
            'AirSync',
            'Options',
            el('AirSync', 'FilterType', 0),
            ...(bodyType === 4 ? [el('AirSync', 'MIMESupport', 2)] : []),
            el(
              'AirSyncBase',
              'BodyPreference',
              el('AirSyncBase', 'Type', bodyType),
              el('AirSyncBase', 'TruncationSize', 100_000),
            ),
          ),
        );
  return el('AirSync', 'Sync', el('AirSync', 'Collections', collection));
}

interface SyncedItem {
  readonly serverId: string;
  readonly subject: string;
  readonly bodyType: string;
  readonly data: string;
}

/** Run a Sync; return the new key, the status and the added items. */
async function sync(
  stack: SogoStack,
  user: SogoUser,
  deviceId: string,
  syncKey: string,
  collectionId: string,
  bodyType?: 1 | 4,
): Promise<{ syncKey: string; status: string; added: SyncedItem[]; httpStatus: number; empty: boolean }> {
  const r = await eas(stack, {
    cmd: 'Sync',
    auth: user,
    deviceId,
    body: syncRequest(syncKey, collectionId, bodyType),
  });
  if (!r.root) return { syncKey, status: '', added: [], httpStatus: r.status, empty: true };
  assert.equal(r.root.tag, 'Sync', `Sync answer: ${r.root.tag}`);
  const collection = childElement(childElement(r.root, 'Collections') ?? r.root, 'Collection');
  assert.ok(collection, 'a Collection in the Sync answer');
  const commands = childElement(collection, 'Commands');
  const added = (commands ? childElements(commands, 'Add') : []).map((add) => {
    const data = childElement(add, 'ApplicationData');
    const body = data ? childElement(data, 'Body', 'AirSyncBase') : undefined;
    return {
      serverId: textOf(childElement(add, 'ServerId')),
      subject: textOf(data ? childElement(data, 'Subject', 'Email') : undefined),
      bodyType: textOf(body ? childElement(body, 'Type', 'AirSyncBase') : undefined),
      data: dataText(body ? childElement(body, 'Data', 'AirSyncBase') : undefined),
    };
  });
  return {
    syncKey: textOf(childElement(collection, 'SyncKey')),
    status: textOf(childElement(collection, 'Status')),
    added,
    httpStatus: r.status,
    empty: false,
  };
}

/** pid, parent, process group, state and start time of a process, from /proc/<pid>/stat. */
function procStat(pid: number): { ppid: number; pgrp: number; state: string; start: string } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), pgrp: Number(f[2]), state: f[0] ?? '', start: f[19] ?? '' };
}

/**
 * The running processes (pid and start time) among `pids`, in their process groups or descending from them
 * (sogod's workers and PostgreSQL's backends call setsid).
 */
function processTree(pids: readonly number[]): Map<number, string> {
  const all = readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map((e) => ({ pid: Number(e), stat: procStat(Number(e)) }))
    .filter((e) => e.stat && e.stat.state !== 'Z' && e.stat.state !== 'X');
  const found = new Map<number, string>();
  for (const e of all)
    if (pids.includes(e.pid) || pids.includes(e.stat?.pgrp ?? -1)) found.set(e.pid, e.stat?.start ?? '');
  for (let grew = true; grew;) {
    grew = false;
    for (const e of all) {
      if (!found.has(e.pid) && found.has(e.stat?.ppid ?? -1)) {
        found.set(e.pid, e.stat?.start ?? '');
        grew = true;
      }
    }
  }
  return found;
}

/** Those of `tree` still running as the same process (same start time, not a zombie). */
const stillRunning = (tree: Map<number, string>): number[] =>
  [...tree].flatMap(([pid, start]) => {
    const now = procStat(pid);
    return now && now.start === start && now.state !== 'Z' && now.state !== 'X' ? [pid] : [];
  });

/** The TCP sockets in LISTEN state that these processes hold, as `address:port` (hex address as in /proc/net/tcp). */
function listeningSockets(pids: Iterable<number>): string[] {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1]) inodes.add(m[1]);
      } catch {
        // closed meanwhile
      }
    }
  }
  const listening: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [local, state, inode] = [f[1], f[3], f[9]];
      if (local && state === '0A' && inode && inodes.has(inode)) {
        const [address = '', port = ''] = local.split(':');
        listening.push(`${address}:${parseInt(port, 16)}`);
      }
    }
  }
  return listening.sort();
}

/** Processes whose command line mentions `text` (the state dir is in every daemon's arguments). */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

describe('SOGo ActiveSync stack (real SOGo, Dovecot, PostgreSQL, memcached on loopback)', () => {
  let ny: SogoStack | undefined;
  let la: SogoStack | undefined;
  const stopped = new Set<SogoStack>();
  let inboxId = '';
  let syncKey = '';
  const deviceId = `LAB${randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase()}`;

  const stacks = (): { ny: SogoStack; la: SogoStack } => {
    assert.ok(ny && la, 'the stacks started (see the before hook)');
    return { ny, la };
  };

  before(async () => {
    const missing = sogoAvailable();
    if (missing) throw new Error(missing);
    const started = Date.now();
    const results = await Promise.allSettled([
      startSogoStack({ name: 'MBX2007-NY', users: [alice, bob], seed: { [bob.login]: [seeded] } }),
      startSogoStack({ name: 'MBX2010-LA', users: [carol], workers: 3, debug: true }),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
      throw failed.reason;
    }
    [ny, la] = results.map((r) => (r as PromiseFulfilledResult<SogoStack>).value);
    console.error(`two SOGo stacks started side by side in ${Date.now() - started} ms`);
  });

  after(async () => {
    await Promise.all([ny, la].map((s) => (s && !stopped.has(s) ? s.stop() : undefined)));
  });

  test('OPTIONS: 200 with MS-ASProtocolVersions up to 14.1 for a user, 401 without credentials', async () => {
    const { ny } = stacks();
    assert.match(ny.activeSyncUrl, /^http:\/\/127\.0\.0\.1:\d+\/SOGo\/Microsoft-Server-ActiveSync$/);
    const ok = await eas(ny, { method: 'OPTIONS', auth: bob });
    assert.equal(ok.status, 200, ny.logs());
    const versions = String(ok.headers['ms-asprotocolversions']).split(',');
    assert.ok(versions.includes('14.1'), `MS-ASProtocolVersions: ${versions.join(',')}`);
    const anonymous = await eas(ny, { method: 'OPTIONS' });
    assert.equal(anonymous.status, 401);
  });

  test('FolderSync lists an INBOX; Sync brings the seeded message, subject and body', async () => {
    const { ny } = stacks();
    const fs = await eas(ny, {
      cmd: 'FolderSync',
      auth: bob,
      deviceId,
      body: el('FolderHierarchy', 'FolderSync', el('FolderHierarchy', 'SyncKey', 0)),
    });
    assert.equal(fs.status, 200, ny.logs());
    assert.ok(fs.root, 'a WBXML FolderSync answer');
    assert.equal(textOf(childElement(fs.root, 'Status')), '1');
    const adds = childElements(childElement(fs.root, 'Changes') ?? fs.root, 'Add');
    const inbox = adds.find((a) => textOf(childElement(a, 'Type')) === '2');
    assert.ok(
      inbox,
      `an INBOX (Type 2) among ${adds.map((a) => textOf(childElement(a, 'DisplayName'))).join(', ')}`,
    );
    assert.equal(textOf(childElement(inbox, 'DisplayName')), 'INBOX');
    inboxId = textOf(childElement(inbox, 'ServerId'));

    const initial = await sync(ny, bob, deviceId, '0', inboxId);
    assert.equal(initial.status, '1');
    assert.ok(initial.syncKey && initial.syncKey !== '0', `a new sync key, not ${initial.syncKey}`);
    const changes = await sync(ny, bob, deviceId, initial.syncKey, inboxId, 1);
    assert.equal(
      changes.empty,
      false,
      `the first Sync of the INBOX came back empty (CONDSTORE warm-up?)\n${ny.logs()}`,
    );
    assert.equal(changes.status, '1');
    assert.equal(changes.added.length, 1, JSON.stringify(changes.added));
    const [item] = changes.added;
    assert.equal(item?.subject, seeded.subject);
    assert.equal(item?.bodyType, '1');
    assert.equal(item?.data.trimEnd(), seeded.body);
    syncKey = changes.syncKey;
  });

  test('deliver(): the next Sync returns the message byte for byte (MIME body)', async () => {
    const { ny } = stacks();
    assert.ok(inboxId && syncKey, 'the FolderSync/Sync test ran first');
    const raw = [
      'From: Erin Sender <erin@o365info.com>',
      'To: Bob Example <bob@o365info.com>',
      'Subject: =?UTF-8?B?RGVsaXZlcmVkIOKckyBkdXJpbmcgdGhlIHRlc3Q=?=',
      'Date: Tue, 01 Dec 2026 12:00:00 +0000',
      `Message-ID: <${randomUUID()}@o365info.com>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Line one.',
      'Line two, with ümlauts and a tick ✓.',
      '',
    ].join('\r\n');
    await ny.deliver(bob.login, raw);
    const next = await sync(ny, bob, deviceId, syncKey, inboxId, 4);
    assert.equal(next.status, '1', ny.logs());
    assert.equal(next.added.length, 1, JSON.stringify(next.added));
    const [item] = next.added;
    assert.equal(item?.subject, 'Delivered ✓ during the test');
    assert.equal(item?.bodyType, '4');
    assert.equal(item?.data, raw);
  });

  test('a wrong password gets 401', async () => {
    const { ny } = stacks();
    const r = await eas(ny, { method: 'OPTIONS', auth: { login: bob.login, password: `${password}x` } });
    assert.equal(r.status, 401);
    const plainLogin = await eas(ny, { method: 'OPTIONS', auth: alice });
    assert.equal(plainLogin.status, 200, 'a login without a domain works too');
  });

  test('two stacks side by side: each serves only its own users', async () => {
    const { ny, la } = stacks();
    assert.notEqual(ny.port, la.port);
    assert.notEqual(ny.imapPort, la.imapPort);
    assert.equal((await eas(la, { method: 'OPTIONS', auth: carol })).status, 200, la.logs());
    assert.equal((await eas(la, { method: 'OPTIONS', auth: bob })).status, 401);
    assert.equal((await eas(ny, { method: 'OPTIONS', auth: carol })).status, 401);
    // carol's password has quotes, a backslash and a dollar: SOGo logs in to Dovecot with it too.
    const fs = await eas(la, {
      cmd: 'FolderSync',
      auth: carol,
      deviceId: `${deviceId}LA`,
      body: el('FolderHierarchy', 'FolderSync', el('FolderHierarchy', 'SyncKey', 0)),
    });
    assert.equal(fs.status, 200);
    assert.ok(fs.root);
    const types = childElements(childElement(fs.root, 'Changes') ?? fs.root, 'Add').map((a) =>
      textOf(childElement(a, 'Type')),
    );
    assert.ok(
      types.includes('2'),
      `an INBOX for carol (mail folders need the IMAP login): types ${types.join(',')}`,
    );
    assert.match(la.logs(), /EAS - request for device/, 'debug: SOGo logs every EAS request');
  });

  test('everything listens on 127.0.0.1 only, on the ports the stack reports; memcached on a unix socket', () => {
    const { ny, la } = stacks();
    for (const stack of [ny, la]) {
      const listening = listeningSockets(processTree(Object.values(stack.pids)).keys());
      const expected = [stack.port, stack.imapPort, stack.postgresPort].map((p) => `0100007F:${p}`).sort();
      assert.deepEqual(
        [...new Set(listening)].sort(),
        expected,
        `${stack.name} listens on ${listening.join(', ')}`,
      );
      assert.ok(existsSync(join(stack.stateDir, 'run', 'memcached.sock')));
    }
  });

  test('stop() ends every process (the recorded PIDs and their groups) and removes the state dir', async () => {
    const { ny, la } = stacks();
    const pids = [...Object.values(ny.pids), ...Object.values(la.pids)];
    assert.deepEqual(Object.keys(ny.pids).sort(), ['dovecot', 'memcached', 'postgres', 'sogod']);
    const tree = processTree(pids);
    // 8 daemons, 9 SOGo workers, PostgreSQL's and Dovecot's helpers.
    assert.ok(tree.size > 8 + 9, `the daemons and their children run before stop (${tree.size} processes)`);
    for (const dir of [ny.stateDir, la.stateDir]) assert.ok(existsSync(dir));
    const started = Date.now();
    await Promise.all([ny.stop(), la.stop()]);
    stopped.add(ny).add(la);
    console.error(`two SOGo stacks stopped in ${Date.now() - started} ms`);
    assert.deepEqual(stillRunning(tree), [], 'no process of either stack runs');
    assert.deepEqual([...processTree(pids).keys()], [], 'nothing in their process groups either');
    for (const dir of [ny.stateDir, la.stateDir]) {
      assert.equal(existsSync(dir), false, `${dir} removed`);
      assert.deepEqual(processesMentioning(dir), [], `no process mentions ${dir}`);
    }
    assert.match(ny.logs(), /sogo\.log/, 'the logs stay readable after stop');
    await ny.stop(); // twice is fine
  });

  test('a failed start names the stack and the step, shows the log and leaves nothing behind', async () => {
    const parentDir = await mkdtemp(
      join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'coexist-sogo-test-'),
    );
    await chmod(parentDir, 0o755); // the daemons' users must be able to enter it
    try {
      // Every wait has a deadline: with 0 ms, the first daemon waited for (memcached) fails the start at
      // its first look, however fast it comes up; the steps beside it (Dovecot's, PostgreSQL's) fail or are
      // skipped after it, and the first failure is the one reported.
      await assert.rejects(
        startSogoStack({ name: 'MBX-BROKEN', users: [alice], parentDir, readyTimeoutMs: 0 }),
        (error: Error) => {
          assert.match(
            error.message,
            /^SOGo stack MBX-BROKEN: memcached start failed: listening on its socket: not within 0 ms/,
          );
          assert.doesNotMatch(error.message, /skipped/);
          return true;
        },
      );
      // A display name too long for the users table (varchar(256)): PostgreSQL, memcached and Dovecot are
      // up by then, and are stopped again.
      const long = { ...alice, displayName: 'A'.repeat(300) };
      await assert.rejects(startSogoStack({ name: 'MBX-LONG', users: [long], parentDir }), (error: Error) => {
        assert.match(error.message, /^SOGo stack MBX-LONG: PostgreSQL schema and users failed: psql exited/);
        assert.match(error.message, /value too long/);
        assert.match(
          error.message,
          /\n--- postgres\.out ---\n(.|\n)*ERROR: {2}value too long/,
          'the tail of the log',
        );
        return true;
      });
      assert.deepEqual(await readdir(parentDir), [], 'the state dirs are removed');
      assert.deepEqual(processesMentioning(parentDir), [], 'no daemon of the broken stacks runs');
      // A state dir path too long for the sockets in it is refused before anything starts.
      const deep = join(parentDir, 'x'.repeat(80));
      await mkdir(deep, { mode: 0o755 });
      await assert.rejects(
        startSogoStack({ name: 'MBX-DEEP', users: [alice], parentDir: deep }),
        /^Error: SOGo stack MBX-DEEP: the state dir .* is too long for unix sockets/,
      );
      assert.deepEqual(await readdir(deep), []);
    } finally {
      await rm(parentDir, { recursive: true, force: true });
    }
  });
});
