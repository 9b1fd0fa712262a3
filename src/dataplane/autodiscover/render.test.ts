/**
 * Autodiscover on the wire: POX outlook/mobilesync (docs/protocols.md §4.2, §4.1 end), SOAP GetUserSettings and
 * GetDomainSettings (§4.3), v2 JSON (§4.4) and every error answer, for the demo users of examples/o365info.yaml
 * (bob 2007 NY, carol 2007 LA, diego 2007 Madrid, alice 2013). Requests go through the real parser; answers
 * are read back with a strict namespace-aware reader (below), so namespaces, nesting and escaping are checked,
 * not just substrings. Shapes follow what exchangelib 4.9 and ews-javascript-api 0.15 read
 * (real-clients-and-ldap.md §2–§3).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseEstate } from '../../config/index.ts';
import type { AutodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import { autodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import type { AutodiscoverRequest } from '../../core/protocols/autodiscover.ts';
import {
  autodiscoverDialect,
  autodiscoverMaxBytes,
  parseAutodiscoverBody,
} from '../../core/protocols/autodiscover.ts';
import { isInvalid, parseGuidAtDomain } from '../../core/protocols/request-head.ts';
import type { AutodiscoverError, RenderContext } from './context.ts';
import { autodiscoverHeaders } from './context.ts';
import { casVersion, deploymentId, ewsSupportedSchemas, mailboxGuid, serverVersionHex } from './exchange.ts';
import { renderAutodiscover, renderAutodiscoverError } from './render.ts';

// ---- a strict XML reader for the answers (well-formedness, namespaces, the five entities and character
// references, XML 1.0 §4.1: the one escape, codec/xml-escape.ts, writes quotes as `&#34;` and `&#39;`) ----

interface XmlNode {
  readonly ns: string;
  readonly name: string;
  /** Attributes by local name, or `{namespace}local` when prefixed; xmlns declarations excluded. */
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: XmlNode[];
  text: string;
}

const entities: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const characterReference = (ref: string): string | undefined => {
  const code = /^#[0-9]+$/.test(ref)
    ? Number(ref.slice(1))
    : /^#x[0-9a-fA-F]+$/.test(ref)
      ? Number.parseInt(ref.slice(2), 16)
      : undefined;
  return code === undefined || code > 0x10ffff ? undefined : String.fromCodePoint(code);
};
const decode = (s: string): string =>
  s.replace(/&([^;]*);|&/g, (m, ref: string | undefined) => {
    const value = ref === undefined ? undefined : (entities[ref] ?? characterReference(ref));
    if (value === undefined) throw new Error(`bad entity ${m}`);
    return value;
  });

function readXml(xml: string): XmlNode {
  const body = xml.replace(/^<\?xml version="1\.0" encoding="utf-8"\?>/, '');
  assert.ok(!body.includes('<?') && !body.includes('<!'), 'no declarations, DTDs or CDATA in answers');
  const stack: { node: XmlNode; scope: Map<string, string> }[] = [];
  let root: XmlNode | undefined;
  const tag = /<(\/?)([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)((?:\s+[A-Za-z_][\w.:-]*="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < body.length) {
    const lt = body.indexOf('<', i);
    const text = body.slice(i, lt < 0 ? body.length : lt);
    const top = stack.at(-1);
    if (top) top.node.text += decode(text);
    else assert.equal(text.trim(), '', 'text outside the root');
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(body);
    assert.ok(m, `malformed tag at ${body.slice(lt, lt + 40)}`);
    const [, closing, qname = '', rawAttrs = '', selfClosing] = m;
    i = tag.lastIndex;
    const [prefix, local] = qname.includes(':') ? qname.split(':') : ['', qname];
    if (closing) {
      const open = stack.pop();
      assert.ok(open, `stray end tag ${qname}`);
      assert.equal(`${open.node.name}`, local, `end tag ${qname} closes ${open.node.name}`);
      continue;
    }
    const scope = new Map(stack.at(-1)?.scope ?? []);
    const pairs = [...rawAttrs.matchAll(/([A-Za-z_][\w.:-]*)="([^"]*)"/g)].map(([, k = '', v = '']) => [
      k,
      decode(v),
    ]);
    for (const [k = '', v = ''] of pairs) {
      if (k === 'xmlns') scope.set('', v);
      else if (k.startsWith('xmlns:')) scope.set(k.slice(6), v);
    }
    const resolve = (p: string): string => {
      const uri = scope.get(p);
      assert.ok(uri !== undefined, `undeclared prefix ${p}`);
      return uri;
    };
    const attrs = new Map<string, string>();
    for (const [k = '', v = ''] of pairs) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
      const at = k.indexOf(':');
      attrs.set(at < 0 ? k : `{${resolve(k.slice(0, at))}}${k.slice(at + 1)}`, v);
    }
    const node: XmlNode = { ns: resolve(prefix ?? ''), name: local ?? '', attrs, children: [], text: '' };
    const parent = stack.at(-1);
    if (parent) parent.node.children.push(node);
    else {
      assert.equal(root, undefined, 'one root element');
      root = node;
    }
    if (!selfClosing) stack.push({ node, scope });
  }
  assert.equal(stack.length, 0, 'every element is closed');
  assert.ok(root, 'a root element');
  return root;
}

/** The children named `name` (in namespace `ns` when given). */
const kids = (node: XmlNode, name: string, ns?: string): XmlNode[] =>
  node.children.filter((c) => c.name === name && (ns === undefined || c.ns === ns));

/** Every element under `node` is in `node`'s namespace (POX responses, SOAP messages: no stray namespace). */
function uniform(node: XmlNode, ns = node.ns): void {
  for (const c of node.children) {
    assert.equal(c.ns, ns, `${c.name} is in ${ns}`);
    uniform(c, ns);
  }
}

/** The one element at a `/`-separated path of local names. */
function at(node: XmlNode, path: string): XmlNode {
  let here = node;
  for (const step of path.split('/')) {
    const found = kids(here, step);
    assert.equal(found.length, 1, `exactly one ${step} under ${here.name}`);
    here = found[0] as XmlNode;
  }
  return here;
}

const textAt = (node: XmlNode, path: string): string => at(node, path).text;
const has = (node: XmlNode, path: string): boolean => {
  const [first, ...rest] = path.split('/');
  const found = kids(node, first ?? '');
  return found.length > 0 && (rest.length === 0 || has(found[0] as XmlNode, rest.join('/')));
};

// ---- the estate, the answers and the context ----

const ns = {
  response: 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006',
  outlook: 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a',
  mobile: 'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006',
  soap11: 'http://schemas.xmlsoap.org/soap/envelope/',
  soap12: 'http://www.w3.org/2003/05/soap-envelope',
  wsa: 'http://www.w3.org/2005/08/addressing',
  autodiscover: 'http://schemas.microsoft.com/exchange/2010/Autodiscover',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
};

const { index } = parseEstate(
  readFileSync(new URL('../../../examples/o365info.yaml', import.meta.url), 'utf8'),
  'o365info.yaml',
);

function answer(address: string): AutodiscoverAnswer {
  const mailbox = index.mailbox(address);
  assert.ok(mailbox, address);
  const a = autodiscoverAnswer(mailbox, index);
  assert.ok(a, address);
  return a;
}

const answerFor = (address: string): AutodiscoverAnswer | 'unknown' | 'not-served' => {
  const mailbox = index.mailbox(address);
  if (mailbox) return autodiscoverAnswer(mailbox, index) ?? 'unknown';
  const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  return index.estate.domains.includes(domain) ? 'unknown' : 'not-served';
};

const ctx: RenderContext = {
  answering: { name: 'CAS2013-NY', fqdn: 'cas2013-ny.o365info.local', version: 2013 },
  organization: index.estate.organization,
  answerFor,
  domains: index.estate.domains,
  externalEwsUrl: 'https://mail.o365info.com/EWS/Exchange.asmx',
  now: () => new Date(Date.UTC(2026, 10, 28, 3, 4, 5, 678)),
};

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function parse(body: string): AutodiscoverRequest {
  const request = parseAutodiscoverBody(bytes(body));
  assert.ok(!isInvalid(request), JSON.stringify(request));
  return request;
}

const outlookRequest = (address: string, acceptable = ns.outlook): string =>
  `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${address}</EMailAddress><AcceptableResponseSchema>${acceptable}</AcceptableResponseSchema></Request></Autodiscover>`;
const mobileRequest = (address: string, acceptable = ns.mobile): string =>
  `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"><Request><EMailAddress>${address}</EMailAddress><AcceptableResponseSchema>${acceptable}</AcceptableResponseSchema></Request></Autodiscover>`;
const userSettingsRequest = (
  users: readonly string[],
  settings: readonly string[],
  envelope = ns.soap11,
): string =>
  `<s:Envelope xmlns:s="${envelope}" xmlns:a="${ns.autodiscover}" xmlns:wsa="${ns.wsa}"><s:Header>` +
  `<a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>` +
  `<wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></s:Header>` +
  `<s:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users>` +
  users.map((u) => `<a:User><a:Mailbox>${u}</a:Mailbox></a:User>`).join('') +
  `</a:Users><a:RequestedSettings>${settings.map((s) => `<a:Setting>${s}</a:Setting>`).join('')}</a:RequestedSettings>` +
  `</a:Request></a:GetUserSettingsRequestMessage></s:Body></s:Envelope>`;
const domainSettingsRequest = (domains: readonly string[], settings: readonly string[]): string =>
  `<s:Envelope xmlns:s="${ns.soap11}" xmlns:a="${ns.autodiscover}"><s:Body><a:GetDomainSettingsRequestMessage><a:Request>` +
  `<a:Domains>${domains.map((d) => `<a:Domain>${d}</a:Domain>`).join('')}</a:Domains>` +
  `<a:RequestedSettings>${settings.map((s) => `<a:Setting>${s}</a:Setting>`).join('')}</a:RequestedSettings>` +
  `<a:RequestedVersion>Exchange2013</a:RequestedVersion></a:Request></a:GetDomainSettingsRequestMessage></s:Body></s:Envelope>`;

/** The outlook answer for `address`: the `Response` element, checked to be in the 2006a namespace. */
function outlookAnswer(address: string, context: RenderContext = ctx, a = answer(address)): XmlNode {
  const reply = renderAutodiscover(parse(outlookRequest(address)), a, context);
  assert.equal(reply.status, 200);
  assert.equal(reply.contentType, 'text/xml; charset=utf-8');
  assert.ok(!reply.body.includes('https://schemas.'), 'http:// namespaces (§8 item 6)');
  const root = readXml(reply.body);
  assert.equal(root.ns, ns.response);
  assert.equal(root.name, 'Autodiscover');
  const response = at(root, 'Response');
  assert.equal(response.ns, ns.outlook);
  uniform(response);
  return response;
}

const protocol = (response: XmlNode, type: string): XmlNode => {
  const found = kids(at(response, 'Account'), 'Protocol').filter(
    (p) => has(p, 'Type') && textAt(p, 'Type') === type,
  );
  assert.equal(found.length, 1, `one ${type} protocol`);
  return found[0] as XmlNode;
};
const hasProtocol = (response: XmlNode, type: string): boolean =>
  kids(at(response, 'Account'), 'Protocol').some(
    (p) => p.attrs.get('Type') === type || (has(p, 'Type') && textAt(p, 'Type') === type),
  );

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const dnPrefix =
  '/o=O365info/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=';

// ---- POX outlook ----

describe('POX outlook 2006a (docs/protocols.md §4.2)', () => {
  test('bob (2007, New York): EXCH to MBX2007-NY with the legacy-namespace EWS, EXPR via mail., WEB legacy OWA', () => {
    const r = outlookAnswer('bob@o365info.com', { ...ctx, mapiHttp: true });
    assert.equal(textAt(r, 'User/DisplayName'), 'Bob');
    assert.equal(
      textAt(r, 'User/LegacyDN'),
      '/o=O365info/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=bob',
    );
    assert.equal(textAt(r, 'User/AutoDiscoverSMTPAddress'), 'bob@o365info.com');
    assert.match(textAt(r, 'User/DeploymentId'), guid);
    assert.equal(textAt(r, 'User/DeploymentId'), deploymentId('O365info'));
    assert.equal(textAt(r, 'Account/AccountType'), 'email');
    assert.equal(textAt(r, 'Account/Action'), 'settings');

    const exch = protocol(r, 'EXCH');
    assert.equal(textAt(exch, 'Server'), 'mbx2007-ny.o365info.local');
    assert.equal(textAt(exch, 'ServerDN'), `${dnPrefix}MBX2007-NY`);
    assert.equal(textAt(exch, 'ServerVersion'), '72038053'); // 8.3.83 (exchangelib Build.from_hex_string)
    assert.equal(textAt(exch, 'MdbDN'), `${dnPrefix}MBX2007-NY/cn=Microsoft Private MDB`);
    // ASUrl is the Availability service, i.e. EWS (§4.2 sample); CAS2007-NY's internal EWS is the legacy name (EWS-1).
    for (const e of ['ASUrl', 'EwsUrl', 'OOFUrl'])
      assert.equal(textAt(exch, e), 'https://legacy.mail.o365info.com/EWS/Exchange.asmx', e);
    assert.equal(textAt(exch, 'OABUrl'), 'https://cas2007-ny.o365info.local/OAB');
    assert.ok(!has(exch, 'EcpUrl'), '2007 has no ECP');

    const expr = protocol(r, 'EXPR');
    assert.equal(textAt(expr, 'Server'), 'mail.o365info.com'); // 2007 OA host = the 2013 host
    assert.equal(textAt(expr, 'SSL'), 'On');
    assert.equal(textAt(expr, 'AuthPackage'), 'Basic');
    assert.equal(textAt(expr, 'ServerVersion'), '72038053');
    assert.equal(textAt(expr, 'EwsUrl'), 'https://legacy.mail.o365info.com/EWS/Exchange.asmx');
    assert.equal(textAt(expr, 'OABUrl'), 'https://legacy.mail.o365info.com/OAB');

    const web = protocol(r, 'WEB');
    const owaUrl = (side: string): XmlNode => at(web, `${side}/OWAUrl`);
    assert.equal(owaUrl('External').text, 'https://legacy.mail.o365info.com/owa');
    assert.equal(owaUrl('External').attrs.get('AuthenticationMethod'), 'Fba');
    assert.equal(owaUrl('Internal').text, 'https://cas2007-ny.o365info.local/owa');
    assert.ok(!hasProtocol(r, 'mapiHttp'), 'no MAPI/HTTP for 2007 mailboxes, even when asked');
  });

  test('carol (2007, Los Angeles, no external URL): the primary namespace outside, and no empty elements', () => {
    const reply = renderAutodiscover(
      parse(outlookRequest('carol@o365info.com')),
      answer('carol@o365info.com'),
      ctx,
    );
    assert.doesNotMatch(reply.body, /<(\w+)(?: [^>]*)?>\s*<\/\1>/, 'no empty element');
    assert.doesNotMatch(reply.body, /\/>/, 'no self-closing element');
    const r = outlookAnswer('carol@o365info.com');
    assert.equal(textAt(protocol(r, 'EXCH'), 'Server'), 'mbx2007-la.o365info.local');
    assert.equal(
      textAt(protocol(r, 'EXCH'), 'EwsUrl'),
      'https://cas2007-la.o365info.local/EWS/Exchange.asmx',
    );
    assert.equal(textAt(protocol(r, 'EXPR'), 'EwsUrl'), 'https://mail.o365info.com/EWS/Exchange.asmx');
    assert.equal(textAt(protocol(r, 'WEB'), 'External/OWAUrl'), 'https://legacy.mail.o365info.com/owa');
  });

  test('diego (2007, Madrid): the regional namespace outside', () => {
    const r = outlookAnswer('diego@o365info.com');
    assert.equal(textAt(protocol(r, 'EXPR'), 'EwsUrl'), 'https://europe.mail.o365info.com/EWS/Exchange.asmx');
    assert.equal(textAt(protocol(r, 'EXCH'), 'Server'), 'mbx2007-mad.o365info.local');
    assert.equal(textAt(protocol(r, 'WEB'), 'External/OWAUrl'), 'https://europe.mail.o365info.com/owa');
  });

  test('alice (2013): GUID server names, 15.0.847, ECP; mapiHttp only with X-MapiHttpCapability', () => {
    const plain = outlookAnswer('alice@o365info.com');
    assert.ok(!hasProtocol(plain, 'mapiHttp'));
    const r = outlookAnswer('alice@o365info.com', { ...ctx, mapiHttp: true });
    const exch = protocol(r, 'EXCH');
    const server = textAt(exch, 'Server');
    assert.equal(server, `${mailboxGuid('alice@o365info.com')}@o365info.com`);
    assert.ok(
      parseGuidAtDomain(server),
      'the MailboxId form MAPI/HTTP and Outlook Anywhere parse (§4.7, §4.8)',
    );
    assert.equal(textAt(exch, 'ServerDN'), `${dnPrefix}${server}`);
    assert.equal(textAt(exch, 'MdbDN'), `${dnPrefix}${server}/cn=Microsoft Private MDB`);
    assert.equal(textAt(exch, 'ServerVersion'), '73C0834F');
    assert.equal(textAt(exch, 'EcpUrl'), 'https://cas2013-ny.o365info.local/ecp/');
    assert.equal(textAt(protocol(r, 'EXPR'), 'Server'), 'mail.o365info.com');
    assert.equal(textAt(protocol(r, 'EXPR'), 'EwsUrl'), 'https://mail.o365info.com/EWS/Exchange.asmx');

    const mapi = kids(at(r, 'Account'), 'Protocol')[0] as XmlNode; // first, as in MS-OXDSCLI §4.4
    assert.equal(mapi.attrs.get('Type'), 'mapiHttp');
    assert.equal(mapi.attrs.get('Version'), '1');
    assert.ok(!has(mapi, 'Type'));
    assert.equal(
      textAt(mapi, 'MailStore/InternalUrl'),
      `https://cas2013-ny.o365info.local/mapi/emsmdb/?MailboxId=${server}`,
    );
    assert.equal(
      textAt(mapi, 'MailStore/ExternalUrl'),
      `https://mail.o365info.com/mapi/emsmdb/?MailboxId=${server}`,
    );
    assert.equal(
      textAt(mapi, 'AddressBook/ExternalUrl'),
      `https://mail.o365info.com/mapi/nspi/?MailboxId=${server}`,
    );

    const fromLegacy = outlookAnswer('alice@o365info.com', {
      ...ctx,
      mapiHttp: true,
      answering: { name: 'CAS2007-NY', fqdn: 'cas2007-ny.o365info.local', version: 2007 },
    });
    assert.ok(!hasProtocol(fromLegacy, 'mapiHttp'), 'only a 2013 SP1+ server adds the block');
  });

  test('the DeploymentId is one per organization; the mailbox GUID is stable per address', () => {
    assert.equal(textAt(outlookAnswer('alice@o365info.com'), 'User/DeploymentId'), deploymentId('o365INFO'));
    assert.notEqual(deploymentId('O365info'), deploymentId('Contoso'));
    assert.equal(mailboxGuid('Alice@O365info.com'), mailboxGuid('alice@o365info.com'));
    assert.notEqual(mailboxGuid('alice@o365info.com'), mailboxGuid('bob@o365info.com'));
    assert.match(mailboxGuid('alice@o365info.com'), guid);
  });

  test('ServerVersion: [0x7][6-bit major][6-bit minor][1][15-bit build] (§4.2, §7)', () => {
    assert.equal(serverVersionHex(2007), '72038053');
    assert.equal(serverVersionHex(2013), '73C0834F');
    const expected = {
      2007: [8, 3, 83],
      2010: [14, 3, 123],
      2013: [15, 0, 847],
      2016: [15, 1, 225],
      2019: [15, 2, 221],
    };
    for (const [version, [major, minor, build]] of Object.entries(expected)) {
      const n = parseInt(serverVersionHex(Number(version) as 2007), 16);
      assert.deepEqual(
        [n >>> 28, (n >>> 22) & 0x3f, (n >>> 16) & 0x3f, (n >>> 15) & 1, n & 0x7fff],
        [7, major, minor, 1, build],
      );
    }
  });

  test('AcceptableResponseSchema: both spellings accepted; another schema is ErrorCode 601', () => {
    const https = ns.outlook.replace('http:', 'https:');
    const ok = renderAutodiscover(
      parse(outlookRequest('bob@o365info.com', https)),
      answer('bob@o365info.com'),
      ctx,
    );
    assert.equal(at(readXml(ok.body), 'Response').ns, ns.outlook);
    const other = renderAutodiscover(
      parse(outlookRequest('bob@o365info.com', ns.mobile)),
      answer('bob@o365info.com'),
      ctx,
    );
    assert.equal(other.status, 200);
    assert.equal(textAt(readXml(other.body), 'Response/Error/ErrorCode'), '601');
  });

  test('every value is escaped, and reads back as it was', () => {
    const bob = answer('bob@o365info.com');
    const hostile = { ...bob, displayName: `</DisplayName><x>&amp;"'`, legacyDn: '/o=A&B/cn=<x>' };
    const r = outlookAnswer('bob@o365info.com', ctx, hostile);
    assert.equal(textAt(r, 'User/DisplayName'), hostile.displayName);
    assert.equal(textAt(r, 'User/LegacyDN'), hostile.legacyDn);
  });
});

// ---- POX mobilesync ----

describe('POX mobilesync (docs/protocols.md §4.1 end)', () => {
  const mobile = (address: string): XmlNode => {
    const reply = renderAutodiscover(parse(mobileRequest(address)), answer(address), ctx);
    assert.equal(reply.status, 200);
    const response = at(readXml(reply.body), 'Response');
    assert.equal(response.ns, ns.mobile);
    uniform(response);
    return response;
  };

  test('one MobileSync server: the external ActiveSync URL of the mailbox site', () => {
    const cases = {
      'diego@o365info.com': 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync',
      'bob@o365info.com': 'https://legacy.mail.o365info.com/Microsoft-Server-ActiveSync',
      'carol@o365info.com': 'https://mail.o365info.com/Microsoft-Server-ActiveSync',
      'alice@o365info.com': 'https://mail.o365info.com/Microsoft-Server-ActiveSync',
    };
    for (const [address, url] of Object.entries(cases)) {
      const r = mobile(address);
      assert.equal(textAt(r, 'Culture'), 'en:us');
      assert.equal(textAt(r, 'User/EMailAddress'), address);
      assert.equal(textAt(r, 'Action/Settings/Server/Type'), 'MobileSync');
      assert.equal(textAt(r, 'Action/Settings/Server/Url'), url, address);
      assert.equal(textAt(r, 'Action/Settings/Server/Name'), url, address);
    }
    assert.equal(textAt(mobile('diego@o365info.com'), 'User/DisplayName'), 'Diego');
  });

  test('the outlook response schema asked of the mobile provider is ErrorCode 601', () => {
    const reply = renderAutodiscover(
      parse(mobileRequest('diego@o365info.com', ns.outlook)),
      answer('diego@o365info.com'),
      ctx,
    );
    const response = at(readXml(reply.body), 'Response');
    assert.equal(response.ns, ns.mobile);
    assert.equal(textAt(response, 'Error/ErrorCode'), '601');
  });
});

// ---- POX errors ----

describe('POX errors (docs/protocols.md §4.2, §4.1 end)', () => {
  const outlookCases: [AutodiscoverError, string, string][] = [
    ['unknown-user', '500', "The email address can't be found."], // exchangelib: ErrorNonExistentMailbox
    ['not-served', '500', "The email address can't be found."],
    ['invalid-request', '600', 'Invalid Request'],
    ['schema-unavailable', '601', 'The requested response schema is not available.'],
    ['server-busy', '603', 'The server is busy. Try again later.'],
    ['internal', '603', 'The server could not build the answer.'],
  ];
  for (const [error, code, message] of outlookCases)
    test(`outlook ${error}: 200, Response/Error ${code} in the base namespace`, () => {
      const reply = renderAutodiscoverError({ schema: 'outlook' }, error, ctx);
      assert.equal(reply.status, 200);
      const root = readXml(reply.body);
      const e = at(root, 'Response/Error');
      assert.equal(e.ns, ns.response, 'exchangelib reads the error Response in the base namespace');
      assert.equal(e.attrs.get('Time'), '03:04:05.6780000');
      assert.match(e.attrs.get('Id') ?? '', /^\d{1,10}$/);
      assert.equal(textAt(e, 'ErrorCode'), code);
      assert.equal(textAt(e, 'Message'), message);
      assert.equal(textAt(e, 'DebugData'), '');
    });

  test('the Error Id is a hash of the answering server name, stable', () => {
    const id = (name: string): string | undefined =>
      at(
        readXml(
          renderAutodiscoverError({ schema: 'outlook' }, 'internal', {
            answering: { ...ctx.answering, name },
          }).body,
        ),
        'Response/Error',
      ).attrs.get('Id');
    assert.equal(id('CAS2013-NY'), id('cas2013-ny'));
    assert.notEqual(id('CAS2013-NY'), id('CAS2007-NY'));
  });

  test('mobilesync 600 and 601: Response/Error in the mobilesync namespace', () => {
    for (const [error, code] of [
      ['invalid-request', '600'],
      ['schema-unavailable', '601'],
    ] as const) {
      const response = at(
        readXml(renderAutodiscoverError({ schema: 'mobilesync' }, error, ctx).body),
        'Response',
      );
      assert.equal(response.ns, ns.mobile);
      assert.equal(textAt(response, 'Error/ErrorCode'), code);
      assert.ok(has(response, 'Error/Message') && has(response, 'Error/DebugData'));
    }
  });

  test('mobilesync unknown user: Action/Error/Status 2 for the address asked', () => {
    const request = parse(mobileRequest('nobody@o365info.com'));
    const reply = renderAutodiscoverError(request, 'unknown-user', ctx);
    assert.equal(reply.status, 200);
    const response = at(readXml(reply.body), 'Response');
    assert.equal(response.ns, ns.mobile);
    assert.equal(textAt(response, 'User/EMailAddress'), 'nobody@o365info.com');
    assert.equal(textAt(response, 'Action/Error/Status'), '2');
    assert.ok(textAt(response, 'Action/Error/Message').length > 0);
  });
});

// ---- SOAP GetUserSettings ----

interface UserResult {
  readonly code: string;
  readonly settings: ReadonlyMap<string, XmlNode>;
  readonly errors: ReadonlyMap<string, string>;
  readonly names: readonly string[];
}

/** The envelope's parts, checked: SOAP envelope, Action and ServerVersionInfo header, the response message. */
function soapAnswer(body: string, operation: 'GetUserSettings' | 'GetDomainSettings', envelope = ns.soap11) {
  const root = readXml(body);
  assert.equal(root.ns, envelope);
  assert.equal(root.name, 'Envelope');
  const header = at(root, 'Header');
  const action = kids(header, 'Action', ns.wsa);
  assert.equal(action.length, 1);
  assert.equal(
    action[0]?.text,
    `http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/${operation}Response`,
  );
  const info = kids(header, 'ServerVersionInfo', ns.autodiscover)[0];
  assert.ok(info);
  const message = kids(at(root, 'Body'), `${operation}ResponseMessage`, ns.autodiscover)[0];
  assert.ok(message, `${operation}ResponseMessage`);
  uniform(message);
  return { info, response: at(message, 'Response') };
}

function userResults(response: XmlNode): UserResult[] {
  return kids(at(response, 'UserResponses'), 'UserResponse').map((u) => {
    assert.equal(at(u, 'RedirectTarget').attrs.get(`{${ns.xsi}}nil`), 'true');
    const settings = kids(at(u, 'UserSettings'), 'UserSetting');
    return {
      code: textAt(u, 'ErrorCode'),
      names: settings.map((s) => textAt(s, 'Name')),
      settings: new Map(settings.map((s) => [textAt(s, 'Name'), s])),
      errors: new Map(
        kids(at(u, 'UserSettingErrors'), 'UserSettingError').map((e) => [
          textAt(e, 'SettingName'),
          textAt(e, 'ErrorCode'),
        ]),
      ),
    };
  });
}

function getUserSettings(
  users: readonly string[],
  settings: readonly string[],
  context: RenderContext = ctx,
) {
  const request = parse(userSettingsRequest(users, settings));
  const first = answerFor(users[0] ?? '');
  const reply =
    typeof first === 'string'
      ? renderAutodiscoverError(request, first === 'unknown' ? 'unknown-user' : 'not-served', context)
      : renderAutodiscover(request, first, context);
  assert.equal(reply.status, 200);
  assert.equal(reply.contentType, 'text/xml; charset=utf-8');
  const { info, response } = soapAnswer(reply.body, 'GetUserSettings');
  return { info, response, users: userResults(response) };
}

/** A StringSetting's value (its `i:type` resolved through the xsi namespace, as ews-javascript-api reads it). */
function value(result: UserResult | undefined, name: string): string {
  const setting = result?.settings.get(name);
  assert.ok(setting, `${name} is answered`);
  assert.equal(setting.attrs.get(`{${ns.xsi}}type`), 'StringSetting', name);
  return textAt(setting, 'Value');
}

const everySupported = [
  'UserDisplayName',
  'UserDN',
  'UserDeploymentId',
  'AutoDiscoverSMTPAddress',
  'MailboxDN',
  'InternalMailboxServer',
  'InternalMailboxServerDN',
  'ExternalMailboxServer',
  'ExternalMailboxServerRequiresSSL',
  'ExternalMailboxServerAuthenticationMethods',
  'InternalRpcClientServer',
  'ActiveDirectoryServer',
  'InternalEwsUrl',
  'ExternalEwsUrl',
  'EwsSupportedSchemas',
  'CasVersion',
  'InternalOABUrl',
  'ExternalOABUrl',
  'InternalWebClientUrls',
  'ExternalWebClientUrls',
  'InternalEcpUrl',
  'ExternalEcpUrl',
  'MobileMailboxPolicy',
  'GroupingInformation',
  'MapiHttpEnabled',
  'ExternalEwsVersion',
  'UserMSOnline',
  'CrossOrganizationSharingEnabled',
  'PublicFolderServer',
];

describe('SOAP GetUserSettings (docs/protocols.md §4.3)', () => {
  test('the envelope: SOAP 1.1, a:Action …/GetUserSettingsResponse, ServerVersionInfo of the answering server', () => {
    const { info, response } = getUserSettings(['bob@o365info.com'], ['UserDisplayName']);
    assert.deepEqual(
      ['MajorVersion', 'MinorVersion', 'MajorBuildNumber', 'MinorBuildNumber', 'Version'].map((n) =>
        textAt(info, n),
      ),
      ['15', '0', '847', '32', 'Exchange2013_SP1'],
    );
    assert.equal(textAt(response, 'ErrorCode'), 'NoError');
    const sixteen = getUserSettings(['bob@o365info.com'], ['CasVersion'], {
      ...ctx,
      answering: { name: 'CAS2016-NY', fqdn: 'cas2016-ny.o365info.local', version: 2016 },
    });
    assert.equal(textAt(sixteen.info, 'Version'), 'Exchange2016');
    assert.equal(value(sixteen.users[0], 'CasVersion'), '15.01.0225.042');
  });

  test("bob with exchangelib's six settings: exactly those, in order, and no UserSettingError (exchangelib treats any as fatal)", () => {
    const asked = [
      'UserDN',
      'MailboxDN',
      'UserDisplayName',
      'AutoDiscoverSMTPAddress',
      'ExternalEwsUrl',
      'EwsSupportedSchemas',
    ];
    const [bob, ...rest] = getUserSettings(['bob@o365info.com'], asked).users;
    assert.equal(rest.length, 0);
    assert.equal(bob?.code, 'NoError');
    assert.deepEqual(bob?.names, asked);
    assert.equal(bob?.errors.size, 0);
    assert.equal(value(bob, 'MailboxDN'), `${dnPrefix}MBX2007-NY/cn=Microsoft Private MDB`);
    assert.equal(value(bob, 'ExternalEwsUrl'), 'https://legacy.mail.o365info.com/EWS/Exchange.asmx');
    assert.equal(value(bob, 'EwsSupportedSchemas'), 'Exchange2007, Exchange2007_SP1');
  });

  test("alice with ews-javascript-api's settings: 2013 schemas and the answering CAS's version", () => {
    const [alice] = getUserSettings(
      ['alice@o365info.com'],
      ['ExternalEwsUrl', 'InternalEwsUrl', 'UserDisplayName', 'EwsSupportedSchemas', 'CasVersion'],
    ).users;
    assert.equal(value(alice, 'ExternalEwsUrl'), 'https://mail.o365info.com/EWS/Exchange.asmx');
    assert.equal(value(alice, 'InternalEwsUrl'), 'https://cas2013-ny.o365info.local/EWS/Exchange.asmx');
    assert.equal(value(alice, 'EwsSupportedSchemas'), ewsSupportedSchemas(2013));
    assert.match(value(alice, 'EwsSupportedSchemas'), /, Exchange2013, Exchange2013_SP1$/);
    assert.equal(value(alice, 'CasVersion'), '15.00.0847.032');
  });

  test('every supported name is answered or SettingIsNotAvailable, never InvalidSetting, for every demo user', () => {
    for (const user of [
      'alice@o365info.com',
      'bob@o365info.com',
      'carol@o365info.com',
      'diego@o365info.com',
    ]) {
      const [result] = getUserSettings([user], everySupported).users;
      assert.ok(result);
      for (const name of everySupported)
        assert.ok(
          result.settings.has(name) !== result.errors.has(name),
          `${user} ${name}: exactly one of value or error`,
        );
      for (const [name, code] of result.errors)
        assert.equal(code, 'SettingIsNotAvailable', `${user} ${name}`);
      assert.deepEqual(
        result.names,
        everySupported.filter((n) => result.settings.has(n)),
        'request order',
      );
    }
  });

  test('values per mailbox version: RPC server names, Outlook Anywhere, ECP, grouping, MAPI/HTTP', () => {
    const [bob] = getUserSettings(['bob@o365info.com'], everySupported).users;
    assert.equal(value(bob, 'InternalMailboxServer'), 'mbx2007-ny.o365info.local');
    assert.equal(value(bob, 'InternalRpcClientServer'), 'mbx2007-ny.o365info.local');
    assert.equal(value(bob, 'InternalMailboxServerDN'), `${dnPrefix}MBX2007-NY`);
    assert.equal(value(bob, 'ExternalMailboxServer'), 'mail.o365info.com');
    assert.equal(value(bob, 'ExternalMailboxServerRequiresSSL'), 'True');
    assert.equal(value(bob, 'ExternalMailboxServerAuthenticationMethods'), 'Basic');
    assert.equal(value(bob, 'ExternalEwsVersion'), casVersion(2007));
    assert.equal(value(bob, 'ExternalEwsVersion'), '08.03.0083.006');
    assert.equal(value(bob, 'UserDeploymentId'), deploymentId('O365info'));
    assert.equal(value(bob, 'GroupingInformation'), 'CAS2007-NY');
    assert.equal(value(bob, 'MapiHttpEnabled'), 'False');
    assert.equal(value(bob, 'UserMSOnline'), 'False');
    assert.equal(bob?.errors.get('InternalEcpUrl'), 'SettingIsNotAvailable', '2007 has no ECP');
    assert.equal(bob?.errors.get('ActiveDirectoryServer'), 'SettingIsNotAvailable');

    const [alice] = getUserSettings(['alice@o365info.com'], everySupported, {
      ...ctx,
      activeDirectoryServer: 'dc1.o365info.local',
    }).users;
    assert.equal(value(alice, 'InternalMailboxServer'), `${mailboxGuid('alice@o365info.com')}@o365info.com`);
    assert.equal(
      value(alice, 'MailboxDN'),
      `${dnPrefix}${mailboxGuid('alice@o365info.com')}@o365info.com/cn=Microsoft Private MDB`,
    );
    assert.equal(value(alice, 'InternalEcpUrl'), 'https://cas2013-ny.o365info.local/ecp');
    assert.equal(value(alice, 'ExternalEcpUrl'), 'https://mail.o365info.com/ecp');
    assert.equal(value(alice, 'MapiHttpEnabled'), 'True');
    assert.equal(value(alice, 'ActiveDirectoryServer'), 'dc1.o365info.local');
    assert.equal(value(alice, 'ExternalEwsVersion'), '15.00.0847.032');

    const [diego] = getUserSettings(['diego@o365info.com'], ['ExternalEwsUrl', 'ExternalOABUrl']).users;
    assert.equal(value(diego, 'ExternalEwsUrl'), 'https://europe.mail.o365info.com/EWS/Exchange.asmx');
    assert.equal(value(diego, 'ExternalOABUrl'), 'https://europe.mail.o365info.com/OAB');
    const [carol] = getUserSettings(['carol@o365info.com'], ['ExternalEwsUrl', 'InternalEwsUrl']).users;
    assert.equal(value(carol, 'ExternalEwsUrl'), 'https://mail.o365info.com/EWS/Exchange.asmx');
    assert.equal(value(carol, 'InternalEwsUrl'), 'https://cas2007-la.o365info.local/EWS/Exchange.asmx');
  });

  test('a 2010 mailbox: schemas up to Exchange2010_SP2, ServerVersion 14.3.123', () => {
    const as2010: AutodiscoverAnswer = { ...answer('bob@o365info.com'), mailboxVersion: 2010 };
    const request = parse(userSettingsRequest(['bob@o365info.com'], ['EwsSupportedSchemas']));
    const [bob] = userResults(
      soapAnswer(renderAutodiscover(request, as2010, ctx).body, 'GetUserSettings').response,
    );
    assert.equal(
      value(bob, 'EwsSupportedSchemas'),
      'Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2',
    );
    assert.equal(
      textAt(protocol(outlookAnswer('bob@o365info.com', ctx, as2010), 'EXCH'), 'ServerVersion'),
      '7383807B',
    );
  });

  test('web client URLs are a WebClientUrlCollectionSetting (ews-javascript-api WebClientUrlCollection)', () => {
    const [bob] = getUserSettings(
      ['bob@o365info.com'],
      ['ExternalWebClientUrls', 'InternalWebClientUrls'],
    ).users;
    const external = bob?.settings.get('ExternalWebClientUrls');
    assert.ok(external);
    assert.equal(external.attrs.get(`{${ns.xsi}}type`), 'WebClientUrlCollectionSetting');
    assert.equal(textAt(external, 'WebClientUrls/WebClientUrl/AuthenticationMethods'), 'Fba');
    assert.equal(textAt(external, 'WebClientUrls/WebClientUrl/Url'), 'https://legacy.mail.o365info.com/owa');
    assert.equal(
      textAt(bob?.settings.get('InternalWebClientUrls') as XmlNode, 'WebClientUrls/WebClientUrl/Url'),
      'https://cas2007-ny.o365info.local/owa',
    );
  });

  test('an unknown setting name is InvalidSetting, escaped; the known ones are still answered', () => {
    const request = parse(
      userSettingsRequest(
        ['bob@o365info.com'],
        ['NoSuchSetting', 'x&lt;/SettingName&gt;&lt;y&gt;&amp;', 'constructor', 'UserDisplayName'],
      ),
    );
    const reply = renderAutodiscover(request, answer('bob@o365info.com'), ctx);
    const [bob] = userResults(soapAnswer(reply.body, 'GetUserSettings').response);
    assert.equal(bob?.errors.get('NoSuchSetting'), 'InvalidSetting');
    assert.equal(bob?.errors.get('x</SettingName><y>&'), 'InvalidSetting');
    assert.equal(bob?.errors.get('constructor'), 'InvalidSetting');
    assert.equal(value(bob, 'UserDisplayName'), 'Bob');
  });

  test('several users: each in request order; an alias resolves; unknown InvalidUser; a foreign domain InvalidDomain', () => {
    const users = [
      'bob@o365info.com',
      'alice.smith@o365info.com',
      'nobody@o365info.com',
      'x@other.org',
      'not-an-address',
    ];
    const results = getUserSettings(users, ['AutoDiscoverSMTPAddress']).users;
    assert.deepEqual(
      results.map((r) => r.code),
      ['NoError', 'NoError', 'InvalidUser', 'InvalidDomain', 'InvalidUser'],
    );
    assert.equal(value(results[0], 'AutoDiscoverSMTPAddress'), 'bob@o365info.com');
    assert.equal(value(results[1], 'AutoDiscoverSMTPAddress'), 'alice@o365info.com');
    assert.equal(results[2]?.settings.size, 0);
  });

  test('an unknown first user: UserResponse InvalidUser; with a full context the others are still answered', () => {
    const results = getUserSettings(['nobody@o365info.com', 'bob@o365info.com'], ['UserDisplayName']).users;
    assert.deepEqual(
      results.map((r) => r.code),
      ['InvalidUser', 'NoError'],
    );
    assert.equal(value(results[1], 'UserDisplayName'), 'Bob');
    const bare = renderAutodiscoverError(
      parse(userSettingsRequest(['nobody@o365info.com', 'bob@o365info.com'], ['UserDisplayName'])),
      'unknown-user',
      { answering: ctx.answering },
    );
    assert.deepEqual(
      userResults(soapAnswer(bare.body, 'GetUserSettings').response).map((r) => r.code),
      ['InvalidUser', 'InvalidUser'],
    );
    const foreign = getUserSettings(['x@other.org'], ['UserDisplayName']).users;
    assert.deepEqual(
      foreign.map((r) => r.code),
      ['InvalidDomain'],
    );
  });

  test('SOAP 1.2 in, SOAP 1.2 out', () => {
    const request = parse(userSettingsRequest(['bob@o365info.com'], ['UserDisplayName'], ns.soap12));
    const reply = renderAutodiscover(request, answer('bob@o365info.com'), ctx);
    assert.equal(reply.contentType, 'application/soap+xml; charset=utf-8');
    soapAnswer(reply.body, 'GetUserSettings', ns.soap12);
  });

  test('no setting requested, or no user: a Response-level InvalidRequest', () => {
    for (const body of [
      userSettingsRequest(['bob@o365info.com'], []),
      userSettingsRequest([], ['UserDisplayName']),
    ]) {
      const reply = renderAutodiscover(parse(body), answer('bob@o365info.com'), ctx);
      assert.equal(reply.status, 200);
      const { response } = soapAnswer(reply.body, 'GetUserSettings');
      assert.equal(textAt(response, 'ErrorCode'), 'InvalidRequest');
      assert.equal(kids(at(response, 'UserResponses'), 'UserResponse').length, 0);
    }
  });
});

// ---- SOAP GetDomainSettings ----

describe('SOAP GetDomainSettings (MS-OXWSADISC)', () => {
  const domainResults = (reply: { body: string }) =>
    kids(at(soapAnswer(reply.body, 'GetDomainSettings').response, 'DomainResponses'), 'DomainResponse').map(
      (d) => ({
        code: textAt(d, 'ErrorCode'),
        settings: new Map(
          kids(at(d, 'DomainSettings'), 'DomainSetting').map((s) => {
            assert.equal(s.attrs.get(`{${ns.xsi}}type`), 'DomainStringSetting');
            return [textAt(s, 'Name'), textAt(s, 'Value')];
          }),
        ),
        errors: new Map(
          kids(at(d, 'DomainSettingErrors'), 'DomainSettingError').map((e) => [
            textAt(e, 'SettingName'),
            textAt(e, 'ErrorCode'),
          ]),
        ),
      }),
    );

  test('an accepted domain gets ExternalEwsUrl and ExternalEwsVersion; another domain InvalidDomain', () => {
    const request = parse(
      domainSettingsRequest(['O365info.com', 'other.org'], ['ExternalEwsUrl', 'ExternalEwsVersion', 'Bogus']),
    );
    const reply = renderAutodiscover(request, answer('bob@o365info.com'), ctx);
    assert.equal(reply.status, 200);
    // ews-javascript-api 0.15.3 throws on an empty <DomainSettings/>: never send one.
    assert.doesNotMatch(reply.body, /<DomainSettings\s*\/>/);
    const [ours, theirs] = domainResults(reply);
    assert.equal(ours?.code, 'NoError');
    assert.deepEqual(
      [...(ours?.settings ?? [])],
      [
        ['ExternalEwsUrl', 'https://mail.o365info.com/EWS/Exchange.asmx'],
        ['ExternalEwsVersion', '15.00.0847.032'],
      ],
    );
    assert.deepEqual([...(ours?.errors ?? [])], [['Bogus', 'InvalidSetting']]);
    assert.equal(theirs?.code, 'InvalidDomain');
    assert.equal(theirs?.settings.size, 0);
  });

  test('without the estate EWS URL the settings are SettingIsNotAvailable', () => {
    const without: RenderContext = { ...ctx, externalEwsUrl: undefined };
    const request = parse(domainSettingsRequest(['o365info.com'], ['ExternalEwsUrl', 'ExternalEwsVersion']));
    const [ours] = domainResults(renderAutodiscover(request, answer('bob@o365info.com'), without));
    assert.deepEqual(
      [...(ours?.errors ?? [])],
      [
        ['ExternalEwsUrl', 'SettingIsNotAvailable'],
        ['ExternalEwsVersion', 'SettingIsNotAvailable'],
      ],
    );
  });
});

// ---- SOAP errors ----

describe('SOAP errors (docs/protocols.md §4.3 ErrorCodes)', () => {
  const cases: [AutodiscoverError, string][] = [
    ['invalid-request', 'InvalidRequest'],
    ['schema-unavailable', 'InvalidRequest'],
    ['server-busy', 'ServerBusy'],
    ['internal', 'InternalServerError'],
    ['unknown-user', 'InvalidUser'],
  ];
  for (const [error, code] of cases)
    test(`${error}: HTTP 200, Response ErrorCode ${code}, no UserResponse`, () => {
      const reply = renderAutodiscoverError({ schema: 'soap' }, error, ctx);
      assert.equal(reply.status, 200);
      const { response } = soapAnswer(reply.body, 'GetUserSettings');
      assert.equal(textAt(response, 'ErrorCode'), code);
      assert.equal(kids(at(response, 'UserResponses'), 'UserResponse').length, 0);
    });
});

// ---- JSON ----

describe('Autodiscover v2 JSON (docs/protocols.md §4.4)', () => {
  const json = (address: string, protocol: string | undefined, context: RenderContext = ctx) => {
    const request: AutodiscoverRequest = {
      schema: 'json',
      address,
      ...(protocol === undefined ? {} : { protocol }),
    };
    const reply = renderAutodiscover(request, answer(address), context);
    assert.equal(reply.contentType, 'application/json; charset=utf-8');
    return { status: reply.status, body: JSON.parse(reply.body) as Record<string, string> };
  };

  test('ActiveSync, EWS and AutodiscoverV1, case-insensitively', () => {
    assert.deepEqual(json('diego@o365info.com', 'activesync'), {
      status: 200,
      body: { Protocol: 'ActiveSync', Url: 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync' },
    });
    assert.deepEqual(json('bob@o365info.com', 'Ews').body, {
      Protocol: 'EWS',
      Url: 'https://legacy.mail.o365info.com/EWS/Exchange.asmx',
    });
    assert.deepEqual(json('carol@o365info.com', 'EWS').body, {
      Protocol: 'EWS',
      Url: 'https://mail.o365info.com/EWS/Exchange.asmx',
    });
    assert.deepEqual(json('alice@o365info.com', 'AUTODISCOVERV1').body, {
      Protocol: 'AutodiscoverV1',
      Url: 'https://mail.o365info.com/Autodiscover/Autodiscover.xml',
    });
    const configured = {
      ...ctx,
      autodiscoverUrl: 'https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml',
    };
    assert.equal(
      json('bob@o365info.com', 'AutodiscoverV1', configured).body['Url'],
      configured.autodiscoverUrl,
    );
  });

  test('another protocol, or none: 400 InvalidProtocol, safely quoted', () => {
    for (const protocol of ['Rest', undefined, `x"}<y>`]) {
      const { status, body } = json('bob@o365info.com', protocol);
      assert.equal(status, 400);
      assert.equal(body['ErrorCode'], 'InvalidProtocol');
      assert.ok(body['ErrorMessage']?.includes(`'${protocol ?? ''}'`));
    }
  });

  test('errors: unknown user or domain 404, invalid request 400, busy 503, internal 500', () => {
    const cases: [AutodiscoverError, number, string][] = [
      ['unknown-user', 404, 'InvalidUser'],
      ['not-served', 404, 'InvalidDomain'],
      ['invalid-request', 400, 'InvalidRequest'],
      ['server-busy', 503, 'ServerBusy'],
      ['internal', 500, 'InternalServerError'],
    ];
    for (const [error, status, code] of cases) {
      const reply = renderAutodiscoverError({ schema: 'json' }, error, ctx);
      assert.equal(reply.status, status, error);
      assert.equal(reply.contentType, 'application/json; charset=utf-8');
      assert.equal((JSON.parse(reply.body) as { ErrorCode: string }).ErrorCode, code);
    }
  });
});

// ---- hostile bodies ----

describe('hostile bodies through the parser get clean error answers', () => {
  const poxNs = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006';
  const billionLaughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><Autodiscover xmlns="${poxNs}"><Request><EMailAddress>&lol2;</EMailAddress></Request></Autodiscover>`;
  const xxe = `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Autodiscover xmlns="${poxNs}"><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>`;
  const soapXxe = `<!DOCTYPE s [<!ENTITY e SYSTEM "file:///etc/passwd">]>${userSettingsRequest(['&e;'], ['UserDisplayName'])}`;
  const cases: [string, string, Uint8Array][] = [
    ['billion laughs', '/autodiscover/autodiscover.xml', bytes(billionLaughs)],
    ['XXE', '/autodiscover/autodiscover.xml', bytes(xxe)],
    ['XXE over SOAP', '/autodiscover/autodiscover.svc', bytes(soapXxe)],
    [
      'oversize',
      '/autodiscover/autodiscover.xml',
      bytes(outlookRequest('bob@o365info.com').padEnd(autodiscoverMaxBytes + 1, ' ')),
    ],
    [
      'mismatched tags',
      '/autodiscover/autodiscover.xml',
      bytes(outlookRequest('bob@o365info.com').replace('</Request>', '</Requests>')),
    ],
    [
      'CDATA',
      '/autodiscover/autodiscover.svc',
      bytes(userSettingsRequest(['<![CDATA[bob@o365info.com]]>'], ['UserDisplayName'])),
    ],
    ['not UTF-8', '/autodiscover/autodiscover.svc', new Uint8Array([0x3c, 0xff, 0xfe, 0x3e])],
    [
      'unknown SOAP operation',
      '/autodiscover/autodiscover.svc',
      bytes(
        userSettingsRequest(['bob@o365info.com'], ['UserDisplayName']).replaceAll(
          'GetUserSettings',
          'GetFederationInformation',
        ),
      ),
    ],
    [
      'too many users',
      '/autodiscover/autodiscover.svc',
      bytes(
        userSettingsRequest(
          Array.from({ length: 101 }, (_, i) => `u${i}@o365info.com`),
          ['UserDisplayName'],
        ),
      ),
    ],
    [
      'mobilesync, truncated',
      '/autodiscover/autodiscover.xml',
      bytes(mobileRequest('diego@o365info.com').slice(0, -20)),
    ],
  ];
  for (const [name, path, body] of cases)
    test(name, () => {
      const parsed = parseAutodiscoverBody(body);
      assert.ok(isInvalid(parsed), `${name} is refused by the parser`);
      const dialect = autodiscoverDialect({ path }, body);
      const reply = renderAutodiscoverError({ schema: dialect }, 'invalid-request', ctx);
      assert.equal(reply.status, 200);
      assert.doesNotMatch(reply.body, /passwd|lol|DOCTYPE|ENTITY/);
      const root = readXml(reply.body);
      if (dialect === 'soap')
        assert.equal(
          textAt(at(at(root, 'Body'), 'GetUserSettingsResponseMessage'), 'Response/ErrorCode'),
          'InvalidRequest',
        );
      else {
        assert.equal(textAt(root, 'Response/Error/ErrorCode'), '600');
        assert.equal(at(root, 'Response').ns, dialect === 'mobilesync' ? ns.mobile : ns.response);
      }
    });
});

test('autodiscoverHeaders: X-SOAP-Enabled: True on every answer (ews-javascript-api finds autodiscover.svc by it)', () => {
  assert.deepEqual(autodiscoverHeaders, { 'x-soap-enabled': 'True' });
  assert.ok(Object.isFrozen(autodiscoverHeaders));
});
