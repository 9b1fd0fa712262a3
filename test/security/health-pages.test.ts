/**
 * Attack: the health pages as a way in (docs/operations.md "Health pages"). Only a GET or HEAD of exactly
 * `/<vdir>/healthcheck.htm` is a page; a path that only looks like one (`/owa/healthcheck.htm/../x`, an
 * encoded slash, another case, a `;` parameter) or another method goes the normal way (refused or asked to
 * sign in) and is never proxied unauthenticated. The Host check comes first: a Host this server does not
 * answer for is 421 before any page. A page tells the internet the server's name and nothing else.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import {
  accessLines,
  answerId,
  assertEasOptionsWorks,
  loggedLab,
  refusedAccessLine,
} from '../support/logged-lab.ts';
import { rawRequest, statuses } from '../support/raw-tls.ts';

const primary = 'mail.o365info.com';
const raw = (method: string, path: string, host = primary, extra = ''): string =>
  `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;

describe('attack: health pages', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    // Logged at debug: a health page's access line is written there (docs/operations.md).
    ({ lab, sink } = await loggedLab({}, 'debug'));
  });
  after(() => lab.close());

  /** The answer's status and its one access line; asserts that nothing was routed and no page was served. */
  async function notAPage(bytes: string): Promise<{ status: number; answer: string }> {
    const answer = await rawRequest(lab, primary, bytes);
    const id = answerId(answer);
    const line = refusedAccessLine(lab, sink, id);
    assert.ok(line, 'one access line');
    assert.notEqual(line['outcome'], 'health');
    assert.doesNotMatch(answer, /200 OK<br\/>/);
    return { status: statuses(answer)[0] ?? 0, answer };
  }

  for (const path of ['/owa/healthcheck.htm/../x', '/owa/healthcheck.htm%2f..', '/owa/HealthCheck.htm;x']) {
    test(`GET ${path}: not a page, not proxied, no 200`, async () => {
      const { status } = await notAPage(raw('GET', path));
      assert.notEqual(status, 200);
    });
  }

  test('POST /owa/healthcheck.htm: not a page, the sign-in is asked for', async () => {
    const { status } = await notAPage(raw('POST', '/owa/healthcheck.htm', primary, 'Content-Length: 0\r\n'));
    assert.ok([302, 400, 401, 403, 404].includes(status), String(status));
  });

  test('POST /EWS/healthcheck.htm: 401, not proxied', async () => {
    const { status } = await notAPage(raw('POST', '/EWS/healthcheck.htm', primary, 'Content-Length: 0\r\n'));
    assert.equal(status, 401);
  });

  test('a Host this server does not answer for: 421 before any page', async () => {
    const answer = await rawRequest(lab, primary, raw('GET', '/owa/healthcheck.htm', 'evil.example.com'));
    assert.equal(statuses(answer)[0], 421);
    const line = refusedAccessLine(lab, sink, answerId(answer));
    assert.equal(line?.['code'], 'CX_HTTP_MISDIRECTED');
  });

  test('the page tells the server name and nothing else: no next hop, no directory', async () => {
    const answer = await rawRequest(lab, primary, raw('GET', '/EWS/healthcheck.htm?x=1'));
    assert.equal(statuses(answer)[0], 200);
    const [headers = '', body] = answer.split('\r\n\r\n');
    assert.equal(body, '200 OK<br/>cas2013-ny.o365info.local');
    assert.match(headers, /\r\ncache-control: no-store\r\n/i);
    // No Exchange back-end diagnostics, no other server of the estate named anywhere in the answer.
    assert.doesNotMatch(headers, /x-calculatedbetarget|x-beserver|location:/i);
    assert.doesNotMatch(answer, /mbx|2007|ldap|o365info\.com\/|legacy/i);
    const lines = accessLines(sink, answerId(answer));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.['outcome'], 'health');
    assert.equal(lines[0]?.['status'], 200);
    assert.deepEqual(lab.recorder.records(answerId(answer)), []);
  });

  test('HEAD answers the status without a body', async () => {
    const answer = await rawRequest(
      lab,
      primary,
      raw('HEAD', '/Microsoft-Server-ActiveSync/healthcheck.htm'),
    );
    assert.equal(statuses(answer)[0], 200);
    assert.equal(answer.split('\r\n\r\n')[1], '');
  });

  test('a normal request still works afterwards', async () => {
    await assertEasOptionsWorks(lab);
  });
});
