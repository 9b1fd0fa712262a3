/**
 * The client side of NTLM (MS-NLMP) for `coexist check --auth ntlm|negotiate` (docs/auth.md): the NEGOTIATE
 * message, the CHALLENGE read with every offset and length checked, and an AUTHENTICATE with the NTLMv2 response
 * (MS-NLMP 3.3.2), the only one a current domain controller accepts. MD4, which NTOWFv2 needs, is written out per
 * RFC 1320: OpenSSL 3 keeps it in its legacy provider, which Node does not load. No session security is
 * negotiated (HTTP authentication needs none): no signing or sealing keys, no MIC.
 */
import { createHmac, randomBytes } from 'node:crypto';

const signature = Buffer.from('NTLMSSP\0', 'latin1');

/** NEGOTIATE flags (MS-NLMP 2.2.2.5) this client asks for. */
const flag = {
  unicode: 0x00000001,
  requestTarget: 0x00000004,
  ntlm: 0x00000200,
  alwaysSign: 0x00008000,
  extendedSessionSecurity: 0x00080000,
  targetInfo: 0x00800000,
  version: 0x02000000,
  bits128: 0x20000000,
  bits56: 0x80000000,
} as const;

const asked =
  flag.unicode |
  flag.requestTarget |
  flag.ntlm |
  flag.alwaysSign |
  flag.extendedSessionSecurity |
  flag.bits128 |
  flag.bits56;

/** NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1): no domain or workstation supplied. */
export function negotiateMessage(): Buffer {
  const b = Buffer.alloc(32);
  signature.copy(b, 0);
  b.writeUInt32LE(1, 8);
  b.writeUInt32LE(asked >>> 0, 12);
  b.writeUInt32LE(32, 20);
  b.writeUInt32LE(32, 28);
  return b;
}

/** What a CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) says. */
export interface Challenge {
  readonly flags: number;
  readonly serverChallenge: Buffer;
  /** The AV_PAIRs as sent (MS-NLMP 2.2.2.1); empty when none. */
  readonly targetInfo: Buffer;
}

/** Read a CHALLENGE_MESSAGE; undefined when it is not one or a field points outside it. */
export function parseChallenge(b: Buffer): Challenge | undefined {
  if (b.length < 48 || !b.subarray(0, 8).equals(signature) || b.readUInt32LE(8) !== 2) return undefined;
  const flags = b.readUInt32LE(20);
  const infoLength = b.readUInt16LE(40);
  const infoOffset = b.readUInt32LE(44);
  let targetInfo = Buffer.alloc(0);
  if (infoLength > 0) {
    if (infoOffset < 48 || infoOffset + infoLength > b.length) return undefined;
    targetInfo = Buffer.from(b.subarray(infoOffset, infoOffset + infoLength));
  }
  return { flags, serverChallenge: Buffer.from(b.subarray(24, 32)), targetInfo };
}

/** The MsvAvTimestamp AV_PAIR (AvId 7) of a target info, when present and well formed. */
function timestampOf(info: Buffer): Buffer | undefined {
  let at = 0;
  while (at + 4 <= info.length) {
    const id = info.readUInt16LE(at);
    const length = info.readUInt16LE(at + 2);
    if (id === 0 || at + 4 + length > info.length) return undefined;
    if (id === 7 && length === 8) return Buffer.from(info.subarray(at + 4, at + 12));
    at += 4 + length;
  }
  return undefined;
}

/** A login as NTLM sends it: `DOMAIN\user` split, a UPN (`user@suffix`) as the user with no domain. */
export function splitLogin(login: string): { user: string; domain: string } {
  const slash = login.indexOf('\\');
  return slash < 0
    ? { user: login, domain: '' }
    : { user: login.slice(slash + 1), domain: login.slice(0, slash) };
}

const utf16 = (s: string): Buffer => Buffer.from(s, 'utf16le');
const hmacMd5 = (key: Buffer, ...data: Buffer[]): Buffer => {
  const h = createHmac('md5', key);
  for (const d of data) h.update(d);
  return h.digest();
};

/** NTOWFv2 (MS-NLMP 3.3.2): HMAC-MD5 keyed with the NT hash over the upper-cased user and the domain. */
export function ntowfv2(password: string, user: string, domain: string): Buffer {
  return hmacMd5(md4(utf16(password)), utf16(user.toUpperCase() + domain));
}

/** A Windows FILETIME (100 ns since 1601) of a time in ms, little-endian. */
function filetime(ms: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE((BigInt(Math.floor(ms)) + 11_644_473_600_000n) * 10_000n);
  return b;
}

/** The NTLMv2 responses (MS-NLMP 3.3.2) for a challenge. */
export function ntlmv2Responses(o: {
  readonly key: Buffer;
  readonly serverChallenge: Buffer;
  readonly clientChallenge: Buffer;
  readonly time: Buffer;
  readonly targetInfo: Buffer;
}): { nt: Buffer; lm: Buffer } {
  const temp = Buffer.concat([
    Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]),
    o.time,
    o.clientChallenge,
    Buffer.alloc(4),
    o.targetInfo,
    Buffer.alloc(4),
  ]);
  const proof = hmacMd5(o.key, o.serverChallenge, temp);
  const lm = Buffer.concat([hmacMd5(o.key, o.serverChallenge, o.clientChallenge), o.clientChallenge]);
  return { nt: Buffer.concat([proof, temp]), lm };
}

/**
 * AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3) answering `challenge` for `login` (`DOMAIN\user` or a UPN). `clientChallenge`
 * and `now` are for tests; by default random and the clock.
 */
export function authenticateMessage(
  challenge: Challenge,
  login: string,
  password: string,
  o: { clientChallenge?: Buffer; now?: number; workstation?: string } = {},
): Buffer {
  const { user, domain } = splitLogin(login);
  const serverTime = timestampOf(challenge.targetInfo);
  const r = ntlmv2Responses({
    key: ntowfv2(password, user, domain),
    serverChallenge: challenge.serverChallenge,
    clientChallenge: o.clientChallenge ?? randomBytes(8),
    time: serverTime ?? filetime(o.now ?? Date.now()),
    targetInfo: challenge.targetInfo,
  });
  // With the server's timestamp, the LMv2 response is all zeros (MS-NLMP 3.1.5.1.2).
  const lm = serverTime === undefined ? r.lm : Buffer.alloc(24);
  const fields = [lm, r.nt, utf16(domain), utf16(user), utf16(o.workstation ?? ''), Buffer.alloc(0)];
  const header = 64;
  const b = Buffer.alloc(header + fields.reduce((n, f) => n + f.length, 0));
  signature.copy(b, 0);
  b.writeUInt32LE(3, 8);
  let at = header;
  fields.forEach((f, i) => {
    const fieldAt = 12 + i * 8;
    b.writeUInt16LE(f.length, fieldAt);
    b.writeUInt16LE(f.length, fieldAt + 2);
    b.writeUInt32LE(at, fieldAt + 4);
    f.copy(b, at);
    at += f.length;
  });
  const agreed = (asked & challenge.flags) | flag.unicode | flag.ntlm;
  b.writeUInt32LE(agreed >>> 0, 60);
  return b;
}

/** The token of the `scheme` challenge in a (joined) WWW-Authenticate value, decoded; undefined when none. */
export function challengeToken(
  wwwAuthenticate: string | undefined,
  scheme: 'NTLM' | 'Negotiate',
): Buffer | undefined {
  for (const part of (wwwAuthenticate ?? '').split(',')) {
    const m = /^\s*(\S+)\s+([A-Za-z0-9+/=]+)\s*$/.exec(part);
    if (m && m[1]?.toLowerCase() === scheme.toLowerCase() && m[2] !== undefined)
      return Buffer.from(m[2], 'base64');
  }
  return undefined;
}

/** MD4 (RFC 1320). */
export function md4(message: Buffer): Buffer {
  const bitLength = BigInt(message.length) * 8n;
  const padded = Buffer.alloc(Math.ceil((message.length + 9) / 64) * 64);
  message.copy(padded, 0);
  padded[message.length] = 0x80;
  padded.writeBigUInt64LE(bitLength & 0xffffffffffffffffn, padded.length - 8);
  let a = 0x67452301;
  let b = 0xefcdab89;
  let c = 0x98badcfe;
  let d = 0x10325476;
  const rotl = (x: number, s: number): number => ((x << s) | (x >>> (32 - s))) >>> 0;
  const f = (x: number, y: number, z: number): number => (x & y) | (~x & z);
  const g = (x: number, y: number, z: number): number => (x & y) | (x & z) | (y & z);
  const h = (x: number, y: number, z: number): number => x ^ y ^ z;
  const x = new Array<number>(16);
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) x[i] = padded.readUInt32LE(block + i * 4);
    const [aa, bb, cc, dd] = [a, b, c, d];
    const w = (i: number): number => x[i] as number;
    // Round 1.
    for (const i of [0, 4, 8, 12]) {
      a = rotl((a + f(b, c, d) + w(i)) >>> 0, 3);
      d = rotl((d + f(a, b, c) + w(i + 1)) >>> 0, 7);
      c = rotl((c + f(d, a, b) + w(i + 2)) >>> 0, 11);
      b = rotl((b + f(c, d, a) + w(i + 3)) >>> 0, 19);
    }
    // Round 2.
    for (const i of [0, 1, 2, 3]) {
      a = rotl((a + g(b, c, d) + w(i) + 0x5a827999) >>> 0, 3);
      d = rotl((d + g(a, b, c) + w(i + 4) + 0x5a827999) >>> 0, 5);
      c = rotl((c + g(d, a, b) + w(i + 8) + 0x5a827999) >>> 0, 9);
      b = rotl((b + g(c, d, a) + w(i + 12) + 0x5a827999) >>> 0, 13);
    }
    // Round 3.
    for (const i of [0, 2, 1, 3]) {
      a = rotl((a + h(b, c, d) + w(i) + 0x6ed9eba1) >>> 0, 3);
      d = rotl((d + h(a, b, c) + w(i + 8) + 0x6ed9eba1) >>> 0, 9);
      c = rotl((c + h(d, a, b) + w(i + 4) + 0x6ed9eba1) >>> 0, 11);
      b = rotl((b + h(c, d, a) + w(i + 12) + 0x6ed9eba1) >>> 0, 15);
    }
    a = (a + aa) >>> 0;
    b = (b + bb) >>> 0;
    c = (c + cc) >>> 0;
    d = (d + dd) >>> 0;
  }
  const out = Buffer.alloc(16);
  [a, b, c, d].forEach((v, i) => out.writeUInt32LE(v, i * 4));
  return out;
}
