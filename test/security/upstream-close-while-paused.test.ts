/**
 * Attack: a next hop (or anything answering in its name) that sends a large answer with `Connection: close`
 * and closes the connection at once, to a client that reads more slowly than the next hop writes. The data
 * plane pauses its upstream parser while the client's side is over its high-water mark (forward.ts), so the
 * next hop's FIN can arrive while that parser is paused; on undici 7 that threw an uncatchable assertion
 * from the socket's `end` handler and took the whole front end down with every connection it held
 * (nodejs/undici#5360, fixed in undici 8). It must instead pass the whole answer on and keep serving. Both
 * ways a connection ends with one exchange: an Outlook Anywhere channel (a connection of its own, which the
 * channel's request closes: Upstreams.channel) and a pooled request to a next hop that may not keep
 * connections (`keepAlive: false`). Real sockets: the next hop is a raw TCP server so that it closes exactly
 * when the test says; the client is a raw socket that reads in small steps.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { ForwardResult } from '../../src/dataplane/forward.ts';
import { forward } from '../../src/dataplane/forward.ts';
import { Upstreams } from '../../src/dataplane/upstreams.ts';

const MiB = 1024 * 1024;
/** Well over what loopback buffers between the front end and a client that has not read yet. */
const answerBytes = 24 * MiB;

/** The answer's bytes: a pattern, so that a lost or repeated chunk changes the digest. */
function answerBody(): Buffer {
  const body = Buffer.alloc(answerBytes);
  for (let i = 0; i < body.length; i += 4) body.writeUInt32LE(i, i);
  return body;
}
const body = answerBody();
const bodyDigest = createHash('sha256').update(body).digest('hex');

/** What the next hop saw: the request lines, and each connection's end. */
interface HopLog {
  readonly requestLines: string[];
  readonly closed: Promise<void>[];
}

/** A next hop that answers every request with `body`, `Connection: close`, and then closes at once. */
function closingHop(log: HopLog): Server {
  return createServer((socket: Socket) => {
    log.closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
    socket.on('error', () => undefined);
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.resume(); // any request body is read and dropped
      log.requestLines.push(head.slice(0, head.indexOf('\r\n')));
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Type: application/rpc\r\n' +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      );
      socket.end(body); // the FIN follows the last byte
    };
    socket.on('data', onData);
  });
}

function listen(server: Server | HttpServer): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Send `request` on a raw socket and read the answer a little at a time: one chunk per macrotask turn. */
function slowExchange(port: number, request: string): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on('readable', function readOne() {
      const chunk = socket.read(16 * 1024) as Buffer | null;
      if (chunk === null) return;
      chunks.push(chunk);
      // Slower than the next hop: the rest waits in the socket until the next turn.
      setImmediate(readOne);
    });
    socket.once('error', reject);
    socket.once('end', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        reject(new Error(`no answer head: ${all.toString('latin1', 0, 200)}`));
        return;
      }
      resolve({ head: all.toString('latin1', 0, end), body: all.subarray(end + 4) });
    });
  });
}

describe('attack: a next hop closes right after a large answer to a slow client', () => {
  const upstreams = new Upstreams({ connectTimeoutMs: 2_000 });
  const log: HopLog = { requestLines: [], closed: [] };
  const hop = closingHop(log);
  const results: ForwardResult[] = [];
  let hopPort = 0;
  let frontPort = 0;

  // The front end: forward() as the pipeline calls it. Node's parser refuses RPC_OUT_DATA, so the client
  // sends POST with the method in a test header, as the listener's rewrite does (listener.ts).
  const front = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const method = req.headers['x-test-method'];
    if (typeof method === 'string') req.method = method;
    void forward(
      req,
      res,
      {
        url: `http://127.0.0.1:${hopPort}${req.url ?? '/'}`,
        protocol: req.url?.startsWith('/rpc/') ? 'rpc' : 'ews',
        serverName: 'cas2013-test',
        keepAlive: req.headers['x-test-keep-alive'] !== 'no',
      },
      { upstreams, requestId: 'close-while-paused', scheme: 'http', listenerPort: frontPort },
    ).then((r) => results.push(r));
  });

  before(async () => {
    hopPort = await listen(hop);
    frontPort = await listen(front);
  });
  after(async () => {
    front.closeAllConnections();
    await new Promise<void>((resolve) => front.close(() => resolve()));
    await new Promise<void>((resolve) => hop.close(() => resolve()));
    await upstreams.close();
  });

  const cases = [
    {
      title: 'an Outlook Anywhere RPC_OUT_DATA channel',
      request:
        'POST /rpc/rpcproxy.dll?mbx2013.test.example:6001 HTTP/1.1\r\nHost: mail.test.example\r\n' +
        'X-Test-Method: RPC_OUT_DATA\r\nContent-Length: 76\r\nConnection: close\r\n\r\n' +
        '\0'.repeat(76),
      line: 'RPC_OUT_DATA /rpc/rpcproxy.dll?mbx2013.test.example:6001 HTTP/1.1',
    },
    {
      title: 'a pooled request to a next hop that does not keep connections',
      request:
        'GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail.test.example\r\nX-Test-Keep-Alive: no\r\n' +
        'Connection: close\r\n\r\n',
      line: 'GET /EWS/Exchange.asmx HTTP/1.1',
    },
  ];

  for (const c of cases) {
    test(`${c.title}: the whole answer arrives and the front end lives on`, async () => {
      const before = log.requestLines.length;
      const answer = await slowExchange(frontPort, c.request);
      assert.match(answer.head, /^HTTP\/1\.1 200 /);
      assert.equal(answer.body.length, body.length);
      assert.equal(createHash('sha256').update(answer.body).digest('hex'), bodyDigest);
      assert.equal(log.requestLines[before], c.line);
      // The next hop was told the connection ends with this request, and it did end.
      await log.closed[before];
      assert.deepEqual(results.at(-1)?.outcome, 'proxied');
      assert.equal(results.at(-1)?.bytesOut, body.length);
    });
  }

  test('the front end still serves after both', async () => {
    const answer = await slowExchange(
      frontPort,
      'GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail.test.example\r\nConnection: close\r\n\r\n',
    );
    assert.match(answer.head, /^HTTP\/1\.1 200 /);
    assert.equal(answer.body.length, body.length);
  });
});
