import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ClientGone, drain, readBody } from './body.ts';

/** What the handler saw: the body read (or undefined), or the error it was rejected with. */
type Seen = { readonly body?: Buffer | undefined; readonly error?: unknown };

describe('readBody over a real socket', () => {
  const max = 16;
  let port = 0;
  let seen: Promise<Seen>;
  let report: (s: Seen) => void = () => undefined;
  // The handler reads the body the way the pipeline does, then answers 200 with it or 413 and closes.
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const reading = req.url === '/twice' ? drain(req).then(() => readBody(req, max)) : readBody(req, max);
    reading.then(
      (body) => {
        report({ body });
        if (body === undefined) res.writeHead(413, { connection: 'close', 'content-length': '0' }).end();
        else res.writeHead(200, { 'content-length': String(body.length) }).end(body);
      },
      (error: unknown) => {
        report({ error });
        res.destroy();
      },
    );
  });
  const next = (): void => {
    seen = new Promise((resolve) => (report = resolve));
  };
  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  /** POST `chunks` (chunked when no length is declared); the status the client got, if any. */
  async function post(
    chunks: readonly string[],
    o: { length?: number; path?: string } = {},
  ): Promise<number | undefined> {
    next();
    const req = request({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: o.path ?? '/',
      headers: o.length === undefined ? {} : { 'content-length': String(o.length) },
    });
    const answered = once(req, 'response').then(
      ([res]) => {
        (res as IncomingMessage).resume();
        return (res as IncomingMessage).statusCode;
      },
      () => undefined,
    );
    for (const c of chunks) req.write(c);
    req.end();
    return answered;
  }

  test('a body within the cap is read whole', async () => {
    assert.equal(await post(['0123456789', 'abcdef'], { length: 16 }), 200);
    assert.equal((await seen).body?.toString(), '0123456789abcdef');
  });
  test('a chunked body within the cap, and an empty body', async () => {
    assert.equal(await post(['01234', '56789']), 200);
    assert.equal((await seen).body?.toString(), '0123456789');
    assert.equal(await post([], { length: 0 }), 200);
    assert.equal((await seen).body?.length, 0);
  });
  test('a declared Content-Length over the cap is refused before anything is read', async () => {
    assert.equal(await post(['x'.repeat(17)], { length: 17 }), 413);
    assert.deepEqual(await seen, { body: undefined });
  });
  test('a chunked body that grows past the cap: undefined, and the refusal still reaches the client', async () => {
    assert.equal(await post(['x'.repeat(10), 'y'.repeat(10), 'z'.repeat(1000)]), 413);
    assert.deepEqual(await seen, { body: undefined });
  });
  test('a body already read upstream of the caller is empty', async () => {
    assert.equal(await post(['0123456789'], { length: 10, path: '/twice' }), 200);
    assert.equal((await seen).body?.length, 0);
  });
  test('a client that goes away mid-body: ClientGone', async () => {
    next();
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n01234');
    setTimeout(() => socket.destroy(), 50);
    const { error } = await seen;
    assert.ok(error instanceof ClientGone);
  });
});
