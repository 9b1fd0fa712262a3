/**
 * Attack: login CSRF and cross-site OWA/ECP posts. A page of another site makes the browser post the OWA
 * logon form (signing the victim in as the attacker) or post to OWA with the victim's session. The logon
 * POST and every state-changing OWA/ECP request must come from the same origin or carry no origin at all
 * (non-browser clients): `Sec-Fetch-Site: cross-site`, or an `Origin` other than the request's own (`null`
 * included), is 403 CX_HTTP_CROSS_SITE, before any password is checked (docs/security.md "Trust per request").
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink, Reply } from '../support/lab-client.ts';
import { demoPassword, labClient } from '../support/lab-client.ts';
import { loggedLab, refusedAccessLine } from '../support/logged-lab.ts';

const origin = 'https://mail.o365info.com';
const form =
  `destination=${encodeURIComponent(origin + '/owa/')}&flags=4&forcedownlevel=0` +
  `&username=alice%40o365info.com&password=${encodeURIComponent(demoPassword)}&isUtf8=1`;
const formType = { 'content-type': 'application/x-www-form-urlencoded' };

describe('attack: login CSRF and cross-site OWA posts', () => {
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

  const logon = (headers: Record<string, string>): Promise<Reply> =>
    client.fetch(origin + '/owa/auth.owa', { headers: { ...formType, ...headers }, body: form });

  function assertRefused(r: Reply): void {
    assert.equal(r.status, 403, r.body.toString('utf8'));
    assert.equal(r.headers['set-cookie'], undefined, 'no session');
    assert.equal(r.headers['location'], undefined);
    const line = refusedAccessLine(lab, sink, r.requestId);
    assert.equal(line?.['code'], 'CX_HTTP_CROSS_SITE');
    assert.equal(line?.['status'], 403);
    assert.equal(line?.['user'], undefined, 'the password was never checked');
  }

  test('a logon POST from another site (Origin and Sec-Fetch-Site: cross-site): 403', async () => {
    assertRefused(await logon({ origin: 'https://evil.example.com', 'sec-fetch-site': 'cross-site' }));
  });

  test('a logon POST with Origin: null (a sandboxed frame, a data: URL): 403', async () => {
    assertRefused(await logon({ origin: 'null' }));
  });

  test('a logon POST with only Sec-Fetch-Site: cross-site: 403', async () => {
    assertRefused(await logon({ 'sec-fetch-site': 'cross-site' }));
  });

  test('a logon POST from another port of the same host is another origin: 403', async () => {
    assertRefused(await logon({ origin: 'https://mail.o365info.com:8443' }));
  });

  test('an OWA POST with the victim’s session from another site: 403', async () => {
    const signedIn = await logon({ origin, 'sec-fetch-site': 'same-origin' });
    assert.equal(signedIn.status, 302);
    const cookie = String(signedIn.headers['set-cookie']).split(';')[0] as string;
    assertRefused(
      await client.fetch(origin + '/owa/', {
        headers: { ...formType, cookie, origin: 'https://evil.example.com', 'sec-fetch-site': 'cross-site' },
        body: 'action=delete',
      }),
    );
  });

  test('a normal request still works afterwards: a same-origin logon, then the mailbox', async () => {
    const r = await logon({ origin, 'sec-fetch-site': 'same-origin' });
    assert.equal(r.status, 302);
    assert.equal(r.headers['location'], origin + '/owa/');
    const cookie = String(r.headers['set-cookie']).split(';')[0] as string;
    const page = await client.fetch(origin + '/owa/', { headers: { cookie } });
    assert.equal(page.status, 200);
    // Clients that send no Origin (scripts, Outlook) still log on.
    assert.equal((await logon({})).status, 302);
  });
});
