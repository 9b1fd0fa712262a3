/**
 * Autodiscover identity and parsed requests: POX outlook/mobilesync bodies (docs/protocols.md §4.2, §4.1 end),
 * SOAP GetUserSettings and GetDomainSettings (§4.3), the v2 JSON URL (§4.4), both namespace spellings (the §
 * warning), and what the scanner refuses.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  autodiscover,
  autodiscoverDialect,
  autodiscoverMaxBytes,
  autodiscoverMaxItems,
  parseAutodiscoverBody,
} from './autodiscover.ts';
import type { Identity, RequestHead } from './request-head.ts';
import { isInvalid } from './request-head.ts';

const auth = `Basic ${Buffer.from('bob@o365info.com:pw').toString('base64')}`;
const post = (
  path = '/Autodiscover/Autodiscover.xml',
  headers: Record<string, string> = {},
): RequestHead => ({
  method: 'POST',
  host: 'autodiscover.o365info.com',
  path,
  query: '',
  headers: { 'content-type': 'text/xml', ...headers },
});
const get = (path: string, query = ''): RequestHead => ({ ...post(path), method: 'GET', query, headers: {} });
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const code = (id: Identity): string | false => id.kind === 'invalid' && id.code;

const outlookResponse = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';
const pox = (
  inner: string,
  ns = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006',
) =>
  `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="${ns}">
  <Request>
    ${inner}
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`;

const soap = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
               xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover"
               xmlns:wsa="http://www.w3.org/2005/08/addressing">
  <soap:Header>
    <a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>
    <wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action>
    <wsa:To>https://autodiscover.o365info.com/autodiscover/autodiscover.svc</wsa:To>
  </soap:Header>
  <soap:Body>
    <a:GetUserSettingsRequestMessage>
      <a:Request>
        <a:Users><a:User><a:Mailbox>bob@o365info.com</a:Mailbox></a:User><a:User><a:Mailbox>alice@o365info.com</a:Mailbox></a:User></a:Users>
        <a:RequestedSettings>
          <a:Setting>UserDisplayName</a:Setting><a:Setting>ExternalEwsUrl</a:Setting>
        </a:RequestedSettings>
      </a:Request>
    </a:GetUserSettingsRequestMessage>
  </soap:Body>
</soap:Envelope>`;

describe('POX (docs/protocols.md §4.2)', () => {
  test('asks for the body first, then reads EMailAddress', () => {
    assert.deepEqual(autodiscover.identify(post()), { kind: 'needs-body', maxBytes: autodiscoverMaxBytes });
    const body = bytes(pox('<EMailAddress>bob@o365info.com</EMailAddress>'));
    assert.deepEqual(autodiscover.identify(post(undefined, { authorization: auth }), body), {
      kind: 'user',
      user: 'bob@o365info.com',
      source: 'autodiscover-body',
      basicUser: 'bob@o365info.com',
    });
  });

  test('accepts https:// namespaces, the mobilesync schema, a prefixed root and a BOM', () => {
    const https = pox(
      '<EMailAddress>bob@o365info.com</EMailAddress>',
      'https://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006',
    );
    assert.deepEqual(parseAutodiscoverBody(bytes(https)), {
      schema: 'outlook',
      address: 'bob@o365info.com',
      acceptableResponseSchema: outlookResponse,
    });
    const mobile = `<Autodiscover xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"><Request><EMailAddress>bob@o365info.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema></Request></Autodiscover>`;
    assert.deepEqual(parseAutodiscoverBody(bytes(mobile)), {
      schema: 'mobilesync',
      address: 'bob@o365info.com',
      acceptableResponseSchema:
        'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006',
    });
    const prefixed = `<a:Autodiscover xmlns:a="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><a:Request><a:EMailAddress>bob@o365info.com</a:EMailAddress></a:Request></a:Autodiscover>`;
    assert.deepEqual(parseAutodiscoverBody(bytes(prefixed)), {
      schema: 'outlook',
      address: 'bob@o365info.com',
    });
    const bom = new Uint8Array([
      0xef,
      0xbb,
      0xbf,
      ...bytes(pox('<EMailAddress>bob@o365info.com</EMailAddress>')),
    ]);
    assert.deepEqual(parseAutodiscoverBody(bom), {
      schema: 'outlook',
      address: 'bob@o365info.com',
      acceptableResponseSchema: outlookResponse,
    });
  });

  test('LegacyDN wins over EMailAddress', () => {
    const dn = '/o=O365info/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=bob';
    const id = autodiscover.identify(
      post(),
      bytes(pox(`<EMailAddress>bob@o365info.com</EMailAddress><LegacyDN>${dn}</LegacyDN>`)),
    );
    assert.deepEqual(id, { kind: 'user', user: dn, source: 'autodiscover-legacy-dn' });
  });

  test('comments and character references are read as XML does', () => {
    const body = pox(
      '<!-- <EMailAddress>mallory@evil.com</EMailAddress> --><EMailAddress> bob&#64;o365info.com </EMailAddress>',
    );
    const id = autodiscover.identify(post(), bytes(body));
    assert.equal(id.kind === 'user' && id.user, 'bob@o365info.com');
  });

  test('elements outside Request/EMailAddress are not the address', () => {
    const id = autodiscover.identify(
      post(),
      bytes(pox('<Other><EMailAddress>mallory@evil.com</EMailAddress></Other>')),
    );
    assert.equal(code(id), 'CX_IDENTITY_BODY_MALFORMED');
  });

  test('keeps the AcceptableResponseSchema as sent, so an unavailable one can be answered 601', () => {
    const asked = pox('<EMailAddress>bob@o365info.com</EMailAddress>').replace(
      outlookResponse,
      'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006',
    );
    const parsed = parseAutodiscoverBody(bytes(asked));
    assert.equal(
      !isInvalid(parsed) && parsed.schema === 'outlook' && parsed.acceptableResponseSchema,
      'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006',
    );
    const none = `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>bob@o365info.com</EMailAddress></Request></Autodiscover>`;
    assert.deepEqual(parseAutodiscoverBody(bytes(none)), { schema: 'outlook', address: 'bob@o365info.com' });
  });
});

const domainSoap = (domains: string, settings = '<a:Setting>ExternalEwsUrl</a:Setting>') =>
  `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover">
  <soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion></soap:Header>
  <soap:Body><a:GetDomainSettingsRequestMessage><a:Request>
    <a:Domains>${domains}</a:Domains>
    <a:RequestedSettings>${settings}</a:RequestedSettings>
    <a:RequestedVersion>Exchange2013</a:RequestedVersion>
  </a:Request></a:GetDomainSettingsRequestMessage></soap:Body>
</soap:Envelope>`;

describe('SOAP (docs/protocols.md §4.3)', () => {
  test('GetUserSettings: mailboxes, requested settings and RequestedServerVersion; routes on the first Mailbox', () => {
    assert.deepEqual(parseAutodiscoverBody(bytes(soap)), {
      schema: 'soap',
      soapVersion: '1.1',
      requestedServerVersion: 'Exchange2013',
      operation: 'GetUserSettings',
      mailboxes: ['bob@o365info.com', 'alice@o365info.com'],
      settings: ['UserDisplayName', 'ExternalEwsUrl'],
    });
    const id = autodiscover.identify(post('/autodiscover/autodiscover.svc'), bytes(soap));
    assert.deepEqual(id, { kind: 'user', user: 'bob@o365info.com', source: 'autodiscover-body' });
  });

  test('settings keep request order without repeats or empties; SOAP 1.2 is recognised', () => {
    const body = soap
      .replace(
        '<a:Setting>ExternalEwsUrl</a:Setting>',
        '<a:Setting>ExternalEwsUrl</a:Setting><a:Setting> </a:Setting><a:Setting>UserDisplayName</a:Setting><a:Setting>CasVersion</a:Setting>',
      )
      .replace('http://schemas.xmlsoap.org/soap/envelope/', 'http://www.w3.org/2003/05/soap-envelope');
    const parsed = parseAutodiscoverBody(bytes(body));
    assert.ok(!isInvalid(parsed) && parsed.schema === 'soap');
    assert.equal(parsed.soapVersion, '1.2');
    assert.deepEqual(parsed.settings, ['UserDisplayName', 'ExternalEwsUrl', 'CasVersion']);
  });

  test('GetDomainSettings: domains and settings; its identity is anonymous (the pipeline routes on the caller)', () => {
    const body = domainSoap('<a:Domain>o365info.com</a:Domain><a:Domain>other.org</a:Domain>');
    assert.deepEqual(parseAutodiscoverBody(bytes(body)), {
      schema: 'soap',
      soapVersion: '1.1',
      requestedServerVersion: 'Exchange2013',
      operation: 'GetDomainSettings',
      domains: ['o365info.com', 'other.org'],
      settings: ['ExternalEwsUrl'],
      requestedVersion: 'Exchange2013',
    });
    assert.deepEqual(autodiscover.identify(post('/autodiscover/autodiscover.svc'), bytes(body)), {
      kind: 'anonymous',
    });
    assert.equal(
      code(autodiscover.identify(post('/autodiscover/autodiscover.svc'), bytes(domainSoap('')))),
      'CX_IDENTITY_BODY_MALFORMED',
    );
  });

  test(`at most ${autodiscoverMaxItems} users, domains or settings per request`, () => {
    const users = (n: number) =>
      Array.from({ length: n }, (_, i) => `<a:User><a:Mailbox>u${i}@o365info.com</a:Mailbox></a:User>`).join(
        '',
      );
    const many = (n: number) => soap.replace(/<a:Users>.*<\/a:Users>/, `<a:Users>${users(n)}</a:Users>`);
    const ok = parseAutodiscoverBody(bytes(many(autodiscoverMaxItems)));
    assert.equal(
      !isInvalid(ok) && ok.schema === 'soap' && ok.operation === 'GetUserSettings' && ok.mailboxes.length,
      autodiscoverMaxItems,
    );
    assert.equal(
      code(autodiscover.identify(post(), bytes(many(autodiscoverMaxItems + 1)))),
      'CX_IDENTITY_BODY_MALFORMED',
    );
    const settings = '<a:Setting>ExternalEwsUrl</a:Setting>'.repeat(autodiscoverMaxItems + 1);
    assert.equal(
      code(autodiscover.identify(post(), bytes(domainSoap('<a:Domain>o365info.com</a:Domain>', settings)))),
      'CX_IDENTITY_BODY_MALFORMED',
    );
  });

  test('a body that is not exactly one of the two operations is malformed', () => {
    const both = soap.replace('</soap:Body>', '<a:GetDomainSettingsRequestMessage/></soap:Body>');
    const twice = soap.replace('</soap:Body>', '<a:GetUserSettingsRequestMessage/></soap:Body>');
    const other = soap.replaceAll('GetUserSettingsRequestMessage', 'GetFederationInformationRequestMessage');
    for (const body of [both, twice, other])
      assert.equal(code(autodiscover.identify(post(), bytes(body))), 'CX_IDENTITY_BODY_MALFORMED');
  });
});

test('autodiscoverDialect: the dialect of an unreadable body, for its error answer', () => {
  const path = (p: string) => ({ path: p });
  assert.equal(autodiscoverDialect(path('/autodiscover/autodiscover.json/v1.0/x@y.com')), 'json');
  assert.equal(autodiscoverDialect(path('/Autodiscover/Autodiscover.svc'), bytes('<broken')), 'soap');
  assert.equal(autodiscoverDialect(path('/Autodiscover/Autodiscover.xml'), bytes('<broken')), 'outlook');
  assert.equal(autodiscoverDialect(path('/Autodiscover/Autodiscover.xml')), 'outlook');
  const mobile =
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"><Request>';
  assert.equal(autodiscoverDialect(path('/autodiscover/autodiscover.xml'), bytes(mobile)), 'mobilesync');
  assert.equal(
    autodiscoverDialect(path('/autodiscover/autodiscover.xml'), new Uint8Array([0xff, 0xfe])),
    'outlook',
  );
});

describe('refused bodies', () => {
  const billionLaughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>&lol2;</EMailAddress></Request></Autodiscover>`;
  const xxe = `<!doctype x [<!entity e SYSTEM "file:///etc/passwd">]>${pox('<EMailAddress>&e;</EMailAddress>')}`;
  const cases: [string, string, string][] = [
    ['billion laughs', billionLaughs, 'CX_IDENTITY_XML_DTD'],
    ['XXE (lower case)', xxe, 'CX_IDENTITY_XML_DTD'],
    ['an unknown entity', pox('<EMailAddress>&e;</EMailAddress>'), 'CX_IDENTITY_BODY_MALFORMED'],
    ['CDATA', pox('<EMailAddress><![CDATA[bob@o365info.com]]></EMailAddress>'), 'CX_IDENTITY_BODY_MALFORMED'],
    ['mismatched tags', pox('<EMailAddress>bob@o365info.com</EMailAdress>'), 'CX_IDENTITY_BODY_MALFORMED'],
    [
      'unclosed root',
      pox('<EMailAddress>bob@o365info.com</EMailAddress>').replace('</Autodiscover>', ''),
      'CX_IDENTITY_BODY_MALFORMED',
    ],
    [
      'two roots',
      `${pox('<EMailAddress>bob@o365info.com</EMailAddress>')}<Autodiscover/>`,
      'CX_IDENTITY_BODY_MALFORMED',
    ],
    ['no address', pox(''), 'CX_IDENTITY_BODY_MALFORMED'],
    [
      'two addresses',
      pox('<EMailAddress>a@o365info.com</EMailAddress><EMailAddress>b@o365info.com</EMailAddress>'),
      'CX_IDENTITY_BODY_MALFORMED',
    ],
    [
      'unknown namespace',
      pox('<EMailAddress>bob@o365info.com</EMailAddress>', 'urn:x'),
      'CX_IDENTITY_BODY_MALFORMED',
    ],
    ['not XML', 'hello', 'CX_IDENTITY_BODY_MALFORMED'],
    ['a bad address', pox('<EMailAddress>bob</EMailAddress>'), 'CX_IDENTITY_ADDRESS'],
    ['SOAP without users', soap.replace(/<a:Users>.*<\/a:Users>/, ''), 'CX_IDENTITY_BODY_MALFORMED'],
  ];
  for (const [name, body, expected] of cases)
    test(name, () => assert.equal(code(autodiscover.identify(post(), bytes(body))), expected));

  test('not UTF-8', () => {
    assert.equal(
      code(autodiscover.identify(post(), new Uint8Array([0x3c, 0xff, 0x3e]))),
      'CX_IDENTITY_BODY_MALFORMED',
    );
  });

  test('too large, declared or buffered', () => {
    const big = post(undefined, { 'content-length': String(autodiscoverMaxBytes + 1) });
    assert.equal(code(autodiscover.identify(big)), 'CX_IDENTITY_BODY_TOO_LARGE');
    assert.equal(
      code(autodiscover.identify(post(), new Uint8Array(autodiscoverMaxBytes + 1))),
      'CX_IDENTITY_BODY_TOO_LARGE',
    );
  });
});

describe('v2 JSON (docs/protocols.md §4.4)', () => {
  test('path form and query form', () => {
    const expected = { kind: 'user', user: 'bob@o365info.com', source: 'autodiscover-url' };
    assert.deepEqual(
      autodiscover.identify(
        get('/autodiscover/autodiscover.json/v1.0/bob@o365info.com', 'Protocol=ActiveSync'),
      ),
      expected,
    );
    assert.deepEqual(
      autodiscover.identify(get('/autodiscover/autodiscover.json/v1.0/bob%40o365info.com', 'Protocol=Ews')),
      expected,
    );
    assert.deepEqual(
      autodiscover.identify(
        get('/autodiscover/autodiscover.json', 'Email=bob%40o365info.com&Protocol=Ews&RedirectCount=1'),
      ),
      expected,
    );
  });

  test('refuses ProxyShell-style and malformed URLs', () => {
    const cases: [string, string, string][] = [
      [
        '/autodiscover/autodiscover.json',
        '@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.com',
        'CX_IDENTITY_ADDRESS',
      ],
      ['/autodiscover/autodiscover.json/v1.0/bob@o365info.com/mapi/nspi', '', 'CX_IDENTITY_PATH_MALFORMED'],
      ['/autodiscover/autodiscover.json/v2.0/bob@o365info.com', '', 'CX_IDENTITY_PATH_MALFORMED'],
      ['/autodiscover/autodiscover.json', 'Protocol=Ews', 'CX_IDENTITY_PATH_MALFORMED'],
      [
        '/autodiscover/autodiscover.json/v1.0/bob@o365info.com',
        'Email=alice@o365info.com',
        'CX_IDENTITY_PATH_MALFORMED',
      ],
      [
        '/autodiscover/autodiscover.json',
        'Email=a@o365info.com&Email=b@o365info.com',
        'CX_IDENTITY_QUERY_MALFORMED',
      ],
    ];
    for (const [path, query, expected] of cases)
      assert.equal(code(autodiscover.identify(get(path, query))), expected, `${path}?${query}`);
  });
});

test('GET autodiscover.xml (the redirect probe) is anonymous', () => {
  assert.deepEqual(autodiscover.identify(get('/autodiscover/autodiscover.xml')), { kind: 'anonymous' });
});

test('matches the three endpoints, any case', () => {
  for (const path of [
    '/Autodiscover/Autodiscover.xml',
    '/autodiscover/autodiscover.svc',
    '/autodiscover/autodiscover.json/v1.0/x@y.com',
    '/AutoDiscover/AutoDiscover.svc/WSSecurity',
  ])
    assert.ok(autodiscover.matches(get(path)), path);
  for (const path of ['/autodiscover', '/autodiscover/other.xml', '/autodiscover/autodiscover.xmlx'])
    assert.ok(!autodiscover.matches(get(path)), path);
});
