/**
 * The NTLM client's pieces against published values: MD4 against RFC 1320's test suite (A.5), NTOWFv1/v2 and the
 * NTLMv2 responses against MS-NLMP 4.2.4's worked example, and the CHALLENGE reader against tokens that point
 * outside themselves. The whole handshake against a real domain controller is in test/check/check-auth.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  authenticateMessage,
  challengeToken,
  md4,
  negotiateMessage,
  ntlmv2Responses,
  ntowfv2,
  parseChallenge,
  splitLogin,
} from './ntlm.ts';

const hex = (b: Buffer): string => b.toString('hex');

describe('MD4 (RFC 1320 A.5)', () => {
  const suite: [string, string][] = [
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
    [
      '12345678901234567890123456789012345678901234567890123456789012345678901234567890',
      'e33b4ddc9c38f2199c3e7b164fcc0536',
    ],
  ];
  for (const [input, digest] of suite)
    test(`MD4("${input.slice(0, 20)}")`, () => assert.equal(hex(md4(Buffer.from(input, 'latin1'))), digest));
});

describe('NTLMv2 (MS-NLMP 4.2.4)', () => {
  // User "User", domain "Domain", password "Password"; server challenge 0123456789abcdef, client challenge
  // aaaaaaaaaaaaaaaa, time 0, the AV_PAIRs MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server".
  const key = ntowfv2('Password', 'User', 'Domain');
  test('NTOWFv1 and NTOWFv2', () => {
    assert.equal(hex(md4(Buffer.from('Password', 'utf16le'))), 'a4f49c406510bdcab6824ee7c30fd852');
    assert.equal(hex(key), '0c868a403bfd7a93a3001ef22ef02e3f');
  });
  test('the LMv2 response and NTProofStr', () => {
    const targetInfo = Buffer.from(
      '02000c0044006f006d00610069006e0001000c005300650072007600650072000000' + '0000',
      'hex',
    );
    const r = ntlmv2Responses({
      key,
      serverChallenge: Buffer.from('0123456789abcdef', 'hex'),
      clientChallenge: Buffer.alloc(8, 0xaa),
      time: Buffer.alloc(8),
      targetInfo,
    });
    assert.equal(hex(r.lm), '86c35097ac9cec102554764a57cccc19' + 'aa'.repeat(8));
    assert.equal(hex(r.nt.subarray(0, 16)), '68cd0ab851e51c96aabc927bebef6a1c');
  });
});

describe('messages', () => {
  test('NEGOTIATE: the signature, type 1, Unicode and NTLM asked', () => {
    const m = negotiateMessage();
    assert.equal(m.subarray(0, 8).toString('latin1'), 'NTLMSSP\0');
    assert.equal(m.readUInt32LE(8), 1);
    assert.ok((m.readUInt32LE(12) & 0x201) === 0x201);
  });

  /** A CHALLENGE with `info` as its target info at `offset` (default right after the header). */
  const challenge = (info: Buffer, offset = 48, length = info.length): Buffer => {
    const b = Buffer.alloc(48 + info.length);
    Buffer.from('NTLMSSP\0', 'latin1').copy(b);
    b.writeUInt32LE(2, 8);
    b.writeUInt32LE(0x00888205, 20);
    Buffer.from('0123456789abcdef', 'hex').copy(b, 24);
    b.writeUInt16LE(length, 40);
    b.writeUInt16LE(length, 42);
    b.writeUInt32LE(offset, 44);
    info.copy(b, 48);
    return b;
  };

  test('CHALLENGE: read, and refused when a field points outside it or it is not one', () => {
    const info = Buffer.from('0700080000000000000000000000', 'hex');
    const c = parseChallenge(challenge(info));
    assert.ok(c);
    assert.equal(hex(c.serverChallenge), '0123456789abcdef');
    assert.equal(hex(c.targetInfo), hex(info));
    assert.equal(parseChallenge(challenge(info, 48, 200)), undefined);
    assert.equal(parseChallenge(challenge(info, 0xfffffff0)), undefined);
    assert.equal(parseChallenge(challenge(info, 8)), undefined);
    assert.equal(parseChallenge(negotiateMessage()), undefined);
    assert.equal(parseChallenge(Buffer.alloc(10)), undefined);
  });

  test('AUTHENTICATE: user and domain where MS-NLMP puts them; the server timestamp used, LMv2 zeroed', () => {
    const stamp = Buffer.from('0102030405060708', 'hex');
    const info = Buffer.concat([Buffer.from('07000800', 'hex'), stamp, Buffer.from('00000000', 'hex')]);
    const c = parseChallenge(challenge(info));
    assert.ok(c);
    const m = authenticateMessage(c, 'O365INFO\\bob', 'pw', { clientChallenge: Buffer.alloc(8, 1) });
    const field = (at: number): Buffer =>
      m.subarray(m.readUInt32LE(at + 4), m.readUInt32LE(at + 4) + m.readUInt16LE(at));
    assert.equal(m.readUInt32LE(8), 3);
    assert.equal(field(28).toString('utf16le'), 'O365INFO');
    assert.equal(field(36).toString('utf16le'), 'bob');
    assert.equal(hex(field(12)), '00'.repeat(24));
    const nt = field(20);
    assert.equal(hex(nt.subarray(24, 32)), hex(stamp), 'the server time in the blob');
    assert.equal(hex(nt.subarray(32, 40)), '01'.repeat(8));
  });

  test('logins and challenges as they come', () => {
    assert.deepEqual(splitLogin('O365INFO\\bob'), { user: 'bob', domain: 'O365INFO' });
    assert.deepEqual(splitLogin('bob@o365info.local'), { user: 'bob@o365info.local', domain: '' });
    const token = Buffer.from('TlRMTVNTUAACAAAA', 'base64');
    assert.deepEqual(
      challengeToken(`Negotiate, NTLM ${token.toString('base64')}, Basic realm="x"`, 'NTLM'),
      token,
    );
    assert.equal(challengeToken('NTLM, Basic realm="x"', 'NTLM'), undefined);
    assert.equal(challengeToken(undefined, 'Negotiate'), undefined);
  });
});
