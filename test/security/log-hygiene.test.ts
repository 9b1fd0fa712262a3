/**
 * Attack: filling the access log, and a log that disagrees with the client. Every client-supplied field of
 * an access line is capped (docs/security.md "Trust per request"): a Basic user name of thousands of
 * characters, a long path or Host is written cut, with a marker, never in full. And every server on the
 * path records what the client saw: an upload the client aborts is `client_aborted` at the mailbox hop
 * too, not "answered 200" for an answer nobody received.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { basic } from '../support/lab-client.ts';
import { accessLines, answerId, assertEasOptionsWorks, loggedLab } from '../support/logged-lab.ts';
import { openTls, rawRequest, statuses, until } from '../support/raw-tls.ts';

const primary = 'mail.o365info.com';
/** Long, but inside any header limit the edge applies: the point is the log, not the parser. */
const long = 3000;
/** The cap docs/security.md "Trust per request" promises for a client-supplied field. */
const maxLoggedField = 256;

describe('attack: log flooding and a log that disagrees with the client', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab());
  });
  after(() => lab.close());

  const linesOf = (id: string): Record<string, unknown>[] => accessLines(sink, id);

  /** The one access line of a raw answer; asserts that no line of it is longer than a few capped fields. */
  function line(answer: string): Record<string, unknown> {
    const id = answerId(answer);
    const raw = sink.lines.filter((l) => l.includes(id));
    assert.ok(raw.length >= 1, 'an access line');
    for (const l of raw) assert.ok(l.length < 2_000, `an access line of ${l.length} characters`);
    return linesOf(id)[0] as Record<string, unknown>;
  }

  const capped = (value: unknown, full: number): void => {
    assert.equal(typeof value, 'string');
    const s = value as string;
    assert.ok(s.length < maxLoggedField + 32, `written with ${s.length} characters`);
    assert.ok(s.endsWith(`…[+${full - maxLoggedField} chars]`), `with the marker: ${s.slice(-40)}`);
  };

  test(`a Basic user name of ${long} characters: 401, the name written cut`, async () => {
    const user = `${'a'.repeat(long - '@o365info.com'.length)}@o365info.com`;
    const answer = await rawRequest(
      lab,
      primary,
      `GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: ${primary}\r\n` +
        `Authorization: ${basic(user, 'wrong')}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statuses(answer)[0], 401);
    const l = line(answer);
    assert.equal(l['code'], 'CX_AUTH_FAILED');
    capped(l['user'], long);
  });

  test(`a path of ${long} characters: written cut`, async () => {
    const path = `/owa/${'p'.repeat(long - 5)}`;
    const answer = await rawRequest(
      lab,
      primary,
      `GET ${path} HTTP/1.1\r\nHost: ${primary}\r\nConnection: close\r\n\r\n`,
    );
    capped(line(answer)['path'], long);
  });

  test(`a Host of ${long} characters: 421, written cut`, async () => {
    const host = `${'h'.repeat(long - '.example.com'.length)}.example.com`;
    const answer = await rawRequest(
      lab,
      primary,
      `GET /owa/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statuses(answer)[0], 421);
    capped(line(answer)['host'], long);
  });

  test('an upload the client aborts is client_aborted at every hop, the mailbox hop included', async () => {
    const socket = await openTls(lab, primary);
    socket.on('error', () => undefined);
    // alice's mailbox is on MBX2013-NY: CAS2013-NY proxies, coexist's own mailbox role answers.
    socket.write(
      `POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: ${primary}\r\n` +
        `Authorization: ${basic('alice@o365info.com')}\r\nContent-Type: text/xml\r\n` +
        `Content-Length: 100000\r\n\r\n<?xml version="1.0"?>${' '.repeat(1000)}`,
    );
    // Wait until the mailbox hop has the request in hand (its in-flight gauge), then hang up mid-upload.
    const gauge = lab.metrics.get('MBX2013-NY')?.registry.getSingleMetric('coexist_inflight_requests');
    assert.ok(gauge, 'MBX2013-NY counts requests in flight');
    let inFlight = 0;
    const ews = async (): Promise<number> =>
      (await gauge.get()).values.find((v) => v.labels['protocol'] === 'ews')?.value ?? 0;
    await until(
      () => inFlight > 0,
      'the upload to reach MBX2013-NY',
      10_000,
      async () => {
        inFlight = await ews();
      },
    );
    socket.destroy();

    const front = (): Record<string, unknown> | undefined =>
      sink
        .records()
        .find(
          (l) =>
            l['msg'] === 'access' &&
            l['server'] === 'CAS2013-NY' &&
            l['method'] === 'POST' &&
            l['protocol'] === 'ews',
        );
    await until(() => {
      const id = front()?.['reqId'];
      return typeof id === 'string' && linesOf(id).some((l) => l['server'] === 'MBX2013-NY');
    }, 'the access lines of both hops');
    const id = String(front()?.['reqId']);
    const lines = linesOf(id);
    assert.deepEqual(lines.map((l) => l['server']).sort(), ['CAS2013-NY', 'MBX2013-NY']);
    for (const l of lines) {
      assert.equal(l['outcome'], 'client_aborted', `${String(l['server'])}: ${JSON.stringify(l)}`);
      assert.notEqual(l['status'], 200, `${String(l['server'])} logged a 200 nobody received`);
    }
    for (const hop of lab.recorder.records(id)) assert.equal(hop.outcome, 'client_aborted', hop.server);
    // The hang-up is not a malformed request either: no 400 line at any server for it.
    const malformed = sink.records().filter((l) => l['code'] === 'CX_HTTP_MALFORMED');
    assert.deepEqual(malformed, [], 'an abort is logged as client_aborted, not as a 400');
  });

  test('a normal request still works afterwards', async () => {
    await assertEasOptionsWorks(lab);
  });
});
