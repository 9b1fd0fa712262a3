/**
 * Attack: TLS handshakes that never finish. A connection that sends nothing after connecting, or trickles
 * its ClientHello a byte at a time (which keeps resetting an idle timer such as Node's own
 * `handshakeTimeout`), holds a connection and a file descriptor without ever reaching HTTP. The handshake
 * has an absolute deadline (`limits.tlsHandshakeTimeoutMs`, docs/security.md "Limits and timeouts at the
 * edge"): the server closes the connection, counts it (`tls_handshake_timeout`) and logs it at a
 * rate-limited level; a normal request still works.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';
import { assertFolderSyncWorks, edgeCount, edgeLines, tcp, untilClosed } from './edge-client.ts';

const tlsHandshakeTimeoutMs = 800;

describe('attack: TLS handshakes that never finish', () => {
  let lab: Lab;
  let sink: LineSink;
  let client: LabClient;

  before(async () => {
    ({ lab, sink } = await loggedLab({ limits: { tlsHandshakeTimeoutMs, logIntervalMs: 60_000 } }));
    client = labClient(lab);
  });
  after(async () => {
    await client.close();
    await lab.close();
  });

  test('a connection that sends nothing is closed after the handshake timeout', async () => {
    const before = await edgeCount(lab, 'tls_handshake_timeout');
    const socket = await tcp(lab);
    const end = await untilClosed(socket, performance.now());
    assert.equal(end.received, '', 'nothing is answered');
    assert.ok(end.afterMs >= tlsHandshakeTimeoutMs - 50, `not before the timeout (${end.afterMs} ms)`);
    assert.equal((await edgeCount(lab, 'tls_handshake_timeout')) - before, 1);
    const line = edgeLines(sink, 'tls_handshake_timeout')[0];
    assert.equal(line?.['code'], 'CX_HTTP_TLS_TIMEOUT');
    assert.equal(line?.['lastSource'], '127.0.0.1');
    await assertFolderSyncWorks(client);
  });

  test('a ClientHello trickled a byte at a time is cut all the same', async () => {
    const before = await edgeCount(lab, 'tls_handshake_timeout');
    const socket = await tcp(lab);
    const started = performance.now();
    // A TLS record header of a handshake record that announces 512 bytes, then its bytes one by one.
    const hello = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), Buffer.alloc(510, 1)]);
    let at = 0;
    const trickle = setInterval(() => {
      if (!socket.destroyed && at < hello.length) socket.write(hello.subarray(at, ++at));
    }, 50);
    try {
      const end = await untilClosed(socket, started);
      assert.ok(end.afterMs >= tlsHandshakeTimeoutMs - 50, `not before the timeout (${end.afterMs} ms)`);
    } finally {
      clearInterval(trickle);
    }
    assert.equal((await edgeCount(lab, 'tls_handshake_timeout')) - before, 1);
    await assertFolderSyncWorks(client);
  });
});
