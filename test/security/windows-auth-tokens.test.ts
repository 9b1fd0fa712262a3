/**
 * Attack: a hostile `Authorization: NTLM|Negotiate` token. The reader (src/core/protocols/windows-auth.ts) takes
 * offsets and lengths from the token itself; each must be checked against the token, or a crafted AUTHENTICATE
 * reads beyond it, and a crafted DER length walks SPNEGO's fields off the end. Every token below must give a
 * result, never a throw; a token cut anywhere inside what its fields point to must be refused, never read
 * short; a name that is not text is refused. Deterministic: a seeded generator, the same cases every run.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  isWindowsAuthInvalid,
  maxTokenBytes,
  parseWindowsAuthorization,
  parseWindowsToken,
} from '../../src/core/protocols/windows-auth.ts';
import {
  kerberosApReq,
  negTokenInit,
  negTokenResp,
  ntlmAuthenticate,
  ntlmChallenge,
  ntlmNegotiate,
} from '../support/ntlm.ts';
import { defined } from '../support/ntlm.ts';

/** xorshift32: the same sequence every run. */
function generator(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const valid = (): Buffer[] => [
  ntlmNegotiate(),
  ntlmChallenge(),
  ntlmAuthenticate({ user: 'bob', domain: 'O365INFO', workstation: 'WS1' }),
  ntlmAuthenticate({ user: 'alice@o365info.com', unicode: false }),
  negTokenInit(ntlmNegotiate()),
  negTokenResp(ntlmAuthenticate({ user: 'carol', domain: 'O365INFO' })),
  kerberosApReq(200),
  negTokenInit(kerberosApReq(400)),
];

/** Parse under both schemes; the result must be a value, and a read user name must be plain text. */
function parseBoth(token: Uint8Array): void {
  for (const scheme of ['ntlm', 'negotiate'] as const) {
    const r = parseWindowsToken(scheme, token);
    assert.ok(typeof r === 'object' && r !== null);
    if (!isWindowsAuthInvalid(r) && r.mechanism === 'ntlm') {
      for (const name of [r.user, r.domain, r.workstation])
        if (name !== undefined)
          assert.ok(
            ![...name].some((c) => c < ' ' || (c >= '\u007f' && c <= '\u009f')),
            'control characters',
          );
      assert.ok(r.ntlm.length <= token.length);
    }
  }
}

describe('attack: hostile NTLM and Negotiate tokens', () => {
  test('every truncation of an AUTHENTICATE inside its payload is refused, never read short', () => {
    const full = ntlmAuthenticate({ user: 'bob', domain: 'O365INFO', workstation: 'WS1' });
    const wrapped = negTokenResp(full);
    for (let n = 0; n < full.length; n++) {
      const r = parseWindowsToken('ntlm', full.subarray(0, n));
      assert.ok(isWindowsAuthInvalid(r), `cut at ${n} of ${full.length} was read`);
    }
    for (let n = 0; n < wrapped.length; n++) {
      const r = parseWindowsToken('negotiate', wrapped.subarray(0, n));
      assert.ok(isWindowsAuthInvalid(r), `SPNEGO cut at ${n} of ${wrapped.length} was read`);
    }
  });

  test('fields that point past the end, or wrap around 2^32, are refused', () => {
    const base = ntlmAuthenticate({ user: 'bob', domain: 'O365INFO' });
    for (const fieldAt of [12, 20, 28, 36, 44, 52]) {
      for (const [len, offset] of [
        [0xffff, 72],
        [4, 0xffffffff],
        [4, 0xfffffffe],
        [8, base.length - 4],
        [2, base.length],
      ] as const) {
        const b = Buffer.from(base);
        b.writeUInt16LE(len, fieldAt);
        b.writeUInt32LE(offset, fieldAt + 4);
        const r = parseWindowsToken('ntlm', b);
        assert.ok(isWindowsAuthInvalid(r), `field at ${fieldAt} len ${len} offset ${offset} was read`);
      }
    }
  });

  test('names that are not text: odd UTF-16, lone surrogates, control characters', () => {
    const odd = ntlmAuthenticate({ user: 'bob', domain: 'O365INFO' });
    odd.writeUInt16LE(5, 36); // the user field's length, odd under Unicode
    assert.ok(isWindowsAuthInvalid(parseWindowsToken('ntlm', odd)));
    const surrogate = ntlmAuthenticate({ user: 'ab', domain: 'D' });
    surrogate.writeUInt16LE(0xd800, surrogate.readUInt32LE(40));
    assert.ok(isWindowsAuthInvalid(parseWindowsToken('ntlm', surrogate)));
    for (const user of ['bob\r\nX-Injected: 1', 'bob\u0000', 'a\u007fb'])
      assert.ok(
        isWindowsAuthInvalid(parseWindowsToken('ntlm', ntlmAuthenticate({ user }))),
        JSON.stringify(user),
      );
    assert.ok(isWindowsAuthInvalid(parseWindowsToken('ntlm', ntlmAuthenticate({ user: 'u'.repeat(1025) }))));
  });

  test('DER lengths that lie: indefinite, five-byte, past the end, trailing bytes', () => {
    for (const hex of [
      'a180', // indefinite length
      'a185ffffffffff30', // a length of five bytes
      'a184ffffffff30', // 4 GiB
      'a10630030a0101', // one byte short
      'a1053003a0010a00', // trailing byte after the value
      '600a06062b0601050502a000', // NegTokenInit empty
      '6006060603', // an OID longer than its token
      'a1033001a2', // a [2] without a length
      '1f', // a multi-byte tag
    ]) {
      const r = parseWindowsToken('negotiate', Buffer.from(hex, 'hex'));
      assert.ok(isWindowsAuthInvalid(r), `${hex} was read: ${JSON.stringify(r)}`);
    }
  });

  test('huge and non-base64 headers are refused before decoding', () => {
    const huge = `NTLM ${'A'.repeat(Math.ceil(maxTokenBytes / 3) * 4 + 4)}`;
    assert.deepEqual(parseWindowsAuthorization(huge), { kind: 'invalid', reason: 'token too large' });
    for (const v of ['NTLM', 'NTLM ', 'Negotiate ***', 'NTLM TlRMTVNTUAAB=A', 'NTLM TlRM\u00e9'])
      assert.ok(isWindowsAuthInvalid(parseWindowsAuthorization(v)), v);
    assert.ok(isWindowsAuthInvalid(parseWindowsToken('ntlm', new Uint8Array(maxTokenBytes + 1))));
  });

  test('20 000 mutated tokens: flipped bytes, spliced lengths, random tails: never a throw', () => {
    const next = generator(0x5eed16);
    const seeds = valid();
    for (let i = 0; i < 20_000; i++) {
      const source = defined(seeds[next() % seeds.length]);
      const b = Buffer.from(source);
      const edits = 1 + (next() % 4);
      for (let e = 0; e < edits; e++) {
        const at = next() % b.length;
        switch (next() % 4) {
          case 0:
            b[at] = next() & 0xff;
            break;
          case 1:
            b[at] = (b[at] ?? 0) ^ (1 << (next() % 8));
            break;
          case 2:
            if (at + 4 <= b.length) b.writeUInt32LE(next(), at);
            break;
          default:
            if (at + 2 <= b.length) b.writeUInt16LE(next() & 0xffff, at);
        }
      }
      const cut = next() % 3 === 0 ? b.subarray(0, next() % (b.length + 1)) : b;
      parseBoth(cut);
      parseBoth(Buffer.concat([cut, Buffer.alloc(next() % 8, next() & 0xff)]));
    }
  });

  test('random bytes behind a real signature or a real SPNEGO header: never a throw', () => {
    const next = generator(0xbadc0de);
    for (let i = 0; i < 5_000; i++) {
      const tail = Buffer.alloc(next() % 200);
      for (let j = 0; j < tail.length; j++) tail[j] = next() & 0xff;
      parseBoth(Buffer.concat([Buffer.from('NTLMSSP\0', 'latin1'), tail]));
      parseBoth(Buffer.concat([Buffer.from('a1', 'hex'), tail]));
      parseBoth(Buffer.concat([Buffer.from('60', 'hex'), tail]));
    }
  });
});
