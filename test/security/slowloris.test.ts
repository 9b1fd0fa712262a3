/**
 * Attack: slowloris. Hundreds of TLS connections each send a request head a byte at a time and never finish
 * it, to hold the server's connections (and file descriptors) for ever. The request head has a deadline
 * (`limits.headTimeoutMs`, docs/security.md "Limits and timeouts at the edge"): every such connection gets
 * 408 and is closed, each cut is counted (`coexist_edge_events_total{event="head_timeout"}`) and logged at
 * a rate-limited level, and a normal request still works. The same holds for the second request of a
 * kept-alive connection (Node's own head timer, armed because the listener listen()s).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';
import { assertFolderSyncWorks, edgeCount, edgeLines, host, tls, untilClosed } from './edge-client.ts';

const headTimeoutMs = 1_500;
const connections = 300;

describe('attack: slowloris (request heads that never end)', () => {
  let lab: Lab;
  let sink: LineSink;
  let client: LabClient;

  before(async () => {
    ({ lab, sink } = await loggedLab({ limits: { headTimeoutMs, logIntervalMs: 60_000 } }));
    client = labClient(lab);
  });
  after(async () => {
    await client.close();
    await lab.close();
  });

  test(`${connections} connections trickling a head are each cut with 408 after the head timeout`, async () => {
    const before = await edgeCount(lab, 'head_timeout');
    // Each connection's own clock starts when its handshake is done, as the server's deadline does.
    const opened = await Promise.all(
      Array.from({ length: connections }, () => tls(lab).then((s) => ({ s, at: performance.now() }))),
    );
    const sockets = opened.map((o) => o.s);
    const head = `GET /owa/ HTTP/1.1\r\nHost: ${host}\r\nX-Slow: ${'a'.repeat(4096)}`;
    // One more byte of the head on every connection now and then; the server's deadline decides the end.
    let at = 0;
    const trickle = setInterval(() => {
      const c = head[at++ % head.length] ?? 'a';
      for (const s of sockets) if (!s.destroyed) s.write(c);
    }, 100);
    try {
      const ends = await Promise.all(opened.map((o) => untilClosed(o.s, o.at)));
      for (const e of ends) {
        assert.match(e.received, /^HTTP\/1\.1 408 /, 'the server answers 408 and closes');
        assert.ok(
          e.afterMs >= headTimeoutMs - 50,
          `cut after the head timeout, not before (${e.afterMs} ms)`,
        );
      }
    } finally {
      clearInterval(trickle);
    }
    assert.equal((await edgeCount(lab, 'head_timeout')) - before, connections, 'each cut is counted');
    const lines = edgeLines(sink, 'head_timeout');
    assert.ok(lines.length >= 1, 'the cuts are logged');
    assert.ok(lines.length < connections, 'at a rate-limited level, not a line per connection');
    assert.equal(lines[0]?.['code'], 'CX_HTTP_REQUEST_TIMEOUT');
    assert.equal(lines[0]?.['level'], 40, 'warn');
    await assertFolderSyncWorks(client);
  });

  test('the second request of a kept-alive connection trickled: 408 after the head timeout', async () => {
    const before = await edgeCount(lab, 'head_timeout');
    const socket = await tls(lab);
    let received = '';
    socket.on('data', (b: Buffer) => (received += b.toString('latin1')));
    socket.write(`GET /owa/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    // The first answer is whole once its body (Content-Length) is in.
    await new Promise<void>((resolve) => {
      const check = (): void => {
        const m = /\r\ncontent-length: (\d+)\r\n[^]*?\r\n\r\n/i.exec(received);
        const end = m ? received.indexOf('\r\n\r\n') + 4 + Number(m[1]) : -1;
        if (end > 0 && received.length >= end) {
          socket.off('data', check);
          resolve();
        }
      };
      socket.on('data', check);
    });
    const first = received;
    received = '';
    const started = performance.now();
    const trickle = setInterval(() => socket.write('X'), 100);
    socket.write(`GET /owa/ HTTP/1.1\r\nHost: ${host}\r\nX-Slow: `);
    try {
      const end = await untilClosed(socket, started);
      assert.match(first, /^HTTP\/1\.1 /);
      assert.match(received + end.received, /^HTTP\/1\.1 408 /);
      assert.ok(end.afterMs >= headTimeoutMs - 50, `cut after the head timeout (${end.afterMs} ms)`);
    } finally {
      clearInterval(trickle);
    }
    assert.equal((await edgeCount(lab, 'head_timeout')) - before, 1);
    await assertFolderSyncWorks(client);
  });
});
