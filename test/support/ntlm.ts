/**
 * NTLM messages built the way MS-NLMP 2.2.1 lays them out (fixed header, then `Len, MaxLen, BufferOffset` fields
 * pointing into a payload), and the SPNEGO wrappers of RFC 4178, for tests: the tokens a Windows client sends
 * and an IIS server answers. Written from the specification's tables, apart from coexist's reader
 * (src/core/protocols/windows-auth.ts), so the reader's tests do not check it against itself.
 */

export const NTLMSSP = Buffer.from('NTLMSSP\0', 'latin1');
export const flags = {
  unicode: 0x00000001,
  oem: 0x00000002,
  requestTarget: 0x00000004,
  ntlm: 0x00000200,
  alwaysSign: 0x00008000,
  extendedSessionSecurity: 0x00080000,
  targetInfo: 0x00800000,
} as const;

/** NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1) with no domain or workstation supplied: 32 bytes. */
export function ntlmNegotiate(): Buffer {
  const b = Buffer.alloc(32);
  NTLMSSP.copy(b, 0);
  b.writeUInt32LE(1, 8);
  b.writeUInt32LE(flags.unicode | flags.oem | flags.requestTarget | flags.ntlm | flags.alwaysSign, 12);
  // DomainNameFields and WorkstationFields: empty, offset at the end of the header.
  b.writeUInt32LE(32, 20);
  b.writeUInt32LE(32, 28);
  return b;
}

/** CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) with the given server challenge; Unicode or OEM as asked. */
export function ntlmChallenge(o: { unicode?: boolean; serverChallenge?: Buffer } = {}): Buffer {
  const unicode = o.unicode ?? true;
  const target = unicode ? Buffer.from('O365INFO', 'utf16le') : Buffer.from('O365INFO', 'latin1');
  const b = Buffer.alloc(48 + target.length);
  NTLMSSP.copy(b, 0);
  b.writeUInt32LE(2, 8);
  b.writeUInt16LE(target.length, 12);
  b.writeUInt16LE(target.length, 14);
  b.writeUInt32LE(48, 16);
  b.writeUInt32LE(
    (unicode ? flags.unicode : flags.oem) | flags.requestTarget | flags.ntlm | flags.alwaysSign,
    20,
  );
  (o.serverChallenge ?? Buffer.from('0123456789abcdef', 'hex')).copy(b, 24);
  // TargetInfoFields empty.
  b.writeUInt32LE(48 + target.length, 44);
  target.copy(b, 48);
  return b;
}

/**
 * AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3): the payload in the order the specification's example has it
 * (domain, user, workstation, LM, NT responses), with made-up responses of the right sizes.
 */
export function ntlmAuthenticate(o: {
  user: string;
  domain?: string;
  workstation?: string;
  unicode?: boolean;
  ntResponse?: Buffer;
}): Buffer {
  const unicode = o.unicode ?? true;
  const enc = (s: string): Buffer => Buffer.from(s, unicode ? 'utf16le' : 'latin1');
  const domain = enc(o.domain ?? '');
  const user = enc(o.user);
  const workstation = enc(o.workstation ?? '');
  const lm = Buffer.alloc(24, 0x11);
  const nt = o.ntResponse ?? Buffer.alloc(24, 0x22);
  const header = 72; // up to and including Version, no MIC
  const payload = [domain, user, workstation, lm, nt];
  const b = Buffer.alloc(header + payload.reduce((n, p) => n + p.length, 0));
  NTLMSSP.copy(b, 0);
  b.writeUInt32LE(3, 8);
  let at = header;
  const put = (fieldAt: number, value: Buffer): void => {
    b.writeUInt16LE(value.length, fieldAt);
    b.writeUInt16LE(value.length, fieldAt + 2);
    b.writeUInt32LE(at, fieldAt + 4);
    value.copy(b, at);
    at += value.length;
  };
  put(28, domain);
  put(36, user);
  put(44, workstation);
  put(12, lm);
  put(20, nt);
  b.writeUInt32LE(at, 52 + 4); // EncryptedRandomSessionKeyFields: empty
  b.writeUInt32LE((unicode ? flags.unicode : flags.oem) | flags.ntlm | flags.alwaysSign, 60);
  return b;
}

/** The user and domain of an AUTHENTICATE message, read per MS-NLMP's table (for the stand-in next hop). */
export function authenticateUser(b: Buffer): { user: string; domain: string } {
  const unicode = (b.readUInt32LE(60) & flags.unicode) !== 0;
  const read = (at: number): string =>
    b
      .subarray(b.readUInt32LE(at + 4), b.readUInt32LE(at + 4) + b.readUInt16LE(at))
      .toString(unicode ? 'utf16le' : 'latin1');
  return { user: read(36), domain: read(28) };
}

/** The NTLM message type of a token (1, 2, 3), or 0 when it is not NTLMSSP. */
export function ntlmType(b: Buffer): number {
  return b.length >= 12 && b.subarray(0, 8).equals(NTLMSSP) ? b.readUInt32LE(8) : 0;
}

function der(tag: number, ...values: Buffer[]): Buffer {
  const value = Buffer.concat(values);
  const n = value.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), value]);
}

const oid = (hex: string): Buffer => der(0x06, Buffer.from(hex, 'hex'));
export const oids = {
  spnego: oid('2b0601050502'),
  ntlm: oid('2b0601040182370202' + '0a'),
  kerberos: oid('2a864886f712010202'),
  msKerberos: oid('2a864882f712010202'),
};

/** A GSS-API initial token holding a SPNEGO NegTokenInit (RFC 4178 §4.2.1) that carries `mechToken`. */
export function negTokenInit(mechToken: Buffer, mech: Buffer = oids.ntlm): Buffer {
  const init = der(0xa0, der(0x30, der(0xa0, der(0x30, mech)), der(0xa2, der(0x04, mechToken))));
  return der(0x60, oids.spnego, init);
}

/** A NegTokenResp (RFC 4178 §4.2.2) carrying `responseToken`. */
export function negTokenResp(responseToken?: Buffer): Buffer {
  return der(
    0xa1,
    der(
      0x30,
      der(0xa0, der(0x0a, Buffer.from([1]))),
      ...(responseToken === undefined ? [] : [der(0xa2, der(0x04, responseToken))]),
    ),
  );
}

/** A Kerberos GSS-API initial context token (RFC 4121 §4.1) around a made-up AP-REQ of `size` bytes. */
export function kerberosApReq(size = 64, mech: Buffer = oids.kerberos): Buffer {
  return der(0x60, mech, Buffer.from([0x01, 0x00]), der(0x6e, Buffer.alloc(size, 0x30)));
}

/** The `Authorization` value for `token` under `scheme`. */
export const authorization = (scheme: 'NTLM' | 'Negotiate', token: Buffer): string =>
  `${scheme} ${token.toString('base64')}`;

/** `x`, asserted present (a test's lookup that must have found something). */
export function defined<T>(x: T | undefined | null, what = 'a value'): T {
  if (x === undefined || x === null) throw new Error(`expected ${what}`);
  return x;
}

/** An `Authorization: Basic` value. */
export const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
