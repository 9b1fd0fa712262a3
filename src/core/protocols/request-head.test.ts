/** The shared helpers: base64, query, addresses, GUIDs, cookies, body size. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkBodySize,
  cookieValue,
  decodeBase64,
  isSmtpAddress,
  parseGuidAtDomain,
  parseQuery,
  routingKey,
} from './request-head.ts';

describe('decodeBase64', () => {
  test('agrees with Buffer on every length, padded or not', () => {
    const bytes = Uint8Array.from({ length: 40 }, (_, i) => (i * 37 + 11) & 0xff);
    for (let n = 0; n <= bytes.length; n++) {
      const text = Buffer.from(bytes.subarray(0, n)).toString('base64');
      assert.deepEqual(decodeBase64(text), bytes.subarray(0, n));
      assert.deepEqual(decodeBase64(text.replace(/=+$/, '')), bytes.subarray(0, n));
    }
  });
  test('refuses a bad alphabet, a lone sextet and stray padding', () => {
    for (const bad of ['ab-c', 'abcde', 'ab=c', 'abc===', 'a===', 'ab=', 'é'])
      assert.equal(decodeBase64(bad), undefined);
  });
});

test('parseQuery decodes names and values, keeps repeats, refuses bad escapes', () => {
  const q = parseQuery('Cmd=Sync&user=bob%40x.com&User=a+b&flag');
  assert.deepEqual(q?.get('user'), ['bob@x.com', 'a b']);
  assert.deepEqual(q?.get('flag'), ['']);
  assert.equal(parseQuery('a=%E0%A4%A'), undefined);
});

test('isSmtpAddress', () => {
  for (const ok of ['bob@o365info.com', "o'neil+x@sub.o365info.com"]) assert.ok(isSmtpAddress(ok), ok);
  for (const bad of [
    'bob',
    'bob@',
    '@x.com',
    'bob@localhost',
    'a b@x.com',
    '<bob@x.com>',
    'a@b@x.com',
    'a/b@x.com',
  ])
    assert.ok(!isSmtpAddress(bad), bad);
});

test('parseGuidAtDomain lower-cases the GUID and domain', () => {
  assert.deepEqual(parseGuidAtDomain('7F1D5C8E-0B6A-4C5E-9D7E-1A2B3C4D5E6F@O365info.com'), {
    guid: '7f1d5c8e-0b6a-4c5e-9d7e-1a2b3c4d5e6f',
    domain: 'o365info.com',
  });
  assert.equal(parseGuidAtDomain('7f1d5c8e@o365info.com'), undefined);
  assert.equal(parseGuidAtDomain('7f1d5c8e-0b6a-4c5e-9d7e-1a2b3c4d5e6f@localhost'), undefined);
});

const head = (headers: Record<string, string>) => ({
  method: 'GET',
  host: 'h',
  path: '/owa/',
  query: '',
  headers,
});

test('cookieValue finds the exact name only', () => {
  const h = head({ cookie: 'cadata=x; coexist-session=abc.def==; coexist-session2=no' });
  assert.equal(cookieValue(h, 'coexist-session'), 'abc.def==');
  assert.equal(cookieValue(h, 'Coexist-Session'), undefined);
  assert.equal(cookieValue(head({}), 'coexist-session'), undefined);
});

test('checkBodySize refuses a large declared or buffered body', () => {
  assert.equal(checkBodySize(head({ 'content-length': '10' }), undefined, 10), undefined);
  assert.equal(
    checkBodySize(head({ 'content-length': '11' }), undefined, 10)?.code,
    'CX_IDENTITY_BODY_TOO_LARGE',
  );
  assert.equal(checkBodySize(head({}), new Uint8Array(11), 10)?.code, 'CX_IDENTITY_BODY_TOO_LARGE');
});

test('routingKey is case-insensitive for names and undefined without a target', () => {
  assert.equal(
    routingKey({ kind: 'user', user: 'Bob@O365info.com', source: 'basic-auth' }),
    'user:bob@o365info.com',
  );
  assert.equal(routingKey({ kind: 'anonymous' }), undefined);
  assert.equal(routingKey({ kind: 'needs-body', maxBytes: 1 }), undefined);
});
