/** OWA and ECP (docs/protocols.md §3 OWA row, §4.9): the logon form's username, then the session cookie. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createEcp, ecp } from './ecp.ts';
import { createOwa, logonMaxBytes, owa } from './owa.ts';
import type { Identity, RequestHead } from './request-head.ts';

const req = (method: string, path: string, headers: Record<string, string> = {}): RequestHead => ({
  method,
  host: 'mail.o365info.com',
  path,
  query: '',
  headers,
});
const form = (fields: Record<string, string>): Uint8Array =>
  new TextEncoder().encode(new URLSearchParams(fields).toString());
const logonFields = {
  destination: 'https://mail.o365info.com/owa/',
  flags: '4',
  forcedownlevel: '0',
  username: 'O365INFO\\bob',
  password: 'Hunter2Secret',
  passwordText: '',
  isUtf8: '1',
};
const code = (id: Identity): string | false => id.kind === 'invalid' && id.code;

describe('OWA logon (docs/protocols.md §4.9)', () => {
  for (const path of ['/owa/auth.owa', '/owa/auth/owaauth.dll', '/OWA/auth.owa'])
    test(`POST ${path} asks for the form, then reads username`, () => {
      assert.deepEqual(owa.identify(req('POST', path)), { kind: 'needs-body', maxBytes: logonMaxBytes });
      assert.deepEqual(owa.identify(req('POST', path), form(logonFields)), {
        kind: 'user',
        user: 'O365INFO\\bob',
        source: 'logon-form',
      });
    });

  test('UPN and SMTP user names', () => {
    for (const username of ['bob@o365info.local', 'bob@o365info.com']) {
      const id = owa.identify(req('POST', '/owa/auth.owa'), form({ ...logonFields, username }));
      assert.equal(id.kind === 'user' && id.user, username);
    }
  });

  const bad: [string, Uint8Array, string][] = [
    ['no username', form({ password: 'x' }), 'CX_IDENTITY_BODY_MALFORMED'],
    ['empty username', form({ ...logonFields, username: '  ' }), 'CX_IDENTITY_BODY_MALFORMED'],
    [
      'repeated username',
      new TextEncoder().encode('username=bob&username=alice&password=x'),
      'CX_IDENTITY_BODY_MALFORMED',
    ],
    ['bad escape', new TextEncoder().encode('username=%zz&password=x'), 'CX_IDENTITY_BODY_MALFORMED'],
    ['too large', new Uint8Array(logonMaxBytes + 1), 'CX_IDENTITY_BODY_TOO_LARGE'],
  ];
  for (const [name, body, expected] of bad)
    test(`refuses: ${name}`, () => {
      const id = owa.identify(req('POST', '/owa/auth.owa'), body);
      assert.equal(code(id), expected);
      assert.ok(!JSON.stringify(id).includes('Hunter2'));
    });
});

describe('OWA after logon', () => {
  test('the session cookie, raw, for the data plane to verify', () => {
    const head = req('GET', '/owa/', {
      cookie: 'cadata=ignored; coexist-session=s3ss10n.v4lue; X-BEResource=evil~1',
    });
    assert.deepEqual(owa.identify(head), {
      kind: 'session-cookie',
      cookie: 'coexist-session',
      value: 's3ss10n.v4lue',
    });
  });

  test('a configured cookie name', () => {
    const head = req('GET', '/owa/', { cookie: 'fd=abc' });
    assert.deepEqual(createOwa('fd').identify(head), { kind: 'session-cookie', cookie: 'fd', value: 'abc' });
    assert.deepEqual(owa.identify(head), { kind: 'anonymous' });
  });

  test('the logon page and a GET of auth.owa are anonymous', () => {
    assert.deepEqual(owa.identify(req('GET', '/owa/auth/logon.aspx')), { kind: 'anonymous' });
    assert.deepEqual(owa.identify(req('GET', '/owa/auth.owa')), { kind: 'anonymous' });
  });

  test('Basic when OWA uses Basic', () => {
    const auth = `Basic ${Buffer.from('bob@o365info.com:pw').toString('base64')}`;
    const id = owa.identify(req('GET', '/owa/', { authorization: auth }));
    assert.equal(id.kind === 'user' && id.source, 'basic-auth');
  });
});

describe('ECP', () => {
  test('shares the OWA session cookie', () => {
    const head = req('GET', '/ecp/', { cookie: 'coexist-session=abc' });
    assert.deepEqual(ecp.identify(head), { kind: 'session-cookie', cookie: 'coexist-session', value: 'abc' });
    assert.equal(createEcp('fd').identify(head).kind, 'anonymous');
    assert.ok(ecp.matches(req('GET', '/ECP/default.aspx')) && !ecp.matches(req('GET', '/owa/')));
  });
});
