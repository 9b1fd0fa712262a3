/**
 * Attack: riding the rewrite of later RPC request lines. An Outlook Anywhere connection's later requests may use an
 * RPC method too (an NTLM handshake's legs are requests of the channel's method on one kept-alive connection,
 * docs/auth.md), so the listener rewrites a later RPC request line as it does the first (listener.ts
 * `rewriteLaterRpcLines`). It must rewrite only a line that starts a request, between requests, and believe the
 * marker only on the request it rewrote (docs/security.md "Trust per request"): bytes of a body that look like an
 * RPC request line stay body, and a client's own `X-Coexist-Method` on a later POST is not believed. A connection
 * that did not start with an RPC method keeps Node's parser as it was: a later RPC line there is a 400.
 */
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { basic } from '../support/lab-client.ts';
import { accessLines, assertEasOptionsWorks, loggedLab } from '../support/logged-lab.ts';
import { openTls, requestIds, statuses, until } from '../support/raw-tls.ts';

const host = 'mail.o365info.com';
const rpcPath = '/rpc/rpcproxy.dll?mbx2007-ny.o365info.local:6001';

/** A connection whose answers are read as they come: `send` writes and waits for the `n`th answer in all. */
async function connection(lab: Lab): Promise<{
  socket: TLSSocket;
  text: () => string;
  send: (bytes: string, answers: number) => Promise<void>;
}> {
  const socket = await openTls(lab, host);
  let answer = '';
  socket.setEncoding('latin1');
  socket.on('data', (s: string) => (answer += s));
  socket.on('error', () => undefined);
  return {
    socket,
    text: () => answer,
    send: async (bytes, answers) => {
      socket.write(bytes);
      // Each answer here has an empty or short body: its head is enough to count it.
      await until(() => statuses(answer).length >= answers || socket.destroyed, `${answers} answers`);
    },
  };
}

describe('attack: the rewrite of later RPC request lines on an Outlook Anywhere connection', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab());
  });
  after(() => lab.close());

  const rpc = (method: string, extra = ''): string =>
    `${method} ${rpcPath} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${basic('bob@o365info.com')}\r\n${extra}Content-Length: 0\r\n\r\n`;

  test('a later RPC_OUT_DATA after an RPC_IN_DATA is served as RPC_OUT_DATA (Basic, the listener at every hop)', async () => {
    const c = await connection(lab);
    try {
      await c.send(rpc('RPC_IN_DATA'), 1);
      await c.send(rpc('RPC_OUT_DATA', 'x-lab-out-bytes: 16\r\n'), 2);
      assert.deepEqual(statuses(c.text()), [200, 200], c.text().slice(0, 800));
      const [, out] = requestIds(c.text());
      assert.ok(out);
      await lab.recorder.waitFor(out, 'CAS2013-NY');
      for (const l of accessLines(sink, out)) assert.equal(l['method'], 'RPC_OUT_DATA', String(l['server']));
      assert.deepEqual(lab.recorder.path(out), ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
    } finally {
      c.socket.destroy();
    }
  });

  test('a later POST carrying its own X-Coexist-Method stays a POST', async () => {
    const c = await connection(lab);
    try {
      await c.send(rpc('RPC_IN_DATA'), 1);
      await c.send(
        `POST /owa/ HTTP/1.1\r\nHost: ${host}\r\nX-Coexist-Method: RPC_OUT_DATA\r\n` +
          `Authorization: ${basic('alice@o365info.com')}\r\nContent-Length: 0\r\n\r\n`,
        2,
      );
      const [, post] = requestIds(c.text());
      assert.ok(post, c.text().slice(0, 800));
      await until(() => accessLines(sink, post).length > 0, 'the POST logged');
      for (const l of accessLines(sink, post)) assert.equal(l['method'], 'POST', String(l['server']));
    } finally {
      c.socket.destroy();
    }
  });

  test('bytes of a body that look like an RPC request line stay body: one request, a POST', async () => {
    const c = await connection(lab);
    const from = sink.records().length;
    try {
      await c.send(rpc('RPC_IN_DATA'), 1);
      const smuggled = rpc('RPC_OUT_DATA');
      // The head first, then the body that reads as a request in a write (a TLS record) of its own.
      c.socket.write(
        `POST /owa/ HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${basic('alice@o365info.com')}\r\n` +
          `Content-Type: application/octet-stream\r\nContent-Length: ${smuggled.length}\r\n\r\n`,
      );
      await c.send(smuggled, 2);
      const ids = requestIds(c.text());
      assert.equal(statuses(c.text()).length, 2, c.text().slice(0, 800));
      const post = ids[1];
      assert.ok(post);
      await until(() => accessLines(sink, post).length > 0, 'the POST logged');
      for (const l of accessLines(sink, post)) assert.equal(l['method'], 'POST');
      // Nothing else was parsed on the connection: no third request, no RPC_OUT_DATA since this test began.
      const since = sink.records().slice(from);
      assert.ok(!since.some((l) => l['msg'] === 'access' && l['method'] === 'RPC_OUT_DATA'));
    } finally {
      c.socket.destroy();
    }
  });

  test('a connection that began with GET keeps Node’s parser: a later RPC line is a 400', async () => {
    const c = await connection(lab);
    try {
      await c.send(
        `OPTIONS /Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=abc123&DeviceType=iPhone HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${basic('alice@o365info.com')}\r\nContent-Length: 0\r\n\r\n`,
        1,
      );
      await c.send(rpc('RPC_IN_DATA'), 2);
      assert.deepEqual(statuses(c.text()), [200, 400]);
    } finally {
      c.socket.destroy();
    }
  });

  test('a normal request still works afterwards', async () => {
    await assertEasOptionsWorks(lab);
  });
});
