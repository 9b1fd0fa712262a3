/**
 * HTTP(S) listeners: TLS with one certificate per namespace chosen by SNI, timeouts that let long polls
 * live (the request handler and undici enforce idle limits per protocol, not Node's 300 s total), and a
 * structured refusal for requests Node's parser rejects (e.g. `Content-Length` with `Transfer-Encoding`,
 * RFC 9112 §6.3), which never reach the pipeline or a back end.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { createSecureContext, createServer as createTlsServer } from 'node:tls';
import type { Logger } from '../observability/log.ts';
import { logAccess } from '../observability/log.ts';

/** A certificate and the host names it is served for (exact names or `*.domain`). */
export interface CertificateEntry {
  readonly hosts: readonly string[];
  readonly certPem: string;
  readonly keyPem: string;
}

export interface ListenOptions {
  readonly name: string;
  readonly host: string;
  /** 0 for an ephemeral port. */
  readonly port: number;
  /** TLS certificates; absent means plain HTTP, which the caller allows only when told to. */
  readonly certificates?: readonly CertificateEntry[];
  /** Idle time of a keep-alive connection between requests; default 5 s (Node's). */
  readonly keepAliveTimeoutMs?: number;
}

/** A listening server. */
export interface Listening {
  readonly name: string;
  readonly port: number;
  readonly scheme: 'http' | 'https';
  readonly server: HttpServer;
  /** Stop accepting, let requests in flight finish for `graceMs`, then cut what is left. */
  close(graceMs?: number): Promise<void>;
}

/** The context for a server name: exact match, then `*.parent`, then undefined (the default certificate). */
export function sniContexts(
  entries: readonly CertificateEntry[],
): (servername: string) => SecureContext | undefined {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  for (const e of entries) {
    const context = createSecureContext({ cert: e.certPem, key: e.keyPem });
    for (const h of e.hosts) {
      const host = h.toLowerCase();
      if (host.startsWith('*.')) wildcard.set(host.slice(2), context);
      else exact.set(host, context);
    }
  }
  return (servername) => {
    const name = servername.toLowerCase();
    const dot = name.indexOf('.');
    return exact.get(name) ?? (dot < 0 ? undefined : wildcard.get(name.slice(dot + 1)));
  };
}

/** Start one listener with `handler` for every request. */
export async function listen(
  options: ListenOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  logger: Logger,
  serverName: string,
): Promise<Listening> {
  const tlsEntries = options.certificates;
  const settings = {
    // Long polls (ActiveSync Ping up to 3540 s, RPC channels) must not be cut by Node's total request
    // timeout (300 s by default); idle limits per protocol apply upstream (forward.ts).
    requestTimeout: 0,
    headersTimeout: 60_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
  };
  // Node's HTTP parser knows a fixed list of methods and refuses Outlook Anywhere's RPC_IN_DATA and
  // RPC_OUT_DATA (docs/protocols.md §4.7), so connections are accepted here, the first request line is
  // looked at (`sniffRequestLine`) and only then handed to the HTTP server.
  const server: HttpServer = createHttpServer(settings, handler);
  const accept = (socket: Socket): void => sniffRequestLine(socket, () => server.emit('connection', socket));
  let front: NetServer;
  if (tlsEntries && tlsEntries.length > 0) {
    const first = tlsEntries[0] as CertificateEntry;
    const pick = sniContexts(tlsEntries);
    front = createTlsServer(
      {
        cert: first.certPem,
        key: first.keyPem,
        minVersion: 'TLSv1.2',
        ALPNProtocols: ['http/1.1'],
        SNICallback: (servername, cb) => cb(null, pick(servername)),
      },
      (socket: TLSSocket) => accept(socket),
    );
    // A failed handshake (wrong SNI, a scanner) never reaches HTTP; nothing to answer.
    front.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
  } else {
    front = createNetServer((socket) => accept(socket));
  }
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    // Parser errors and TLS-less junk: a 400 and one structured line, never a stack trace.
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    logAccess(logger, {
      reqId: randomUUID(),
      listener: options.name,
      server: serverName,
      method: '',
      host: '',
      path: '',
      status: 400,
      outcome: 'refused',
      code: 'CX_HTTP_MALFORMED',
      timings: { totalMs: 0 },
      ...(socket.remoteAddress === undefined ? {} : { clientAddress: socket.remoteAddress }),
    });
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    // A deep accept queue: thousands of phones reconnect at once after a network blip (Node's default is
    // 511; the kernel caps it at net.core.somaxconn).
    front.listen({ port: options.port, host: options.host, backlog: 4096 }, () => {
      front.off('error', reject);
      resolve();
    });
  });
  const port = (front.address() as AddressInfo).port;
  return {
    name: options.name,
    port,
    scheme: tlsEntries && tlsEntries.length > 0 ? 'https' : 'http',
    server,
    close: (graceMs = 5_000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        front.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
        if (graceMs === 0) server.closeAllConnections();
      }),
  };
}

/** The methods of Outlook Anywhere's two channels (MS-RPCH), which Node's parser does not know. */
const rpcMethods = ['RPC_IN_DATA', 'RPC_OUT_DATA'] as const;

/** The header that carries an RPC method past Node's parser; believed only on sockets marked below. */
const methodHeader = 'x-coexist-method';

/** Sockets whose first request line this listener rewrote. */
const rewritten = new WeakSet<object>();

/** The longest first line looked at before giving up and letting the parser decide. */
const maxSniff = 16 * 1024;

/**
 * Read the start of a connection; when its first request uses an RPC method, rewrite the request line to
 * `POST` with the real method in a header, then put the bytes back and hand the socket on. Each RPC
 * channel is one long request on a connection of its own (MS-RPCH §2.1.2.1: IN and OUT channels are
 * separate HTTP requests, each with a large Content-Length), so the first line of a connection is the one
 * that matters; an RPC method later on a kept-alive connection gets Node's 400.
 */
export function sniffRequestLine(socket: Socket, ready: () => void): void {
  let seen: Buffer | undefined;
  const onData = (chunk: Buffer): void => {
    seen = seen ? Buffer.concat([seen, chunk]) : chunk;
    const out = rewriteRpcLine(seen);
    if (out === undefined && seen.length < maxSniff) return;
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    if (out !== undefined && out !== seen) rewritten.add(socket);
    socket.unshift(out ?? seen);
    ready();
    process.nextTick(() => socket.resume());
  };
  const onEnd = (): void => {
    socket.off('data', onData);
    socket.destroy();
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.on('error', () => socket.destroy());
}

/** The bytes to parse: rewritten when the first line uses an RPC method; undefined when more are needed. */
export function rewriteRpcLine(bytes: Buffer): Buffer | undefined {
  const head = bytes.subarray(0, 13).toString('latin1');
  const candidate = rpcMethods.find((m) => (m + ' ').startsWith(head) || head.startsWith(m + ' '));
  if (candidate === undefined) return bytes;
  const eol = bytes.indexOf('\r\n');
  if (eol < 0) return undefined;
  const line = bytes.subarray(0, eol).toString('latin1');
  const method = rpcMethods.find((m) => line.startsWith(m + ' '));
  if (method === undefined) return bytes;
  const rest = line.slice(method.length);
  return Buffer.concat([
    Buffer.from(`POST${rest}\r\n${methodHeader}: ${method}`, 'latin1'),
    bytes.subarray(eol),
  ]);
}

/** Give a request back the RPC method its line was rewritten from (see `sniffRequestLine`). */
export function restoreMethod(req: IncomingMessage): void {
  const method = req.headers['x-coexist-method'];
  if (method === undefined) return;
  delete req.headers['x-coexist-method'];
  if (rewritten.has(req.socket) && (rpcMethods as readonly string[]).includes(String(method))) {
    req.method = String(method);
  }
}
