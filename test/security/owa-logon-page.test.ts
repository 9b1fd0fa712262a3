/**
 * Attack: making the OWA logon page say or allow what the attacker chooses (docs/security.md "OWA in the
 * browser"). Its message comes from a fixed set picked by the `reason` number: a reason outside the set, or
 * markup in it, shows no text at all, and nothing of the request is reflected (phishing text on the
 * organisation's own page). Its CSP `form-action` names exactly the estate's OWA redirect targets from this
 * server, whatever the request asks (`url=` another host, a marker in the /owa/ URL): a form injected into the
 * page could not post the password anywhere else. The marker that makes a legacy page explain a second
 * sign-in passes on only its own reason, never another (a fake "wrong password" banner).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Server } from '../../src/core/estate/estate.ts';
import { owaRedirectTargets } from '../../src/dataplane/owa-targets.ts';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink, Reply } from '../support/lab-client.ts';
import { demoPassword, labClient } from '../support/lab-client.ts';
import { accessLines, loggedLab } from '../support/logged-lab.ts';

const mail = 'mail.o365info.com';
const legacy = 'legacy.mail.o365info.com';

describe('attack: the OWA logon page’s message and form-action', () => {
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

  const logonPage = (host: string, query: string): Promise<Reply> =>
    client.fetch(`https://${host}/owa/auth/logon.aspx?${query}`);

  /** The page answered, the access line says so, and its text carries none of `planted`. */
  function assertPlainPage(r: Reply, host: string, planted: readonly string[]): string {
    assert.equal(r.status, 200);
    const html = r.body.toString('utf8');
    for (const p of planted) assert.ok(!html.includes(p), `not reflected: ${p}`);
    const [line] = accessLines(sink, r.requestId);
    assert.equal(line?.['host'], host);
    assert.equal(line?.['path'], '/owa/auth/logon.aspx');
    assert.equal(line?.['status'], 200);
    assert.equal(line?.['outcome'], 'answered');
    return html;
  }

  for (const reason of [
    '<script>alert(1)</script>',
    'Your password expired: call 555-0100',
    '999',
    '3',
    '20abc',
    '2%0d%0aX-Evil: 1',
    '-20',
  ])
    test(`reason=${JSON.stringify(reason)}: no message, nothing reflected`, async () => {
      const r = await logonPage(
        legacy,
        `replaceCurrent=1&reason=${encodeURIComponent(reason)}&url=%2Fowa%2F`,
      );
      const html = assertPlainPage(r, legacy, [reason, 'alert(1)', '555-0100', 'X-Evil']);
      assert.doesNotMatch(html, /logon-reason/);
      assert.equal(r.headers['x-evil'], undefined);
    });

  test('reason=20 names the host from the estate, never text of the request', async () => {
    const r = await logonPage(
      legacy,
      'reason=20&url=https%3A%2F%2Fevil.example.com%2Fowa%2F&host=evil.example.com',
    );
    const html = assertPlainPage(r, legacy, ['evil.example.com']);
    assert.match(html, /Your mailbox is on an older server, Exchange 2007, at legacy\.mail\.o365info\.com\./);
  });

  for (const [host, name] of [
    [mail, 'CAS2013-NY'],
    [legacy, 'CAS2007-NY'],
  ] as const)
    test(`${host}: form-action is exactly 'self' and the estate's OWA targets from ${name}, whatever is asked`, async () => {
      const expected = [
        "'self'",
        ...[...owaRedirectTargets(lab.index, lab.index.server(name) as Server)].map((h) => `https://${h}`),
      ].sort();
      for (const query of [
        'url=https%3A%2F%2Fevil.example.com%2Fowa%2F',
        'url=https%3A%2F%2Fmail.o365info.com%2Fowa%2F&reason=20',
        `url=${encodeURIComponent('https://evil.example.com/owa/?reason=20')}`,
      ]) {
        const r = await logonPage(host, query);
        assertPlainPage(r, host, ['evil.example.com']);
        const csp = String(r.headers['content-security-policy']);
        const formAction = /form-action ([^;]*)/.exec(csp)?.[1]?.split(' ') ?? [];
        assert.deepEqual([...formAction].sort(), expected, csp);
        assert.doesNotMatch(csp, /evil/);
      }
    });

  test('the marker passes on only its own reason: /owa/?reason=2 at legacy gives the plain logon page', async () => {
    const fake = await client.fetch(`https://${legacy}/owa/?reason=2`);
    assert.equal(fake.status, 302);
    const location = new URL(String(fake.headers['location']), `https://${legacy}`);
    assert.equal(location.pathname, '/owa/auth/logon.aspx');
    assert.equal(location.searchParams.get('reason'), null, 'no "wrong password" banner on a fresh page');
    const [line] = accessLines(sink, fake.requestId);
    assert.equal(line?.['outcome'], 'redirected');

    const marked = await client.fetch(`https://${legacy}/owa/?reason=20`);
    const to = new URL(String(marked.headers['location']), `https://${legacy}`);
    assert.equal(to.searchParams.get('reason'), '20');
    assert.equal(to.searchParams.get('url'), `https://${legacy}/owa/`, 'the marker is not carried further');
  });

  test('a normal request still works afterwards: bob signs in at legacy and sees his mailbox', async () => {
    const r = await client.fetch(`https://${legacy}/owa/auth/owaauth.dll`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body:
        `destination=${encodeURIComponent(`https://${legacy}/owa/`)}&flags=4&forcedownlevel=0` +
        `&username=bob%40o365info.com&password=${encodeURIComponent(demoPassword)}&isUtf8=1`,
    });
    assert.equal(r.status, 302);
    const cookie = String(r.headers['set-cookie']).split(';')[0] as string;
    const page = await client.fetch(`https://${legacy}/owa/`, { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(page.body.toString('utf8'), /bob@o365info\.com/);
  });
});
