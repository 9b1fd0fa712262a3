/**
 * OWA forms logon owned by the front end (docs/protocols.md §4.9, §5.3): the signed-cookie session store with
 * its expiries and bound, the logon form parser, the logon page, the open-redirect guard and the Basic
 * credential passed on. Pure: an injected clock, no sleeps, no sockets.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { basicCredentials } from '../core/protocols/basic-auth.ts';
import { defaultSessionCookie, logonMaxBytes, owa } from '../core/protocols/owa.ts';
import { parseQuery } from '../core/protocols/request-head.ts';
import type { Authenticate, OwaSessionOptions } from './owa-session.ts';
import {
  badCredentialsReason,
  basicAuthorization,
  logonPage,
  logonPageHeaders,
  logonReason,
  logonReasons,
  logonUrl,
  OwaSessions,
  owaLogon,
  parseLogonForm,
  safeDestination,
} from './owa-session.ts';

const secret = new Uint8Array(32).fill(7);
const otherSecret = new Uint8Array(32).fill(8);
const minute = 60_000;
const auth = basicAuthorization('O365INFO\\bob', 'Hunter2Secret');

/** A store on a clock the test moves. */
const store = (o: Partial<OwaSessionOptions> = {}) => {
  const clock = { t: 1_000_000 };
  const sessions = new OwaSessions({ secret, now: () => clock.t, ...o });
  return { sessions, clock };
};
/** The cookie value of a `Set-Cookie` header value. */
const valueOf = (setCookie: string): string => {
  const pair = setCookie.split(';')[0] ?? '';
  return pair.slice(pair.indexOf('=') + 1);
};
const encode = (s: string): Uint8Array => new TextEncoder().encode(s);
const form = (fields: Record<string, string>): Uint8Array => encode(new URLSearchParams(fields).toString());
const logonFields = {
  destination: 'https://mail.o365info.com/owa/',
  flags: '4',
  forcedownlevel: '0',
  username: 'O365INFO\\bob',
  password: 'Hunter2Secret',
  passwordText: '',
  isUtf8: '1',
};

describe('OwaSessions: options', () => {
  test('a secret shorter than 32 bytes is refused with a clear error', () => {
    assert.throws(() => new OwaSessions({ secret: new Uint8Array(31) }), {
      name: 'RangeError',
      message: /secret must be at least 32 random bytes \(got 31\)/,
    });
    assert.doesNotThrow(() => new OwaSessions({ secret: new Uint8Array(64) }));
  });

  test('bad cookie names and limits are refused', () => {
    for (const cookieName of ['', 'a b', 'a;b', 'a=b', 'é'])
      assert.throws(() => new OwaSessions({ secret, cookieName }), RangeError);
    for (const bad of [{ idleMs: 0 }, { maxAgeMs: -1 }, { idleMs: Number.NaN }, { maxSessions: 0 }])
      assert.throws(() => new OwaSessions({ secret, ...bad }), RangeError);
    assert.throws(() => new OwaSessions({ secret, maxSessions: 1.5 }), RangeError);
  });

  test('the secret is copied: changing the caller’s bytes later changes nothing', () => {
    const key = new Uint8Array(32).fill(1);
    const sessions = new OwaSessions({ secret: key });
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    key.fill(2);
    assert.ok(sessions.verify(cookie));
  });
});

describe('OwaSessions: cookies', () => {
  test('create then verify gives the user and the credential back', () => {
    const { sessions } = store();
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    assert.deepEqual(sessions.verify(cookie), { user: 'bob@o365info.com', authorization: auth });
    assert.equal(sessions.size, 1);
  });

  test('Set-Cookie: default name, opaque id.signature value, HttpOnly; Secure; SameSite=Lax; Path=/', () => {
    const { sessions } = store();
    const setCookie = sessions.create('bob@o365info.com', auth);
    assert.match(
      setCookie,
      /^coexist-session=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Lax$/,
    );
    assert.ok(setCookie.startsWith(`${defaultSessionCookie}=`));
    assert.equal(sessions.cookieName, defaultSessionCookie);
    // A session cookie: no Max-Age or Expires, the server enforces expiry.
    assert.doesNotMatch(setCookie, /Max-Age|Expires|Domain/i);
  });

  test('the credential never goes into the cookie', () => {
    const { sessions } = store();
    const setCookie = sessions.create('bob@o365info.com', auth);
    for (const secretText of ['Hunter2Secret', auth.slice('Basic '.length), 'bob'])
      assert.ok(!setCookie.includes(secretText), secretText);
  });

  test('every session gets its own id', () => {
    const { sessions } = store();
    const a = valueOf(sessions.create('bob@o365info.com', auth));
    const b = valueOf(sessions.create('bob@o365info.com', auth));
    assert.notEqual(a.split('.')[0], b.split('.')[0]);
    assert.equal(sessions.size, 2);
  });

  test('a configured cookie name (a __Host- name works)', () => {
    const { sessions } = store({ cookieName: '__Host-coexist' });
    const setCookie = sessions.create('bob@o365info.com', auth);
    assert.match(setCookie, /^__Host-coexist=[^;]+; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
    assert.equal(
      sessions.clearCookie(),
      '__Host-coexist=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
    );
  });

  test('clearCookie empties and expires the cookie with the same attributes', () => {
    const { sessions } = store();
    assert.equal(
      sessions.clearCookie(),
      'coexist-session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
    );
  });

  test('a tampered signature or id is refused', () => {
    const { sessions } = store();
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    const [id = '', sig = ''] = cookie.split('.');
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    assert.equal(sessions.verify(`${id}.${flip(sig, 10)}`), undefined);
    assert.equal(sessions.verify(`${flip(id, 10)}.${sig}`), undefined);
    assert.equal(sessions.verify(`${id}.${sig.slice(0, -1)}`), undefined);
    // The last base64url character carries 4 bits and 2 unused ones: another spelling of the same bytes
    // is still refused, because the text is compared.
    const last = sig.at(-1) ?? 'A';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1] ?? 'A';
    assert.deepEqual(Buffer.from(sig.slice(0, -1) + twin, 'base64url'), Buffer.from(sig, 'base64url'));
    assert.equal(sessions.verify(`${id}.${sig.slice(0, -1)}${twin}`), undefined);
    assert.ok(sessions.verify(cookie), 'the real cookie still works');
  });

  test('malformed values are refused', () => {
    const { sessions } = store();
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    for (const bad of [undefined, '', '.', 'abc', cookie + '.x', ` ${cookie}`, cookie.replace('.', ':')])
      assert.equal(sessions.verify(bad), undefined, String(bad));
  });

  test('a correctly signed but unknown id is refused', () => {
    const a = store();
    const b = store(); // same secret, separate store: b's ids are unknown to a
    const cookie = valueOf(b.sessions.create('bob@o365info.com', auth));
    assert.equal(a.sessions.verify(cookie), undefined);
    assert.ok(b.sessions.verify(cookie));
  });

  test('a cookie signed with another secret is refused', () => {
    const a = store();
    const b = store({ secret: otherSecret });
    const cookie = valueOf(a.sessions.create('bob@o365info.com', auth));
    assert.equal(b.sessions.verify(cookie), undefined);
    // Not even a store holding the same id accepts it under another key (restart with a new secret).
    assert.ok(a.sessions.verify(cookie));
  });

  test('an authorization value Node would refuse as a header is refused at create', () => {
    const { sessions } = store();
    assert.throws(() => sessions.create('bob@o365info.com', 'Basic abc\r\nX-Evil: 1'), TypeError);
    assert.throws(() => sessions.create('bob@o365info.com', ''), TypeError);
    assert.throws(() => sessions.create('', auth), TypeError);
    assert.equal(sessions.size, 0);
  });
});

describe('OwaSessions: expiry, logoff and the bound', () => {
  test('idle expiry slides with each request (default 15 min)', () => {
    const { sessions, clock } = store();
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    clock.t += 15 * minute - 1;
    assert.ok(sessions.verify(cookie), 'just inside the idle window');
    clock.t += 15 * minute - 1;
    assert.ok(sessions.verify(cookie), 'the window slid: 30 min after logon, still alive');
    clock.t += 15 * minute;
    assert.equal(sessions.verify(cookie), undefined, '15 min idle');
    assert.equal(sessions.size, 0, 'an expired session is dropped when seen');
    clock.t -= 15 * minute;
    assert.equal(sessions.verify(cookie), undefined, 'and does not come back');
  });

  test('absolute expiry however busy (default 8 h)', () => {
    const { sessions, clock } = store();
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    for (let elapsed = 10 * minute; elapsed < 8 * 60 * minute; elapsed += 10 * minute) {
      clock.t += 10 * minute;
      assert.ok(sessions.verify(cookie), `alive after ${elapsed / minute} min`);
    }
    clock.t += 10 * minute; // 480 min after logon
    assert.equal(sessions.verify(cookie), undefined);
  });

  test('configured idle and absolute limits', () => {
    const { sessions, clock } = store({ idleMs: 1000, maxAgeMs: 2500 });
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    clock.t += 999;
    assert.ok(sessions.verify(cookie));
    clock.t += 999;
    assert.ok(sessions.verify(cookie));
    clock.t += 502; // 2500 after logon
    assert.equal(sessions.verify(cookie), undefined);
  });

  test('destroy ends the session; only a correctly signed value can destroy', () => {
    const { sessions } = store();
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    const [id = ''] = cookie.split('.');
    assert.equal(sessions.destroy(`${id}.${'A'.repeat(43)}`), false);
    assert.equal(sessions.destroy(undefined), false);
    assert.equal(sessions.size, 1);
    assert.equal(sessions.destroy(cookie), true);
    assert.equal(sessions.verify(cookie), undefined);
    assert.equal(sessions.destroy(cookie), false);
    assert.equal(sessions.size, 0);
  });

  test('maxSessions bounds memory: the least recently used session goes first', () => {
    const { sessions, clock } = store({ maxSessions: 3 });
    const cookies = ['a', 'b', 'c'].map((u) => {
      clock.t += 1;
      return valueOf(sessions.create(`${u}@o365info.com`, auth));
    });
    const [a = '', b = '', c = ''] = cookies;
    assert.ok(sessions.verify(a), 'a is used again, so b is now the oldest');
    const d = valueOf(sessions.create('d@o365info.com', auth));
    assert.equal(sessions.size, 3);
    assert.equal(sessions.verify(b), undefined, 'b evicted');
    for (const live of [a, c, d]) assert.ok(sessions.verify(live));
  });

  test('a logon drops idle-expired sessions before evicting live ones', () => {
    const { sessions, clock } = store({ maxSessions: 2 });
    const old = valueOf(sessions.create('old@o365info.com', auth));
    clock.t += 20 * minute;
    const live = valueOf(sessions.create('live@o365info.com', auth));
    assert.equal(sessions.size, 1, 'the idle one was swept');
    const next = valueOf(sessions.create('next@o365info.com', auth));
    assert.equal(sessions.size, 2);
    assert.equal(sessions.verify(old), undefined);
    assert.ok(sessions.verify(live));
    assert.ok(sessions.verify(next));
  });

  test('sweep drops every expired session, idle or absolute', () => {
    const { sessions, clock } = store({ idleMs: 10 * minute, maxAgeMs: 30 * minute });
    const first = valueOf(sessions.create('first@o365info.com', auth));
    clock.t += 5 * minute;
    const second = valueOf(sessions.create('second@o365info.com', auth));
    clock.t += 5 * minute - 1;
    assert.equal(sessions.sweep(), 0);
    assert.ok(sessions.verify(first));
    // Keep `first` busy up to its absolute limit while `second` goes idle.
    for (let i = 0; i < 4; i++) {
      clock.t += 5 * minute;
      assert.ok(sessions.verify(first));
    }
    assert.equal(sessions.sweep(), 1, 'second: idle');
    clock.t += 2 * minute; // first is now 32 min old
    assert.equal(sessions.sweep(), 1, 'first: absolute');
    assert.equal(sessions.size, 0);
    assert.equal(sessions.verify(second), undefined);
  });
});

describe('parseLogonForm (docs/protocols.md §4.9 form fields)', () => {
  test("OWA's full field set", () => {
    assert.deepEqual(parseLogonForm(form(logonFields)), {
      username: 'O365INFO\\bob',
      password: 'Hunter2Secret',
      destination: 'https://mail.o365info.com/owa/',
    });
  });

  test('`+` is a space and percent escapes decode as UTF-8; the password is not trimmed', () => {
    const body = encode(
      'destination=%2Fowa%2F&username=O365INFO%5Cbob&password=+p%40ss+w%2Brd%261+Gr%C3%BC%C3%9Fe+&isUtf8=1',
    );
    assert.deepEqual(parseLogonForm(body), {
      username: 'O365INFO\\bob',
      password: ' p@ss w+rd&1 Grüße ',
      destination: '/owa/',
    });
  });

  test('the user name is trimmed as the routing identity trims it', () => {
    const body = form({ ...logonFields, username: '  bob@o365info.com ' });
    const id = owa.identify(
      { method: 'POST', host: 'mail.o365info.com', path: '/owa/auth.owa', query: '', headers: {} },
      body,
    );
    assert.equal(id.kind === 'user' && id.user, parseLogonForm(body)?.username);
  });

  test('destination is optional', () => {
    const parsed = parseLogonForm(form({ username: 'bob@o365info.com', password: 'x' }));
    assert.deepEqual(parsed, { username: 'bob@o365info.com', password: 'x' });
    assert.ok(parsed && !('destination' in parsed));
  });

  const bad: [string, Uint8Array][] = [
    ['missing password', form({ username: 'bob@o365info.com' })],
    ['empty password (an unauthenticated LDAP bind)', form({ ...logonFields, password: '' })],
    ['missing username', form({ password: 'x' })],
    ['blank username', form({ ...logonFields, username: '   ' })],
    ['repeated username', encode('username=bob&username=alice&password=x')],
    ['repeated username, other case', encode('username=bob&UserName=alice&password=x')],
    ['repeated password', encode('username=bob&password=x&password=y')],
    ['repeated destination', encode('username=bob&password=x&destination=%2Fowa%2F&destination=%2Fecp%2F')],
    [
      'raw bytes that are not UTF-8',
      Uint8Array.from([...encode('username=b'), 0xe9, ...encode('&password=x')]),
    ],
    ['an escape that is not UTF-8', encode('username=b%E9&password=x')],
    ['a malformed escape', encode('username=bob&password=%ZZ')],
    ['a colon in the user name (Basic cannot carry it)', form({ ...logonFields, username: 'bob:x' })],
    ['a control character in the user name', form({ ...logonFields, username: 'bob\u0000' })],
    ['a control character in the password', form({ ...logonFields, password: 'a\nb' })],
    ['a user name over 256 characters', form({ ...logonFields, username: 'a'.repeat(257) })],
    ['a body over logonMaxBytes', form({ ...logonFields, passwordText: 'x'.repeat(logonMaxBytes) })],
  ];
  for (const [name, body] of bad)
    test(`refused: ${name}`, () => assert.equal(parseLogonForm(body), undefined));
});

describe('logonPage and its headers', () => {
  test('every value is escaped: no markup gets in through destination or action', () => {
    const html = logonPage({
      action: '/owa/auth.owa?"><b>',
      destination: '"><script>alert(1)</script>',
    });
    assert.ok(!html.includes('<script'), 'no script element');
    assert.ok(!html.includes('<b>'));
    assert.ok(html.includes('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"'));
    assert.ok(html.includes('action="/owa/auth.owa?&quot;&gt;&lt;b&gt;"'));
    assert.ok(!html.includes("'><"));
  });

  test("the form posts OWA's fields to the action", () => {
    const html = logonPage({ action: '/owa/auth.owa', destination: 'https://mail.o365info.com/owa/' });
    assert.match(html, /<form method="post" action="\/owa\/auth\.owa" accept-charset="UTF-8">/);
    for (const field of ['destination', 'flags', 'forcedownlevel', 'isUtf8', 'username', 'password'])
      assert.match(html, new RegExp(`name="${field}"`), field);
    assert.match(html, /name="password" type="password"/);
    assert.match(html, /name="destination" value="https:\/\/mail\.o365info\.com\/owa\/"/);
  });

  test('reason 2 says the user name or password is wrong; other reasons say nothing', () => {
    const page = (reason?: number) => logonPage({ action: '/owa/auth.owa', destination: '/owa/', reason });
    assert.equal(badCredentialsReason, 2);
    assert.match(page(2), /role="alert">The user name or password you entered isn't correct/);
    for (const reason of [undefined, 0, 3, 19, 22, 999]) assert.doesNotMatch(page(reason), /logon-reason/);
  });

  test('reason 20: the mailbox is on this server, named from the estate; 21: signed out everywhere', () => {
    const legacy = { host: 'legacy.mail.o365info.com', version: 2007 };
    const page = (reason: number, server?: { host: string; version: number }) =>
      logonPage({
        action: '/owa/auth/owaauth.dll',
        destination: '/owa/',
        reason,
        ...(server ? { server } : {}),
      });
    assert.match(
      page(logonReasons.mailboxHere, legacy),
      /id="logon-reason" class="notice" role="status">Your mailbox is on an older server, Exchange 2007, at legacy\.mail\.o365info\.com\. Please sign in here once more/,
    );
    assert.match(
      page(20, { host: 'mail2.o365info.com', version: 2013 }),
      /on another server, at mail2\.o365info\.com\./,
    );
    // Without the server, the page cannot say where: no message rather than a wrong one.
    assert.doesNotMatch(page(20), /logon-reason/);
    assert.match(
      page(logonReasons.signedOut, legacy),
      /role="status">You have signed out of Outlook Web App on every server/,
    );
    // The 2007 page is titled as 2007's own; a host with markup would be escaped, never rendered.
    assert.match(page(21, legacy), /<title>Outlook Web Access<\/title>/);
    assert.match(page(20, { host: '<b>x', version: 2007 }), /at &lt;b&gt;x\./);
  });

  test('logonReason: only the fixed set, written as plain digits', () => {
    assert.deepEqual([2, 20, 21].map(String).map(logonReason), [2, 20, 21]);
    for (const bad of [
      null,
      undefined,
      '',
      '0',
      '3',
      '020x',
      '+2',
      '2.0',
      ' 2',
      '1e1',
      '<script>',
      '9999',
      '-2',
    ])
      assert.equal(logonReason(bad), undefined, String(bad));
  });

  test('headers: no caching, no framing, no script; the CSP names the page style by its hash', () => {
    const headers = logonPageHeaders(new Set(['mail.o365info.com', 'legacy.mail.o365info.com:8443', 'x y;']));
    const html = logonPage({ action: '/owa/auth.owa', destination: '/owa/' });
    const style = /<style>(.*)<\/style>/.exec(html)?.[1] ?? '';
    const hash = createHash('sha256').update(style).digest('base64');
    assert.equal(headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(headers['cache-control'], 'no-store');
    assert.equal(headers['x-frame-options'], 'DENY');
    assert.equal(
      headers['content-security-policy'],
      `default-src 'none'; style-src 'sha256-${hash}'; ` +
        "img-src data:; form-action 'self' https://mail.o365info.com https://legacy.mail.o365info.com:8443; " +
        "frame-ancestors 'none'; base-uri 'none'",
    );
    // same-origin, not no-referrer: under no-referrer a browser posts the form with `Origin: null`.
    assert.equal(headers['referrer-policy'], 'same-origin');
  });

  test('logonUrl: the Exchange 2010/2013 shape, destination encoded so it reads back whole', () => {
    const url = logonUrl('https://mail.o365info.com/owa/?ae=Item&a=New', 2);
    assert.equal(
      url,
      '/owa/auth/logon.aspx?replaceCurrent=1&reason=2&url=https%3A%2F%2Fmail.o365info.com%2Fowa%2F%3Fae%3DItem%26a%3DNew',
    );
    const query = parseQuery(url.slice(url.indexOf('?') + 1));
    assert.deepEqual(query?.get('url'), ['https://mail.o365info.com/owa/?ae=Item&a=New']);
    assert.equal(logonUrl('/owa/'), '/owa/auth/logon.aspx?replaceCurrent=1&url=%2Fowa%2F');
  });
});

describe('safeDestination: no open redirect', () => {
  const hosts = new Set(['mail.o365info.com', 'legacy.mail.o365info.com', 'alt.o365info.com:8443']);
  const fallback = '/owa/';
  const safe = (d: string | undefined) => safeDestination(d, hosts, fallback);

  const kept: [string, string][] = [
    ['https://mail.o365info.com/owa/', 'https://mail.o365info.com/owa/'],
    ['https://legacy.mail.o365info.com/owa/', 'https://legacy.mail.o365info.com/owa/'],
    ['HTTPS://MAIL.O365INFO.COM/owa/#path=/mail', 'https://mail.o365info.com/owa/#path=/mail'],
    ['https://mail.o365info.com:443/ecp/', 'https://mail.o365info.com/ecp/'],
    ['https://alt.o365info.com:8443/owa/', 'https://alt.o365info.com:8443/owa/'],
    ['/owa', '/owa'],
    ['/owa/', '/owa/'],
    ['/OWA/?ae=Folder&t=IPF.Note', '/OWA/?ae=Folder&t=IPF.Note'],
    ['/owa/#path=/calendar', '/owa/#path=/calendar'],
    ['/owa/a/../b', '/owa/b'],
    ['/owa/Grüße', '/owa/Gr%C3%BC%C3%9Fe'],
  ];
  for (const [given, expected] of kept) test(`kept: ${given}`, () => assert.equal(safe(given), expected));

  const refused = [
    undefined,
    '',
    'https://evil.example/',
    'https://evil.example/owa/',
    '//evil.example',
    '//evil.example/owa/',
    '/\\evil.example',
    '\\\\evil.example',
    '/owa/..//evil.example',
    '/owa/%2e%2e//evil.example',
    '/owa/../ecp/',
    '/ecp/',
    '/owaevil',
    'owa/',
    'javascript:alert(1)',
    'JavaScript:alert(document.cookie)',
    'data:text/html,<script>alert(1)</script>',
    'https:evil.example',
    'http://mail.o365info.com/owa/',
    'https://mail.o365info.com:8443/owa/',
    'https://mail.o365info.com@evil.example/',
    'https://mail.o365info.com.evil.example/',
    'https://user:pw@mail.o365info.com/owa/',
    '/owa/\r\nSet-Cookie: x=1',
    '\t//evil.example',
    '/\t/evil.example',
    ' /owa/',
    '/owa/' + 'a'.repeat(2048),
  ];
  for (const given of refused)
    test(`refused: ${JSON.stringify(given)}`, () => assert.equal(safe(given), fallback));
});

describe('basicAuthorization (RFC 7617)', () => {
  test('the RFC 7617 §2 and §2.1 (UTF-8) vectors', () => {
    assert.equal(basicAuthorization('Aladdin', 'open sesame'), 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==');
    assert.equal(basicAuthorization('test', '123£'), 'Basic dGVzdDoxMjPCow==');
  });

  test('reads back with the Basic parser the protocol modules use', () => {
    const authorization = basicAuthorization('O365INFO\\bob', 'p:ss wörd');
    const head = { method: 'GET', host: 'h', path: '/owa/', query: '', headers: { authorization } };
    assert.deepEqual(basicCredentials(head), { user: 'O365INFO\\bob', password: 'p:ss wörd' });
  });

  test('a user name with a colon or control characters, or a password with controls, throws', () => {
    for (const [user, password] of [
      ['bob:x', 'pw'],
      ['', 'pw'],
      ['bob\n', 'pw'],
      ['bob', 'p\r\nw'],
    ] as const)
      assert.throws(() => basicAuthorization(user, password), TypeError);
  });
});

describe('owaLogon: the logon POST end to end', () => {
  const hosts = new Set(['mail.o365info.com']);
  const directory = () => {
    const calls: [string, string][] = [];
    const authenticate: Authenticate = (login, password) => {
      calls.push([login, password]);
      return Promise.resolve(password === 'Hunter2Secret' ? { address: 'bob@o365info.com' } : undefined);
    };
    return { calls, authenticate };
  };
  const options = (sessions: OwaSessions, authenticate: Authenticate) => ({
    sessions,
    authenticate,
    allowedHosts: hosts,
    fallback: '/owa/',
  });

  test('accepted: 302 to the destination with a session for the mailbox, credential as typed', async () => {
    const { sessions } = store();
    const { calls, authenticate } = directory();
    const outcome = await owaLogon(form(logonFields), options(sessions, authenticate));
    assert.deepEqual(calls, [['O365INFO\\bob', 'Hunter2Secret']]);
    assert.equal(outcome.kind, 'accepted');
    if (outcome.kind !== 'accepted') return;
    assert.equal(outcome.location, 'https://mail.o365info.com/owa/');
    assert.equal(outcome.user, 'bob@o365info.com');
    assert.ok(!outcome.setCookie.includes('Hunter2Secret'));
    assert.deepEqual(sessions.verify(valueOf(outcome.setCookie)), {
      user: 'bob@o365info.com',
      authorization: basicAuthorization('O365INFO\\bob', 'Hunter2Secret'),
    });
  });

  test('refused: 302 back to logon.aspx with reason=2 and the destination, no session', async () => {
    const { sessions } = store();
    const { authenticate } = directory();
    const outcome = await owaLogon(
      form({ ...logonFields, password: 'wrong' }),
      options(sessions, authenticate),
    );
    assert.deepEqual(outcome, {
      kind: 'refused',
      location: '/owa/auth/logon.aspx?replaceCurrent=1&reason=2&url=https%3A%2F%2Fmail.o365info.com%2Fowa%2F',
    });
    assert.equal(sessions.size, 0);
  });

  test('an unsafe destination becomes the fallback, on success and on failure', async () => {
    const { sessions } = store();
    const { authenticate } = directory();
    const evil = { ...logonFields, destination: 'https://evil.example/owa/' };
    const ok = await owaLogon(form(evil), options(sessions, authenticate));
    assert.equal(ok.kind === 'accepted' && ok.location, '/owa/');
    const no = await owaLogon(form({ ...evil, password: 'wrong' }), options(sessions, authenticate));
    assert.equal(
      no.kind === 'refused' && no.location,
      '/owa/auth/logon.aspx?replaceCurrent=1&reason=2&url=%2Fowa%2F',
    );
  });

  test('malformed: the directory is not asked', async () => {
    const { sessions } = store();
    const { calls, authenticate } = directory();
    const outcome = await owaLogon(form({ username: 'bob', password: '' }), options(sessions, authenticate));
    assert.deepEqual(outcome, { kind: 'malformed' });
    assert.deepEqual(calls, []);
  });

  test('the session the browser arrived with ends (no session fixation)', async () => {
    const { sessions } = store();
    const { authenticate } = directory();
    const planted = valueOf(sessions.create('mallory@o365info.com', auth));
    const outcome = await owaLogon(form(logonFields), {
      ...options(sessions, authenticate),
      previousCookie: planted,
    });
    assert.equal(sessions.verify(planted), undefined);
    assert.equal(outcome.kind, 'accepted');
    assert.equal(sessions.size, 1);
  });

  test('a directory failure rejects (the pipeline answers 503), and no session is made', async () => {
    const { sessions } = store();
    const down: Authenticate = () => Promise.reject(new Error('ldap down'));
    await assert.rejects(owaLogon(form(logonFields), options(sessions, down)), /ldap down/);
    assert.equal(sessions.size, 0);
  });
});
