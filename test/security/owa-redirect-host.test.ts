/**
 * Attack: an open redirect through OWA's logon, by the Host header. The logon POST's `destination` may
 * name only the estate's OWA hosts (its namespaces and the hosts of its OWA URLs), never a host taken from
 * the request (docs/security.md "Trust per request"): `POST /owa/auth.owa` with `Host: evil.example.com`
 * and `destination=https://evil.example.com/owa/` must not answer `302 Location: https://evil.example.com/`
 * with a session cookie. With the host checks, such a request is refused as misdirected before it is read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { demoPassword, labClient } from '../support/lab-client.ts';
import { accessLines, answerId, loggedLab } from '../support/logged-lab.ts';
import { rawRequest, statuses } from '../support/raw-tls.ts';

const primary = 'mail.o365info.com';
const form = (destination: string, user = 'alice@o365info.com'): string =>
  `destination=${encodeURIComponent(destination)}&flags=4&forcedownlevel=0` +
  `&username=${encodeURIComponent(user)}&password=${encodeURIComponent(demoPassword)}&isUtf8=1`;
const logonPost = (host: string, body: string): string =>
  `POST /owa/auth.owa HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
  `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;

describe('attack: OWA logon redirect to the Host the request names', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab());
  });
  after(() => lab.close());

  const accessLine = (answer: string): Record<string, unknown> | undefined =>
    accessLines(sink, answerId(answer))[0];

  for (const [name, servername] of [
    ['with the SNI of the primary namespace', primary],
    ['without SNI', ''],
  ] as const) {
    test(`Host: evil.example.com and destination=https://evil.example.com/owa/, ${name}: no redirect there, no session`, async () => {
      const answer = await rawRequest(
        lab,
        primary,
        logonPost('evil.example.com', form('https://evil.example.com/owa/')),
        servername,
      );
      assert.doesNotMatch(answer, /\r\nlocation: [^\r]*evil\.example\.com/i, answer.slice(0, 600));
      assert.doesNotMatch(answer, /\r\nset-cookie:/i);
      assert.equal(statuses(answer)[0], 421);
      const line = accessLine(answer);
      assert.equal(line?.['code'], 'CX_HTTP_MISDIRECTED');
      assert.equal(line?.['host'], 'evil.example.com');
      assert.equal(line?.['user'], undefined, 'the password was never checked');
    });
  }

  test('at the right host, a destination off the estate falls back to /owa/', async () => {
    const answer = await rawRequest(lab, primary, logonPost(primary, form('https://evil.example.com/owa/')));
    assert.equal(statuses(answer)[0], 302, answer.slice(0, 600));
    assert.match(answer, /\r\nlocation: \/owa\/\r\n/i);
  });

  test('a destination the estate names (the legacy namespace) is followed: the targets come from the estate', async () => {
    const answer = await rawRequest(
      lab,
      primary,
      logonPost(primary, form('https://legacy.mail.o365info.com/owa/', 'bob@o365info.com')),
    );
    assert.equal(statuses(answer)[0], 302, answer.slice(0, 600));
    assert.match(answer, /\r\nlocation: https:\/\/legacy\.mail\.o365info\.com\/owa\/\r\n/i);
  });

  test('a normal request still works afterwards', async () => {
    const client = labClient(lab);
    try {
      const r = await client.fetch(`https://${primary}/owa/auth.owa`, {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form(`https://${primary}/owa/`),
      });
      assert.equal(r.status, 302);
      assert.equal(r.headers['location'], `https://${primary}/owa/`);
      const cookie = String(r.headers['set-cookie']).split(';')[0] as string;
      const page = await client.fetch(`https://${primary}/owa/`, { headers: { cookie } });
      assert.equal(page.status, 200);
    } finally {
      await client.close();
    }
  });
});
