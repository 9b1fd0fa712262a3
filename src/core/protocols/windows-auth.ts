/**
 * `Authorization: NTLM <base64>` and `Authorization: Negotiate <base64>` read without the password (docs/security.md
 * "Windows authentication"): which message of the handshake a token is (MS-NLMP 2.2.1: NEGOTIATE, CHALLENGE,
 * AUTHENTICATE), raw or inside SPNEGO (RFC 4178: NegTokenInit, NegTokenResp), a Kerberos AP-REQ recognised as
 * such (RFC 4121 §4.1), and from an AUTHENTICATE the user, domain and workstation it names in clear.
 *
 * Everything a client sends is checked before it is used: every offset and length against the token's size,
 * every DER length against its enclosing value. A malformed token is a `WindowsAuthInvalid` result, never a
 * throw and never a read past the buffer (fuzzed by test/security/windows-auth-tokens.test.ts). The few DER
 * fields SPNEGO needs are read here by hand: five tags of one known structure, where a general ASN.1 library
 * would parse far more than is used, of input nobody vouches for.
 */
import { decodeBase64 } from './request-head.ts';

/** The HTTP authentication scheme the token came in (RFC 4559 `Negotiate`, MS-NTHT `NTLM`). */
export type WindowsScheme = 'ntlm' | 'negotiate';

/** An NTLM message type (MS-NLMP 2.2.1.1, 2.2.1.2, 2.2.1.3). */
export type NtlmMessage = 'negotiate' | 'challenge' | 'authenticate';

/** A Windows authentication token, as far as it can be read without any key. */
export type WindowsAuthToken =
  | {
      readonly scheme: WindowsScheme;
      readonly mechanism: 'ntlm';
      /** `raw`: NTLMSSP itself; `spnego`: inside a NegTokenInit or NegTokenResp. */
      readonly wrapping: 'raw' | 'spnego';
      readonly message: NtlmMessage;
      /** The NTLMSSP message itself (a view of the decoded token): what a verifier is handed. */
      readonly ntlm: Uint8Array;
      /** AUTHENTICATE only: the names it carries in clear (the password is never in it, only a proof). */
      readonly user?: string;
      readonly domain?: string;
      readonly workstation?: string;
      /** AUTHENTICATE with an empty user and no NT response: an anonymous logon (MS-NLMP 3.2.5.1.2). */
      readonly anonymous?: boolean;
    }
  | {
      readonly scheme: 'negotiate';
      /** Kerberos (an AP-REQ or AP-REP, RFC 4121 §4.1), or a NegTokenResp with no inner token (`none`). */
      readonly mechanism: 'kerberos' | 'none';
      readonly wrapping: 'raw' | 'spnego';
    };

/** A token that cannot be read: `reason` says what is wrong and never quotes the token. */
export interface WindowsAuthInvalid {
  readonly kind: 'invalid';
  readonly reason: string;
}

/** The largest decoded token read: a Kerberos ticket with a large PAC is about 12 KB (MS-KILE); twice that. */
export const maxTokenBytes = 32 * 1024;

const bad = (reason: string): WindowsAuthInvalid => ({ kind: 'invalid', reason });

export const isWindowsAuthInvalid = (x: unknown): x is WindowsAuthInvalid =>
  typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'invalid';

/**
 * The scheme of an `Authorization` (or `WWW-Authenticate`) value when it is NTLM or Negotiate, else undefined.
 * Case-insensitive, as RFC 9110 §11.1 has schemes.
 */
export function windowsScheme(value: string | undefined): WindowsScheme | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(ntlm|negotiate)(?:[ \t]|$)/i.exec(value);
  const scheme = m?.[1]?.toLowerCase();
  return scheme === 'ntlm' || scheme === 'negotiate' ? scheme : undefined;
}

/**
 * Read an `Authorization` value: undefined when it is not NTLM or Negotiate (Basic, Bearer, absent), the token
 * when it is, `invalid` when it says NTLM/Negotiate but its token cannot be read.
 */
export function parseWindowsAuthorization(
  value: string | undefined,
): WindowsAuthToken | WindowsAuthInvalid | undefined {
  const scheme = windowsScheme(value);
  if (scheme === undefined || value === undefined) return undefined;
  const text = value.trim().slice(scheme.length).trim();
  if (text === '') return bad('no token after the scheme');
  // base64 grows 4/3: anything longer than the largest token is refused before it is decoded.
  if (text.length > Math.ceil(maxTokenBytes / 3) * 4) return bad('token too large');
  if (!/^[A-Za-z0-9+/]+=*$/.test(text)) return bad('token is not base64');
  const bytes = decodeBase64(text);
  if (!bytes) return bad('token is not base64');
  return parseWindowsToken(scheme, bytes);
}

/** Read a decoded token of `scheme` (see `parseWindowsAuthorization`). */
export function parseWindowsToken(
  scheme: WindowsScheme,
  bytes: Uint8Array,
): WindowsAuthToken | WindowsAuthInvalid {
  if (bytes.length > maxTokenBytes) return bad('token too large');
  if (isNtlmssp(bytes)) {
    const m = parseNtlm(bytes);
    return isWindowsAuthInvalid(m) ? m : { scheme, mechanism: 'ntlm', wrapping: 'raw', ntlm: bytes, ...m };
  }
  if (scheme === 'ntlm') return bad('NTLM token without the NTLMSSP signature');
  const inner = unwrapSpnego(bytes);
  if (isWindowsAuthInvalid(inner)) return inner;
  if (inner.kind === 'kerberos') return { scheme, mechanism: 'kerberos', wrapping: inner.wrapping };
  if (inner.token === undefined) return { scheme, mechanism: 'none', wrapping: 'spnego' };
  if (isNtlmssp(inner.token)) {
    const m = parseNtlm(inner.token);
    return isWindowsAuthInvalid(m)
      ? m
      : { scheme, mechanism: 'ntlm', wrapping: 'spnego', ntlm: inner.token, ...m };
  }
  if (isKerberosGss(inner.token)) return { scheme, mechanism: 'kerberos', wrapping: 'spnego' };
  return bad('SPNEGO token carries neither NTLMSSP nor Kerberos');
}

// ---------------------------------------------------------------------------------------------------------
// NTLMSSP (MS-NLMP 2.2)

const signature = [0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00]; // "NTLMSSP\0"
/** NTLMSSP_NEGOTIATE_UNICODE (MS-NLMP 2.2.2.5, flag A). */
const negotiateUnicode = 0x00000001;
/** The longest user, domain or workstation name kept (AD: sAMAccountName 20, UPN 1024); longer is refused. */
const maxNameChars = 1024;

function isNtlmssp(b: Uint8Array): boolean {
  if (b.length < 8) return false;
  for (let i = 0; i < 8; i++) if (b[i] !== signature[i]) return false;
  return true;
}

type NtlmFields = Pick<
  Extract<WindowsAuthToken, { mechanism: 'ntlm' }>,
  'message' | 'user' | 'domain' | 'workstation' | 'anonymous'
>;

function parseNtlm(b: Uint8Array): NtlmFields | WindowsAuthInvalid {
  if (b.length < 12) return bad('NTLM message shorter than its header');
  const type = u32(b, 8);
  switch (type) {
    case 1:
      // Signature, MessageType, NegotiateFlags (MS-NLMP 2.2.1.1); the domain and workstation fields after
      // them are optional and not used.
      return b.length < 16 ? bad('NTLM NEGOTIATE shorter than 16 bytes') : { message: 'negotiate' };
    case 2:
      // ... TargetNameFields, NegotiateFlags, ServerChallenge, Reserved (MS-NLMP 2.2.1.2).
      return b.length < 32 ? bad('NTLM CHALLENGE shorter than 32 bytes') : { message: 'challenge' };
    case 3:
      return parseAuthenticate(b);
    default:
      return bad('unknown NTLM message type');
  }
}

/** AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3): the names, each through its checked field. */
function parseAuthenticate(b: Uint8Array): NtlmFields | WindowsAuthInvalid {
  // Up to and including NegotiateFlags at offset 60.
  if (b.length < 64) return bad('NTLM AUTHENTICATE shorter than 64 bytes');
  const flags = u32(b, 60);
  const unicode = (flags & negotiateUnicode) !== 0;
  const lm = field(b, 12);
  const nt = field(b, 20);
  const domain = field(b, 28);
  const user = field(b, 36);
  const workstation = field(b, 44);
  const sessionKey = field(b, 52);
  if (!lm || !nt || !domain || !user || !workstation || !sessionKey)
    return bad('NTLM AUTHENTICATE field outside the message');
  const names: string[] = [];
  for (const f of [user, domain, workstation]) {
    const text = decodeName(b, f, unicode);
    if (text === undefined) return bad('NTLM AUTHENTICATE name is not valid text');
    names.push(text);
  }
  const [userName = '', domainName = '', workstationName = ''] = names;
  const anonymous = userName === '' && nt.length === 0;
  if (userName === '' && !anonymous) return bad('NTLM AUTHENTICATE has no user name');
  return {
    message: 'authenticate',
    ...(userName === '' ? {} : { user: userName }),
    ...(domainName === '' ? {} : { domain: domainName }),
    ...(workstationName === '' ? {} : { workstation: workstationName }),
    ...(anonymous ? { anonymous: true } : {}),
  };
}

/** A `Len, MaxLen, BufferOffset` field at `at` (MS-NLMP 2.2.1.3), or undefined when it points outside `b`. */
function field(b: Uint8Array, at: number): { offset: number; length: number } | undefined {
  const length = u16(b, at);
  const offset = u32(b, at + 4);
  if (length === 0) return { offset: 0, length: 0 };
  // Both are unsigned and at most 2^32 - 1, so the sum is exact in a double.
  if (offset + length > b.length) return undefined;
  return { offset, length };
}

const utf16 = new TextDecoder('utf-16le', { fatal: true });
const oem = new TextDecoder('latin1');

/**
 * A name in UTF-16LE when the Unicode flag is set, else in the OEM code page (MS-NLMP 2.2.2.5: the client's;
 * read as Latin-1, which keeps ASCII names exact). Undefined when it is not text coexist would log or route on:
 * an odd UTF-16 length, a lone surrogate, a control character, or longer than any account name.
 */
function decodeName(
  b: Uint8Array,
  f: { offset: number; length: number },
  unicode: boolean,
): string | undefined {
  if (f.length === 0) return '';
  const bytes = b.subarray(f.offset, f.offset + f.length);
  let text: string;
  if (unicode) {
    if (f.length % 2 !== 0) return undefined;
    try {
      text = utf16.decode(bytes);
    } catch {
      return undefined;
    }
  } else text = oem.decode(bytes);
  if (text.length > maxNameChars) return undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) return undefined;
  }
  return text;
}

const u16 = (b: Uint8Array, at: number): number => (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
const u32 = (b: Uint8Array, at: number): number =>
  ((b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16)) + (b[at + 3] ?? 0) * 0x1000000;

// ---------------------------------------------------------------------------------------------------------
// SPNEGO (RFC 4178 §4.2) and the GSS-API framing (RFC 2743 §3.1), the few DER fields needed, by hand

/** 1.3.6.1.5.5.2, SPNEGO. */
const spnegoOid = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/** 1.2.840.113554.1.2.2 (Kerberos V5) and 1.2.840.48018.1.2.2 (Microsoft's Kerberos OID, MS-KILE). */
const kerberosOids = [
  [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02],
  [0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02],
];

/** One DER TLV: its tag, and where its value starts and ends in the buffer. */
interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/**
 * The TLV at `at`, its value within `limit`; undefined when the length is indefinite, longer than four bytes,
 * or runs past `limit`. Only single-byte tags (all SPNEGO and GSS-API use).
 */
function tlv(b: Uint8Array, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = b[at] ?? 0x1f;
  if ((tag & 0x1f) === 0x1f) return undefined;
  let len = b[at + 1] ?? 0;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[start + i] ?? 0);
    start += n;
  }
  if (start + len > limit) return undefined;
  return { tag, start, end: start + len };
}

function oidIs(b: Uint8Array, t: Tlv, oid: readonly number[]): boolean {
  if (t.tag !== 0x06 || t.end - t.start !== oid.length) return false;
  for (let i = 0; i < oid.length; i++) if (b[t.start + i] !== oid[i]) return false;
  return true;
}

/** A GSS-API initial context token (`[APPLICATION 0]` + mech OID) whose mechanism is Kerberos. */
function isKerberosGss(b: Uint8Array): boolean {
  const outer = tlv(b, 0, b.length);
  if (!outer || outer.tag !== 0x60) return false;
  const oid = tlv(b, outer.start, outer.end);
  return oid !== undefined && kerberosOids.some((k) => oidIs(b, oid, k));
}

type Unwrapped =
  | { readonly kind: 'kerberos'; readonly wrapping: 'raw' | 'spnego' }
  | { readonly kind: 'token'; readonly token: Uint8Array | undefined };

/**
 * The mechanism token of a Negotiate token: a GSS-API initial token with SPNEGO's OID holding a NegTokenInit
 * (`[0]`, its `mechToken` `[2]`), or a bare NegTokenResp (`[1]`, its `responseToken` `[2]`); a raw Kerberos
 * GSS-API token is recognised without SPNEGO (RFC 4559 §4: clients may send it directly).
 */
function unwrapSpnego(b: Uint8Array): Unwrapped | WindowsAuthInvalid {
  const outer = tlv(b, 0, b.length);
  if (!outer || outer.end !== b.length) return bad('Negotiate token is not one DER value');
  let neg: Tlv | undefined;
  if (outer.tag === 0x60) {
    const oid = tlv(b, outer.start, outer.end);
    if (!oid) return bad('GSS-API token without a mechanism');
    if (kerberosOids.some((k) => oidIs(b, oid, k))) return { kind: 'kerberos', wrapping: 'raw' };
    if (!oidIs(b, oid, spnegoOid)) return bad('GSS-API token of an unknown mechanism');
    neg = tlv(b, oid.end, outer.end);
    if (!neg || neg.tag !== 0xa0) return bad('SPNEGO token without a NegTokenInit');
  } else if (outer.tag === 0xa1) neg = outer;
  else return bad('Negotiate token is neither GSS-API nor a NegTokenResp');
  // NegTokenInit / NegTokenResp ::= SEQUENCE { [n] ... }: find [2], the mechanism's token.
  const seq = tlv(b, neg.start, neg.end);
  if (!seq || seq.tag !== 0x30 || seq.end !== neg.end) return bad('SPNEGO body is not a SEQUENCE');
  let at = seq.start;
  while (at < seq.end) {
    const item = tlv(b, at, seq.end);
    if (!item) return bad('SPNEGO field runs past its SEQUENCE');
    if (item.tag === 0xa2) {
      const octets = tlv(b, item.start, item.end);
      if (!octets || octets.tag !== 0x04 || octets.end !== item.end)
        return bad('SPNEGO mechanism token is not an OCTET STRING');
      return { kind: 'token', token: b.subarray(octets.start, octets.end) };
    }
    at = item.end;
  }
  return { kind: 'token', token: undefined };
}

/** 1.3.6.1.4.1.311.2.2.10, NTLMSSP as a SPNEGO mechanism. */
const ntlmOid = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

/**
 * A NegTokenResp (RFC 4178 §4.2.2) answering a Negotiate-wrapped NTLM handshake: `accept-incomplete` with the
 * CHALLENGE as its response token, or `accept-completed` without one; the mechanism is NTLMSSP.
 */
export function negTokenResp(
  state: 'accept-incomplete' | 'accept-completed',
  token?: Uint8Array,
): Uint8Array {
  const parts = [
    der(0xa0, der(0x0a, Uint8Array.of(state === 'accept-completed' ? 0 : 1))),
    der(0xa1, der(0x06, Uint8Array.from(ntlmOid))),
    ...(token === undefined ? [] : [der(0xa2, der(0x04, token))]),
  ];
  return der(0xa1, der(0x30, concat(parts)));
}

/** One DER TLV (definite length, short or long form). */
function der(tag: number, value: Uint8Array): Uint8Array {
  const n = value.length;
  const len =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 0xff]
          : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return concat([Uint8Array.of(tag, ...len), value]);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
