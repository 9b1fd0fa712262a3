/**
 * What the protocol modules see of a request (architecture.md "How a request flows"), what they make of
 * it (`Identity`), and the small pure helpers they share: query parsing, base64, UTF-8, address and GUID
 * checks. No I/O: the pipeline builds the head and, when asked, buffers a small body.
 */
import type { ErrorCode } from '../errors.ts';
import type { Protocol } from './protocol.ts';

/** The request line and headers, as received. */
export interface RequestHead {
  readonly method: string;
  /** The Host header, as sent (may carry a port). */
  readonly host: string;
  /** The raw path, without the query, not percent-decoded. */
  readonly path: string;
  /** The raw query, without the `?`, not percent-decoded; '' when absent. */
  readonly query: string;
  /** Headers by lower-case name; repeated headers joined as Node joins them. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The name of the listener that accepted the request. */
  readonly listener?: string;
}

/** The codes a protocol module may answer with. */
export type IdentityCode = Extract<ErrorCode, `CX_IDENTITY_${string}`>;

/** Where a user name was found. */
export type UserSource =
  | 'basic-auth' // Authorization: Basic (every protocol, docs/protocols.md §5)
  | 'activesync-query' // ActiveSync User= / base64 tag 8: informational only (§3)
  | 'anchor-header' // EWS X-AnchorMailbox (§3, §4.6)
  | 'autodiscover-body' // POX <EMailAddress>, SOAP <Mailbox> (§4.2, §4.3)
  | 'autodiscover-legacy-dn' // POX <LegacyDN>: an X.500 DN, not an address (§4.2)
  | 'autodiscover-url' // Autodiscover v2 path or Email= (§4.4)
  | 'logon-form'; // OWA FBA POST username (§4.9)

/**
 * Who a request is for, as far as the request itself tells. `basicUser`, where present, is the
 * `Authorization: Basic` user name, which the pipeline may need besides the routing anchor.
 */
export type Identity =
  /** A user name for the directory to resolve: SMTP address, UPN, DOMAIN\user, or a legacy DN (see `source`). */
  | {
      readonly kind: 'user';
      readonly user: string;
      readonly source: UserSource;
      readonly basicUser?: string;
      /** A user name the request claims but which does not authorize it (ActiveSync `User=`), for logs. */
      readonly claimed?: string;
    }
  /** A mailbox by GUID (2013+ Outlook Anywhere server name, MAPI/HTTP MailboxId, §4.7, §4.8). */
  | {
      readonly kind: 'mailbox-guid';
      readonly guid: string;
      readonly domain: string;
      readonly source: 'rpc-server' | 'mailbox-id';
      readonly port?: number;
      readonly basicUser?: string;
    }
  /** A legacy Outlook Anywhere target: a mailbox server FQDN or CAS array name (§3, §4.7). */
  | { readonly kind: 'server'; readonly server: string; readonly port: number; readonly basicUser?: string }
  /** An offline address book by GUID: not a user (§3 OAB row). */
  | { readonly kind: 'oab'; readonly guid: string; readonly basicUser?: string }
  /** coexist's own session cookie (OWA/ECP after logon): its value is verified by the data plane. */
  | { readonly kind: 'session-cookie'; readonly cookie: string; readonly value: string }
  /** Nothing in the request names a user (the pipeline challenges or answers anonymously). */
  | { readonly kind: 'anonymous' }
  /** The identity is in the body: buffer at most `maxBytes` and call `identify` again with it. */
  | { readonly kind: 'needs-body'; readonly maxBytes: number }
  /** The request is malformed; answer `statusOf(code)`. `detail` never carries a password. */
  | Invalid;

export interface Invalid {
  readonly kind: 'invalid';
  readonly code: IdentityCode;
  readonly detail: string;
}

/** One protocol's request classification and identity extraction (one file per protocol). */
export interface ProtocolModule {
  readonly protocol: Protocol;
  /** Does the (clean) path belong to this protocol? Case-insensitive (docs/protocols.md §2.2). */
  matches(head: RequestHead): boolean;
  /** Who the request is for; `body` only after a `needs-body` answer. */
  identify(head: RequestHead, body?: Uint8Array): Identity;
}

export const invalid = (code: IdentityCode, detail: string): Invalid => ({ kind: 'invalid', code, detail });

export const isInvalid = (x: unknown): x is Invalid =>
  typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'invalid';

/**
 * A key naming what an identity routes to, equal for equal identities whatever the wire form. Undefined
 * when there is nothing to route on yet, including a session cookie: its value is a secret that only
 * the data plane may turn into a user.
 */
export function routingKey(id: Identity): string | undefined {
  switch (id.kind) {
    case 'user':
      return `user:${id.user.toLowerCase()}`;
    case 'mailbox-guid':
      return `guid:${id.guid}`;
    case 'server':
      return `server:${id.server.toLowerCase()}`;
    case 'oab':
      return `oab:${id.guid}`;
    default:
      return undefined;
  }
}

/** True when the lower-cased path is `prefix` or lies under it (segment boundary). */
export function underPath(path: string, prefix: string): boolean {
  const p = path.toLowerCase();
  return p === prefix || p.startsWith(prefix + '/');
}

/** Parsed query: lower-case names to their decoded values, in order of appearance. */
export type Query = ReadonlyMap<string, readonly string[]>;

/** Parse `a=b&c=d` (percent- and `+`-decoding); undefined when an escape is malformed. */
export function parseQuery(query: string): Query | undefined {
  const out = new Map<string, string[]>();
  if (query === '') return out;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = percentDecode(eq < 0 ? pair : pair.slice(0, eq));
    const value = percentDecode(eq < 0 ? '' : pair.slice(eq + 1));
    if (name === undefined || value === undefined) return undefined;
    const key = name.toLowerCase();
    const list = out.get(key);
    if (list) list.push(value);
    else out.set(key, [value]);
  }
  return out;
}

/** The one value of a query parameter; `invalid` when it is repeated (no parameter pollution). */
export function single(q: Query, name: string, code: IdentityCode): string | undefined | Invalid {
  const values = q.get(name.toLowerCase());
  if (!values) return undefined;
  if (values.length > 1) return invalid(code, `query parameter ${name} is repeated`);
  return values[0];
}

/** Percent-decode (form style by default: `+` is a space); undefined when malformed or not UTF-8. */
export function percentDecode(s: string, plusIsSpace = true): string | undefined {
  try {
    return decodeURIComponent(plusIsSpace ? s.replaceAll('+', ' ') : s);
  } catch {
    return undefined;
  }
}

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const sextet = new Int8Array(128).fill(-1);
for (let i = 0; i < alphabet.length; i++) sextet[alphabet.charCodeAt(i)] = i;

/** Decode standard base64, with or without `=` padding; undefined when malformed. */
export function decodeBase64(text: string): Uint8Array | undefined {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 61 /* = */) end--;
  const pad = text.length - end;
  if (end % 4 === 1 || pad > 2 || (pad > 0 && text.length % 4 !== 0)) return undefined;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? (sextet[c] ?? -1) : -1;
    if (v < 0) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decode UTF-8 strictly (a leading BOM is dropped); undefined when the bytes are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A plain SMTP address `local@domain` (no display name, no route, no spaces; at most 320 characters). */
export function isSmtpAddress(s: string): boolean {
  return (
    s.length <= 320 &&
    /^[A-Za-z0-9.!#$%&'*+=^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/.test(
      s,
    )
  );
}

/** A DNS host name or NetBIOS name (letters, digits, hyphens, dots). */
export function isHostName(s: string): boolean {
  return (
    s.length <= 253 &&
    /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(s)
  );
}

/** The GUID in lower case when `s` is `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, else undefined. */
export function parseGuid(s: string): string | undefined {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)
    ? s.toLowerCase()
    : undefined;
}

/** `<guid>@<domain>` as used by 2013+ Outlook Anywhere and MAPI/HTTP (docs/protocols.md §3, §4.7, §4.8). */
export function parseGuidAtDomain(s: string): { guid: string; domain: string } | undefined {
  const at = s.indexOf('@');
  if (at < 0) return undefined;
  const guid = parseGuid(s.slice(0, at));
  const domain = s.slice(at + 1);
  return guid && domain.includes('.') && isHostName(domain)
    ? { guid, domain: domain.toLowerCase() }
    : undefined;
}

/** The value of the cookie `name` (exact, case-sensitive name) in the Cookie header, if sent once or more. */
export function cookieValue(head: RequestHead, name: string): string | undefined {
  const header = head.headers['cookie'];
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * A body-size check before and after buffering: `Content-Length` above the cap is refused before the body is
 * read; a buffered body above the cap (the pipeline may read cap + 1 bytes) is refused after.
 */
export function checkBodySize(
  head: RequestHead,
  body: Uint8Array | undefined,
  maxBytes: number,
): Invalid | undefined {
  const declared = Number(head.headers['content-length'] ?? '0');
  if ((Number.isFinite(declared) && declared > maxBytes) || (body && body.length > maxBytes))
    return invalid('CX_IDENTITY_BODY_TOO_LARGE', `body larger than ${maxBytes} bytes`);
  return undefined;
}
