/**
 * The client's command lines, read back by the server side's own parser (src/core/protocols/activesync.ts):
 * both forms, every version of the base64 form, policy keys, parameters, and docs/protocols.md §3.1's vector.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseActiveSyncQuery } from '../../core/protocols/activesync.ts';
import type { RequestHead } from '../../core/protocols/request-head.ts';
import { isInvalid } from '../../core/protocols/request-head.ts';
import type { CommandLine, QueryForm } from './query.ts';
import { base64Query, encodeQuery, QueryEncodingError } from './query.ts';

/** What the server sees: the query, and the headers by lower-case name. */
function serverReads(form: QueryForm, line: CommandLine): ReturnType<typeof parseActiveSyncQuery> {
  const { query, headers } = encodeQuery(form, line);
  const head: RequestHead = {
    method: 'POST',
    host: 'mail.o365info.com',
    path: '/Microsoft-Server-ActiveSync',
    query,
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
  };
  return parseActiveSyncQuery(head);
}

const line: CommandLine = {
  cmd: 'Sync',
  user: 'bob@o365info.com',
  deviceId: 'ABC123',
  deviceType: 'iPhone',
  protocolVersion: '14.1',
};

describe('plain form', () => {
  test('Cmd, User, DeviceId, DeviceType in the query; version and policy key in headers', () => {
    const { query, headers } = encodeQuery('plain', { ...line, policyKey: '3871294689' });
    assert.equal(query, 'Cmd=Sync&User=bob%40o365info.com&DeviceId=ABC123&DeviceType=iPhone');
    assert.deepEqual(headers, { 'MS-ASProtocolVersion': '14.1', 'X-MS-PolicyKey': '3871294689' });
    assert.deepEqual(serverReads('plain', { ...line, policyKey: '3871294689' }), {
      form: 'plain',
      cmd: 'Sync',
      deviceId: 'ABC123',
      deviceType: 'iPhone',
      user: 'bob@o365info.com',
      protocolVersion: '14.1',
      policyKey: '3871294689',
      params: {},
    });
  });

  test('no X-MS-PolicyKey before Provision; command parameters as query pairs', () => {
    const r = serverReads('plain', {
      ...line,
      cmd: 'SmartReply',
      params: { CollectionId: '1', ItemId: '1:2', SaveInSent: 'T' },
    });
    assert.ok(!isInvalid(r));
    assert.equal(r.policyKey, undefined);
    assert.deepEqual(r.params, { CollectionId: '1', ItemId: '1:2', SaveInSent: 'T' });
    assert.ok(!('X-MS-PolicyKey' in encodeQuery('plain', line).headers));
  });

  test('a user with characters that need escaping comes back whole', () => {
    const r = serverReads('plain', { ...line, user: 'o365info\\bob+test@o365info.com' });
    assert.ok(!isInvalid(r));
    assert.equal(r.user, 'o365info\\bob+test@o365info.com');
  });
});

describe('base64 form (MS-ASHTTP 2.2.1.1.1.1)', () => {
  test("docs/protocols.md §3.1's own vector: v14.1 Sync ABC123 iPhone, User tag 8 bob@o365info.com", () => {
    assert.equal(base64Query(line), 'jQAJBAZBQkMxMjMABmlQaG9uZQgQYm9iQG8zNjVpbmZvLmNvbQ==');
    const { query, headers } = encodeQuery('base64', line);
    assert.equal(
      query,
      'jQAJBAZBQkMxMjMABmlQaG9uZQgQYm9iQG8zNjVpbmZvLmNvbQ==',
      'as devices send it: not percent-encoded',
    );
    assert.deepEqual(headers, {}, 'no MS-ASProtocolVersion / X-MS-PolicyKey headers (§3.1)');
  });

  for (const protocolVersion of ['12.1', '14.0', '14.1', '16.0', '16.1']) {
    for (const cmd of ['Sync', 'FolderSync', 'Ping', 'Provision', 'Settings', 'ItemOperations']) {
      test(`${protocolVersion} ${cmd}: the server parser gets every field back`, () => {
        const sent: CommandLine = {
          cmd,
          user: 'diego@o365info.com',
          deviceId: 'COEXIST0123456789ABCDEF',
          deviceType: 'CoexistEAS',
          protocolVersion,
          policyKey: '2071123166',
        };
        assert.deepEqual(serverReads('base64', sent), {
          form: 'base64',
          cmd,
          deviceId: 'COEXIST0123456789ABCDEF',
          deviceType: 'CoexistEAS',
          user: 'diego@o365info.com',
          protocolVersion,
          locale: 0x0409,
          policyKey: '2071123166',
          params: {},
        });
      });
    }
  }

  test('DeviceId is a length-prefixed byte field (5 + n bytes in), the policy key 4 bytes little-endian', () => {
    const bytes = Buffer.from(base64Query({ ...line, policyKey: '305419896' }), 'base64');
    assert.deepEqual([...bytes.subarray(0, 5)], [141, 0, 0x09, 0x04, 6]);
    assert.equal(bytes.subarray(5, 11).toString(), 'ABC123');
    assert.deepEqual([...bytes.subarray(11, 16)], [4, 0x78, 0x56, 0x34, 0x12]);
  });

  test('policy keys at the edges of 32 bits, and none at all', () => {
    for (const policyKey of ['0', '1', '4294967295']) {
      const r = serverReads('base64', { ...line, policyKey });
      assert.ok(!isInvalid(r));
      assert.equal(r.policyKey, policyKey);
    }
    const none = serverReads('base64', line);
    assert.ok(!isInvalid(none));
    assert.equal(none.policyKey, undefined);
  });

  test('parameters: CollectionId, ItemId, AttachmentName, Occurrence, and the Options bitmask', () => {
    const r = serverReads('base64', {
      ...line,
      cmd: 'SmartForward',
      params: { CollectionId: '1', ItemId: '1:1', Occurrence: '2', SaveInSent: 'T', AcceptMultiPart: 'F' },
    });
    assert.ok(!isInvalid(r));
    assert.deepEqual(r.params, {
      CollectionId: '1',
      ItemId: '1:1',
      Occurrence: '2',
      SaveInSent: 'T',
      AcceptMultiPart: 'F',
    });
    const attachment = serverReads('base64', {
      ...line,
      cmd: 'GetAttachment',
      params: { AttachmentName: '1:1:0' },
    });
    assert.ok(!isInvalid(attachment));
    assert.deepEqual(attachment.params, { AttachmentName: '1:1:0' });
  });

  test('a locale other than en-US', () => {
    const r = serverReads('base64', { ...line, locale: 0x0c0a });
    assert.ok(!isInvalid(r));
    assert.equal(r.locale, 0x0c0a);
  });

  test('what cannot be written is refused before anything is sent', () => {
    assert.throws(() => encodeQuery('base64', { ...line, protocolVersion: '12.0' }), QueryEncodingError);
    assert.throws(() => encodeQuery('base64', { ...line, protocolVersion: '2.5' }), QueryEncodingError);
    assert.throws(() => encodeQuery('base64', { ...line, cmd: 'GetHierarchy' }), QueryEncodingError);
    assert.throws(() => encodeQuery('base64', { ...line, policyKey: 'abc' }), /32-bit/);
    assert.throws(() => encodeQuery('base64', { ...line, policyKey: '4294967296' }), /32-bit/);
    for (const form of ['plain', 'base64'] as const) {
      assert.throws(() => encodeQuery(form, { ...line, deviceId: 'has-dash' }), /DeviceId/);
      assert.throws(() => encodeQuery(form, { ...line, deviceId: 'x'.repeat(33) }), /DeviceId/);
      assert.throws(() => encodeQuery(form, { ...line, deviceType: 'two words' }), /DeviceType/);
    }
    assert.throws(() => encodeQuery('base64', { ...line, user: 'x'.repeat(256) }), /255/);
  });
});
