/**
 * Attack: an open redirect through OWA's logoff chain. A logoff ends the session at one host, then sends the
 * browser through the logoff of every other host of the estate it may hold a session on (docs/security.md
 * "OWA in the browser"); the `chain` parameter only says where the chain began. A link to
 * `logoff.aspx?chain=evil.example.com` (or a URL, a header injection, an internal host a browser outside
 * cannot reach) must not make any server send the browser anywhere but the estate's own OWA hosts: such a
 * parameter is not believed, and a new chain starts at the host asked. And the chain does what it is for:
 * the session is gone on every host the user signed in at.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink, Reply } from '../support/lab-client.ts';
import { demoPassword, labClient } from '../support/lab-client.ts';
import { accessLines, loggedLab } from '../support/logged-lab.ts';

const mail = 'mail.o365info.com';
const legacy = 'legacy.mail.o365info.com';
const europe = 'europe.mail.o365info.com';
const estateOwaHosts = [europe, legacy, mail];
const formType = { 'content-type': 'application/x-www-form-urlencoded' };

describe('attack: the OWA logoff chain as an open redirect', () => {
  let lab: Lab;
  let sink: LineSink;
  let client: LabClient;

  before(async () => {
    ({ lab, sink } = await loggedLab());
    client = labClient(lab);
  });
  after(async () => {
    await client.close();
    await lab.close();
  });

  /** Sign `user` in at `host` (its own form's path) and return the session cookie. */
  async function signIn(host: string, user: string, path: string): Promise<string> {
    const r = await client.fetch(`https://${host}${path}`, {
      headers: formType,
      body:
        `destination=${encodeURIComponent(`https://${host}/owa/`)}&flags=4&forcedownlevel=0` +
        `&username=${encodeURIComponent(user)}&password=${encodeURIComponent(demoPassword)}&isUtf8=1`,
    });
    assert.equal(r.status, 302, `logon at ${host}`);
    return String(r.headers['set-cookie']).split(';')[0] as string;
  }

  const logoff = (host: string, query: string, cookie?: string): Promise<Reply> =>
    client.fetch(`https://${host}/owa/auth/logoff.aspx${query}`, cookie ? { headers: { cookie } } : {});

  /** The logoff was answered with a redirect to an estate OWA host, and its access line says so. */
  function assertStaysInEstate(r: Reply, host: string): URL {
    assert.equal(r.status, 302, r.body.toString('utf8'));
    const location = String(r.headers['location']);
    assert.doesNotMatch(location, /evil/i);
    const to = new URL(location, `https://${host}`);
    assert.equal(to.protocol, 'https:');
    assert.ok(estateOwaHosts.includes(to.host), `${to.host} is an estate OWA host`);
    const [line] = accessLines(sink, r.requestId);
    assert.equal(line?.['host'], host);
    assert.equal(line?.['path'], '/owa/auth/logoff.aspx');
    assert.equal(line?.['status'], 302);
    assert.equal(line?.['outcome'], 'answered');
    return to;
  }

  for (const chain of [
    'evil.example.com',
    'https://evil.example.com/owa/',
    '//evil.example.com',
    'evil.example.com\r\nLocation: https://evil.example.com/',
    'legacy.mail.o365info.com.evil.example.com',
    'legacy.mail.o365info.com@evil.example.com',
    // An estate host, but not one a browser outside reaches: not in this browser's group.
    'cas2007-la.o365info.local',
  ])
    test(`chain=${JSON.stringify(chain)} is not believed: the chain starts anew at legacy, within the estate`, async () => {
      const r = await logoff(legacy, `?chain=${encodeURIComponent(chain)}`);
      const to = assertStaysInEstate(r, legacy);
      assert.equal(to.host, mail);
      assert.equal(to.pathname, '/owa/auth/logoff.aspx');
      assert.equal(to.searchParams.get('chain'), legacy, 'the chain began here, not where the link said');
    });

  test('the last host of a chain with a forged beginning does not send the browser there', async () => {
    const to = assertStaysInEstate(await logoff(europe, '?chain=evil.example.com'), europe);
    assert.equal(to.searchParams.get('chain'), europe);
  });

  test('the chain ends the session on every host the user signed in at, and only goes through estate hosts', async () => {
    const cookies = new Map([
      [mail, await signIn(mail, 'bob@o365info.com', '/owa/auth.owa')],
      [legacy, await signIn(legacy, 'bob@o365info.com', '/owa/auth/owaauth.dll')],
    ]);
    // Each host answers its /owa/ with the session: mail redirects bob on, legacy shows his mailbox.
    assert.equal(
      (await client.fetch(`https://${legacy}/owa/`, { headers: { cookie: cookies.get(legacy) as string } }))
        .status,
      200,
    );

    // The browser's walk: each hop sends that host's own cookie, as a browser does.
    let url = new URL(`https://${legacy}/owa/auth/logoff.aspx`);
    const visited: string[] = [];
    for (let hops = 0; hops < 10 && url.pathname === '/owa/auth/logoff.aspx'; hops++) {
      visited.push(url.host);
      const cookie = cookies.get(url.host);
      const r = await logoff(url.host, url.search, cookie);
      url = assertStaysInEstate(r, url.host);
      assert.match(String(r.headers['set-cookie']), /=; .*Max-Age=0/, 'the cookie is cleared');
      assert.equal(r.headers['cache-control'], 'no-store');
    }
    assert.deepEqual(visited, [legacy, mail, europe]);
    assert.equal(url.host, legacy, 'back where the chain began');
    assert.equal(url.pathname, '/owa/auth/logon.aspx');
    assert.equal(url.searchParams.get('reason'), '21');

    // The old cookies are worth nothing anywhere: each /owa/ is the logon page.
    for (const [host, cookie] of cookies) {
      const r = await client.fetch(`https://${host}/owa/`, { headers: { cookie } });
      assert.equal(r.status, 302, host);
      assert.match(String(r.headers['location']), /^\/owa\/auth\/logon\.aspx\?/, host);
    }
  });

  test('a normal request still works afterwards: alice signs in and gets her mailbox, not stored', async () => {
    const cookie = await signIn(mail, 'alice@o365info.com', '/owa/auth.owa');
    const page = await client.fetch(`https://${mail}/owa/`, { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.match(page.body.toString('utf8'), /alice@o365info\.com/);
  });
});
