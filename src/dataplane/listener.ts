/**
 * HTTP(S) listeners: TLS with one certificate per namespace chosen by SNI; the edge's limits (edge-limits.ts,
 * docs/security.md "Limits and timeouts at the edge"): connections refused at accept over the caps, absolute
 * deadlines for the TLS handshake and the request head, a stalled body cut, heads too large refused with
 * 431; timeouts that let long polls live once a request is in (the request handler and undici enforce idle
 * limits per protocol, not Node's 300 s total); and a structured refusal for requests Node's parser rejects (e.g. `Content-Length` with `Transfer-Encoding`,
 * RFC 9112 §6.3), which never reach the pipeline or a back end.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureContext, Server as TlsServer, TLSSocket } from 'node:tls';
import { createSecureContext, createServer as createTlsServer } from 'node:tls';
import type { ErrorCode } from '../core/errors.ts';
import type { Logger } from '../observability/log.ts';
import { logAccess } from '../observability/log.ts';
import { clientAddressOf, declareClientAddress, readProxyHeader } from '../net/proxy-protocol.ts';
import { unmapIPv4 } from './peer-trust.ts';
import type { EdgeEvent, EdgeLimits } from './edge-limits.ts';
import { EdgeGate, edgeLimits } from './edge-limits.ts';

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
  /** The edge's limits (edge-limits.ts), when no `gate` brings them; the defaults for the rest. */
  readonly limits?: Partial<EdgeLimits>;
  /** The server's admission of connections and report of refusals, shared by its listeners; default one of its own. */
  readonly gate?: EdgeGate;
  /**
   * The estate's internal CA (PEM): ask every TLS client for a certificate, verified against this CA only
   * (never Node's bundle), without requiring one, so clients without a certificate still connect; the
   * pipeline believes a peer is a server only when its certificate verified (peer-trust.ts). Absent: none asked.
   */
  readonly clientCa?: string | readonly string[];
  /**
   * Layer-4 load balancers that open each connection with a PROXY protocol header (docs/deploy.md "The load
   * balancer"), by address: the client it names stands for the connection everywhere (limits, lockout,
   * internal or external, logs). A connection from one of them without a valid header is refused; from any
   * other address no header is looked for.
   */
  readonly proxyProtocolFrom?: ReadonlySet<string>;
  /**
   * Bind with SO_REUSEPORT (`serve --workers` on a runtime that has it, docs/operations.md "Workers"): each
   * worker its own listening socket on the same port, the kernel spreading connections over them.
   */
  readonly reusePort?: boolean;
}

/** A listening server. */
export interface Listening {
  readonly name: string;
  readonly port: number;
  readonly scheme: 'http' | 'https';
  readonly server: HttpServer;
  /**
   * Stop accepting, let requests in flight finish for `graceMs`, then cut what is left; resolves with how
   * many connections were cut.
   */
  close(graceMs?: number): Promise<number>;
  /**
   * Serve new TLS handshakes with these certificates (a reload, docs/operations.md "Reload"): connections
   * already open keep theirs. Throws, changing nothing, when a certificate and its key do not load.
   */
  setCertificates(entries: readonly CertificateEntry[]): void;
  /**
   * Start draining (docs/operations.md "Drain"): every answer from now on carries `Connection: close` (those
   * of requests in flight too, when not yet sent) and idle kept-alive connections are closed. The listener
   * still accepts until `close`.
   */
  drain(): void;
}

/**
 * The context for a server name: exact match, then `*.parent`, then undefined (the default certificate). With
 * `clientCa`, each context verifies client certificates against it (the context chosen by SNI is the one
 * OpenSSL verifies with, so every context carries the same CA, and only it).
 */
export function sniContexts(
  entries: readonly CertificateEntry[],
  clientCa?: string | readonly string[],
): (servername: string) => SecureContext | undefined {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  const ca = clientCa === undefined ? {} : { ca: typeof clientCa === 'string' ? clientCa : [...clientCa] };
  for (const e of entries) {
    const context = createSecureContext({ cert: e.certPem, key: e.keyPem, ...ca });
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
  const limits = options.gate?.limits ?? edgeLimits(options.limits);
  const gate = options.gate ?? new EdgeGate(limits, { logger, serverName });
  const listener = options.name;
  // Node's own head timer (`headersTimeout`, armed because this server listen()s) cuts the heads of the
  // later requests of a kept-alive connection, from their first byte; the first request's head, the RPC
  // sniffer included, is timed below from the end of the handshake. Long polls and RPC channels are not cut
  // by a total request time (`requestTimeout: 0`): once a request is in, each protocol's idle limit applies
  // upstream (forward.ts).
  const server: HttpServer = createHttpServer(
    {
      requestTimeout: 0,
      headersTimeout: limits.headTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headTimeoutMs / 4))),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
    },
    (req, res) => onRequest(req, res),
  );
  // One more than the limit, so that a request over it is seen (Node silently drops the fields past
  // `maxHeadersCount`) and refused.
  server.maxHeadersCount = limits.maxHeaderCount + 1;

  /** Node's own connection handler (below): the HTTP parser for a connection that is ready. */
  let httpConnection: (this: HttpServer, s: Socket) => void = () => undefined;
  /** Each connection's first-request head deadline, until that request is in. */
  const headTimers = new WeakMap<object, NodeJS.Timeout>();
  /** Connections handed to the HTTP parser (a 408 can be written on them). */
  const handed = new WeakSet<object>();
  /** The request in flight on a connection, and whether its body is timed (`bodyIdleTimeoutMs`). */
  const current = new WeakMap<object, { req: IncomingMessage; res: ServerResponse; bodyTimed: boolean }>();
  /** Every admitted connection, to cut what is left when the listener stops. */
  const open = new Set<Socket>();
  /** Answers not yet written, to mark with `Connection: close` when a drain starts. */
  const unanswered = new Set<ServerResponse>();
  let draining = false;

  const timeoutAnswer = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
  const cut = (socket: Socket, event: EdgeEvent, answer?: string): void => {
    gate.report(event, clientAddressOf(socket) ?? '', listener);
    if (answer !== undefined && socket.writable) socket.write(answer);
    socket.destroy();
  };

  // One function for every connection, not a closure each: it and the timer would otherwise stay alive as long
  // as the connection, a held long poll's too (docs/lab.md §4.2).
  const clearHeadTimer = function (this: Socket): void {
    clearTimeout(headTimers.get(this));
    headTimers.delete(this);
  };
  const ready = (socket: Socket): void => {
    const timer = setTimeout(() => cut(socket, 'head_timeout', timeoutAnswer), limits.headTimeoutMs);
    headTimers.set(socket, timer);
    socket.on('close', clearHeadTimer);
    sniffRequestLine(socket, () => {
      handed.add(socket);
      // An Outlook Anywhere connection: its later requests may use an RPC method too (an NTLM handshake's legs,
      // MS-RPCH's probes before the channel), rewritten between requests (`rewriteLaterRpcLines`).
      if (rewritten.has(socket))
        rewriteLaterRpcLines(
          socket,
          () => current.get(socket)?.req.complete ?? true,
          () => httpConnection.call(server, socket),
        );
      else httpConnection.call(server, socket);
    });
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    const timer = headTimers.get(socket);
    if (timer !== undefined) {
      clearTimeout(timer);
      headTimers.delete(socket);
      socket.off('close', clearHeadTimer);
    }
    if (req.rawHeaders.length > limits.maxHeaderCount * 2) {
      refuseHead(socket, req, res);
      return;
    }
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    const entry = { req, res, bodyTimed: false };
    current.set(socket, entry);
    // Draining: this answer ends its connection (the client's next request goes to another front end).
    if (draining) res.setHeader('connection', 'close');
    else unanswered.add(res);
    const done = (): void => {
      unanswered.delete(res);
      if (current.get(socket) === entry) current.delete(socket);
    };
    // `on`, not `once`, here and for every 'close' below: each is emitted once, and `once` adds a wrapper
    // closure per listener that lives as long as the request or connection (a held long poll's too).
    res.on('finish', done);
    res.on('close', done);
    handler(req, res);
    // The handler gave an Outlook Anywhere channel back its method (restoreMethod, synchronously): its body
    // is the channel itself, quiet for minutes between RPC PDUs, and the protocol's own idle limit applies.
    if (hasBody && !req.complete && !(req.method ?? '').startsWith('RPC_')) {
      entry.bodyTimed = true;
      socket.setTimeout(limits.bodyIdleTimeoutMs);
    }
  };

  const refuseHead = (socket: Socket, req: IncomingMessage, res: ServerResponse): void => {
    gate.report('headers_too_large', clientAddressOf(socket) ?? '', listener);
    logRefusal(socket, 431, 'CX_HTTP_HEADERS_TOO_LARGE', req);
    res.shouldKeepAlive = false;
    res.writeHead(431, { connection: 'close', 'content-length': '0' });
    res.end();
  };

  const logRefusal = (socket: Socket, status: number, code: ErrorCode, req?: IncomingMessage): void =>
    logAccess(logger, {
      reqId: randomUUID(),
      listener,
      server: serverName,
      method: req?.method ?? '',
      host: '',
      path: '',
      status,
      outcome: 'refused',
      code,
      timings: { totalMs: 0 },
      ...(clientAddressOf(socket) === undefined ? {} : { clientAddress: clientAddressOf(socket) }),
    });

  // A listener on the server's 'timeout' makes Node leave every socket timeout to it (node:http docs):
  // the keep-alive idle timeout ends the connection as Node would; a stalled body is cut; a timer left from
  // a body that has since arrived (a long poll now held) is cleared.
  server.on('timeout', (socket: Socket) => {
    const entry = current.get(socket);
    if (entry === undefined) {
      socket.destroy();
      return;
    }
    if (entry.bodyTimed && !entry.req.complete) {
      cut(socket, 'body_idle_timeout', entry.res.headersSent ? undefined : timeoutAnswer);
      return;
    }
    socket.setTimeout(0);
  });

  // This HTTP server listen()s itself, so Node arms its head timer and tracks its connections (graceful
  // close); its own connection handler is called only once a connection is admitted, its TLS handshake is
  // done and its first request line looked at (`sniffRequestLine`): Node's HTTP parser knows a fixed list of
  // methods and refuses Outlook Anywhere's RPC_IN_DATA and RPC_OUT_DATA (docs/protocols.md §4.7).
  const [nodeConnection] = server.listeners('connection') as ((this: HttpServer, s: Socket) => void)[];
  if (nodeConnection === undefined) throw new Error('node:http registered no connection handler');
  httpConnection = nodeConnection;
  server.removeAllListeners('connection');

  let tls: TlsServer | undefined;
  /** The certificate for a server name (SNI); replaced whole by `setCertificates`. */
  let pick: (servername: string) => SecureContext | undefined = () => undefined;
  /** Handshake deadlines by the peer's address and port (the raw and the TLS socket share them). */
  const handshakes = new Map<string, NodeJS.Timeout>();
  if (tlsEntries && tlsEntries.length > 0) {
    const first = tlsEntries[0] as CertificateEntry;
    const clientCa = options.clientCa;
    pick = sniContexts(tlsEntries, clientCa);
    tls = createTlsServer(
      {
        cert: first.certPem,
        key: first.keyPem,
        // Servers of the estate present a client certificate from the internal CA (docs/security.md "How
        // servers authenticate each other"); asked of everyone, required of no one: a client without one is
        // served as a client.
        ...(clientCa === undefined
          ? {}
          : {
              requestCert: true,
              rejectUnauthorized: false,
              ca: typeof clientCa === 'string' ? clientCa : [...clientCa],
            }),
        minVersion: 'TLSv1.2',
        ALPNProtocols: ['http/1.1'],
        SNICallback: (servername, cb) => cb(null, pick(servername)),
        handshakeTimeout: limits.tlsHandshakeTimeoutMs,
      },
      (socket: TLSSocket) => {
        const key = `${socket.remoteAddress}|${socket.remotePort}`;
        clearTimeout(handshakes.get(key));
        handshakes.delete(key);
        const client = proxied.get(key);
        if (client !== undefined) declareClientAddress(socket, client);
        // The peer's certificate, once checked, stands for the connection (peer-trust.ts): no renegotiation
        // may swap it (TLS 1.3 has none; this refuses TLS 1.2's).
        socket.disableRenegotiation();
        ready(socket);
      },
    );
    // A failed handshake (wrong SNI, a scanner) never reaches HTTP; nothing to answer.
    tls.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
  }

  /** The client a PROXY header named, by the raw socket's address and port, until its TLS socket exists. */
  const proxied = new Map<string, string>();
  const accept = (raw: Socket): void => {
    // Refused at accept, before any TLS or HTTP work: the cheapest answer to a flood (a closed socket).
    if (!gate.admit(raw, listener)) {
      raw.destroy();
      return;
    }
    open.add(raw);
    raw.on('close', () => open.delete(raw));
    raw.on('error', destroySelf);
    if (!tls) {
      ready(raw);
      return;
    }
    // Absolute: Node's own `handshakeTimeout` is an idle timer, which a ClientHello sent a byte at a time
    // keeps resetting.
    const key = `${raw.remoteAddress}|${raw.remotePort}`;
    const timer = setTimeout(() => cut(raw, 'tls_handshake_timeout'), limits.tlsHandshakeTimeoutMs);
    handshakes.set(key, timer);
    const client = clientAddressOf(raw);
    if (client !== raw.remoteAddress && client !== undefined) proxied.set(key, client);
    raw.on('close', () => {
      clearTimeout(timer);
      if (handshakes.get(key) === timer) handshakes.delete(key);
      proxied.delete(key);
    });
    tls.emit('connection', raw);
  };

  server.on('connection', (raw: Socket) => {
    const senders = options.proxyProtocolFrom;
    if (senders === undefined || !senders.has(unmapIPv4(raw.remoteAddress ?? ''))) {
      accept(raw);
      return;
    }
    // A layer-4 balancer: its header first, within the handshake's deadline, then the connection as the
    // client it names (src/net/proxy-protocol.ts).
    raw.on('error', () => raw.destroy());
    readProxyHeader(raw, limits.tlsHandshakeTimeoutMs).then(
      (peer) => {
        if (raw.destroyed) return;
        if (peer.address !== undefined) declareClientAddress(raw, peer.address);
        accept(raw);
      },
      () => cut(raw, 'proxy_header_invalid'),
    );
  });

  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    // Parser errors and TLS-less junk: a 400 and one structured line, never a stack trace.
    // A client that hung up mid-request (EOF inside a body) saw nothing: no 400 and no line claiming a
    // malformed request; the request's own line already says client_aborted (docs/security.md "Trust per request").
    if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || !socket.writable) {
      socket.destroy();
      return;
    }
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      cut(socket, 'head_timeout', timeoutAnswer);
      return;
    }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      gate.report('headers_too_large', clientAddressOf(socket) ?? '', listener);
      logRefusal(socket, 431, 'CX_HTTP_HEADERS_TOO_LARGE');
      socket.end(
        'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    logRefusal(socket, 400, 'CX_HTTP_MALFORMED');
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A deep accept queue: thousands of phones reconnect at once after a network blip (Node's default is
    // 511; the kernel caps it at net.core.somaxconn).
    // `reusePort` is Node 22.12's; @types/node 20 does not know it yet.
    const reuse = options.reusePort ? ({ reusePort: true } as object) : {};
    server.listen({ port: options.port, host: options.host, backlog: 4096, ...reuse }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<number> | undefined;
  /** Connections cut when closing: those still open at the grace's end. */
  let cutCount = 0;
  const cutAll = (): void => {
    cutCount += open.size;
    server.closeAllConnections();
    for (const s of open) s.destroy();
  };
  return {
    name: options.name,
    port,
    scheme: tls ? 'https' : 'http',
    server,
    setCertificates(entries) {
      const [head] = entries;
      if (!tls || head === undefined)
        throw new Error(`listener ${listener}: no TLS to reload certificates into`);
      const clientCa = options.clientCa;
      const ca =
        clientCa === undefined ? {} : { ca: typeof clientCa === 'string' ? clientCa : [...clientCa] };
      // Every context is built before anything is swapped: a bad pair throws and the listener keeps its own.
      const next = sniContexts(entries, clientCa);
      tls.setSecureContext({ cert: head.certPem, key: head.keyPem, ...ca });
      pick = next;
    },
    drain() {
      draining = true;
      for (const res of unanswered) if (!res.headersSent) res.setHeader('connection', 'close');
      unanswered.clear();
      server.closeIdleConnections();
    },
    close(graceMs = 5_000) {
      // Closing already (a drain waiting for requests in flight): close(0) cuts what is left now.
      if (closing !== undefined) {
        if (graceMs === 0) cutAll();
        return closing;
      }
      closing = new Promise<number>((resolve) => {
        const timer = setTimeout(cutAll, graceMs);
        timer.unref();
        // Stops accepting and closes the idle kept-alive connections; resolves once every connection is gone.
        server.close(() => {
          clearTimeout(timer);
          if (options.gate === undefined) gate.close();
          resolve(cutCount);
        });
        if (graceMs === 0) cutAll();
      });
      return closing;
    },
  };
}

/** The methods of Outlook Anywhere's two channels (MS-RPCH), which Node's parser does not know. */
const rpcMethods = ['RPC_IN_DATA', 'RPC_OUT_DATA'] as const;

/**
 * The header that carries an RPC method past Node's parser; believed only on the one request the listener
 * rewrote (docs/security.md "Trust per request"), stripped from every request.
 */
const methodHeader = 'x-coexist-method';

/**
 * Sockets whose first request line this listener rewrote and whose first request has not been handled yet:
 * `restoreMethod` takes the mark off with that request, so no later request on the kept-alive connection
 * can claim it.
 */
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
    seen = undefined;
    ready();
    process.nextTick(() => socket.resume());
  };
  const onEnd = (): void => {
    socket.off('data', onData);
    socket.destroy();
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
  // Not a closure: one here would keep this function's scope (the first bytes read, both listeners) alive
  // as long as the connection.
  socket.on('error', destroySelf);
}

/**
 * Hand an Outlook Anywhere connection (its first request used an RPC method) to Node's HTTP server (`connect`)
 * so that its later request lines are rewritten as the first was: the handshake of NTLM or Negotiate
 * authenticates the channel's connection with requests of the RPC method before the channel itself (MS-RPCH
 * §3.2.2.5.1, docs/auth.md), each a request on the same kept-alive connection. Node's server reads a socket
 * natively when it can; this connection's bytes go through its 'data' listener instead (`_consumed` tells Node
 * the native stream is taken), and a chunk is rewritten only when it starts a request, between requests
 * (`between`: no request of the connection is still being read). The marker is believed only on the request
 * rewritten (`restoreMethod`), as for the first. Other connections keep Node's native reading.
 */
export function rewriteLaterRpcLines(socket: Socket, between: () => boolean, connect: () => void): void {
  const handle = (socket as Socket & { _handle?: { _consumed?: boolean } })._handle;
  if (handle) handle._consumed = true;
  connect();
  const [parse] = socket.listeners('data') as ((this: Socket, chunk: Buffer) => void)[];
  if (parse === undefined) return;
  socket.removeListener('data', parse);
  let held: Buffer | undefined;
  socket.on('data', function (this: Socket, chunk: Buffer) {
    if (held === undefined && !between()) {
      parse.call(this, chunk);
      return;
    }
    const bytes = held === undefined ? chunk : Buffer.concat([held, chunk]);
    const out = rewriteRpcLine(bytes);
    if (out === undefined && bytes.length < maxSniff) {
      held = bytes;
      return;
    }
    held = undefined;
    if (out !== undefined && out !== bytes) rewritten.add(this);
    parse.call(this, out ?? bytes);
  });
}

/** An 'error' listener that destroys the socket it is called on. */
function destroySelf(this: Socket): void {
  this.destroy();
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

/**
 * Give a request back the RPC method its line was rewritten from (see `sniffRequestLine`), and strip the
 * marker from every request. Trust is per request, not per socket (docs/security.md "Trust per request"):
 * only the first request of a rewritten connection is the rewritten one (Node hands requests over in the
 * order they arrive, and the handler calls this first, synchronously), and in it the marker is the first
 * raw header, where `rewriteRpcLine` put it, before anything the client wrote.
 */
export function restoreMethod(req: IncomingMessage): void {
  const first = rewritten.delete(req.socket);
  if (req.headers['x-coexist-method'] === undefined) return;
  delete req.headers['x-coexist-method'];
  const raw = req.rawHeaders;
  const marked = first && req.method === 'POST' && raw[0]?.toLowerCase() === methodHeader;
  const method = marked ? raw[1] : undefined;
  if (method !== undefined && (rpcMethods as readonly string[]).includes(method)) req.method = method;
}
