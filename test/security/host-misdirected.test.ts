/**
 * Attack: a Host header the server does not answer for. A server answers only for the host names the estate
 * gives it (its namespaces, FQDN and URL hosts; docs/security.md "Trust per request"): any other Host is
 * 421 CX_HTTP_MISDIRECTED, and so is a Host other than the TLS server name the connection was opened for
 * (SNI and Host must agree). Two Host headers are 400 (RFC 9112 §3.2). Nothing reaches a back end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { basic } from '../support/lab-client.ts';
import { answerId, assertEasOptionsWorks, loggedLab, refusedAccessLine } from '../support/logged-lab.ts';
import { rawRequest, statuses } from '../support/raw-tls.ts';

const primary = 'mail.o365info.com';
const ews = (host: string, extra = ''): string =>
  `GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: ${host}\r\n${extra}` +
  `Authorization: ${basic('alice@o365info.com')}\r\nConnection: close\r\n\r\n`;

describe('attack: a Host this server does not answer for', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab());
  });
  after(() => lab.close());

  /** The one answer's status and access line; asserts that no server of the estate acted on it. */
  function refused(answer: string): { status: number; line: Record<string, unknown> | undefined } {
    const line = refusedAccessLine(lab, sink, answerId(answer));
    return { status: statuses(answer)[0] ?? 0, line };
  }

  test('Host: evil.example.com over a connection for the primary namespace: 421', async () => {
    const { status, line } = refused(await rawRequest(lab, primary, ews('evil.example.com')));
    assert.equal(status, 421);
    assert.equal(line?.['code'], 'CX_HTTP_MISDIRECTED');
    assert.equal(line?.['status'], 421);
    assert.equal(line?.['host'], 'evil.example.com');
  });

  test('a Host of another server of the estate (the legacy namespace) at the front end: 421', async () => {
    // SNI legacy.mail..., connection to CAS2013-NY: a client that got here by a wrong DNS answer or on purpose.
    const { status, line } = refused(
      await rawRequest(lab, primary, ews('legacy.mail.o365info.com'), 'legacy.mail.o365info.com'),
    );
    assert.equal(status, 421);
    assert.equal(line?.['code'], 'CX_HTTP_MISDIRECTED');
  });

  test('SNI and Host disagree, both served here: 421', async () => {
    // Both names are CAS2013-NY's (its internal FQDN, its public namespace); the connection is for one.
    const { status, line } = refused(await rawRequest(lab, primary, ews('cas2013-ny.o365info.local')));
    assert.equal(status, 421);
    assert.equal(line?.['code'], 'CX_HTTP_MISDIRECTED');
  });

  test('two Host headers: 400', async () => {
    const { status, line } = refused(
      await rawRequest(lab, primary, ews(primary, 'Host: evil.example.com\r\n')),
    );
    assert.equal(status, 400);
    assert.equal(line?.['code'], 'CX_HTTP_MALFORMED');
  });

  test('the same host with its port and in upper case is the same host', async () => {
    const answer = await rawRequest(lab, primary, ews('MAIL.o365info.com:443'));
    assert.notEqual(statuses(answer)[0], 421, answer.slice(0, 400));
  });

  test('a normal request still works afterwards', async () => {
    await assertEasOptionsWorks(lab);
  });
});
