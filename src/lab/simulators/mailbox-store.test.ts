/**
 * The mailbox store simulator over real sockets: a `node:http` server on 127.0.0.1 calls `store.handle`,
 * clients use `fetch` and `node:http`. Every protocol's answer shape (docs/protocols.md §4.1, §4.6–§4.10),
 * an ActiveSync device's first session decoded with the WBXML codec, Ping holding, and the two Outlook
 * Anywhere channels at tens of MiB. No fixed sleeps: waits poll with deadlines.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { createServer, request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { WbxmlElement } from '../../codec/wbxml.ts';
import {
  childElement,
  childElements,
  decodeWbxml,
  encodeWbxml,
  textOf,
  wbxmlElement as el,
} from '../../codec/wbxml.ts';
import type { ProductVersion } from '../../core/estate/estate.ts';
import type { Protocol } from '../../core/protocols/protocol.ts';
import type { ConnectingSid, ImpersonationVerdict } from '../../dataplane/contracts.ts';
import { MailboxStore, rpcOutBytesHeader, rpcOutDataByte } from './mailbox-store.ts';

const MiB = 1024 * 1024;
const holdMs = 200;
const bob = { address: 'bob@o365info.com', displayName: 'Bob Example' };
const serverOf = (v: ProductVersion): string => `MBX${v}-NY`;

/** Poll `condition` until it holds or `deadlineMs` passes (never a fixed sleep). */
async function waitFor(condition: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const protocolOfPath = (path: string): Protocol => {
  const p = path.toLowerCase();
  const table: [string, Protocol][] = [
    ['/microsoft-server-activesync', 'activesync'],
    ['/ews', 'ews'],
    ['/owa', 'owa'],
    ['/ecp', 'ecp'],
    ['/rpc', 'rpc'],
    ['/mapi', 'mapi'],
    ['/oab', 'oab'],
    ['/autodiscover', 'autodiscover'],
  ];
  return table.find(([prefix]) => p.startsWith(prefix))?.[1] ?? 'owa';
};

/**
 * node:http's parser (llhttp) answers 400 to Outlook Anywhere's RPC_IN_DATA and RPC_OUT_DATA, so, like the
 * lab's listener, the test server rewrites such a first request line to POST and hands the real method
 * over in a header that its handler puts back.
 */
const testMethodHeader = 'x-test-method';
function acceptRpcMethods(socket: Socket, ready: () => void): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    seen = Buffer.concat([seen, chunk]);
    const eol = seen.indexOf('\r\n');
    if (eol < 0 && seen.length < 16_384) return;
    socket.off('data', onData);
    socket.pause();
    const line = seen.subarray(0, Math.max(eol, 0)).toString('latin1');
    const method = /^(RPC_IN_DATA|RPC_OUT_DATA) /.exec(line)?.[1];
    socket.unshift(
      method === undefined
        ? seen
        : Buffer.concat([
            Buffer.from(`POST${line.slice(method.length)}\r\n${testMethodHeader}: ${method}`, 'latin1'),
            seen.subarray(eol),
          ]),
    );
    ready();
    process.nextTick(() => socket.resume());
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
}

/** Every store answer names its server (docs/protocols.md §4.10). */
function assertServer(headers: Headers | IncomingMessage['headers'], version: ProductVersion): void {
  const get = (n: string): string | null | undefined =>
    headers instanceof Headers ? headers.get(n) : (headers[n] as string | undefined);
  assert.equal(get('x-beserver'), serverOf(version));
  assert.equal(get('x-diaginfo'), serverOf(version));
}

describe('mailbox store simulator', () => {
  const store = new MailboxStore({ maxPingHoldMs: holdMs });
  /** A second store that holds Pings long, to watch disconnects and close(). */
  const longStore = new MailboxStore({ maxPingHoldMs: 60_000 });
  /** Every ExchangeImpersonation target handed to the data plane's decision, in order. */
  const impersonated: ConnectingSid[] = [];
  /** How each request tagged `x-test-id` ended on the server side. */
  const handled = new Map<string, { finished: boolean }>();
  let base = '';

  const server: Server = createServer((req, res) => {
    const method = req.headers[testMethodHeader];
    if (typeof method === 'string') {
      req.method = method;
      req.headers[testMethodHeader] = undefined;
    }
    const version = Number(req.headers['x-test-version'] ?? 2013) as ProductVersion;
    const s = req.headers['x-test-store'] === 'long' ? longStore : store;
    const id = req.headers['x-test-id'];
    const ctx = {
      serverName: serverOf(version),
      version,
      protocol: protocolOfPath(req.url ?? '/'),
      mailbox: bob,
      caller: bob,
      // `x-test-access: denied`: the pipeline found the caller may not open this mailbox.
      access: req.headers['x-test-access'] === 'denied' ? ('denied' as const) : ('owner' as const),
      // `x-test-impersonate: <verdict kind>`: the data plane's decision on an ExchangeImpersonation header.
      ...(typeof req.headers['x-test-impersonate'] === 'string' && {
        impersonate: (target: ConnectingSid): Promise<ImpersonationVerdict> => {
          impersonated.push(target);
          const kind = req.headers['x-test-impersonate'] as ImpersonationVerdict['kind'];
          return Promise.resolve(
            kind === 'allowed'
              ? { kind, mailbox: { address: 'carol@o365info.com', displayName: 'Carol' } }
              : { kind },
          );
        },
      }),
    };
    void s.handle(req, res, ctx).then(() => {
      if (typeof id !== 'string') return;
      // Once the response is over: whether all of it went out is known at 'close' ('finish' comes when
      // the last bytes are flushed, which Node 24 does after the handler's end() has returned).
      const record = (): void => void handled.set(id, { finished: res.writableFinished });
      if (res.closed) record();
      else res.once('close', record);
    });
  });

  const sockets = new Set<Socket>();
  const front = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    acceptRpcMethods(socket, () => server.emit('connection', socket));
  });

  before(async () => {
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
  });

  after(async () => {
    store.close();
    longStore.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => front.close(resolve));
  });

  // -------------------------------------------------------------------------------------------------
  describe('a caller who may not open the mailbox (docs/security.md "Mailbox access")', () => {
    const denied = { 'x-test-access': 'denied', 'x-test-version': '2007' };

    test('EWS GetFolder: ErrorAccessDenied for each folder, HTTP 200, nothing of the mailbox', async () => {
      const res = await fetch(`${base}/EWS/Exchange.asmx`, {
        method: 'POST',
        headers: { ...denied, 'content-type': 'text/xml; charset=utf-8' },
        body:
          '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ' +
          'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" ' +
          'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Body>' +
          '<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>' +
          '<t:DistinguishedFolderId Id="inbox"/><t:DistinguishedFolderId Id="root"/></m:FolderIds></m:GetFolder>' +
          '</soap:Body></soap:Envelope>',
      });
      const xml = await res.text();
      assert.equal(res.status, 200);
      assert.equal(xml.match(/<m:ResponseCode>ErrorAccessDenied<\/m:ResponseCode>/g)?.length, 2);
      assert.doesNotMatch(xml, /NoError|FolderId/);
    });

    for (const [protocol, path] of [
      ['ActiveSync', '/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=bob&DeviceId=X&DeviceType=Y'],
      ['OWA', '/owa/'],
      ['MAPI', '/mapi/emsmdb/?MailboxId=7f1d5c8e-2b3a-4c5d-9e8f-0a1b2c3d4e5f@o365info.com'],
    ] as const) {
      test(`${protocol}: 403 and nothing of the mailbox`, async () => {
        const res = await fetch(`${base}${path}`, { method: 'POST', headers: denied, body: 'x' });
        const body = await res.text();
        assert.equal(res.status, 403);
        // The mailbox's display name and its page's user line are the mailbox's content.
        assert.doesNotMatch(body, /Bob Example|id="user"/);
        assertServer(res.headers, 2007);
      });
    }
  });

  // -------------------------------------------------------------------------------------------------
  describe('ActiveSync', () => {
    interface EasOptions {
      version?: ProductVersion;
      /** MS-ASProtocolVersion (default 14.1); null sends none (the base64 form carries it). */
      asVersion?: string | null;
      policyKey?: string;
      device?: string;
      query?: string;
      store?: 'long';
    }
    interface EasReply {
      status: number;
      headers: Headers;
      doc?: WbxmlElement;
    }

    async function eas(cmd: string, body?: WbxmlElement | Uint8Array, o: EasOptions = {}): Promise<EasReply> {
      const version = o.version ?? 2013;
      const query = o.query ?? `Cmd=${cmd}&User=bob&DeviceId=${o.device ?? 'LAB0001'}&DeviceType=SmartPhone`;
      const headers: Record<string, string> = {
        'content-type': 'application/vnd.ms-sync.wbxml',
        'x-test-version': String(version),
      };
      if (o.asVersion !== null) headers['ms-asprotocolversion'] = o.asVersion ?? '14.1';
      if (o.policyKey) headers['x-ms-policykey'] = o.policyKey;
      if (o.store) headers['x-test-store'] = o.store;
      const wire = body === undefined ? undefined : body instanceof Uint8Array ? body : encodeWbxml(body);
      const res = await fetch(`${base}/Microsoft-Server-ActiveSync?${query}`, {
        method: 'POST',
        headers,
        ...(wire ? { body: wire } : {}),
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      assertServer(res.headers, version);
      assert.equal(res.headers.get('cache-control'), 'private');
      assert.ok(res.headers.get('ms-server-activesync'), 'every answer carries MS-Server-ActiveSync');
      return {
        status: res.status,
        headers: res.headers,
        ...(bytes.length ? { doc: decodeWbxml(bytes) } : {}),
      };
    }

    /** The element at `path` under `doc`; the test fails when it is missing. */
    const at = (doc: WbxmlElement | undefined, ...path: string[]): WbxmlElement => {
      let e = doc;
      for (const tag of path) e = e && childElement(e, tag);
      assert.ok(e, `no ${path.join('/')} in the answer`);
      return e;
    };
    const text = (doc: WbxmlElement | undefined, ...path: string[]): string => {
      let e = doc;
      for (const tag of path) e = e && childElement(e, tag);
      return textOf(e);
    };

    for (const [version, versions, server] of [
      [2007, '2.0,2.1,2.5,12.0,12.1', '8.3'],
      [2010, '2.0,2.1,2.5,12.0,12.1,14.0,14.1', '14.3'],
      [2013, '2.0,2.1,2.5,12.0,12.1,14.0,14.1', '15.0'],
    ] as const) {
      test(`OPTIONS on Exchange ${version} advertises up to ${versions.split(',').at(-1)} (${server})`, async () => {
        const res = await fetch(`${base}/Microsoft-Server-ActiveSync`, {
          method: 'OPTIONS',
          headers: { 'x-test-version': String(version) },
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('ms-asprotocolversions'), versions);
        assert.equal(res.headers.get('ms-server-activesync'), server);
        assert.equal(res.headers.get('allow'), 'OPTIONS,POST');
        assert.equal(res.headers.get('public'), 'OPTIONS,POST');
        assert.equal(res.headers.get('cache-control'), 'private');
        assert.equal(res.headers.get('content-length'), '0');
        const commands = res.headers.get('ms-asprotocolcommands')?.split(',') ?? [];
        for (const c of ['Sync', 'FolderSync', 'Ping', 'Provision', 'Settings'])
          assert.ok(commands.includes(c), c);
        assertServer(res.headers, version);
      });
    }

    test('a first session on 2013: Provision (two phases) -> FolderSync -> Sync 0 -> Sync 1', async () => {
      const p = (tag: string, ...c: (WbxmlElement | string)[]): WbxmlElement => el('Provision', tag, ...c);
      const policy = (...c: WbxmlElement[]): WbxmlElement =>
        p('Provision', p('Policies', p('Policy', p('PolicyType', 'MS-EAS-Provisioning-WBXML'), ...c)));

      const first = await eas('Provision', policy());
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('content-type'), 'application/vnd.ms-sync.wbxml');
      assert.equal(text(first.doc, 'Status'), '1');
      assert.equal(text(first.doc, 'Policies', 'Policy', 'Status'), '1');
      const temporary = text(first.doc, 'Policies', 'Policy', 'PolicyKey');
      assert.match(temporary, /^[1-9]\d*$/);
      assert.ok(Number(temporary) <= 0xffffffff);
      assert.equal(at(first.doc, 'Policies', 'Policy', 'Data', 'EASProvisionDoc').ns, 'Provision');

      const ack = await eas('Provision', policy(p('PolicyKey', temporary), p('Status', '1')), {
        policyKey: temporary,
      });
      assert.equal(text(ack.doc, 'Status'), '1');
      assert.equal(text(ack.doc, 'Policies', 'Policy', 'Status'), '1');
      const final = text(ack.doc, 'Policies', 'Policy', 'PolicyKey');
      assert.match(final, /^[1-9]\d*$/);
      assert.notEqual(final, temporary);

      const wrong = await eas('Provision', policy(p('PolicyKey', '12345'), p('Status', '1')));
      assert.equal(text(wrong.doc, 'Policies', 'Policy', 'Status'), '5', 'the wrong key is refused');

      const f = (tag: string, ...c: (WbxmlElement | string)[]): WbxmlElement =>
        el('FolderHierarchy', tag, ...c);
      const hierarchy = await eas('FolderSync', f('FolderSync', f('SyncKey', '0')), { policyKey: final });
      assert.equal(text(hierarchy.doc, 'Status'), '1');
      assert.equal(text(hierarchy.doc, 'SyncKey'), '1');
      const changes = at(hierarchy.doc, 'Changes');
      assert.equal(text(changes, 'Count'), '7');
      const added = childElements(changes, 'Add').map((a) => [text(a, 'DisplayName'), text(a, 'Type')]);
      assert.deepEqual(added, [
        ['Inbox', '2'],
        ['Drafts', '3'],
        ['Deleted Items', '4'],
        ['Sent Items', '5'],
        ['Outbox', '6'],
        ['Calendar', '8'],
        ['Contacts', '9'],
      ]);
      const inboxId = text(
        childElements(changes, 'Add').find((a) => text(a, 'Type') === '2'),
        'ServerId',
      );
      assert.ok(inboxId);

      const again = await eas('FolderSync', f('FolderSync', f('SyncKey', '1')));
      assert.equal(text(again.doc, 'SyncKey'), '1');
      assert.equal(text(again.doc, 'Changes', 'Count'), '0', 'no changes after the first FolderSync');

      const a = (tag: string, ...c: (WbxmlElement | string)[]): WbxmlElement => el('AirSync', tag, ...c);
      const syncOf = (key: string, ...options: WbxmlElement[]): WbxmlElement =>
        a(
          'Sync',
          a('Collections', a('Collection', a('SyncKey', key), a('CollectionId', inboxId), ...options)),
        );
      const initial = await eas('Sync', syncOf('0'));
      const c0 = at(initial.doc, 'Collections', 'Collection');
      assert.equal(text(c0, 'Status'), '1');
      assert.equal(text(c0, 'SyncKey'), '1');
      assert.equal(childElement(c0, 'Commands'), undefined, 'the initial Sync carries no items');
      assert.equal(childElement(c0, 'Class'), undefined, '14.x answers carry no Class');

      const options = a(
        'Options',
        el(
          'AirSyncBase',
          'BodyPreference',
          el('AirSyncBase', 'Type', '1'),
          el('AirSyncBase', 'TruncationSize', '500'),
        ),
      );
      const items = await eas('Sync', syncOf('1', a('GetChanges', '1'), a('WindowSize', '25'), options));
      const c1 = at(items.doc, 'Collections', 'Collection');
      assert.equal(text(c1, 'Status'), '1');
      assert.equal(text(c1, 'SyncKey'), '2');
      const adds = childElements(at(c1, 'Commands'), 'Add');
      assert.equal(adds.length, 2);
      for (const add of adds) {
        const data = at(add, 'ApplicationData');
        const body = at(data, 'Body');
        assert.equal(body.ns, 'AirSyncBase');
        assert.equal(childElement(data, 'Subject')?.ns, 'Email');
        assert.match(text(data, 'Subject'), /MBX2013-NY/);
        assert.match(text(data, 'To'), /bob@o365info\.com/);
        assert.match(text(data, 'From'), /postmaster@o365info\.com/);
        assert.match(text(data, 'DateReceived'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
        assert.equal(text(body, 'Type'), '1');
        assert.match(text(body, 'Data'), /Bob Example|bob@o365info\.com/);
        assert.match(text(body, 'Data'), /MBX2013-NY/);
      }

      const later = await eas('Sync', syncOf('2'));
      const c2 = at(later.doc, 'Collections', 'Collection');
      assert.equal(text(c2, 'SyncKey'), '3');
      assert.equal(childElement(c2, 'Commands'), undefined);
    });

    test('2007 speaks 12.1 (base64 query form too) and names the Class in Sync answers', async () => {
      // MS-ASHTTP base64 query: version 121, command 9 (FolderSync), en-US, DeviceId, no key, DeviceType.
      const ascii = (s: string): number[] => [...Buffer.from(s)];
      const query = Buffer.from([
        0x79,
        9,
        0x09,
        0x04,
        7,
        ...ascii('LAB2007'),
        0,
        5,
        ...ascii('Phone'),
      ]).toString('base64');
      const f = (tag: string, ...c: (WbxmlElement | string)[]): WbxmlElement =>
        el('FolderHierarchy', tag, ...c);
      const hierarchy = await eas('FolderSync', f('FolderSync', f('SyncKey', '0')), {
        version: 2007,
        query: encodeURIComponent(query),
        asVersion: null,
      });
      assert.equal(hierarchy.status, 200);
      assert.equal(hierarchy.headers.get('ms-server-activesync'), '8.3');
      assert.equal(text(hierarchy.doc, 'Changes', 'Count'), '7');

      const a = (tag: string, ...c: (WbxmlElement | string)[]): WbxmlElement => el('AirSync', tag, ...c);
      const sync = await eas(
        'Sync',
        a('Sync', a('Collections', a('Collection', a('SyncKey', '1'), a('CollectionId', '1')))),
        { version: 2007, asVersion: '12.1' },
      );
      const c = at(sync.doc, 'Collections', 'Collection');
      assert.equal(text(c, 'Class'), 'Email');
      assert.match(text(c, 'Commands', 'Add', 'ApplicationData', 'Subject'), /MBX2007-NY/);

      const refused = await eas('FolderSync', f('FolderSync', f('SyncKey', '0')), {
        version: 2007,
        asVersion: '14.1',
      });
      assert.equal(refused.status, 400, '2007 does not speak 14.1');
      assert.match(refused.headers.get('x-lab-reason') ?? '', /14\.1/);
    });

    test('Settings: UserInformation per protocol version', async () => {
      const s = (tag: string, ...c: WbxmlElement[]): WbxmlElement => el('Settings', tag, ...c);
      const request = s(
        'Settings',
        s('UserInformation', s('Get')),
        s('DeviceInformation', s('Set', el('Settings', 'Model', 'Lab'))),
      );
      const v141 = await eas('Settings', request);
      assert.equal(text(v141.doc, 'Status'), '1');
      const account = at(v141.doc, 'UserInformation', 'Get', 'Accounts', 'Account');
      assert.equal(text(account, 'UserDisplayName'), 'Bob Example');
      assert.equal(text(account, 'EmailAddresses', 'PrimarySmtpAddress'), 'bob@o365info.com');
      assert.equal(text(v141.doc, 'DeviceInformation', 'Status'), '1');
      const v121 = await eas('Settings', request, { asVersion: '12.1' });
      assert.equal(
        text(v121.doc, 'UserInformation', 'Get', 'EmailAddresses', 'SMTPAddress'),
        'bob@o365info.com',
      );
    });

    const pingOf = (heartbeat: string): WbxmlElement =>
      el(
        'Ping',
        'Ping',
        el('Ping', 'HeartbeatInterval', heartbeat),
        el('Ping', 'Folders', el('Ping', 'Folder', el('Ping', 'Id', '1'), el('Ping', 'Class', 'Email'))),
      );

    test('Ping is held for HeartbeatInterval (capped), then answers Status 1', async () => {
      const start = performance.now();
      const reply = await eas('Ping', pingOf('480'), { device: 'PING1' });
      const elapsed = performance.now() - start;
      assert.equal(reply.status, 200);
      assert.equal(text(reply.doc, 'Status'), '1');
      // Node's timers run on a millisecond clock, hence the 1 ms of slack; no upper bound is asserted.
      assert.ok(elapsed >= holdMs - 1, `held ${elapsed.toFixed(1)} ms, at least ${holdMs} ms expected`);

      const start2 = performance.now();
      const repeated = await eas('Ping', undefined, { device: 'PING1' });
      assert.equal(text(repeated.doc, 'Status'), '1', 'an empty Ping reuses the cached heartbeat');
      assert.ok(performance.now() - start2 >= holdMs - 1);
      const fresh = await eas('Ping', undefined, { device: 'PING2' });
      assert.equal(text(fresh.doc, 'Status'), '3', 'an empty Ping with nothing cached');
    });

    test('a HeartbeatInterval out of 60..3540 gets Status 5 with the limit', async () => {
      const low = await eas('Ping', pingOf('10'), { device: 'PING3' });
      assert.equal(text(low.doc, 'Status'), '5');
      assert.equal(text(low.doc, 'HeartbeatInterval'), '60');
      const high = await eas('Ping', pingOf('3600'), { device: 'PING3' });
      assert.equal(text(high.doc, 'HeartbeatInterval'), '3540');
      const bad = await eas('Ping', pingOf('soon'), { device: 'PING3' });
      assert.equal(text(bad.doc, 'Status'), '4');
    });

    test('releasePings() answers every held Ping now (Status 1) and the store holds the next one', async () => {
      /** A Ping to the long-holding store, and its answer's Status. */
      const ping = (device: string): Promise<string | undefined> => {
        const req = request(
          `${base}/Microsoft-Server-ActiveSync?Cmd=Ping&User=bob&DeviceId=${device}&DeviceType=SmartPhone`,
          {
            method: 'POST',
            agent: false,
            headers: {
              'content-type': 'application/vnd.ms-sync.wbxml',
              'x-test-store': 'long',
              'ms-asprotocolversion': '14.1',
            },
          },
        );
        const status = new Promise<string | undefined>((resolve, reject) => {
          req.on('error', reject);
          req.on('response', (res: IncomingMessage) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(textOf(childElement(decodeWbxml(Buffer.concat(chunks)), 'Status'))));
            res.on('error', reject);
          });
        });
        req.end(encodeWbxml(pingOf('3540')));
        return status;
      };
      const first = [ping('RELEASE1'), ping('RELEASE2')];
      await waitFor(() => longStore.pendingPings === 2, 'both Pings to be held');
      assert.equal(longStore.releasePings(), 2);
      assert.deepEqual(await Promise.all(first), ['1', '1']);
      // Not closed: the next Ping is held again, until released.
      const next = ping('RELEASE1');
      await waitFor(() => longStore.pendingPings === 1, 'the next Ping to be held');
      assert.equal(longStore.releasePings(), 1);
      assert.equal(await next, '1');
      assert.equal(longStore.pendingPings, 0);
    });

    test('a client that disconnects drops its held Ping; close() answers held Pings now', async () => {
      const post = (): ReturnType<typeof request> =>
        request(
          `${base}/Microsoft-Server-ActiveSync?Cmd=Ping&User=bob&DeviceId=PING4&DeviceType=SmartPhone`,
          {
            method: 'POST',
            agent: false,
            headers: {
              'content-type': 'application/vnd.ms-sync.wbxml',
              'x-test-store': 'long',
              'ms-asprotocolversion': '14.1',
            },
          },
        );
      const gone = post();
      gone.on('error', () => {});
      gone.end(encodeWbxml(pingOf('3540')));
      await waitFor(() => longStore.pendingPings === 1, 'the Ping to be held');
      gone.destroy();
      await waitFor(() => longStore.pendingPings === 0, 'the dropped Ping to be released');

      const held = post();
      const answer = new Promise<IncomingMessage>((resolve, reject) => {
        held.on('response', resolve);
        held.on('error', reject);
      });
      held.end(encodeWbxml(pingOf('3540')));
      await waitFor(() => longStore.pendingPings === 1, 'the second Ping to be held');
      longStore.close();
      assert.equal(longStore.pendingPings, 0);
      const res = await answer;
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      assert.equal(res.statusCode, 200);
      assert.equal(textOf(childElement(decodeWbxml(Buffer.concat(chunks)), 'Status')), '1');
    });

    test('malformed requests get 400: bad WBXML, unknown command, mismatched body, bad query', async () => {
      const f = el('FolderHierarchy', 'FolderSync', el('FolderHierarchy', 'SyncKey', '0'));
      const garbage = Buffer.from('3ab10dc6d312e9cb062487e1351d75b82838ef8b', 'hex');
      for (const [what, reply] of [
        ['random bytes', await eas('FolderSync', garbage)],
        ['truncated WBXML', await eas('FolderSync', Buffer.from('03016a000007565203300001', 'hex'))],
        ['unknown command', await eas('Bogus', f)],
        ['command not simulated', await eas('Search', f)],
        ['body of another command', await eas('Sync', f)],
        ['no body', await eas('FolderSync')],
        ['no DeviceId', await eas('FolderSync', f, { query: 'Cmd=FolderSync&User=bob&DeviceType=Phone' })],
      ] as const) {
        assert.equal(reply.status, 400, what);
        assert.equal(reply.doc, undefined, `${what}: no body`);
        assert.ok(reply.headers.get('x-lab-reason'), `${what}: the simulator says why`);
      }
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('EWS impersonation: the header read, the data plane asked, its verdict obeyed', () => {
    const getInbox = (header: string): string =>
      '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ' +
      'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" ' +
      'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">' +
      `<soap:Header>${header}</soap:Header><soap:Body>` +
      '<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>' +
      '<t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>';
    const sid = (inner: string): string =>
      `<t:ExchangeImpersonation><t:ConnectingSID>${inner}</t:ConnectingSID></t:ExchangeImpersonation>`;
    const post = async (
      header: string,
      headers: Record<string, string>,
    ): Promise<{ status: number; xml: string }> => {
      const res = await fetch(`${base}/EWS/Exchange.asmx`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', ...headers },
        body: getInbox(header),
      });
      return { status: res.status, xml: await res.text() };
    };

    test('allowed: served as the impersonated mailbox’s owner, even where the caller was denied', async () => {
      const before = impersonated.length;
      const { status, xml } = await post(sid('<t:SmtpAddress> carol.white@o365info.com </t:SmtpAddress>'), {
        'x-test-impersonate': 'allowed',
        'x-test-access': 'denied',
      });
      assert.equal(status, 200, xml);
      assert.deepEqual(impersonated.slice(before), [
        { kind: 'SmtpAddress', value: 'carol.white@o365info.com' },
      ]);
      const id = /<t:FolderId Id="([^"]+)"/.exec(xml)?.[1] ?? '';
      assert.match(Buffer.from(id, 'base64').toString(), /:carol@o365info\.com:inbox$/);
    });

    for (const [kind, code] of [
      ['no-role', 'ErrorImpersonationDenied'],
      ['unknown', 'ErrorNonExistentMailbox'],
      ['out-of-scope', 'ErrorImpersonateUserDenied'],
      ['not-anchor', 'ErrorInvalidExchangeImpersonationHeaderData'],
      ['unavailable', 'ErrorADUnavailable'],
    ] as const) {
      test(`${kind}: a ${code} fault, HTTP 500, nothing of any mailbox`, async () => {
        const { status, xml } = await post(
          sid('<t:PrimarySmtpAddress>carol@o365info.com</t:PrimarySmtpAddress>'),
          {
            'x-test-impersonate': kind,
          },
        );
        assert.equal(status, 500);
        assert.match(xml, new RegExp(`<faultcode xmlns:a="[^"]+">a:${code}</faultcode>`));
        assert.doesNotMatch(xml, /NoError|FolderId/);
      });
    }

    test('no decision offered (another protocol’s context): ErrorImpersonationDenied, never served', async () => {
      const { status, xml } = await post(sid('<t:PrincipalName>carol@o365info.local</t:PrincipalName>'), {});
      assert.equal(status, 500);
      assert.match(xml, /a:ErrorImpersonationDenied/);
    });

    for (const [what, inner] of [
      ['no ConnectingSID form', ''],
      [
        'two forms',
        '<t:SID>S-1-5-21-1</t:SID><t:PrimarySmtpAddress>carol@o365info.com</t:PrimarySmtpAddress>',
      ],
      ['an unknown form', '<t:Login>carol</t:Login>'],
    ] as const) {
      test(`${what}: ErrorSchemaValidation, and the data plane is not asked`, async () => {
        const before = impersonated.length;
        const { status, xml } = await post(sid(inner), { 'x-test-impersonate': 'allowed' });
        assert.equal(status, 500);
        assert.match(xml, /a:ErrorSchemaValidation/);
        assert.equal(impersonated.length, before);
      });
    }
  });

  describe('EWS', () => {
    const envelope = (body: string, header = ''): string =>
      '<?xml version="1.0" encoding="utf-8"?>\n' +
      '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ' +
      'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" ' +
      'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">' +
      `<soap:Header><t:RequestServerVersion Version="Exchange2007_SP1"/>${header}</soap:Header>` +
      `<soap:Body>${body}</soap:Body></soap:Envelope>`;

    async function ews(
      body: string,
      version: ProductVersion = 2013,
    ): Promise<{ status: number; xml: string }> {
      const res = await fetch(`${base}/EWS/Exchange.asmx`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', 'x-test-version': String(version) },
        body,
      });
      assertServer(res.headers, version);
      if (res.status !== 413) assert.equal(res.headers.get('content-type'), 'text/xml; charset=utf-8');
      return { status: res.status, xml: await res.text() };
    }

    const getFolder =
      '<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>' +
      '<t:DistinguishedFolderId Id="inbox"/><t:DistinguishedFolderId Id="msgfolderroot"/></m:FolderIds></m:GetFolder>';

    test('GetFolder on 2013: ServerVersionInfo 15.0 and both folders', async () => {
      const { status, xml } = await ews(envelope(getFolder));
      assert.equal(status, 200);
      assert.match(
        xml,
        /<s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="0" [^>]*Version="Exchange2013_SP1"/,
      );
      assert.equal(xml.match(/ResponseClass="Success"/g)?.length, 2);
      assert.match(xml, /<t:DisplayName>Inbox<\/t:DisplayName><t:TotalCount>2<\/t:TotalCount>/);
      assert.match(xml, /<t:DisplayName>Top of Information Store<\/t:DisplayName>/);
      const id = /<t:FolderId Id="([^"]+)"/.exec(xml)?.[1] ?? '';
      assert.match(Buffer.from(id, 'base64').toString(), /MBX2013-NY:bob@o365info\.com:inbox/);

      const byId = await ews(
        envelope(
          `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:FolderId Id="${id}"/><t:FolderId Id="AAAA"/></m:FolderIds></m:GetFolder>`,
        ),
      );
      assert.match(
        byId.xml,
        /ResponseClass="Success"><m:ResponseCode>NoError<\/m:ResponseCode><m:Folders><t:Folder><t:FolderId [^>]*\/><\/t:Folder>/,
      );
      assert.match(byId.xml, /ErrorFolderNotFound/);
    });

    test('every version names its schema in ServerVersionInfo (2007: Exchange2007_SP1)', async () => {
      const expected: [ProductVersion, string, string][] = [
        [2007, '8', 'Exchange2007_SP1'],
        [2010, '14', 'Exchange2010_SP2'],
        [2013, '15', 'Exchange2013_SP1'],
        [2016, '15', 'V2017_07_11'],
        [2019, '15', 'V2017_07_11'],
      ];
      for (const [version, major, schema] of expected) {
        const { status, xml } = await ews(envelope(getFolder), version);
        assert.equal(status, 200);
        const info = /<h:ServerVersionInfo [^>]*\/>/.exec(xml)?.[0] ?? '';
        assert.match(info, new RegExp(`MajorVersion="${major}" `));
        assert.match(info, new RegExp(` Version="${schema}" `), `${version}: ${info}`);
      }
      const info2007 = /<h:ServerVersionInfo [^>]*\/>/.exec((await ews(envelope(getFolder), 2007)).xml)?.[0];
      assert.match(
        info2007 ?? '',
        /MajorVersion="8" MinorVersion="3" MajorBuildNumber="83" MinorBuildNumber="6"/,
      );
    });

    test('RequestServerVersion: a schema the server does not serve is ErrorInvalidServerVersion, so clients step down', async () => {
      const convert =
        '<m:ConvertId DestinationFormat="EntryId"><m:SourceIds>' +
        '<t:AlternateId Format="EwsId" Id="DUMMY" Mailbox="DUMMY"/></m:SourceIds></m:ConvertId>';
      const asking = (version: string): string =>
        envelope(convert).replace('Version="Exchange2007_SP1"', `Version="${version}"`);
      // exchangelib's probe order, newest first: 2007 refuses everything above Exchange2007_SP1.
      for (const version of ['Exchange2019', 'Exchange2016', 'Exchange2013_SP1', 'Exchange2010_SP2']) {
        const refused = await ews(asking(version), 2007);
        assert.equal(refused.status, 500, version);
        assert.match(refused.xml, /<faultcode xmlns:a="[^"]+types">a:ErrorInvalidServerVersion<\/faultcode>/);
        assert.match(refused.xml, /The specified server version is invalid\./);
      }
      for (const version of ['Exchange2007_SP1', 'Exchange2007'])
        assert.equal((await ews(asking(version), 2007)).status, 200);
      // 2013 serves up to Exchange2013_SP1.
      assert.equal((await ews(asking('Exchange2016'), 2013)).status, 500);
      const served = await ews(asking('Exchange2013_SP1'), 2013);
      assert.equal(served.status, 200);
      assert.match(served.xml, /<h:ServerVersionInfo [^>]*Version="Exchange2013_SP1"/);
      // No header: the first release of Exchange 2007, served by all.
      assert.equal(
        (await ews(envelope(convert).replace(/<t:RequestServerVersion[^>]*\/>/, ''), 2007)).status,
        200,
      );
      const noVersion = await ews(envelope(convert).replace(' Version="Exchange2007_SP1"', ''));
      assert.equal(noVersion.status, 500);
      assert.match(noVersion.xml, /ErrorSchemaValidation.*&#39;Version&#39; is missing/s);
    });

    test("ConvertId: exchangelib's probe is a per-item error; ids convert both ways with the mailbox's address", async () => {
      // exchangelib's version probe: an id that cannot exist, answered 200 with ServerVersionInfo.
      const probe = await ews(
        envelope(
          '<m:ConvertId DestinationFormat="EntryId"><m:SourceIds><t:AlternateId Format="EwsId" Id="DUMMY" Mailbox="DUMMY"/></m:SourceIds></m:ConvertId>',
        ),
        2007,
      );
      assert.equal(probe.status, 200);
      assert.match(probe.xml, /<h:ServerVersionInfo MajorVersion="8" [^>]*Version="Exchange2007_SP1"/);
      assert.match(
        probe.xml,
        /<m:ConvertIdResponseMessage ResponseClass="Error"><m:MessageText>Id is malformed\.<\/m:MessageText><m:ResponseCode>ErrorInvalidIdMalformed<\/m:ResponseCode>/,
      );

      // A real folder id, to HexEntryId and back; DavMail sends a made-up Mailbox and reads the real one.
      const folder = await ews(envelope(getFolder), 2007);
      const ewsId = /<t:FolderId Id="([^"]+)"/.exec(folder.xml)?.[1] ?? '';
      const convert = (format: string, id: string, to: string): Promise<{ status: number; xml: string }> =>
        ews(
          envelope(
            `<m:ConvertId DestinationFormat="${to}"><m:SourceIds><t:AlternateId Format="${format}" Id="${id}" Mailbox="blah@blah.com"/></m:SourceIds></m:ConvertId>`,
          ),
          2007,
        );
      const hex = await convert('EwsId', ewsId, 'HexEntryId');
      assert.equal(hex.status, 200);
      const alt =
        /<m:AlternateId xmlns:xsi="[^"]+" xsi:type="t:AlternateIdType" Format="HexEntryId" Id="([0-9A-F]+)" Mailbox="bob@o365info\.com"\/>/.exec(
          hex.xml,
        );
      assert.ok(alt, hex.xml);
      const back = await convert('HexEntryId', alt[1] ?? '', 'EwsId');
      assert.equal(/Format="EwsId" Id="([^"]+)" Mailbox="bob@o365info\.com"/.exec(back.xml)?.[1], ewsId);
      for (const to of ['EwsLegacyId', 'EntryId', 'StoreId', 'OwaId'])
        assert.match((await convert('EwsId', ewsId, to)).xml, /ResponseClass="Success"/, to);

      // Another server's id is not this mailbox's; formats outside IdFormatType are schema errors.
      const other = /<t:FolderId Id="([^"]+)"/.exec((await ews(envelope(getFolder), 2013)).xml)?.[1] ?? '';
      assert.match((await convert('EwsId', other, 'EntryId')).xml, /ErrorInvalidIdMalformed/);
      const badFormat = await convert('EwsId', ewsId, 'Base64');
      assert.equal(badFormat.status, 500);
      assert.match(badFormat.xml, /ErrorSchemaValidation.*DestinationFormat &#39;Base64&#39;/s);
    });

    test('GetFolder as exchangelib asks: root, then the inbox, IdOnly plus AdditionalProperties', async () => {
      const fields = [
        'ChildFolderCount',
        'DisplayName',
        'EffectiveRights',
        'FolderClass',
        'FolderId',
        'ParentFolderId',
        'PermissionSet',
        'TotalCount',
        'UnreadCount',
      ];
      const exchangelib = (id: string): string =>
        '<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>' +
        fields.map((f) => `<t:FieldURI FieldURI="folder:${f}"/>`).join('') +
        `</t:AdditionalProperties></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="${id}">` +
        '<t:Mailbox><t:EmailAddress>bob@o365info.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType>' +
        '<t:MailboxType>Mailbox</t:MailboxType></t:Mailbox></t:DistinguishedFolderId></m:FolderIds></m:GetFolder>';
      const header = '<t:TimeZoneContext><t:TimeZoneDefinition Id="UTC"/></t:TimeZoneContext>';
      const idOf = (xml: string, tag: string): string =>
        new RegExp(`<t:${tag} Id="([^"]+)"`).exec(xml)?.[1] ?? '';

      const root = await ews(envelope(exchangelib('root'), header), 2007);
      assert.equal(root.status, 200);
      assert.match(
        root.xml,
        /<t:DisplayName>Root<\/t:DisplayName><t:TotalCount>0<\/t:TotalCount><t:ChildFolderCount>1<\/t:ChildFolderCount>/,
      );
      assert.doesNotMatch(root.xml, /ParentFolderId|FolderClass/, 'the root has no parent and no class');
      const top = await ews(envelope(exchangelib('msgfolderroot'), header), 2007);
      assert.equal(idOf(top.xml, 'ParentFolderId'), idOf(root.xml, 'FolderId'));
      assert.match(top.xml, /<t:ChildFolderCount>7<\/t:ChildFolderCount>/);

      const inbox = await ews(envelope(exchangelib('inbox'), header), 2007);
      assert.equal(inbox.status, 200);
      assert.equal(idOf(inbox.xml, 'ParentFolderId'), idOf(top.xml, 'FolderId'));
      // Every asked-for property, in the order of the schema's FolderType.
      const order = [...inbox.xml.matchAll(/<t:(\w+)[ >/]/g)].map((m) => m[1]).filter((n) => n !== 'Folder');
      assert.deepEqual(
        order.filter((n) => fields.includes(n ?? '')),
        [
          'FolderId',
          'ParentFolderId',
          'FolderClass',
          'DisplayName',
          'TotalCount',
          'ChildFolderCount',
          'EffectiveRights',
          'PermissionSet',
          'UnreadCount',
        ],
      );
      assert.match(
        inbox.xml,
        /<t:FolderClass>IPF\.Note<\/t:FolderClass><t:DisplayName>Inbox<\/t:DisplayName><t:TotalCount>2<\/t:TotalCount>/,
      );
      assert.match(
        inbox.xml,
        /<t:EffectiveRights><t:CreateAssociated>true<\/t:CreateAssociated>.*<t:Read>true<\/t:Read><\/t:EffectiveRights>/,
      );
      assert.doesNotMatch(inbox.xml, /ViewPrivateItems/, 'Exchange 2007 has no ViewPrivateItems right');
      assert.match(
        inbox.xml,
        /<t:PermissionSet><t:Permissions><t:Permission><t:UserId><t:DistinguishedUser>Default<\/t:DistinguishedUser>.*<t:PermissionLevel>None<\/t:PermissionLevel><\/t:Permission>/,
      );
      assert.match(inbox.xml, /<t:UnreadCount>2<\/t:UnreadCount><\/t:Folder>/);
    });

    test('GetFolder shapes: Default, AllProperties (calendar folders on 2013), an unknown BaseShape', async () => {
      const shaped = (shape: string, id: string, extra = ''): string =>
        `<m:GetFolder><m:FolderShape><t:BaseShape>${shape}</t:BaseShape>${extra}</m:FolderShape>` +
        `<m:FolderIds><t:DistinguishedFolderId Id="${id}"/></m:FolderIds></m:GetFolder>`;
      const byDefault = await ews(envelope(shaped('Default', 'inbox')));
      assert.match(
        byDefault.xml,
        /<t:Folder><t:FolderId [^>]*\/><t:DisplayName>Inbox<\/t:DisplayName><t:TotalCount>2<\/t:TotalCount><t:ChildFolderCount>0<\/t:ChildFolderCount><t:UnreadCount>2<\/t:UnreadCount><\/t:Folder>/,
      );
      const calendar = await ews(envelope(shaped('AllProperties', 'calendar')));
      assert.match(
        calendar.xml,
        /<t:CalendarFolder><t:FolderId [^>]*\/><t:ParentFolderId [^>]*\/><t:FolderClass>IPF\.Appointment<\/t:FolderClass>/,
      );
      assert.match(
        calendar.xml,
        /<t:ViewPrivateItems>true<\/t:ViewPrivateItems><\/t:EffectiveRights><t:SharingEffectiveRights>FullDetails<\/t:SharingEffectiveRights><\/t:CalendarFolder>/,
      );
      assert.doesNotMatch(
        calendar.xml,
        /UnreadCount|PermissionSet/,
        'no UnreadCount on calendars; permissions only when asked',
      );
      const permissions = await ews(
        envelope(
          shaped(
            'IdOnly',
            'calendar',
            '<t:AdditionalProperties><t:FieldURI FieldURI="folder:PermissionSet"/></t:AdditionalProperties>',
          ),
        ),
      );
      assert.match(
        permissions.xml,
        /<t:PermissionSet><t:CalendarPermissions><t:CalendarPermission>.*<t:CalendarPermissionLevel>None<\/t:CalendarPermissionLevel>/,
      );
      const bad = await ews(envelope(shaped('Everything', 'inbox')));
      assert.equal(bad.status, 500);
      assert.match(bad.xml, /ErrorSchemaValidation.*BaseShape &#39;Everything&#39;/s);
    });

    test("ResolveNames finds the mailbox's own entry, and nothing else", async () => {
      const hit = await ews(
        envelope(
          '<m:ResolveNames ReturnFullContactData="true"><m:UnresolvedEntry>bob</m:UnresolvedEntry></m:ResolveNames>',
        ),
      );
      assert.equal(hit.status, 200);
      assert.match(
        hit.xml,
        /<t:Mailbox><t:Name>Bob Example<\/t:Name><t:EmailAddress>bob@o365info\.com<\/t:EmailAddress><t:RoutingType>SMTP<\/t:RoutingType>/,
      );
      const smtp = await ews(
        envelope(
          '<m:ResolveNames><m:UnresolvedEntry>SMTP:bob@o365info.com</m:UnresolvedEntry></m:ResolveNames>',
        ),
      );
      assert.match(smtp.xml, /ResponseClass="Success"/);
      assert.match(
        hit.xml,
        /<\/t:Mailbox><t:Contact><t:DisplayName>Bob Example<\/t:DisplayName>.*<t:ContactSource>ActiveDirectory<\/t:ContactSource><\/t:Contact>/,
      );
      const brief = await ews(
        envelope(
          '<m:ResolveNames ReturnFullContactData="false" SearchScope="ActiveDirectory"><m:UnresolvedEntry>bob</m:UnresolvedEntry></m:ResolveNames>',
        ),
      );
      assert.match(brief.xml, /<\/t:Mailbox><\/t:Resolution>/, 'ews-javascript-api asks without the contact');
      const miss = await ews(
        envelope('<m:ResolveNames><m:UnresolvedEntry>carol</m:UnresolvedEntry></m:ResolveNames>'),
      );
      assert.equal(miss.status, 200, 'a per-item error is not a fault (§4.6)');
      assert.match(miss.xml, /ResponseClass="Error".*ErrorNameResolutionNoResults/);
    });

    test('GetUserAvailability: one empty FreeBusy answer per mailbox', async () => {
      const mailbox = (a: string): string =>
        `<t:MailboxData><t:Email><t:Address>${a}</t:Address></t:Email><t:AttendeeType>Required</t:AttendeeType></t:MailboxData>`;
      const { status, xml } = await ews(
        envelope(
          `<m:GetUserAvailabilityRequest><m:MailboxDataArray>${mailbox('bob@o365info.com')}${mailbox('alice@o365info.com')}</m:MailboxDataArray>` +
            '<t:FreeBusyViewOptions><t:TimeWindow><t:StartTime>2026-01-05T00:00:00</t:StartTime><t:EndTime>2026-01-06T00:00:00</t:EndTime></t:TimeWindow>' +
            '<t:RequestedView>FreeBusy</t:RequestedView></t:FreeBusyViewOptions></m:GetUserAvailabilityRequest>',
        ),
      );
      assert.equal(status, 200);
      assert.equal(xml.match(/<m:FreeBusyResponse>/g)?.length, 2);
      assert.match(xml, /<t:FreeBusyViewType>FreeBusy<\/t:FreeBusyViewType>/);
      assert.doesNotMatch(xml, /CalendarEvent/);
    });

    test('another operation is an ErrorInvalidRequest fault (HTTP 500)', async () => {
      const { status, xml } = await ews(envelope('<m:FindItem Traversal="Shallow"/>'));
      assert.equal(status, 500);
      assert.match(xml, /<s:Fault><faultcode xmlns:a="[^"]+types">a:ErrorInvalidRequest<\/faultcode>/);
      assert.match(xml, /<e:ResponseCode xmlns:e="[^"]+errors">ErrorInvalidRequest<\/e:ResponseCode>/);
      assert.match(xml, /FindItem/);
    });

    test('malformed XML, a DTD, or no envelope is an ErrorSchemaValidation fault (HTTP 500)', async () => {
      const unclosed = await ews(
        envelope('<m:GetFolder>\n  <m:FolderIds>').replace('</soap:Body></soap:Envelope>', ''),
      );
      assert.equal(unclosed.status, 500);
      assert.match(unclosed.xml, /a:ErrorSchemaValidation<\/faultcode>/);
      assert.match(unclosed.xml, /<t:LineNumber>\d+<\/t:LineNumber><t:LinePosition>\d+<\/t:LinePosition>/);

      const mismatched = await ews(envelope('<m:GetFolder></m:ResolveNames>'));
      assert.match(mismatched.xml, /ErrorSchemaValidation.*unexpected close tag/s);

      const bomb =
        '<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>' +
        envelope('<m:ResolveNames><m:UnresolvedEntry>&lol2;</m:UnresolvedEntry></m:ResolveNames>').replace(
          /^<\?xml[^>]*>\n/,
          '',
        );
      const dtd = await ews(bomb);
      assert.equal(dtd.status, 500);
      assert.match(dtd.xml, /ErrorSchemaValidation.*DTDs are prohibited/s);

      const entity = await ews(
        envelope('<m:ResolveNames><m:UnresolvedEntry>&ext;</m:UnresolvedEntry></m:ResolveNames>'),
      );
      assert.match(entity.xml, /ErrorSchemaValidation.*undefined entity/s);

      const unbound = await ews(envelope('<x:GetFolder/>'));
      assert.match(unbound.xml, /ErrorSchemaValidation.*unbound namespace prefix: &#34;x&#34;/s);

      const notSoap = await ews(
        '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"/>',
      );
      assert.equal(notSoap.status, 500);
      assert.match(notSoap.xml, /ErrorSchemaValidation/);
    });

    test('a body over 1 MiB is refused; only POST to Exchange.asmx is EWS', async () => {
      const big = await ews(
        envelope(
          `<m:ResolveNames><m:UnresolvedEntry>${'x'.repeat(MiB)}</m:UnresolvedEntry></m:ResolveNames>`,
        ),
      );
      assert.equal(big.status, 413);
      const get = await fetch(`${base}/EWS/Exchange.asmx`);
      assert.equal(get.status, 405);
      assert.equal(get.headers.get('allow'), 'POST');
      const wsdl = await fetch(`${base}/EWS/Services.wsdl`);
      assert.equal(wsdl.status, 404);
      assertServer(wsdl.headers, 2013);
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('OWA and ECP', () => {
    const get = (path: string, version: ProductVersion): Promise<Response> =>
      fetch(`${base}${path}`, { headers: { 'x-test-version': String(version) } });

    for (const [version, title] of [
      [2007, 'Microsoft Exchange - Outlook Web Access'],
      [2010, 'Outlook Web App'],
      [2013, 'Outlook Web App'],
    ] as const) {
      test(`OWA on ${version}: "${title}" names the user, server and version`, async () => {
        const res = await get('/owa/', version);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
        assertServer(res.headers, version);
        const html = await res.text();
        assert.match(html, new RegExp(`<title>${title}</title>`));
        assert.match(html, /Bob Example &lt;bob@o365info\.com&gt;/);
        assert.match(html, new RegExp(`Mailbox server MBX${version}-NY, Exchange Server ${version}`));
      });
    }

    test('ECP on 2013 is the Exchange admin center; 2007 has no ECP', async () => {
      const ecp = await get('/ecp/', 2013);
      assert.equal(ecp.status, 200);
      assert.match(await ecp.text(), /<title>Exchange admin center<\/title>[^]*MBX2013-NY/);
      const none = await get('/ecp/', 2007);
      assert.equal(none.status, 404);
      assertServer(none.headers, 2007);
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('Outlook Anywhere', () => {
    test('RPC_IN_DATA: a 50 MiB upload is counted and hashed as it streams', async () => {
      const total = 50 * MiB;
      const chunk = Buffer.alloc(MiB).map((_, i) => (i * 7 + 3) & 0xff);
      const expected = createHash('sha256');
      const req = request(`${base}/rpc/rpcproxy.dll?mbx2013-ny.o365info.local:6001`, {
        method: 'RPC_IN_DATA',
        agent: false,
        headers: { 'content-type': 'application/rpc', 'content-length': total },
      });
      const response = new Promise<IncomingMessage>((resolve, reject) => {
        req.on('response', resolve);
        req.on('error', reject);
      });
      for (let sent = 0; sent < total; sent += chunk.length) {
        expected.update(chunk);
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
      const res = await response;
      let body = '';
      for await (const c of res) body += String(c);
      assert.equal(res.statusCode, 200);
      assert.equal(res.statusMessage, 'Success');
      assert.equal(res.headers['content-type'], 'application/rpc');
      assert.equal(res.headers['content-length'], String(Buffer.byteLength(body)));
      assertServer(res.headers, 2013);
      assert.equal(body, `RPC_IN_DATA bytes=${total} sha256=${expected.digest('hex')}\r\n`);
    });

    const out = (bytes: number | undefined, id: string): Promise<IncomingMessage> =>
      new Promise((resolve, reject) => {
        const req = request(`${base}/rpc/rpcproxy.dll?mbx2013-ny.o365info.local:6001`, {
          method: 'RPC_OUT_DATA',
          agent: false,
          headers: {
            accept: 'application/rpc',
            'content-length': 76,
            'x-test-id': id,
            ...(bytes === undefined ? {} : { [rpcOutBytesHeader]: String(bytes) }),
          },
        });
        req.on('response', resolve);
        req.on('error', reject);
        req.end(Buffer.alloc(76));
      });

    test('RPC_OUT_DATA: a 20 MiB download of the pattern, with its Content-Length', async () => {
      const total = 20 * MiB;
      const res = await out(total, 'out-20');
      assert.equal(res.statusCode, 200);
      assert.equal(res.statusMessage, 'Success');
      assert.equal(res.headers['content-type'], 'application/rpc');
      assert.equal(res.headers['content-length'], String(total));
      assertServer(res.headers, 2013);
      let received = 0;
      let wrong = -1;
      for await (const c of res as AsyncIterable<Buffer>) {
        for (let i = 0; i < c.length && wrong < 0; i++)
          if (c[i] !== rpcOutDataByte(received + i)) wrong = received + i;
        received += c.length;
      }
      assert.equal(received, total);
      assert.equal(wrong, -1, `pattern broken at offset ${wrong}`);
      await waitFor(() => handled.has('out-20'), 'the store to finish');
      assert.equal(handled.get('out-20')?.finished, true);
    });

    test('RPC_OUT_DATA defaults to 128 KiB; a client going away stops the stream', async () => {
      const small = await out(undefined, 'out-default');
      let received = 0;
      for await (const c of small as AsyncIterable<Buffer>) received += c.length;
      assert.equal(received, 128 * 1024);

      const huge = await out(2 * 1024 * MiB, 'out-abandoned');
      assert.equal(huge.headers['content-length'], String(2 * 1024 * MiB));
      let got = 0;
      await new Promise<void>((resolve) => {
        huge.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= MiB) {
            huge.destroy();
            resolve();
          }
        });
      });
      await waitFor(() => handled.has('out-abandoned'), 'the stream to stop after the client left');
      assert.equal(handled.get('out-abandoned')?.finished, false);
    });

    test('a bad x-lab-out-bytes is 400; other methods are 405', async () => {
      const bad = await fetch(`${base}/rpc/rpcproxy.dll?x:6001`, {
        method: 'RPC_OUT_DATA',
        headers: { [rpcOutBytesHeader]: 'lots' },
      });
      assert.equal(bad.status, 400);
      const get = await fetch(`${base}/rpc/rpcproxy.dll?x:6001`);
      assert.equal(get.status, 405);
      assert.equal(get.headers.get('allow'), 'RPC_IN_DATA, RPC_OUT_DATA');
      assertServer(get.headers, 2013);
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('MAPI/HTTP', () => {
    const mapi = (requestType: string, version: ProductVersion = 2013): Promise<Response> =>
      fetch(`${base}/mapi/emsmdb/?MailboxId=7f1d5c8e-0000-4000-8000-000000000001@o365info.com`, {
        method: 'POST',
        headers: {
          'content-type': 'application/mapi-http',
          'x-requesttype': requestType,
          'x-requestid': '{C715155F-2BE8-44E0-BD34-2960065754C8}:12',
          'x-clientinfo': '{2F94A2BF-A2E6-4CCC-BF98-B5F22C542226}',
          'x-test-version': String(version),
        },
        body: new Uint8Array(32),
      });

    test('Execute: echoed headers, X-ResponseCode 0, a chunked PROCESSING/DONE body', async () => {
      const res = await mapi('Execute');
      assert.equal(res.status, 200);
      assertServer(res.headers, 2013);
      assert.equal(res.headers.get('content-type'), 'application/mapi-http');
      assert.equal(res.headers.get('transfer-encoding'), 'chunked');
      assert.equal(res.headers.get('content-length'), null);
      assert.equal(res.headers.get('x-requesttype'), 'Execute');
      assert.equal(res.headers.get('x-requestid'), '{C715155F-2BE8-44E0-BD34-2960065754C8}:12');
      assert.equal(res.headers.get('x-clientinfo'), '{2F94A2BF-A2E6-4CCC-BF98-B5F22C542226}');
      assert.equal(res.headers.get('x-responsecode'), '0');
      assert.equal(res.headers.get('x-serverapplication'), 'Exchange/15.00.1497.002');
      const body = Buffer.from(await res.arrayBuffer());
      const text = body.toString('latin1');
      assert.ok(
        text.startsWith('PROCESSING\r\nDONE\r\nX-ResponseCode: 0\r\n'),
        JSON.stringify(text.slice(0, 40)),
      );
      const end = body.indexOf('\r\n\r\n');
      assert.deepEqual(
        [...body.subarray(end + 4)],
        new Array(20).fill(0),
        'StatusCode, ErrorCode, Flags, sizes: 0',
      );
    });

    test('Connect sets the session cookies; 2007 and 2010 have no MAPI/HTTP', async () => {
      const connect = await mapi('Connect');
      assert.match(
        connect.headers.getSetCookie().join('\n'),
        /MapiContext=[0-9a-f]+;[^\n]*\nMapiSequence=1;/,
      );
      const body = Buffer.from(await connect.arrayBuffer());
      assert.ok(body.includes(Buffer.from('Bob Example\0', 'utf16le')), 'the display name, UTF-16LE');
      for (const version of [2007, 2010] as const) {
        const res = await mapi('Execute', version);
        assert.equal(res.status, 404, String(version));
        assertServer(res.headers, version);
      }
    });
  });

  // -------------------------------------------------------------------------------------------------
  describe('OAB and Autodiscover', () => {
    test('the OAB manifest; other OAB files and Autodiscover are not the store’s', async () => {
      const guid = '3f1e0a4c-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
      const res = await fetch(`${base}/OAB/${guid}/oab.xml`);
      assert.equal(res.status, 200);
      assertServer(res.headers, 2013);
      assert.equal(res.headers.get('content-type'), 'text/xml; charset=utf-8');
      const xml = await res.text();
      assert.match(
        xml,
        new RegExp(`^<\\?xml version="1.0" encoding="UTF-8"\\?>\\n<OAB>\\n<OAL id="${guid}"`),
      );
      assert.match(
        xml,
        new RegExp(`<Full seq="1" ver="32" [^>]*SHA="[0-9a-f]{40}">${guid}-data-1\\.lzx</Full>`),
      );
      assert.equal((await fetch(`${base}/OAB/${guid}/${guid}-data-1.lzx`)).status, 404);
      const auto = await fetch(`${base}/Autodiscover/Autodiscover.xml`, { method: 'POST', body: '<x/>' });
      assert.equal(auto.status, 404);
      assertServer(auto.headers, 2013);
    });
  });
});
