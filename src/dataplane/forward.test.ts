import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { ForwardResult } from './forward.ts';
import { forward, idleTimeoutMs } from './forward.ts';
import { Upstreams } from './upstreams.ts';

const serverName = 'cas2013-test';
const MiB = 1024 * 1024;

/** Poll `condition` until it holds or `deadlineMs` passes (never a fixed sleep). */
async function waitFor(condition: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** What the back end saw of one request, by the client's `x-test-id`. */
interface Seen {
  headers: IncomingHttpHeaders;
  bytes: number;
  closedEarly: boolean;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

describe('forward', () => {
  const upstreams = new Upstreams({ connectTimeoutMs: 2_000 });
  const seen = new Map<string, Seen>();
  const results = new Map<string, ForwardResult>();
  let downloadReceived = 0;
  let backPort = 0;
  let frontPort = 0;
  let refusedPort = 0;

  const back = createServer((req: IncomingMessage, res: ServerResponse) => {
    const id = String(req.headers['x-test-id']);
    const s: Seen = { headers: req.headers, bytes: 0, closedEarly: false };
    seen.set(id, s);
    req.on('data', (chunk: Buffer) => {
      s.bytes += chunk.length;
    });
    res.on('close', () => {
      if (!res.writableFinished) s.closedEarly = true;
    });
    const url = new URL(req.url ?? '/', 'http://back');
    if (url.pathname === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(201, {
          'content-type': 'application/vnd.ms-sync.wbxml',
          'x-backend-header': 'kept',
          connection: 'x-drop-back',
          'x-drop-back': 'hop-by-hop',
          'x-coexist-secret': 'internal',
        });
        res.end(Buffer.concat(chunks));
      });
    } else if (url.pathname === '/sink') {
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes: s.bytes }));
      });
    } else if (url.pathname === '/source') {
      const total = Number(url.searchParams.get('bytes'));
      void (async () => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
        await writeGenerated(res, total / 2);
        // The client has bytes before the back end sent the second half: nothing holds the whole answer.
        await waitFor(() => downloadReceived > 0, 'the client to receive the first half');
        await writeGenerated(res, total / 2);
        res.end();
      })();
    } else if (url.pathname === '/reset') {
      req.once('data', () => req.socket.destroy());
    } else if (url.pathname === '/hold') {
      // A long poll: answers only when the test gives up on it (the connection closes).
      req.resume();
    } else {
      res.writeHead(404).end();
    }
  });

  const front = createServer((req: IncomingMessage, res: ServerResponse) => {
    const id = String(req.headers['x-test-id']);
    const protocol = (req.headers['x-test-protocol'] ?? 'ews') as Protocol;
    const port = req.headers['x-test-refused'] ? refusedPort : backPort;
    void forward(
      req,
      res,
      {
        url: `http://127.0.0.1:${port}${req.url ?? '/'}`,
        protocol,
        serverName,
        backendTarget: 'mbx2013.test.example',
      },
      {
        upstreams,
        requestId: `req-${id}`,
        scheme: 'http',
        listenerPort: frontPort,
        idleTimeoutsMs: { activesync: 300 },
      },
    ).then((r) => results.set(id, r));
  });

  before(async () => {
    backPort = await listen(back);
    frontPort = await listen(front);
    const spare = createServer();
    refusedPort = await listen(spare);
    await closeServer(spare);
  });

  after(async () => {
    await closeServer(front);
    await closeServer(back);
    await upstreams.close();
  });

  /** Send a request to the front end; `body` may be a Buffer or a writer that streams it. */
  function send(
    path: string,
    headers: Record<string, string>,
    body?: Buffer | ((req: ClientRequest) => Promise<void>),
    method = 'POST',
  ): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: frontPort, path, method, headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (typeof body === 'function') body(req).then(() => req.end(), reject);
      else req.end(body);
    });
  }

  test('passes a POST body and the answer through with the header rules applied', async () => {
    const body = Buffer.from('wbxml \u0003\u0001 payload');
    const reply = await send(
      '/echo?Cmd=Sync&User=bob',
      {
        'x-test-id': 'echo',
        'content-type': 'application/vnd.ms-sync.wbxml',
        'content-length': String(body.length),
        authorization: 'Basic Ym9iOnNlY3JldA==',
        connection: 'keep-alive, x-drop-me',
        'x-drop-me': 'hop-by-hop',
        'keep-alive': 'timeout=5',
        'proxy-authorization': 'Basic cHJveHk6cHJveHk=',
        'x-coexist-hops': 'forged-hop',
      },
      body,
    );
    assert.equal(reply.status, 201);
    assert.deepEqual(reply.body, body);
    assert.equal(reply.headers['x-backend-header'], 'kept');
    assert.equal(reply.headers['x-drop-back'], undefined);
    assert.equal(reply.headers['x-coexist-secret'], undefined);
    assert.equal(reply.headers['x-feserver'], serverName);
    assert.equal(reply.headers['x-calculatedbetarget'], 'mbx2013.test.example');
    assert.equal(reply.headers['x-backendhttpstatus'], '201');
    assert.equal(reply.headers['request-id'], 'req-echo');

    const at = seen.get('echo');
    assert.ok(at);
    assert.equal(at.headers['authorization'], 'Basic Ym9iOnNlY3JldA==');
    assert.equal(at.headers['x-drop-me'], undefined);
    assert.equal(at.headers['keep-alive'], undefined);
    assert.equal(at.headers['proxy-authorization'], undefined);
    // An untrusted client cannot forge hops: the back end sees this server only.
    assert.equal(at.headers['x-coexist-hops'], serverName);
    assert.equal(at.headers['x-coexist-request-id'], 'req-echo');
    assert.equal(at.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(at.headers['host'], `127.0.0.1:${backPort}`);

    await waitFor(() => results.has('echo'), 'the forward result');
    assert.deepEqual(results.get('echo'), {
      outcome: 'proxied',
      status: 201,
      upstreamStatus: 201,
      bytesIn: body.length,
      bytesOut: body.length,
    });
  });

  // POST and GET stand in for RPC_IN_DATA / RPC_OUT_DATA: node:http's parser (llhttp) answers 400 to methods
  // it does not know, so the Outlook Anywhere methods need another listener (see the report).
  test('streams a 64 MiB upload without holding it', async () => {
    const total = 64 * MiB;
    const sampler = heapSampler();
    const reply = await send(
      '/sink',
      { 'x-test-id': 'upload', 'content-length': String(total), 'x-test-protocol': 'rpc' },
      async (req) => {
        await writeGenerated(req, total / 2);
        // The back end has bytes while half the body is still unsent: nothing buffered the whole body.
        await waitFor(() => (seen.get('upload')?.bytes ?? 0) > 0, 'the back end to see the first bytes');
        await writeGenerated(req, total / 2);
      },
    );
    const grew = sampler.stop();
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body.toString()), { bytes: total });
    assert.ok(grew < total / 2, `heap grew by ${(grew / MiB).toFixed(1)} MiB`);
    await waitFor(() => results.has('upload'), 'the forward result');
    assert.equal(results.get('upload')?.bytesIn, total);
    assert.equal(results.get('upload')?.outcome, 'proxied');
  });

  test('streams a 64 MiB download without holding it', async () => {
    const total = 64 * MiB;
    const sampler = heapSampler();
    const received = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: frontPort,
          path: `/source?bytes=${total}`,
          headers: { 'x-test-id': 'download', 'x-test-protocol': 'rpc' },
          method: 'GET',
          agent: false,
        },
        (res) => {
          // Count and drop: the client holds nothing either.
          res.on('data', (c: Buffer) => {
            downloadReceived += c.length;
          });
          res.on('end', () => resolve(downloadReceived));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
    const grew = sampler.stop();
    assert.equal(received, total);
    assert.ok(grew < total / 2, `heap grew by ${(grew / MiB).toFixed(1)} MiB`);
    await waitFor(() => results.has('download'), 'the forward result');
    assert.equal(results.get('download')?.bytesOut, total);
  });

  test('answers 504 when a long poll outlives the idle timeout', async () => {
    const reply = await send(
      '/hold?Cmd=Ping',
      { 'x-test-id': 'hold', 'x-test-protocol': 'activesync', 'content-length': '0' },
      Buffer.alloc(0),
    );
    assert.equal(reply.status, 504);
    await waitFor(() => results.has('hold'), 'the forward result');
    const r = results.get('hold');
    assert.equal(r?.outcome, 'upstream_timeout');
    assert.equal(r?.failure?.code, 'CX_UPSTREAM_HEADERS_TIMEOUT');
    await waitFor(() => seen.get('hold')?.closedEarly === true, 'the back end to see the request closed');
  });

  test('answers 503 with Retry-After to ActiveSync when the next hop refuses connections', async () => {
    const reply = await send(
      '/Microsoft-Server-ActiveSync?Cmd=Sync',
      { 'x-test-id': 'refused-eas', 'x-test-protocol': 'activesync', 'x-test-refused': '1' },
      Buffer.from('x'),
    );
    assert.equal(reply.status, 503);
    assert.equal(reply.headers['retry-after'], '30');
    assert.equal(reply.headers['x-feserver'], serverName);
    await waitFor(() => results.has('refused-eas'), 'the forward result');
    assert.equal(results.get('refused-eas')?.outcome, 'upstream_unreachable');
    assert.equal(results.get('refused-eas')?.failure?.code, 'CX_UPSTREAM_CONNECT_REFUSED');
  });

  test('answers 502 to EWS when the next hop refuses connections', async () => {
    const reply = await send(
      '/EWS/Exchange.asmx',
      { 'x-test-id': 'refused-ews', 'x-test-protocol': 'ews', 'x-test-refused': '1' },
      Buffer.from('<soap/>'),
    );
    assert.equal(reply.status, 502);
    assert.equal(reply.headers['retry-after'], undefined);
    assert.match(reply.body.toString(), /CX_UPSTREAM_CONNECT_REFUSED/);
    await waitFor(() => results.has('refused-ews'), 'the forward result');
    assert.equal(results.get('refused-ews')?.outcome, 'upstream_unreachable');
  });

  test('cancels the upstream request when the client goes away mid-request', async () => {
    const req = request({
      host: '127.0.0.1',
      port: frontPort,
      path: '/sink',
      method: 'POST',
      headers: { 'x-test-id': 'abort', 'content-length': '1000000', 'x-test-protocol': 'activesync' },
      agent: false,
    });
    req.on('error', () => {}); // the socket is destroyed on purpose
    req.write(Buffer.alloc(1000));
    await waitFor(() => (seen.get('abort')?.bytes ?? 0) > 0, 'the back end to see the request');
    req.destroy();
    await waitFor(() => seen.get('abort')?.closedEarly === true, 'the back end to see the request closed');
    await waitFor(() => results.has('abort'), 'the forward result');
    const r = results.get('abort');
    assert.equal(r?.outcome, 'client_aborted');
    assert.equal(r?.status, undefined);
  });

  test('a small body the client abandons halfway is a client abort, read here and never passed on', async () => {
    // Small enough to be read whole before the exchange (smallBodyBytes): the client goes while it is read.
    const req = request({
      host: '127.0.0.1',
      port: frontPort,
      path: '/echo?Cmd=Ping',
      method: 'POST',
      headers: { 'x-test-id': 'small-abort', 'content-length': '100', 'x-test-protocol': 'activesync' },
      agent: false,
    });
    req.on('error', () => {}); // the socket is destroyed on purpose
    await new Promise<void>((resolve) => req.write(Buffer.alloc(10), () => resolve()));
    req.destroy();
    await waitFor(() => results.has('small-abort'), 'the forward result');
    const r = results.get('small-abort');
    assert.equal(r?.outcome, 'client_aborted');
    assert.equal(r?.status, undefined);
    assert.equal(r?.bytesOut, 0);
  });

  test('a small body goes to the next hop whole, with its declared length', async () => {
    const body = Buffer.from('0123456789'.repeat(100));
    const reply = await send(
      '/echo?Cmd=Ping',
      { 'x-test-id': 'small-whole', 'content-length': String(body.length) },
      async (req) => {
        // Sent in two writes: the next hop still gets one body of the declared length.
        await new Promise<void>((resolve) => req.write(body.subarray(0, 400), () => resolve()));
        req.write(body.subarray(400));
      },
    );
    assert.equal(reply.status, 201);
    assert.deepEqual(reply.body, body);
    assert.equal(seen.get('small-whole')?.headers['content-length'], String(body.length));
    assert.equal(results.get('small-whole')?.bytesIn, body.length);
  });

  test('answers 502, not a client abort, when the next hop drops a request mid-upload', async () => {
    let status = 0;
    const req = request(
      {
        host: '127.0.0.1',
        port: frontPort,
        path: '/reset',
        method: 'POST',
        headers: { 'x-test-id': 'reset', 'content-length': '1000000', 'x-test-protocol': 'ews' },
        agent: false,
      },
      (res) => {
        status = res.statusCode ?? 0;
        res.resume();
      },
    );
    req.on('error', () => {}); // the front end may close the half-sent upload after answering
    req.write(Buffer.alloc(1000));
    await waitFor(() => results.has('reset'), 'the forward result');
    const r = results.get('reset');
    assert.equal(r?.outcome, 'upstream_error');
    assert.equal(r?.status, 502);
    assert.equal(r?.failure?.code, 'CX_UPSTREAM_CONNECTION_RESET');
    await waitFor(() => status !== 0, 'the client to get an answer');
    assert.equal(status, 502);
    req.destroy();
  });

  test('keeps long idle timeouts for long-poll protocols only', () => {
    assert.ok(idleTimeoutMs.activesync >= 3540_000 + 60_000);
    assert.ok(idleTimeoutMs.rpc >= 3540_000 && idleTimeoutMs.mapi >= 3540_000);
    assert.ok(idleTimeoutMs.ews < idleTimeoutMs.activesync);
  });
});

describe('Upstreams', () => {
  test('keeps one pool per origin and refuses new ones once closed', async () => {
    const upstreams = new Upstreams();
    const a = upstreams.pool('http://127.0.0.1:1');
    assert.equal(upstreams.pool('http://127.0.0.1:1'), a);
    assert.notEqual(upstreams.pool('http://127.0.0.1:2'), a);
    assert.equal(upstreams.size, 2);
    await upstreams.close();
    assert.equal(upstreams.size, 0);
    assert.throws(() => upstreams.pool('http://127.0.0.1:1'), { code: 'UND_ERR_CLOSED' });
  });
});

/** Write `bytes` generated bytes to `out`, respecting backpressure. */
async function writeGenerated(out: NodeJS.WritableStream, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let left = bytes; left > 0; left -= chunk.length) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    if (!out.write(piece)) await new Promise((r) => out.once('drain', r));
  }
}

/**
 * The most the JS heap grew above its starting point while sampling. A loose check only: Buffer memory is
 * outside `heapUsed`, and garbage chunks awaiting GC make `arrayBuffers` swing by tens of MiB, so the real
 * proof of streaming is that the far side sees bytes before the near side has sent the second half.
 */
function heapSampler(): { stop(): number } {
  const start = process.memoryUsage().heapUsed;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 5);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().heapUsed);
      return peak - start;
    },
  };
}

describe('forward: one retry, only when the request never reached the hop', () => {
  let backPort = 0;
  let refusedPort = 0;
  let attempts = 0;
  const back = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });

  before(async () => {
    backPort = await listen(back);
    const spare = createServer();
    refusedPort = await listen(spare);
    await closeServer(spare);
  });
  after(() => closeServer(back));

  /** Upstreams whose DNS sends the first connection to a closed port, the next ones to the back end. */
  function flakyUpstreams(): Upstreams {
    attempts = 0;
    return new Upstreams({
      connectTimeoutMs: 2_000,
      resolve: () => ({ address: '127.0.0.1', port: attempts++ === 0 ? refusedPort : backPort }),
    });
  }

  async function through(
    upstreams: Upstreams,
    method: string,
    body?: Buffer,
  ): Promise<[ForwardResult, number]> {
    let result: ForwardResult | undefined;
    const front = createServer((req, res) => {
      void forward(
        req,
        res,
        { url: 'http://back.example/x', protocol: 'ews', serverName },
        {
          upstreams,
          requestId: 'r',
          scheme: 'http',
          listenerPort: 1,
        },
      ).then((r) => (result = r));
    });
    const port = await listen(front);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/x', method, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(body);
      });
      await waitFor(() => result !== undefined, 'the forward result');
      return [result as ForwardResult, status];
    } finally {
      await closeServer(front);
      await upstreams.close();
    }
  }

  test('a refused connection is tried again and the request gets through', async () => {
    const [result, status] = await through(flakyUpstreams(), 'GET');
    assert.equal(status, 200);
    assert.equal(result.outcome, 'proxied');
    assert.equal(result.retried?.code, 'CX_UPSTREAM_CONNECT_REFUSED');
    assert.equal(attempts, 2);
  });

  test('a streamed request body is not sent twice: the refusal is the answer (502)', async () => {
    const [result, status] = await through(flakyUpstreams(), 'POST', Buffer.from('once only'));
    assert.equal(status, 502);
    assert.equal(result.outcome, 'upstream_unreachable');
    assert.equal(result.retried, undefined);
    assert.equal(attempts, 1);
  });
});
