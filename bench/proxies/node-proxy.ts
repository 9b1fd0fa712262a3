/**
 * The Node.js ceiling for bench/proxies.ts: the least a Node proxy can do per request with the same machinery
 * coexist uses, and nothing of coexist's own work (no identity, authentication, directory, decision, access
 * line, metrics). node:http server, one undici Pool with one TLS context to the bench back end's HTTPS port,
 * request and response headers copied minus hop-by-hop ones, bodies streamed through a dispatch handler
 * into the response with backpressure, the upstream request cancelled when the client goes away.
 * argv: back-end HTTPS port, CA file. Reports its port over IPC.
 */
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Dispatcher } from 'undici';
import { errors, Pool } from 'undici';

const backendPort = Number(process.argv[2]);
const ca = readFileSync(process.argv[3] ?? '', 'utf8');
const upstreamHost = 'mbx2013-ny.o365info.local:444';
const pool = new Pool(`https://127.0.0.1:${backendPort}`, {
  connections: null,
  connect: {
    servername: 'mbx2013-ny.o365info.local',
    ...({ secureContext: createSecureContext({ ca }) } as object),
  },
});
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const copy = (
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
): OutgoingHttpHeaders => {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  }
  return out;
};

const server = createServer({ requestTimeout: 0, keepAliveTimeout: 120_000 }, (req, res) => {
  const headers = copy(req.headers);
  headers['host'] = upstreamHost;
  let controller: Dispatcher.DispatchController | undefined;
  const onClose = (): void => {
    if (!res.writableFinished) controller?.abort(new errors.RequestAbortedError());
  };
  res.once('close', onClose);
  const hasBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (hasBody) req.pause();
  pool.dispatch(
    {
      path: req.url ?? '/',
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: headers as Record<string, string>,
      body: hasBody ? req : null,
    },
    {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(c, statusCode, upstream) {
        if (statusCode < 200) return;
        res.writeHead(statusCode, copy(upstream));
        res.on('drain', () => c.resume());
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk)) c.pause();
      },
      onResponseEnd() {
        res.off('close', onClose);
        res.end();
      },
      onResponseError() {
        res.off('close', onClose);
        if (res.headersSent) res.destroy();
        else res.writeHead(502, { 'content-length': '0' }).end();
      },
    },
  );
});
server.listen(0, '127.0.0.1', () => {
  process.send?.({ ready: true, http: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => {
  server.close();
  void pool.close().then(() => process.exit(0));
});
