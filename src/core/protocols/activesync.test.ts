/**
 * ActiveSync command lines in both forms (docs/protocols.md §3.1, with its two test vectors) and the
 * identity priority of §3 (the Basic user authorizes; `User` is a claim).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { activeSync, parseActiveSyncQuery } from './activesync.ts';
import type { RequestHead } from './request-head.ts';
import { isInvalid, routingKey } from './request-head.ts';

const basic = (userPass: string): string => `Basic ${Buffer.from(userPass).toString('base64')}`;
const eas = (query: string, headers: Record<string, string> = {}, method = 'POST'): RequestHead => ({
  method,
  host: 'mail.o365info.com',
  path: '/Microsoft-Server-ActiveSync',
  query,
  headers,
});
const b64 = (bytes: number[]): string => Buffer.from(bytes).toString('base64');
const ascii = (s: string): number[] => [...Buffer.from(s)];

const specVector = 'jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l';
const ourVector = 'jQAJBAZBQkMxMjMABmlQaG9uZQgQYm9iQG8zNjVpbmZvLmNvbQ==';

describe('base64 form (docs/protocols.md §3.1)', () => {
  test('spec vector: v14.0 Sync en-US v140Device, no policy key, SmartPhone', () => {
    assert.deepEqual(parseActiveSyncQuery(eas(specVector)), {
      form: 'base64',
      cmd: 'Sync',
      deviceId: 'v140Device',
      deviceType: 'SmartPhone',
      protocolVersion: '14.0',
      locale: 0x0409,
      params: {},
    });
  });

  test('our vector: v14.1 Sync ABC123 iPhone with User tag 8', () => {
    const expected = {
      form: 'base64',
      cmd: 'Sync',
      deviceId: 'ABC123',
      deviceType: 'iPhone',
      user: 'bob@o365info.com',
      protocolVersion: '14.1',
      locale: 0x0409,
      params: {},
    };
    assert.deepEqual(parseActiveSyncQuery(eas(ourVector)), expected);
    assert.deepEqual(parseActiveSyncQuery(eas(ourVector.replace(/=+$/, ''))), expected, 'without padding');
    assert.deepEqual(parseActiveSyncQuery(eas(ourVector.replace(/=/g, '%3D'))), expected, 'percent-encoded');
  });

  test('policy key, Options bitmask and other parameter tags', () => {
    const q = b64([
      ...[0xa1, 20, 0x09, 0x04, 3, ...ascii('Dev')],
      ...[4, 0x78, 0x56, 0x34, 0x12, 2, ...ascii('WP')],
      ...[1, 2, ...ascii('17'), 7, 1, 0x03],
    ]);
    const r = parseActiveSyncQuery(eas(encodeURIComponent(q)));
    assert.deepEqual(r, {
      form: 'base64',
      cmd: 'Provision',
      deviceId: 'Dev',
      deviceType: 'WP',
      protocolVersion: '16.1',
      locale: 0x0409,
      policyKey: String(0x12345678),
      params: { CollectionId: '17', SaveInSent: 'T', AcceptMultiPart: 'T' },
    });
  });

  const malformed: [string, string, string][] = [
    ['device ID length overruns', b64([0x8c, 0, 9, 4, 40, ...ascii('short')]), 'CX_IDENTITY_QUERY_MALFORMED'],
    [
      'truncated before the device type',
      b64([0x8c, 0, 9, 4, 3, ...ascii('abc')]),
      'CX_IDENTITY_QUERY_MALFORMED',
    ],
    [
      'parameter length overruns',
      b64([0x8c, 0, 9, 4, 1, 65, 0, 1, 66, 8, 20, 98]),
      'CX_IDENTITY_QUERY_MALFORMED',
    ],
    ['policy key length 3', b64([0x8c, 0, 9, 4, 1, 65, 3, 1, 2, 3, 1, 66]), 'CX_IDENTITY_QUERY_MALFORMED'],
    ['version 12.0 has no base64 form', b64([120, 0, 9, 4, 1, 65, 0, 1, 66]), 'CX_IDENTITY_QUERY_MALFORMED'],
    ['unknown command code', b64([0x8c, 99, 9, 4, 1, 65, 0, 1, 66]), 'CX_IDENTITY_QUERY_MALFORMED'],
    ['not base64', 'not*base64!', 'CX_IDENTITY_QUERY_MALFORMED'],
    ['bad padding', 'jAAJ=BAp2', 'CX_IDENTITY_QUERY_MALFORMED'],
    ['empty query on POST', '', 'CX_IDENTITY_QUERY_MALFORMED'],
    ['device ID with a dash', b64([0x8c, 0, 9, 4, 3, ...ascii('a-b'), 0, 1, 66]), 'CX_IDENTITY_DEVICE_ID'],
    ['empty device ID', b64([0x8c, 0, 9, 4, 0, 0, 1, 66]), 'CX_IDENTITY_DEVICE_ID'],
    [
      '33-character device ID',
      b64([0x8c, 0, 9, 4, 33, ...ascii('a'.repeat(33)), 0, 1, 66]),
      'CX_IDENTITY_DEVICE_ID',
    ],
  ];
  for (const [name, query, code] of malformed)
    test(`refuses: ${name}`, () => {
      const id = activeSync.identify(eas(query));
      assert.equal(id.kind, 'invalid');
      assert.equal(id.kind === 'invalid' && id.code, code);
    });
});

describe('plain form (docs/protocols.md §3.1, §4.1)', () => {
  test('the spec example with its headers', () => {
    const head = eas('Cmd=Sync&User=bob%40o365info.com&DeviceId=ABC123&DeviceType=iPhone', {
      'ms-asprotocolversion': '14.1',
      'x-ms-policykey': '3942919513',
    });
    assert.deepEqual(parseActiveSyncQuery(head), {
      form: 'plain',
      cmd: 'Sync',
      deviceId: 'ABC123',
      deviceType: 'iPhone',
      user: 'bob@o365info.com',
      protocolVersion: '14.1',
      policyKey: '3942919513',
      params: {},
    });
  });

  test('command-specific parameters and case-insensitive names', () => {
    const r = parseActiveSyncQuery(
      eas('cmd=sendmail&user=O365INFO%5Cbob&deviceid=ABC123&devicetype=iPhone&SaveInSent=T&ItemId=5%3A1'),
    );
    assert.ok(!isInvalid(r) && r.form === 'plain');
    assert.equal(r.cmd, 'SendMail');
    assert.equal(r.user, 'O365INFO\\bob');
    assert.deepEqual(r.params, { ItemId: '5:1', SaveInSent: 'T' });
  });

  const malformed: [string, string, string][] = [
    ['unknown command', 'Cmd=Hack&DeviceId=ABC123&DeviceType=iPhone', 'CX_IDENTITY_QUERY_MALFORMED'],
    [
      'repeated User',
      'Cmd=Sync&User=a&User=b&DeviceId=ABC123&DeviceType=iPhone',
      'CX_IDENTITY_QUERY_MALFORMED',
    ],
    ['bad escape', 'Cmd=Sync&User=%ZZ&DeviceId=ABC123&DeviceType=iPhone', 'CX_IDENTITY_QUERY_MALFORMED'],
    ['missing DeviceType', 'Cmd=Sync&User=bob&DeviceId=ABC123', 'CX_IDENTITY_QUERY_MALFORMED'],
    ['missing DeviceId', 'Cmd=Sync&User=bob&DeviceType=iPhone', 'CX_IDENTITY_DEVICE_ID'],
    ['DeviceId with a comma', 'Cmd=Sync&DeviceId=AB%2C12&DeviceType=iPhone', 'CX_IDENTITY_DEVICE_ID'],
    ['DeviceId of 33', `Cmd=Sync&DeviceId=${'A'.repeat(33)}&DeviceType=iPhone`, 'CX_IDENTITY_DEVICE_ID'],
  ];
  for (const [name, query, code] of malformed)
    test(`refuses: ${name}`, () => {
      const id = activeSync.identify(eas(query));
      assert.equal(id.kind === 'invalid' && id.code, code);
    });
});

describe('identity (docs/protocols.md §3)', () => {
  const plain = 'Cmd=Sync&User=bob%40o365info.com&DeviceId=ABC123&DeviceType=iPhone';

  test('the Basic user authorizes; User is kept as a claim', () => {
    const id = activeSync.identify(eas(plain, { authorization: basic('O365INFO\\bob:secret') }));
    assert.deepEqual(id, {
      kind: 'user',
      user: 'O365INFO\\bob',
      source: 'basic-auth',
      basicUser: 'O365INFO\\bob',
      claimed: 'bob@o365info.com',
    });
  });

  test('without credentials the claimed User is used', () => {
    assert.deepEqual(activeSync.identify(eas(plain)), {
      kind: 'user',
      user: 'bob@o365info.com',
      source: 'activesync-query',
      claimed: 'bob@o365info.com',
    });
  });

  test('plain and base64 forms of the same request give the same identity and routing key', () => {
    for (const headers of [{}, { authorization: basic('bob@o365info.com:pw') }] as Record<string, string>[]) {
      const a = activeSync.identify(eas(plain, headers));
      const b = activeSync.identify(eas(ourVector, headers));
      assert.deepEqual(a, b);
      assert.equal(routingKey(a), 'user:bob@o365info.com');
      assert.equal(routingKey(a), routingKey(b));
    }
  });

  test('OPTIONS without a query is identified by the credentials alone', () => {
    assert.deepEqual(activeSync.identify(eas('', {}, 'OPTIONS')), { kind: 'anonymous' });
    const id = activeSync.identify(eas('', { authorization: basic('bob@o365info.com:pw') }, 'OPTIONS'));
    assert.equal(id.kind === 'user' && id.source, 'basic-auth');
  });

  test('a malformed Authorization header is refused even with a good query', () => {
    const id = activeSync.identify(eas(plain, { authorization: 'Basic Ym9i' }));
    assert.equal(id.kind === 'invalid' && id.code, 'CX_IDENTITY_BASIC_MALFORMED');
  });

  test('matches its path case-insensitively, not lookalikes', () => {
    assert.ok(activeSync.matches(eas('')));
    assert.ok(activeSync.matches({ ...eas(''), path: '/microsoft-server-activesync/default.eas' }));
    assert.ok(!activeSync.matches({ ...eas(''), path: '/Microsoft-Server-ActiveSyncX' }));
  });
});
