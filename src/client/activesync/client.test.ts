/**
 * The client's HTTP behaviour against scripted servers (undici MockAgent): the two Provision phases and
 * the keys sent after them, a server without policy keys (SOGo), version negotiation, 451 X-MS-Location
 * (followed, remembered, bounded), 449 and Status 142 (provision once and retry), typed errors for 401 /
 * 403 / 503, Autodiscover redirects (address, URL, HTTP 302, the limit of 10), and no credential anywhere.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MockAgent } from 'undici';
import type { WbxmlElement, WbxmlNode } from '../../codec/wbxml.ts';
import { decodeWbxml, encodeWbxml, textOf, childElement, wbxmlElement as el } from '../../codec/wbxml.ts';
import type { ActiveSyncRequest } from '../../core/protocols/activesync.ts';
import { parseActiveSyncQuery } from '../../core/protocols/activesync.ts';
import { isInvalid } from '../../core/protocols/request-head.ts';
import type { ActiveSyncClientOptions, ActiveSyncStep } from './client.ts';
import { ActiveSyncClient, userAgent } from './client.ts';
import type { ActiveSyncClientError } from './errors.ts';
import { ActiveSyncAuthError, ActiveSyncHttpError, ActiveSyncStatusError } from './errors.ts';

const password = 'S3cret-Passw0rd!';

/** A request as the fake server saw it. */
interface Seen {
  readonly origin: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** The decoded WBXML body, when there is one. */
  readonly doc?: WbxmlElement;
  /** The command line (ActiveSync POSTs). */
  readonly line?: ActiveSyncRequest;
}

interface Reply {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array | string | WbxmlElement;
}

/** A scripted server for `origins`: `handle` answers each request. */
function fakeServer(
  origins: readonly string[],
  handle: (r: Seen) => Reply,
): { dispatcher: MockAgent; seen: Seen[] } {
  const dispatcher = new MockAgent();
  dispatcher.disableNetConnect();
  const seen: Seen[] = [];
  for (const origin of origins) {
    dispatcher
      .get(origin)
      .intercept({ path: () => true, method: () => true })
      .reply((opts) => {
        const headers = Object.fromEntries(
          Object.entries((opts.headers ?? {}) as Record<string, string>).map(([k, v]) => [
            k.toLowerCase(),
            String(v),
          ]),
        );
        const raw = opts.body;
        const body =
          typeof raw === 'string'
            ? new TextEncoder().encode(raw)
            : raw instanceof Uint8Array
              ? raw
              : new Uint8Array();
        const [path = '', query = ''] = opts.path.split('?');
        const isEas = opts.method === 'POST' && /^\/microsoft-server-activesync/i.test(path);
        const line = isEas
          ? parseActiveSyncQuery({ method: 'POST', host: '', path, query, headers })
          : undefined;
        const r: Seen = {
          origin,
          method: opts.method,
          path: opts.path,
          headers,
          body,
          ...(isEas && body.length > 0 ? { doc: decodeWbxml(body) } : {}),
          ...(line && !isInvalid(line) ? { line } : {}),
        };
        seen.push(r);
        const reply = handle(r);
        const data =
          reply.body === undefined
            ? ''
            : typeof reply.body === 'string' || reply.body instanceof Uint8Array
              ? Buffer.from(reply.body)
              : Buffer.from(encodeWbxml(reply.body));
        return { statusCode: reply.status, data, responseOptions: { headers: reply.headers ?? {} } };
      })
      .persist();
  }
  return { dispatcher, seen };
}

const n =
  (ns: Parameters<typeof el>[0]) =>
  (tag: string, ...c: (WbxmlNode | number)[]) =>
    el(ns, tag, ...c);
const a = n('AirSync');
const f = n('FolderHierarchy');
const p = n('Provision');
const e = n('Email');

const options = (versions = '2.5,12.0,12.1,14.0,14.1'): Reply => ({
  status: 200,
  headers: {
    'ms-asprotocolversions': versions,
    'ms-asprotocolcommands': 'Sync,FolderSync,Ping,Provision,Settings',
  },
});
const folderSyncAnswer = f(
  'FolderSync',
  f('Status', 1),
  f('SyncKey', 'fs1'),
  f(
    'Changes',
    f('Count', 2),
    f('Add', f('ServerId', 'in'), f('ParentId', 0), f('DisplayName', 'Inbox'), f('Type', 2)),
    f('Add', f('ServerId', 'cal'), f('ParentId', 0), f('DisplayName', 'Calendar'), f('Type', 8)),
  ),
);
const syncAnswer = (key: string, ...commands: WbxmlElement[]): WbxmlElement =>
  a(
    'Sync',
    a(
      'Collections',
      a(
        'Collection',
        a('SyncKey', key),
        a('CollectionId', 'in'),
        a('Status', 1),
        ...(commands.length ? [a('Commands', ...commands)] : []),
      ),
    ),
  );
const message = (id: string, subject: string): WbxmlElement =>
  a('Add', a('ServerId', id), a('ApplicationData', e('From', 'x@example.com'), e('Subject', subject)));

/** A whole mailbox server: two-phase Provision with keys 111 (temporary) and 222 (final), one message. */
function exchangeLike(r: Seen, o: { policyKeys?: boolean } = {}): Reply {
  if (r.method === 'OPTIONS') return options();
  const doc = r.doc;
  switch (r.line?.cmd) {
    case 'Provision': {
      const policy = doc && childElement(childElement(doc, 'Policies') as WbxmlElement, 'Policy');
      const acked = policy && textOf(childElement(policy, 'PolicyKey'));
      const type = p('PolicyType', 'MS-EAS-Provisioning-WBXML');
      if (o.policyKeys === false)
        return {
          status: 200,
          body: p('Provision', p('Status', 1), p('Policies', p('Policy', type, p('Status', 2)))),
        };
      if (acked)
        return {
          status: 200,
          body: p(
            'Provision',
            p('Status', 1),
            p('Policies', p('Policy', type, p('Status', acked === '111' ? 1 : 5), p('PolicyKey', '222'))),
          ),
        };
      return {
        status: 200,
        body: p(
          'Provision',
          p('Status', 1),
          p(
            'Policies',
            p(
              'Policy',
              type,
              p('Status', 1),
              p('PolicyKey', '111'),
              p('Data', p('EASProvisionDoc', p('AllowCamera', 1))),
            ),
          ),
        ),
      };
    }
    case 'FolderSync':
      return { status: 200, body: folderSyncAnswer };
    case 'Sync': {
      const key = textOf(
        childElement(
          childElement(
            childElement(doc as WbxmlElement, 'Collections') as WbxmlElement,
            'Collection',
          ) as WbxmlElement,
          'SyncKey',
        ),
      );
      if (key === '0') return { status: 200, body: syncAnswer('s1') };
      if (key === 's1') return { status: 200, body: syncAnswer('s2', message('in:1', 'Hello')) };
      return { status: 200 }; // no changes: an empty 200 (SOGo)
    }
    default:
      return { status: 400 };
  }
}

const client = (dispatcher: MockAgent, o: Partial<ActiveSyncClientOptions> = {}): ActiveSyncClient =>
  new ActiveSyncClient({
    email: 'bob@example.com',
    password,
    deviceId: 'UNIT0001',
    dispatcher,
    url: 'https://mail.example.com/Microsoft-Server-ActiveSync',
    ...o,
  });

/** No password and no Basic token anywhere in what the client kept or threw. */
function assertNoCredential(...things: unknown[]): void {
  const token = Buffer.from(`bob@example.com:${password}`).toString('base64');
  for (const t of things) {
    const text =
      t instanceof Error ? `${t.message} ${t.stack ?? ''} ${JSON.stringify(t)}` : JSON.stringify(t);
    assert.ok(!text.includes(password), 'no password');
    assert.ok(!text.includes(token), 'no Basic token');
  }
}

describe('a first session', () => {
  test('OPTIONS negotiates, Provision runs in two phases, later commands carry the final key', async () => {
    const { dispatcher, seen } = fakeServer(['https://mail.example.com'], (r) => exchangeLike(r));
    const steps: ActiveSyncStep[] = [];
    const c = client(dispatcher, { protocolVersion: '16.1', onStep: (s) => steps.push(s) });
    const s = await c.firstSession();
    assert.equal(s.protocolVersion, '14.1', 'the newest version both speak');
    assert.deepEqual(s.provision, {
      phases: 2,
      policyStatus: 1,
      policy: { AllowCamera: '1' },
      remoteWipe: false,
      policyKey: '222',
    });
    assert.equal(s.inbox.serverId, 'in');
    assert.deepEqual(
      s.items.map((i) => [i.serverId, i.subject]),
      [['in:1', 'Hello']],
    );
    assert.equal(s.inboxSyncKey, 's2');
    assert.deepEqual(
      s.steps.map((x) => x.command),
      ['OPTIONS', 'Provision', 'Provision', 'FolderSync', 'Sync', 'Sync'],
    );
    assert.deepEqual(steps, s.steps, 'onStep saw each exchange');
    const [opts, prov1, prov2, folderSync] = seen;
    assert.equal(opts?.method, 'OPTIONS');
    assert.equal(opts?.path, '/Microsoft-Server-ActiveSync');
    assert.equal(prov1?.headers['x-ms-policykey'], undefined, 'no key on the first Provision');
    assert.ok(
      prov1?.doc && childElement(prov1.doc, 'DeviceInformation', 'Settings'),
      '14.1 sends DeviceInformation',
    );
    assert.equal(prov2?.headers['x-ms-policykey'], '111', 'the acknowledgement carries the temporary key');
    assert.equal(folderSync?.headers['x-ms-policykey'], '222');
    for (const r of seen) {
      assert.equal(r.headers['user-agent'], userAgent);
      assert.match(r.headers['authorization'] ?? '', /^Basic /);
      if (r.method === 'POST') {
        assert.equal(r.headers['content-type'], 'application/vnd.ms-sync.wbxml');
        assert.equal(r.headers['ms-asprotocolversion'], '14.1');
        assert.equal(r.line?.user, 'bob@example.com');
        assert.equal(r.line?.deviceId, 'UNIT0001');
      }
    }
    assertNoCredential(s, c);
    await dispatcher.close();
  });

  test('a server without policy keys (SOGo): one phase, no X-MS-PolicyKey after it, an empty 200 is "no changes"', async () => {
    const { dispatcher, seen } = fakeServer(['https://mail.example.com'], (r) =>
      exchangeLike(r, { policyKeys: false }),
    );
    const c = client(dispatcher);
    const s = await c.firstSession();
    assert.deepEqual(s.provision, { phases: 1, policyStatus: 2, remoteWipe: false });
    assert.ok(seen.every((r) => r.headers['x-ms-policykey'] === undefined));
    const again = await c.sync('in', s.inboxSyncKey);
    assert.deepEqual(again, {
      collectionId: 'in',
      syncKey: 's2',
      status: 1,
      items: [],
      moreAvailable: false,
      empty: true,
    });
    await dispatcher.close();
  });

  test('the base64 form: no version or key headers; the query carries both', async () => {
    const { dispatcher, seen } = fakeServer(['https://mail.example.com'], (r) => exchangeLike(r));
    await client(dispatcher, { queryForm: 'base64' }).firstSession();
    const posts = seen.filter((r) => r.method === 'POST');
    assert.ok(
      posts.every(
        (r) => r.headers['ms-asprotocolversion'] === undefined && r.headers['x-ms-policykey'] === undefined,
      ),
    );
    assert.ok(posts.every((r) => r.line?.form === 'base64' && r.line.protocolVersion === '14.1'));
    assert.deepEqual(
      posts.map((r) => r.line?.policyKey),
      [undefined, '111', '222', '222', '222'],
    );
    await dispatcher.close();
  });

  test('a server that offers only versions this client does not speak', async () => {
    const { dispatcher } = fakeServer(['https://mail.example.com'], () => options('2.0,2.5,12.0'));
    await assert.rejects(
      client(dispatcher).options(),
      (err: ActiveSyncClientError) => err.kind === 'protocol' && /12\.0/.test(err.message),
    );
    await dispatcher.close();
  });

  test('a folder hierarchy without an Inbox', async () => {
    const { dispatcher } = fakeServer(['https://mail.example.com'], (r) =>
      r.line?.cmd === 'FolderSync'
        ? {
            status: 200,
            body: f('FolderSync', f('Status', 1), f('SyncKey', '1'), f('Changes', f('Count', 0))),
          }
        : exchangeLike(r),
    );
    await assert.rejects(client(dispatcher).firstSession(), /no Inbox/);
    await dispatcher.close();
  });
});

describe('HTTP 451 X-MS-Location (docs/protocols.md §4.1)', () => {
  const primary = 'https://mail.example.com';
  const regional = 'https://europe.example.com';

  test('followed, the command re-sent there, and the new URL kept for every later command', async () => {
    const { dispatcher, seen } = fakeServer([primary, regional], (r) =>
      r.origin === primary
        ? { status: 451, headers: { 'x-ms-location': `${regional}/Microsoft-Server-ActiveSync` } }
        : exchangeLike(r),
    );
    const c = client(dispatcher);
    const s = await c.firstSession();
    assert.equal(s.url, `${regional}/Microsoft-Server-ActiveSync`);
    assert.equal(c.url, s.url);
    assert.deepEqual(
      seen.map((r) => r.origin),
      [primary, ...Array(6).fill(regional)],
      'one 451, then only the new URL',
    );
    assert.equal(s.steps[0]?.status, 451);
    assert.equal(s.steps[0]?.redirect, `${regional}/Microsoft-Server-ActiveSync`);
    await dispatcher.close();
  });

  test('at most two redirects per command; not followed when asked; none without X-MS-Location; not to http', async () => {
    const third = 'https://third.example.com';
    const loop = fakeServer([primary, regional, third], (r) => ({
      status: 451,
      headers: {
        'x-ms-location': `${r.origin === primary ? regional : r.origin === regional ? third : primary}/Microsoft-Server-ActiveSync`,
      },
    }));
    await assert.rejects(
      client(loop.dispatcher).folderSync(),
      (err: ActiveSyncClientError) => err.kind === 'redirect' && /more than 2/.test(err.message),
    );
    assert.equal(loop.seen.length, 3);
    await assert.rejects(
      client(loop.dispatcher, { followRedirects: false }).folderSync(),
      /redirects not followed/,
    );
    await loop.dispatcher.close();
    const bare = fakeServer([primary], () => ({ status: 451 }));
    await assert.rejects(
      client(bare.dispatcher).folderSync(),
      /without X-MS-Location: run Autodiscover again/,
    );
    await bare.dispatcher.close();
    const plain = fakeServer([primary], () => ({
      status: 451,
      headers: { 'x-ms-location': 'http://europe.example.com/Microsoft-Server-ActiveSync' },
    }));
    await assert.rejects(client(plain.dispatcher).folderSync(), /not https/);
    await plain.dispatcher.close();
  });
});

describe('provisioning on demand', () => {
  test('HTTP 449: provision once, then the command again with the new key', async () => {
    let refused = false;
    const { dispatcher, seen } = fakeServer(['https://mail.example.com'], (r) => {
      if (r.line?.cmd === 'FolderSync' && !refused) {
        refused = true;
        return { status: 449 };
      }
      return exchangeLike(r);
    });
    const c = client(dispatcher);
    const result = await c.folderSync();
    assert.equal(result.syncKey, 'fs1');
    assert.deepEqual(
      seen.map((r) => r.line?.cmd),
      ['FolderSync', 'Provision', 'Provision', 'FolderSync'],
    );
    assert.equal(seen.at(-1)?.headers['x-ms-policykey'], '222');
    await dispatcher.close();
  });

  test('449 again after provisioning is an error, not a loop', async () => {
    const { dispatcher, seen } = fakeServer(['https://mail.example.com'], (r) =>
      r.line?.cmd === 'FolderSync' ? { status: 449 } : exchangeLike(r),
    );
    await assert.rejects(
      client(dispatcher).folderSync(),
      (err: ActiveSyncHttpError) => err.status === 449 && err.step === 'FolderSync',
    );
    assert.equal(seen.length, 4);
    await dispatcher.close();
  });

  test('14.0+ Status 142 in the command answer: provision once and retry', async () => {
    let refused = false;
    const { dispatcher, seen } = fakeServer(['https://mail.example.com'], (r) => {
      if (r.line?.cmd === 'FolderSync' && !refused) {
        refused = true;
        return { status: 200, body: f('FolderSync', f('Status', 142)) };
      }
      return exchangeLike(r);
    });
    assert.equal((await client(dispatcher).folderSync()).status, 1);
    assert.deepEqual(
      seen.map((r) => r.line?.cmd),
      ['FolderSync', 'Provision', 'Provision', 'FolderSync'],
    );
    await dispatcher.close();
  });
});

describe('typed errors naming the step', () => {
  test('401: ActiveSyncAuthError, and no credential in it or in the steps', async () => {
    const { dispatcher } = fakeServer(['https://mail.example.com'], () => ({
      status: 401,
      headers: { 'www-authenticate': 'Basic realm="x"' },
    }));
    const c = client(dispatcher);
    const err = await c.folderSync().then(
      () => assert.fail('no error'),
      (x: unknown) => x,
    );
    assert.ok(err instanceof ActiveSyncAuthError);
    assert.equal(err.kind, 'auth');
    assert.equal(err.step, 'FolderSync');
    assert.equal(err.status, 401);
    assert.match(err.message, /^FolderSync: authentication failed \(HTTP 401\)/);
    assertNoCredential(err, c.steps, c);
    await dispatcher.close();
  });

  test('401 on OPTIONS too', async () => {
    const { dispatcher } = fakeServer(['https://mail.example.com'], () => ({ status: 401 }));
    await assert.rejects(
      client(dispatcher).options(),
      (err: ActiveSyncAuthError) => err instanceof ActiveSyncAuthError && err.step === 'OPTIONS',
    );
    await dispatcher.close();
  });

  test('403, 500 and 503 with Retry-After', async () => {
    for (const [status, headers, kind, pattern] of [
      [403, {}, 'forbidden', /not enabled for ActiveSync/],
      [500, {}, 'http', /server error/],
      [503, { 'retry-after': '30' }, 'http', /retry after 30 s/],
    ] as const) {
      const { dispatcher } = fakeServer(['https://mail.example.com'], (r) =>
        r.line?.cmd === 'Sync' ? { status, headers } : exchangeLike(r),
      );
      const err = await client(dispatcher)
        .sync('in', '0')
        .then(
          () => assert.fail('no error'),
          (x: unknown) => x,
        );
      assert.ok(err instanceof ActiveSyncHttpError, String(status));
      assert.equal(err.kind, kind);
      assert.equal(err.step, 'Sync');
      assert.match(err.message, pattern);
      if (status === 503) assert.equal(err.retryAfterSeconds, 30);
      await dispatcher.close();
    }
  });

  test('a command Status that is not success: ActiveSyncStatusError with the status and its meaning', async () => {
    const { dispatcher } = fakeServer(['https://mail.example.com'], () => ({
      status: 200,
      body: a(
        'Sync',
        a('Collections', a('Collection', a('SyncKey', 0), a('CollectionId', 'in'), a('Status', 3))),
      ),
    }));
    await assert.rejects(
      client(dispatcher).sync('in', 'stale'),
      (err: ActiveSyncStatusError) =>
        err instanceof ActiveSyncStatusError &&
        err.commandStatus === 3 &&
        /invalid sync key/.test(err.message),
    );
    await dispatcher.close();
  });

  test('an answer that is not WBXML, and a server that cannot be reached', async () => {
    const { dispatcher } = fakeServer(['https://mail.example.com'], () => ({
      status: 200,
      body: '<html>login</html>',
    }));
    await assert.rejects(
      client(dispatcher).folderSync(),
      (err: ActiveSyncClientError) => err.kind === 'protocol' && /not WBXML/.test(err.message),
    );
    await assert.rejects(
      client(dispatcher, { url: 'https://elsewhere.example.com/Microsoft-Server-ActiveSync' }).folderSync(),
      (err: ActiveSyncClientError) => err.kind === 'network' && err.step === 'FolderSync',
    );
    await dispatcher.close();
  });

  test('unusable options are refused up front', () => {
    const dispatcher = new MockAgent();
    assert.throws(
      () => client(dispatcher, { deviceId: 'not-alnum' }),
      (err: ActiveSyncClientError) => err.kind === 'usage',
    );
    assert.throws(() => client(dispatcher, { password: '' }), /password is required/);
    assert.throws(() => client(dispatcher, { protocolVersion: '2.5' as '12.1' }), /not one of/);
  });
});

describe('Ping', () => {
  test('Status 2 with the folders, Status 5 with the limit; other statuses throw', async () => {
    let answer: WbxmlElement = el(
      'Ping',
      'Ping',
      el('Ping', 'Status', 2),
      el('Ping', 'Folders', el('Ping', 'Folder', 'in')),
    );
    const { dispatcher, seen } = fakeServer(['https://mail.example.com'], () => ({
      status: 200,
      body: answer,
    }));
    const c = client(dispatcher);
    assert.deepEqual(await c.ping(['in'], 480), { status: 2, outcome: 'changes', changedFolders: ['in'] });
    assert.equal(textOf(childElement(seen[0]?.doc as WbxmlElement, 'HeartbeatInterval')), '480');
    answer = el('Ping', 'Ping', el('Ping', 'Status', 5), el('Ping', 'HeartbeatInterval', 60));
    assert.equal(
      (
        await c.ping(
          [{ serverId: 'cal', parentId: '0', displayName: 'Calendar', type: 8, kind: 'calendar' }],
          10,
        )
      ).heartbeatInterval,
      60,
    );
    assert.match(Buffer.from(seen[1]?.body ?? []).toString(), /Calendar/, 'a folder object gives its class');
    answer = el('Ping', 'Ping', el('Ping', 'Status', 8));
    await assert.rejects(c.ping(['in'], 60), ActiveSyncStatusError);
    await dispatcher.close();
  });
});

describe('Autodiscover', () => {
  const ad = 'https://autodiscover.example.com';
  const settings = (url: string): Reply => ({
    status: 200,
    body:
      '<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">' +
      '<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"><Culture>en:us</Culture>' +
      `<User><DisplayName>Bob</DisplayName><EMailAddress>bob@example.com</EMailAddress></User><Action><Settings><Server><Type>MobileSync</Type><Url>${url}</Url><Name>${url}</Name></Server></Settings></Action></Response></Autodiscover>`,
  });
  const redirectTo = (address: string): Reply => ({
    status: 200,
    body: `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"><Action><Redirect>${address}</Redirect></Action></Response></Autodiscover>`,
  });

  test("POSTs the mobilesync request to autodiscover.<domain> with Basic auth; the URL becomes the client's", async () => {
    const { dispatcher, seen } = fakeServer([ad], () =>
      settings('https://mail.example.com/Microsoft-Server-ActiveSync'),
    );
    const c = client(dispatcher, { url: undefined });
    const r = await c.autodiscover();
    assert.deepEqual(r, {
      url: 'https://mail.example.com/Microsoft-Server-ActiveSync',
      email: 'bob@example.com',
      displayName: 'Bob',
      servers: [
        {
          type: 'MobileSync',
          url: 'https://mail.example.com/Microsoft-Server-ActiveSync',
          name: 'https://mail.example.com/Microsoft-Server-ActiveSync',
        },
      ],
      redirects: 0,
    });
    assert.equal(c.url, r.url);
    assert.equal(seen[0]?.path, '/Autodiscover/Autodiscover.xml');
    assert.match(seen[0]?.headers['content-type'] ?? '', /^text\/xml/);
    assert.match(
      Buffer.from(seen[0]?.body ?? []).toString(),
      /<EMailAddress>bob@example.com<\/EMailAddress>/,
    );
    await dispatcher.close();
  });

  test('follows an HTTP 302 to another https Autodiscover URL and an Action/Redirect to another address', async () => {
    const cloud = 'https://autodiscover-s.cloud.example';
    const moved = 'https://autodiscover.moved.example';
    const { dispatcher, seen } = fakeServer([ad, cloud, moved], (r) => {
      if (r.origin === ad)
        return { status: 302, headers: { location: `${cloud}/Autodiscover/Autodiscover.xml` } };
      if (r.origin === cloud) return redirectTo('bob@moved.example');
      return settings('https://eas.moved.example/Microsoft-Server-ActiveSync');
    });
    const r = await client(dispatcher, { url: undefined }).autodiscover();
    assert.equal(r.url, 'https://eas.moved.example/Microsoft-Server-ActiveSync');
    assert.equal(r.redirects, 2);
    assert.deepEqual(
      seen.map((x) => x.origin),
      [ad, cloud, moved],
    );
    assert.match(
      Buffer.from(seen[2]?.body ?? []).toString(),
      /<EMailAddress>bob@moved.example<\/EMailAddress>/,
    );
    await dispatcher.close();
  });

  test('stops after 10 redirects; refuses a 302 to http; reports an error answer and an answer without MobileSync', async () => {
    const loop = fakeServer([ad], () => ({
      status: 302,
      headers: { location: `${ad}/Autodiscover/Autodiscover.xml` },
    }));
    await assert.rejects(
      client(loop.dispatcher).autodiscover(),
      (err: ActiveSyncClientError) =>
        err.kind === 'autodiscover' && /more than 10 redirects/.test(err.message),
    );
    assert.equal(loop.seen.length, 11);
    await loop.dispatcher.close();
    const insecure = fakeServer([ad], () => ({
      status: 302,
      headers: { location: 'http://autodiscover.example.com/Autodiscover/Autodiscover.xml' },
    }));
    await assert.rejects(client(insecure.dispatcher).autodiscover(), /not an https Autodiscover URL/);
    await insecure.dispatcher.close();
    const error = fakeServer([ad], () => ({
      status: 200,
      body: '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"><Error><ErrorCode>600</ErrorCode><Message>Invalid Request</Message></Error></Response></Autodiscover>',
    }));
    await assert.rejects(client(error.dispatcher).autodiscover(), /Autodiscover: error 600: Invalid Request/);
    await error.dispatcher.close();
    const empty = fakeServer([ad], () => ({
      status: 200,
      body: '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"><Action><Settings/></Action></Response></Autodiscover>',
    }));
    await assert.rejects(client(empty.dispatcher).autodiscover(), /names no MobileSync server/);
    await empty.dispatcher.close();
    const wrong = fakeServer([ad], () => ({ status: 401 }));
    await assert.rejects(client(wrong.dispatcher).autodiscover(), ActiveSyncAuthError);
    await wrong.dispatcher.close();
  });
});
