/**
 * Autodiscover: POX (`autodiscover.xml`, outlook and mobilesync 2006 request schemas, protocol-facts §4.2),
 * SOAP GetUserSettings (`autodiscover.svc`, §4.3) and v2 JSON (`autodiscover.json`, §4.4). POX and SOAP name
 * the user in a small body the pipeline buffers first (§3). The body is read by a strict scanner for these
 * few elements, not an XML library: no DTD, no entities beyond the five predefined, no CDATA.
 */
import { basicUser } from './basic-auth.ts';
import type { Identity, Invalid, ProtocolModule, RequestHead } from './request-head.ts';
import {
  checkBodySize,
  decodeUtf8,
  invalid,
  isInvalid,
  isSmtpAddress,
  parseQuery,
  percentDecode,
  single,
  underPath,
} from './request-head.ts';

/** The largest Autodiscover body coexist reads (real requests are well under 1 KiB). */
export const autodiscoverMaxBytes = 64 * 1024;

/** What an Autodiscover request asks about. */
export type AutodiscoverRequest =
  | { readonly schema: 'outlook' | 'mobilesync'; readonly address?: string; readonly legacyDn?: string }
  | { readonly schema: 'soap'; readonly mailboxes: readonly string[] }
  | { readonly schema: 'json'; readonly address: string; readonly protocol?: string };

// Both spellings: the http:// of the specifications and the https:// of the broken Learn pages (§ warning).
const poxSchema =
  /^https?:\/\/schemas\.microsoft\.com\/exchange\/autodiscover\/(outlook|mobilesync)\/requestschema\/2006$/;
const soapEnvelopes = [
  'http://schemas.xmlsoap.org/soap/envelope/',
  'http://www.w3.org/2003/05/soap-envelope',
];
const poxPaths = { address: 'Autodiscover/Request/EMailAddress', legacyDn: 'Autodiscover/Request/LegacyDN' };
const soapMailbox = 'Envelope/Body/GetUserSettingsRequestMessage/Request/Users/User/Mailbox';

const malformed = (detail: string): Invalid => invalid('CX_IDENTITY_BODY_MALFORMED', detail);
const predefined: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Replace the predefined and numeric character references; undefined on any other `&`. */
function unescapeXml(text: string): string | undefined {
  let ok = true;
  const out = text.replace(/&([^;&<]*);?/g, (whole, ref: string) => {
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref);
    const code = m ? parseInt(m[1] ?? m[2] ?? '', m[1] ? 16 : 10) : undefined;
    const value = whole.endsWith(';')
      ? (predefined[ref] ??
        (code !== undefined && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : undefined))
      : undefined;
    if (value === undefined) ok = false;
    return value ?? '';
  });
  return ok ? out : undefined;
}

/**
 * Scan an XML document for the text of elements at the given local-name paths (prefixes ignored), checking
 * that tags nest. Returns the root's namespace and the texts found per path, in document order.
 */
function scanXml(
  xml: string,
  wanted: readonly string[],
): { rootNs: string; found: Map<string, string[]> } | Invalid {
  if (/<!(?:doctype|entity|element|attlist|notation)/i.test(xml))
    return invalid('CX_IDENTITY_XML_DTD', 'XML markup declarations are refused');
  const stack: string[] = [];
  const found = new Map<string, string[]>();
  let rootNs: string | undefined;
  let text = '';
  let justOpened = false;
  let i = 0;
  const name = /([A-Za-z_][\w.-]*)(?::([A-Za-z_][\w.-]*))?/y;
  const attribute = /\s+([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;
  const close = /\s*(\/?)>/y;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const chunk = xml.slice(i, lt < 0 ? xml.length : lt);
    if (stack.length === 0 && chunk.trim() !== '') return malformed('text outside the root element');
    text += chunk;
    if (lt < 0) break;
    if (xml.startsWith('<?', lt) || xml.startsWith('<!--', lt)) {
      const end = xml.indexOf(xml[lt + 1] === '?' ? '?>' : '-->', lt + 2);
      if (end < 0) return malformed('unterminated comment or processing instruction');
      i = end + (xml[lt + 1] === '?' ? 2 : 3);
      continue;
    }
    if (xml.startsWith('<!', lt)) return malformed('CDATA sections are not accepted');
    const closing = xml[lt + 1] === '/';
    name.lastIndex = lt + (closing ? 2 : 1);
    const n = name.exec(xml);
    if (!n) return malformed('malformed tag');
    const local = n[2] ?? n[1] ?? '';
    const attributes = new Map<string, string>();
    let at = name.lastIndex;
    attribute.lastIndex = at;
    for (let a = closing ? null : attribute.exec(xml); a; a = attribute.exec(xml)) {
      attributes.set(a[1] ?? '', a[2] ?? a[3] ?? '');
      at = attribute.lastIndex;
    }
    close.lastIndex = at;
    const c = close.exec(xml);
    if (!c || (closing && c[1] === '/')) return malformed('malformed tag');
    i = close.lastIndex;
    if (!closing) {
      if (rootNs !== undefined && stack.length === 0) return malformed('more than one root element');
      if (stack.length >= 32) return malformed('elements nested too deep');
      rootNs ??= attributes.get(n[2] ? `xmlns:${n[1]}` : 'xmlns') ?? '';
    }
    if (closing || c[1] === '/') {
      if (!closing) stack.push(local);
      const path = stack.join('/');
      if (stack.pop() !== local) return malformed(`unexpected end tag ${local}`);
      if (wanted.includes(path)) {
        const value = unescapeXml(closing && justOpened ? text : ''); // leaf text only
        if (value === undefined) return malformed(`unknown entity reference in ${local}`);
        found.set(path, [...(found.get(path) ?? []), value.trim()]);
      }
      justOpened = false;
    } else {
      stack.push(local);
      justOpened = true;
    }
    text = '';
  }
  if (rootNs === undefined || stack.length > 0) return malformed('the XML document is incomplete');
  return { rootNs, found };
}

/** Read a POX or SOAP Autodiscover body (UTF-8, at most `autodiscoverMaxBytes`). */
export function parseAutodiscoverBody(body: Uint8Array): AutodiscoverRequest | Invalid {
  if (body.length > autodiscoverMaxBytes)
    return invalid('CX_IDENTITY_BODY_TOO_LARGE', `body larger than ${autodiscoverMaxBytes} bytes`);
  const xml = decodeUtf8(body);
  if (xml === undefined) return malformed('the body is not UTF-8');
  const scan = scanXml(xml, [poxPaths.address, poxPaths.legacyDn, soapMailbox]);
  if (isInvalid(scan)) return scan;
  const pox = poxSchema.exec(scan.rootNs);
  if (pox) {
    const address = scan.found.get(poxPaths.address) ?? [];
    const legacyDn = scan.found.get(poxPaths.legacyDn) ?? [];
    if (address.length > 1 || legacyDn.length > 1) return malformed('more than one EMailAddress or LegacyDN');
    return {
      schema: pox[1] === 'mobilesync' ? 'mobilesync' : 'outlook',
      ...(address[0] ? { address: address[0] } : {}),
      ...(legacyDn[0] ? { legacyDn: legacyDn[0] } : {}),
    };
  }
  if (soapEnvelopes.includes(scan.rootNs))
    return { schema: 'soap', mailboxes: scan.found.get(soapMailbox) ?? [] };
  return malformed('not an Autodiscover 2006 request schema nor a SOAP envelope');
}

/** Read the v2 JSON form: `/autodiscover/autodiscover.json/v1.0/{email}` or `?Email=` (§4.4). */
export function parseAutodiscoverJson(head: RequestHead): AutodiscoverRequest | Invalid {
  const rest = head.path.slice('/autodiscover/autodiscover.json'.length).split('/');
  const q = parseQuery(head.query);
  if (!q) return invalid('CX_IDENTITY_QUERY_MALFORMED', 'query has a malformed percent escape');
  const email = single(q, 'Email', 'CX_IDENTITY_QUERY_MALFORMED');
  const protocol = single(q, 'Protocol', 'CX_IDENTITY_QUERY_MALFORMED');
  if (isInvalid(email)) return email;
  if (isInvalid(protocol)) return protocol;
  let address: string | undefined;
  if (rest.length === 3 && rest[1]?.toLowerCase() === 'v1.0') address = percentDecode(rest[2] ?? '', false);
  else if (rest.length > 2 || rest.some((s) => s !== ''))
    return invalid(
      'CX_IDENTITY_PATH_MALFORMED',
      'the path is not /autodiscover/autodiscover.json/v1.0/<address>',
    );
  if (address !== undefined && email !== undefined && email !== address)
    return invalid('CX_IDENTITY_PATH_MALFORMED', 'the path and the Email parameter name different addresses');
  address ??= email;
  if (!address) return invalid('CX_IDENTITY_PATH_MALFORMED', 'no address in the path or the Email parameter');
  if (!isSmtpAddress(address)) return invalid('CX_IDENTITY_ADDRESS', 'the Autodiscover address is not SMTP');
  return { schema: 'json', address, ...(protocol ? { protocol } : {}) };
}

/** The identity an Autodiscover request names (LegacyDN wins over EMailAddress, §4.2; first SOAP user, §3). */
export function autodiscoverIdentity(request: AutodiscoverRequest, basic?: string): Identity {
  const withBasic = basic === undefined ? {} : { basicUser: basic };
  switch (request.schema) {
    case 'json':
      return { kind: 'user', user: request.address, source: 'autodiscover-url', ...withBasic };
    case 'soap': {
      const first = request.mailboxes[0];
      if (!first) return malformed('GetUserSettingsRequestMessage names no Mailbox');
      if (!isSmtpAddress(first)) return invalid('CX_IDENTITY_ADDRESS', 'the SOAP Mailbox is not SMTP');
      return { kind: 'user', user: first, source: 'autodiscover-body', ...withBasic };
    }
    default:
      if (request.legacyDn !== undefined) {
        if (!/^\/o=[^\n\r]+$/i.test(request.legacyDn)) return malformed('LegacyDN is not an X.500 DN');
        return { kind: 'user', user: request.legacyDn, source: 'autodiscover-legacy-dn', ...withBasic };
      }
      if (request.address === undefined)
        return malformed('the request has neither EMailAddress nor LegacyDN');
      if (!isSmtpAddress(request.address)) return invalid('CX_IDENTITY_ADDRESS', 'EMailAddress is not SMTP');
      return { kind: 'user', user: request.address, source: 'autodiscover-body', ...withBasic };
  }
}

const isJson = (head: RequestHead): boolean => underPath(head.path, '/autodiscover/autodiscover.json');

/** Autodiscover: JSON from the URL; POX/SOAP from the body (asks for it first); other methods anonymous. */
export const autodiscover: ProtocolModule = {
  protocol: 'autodiscover',
  matches: (head) =>
    isJson(head) ||
    underPath(head.path, '/autodiscover/autodiscover.xml') ||
    underPath(head.path, '/autodiscover/autodiscover.svc'),
  identify(head, body) {
    const basic = basicUser(head);
    if (isInvalid(basic)) return basic;
    if (isJson(head)) {
      const request = parseAutodiscoverJson(head);
      return isInvalid(request) ? request : autodiscoverIdentity(request, basic);
    }
    // GET autodiscover.xml is the unauthenticated redirect probe (§4.5 step 4): no body, no user.
    if (head.method.toUpperCase() !== 'POST') return { kind: 'anonymous' };
    const tooLarge = checkBodySize(head, body, autodiscoverMaxBytes);
    if (tooLarge) return tooLarge;
    if (body === undefined) return { kind: 'needs-body', maxBytes: autodiscoverMaxBytes };
    const request = parseAutodiscoverBody(body);
    return isInvalid(request) ? request : autodiscoverIdentity(request, basic);
  },
};
