/**
 * Every flow of docs/flows.md as real HTTPS through the lab: the hop sequence asserted here is what the servers
 * themselves recorded (hop recorder) and the path the answer came back along (X-Coexist-Path), compared
 * with the article's steps, never with the engine's own output.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../src/config/index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { LabClient } from '../support/lab-client.ts';
import { demoPassword, labClient, LineSink } from '../support/lab-client.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const primary = 'https://mail.o365info.com';
const eas = (user: string, cmd = 'FolderSync'): string =>
  `/Microsoft-Server-ActiveSync?Cmd=${cmd}&User=${user}&DeviceId=LAB${user.toUpperCase()}1&DeviceType=TestDevice`;
/** FolderSync with SyncKey 0 (MS-ASWBXML code page 7): the first request a new device sends. */
const folderSync = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01,
]);
const easHeaders = { 'ms-asprotocolversion': '12.1', 'content-type': 'application/vnd.ms-sync.wbxml' };
/** An EWS GetFolder of the inbox, as a client sends it (docs/protocols.md §4.6). */
const getFolder =
  `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2007_SP1"/></soap:Header><soap:Body>` +
  `<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder>` +
  `</soap:Body></soap:Envelope>`;
const poxRequest = (address: string, schema: 'outlook' | 'mobilesync'): string =>
  `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/${schema}/requestschema/2006"><Request><EMailAddress>${address}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/${schema}/responseschema/${schema === 'outlook' ? '2006a' : '2006'}</AcceptableResponseSchema></Request></Autodiscover>`;

async function startLabWith(policyLine?: string): Promise<{ lab: Lab; sink: LineSink }> {
  let text = await readFile(estateFile, 'utf8');
  if (policyLine) text = text.replace(/activesyncCrossSite: proxy/, policyLine);
  const { index } = parseEstate(text, estateFile);
  const sink = new LineSink();
  const lab = await startLab({
    index,
    logger: createLogger({ level: 'info', destination: sink }),
    maxPingHoldMs: 300,
  });
  return { lab, sink };
}

describe('the o365info lab: flows of docs/flows.md over real HTTPS', () => {
  let lab: Lab;
  let sink: LineSink;
  let external: LabClient;
  let internal: LabClient;

  before(async () => {
    ({ lab, sink } = await startLabWith());
    external = labClient(lab, 'external');
    internal = labClient(lab, 'internal');
  });
  after(async () => {
    await external.close();
    await internal.close();
    await lab.close();
  });

  /** The recorded path, once the entry server has reported (it reports when the answer is complete). */
  async function recordedPath(requestId: string, entry: string): Promise<string[]> {
    assert.ok(requestId, 'the answer carries a request-id');
    await lab.recorder.waitFor(requestId, entry);
    return lab.recorder.path(requestId);
  }

  const activeSyncFlows: readonly [string, string, string[]][] = [
    ['EAS-1', 'bob', ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY']],
    ['EAS-2', 'carol', ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-LA', 'MBX2007-LA']],
    ['EAS-3A', 'diego', ['CAS2013-NY', 'CAS2007-MAD', 'MBX2007-MAD']],
  ];
  for (const [flow, user, hops] of activeSyncFlows) {
    test(`${flow}: ${user}'s FolderSync through ${hops.join(' -> ')}`, async () => {
      const r = await external.fetch(primary + eas(user), {
        headers: easHeaders,
        body: folderSync,
        user: `${user}@o365info.com`,
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/vnd.ms-sync.wbxml');
      assert.deepEqual(await recordedPath(r.requestId, 'CAS2013-NY'), hops);
      assert.deepEqual(r.path, hops, 'X-Coexist-Path: the answer came back the same way');
      assert.equal(r.headers['x-beserver'], hops.at(-1));
    });
  }

  test('EAS-1 step 4 and EAS-2 step 4: MBX2013-NY calls the internal ActiveSync URL of the 2007 CAS', async () => {
    for (const [user, url] of [
      ['bob', 'https://cas2007-ny.o365info.local/Microsoft-Server-ActiveSync'],
      ['carol', 'https://cas2007-la.o365info.local/Microsoft-Server-ActiveSync'],
    ] as const) {
      const r = await external.fetch(primary + eas(user), {
        headers: easHeaders,
        body: folderSync,
        user: `${user}@o365info.com`,
      });
      await lab.recorder.waitFor(r.requestId, 'CAS2013-NY');
      const mbx = lab.recorder.records(r.requestId).find((h) => h.server === 'MBX2013-NY');
      assert.equal(mbx?.via, 'internal-url');
      assert.ok(mbx?.url?.startsWith(url + '?'), `${mbx?.url} starts with ${url}`);
    }
  });

  test('EAS-3A step 3: CAS2013-NY proxies to the external URL of CAS2007-MAD, no 451', async () => {
    const r = await external.fetch(primary + eas('diego'), {
      headers: easHeaders,
      body: folderSync,
      user: 'diego@o365info.com',
    });
    assert.equal(r.status, 200);
    await lab.recorder.waitFor(r.requestId, 'CAS2013-NY');
    const fe = lab.recorder.records(r.requestId).find((h) => h.server === 'CAS2013-NY');
    assert.equal(fe?.via, 'external-url');
    assert.ok(fe?.url?.startsWith('https://europe.mail.o365info.com/Microsoft-Server-ActiveSync?'));
  });

  test('EAS-3B: a device on the regional namespace talks to CAS2007-MAD; the front end is not involved', async () => {
    const r = await external.fetch('https://europe.mail.o365info.com' + eas('diego'), {
      headers: easHeaders,
      body: folderSync,
      user: 'diego@o365info.com',
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await recordedPath(r.requestId, 'CAS2007-MAD'), ['CAS2007-MAD', 'MBX2007-MAD']);
    assert.ok(!lab.recorder.records(r.requestId).some((h) => h.server === 'CAS2013-NY'));
  });

  test('EWS-2: bob, external: CAS2013-NY proxies to CAS2007-NY, which answers from MBX2007-NY', async () => {
    const r = await external.fetch(primary + '/EWS/Exchange.asmx', {
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body: getFolder,
      user: 'bob@o365info.com',
    });
    assert.equal(r.status, 200);
    assert.match(r.body.toString(), /ServerVersionInfo/);
    assert.deepEqual(await recordedPath(r.requestId, 'CAS2013-NY'), [
      'CAS2013-NY',
      'CAS2007-NY',
      'MBX2007-NY',
    ]);
  });

  test('EWS-1: bob, internal: Autodiscover answers a legacy-namespace EWS URL, then EWS goes to CAS2007-NY directly', async () => {
    const ad = await internal.fetch('https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml', {
      headers: { 'content-type': 'text/xml' },
      body: poxRequest('bob@o365info.com', 'outlook'),
      user: 'bob@o365info.com',
    });
    assert.equal(ad.status, 200);
    assert.deepEqual(
      await recordedPath(ad.requestId, 'CAS2013-NY'),
      ['CAS2013-NY'],
      'answered by the front end',
    );
    const ewsUrl = /<EwsUrl>([^<]+)<\/EwsUrl>/.exec(ad.body.toString())?.[1];
    assert.equal(ewsUrl, 'https://legacy.mail.o365info.com/EWS/Exchange.asmx');
    const r = await internal.fetch(ewsUrl, {
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body: getFolder,
      user: 'bob@o365info.com',
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await recordedPath(r.requestId, 'CAS2007-NY'), ['CAS2007-NY', 'MBX2007-NY']);
  });

  test('Autodiscover (mobile): diego is sent to the regional namespace', async () => {
    const r = await external.fetch('https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml', {
      headers: { 'content-type': 'text/xml' },
      body: poxRequest('diego@o365info.com', 'mobilesync'),
      user: 'diego@o365info.com',
    });
    assert.equal(r.status, 200);
    assert.match(
      r.body.toString(),
      /<Url>https:\/\/europe\.mail\.o365info\.com\/Microsoft-Server-ActiveSync<\/Url>/,
    );
  });

  test('alice (2013): every protocol goes to MBX2013-NY and never touches a 2007 server', async () => {
    const requests: [
      string,
      { method?: string; headers?: Record<string, string>; body?: string | Uint8Array },
    ][] = [
      [eas('alice'), { headers: easHeaders, body: folderSync }],
      ['/Microsoft-Server-ActiveSync', { method: 'OPTIONS' }],
      ['/EWS/Exchange.asmx', { headers: { 'content-type': 'text/xml' }, body: getFolder }],
      [
        '/rpc/rpcproxy.dll?mbx2013-ny.o365info.local:6001',
        {
          method: 'RPC_OUT_DATA',
          headers: { 'x-lab-out-bytes': '1024', 'content-length': '76' },
          body: new Uint8Array(76),
        },
      ],
    ];
    for (const [path, o] of requests) {
      const r = await external.fetch(primary + path, { ...o, user: 'alice@o365info.com' });
      assert.equal(r.status, 200, path);
      const hops = await recordedPath(r.requestId, 'CAS2013-NY');
      assert.deepEqual(hops, ['CAS2013-NY', 'MBX2013-NY'], path);
    }
  });

  /** Log on through the forms page of `origin` (its own FBA path) and return the session cookie. */
  async function owaLogon(
    client: LabClient,
    origin: string,
    user: string,
    path = '/owa/auth.owa',
  ): Promise<string> {
    const r = await client.fetch(origin + path, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `destination=${encodeURIComponent(origin + '/owa/')}&flags=4&forcedownlevel=0&username=${encodeURIComponent(user)}&password=${encodeURIComponent(demoPassword)}&isUtf8=1`,
    });
    assert.equal(r.status, 302, `logon at ${origin}${path}`);
    assert.equal(r.headers['location'], origin + '/owa/');
    return String(r.headers['set-cookie']).split(';')[0] as string;
  }

  const mailboxOf: Readonly<Record<string, string>> = {
    alice: 'MBX2013-NY',
    bob: 'MBX2007-NY',
    carol: 'MBX2007-LA',
    diego: 'MBX2007-MAD',
  };
  const oabGuid = '7f1d5c8e-2b3a-4c5d-9e8f-0a1b2c3d4e5f';
  for (const user of Object.keys(mailboxOf)) {
    test(`every protocol for ${user} reaches ${mailboxOf[user]}`, async () => {
      const address = `${user}@o365info.com`;
      const requests: [
        string,
        string,
        { method?: string; headers?: Record<string, string>; body?: string | Uint8Array },
      ][] = [
        ['activesync', eas(user), { headers: easHeaders, body: folderSync }],
        ['ews', '/EWS/Exchange.asmx', { headers: { 'content-type': 'text/xml' }, body: getFolder }],
        [
          'rpc',
          `/rpc/rpcproxy.dll?${mailboxOf[user]?.toLowerCase()}.o365info.local:6001`,
          {
            method: 'RPC_OUT_DATA',
            headers: { 'x-lab-out-bytes': '4096', 'content-length': '76' },
            body: new Uint8Array(76),
          },
        ],
        ['oab', `/OAB/${oabGuid}/oab.xml`, {}],
      ];
      if (user === 'alice') {
        requests.push([
          'mapi',
          `/mapi/emsmdb/?MailboxId=${oabGuid}@o365info.com`,
          {
            headers: {
              'content-type': 'application/mapi-http',
              'x-requesttype': 'Connect',
              'x-requestid': '{C715155F-2BE8-44E0-BD34-2960065754C8}:1',
              'x-clientinfo': '{2F94A2BF-A2E6-4CCC-BF98-B5F22C542226}',
            },
            body: new Uint8Array(8),
          },
        ]);
      }
      for (const [protocol, path, o] of requests) {
        const r = await external.fetch(primary + path, { ...o, user: address });
        assert.equal(r.status, 200, `${protocol}: ${r.headers['x-lab-reason'] ?? ''}`);
        const hops = await recordedPath(r.requestId, 'CAS2013-NY');
        assert.equal(hops[0], 'CAS2013-NY', protocol);
        assert.equal(hops.at(-1), mailboxOf[user], protocol);
        assert.equal(r.headers['x-beserver'], mailboxOf[user], protocol);
        if (user === 'alice')
          assert.ok(!hops.some((h) => h.includes('2007')), `${protocol}: ${hops.join(', ')}`);
      }
    });
  }

  test('Autodiscover: the front end answers for 2007 mailboxes; MBX2013-NY answers for alice', async () => {
    for (const [user, hops, ews] of [
      ['alice', ['CAS2013-NY', 'MBX2013-NY'], 'https://mail.o365info.com/EWS/Exchange.asmx'],
      ['bob', ['CAS2013-NY'], 'https://legacy.mail.o365info.com/EWS/Exchange.asmx'],
      ['carol', ['CAS2013-NY'], 'https://mail.o365info.com/EWS/Exchange.asmx'],
      ['diego', ['CAS2013-NY'], 'https://europe.mail.o365info.com/EWS/Exchange.asmx'],
    ] as const) {
      const r = await external.fetch('https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml', {
        headers: { 'content-type': 'text/xml' },
        body: poxRequest(`${user}@o365info.com`, 'outlook'),
        user: `${user}@o365info.com`,
      });
      assert.equal(r.status, 200, user);
      assert.deepEqual(await recordedPath(r.requestId, 'CAS2013-NY'), hops, user);
      const expr = /<Type>EXPR<\/Type>.*?<EwsUrl>([^<]+)<\/EwsUrl>/.exec(r.body.toString())?.[1];
      assert.equal(expr, ews, `${user}: external EWS URL`);
    }
  });

  test('Autodiscover errors: unknown user, a domain not served, hostile XML: schema answers, and it keeps serving', async () => {
    const url = 'https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml';
    const post = (body: string): ReturnType<LabClient['fetch']> =>
      external.fetch(url, { headers: { 'content-type': 'text/xml' }, body, user: 'bob@o365info.com' });
    const unknown = await post(poxRequest('nobody@o365info.com', 'outlook'));
    assert.equal(unknown.status, 200);
    assert.match(unknown.body.toString(), /<ErrorCode>500<\/ErrorCode>/);
    assert.equal(unknown.headers['x-soap-enabled'], 'True');
    const elsewhere = await post(poxRequest('someone@example.org', 'outlook'));
    assert.match(elsewhere.body.toString(), /<ErrorCode>500<\/ErrorCode>/);
    const xxe =
      '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>' +
      poxRequest('bob@o365info.com', 'outlook').replace('bob@o365info.com', '&x;');
    const laughs =
      '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>' +
      poxRequest('&b;', 'outlook');
    for (const hostile of [xxe, laughs, '<Autodiscover><Request><EMailAddress>bob@o365info.com']) {
      const r = await post(hostile);
      assert.equal(r.status, 200);
      assert.match(r.body.toString(), /<ErrorCode>600<\/ErrorCode>/);
      assert.ok(!r.body.toString().includes('root:'), 'no file content');
    }
    const after = await post(poxRequest('bob@o365info.com', 'outlook'));
    assert.match(
      after.body.toString(),
      /<EwsUrl>https:\/\/legacy\.mail\.o365info\.com\/EWS\/Exchange\.asmx<\/EwsUrl>/,
    );
    const unauthenticated = await external.fetch(url);
    assert.equal(unauthenticated.status, 401);
    assert.equal(
      unauthenticated.headers['x-soap-enabled'],
      'True',
      'ews-javascript-api looks for it on the 401',
    );
  });

  test('Autodiscover for a domain the estate says lives elsewhere: POX redirectUrl, and the mobile HTTP 302', async () => {
    const address = 'zoe@o365info.mail.onmicrosoft.com';
    const target = 'https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml';
    const pox = await external.fetch('https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml', {
      headers: { 'content-type': 'text/xml' },
      body: poxRequest(address, 'outlook'),
      user: 'bob@o365info.com',
    });
    assert.equal(pox.status, 200);
    assert.match(pox.body.toString(), /<Action>redirectUrl<\/Action><RedirectUrl>([^<]+)<\/RedirectUrl>/);
    assert.ok(pox.body.toString().includes(`<RedirectUrl>${target}</RedirectUrl>`));
    const mobile = await external.fetch('https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml', {
      headers: { 'content-type': 'text/xml' },
      body: poxRequest(address, 'mobilesync'),
      user: 'bob@o365info.com',
    });
    assert.equal(mobile.status, 302, 'mobile devices get the HTTP redirect the spec prefers for a new URL');
    assert.equal(mobile.headers['location'], target);
  });

  test('Autodiscover SOAP GetUserSettings through the front end: exactly the settings asked, per user', async () => {
    const soapRequest = (address: string, settings: readonly string[]): string =>
      '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:wsa="http://www.w3.org/2005/08/addressing">' +
      '<soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></soap:Header>' +
      `<soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>${address}</a:Mailbox></a:User></a:Users><a:RequestedSettings>` +
      settings.map((n) => `<a:Setting>${n}</a:Setting>`).join('') +
      '</a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>';
    for (const [user, ews, hops] of [
      ['bob', 'https://legacy.mail.o365info.com/EWS/Exchange.asmx', ['CAS2013-NY']],
      ['diego', 'https://europe.mail.o365info.com/EWS/Exchange.asmx', ['CAS2013-NY']],
      ['alice', 'https://mail.o365info.com/EWS/Exchange.asmx', ['CAS2013-NY', 'MBX2013-NY']],
    ] as const) {
      const r = await external.fetch('https://autodiscover.o365info.com/autodiscover/autodiscover.svc', {
        headers: { 'content-type': 'text/xml; charset=utf-8' },
        body: soapRequest(`${user}@o365info.com`, ['ExternalEwsUrl', 'UserDisplayName', 'NoSuchSetting']),
        user: `${user}@o365info.com`,
      });
      const text = r.body.toString();
      assert.equal(r.status, 200, user);
      assert.deepEqual(await recordedPath(r.requestId, 'CAS2013-NY'), hops, user);
      assert.ok(text.includes(`<Name>ExternalEwsUrl</Name><Value>${ews}</Value>`), `${user}: ${text}`);
      assert.match(text, /<Name>UserDisplayName<\/Name>/);
      assert.ok(!/<Name>InternalEwsUrl<\/Name>/.test(text), 'only what was asked');
      assert.match(text, /<ErrorCode>InvalidSetting<\/ErrorCode>[\s\S]*NoSuchSetting/);
    }
  });

  const owaFlows: readonly [string, string, string[]][] = [
    ['bob', 'https://legacy.mail.o365info.com', ['CAS2007-NY', 'MBX2007-NY']],
    ['carol', 'https://legacy.mail.o365info.com', ['CAS2007-NY', 'CAS2007-LA', 'MBX2007-LA']],
    ['diego', 'https://europe.mail.o365info.com', ['CAS2007-MAD', 'MBX2007-MAD']],
  ];
  for (const [user, target, hops] of owaFlows) {
    test(`OWA for ${user} (2007): redirected to ${target}, where the 2007 logon leads to the mailbox`, async () => {
      const cookie = await owaLogon(external, primary, `${user}@o365info.com`);
      const first = await external.fetch(primary + '/owa/', { headers: { cookie } });
      assert.equal(first.status, 302);
      assert.equal(first.headers['location'], `${target}/owa?reason=20`);
      // The legacy CAS has its own forms logon (2007: owaauth.dll); the front end's cookie is not for it.
      const unauthenticated = await external.fetch(`${target}/owa/`);
      assert.equal(unauthenticated.status, 302);
      assert.match(String(unauthenticated.headers['location']), /^\/owa\/auth\/logon\.aspx\?/);
      const legacyCookie = await owaLogon(external, target, `${user}@o365info.com`, '/owa/auth/owaauth.dll');
      const page = await external.fetch(`${target}/owa/`, { headers: { cookie: legacyCookie } });
      assert.equal(page.status, 200);
      assert.match(page.body.toString(), /Outlook Web Access/);
      assert.deepEqual(await recordedPath(page.requestId, hops[0] as string), hops);
    });
  }

  test('OWA for alice (2013): proxied to MBX2013-NY with her credentials, after the front end logon', async () => {
    const cookie = await owaLogon(external, primary, 'alice@o365info.com');
    const page = await external.fetch(primary + '/owa/', { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.deepEqual(await recordedPath(page.requestId, 'CAS2013-NY'), ['CAS2013-NY', 'MBX2013-NY']);
    const tampered = await external.fetch(primary + '/owa/', {
      headers: { cookie: cookie.slice(0, -2) + 'xx' },
    });
    assert.equal(tampered.status, 302, 'a forged cookie goes back to the logon page');
  });

  test('OWA: bob logs on at the front end and is redirected to the legacy namespace', async () => {
    const logon = await external.fetch(primary + '/owa/auth.owa', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `destination=${encodeURIComponent(primary + '/owa/')}&flags=4&forcedownlevel=0&username=bob%40o365info.com&password=${encodeURIComponent(demoPassword)}&isUtf8=1`,
    });
    assert.equal(logon.status, 302);
    const cookie = String(logon.headers['set-cookie']).split(';')[0] as string;
    assert.match(String(logon.headers['set-cookie']), /HttpOnly/);
    const r = await external.fetch(primary + '/owa/', { headers: { cookie } });
    assert.equal(r.status, 302);
    // The estate's URL, with the marker that makes the legacy logon page say why (docs/security.md "OWA in the browser").
    assert.equal(r.headers['location'], 'https://legacy.mail.o365info.com/owa?reason=20');
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  test('wrong password, unknown user and no credentials: the same 401 with a Basic challenge', async () => {
    const url = primary + eas('bob');
    const wrong = await external.fetch(url, {
      headers: easHeaders,
      body: folderSync,
      user: 'bob@o365info.com',
      password: 'nope',
    });
    const unknown = await external.fetch(url, {
      headers: easHeaders,
      body: folderSync,
      user: 'nobody@o365info.com',
    });
    const none = await external.fetch(url, { headers: easHeaders, body: folderSync });
    for (const r of [wrong, unknown, none]) {
      assert.equal(r.status, 401);
      assert.match(String(r.headers['www-authenticate']), /^Basic realm="mail\.o365info\.com"$/);
      assert.ok(r.requestId);
      assert.deepEqual(lab.recorder.records(r.requestId), [], 'no server acted on it');
    }
    assert.deepEqual(wrong.body, unknown.body);
  });

  test('no credential, cookie or password reaches the log', () => {
    const text = sink.lines.join('\n');
    assert.ok(sink.lines.length > 10, 'the servers logged their requests');
    assert.ok(!text.includes(demoPassword), 'password');
    assert.ok(
      !text.includes(Buffer.from(`bob@o365info.com:${demoPassword}`).toString('base64')),
      'Basic token',
    );
    assert.ok(!text.includes('coexist-session='), 'session cookie');
    const access = sink.records().filter((r) => r['msg'] === 'access');
    assert.ok(access.some((r) => r['outcome'] === 'proxied' && r['server'] === 'CAS2013-NY'));
  });
});

describe('EAS-legacy: the same request as EAS-3A under activesyncCrossSite=redirect-451', () => {
  let lab: Lab;
  let client: LabClient;
  before(async () => {
    ({ lab } = await startLabWith('activesyncCrossSite: redirect-451'));
    client = labClient(lab);
  });
  after(async () => {
    await client.close();
    await lab.close();
  });

  test('CAS2013-NY answers 451 with X-MS-Location; the device follows it to CAS2007-MAD', async () => {
    const first = await client.fetch(primary + eas('diego'), {
      headers: easHeaders,
      body: folderSync,
      user: 'diego@o365info.com',
    });
    assert.equal(first.status, 451);
    assert.equal(
      first.headers['x-ms-location'],
      'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync',
    );
    assert.equal(first.body.length, 0);
    await lab.recorder.waitFor(first.requestId, 'CAS2013-NY');
    assert.deepEqual(lab.recorder.path(first.requestId), ['CAS2013-NY']);
    const location = String(first.headers['x-ms-location']);
    const second = await client.fetch(location + eas('diego').slice('/Microsoft-Server-ActiveSync'.length), {
      headers: easHeaders,
      body: folderSync,
      user: 'diego@o365info.com',
    });
    assert.equal(second.status, 200);
    await lab.recorder.waitFor(second.requestId, 'CAS2007-MAD');
    assert.deepEqual(lab.recorder.path(second.requestId), ['CAS2007-MAD', 'MBX2007-MAD']);
  });
});
