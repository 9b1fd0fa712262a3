/**
 * Attack: stalling the listener's first-line sniffer. The listener looks at the first request line of each
 * connection before Node's HTTP parser sees it (Outlook Anywhere's RPC_IN_DATA/RPC_OUT_DATA methods,
 * docs/protocols.md §4.7); a connection that completes TLS and then sends nothing, or only the start of an
 * RPC request line, sits in that sniffer. The request head's deadline covers it (`limits.headTimeoutMs`,
 * docs/security.md "Limits and timeouts at the edge"): 408, the connection closed, counted and logged;
 * real Outlook Anywhere channels still work.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';
import { assertFolderSyncWorks, edgeCount, edgeLines, host, tls, untilClosed } from './edge-client.ts';

const headTimeoutMs = 800;

describe('attack: a connection that stalls in the RPC first-line sniffer', () => {
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

  for (const [title, sent] of [
    ['sends nothing after the handshake', ''],
    [
      'sends only the start of an RPC_IN_DATA line',
      'RPC_IN_DATA /rpc/rpcproxy.dll?mbx2007-ny.o365info.com:6001',
    ],
  ] as const) {
    test(`a connection that ${title}: 408 and closed after the head timeout`, async () => {
      const before = await edgeCount(lab, 'head_timeout');
      const socket = await tls(lab);
      const started = performance.now();
      if (sent !== '') socket.write(sent);
      const end = await untilClosed(socket, started);
      assert.match(end.received, /^HTTP\/1\.1 408 /);
      assert.ok(end.afterMs >= headTimeoutMs - 50, `not before the timeout (${end.afterMs} ms)`);
      assert.equal((await edgeCount(lab, 'head_timeout')) - before, 1);
      assert.equal(edgeLines(sink, 'head_timeout')[0]?.['code'], 'CX_HTTP_REQUEST_TIMEOUT');
      await assertFolderSyncWorks(client);
    });
  }

  test('a real RPC_OUT_DATA channel is still sniffed, rewritten and answered', async () => {
    const r = await client.fetch(`https://${host}/rpc/rpcproxy.dll?mbx2013-ny.o365info.local:6001`, {
      method: 'RPC_OUT_DATA',
      headers: { 'x-lab-out-bytes': '1024', 'content-length': '76' },
      body: new Uint8Array(76),
      user: 'alice@o365info.com',
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 1024);
  });
});
