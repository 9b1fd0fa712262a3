/**
 * Attack: a request body that stops arriving. A client declares a body, sends a few bytes and goes quiet,
 * holding the connection, the request's state and (once it is forwarded) a connection to the next hop.
 * While a declared body is arriving, silence is limited (`limits.bodyIdleTimeoutMs`, docs/security.md
 * "Limits and timeouts at the edge"): 408, the connection closed, counted (`body_idle_timeout`) and logged
 * at a rate-limited level. Held long polls (ActiveSync Ping, whose body is whole before it is held) and
 * Outlook Anywhere channels (whose body is the channel) are not cut by it: test/e2e covers them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink } from '../support/lab-client.ts';
import { basic, labClient } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';
import { assertFolderSyncWorks, edgeCount, edgeLines, host, tls, untilClosed } from './edge-client.ts';

const bodyIdleTimeoutMs = 800;

describe('attack: a request body that stops arriving', () => {
  let lab: Lab;
  let sink: LineSink;
  let client: LabClient;

  before(async () => {
    ({ lab, sink } = await loggedLab({ limits: { bodyIdleTimeoutMs, logIntervalMs: 60_000 } }));
    client = labClient(lab);
  });
  after(async () => {
    await client.close();
    await lab.close();
  });

  for (const [title, path] of [
    ['an Autodiscover body (read by the front door)', '/Autodiscover/Autodiscover.xml'],
    ['an EWS body (streamed to the next hop)', '/EWS/Exchange.asmx'],
  ] as const) {
    test(`${title} that stalls: 408 and closed after the body idle timeout`, async () => {
      const before = await edgeCount(lab, 'body_idle_timeout');
      const socket = await tls(lab);
      const started = performance.now();
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${basic('bob@o365info.com')}\r\n` +
          'Content-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<?xml version="1.0"?>',
      );
      const end = await untilClosed(socket, started);
      assert.match(end.received, /^HTTP\/1\.1 408 /);
      assert.ok(end.afterMs >= bodyIdleTimeoutMs - 50, `not before the timeout (${end.afterMs} ms)`);
      assert.equal((await edgeCount(lab, 'body_idle_timeout')) - before, 1);
      assert.equal(edgeLines(sink, 'body_idle_timeout')[0]?.['code'], 'CX_HTTP_REQUEST_TIMEOUT');
      await assertFolderSyncWorks(client);
    });
  }
});
