/**
 * Attack: a next hop that offers HTTP/2 in the TLS handshake (ALPN `h2`), as IIS does on the Windows servers
 * Exchange runs on, or anything answering in a next hop's name. undici 8 takes h2 when offered unless told
 * not to; the data plane's rules (hop-by-hop headers, `Connection: close`, Outlook Anywhere's channels each
 * one request on a connection of its own: docs/protocols.md) are HTTP/1.1's, so every upstream connection
 * offers `http/1.1` alone and the next hop sees HTTP/1.1 whatever it offers. Real sockets: a real HTTP/2 TLS
 * server that also speaks HTTP/1.1, reached through the data plane's own Upstreams and forward().
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse, Http2SecureServer } from 'node:http2';
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { forward } from '../../src/dataplane/forward.ts';
import { Upstreams } from '../../src/dataplane/upstreams.ts';
import { createLabCa } from '../../src/lab/lab-ca.ts';

const hopName = 'mbx2013.test.example';

describe('attack: a next hop that offers HTTP/2', () => {
  const ca = createLabCa();
  const leaf = ca.issue([hopName]);
  const seen: { httpVersion: string; alpn: string | false; method: string }[] = [];
  /** The protocol each TLS connection to the next hop settled on. */
  const connections: (string | false)[] = [];
  let hop: Http2SecureServer;
  let hopPort = 0;
  let frontPort = 0;
  const upstreams = new Upstreams({
    ca: ca.certPem,
    resolve: (hostname) => (hostname === hopName ? { address: '127.0.0.1', port: hopPort } : undefined),
  });

  // The front end: forward() as the pipeline calls it; the RPC method comes in a test header because Node's
  // parser refuses it on the wire (the listener's rewrite, listener.ts).
  const front = createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = req.headers['x-test-method'];
    if (typeof method === 'string') req.method = method;
    void forward(
      req,
      res,
      {
        url: `https://${hopName}:444${req.url ?? '/'}`,
        protocol: req.url?.startsWith('/rpc/') ? 'rpc' : 'ews',
        serverName: 'cas2013-test',
      },
      { upstreams, requestId: 'h2-offered', scheme: 'http', listenerPort: frontPort },
    );
  });

  before(async () => {
    hop = createSecureServer(
      { cert: leaf.certPem, key: leaf.keyPem, allowHTTP1: true },
      (req: Http2ServerRequest, res: Http2ServerResponse) => {
        const socket = req.socket as unknown as TLSSocket;
        seen.push({ httpVersion: req.httpVersion, alpn: socket.alpnProtocol ?? false, method: req.method });
        req.resume();
        req.on('end', () => res.end('answered'));
      },
    );
    hop.on('secureConnection', (socket: TLSSocket) => connections.push(socket.alpnProtocol ?? false));
    await new Promise<void>((resolve) => hop.listen(0, '127.0.0.1', resolve));
    hopPort = (hop.address() as AddressInfo).port;
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    frontPort = (front.address() as AddressInfo).port;
  });
  after(async () => {
    front.closeAllConnections();
    await new Promise<void>((resolve) => front.close(() => resolve()));
    await upstreams.close();
    await new Promise<void>((resolve) => hop.close(() => resolve()));
  });

  async function send(
    path: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: string }> {
    const r = await fetch(`http://127.0.0.1:${frontPort}${path}`, {
      method: 'POST',
      headers: { host: 'mail.test.example', ...headers },
      body: 'x'.repeat(76),
    });
    return { status: r.status, body: await r.text() };
  }

  test('a pooled request (EWS) reaches it as HTTP/1.1', async () => {
    const r = await send('/EWS/Exchange.asmx', { 'content-type': 'text/xml' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'answered');
    assert.deepEqual(seen.at(-1), { httpVersion: '1.1', alpn: 'http/1.1', method: 'POST' });
  });

  test('an Outlook Anywhere channel gets a connection of its own, HTTP/1.1 too', async () => {
    const before = connections.length;
    const r = await send('/rpc/rpcproxy.dll?mbx2013.test.example:6001', { 'x-test-method': 'RPC_IN_DATA' });
    // A new connection, and on it HTTP/1.1: this next hop's HTTP/1.1 parser (Node's) refuses the method
    // with 400, which over h2 it would have taken as any other :method.
    assert.deepEqual(connections.slice(before), ['http/1.1']);
    assert.equal(r.status, 400);
    assert.ok(
      connections.every((p) => p === 'http/1.1'),
      JSON.stringify(connections),
    );
  });
});
