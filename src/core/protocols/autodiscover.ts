/**
 * Autodiscover: POX (`autodiscover.xml`, outlook and mobilesync 2006 request schemas, docs/protocols.md §4.2),
 * SOAP GetUserSettings and GetDomainSettings (`autodiscover.svc`, §4.3) and v2 JSON (`autodiscover.json`,
 * §4.4). POX and SOAP name the user in a small body the pipeline buffers first (§3). The body is read by a
 * strict scanner for these few elements, not an XML library: no DTD, no entities beyond the five
 * predefined, no CDATA, bounded depth and bounded repeats.
 */
import {
  mobileSyncRequestSchema,
  outlookRequestSchema,
  soap11EnvelopeNs,
  soap12EnvelopeNs,
} from '../autodiscover/schemas.ts';
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

/** The most users, domains or settings one SOAP request may name (a parse-time cap; clients send a handful). */
export const autodiscoverMaxItems = 100;

/** The wire dialect of an Autodiscover request: POX outlook or mobilesync, SOAP, or v2 JSON. */
export type AutodiscoverDialect = 'outlook' | 'mobilesync' | 'soap' | 'json';

/** A POX request (§4.2, §4.1 end): who, and the response schema the client accepts (601 when unavailable). */
export interface PoxAutodiscoverRequest {
  readonly schema: 'outlook' | 'mobilesync';
  readonly address?: string;
  readonly legacyDn?: string;
  /** `Request/AcceptableResponseSchema` as sent, when sent. */
  readonly acceptableResponseSchema?: string;
}

/** What both SOAP operations carry (§4.3). */
interface SoapAutodiscoverBase {
  readonly schema: 'soap';
  /** SOAP 1.1 (`schemas.xmlsoap.org`) or 1.2 (`w3.org/2003/05`): the answer uses the same envelope. */
  readonly soapVersion: '1.1' | '1.2';
  /** `RequestedSettings/Setting`, in request order, without empties or repeats. */
  readonly settings: readonly string[];
  /** `Header/RequestedServerVersion`, e.g. `Exchange2013`, when sent. */
  readonly requestedServerVersion?: string;
}

/** SOAP GetUserSettings: settings for one or more mailboxes (§4.3). */
export interface GetUserSettingsRequest extends SoapAutodiscoverBase {
  readonly operation: 'GetUserSettings';
  /** `Users/User/Mailbox`, in request order. */
  readonly mailboxes: readonly string[];
}

/** SOAP GetDomainSettings: settings for SMTP domains, no user (MS-OXWSADISC; ews-javascript-api GetDomainSettingsRequest). */
export interface GetDomainSettingsRequest extends SoapAutodiscoverBase {
  readonly operation: 'GetDomainSettings';
  /** `Domains/Domain`, in request order. */
  readonly domains: readonly string[];
  /** `Request/RequestedVersion`, when sent. */
  readonly requestedVersion?: string;
}

/** The v2 JSON form (§4.4). */
export interface JsonAutodiscoverRequest {
  readonly schema: 'json';
  readonly address: string;
  readonly protocol?: string;
}

/** What an Autodiscover request asks about. */
export type AutodiscoverRequest =
  PoxAutodiscoverRequest | GetUserSettingsRequest | GetDomainSettingsRequest | JsonAutodiscoverRequest;

// Both spellings: the http:// of the specifications and the https:// of the broken Learn pages (§ warning).
function poxSchemaOf(rootNs: string): 'outlook' | 'mobilesync' | undefined {
  const ns = rootNs.replace(/^https:/, 'http:');
  return ns === outlookRequestSchema ? 'outlook' : ns === mobileSyncRequestSchema ? 'mobilesync' : undefined;
}
const soapEnvelopes: Readonly<Record<string, '1.1' | '1.2'>> = {
  [soap11EnvelopeNs]: '1.1',
  [soap12EnvelopeNs]: '1.2',
};
const pox = {
  address: 'Autodiscover/Request/EMailAddress',
  legacyDn: 'Autodiscover/Request/LegacyDN',
  acceptable: 'Autodiscover/Request/AcceptableResponseSchema',
};
const userMessage = 'Envelope/Body/GetUserSettingsRequestMessage';
const domainMessage = 'Envelope/Body/GetDomainSettingsRequestMessage';
const soap = {
  serverVersion: 'Envelope/Header/RequestedServerVersion',
  user: userMessage,
  mailbox: `${userMessage}/Request/Users/User/Mailbox`,
  userSetting: `${userMessage}/Request/RequestedSettings/Setting`,
  domain: domainMessage,
  domainName: `${domainMessage}/Request/Domains/Domain`,
  domainSetting: `${domainMessage}/Request/RequestedSettings/Setting`,
  requestedVersion: `${domainMessage}/Request/RequestedVersion`,
};
const wantedPaths: ReadonlySet<string> = new Set([...Object.values(pox), ...Object.values(soap)]);

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
 * that tags nest. Returns the root's namespace and the texts found per path, in document order ('' for an
 * element with children, so a container's presence shows); more than `maxRepeats` at one path is refused.
 */
function scanXml(
  xml: string,
  wanted: ReadonlySet<string>,
  maxRepeats: number,
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
      if (wanted.has(path)) {
        const value = unescapeXml(closing && justOpened ? text : ''); // leaf text only ('' for a container)
        if (value === undefined) return malformed(`unknown entity reference in ${local}`);
        const values = found.get(path);
        if (!values) found.set(path, [value.trim()]);
        else if (values.length >= maxRepeats) return malformed(`more than ${maxRepeats} ${local} elements`);
        else values.push(value.trim());
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
  const scan = scanXml(xml, wantedPaths, autodiscoverMaxItems);
  if (isInvalid(scan)) return scan;
  const found = (path: string): readonly string[] => scan.found.get(path) ?? [];
  const poxSchema = poxSchemaOf(scan.rootNs);
  if (poxSchema) {
    const address = found(pox.address);
    const legacyDn = found(pox.legacyDn);
    const acceptable = found(pox.acceptable);
    if (address.length > 1 || legacyDn.length > 1 || acceptable.length > 1)
      return malformed('more than one EMailAddress, LegacyDN or AcceptableResponseSchema');
    return {
      schema: poxSchema,
      ...(address[0] ? { address: address[0] } : {}),
      ...(legacyDn[0] ? { legacyDn: legacyDn[0] } : {}),
      ...(acceptable[0] ? { acceptableResponseSchema: acceptable[0] } : {}),
    };
  }
  const soapVersion = soapEnvelopes[scan.rootNs];
  if (soapVersion) {
    const messages = found(soap.user).length + found(soap.domain).length;
    if (messages !== 1)
      return malformed('the SOAP body is not one GetUserSettings or GetDomainSettings request');
    const asksUser = scan.found.has(soap.user);
    const version = found(soap.serverVersion);
    if (version.length > 1) return malformed('more than one RequestedServerVersion');
    const common = {
      schema: 'soap' as const,
      soapVersion,
      ...(version[0] ? { requestedServerVersion: version[0] } : {}),
    };
    if (asksUser)
      return {
        ...common,
        operation: 'GetUserSettings',
        mailboxes: found(soap.mailbox),
        settings: distinct(found(soap.userSetting)),
      };
    const requested = found(soap.requestedVersion);
    if (requested.length > 1) return malformed('more than one RequestedVersion');
    return {
      ...common,
      operation: 'GetDomainSettings',
      domains: found(soap.domainName).filter((d) => d !== ''),
      settings: distinct(found(soap.domainSetting)),
      ...(requested[0] ? { requestedVersion: requested[0] } : {}),
    };
  }
  return malformed('not an Autodiscover 2006 request schema nor a SOAP envelope');
}

const distinct = (names: readonly string[]): string[] => [...new Set(names.filter((n) => n !== ''))];

/**
 * The dialect to answer in when the body could not be read (an error answer still speaks the client's
 * language): from the path, and for POX whether the body mentions the mobilesync request schema.
 */
export function autodiscoverDialect(head: Pick<RequestHead, 'path'>, body?: Uint8Array): AutodiscoverDialect {
  if (isJson(head)) return 'json';
  if (underPath(head.path, '/autodiscover/autodiscover.svc')) return 'soap';
  const text = body && decodeUtf8(body.subarray(0, autodiscoverMaxBytes));
  return text !== undefined && /autodiscover\/mobilesync\/requestschema/i.test(text)
    ? 'mobilesync'
    : 'outlook';
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

/**
 * The identity an Autodiscover request names (LegacyDN wins over EMailAddress, §4.2; first SOAP user, §3).
 * GetDomainSettings names no user: it is `anonymous`, so the pipeline authenticates the caller and routes
 * on the caller's own mailbox; the answer depends only on the domains.
 */
export function autodiscoverIdentity(request: AutodiscoverRequest, basic?: string): Identity {
  const withBasic = basic === undefined ? {} : { basicUser: basic };
  switch (request.schema) {
    case 'json':
      return { kind: 'user', user: request.address, source: 'autodiscover-url', ...withBasic };
    case 'soap': {
      if (request.operation === 'GetDomainSettings') {
        if (request.domains.length === 0) return malformed('GetDomainSettingsRequestMessage names no Domain');
        return { kind: 'anonymous' };
      }
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

function isJson(head: Pick<RequestHead, 'path'>): boolean {
  return underPath(head.path, '/autodiscover/autodiscover.json');
}

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
