/** `Authorization: Basic` parsing (docs/protocols.md §5): user forms, other schemes, malformed headers. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { basicCredentials, basicUser } from './basic-auth.ts';
import type { RequestHead } from './request-head.ts';

const withAuth = (authorization?: string): RequestHead => ({
  method: 'POST',
  host: 'mail.o365info.com',
  path: '/EWS/Exchange.asmx',
  query: '',
  headers: authorization === undefined ? {} : { authorization },
});
const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('basicCredentials', () => {
  for (const user of ['O365INFO\\bob', 'bob@o365info.local', 'bob@o365info.com', 'björn@o365info.com'])
    test(`reads the user ${user}`, () => {
      assert.deepEqual(basicCredentials(withAuth(`Basic ${b64(`${user}:pa:ss word`)}`)), {
        user,
        password: 'pa:ss word',
      });
    });

  test('the scheme is case-insensitive and padding may be absent', () => {
    assert.equal(basicUser(withAuth(`basic ${b64('ab:c').replace(/=+$/, '')}`)), 'ab');
    assert.equal(basicUser(withAuth(`BASIC  ${b64('bob:')}`)), 'bob', 'empty password is allowed');
  });

  test('no header or another scheme is not an error', () => {
    assert.equal(basicCredentials(withAuth()), undefined);
    assert.equal(basicCredentials(withAuth('NTLM TlRMTVNTUAABAAAAB4IIog==')), undefined);
    assert.equal(basicCredentials(withAuth('Negotiate YIIH')), undefined);
    assert.equal(basicCredentials(withAuth('Bearer eyJ0eXAi')), undefined);
  });

  const malformed: [string, string][] = [
    ['no colon', `Basic ${b64('bobsecret')}`],
    ['empty user', `Basic ${b64(':secret')}`],
    ['bad base64', 'Basic Ym9i*c2VjcmV0'],
    ['no token', 'Basic'],
    ['two tokens', `Basic ${b64('a:b')} ${b64('c:d')}`],
    ['not UTF-8', `Basic ${Buffer.from([0x62, 0xff, 0x3a, 0x78]).toString('base64')}`],
    ['control character in the user', `Basic ${b64('bo\nb:secret')}`],
    ['no scheme', ':::'],
  ];
  for (const [name, header] of malformed)
    test(`refuses: ${name}`, () => {
      const r = basicCredentials(withAuth(header));
      assert.ok(r && 'kind' in r && r.kind === 'invalid');
      assert.equal(r.code, 'CX_IDENTITY_BASIC_MALFORMED');
    });

  test('no error detail carries the password', () => {
    for (const header of [`Basic ${b64('Hunter2Secret')}`, `Basic ${b64(':Hunter2Secret')}`]) {
      const r = basicCredentials(withAuth(header));
      assert.ok(r && 'kind' in r);
      assert.ok(!JSON.stringify(r).includes('Hunter2'));
    }
  });
});
