/**
 * OWA forms logon owned by the front end (docs/protocols.md §4.9, §5.3): the sealed session cookies with
 * their expiries, re-sealing, key rotation and revocation, the logon form parser, the logon page, the open-redirect guard and the Basic
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
import { MemoryRevocations } from './shared-store.ts';
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

const key = new Uint8Array(32).fill(7);
const otherKey = new Uint8Array(32).fill(8);
const minute = 60_000;
const auth = basicAuthorization('O365INFO\\bob', 'Hunter2Secret');

/** A store on a clock the test moves. */
const store = (o: Partial<OwaSessionOptions> = {}) => {
  const clock = { t: 1_800_000_000_000 };
  const sessions = new OwaSessions({ keys: [key], now: () => clock.t, ...o });
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
  test('keys must be exactly 32 bytes, at least one; a clear error', () => {
    assert.throws(() => new OwaSessions({ keys: [new Uint8Array(31)] }), {
      name: 'RangeError',
      message: /every key must be exactly 32 random bytes \(got 31\)/,
    });
    assert.throws(() => new OwaSessions({ keys: [new Uint8Array(64)] }), RangeError);
    assert.throws(() => new OwaSessions({ keys: [] }), /at least one key/);
    assert.doesNotThrow(() => new OwaSessions({ keys: [key, otherKey] }));
  });

  test('bad cookie names and limits are refused', () => {
    for (const cookieName of ['', 'a b', 'a;b', 'a=b', 'é'])
      assert.throws(() => new OwaSessions({ keys: [key], cookieName }), RangeError);
    for (const bad of [
      { idleMs: 0 },
      { maxAgeMs: -1 },
      { idleMs: Number.NaN },
      { refreshMs: 0 },
      { idleMs: 1000, refreshMs: 1001 },
    ])
      assert.throws(() => new OwaSessions({ keys: [key], ...bad }), RangeError);
  });

  test('the keys are copied: changing the caller’s bytes later changes nothing', async () => {
    const k = new Uint8Array(32).fill(1);
    const sessions = new OwaSessions({ keys: [k] });
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    k.fill(2);
    assert.ok((await sessions.verify(cookie)).ok);
  });
});

describe('OwaSessions: sealed cookies', () => {
  test('create then verify gives the user and the credential back, on another store with the key', async () => {
    const a = store();
    const b = store(); // another front end: same key, nothing shared in memory
    const cookie = valueOf(a.sessions.create('bob@o365info.com', auth));
    assert.deepEqual(await b.sessions.verify(cookie), {
      ok: true,
      session: { user: 'bob@o365info.com', authorization: auth },
    });
  });

  test('Set-Cookie: default name, base64url value, HttpOnly; Secure; SameSite=Lax; Path=/', () => {
    const { sessions } = store();
    const setCookie = sessions.create('bob@o365info.com', auth);
    assert.match(setCookie, /^coexist-session=[A-Za-z0-9_-]+; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
    assert.ok(setCookie.startsWith(`${defaultSessionCookie}=`));
    assert.equal(sessions.cookieName, defaultSessionCookie);
    // A session cookie: no Max-Age or Expires, the server enforces expiry.
    assert.doesNotMatch(setCookie, /Max-Age|Expires|Domain/i);
    assert.ok(setCookie.length < 1000);
  });

  test('the credential and the user are not readable in the cookie', () => {
    const { sessions } = store();
    const setCookie = sessions.create('bob@o365info.com', auth);
    const raw = Buffer.from(valueOf(setCookie), 'base64url').toString('latin1');
    for (const secretText of ['Hunter2Secret', auth.slice('Basic '.length), 'bob', 'o365info']) {
      assert.ok(!setCookie.includes(secretText), secretText);
      assert.ok(!raw.includes(secretText), `${secretText} (decoded)`);
    }
  });

  test('every cookie is sealed with its own nonce: the same session twice gives two values', () => {
    const { sessions } = store();
    const a = valueOf(sessions.create('bob@o365info.com', auth));
    const b = valueOf(sessions.create('bob@o365info.com', auth));
    assert.notEqual(a, b);
    assert.notDeepEqual(
      Buffer.from(a, 'base64url').subarray(5, 17),
      Buffer.from(b, 'base64url').subarray(5, 17),
    );
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

  test('every bit of the cookie is checked: each one flipped is refused', async () => {
    const { sessions } = store();
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    const raw = Buffer.from(cookie, 'base64url');
    const reasons = new Set<string>();
    for (let bit = 0; bit < raw.length * 8; bit++) {
      const bad = Buffer.from(raw);
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
      const check = await sessions.verify(bad.toString('base64url'));
      assert.equal(check.ok, false, `bit ${bit}`);
      if (!check.ok) reasons.add(check.reason);
    }
    assert.deepEqual([...reasons].sort(), ['forged', 'unknown-key', 'version']);
    assert.ok((await sessions.verify(cookie)).ok, 'the real cookie still works');
  });

  test('truncated, extended, re-spelt and malformed values are refused', async () => {
    const { sessions } = store();
    const cookie = valueOf(sessions.create('bob@o365info.com', auth));
    const reason = async (v: string | undefined) => {
      const c = await sessions.verify(v);
      return c.ok ? 'ok' : c.reason;
    };
    // One character short: refused either way; `malformed` when the new last character carries set unused
    // bits (not the canonical spelling of any bytes), else `forged` (canonical, but bytes short). Which one
    // depends on the random nonce and tag, so it is computed here.
    const short = cookie.slice(0, -1);
    const canonical = Buffer.from(short, 'base64url').toString('base64url') === short;
    assert.equal(await reason(short), canonical ? 'forged' : 'malformed', 'one character short');
    assert.equal(await reason(cookie.slice(0, -4)), 'forged', 'three bytes short');
    assert.equal(await reason(cookie + 'AAAA'), 'forged', 'three bytes more');
    // The last base64url character may carry unused low bits: another spelling of the same bytes is refused.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = cookie.at(-1) ?? 'A';
    const twin = cookie.slice(0, -1) + (alphabet[alphabet.indexOf(last) ^ 1] ?? 'A');
    if (Buffer.from(twin, 'base64url').equals(Buffer.from(cookie, 'base64url')))
      assert.equal(await reason(twin), 'malformed');
    for (const bad of [undefined, '', '.', 'abc', `${cookie}.x`, ` ${cookie}`, cookie.replace(/.$/, '=')])
      assert.equal(await reason(bad), 'malformed', String(bad));
    assert.equal(await reason('A'.repeat(5000)), 'malformed', 'longer than any cookie coexist makes');
  });

  test('a cookie made for another cookie name does not open, even under the same key', async () => {
    const a = store({ cookieName: 'coexist-session' });
    const b = store({ cookieName: 'other-purpose' });
    const cookie = valueOf(b.sessions.create('bob@o365info.com', auth));
    assert.deepEqual(await a.sessions.verify(cookie), { ok: false, reason: 'forged' });
  });

  test('a cookie sealed with a key this server does not hold is refused', async () => {
    const a = store();
    const b = store({ keys: [otherKey] });
    const cookie = valueOf(a.sessions.create('bob@o365info.com', auth));
    assert.deepEqual(await b.sessions.verify(cookie), { ok: false, reason: 'unknown-key' });
  });

  test('key rotation: an old cookie opens while its key is second, and not once it is gone', async () => {
    const before = store({ keys: [key] });
    const old = valueOf(before.sessions.create('bob@o365info.com', auth));
    const rotating = store({ keys: [otherKey, key] });
    assert.ok((await rotating.sessions.verify(old)).ok, 'the old key, second, still opens');
    const fresh = valueOf(rotating.sessions.create('bob@o365info.com', auth));
    assert.deepEqual(
      await before.sessions.verify(fresh),
      { ok: false, reason: 'unknown-key' },
      'sealed with the new',
    );
    const after = store({ keys: [otherKey] });
    assert.deepEqual(await after.sessions.verify(old), { ok: false, reason: 'unknown-key' });
    assert.ok((await after.sessions.verify(fresh)).ok);
  });

  test('what cannot be carried is refused at create', () => {
    const { sessions } = store();
    assert.throws(() => sessions.create('bob@o365info.com', 'Basic abc\r\nX-Evil: 1'), TypeError);
    assert.throws(() => sessions.create('bob@o365info.com', ''), TypeError);
    assert.throws(() => sessions.create('', auth), TypeError);
    assert.throws(
      () => sessions.create('bob@o365info.com', `Basic ${'A'.repeat(4000)}`),
      /too long for a cookie/,
    );
  });
});

describe('OwaSessions: expiry, re-sealing and logoff', () => {
  test('idle expiry slides: past half the idle time the cookie is re-sealed, and only then', async () => {
    const { sessions, clock } = store();
    let cookie = valueOf(sessions.create('bob@o365info.com', auth));
    clock.t += 7 * minute;
    const early = await sessions.verify(cookie);
    assert.ok(early.ok && early.setCookie === undefined, 'not re-sealed on every request');
    clock.t += 7 * minute; // 14 min since logon
    const due = await sessions.verify(cookie);
    assert.ok(due.ok && due.setCookie !== undefined, 're-sealed past half of 15 min');
    cookie = valueOf(due.setCookie);
    clock.t += 14 * minute; // 28 min after logon, 14 after the re-sealed one
    assert.ok((await sessions.verify(cookie)).ok, 'the window slid');
    clock.t += 1 * minute;
    assert.deepEqual(await sessions.verify(cookie), { ok: false, reason: 'idle-expired' });
  });

  test('an old cookie is not revived by the new one: each carries its own last-seen time', async () => {
    const { sessions, clock } = store();
    const first = valueOf(sessions.create('bob@o365info.com', auth));
    clock.t += 10 * minute;
    const check = await sessions.verify(first);
    assert.ok(check.ok && check.setCookie);
    clock.t += 6 * minute;
    assert.deepEqual(await sessions.verify(first), { ok: false, reason: 'idle-expired' });
    assert.ok((await sessions.verify(valueOf(check.setCookie))).ok);
  });

  test('absolute expiry from the logon time inside the cookie, however busy (default 8 h)', async () => {
    const { sessions, clock } = store();
    let cookie = valueOf(sessions.create('bob@o365info.com', auth));
    for (let elapsed = 10 * minute; elapsed < 8 * 60 * minute; elapsed += 10 * minute) {
      clock.t += 10 * minute;
      const check = await sessions.verify(cookie);
      assert.ok(check.ok, `alive after ${elapsed / minute} min`);
      if (check.setCookie) cookie = valueOf(check.setCookie);
    }
    clock.t += 10 * minute; // 480 min after logon
    assert.deepEqual(await sessions.verify(cookie), { ok: false, reason: 'expired' });
  });

  test('configured idle and absolute limits', async () => {
    const { sessions, clock } = store({ idleMs: 1000, maxAgeMs: 2500, refreshMs: 100 });
    let cookie = valueOf(sessions.create('bob@o365info.com', auth));
    for (const step of [999, 999]) {
      clock.t += step;
      const check = await sessions.verify(cookie);
      assert.ok(check.ok && check.setCookie);
      cookie = valueOf(check.setCookie);
    }
    clock.t += 502; // 2500 after logon
    assert.deepEqual(await sessions.verify(cookie), { ok: false, reason: 'expired' });
  });

  test('revoke ends the session wherever the revocations are shared, until its absolute expiry', async () => {
    const clock = { t: 1_800_000_000_000 };
    const revocations = new MemoryRevocations({ now: () => clock.t });
    const a = new OwaSessions({ keys: [key], now: () => clock.t, revocations });
    const b = new OwaSessions({ keys: [key], now: () => clock.t, revocations });
    const cookie = valueOf(a.create('bob@o365info.com', auth));
    assert.equal(await a.revoke(undefined), false);
    assert.equal(await a.revoke('A'.repeat(80)), false, 'only a cookie that opens can revoke');
    assert.equal(revocations.size, 0);
    assert.equal(await a.revoke(cookie), true);
    assert.deepEqual(await b.verify(cookie), { ok: false, reason: 'revoked' });
    const [[, ttl] = ['', 0]] = [...revocations.entries()];
    assert.equal(ttl, 8 * 60 * minute, 'kept exactly as long as the cookie could live');
    const other = valueOf(a.create('bob@o365info.com', auth));
    assert.ok((await b.verify(other)).ok, 'another session of the same user is untouched');
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
    assert.deepEqual(await sessions.verify(valueOf(outcome.setCookie)), {
      ok: true,
      session: {
        user: 'bob@o365info.com',
        authorization: basicAuthorization('O365INFO\\bob', 'Hunter2Secret'),
      },
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
    assert.deepEqual(await sessions.verify(planted), { ok: false, reason: 'revoked' });
    assert.equal(outcome.kind, 'accepted');
    assert.ok(outcome.kind === 'accepted' && (await sessions.verify(valueOf(outcome.setCookie))).ok);
  });

  test('a name and password too long for a cookie: malformed, no session', async () => {
    const { sessions } = store();
    const long = 'x'.repeat(3000);
    const authenticate: Authenticate = () => Promise.resolve({ address: 'bob@o365info.com' });
    const outcome = await owaLogon(form({ ...logonFields, password: long }), options(sessions, authenticate));
    assert.deepEqual(outcome, { kind: 'malformed' });
  });

  test('a directory failure rejects (the pipeline answers 503), and no session is made', async () => {
    const { sessions } = store();
    const down: Authenticate = () => Promise.reject(new Error('ldap down'));
    await assert.rejects(owaLogon(form(logonFields), options(sessions, down)), /ldap down/);
  });
});
