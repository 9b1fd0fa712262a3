/**
 * Stream one request to the next hop through that origin's pool and stream the answer back, neither body
 * buffered (docs/protocols.md §4.7: Outlook Anywhere declares 1 GiB bodies). Credentials pass through; the
 * header rules are `headers.ts`, the failure mapping is `upstream-errors.ts`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientAddressOf } from '../net/proxy-protocol.ts';
import { ClientGone } from './body.ts';
import { EventEmitter } from 'node:events';
import type { Client, Dispatcher } from 'undici';
import { errors } from 'undici';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { OutgoingHeaders } from './headers.ts';
import { forwardRequestHeaders, headerNames, responseHeaders } from './headers.ts';
import type { PeerTrust } from './peer-trust.ts';
import type { UpstreamFailure, UpstreamOutcome } from './upstream-errors.ts';
import { classifyUpstreamError, failureResponse, retryable } from './upstream-errors.ts';
import type { Upstreams } from './upstreams.ts';

/** Long polls: ActiveSync Ping/Sync heartbeats up to 3540 s (docs/protocols.md §4.1) plus a minute's margin. */
const longPollMs = (3600 + 60) * 1000;

/**
 * Idle timeouts per protocol, in ms: the longest the next hop may stay silent, both before its response
 * headers (undici `headersTimeout`, refreshed while the request body is still being sent) and between body
 * chunks (`bodyTimeout`). Outlook Anywhere and MAPI/HTTP hold channels and NotificationWait requests open
 * as long as ActiveSync does (§4.7, §4.8).
 */
export const idleTimeoutMs: Readonly<Record<Protocol, number>> = {
  activesync: longPollMs,
  rpc: longPollMs,
  mapi: longPollMs,
  autodiscover: 120_000,
  ews: 120_000,
  owa: 120_000,
  ecp: 120_000,
  oab: 120_000,
};

/** Where to send the request: the first hop of a `proxy` decision. */
export interface ForwardTarget {
  /** The full URL to request at the next hop: origin, path and query. */
  readonly url: string;
  readonly protocol: Protocol;
  /** This server's name in the estate: `X-Coexist-Hops`, `X-FEServer`. */
  readonly serverName: string;
  /** The back-end FQDN this server computed: `X-CalculatedBETarget`. */
  readonly backendTarget?: string;
  /** The estate name of the next hop: ends `X-Coexist-Path` when its answer does not carry one. */
  readonly nextServer?: string;
  /** False: one connection for this request only (a next hop that closes after each answer unannounced). */
  readonly keepAlive?: boolean;
  /** The request body, when the pipeline had to read it to find the user (Autodiscover, OWA logon). */
  readonly body?: Uint8Array;
  /**
   * The client connection's own connection to this origin (Windows authentication, windows-auth.ts): used
   * instead of the pool or an RPC channel, kept alive, and never retried on another connection.
   */
  readonly pinned?: Dispatcher;
  /**
   * The caller this server verified with Windows authentication, handed to the store it passes the request to
   * (`X-Coexist-Caller`, believed only from a proven server: windows-auth.ts); the client's `Authorization`,
   * bound to this connection, does not go along.
   */
  readonly caller?: string;
}

/** What `forward` needs from the listener and the process. */
export interface ForwardOptions {
  readonly upstreams: Upstreams;
  readonly requestId: string;
  /** The scheme the client used to reach this listener. */
  readonly scheme: 'http' | 'https';
  /** The port of the listener that accepted the request. */
  readonly listenerPort: number;
  /** Who the peer proved to be (peer-trust.ts): which of its forwarding headers are believed; absent, a client. */
  readonly peer?: PeerTrust;
  /** Per-protocol replacements for `idleTimeoutMs` (tests, config). */
  readonly idleTimeoutsMs?: Readonly<Partial<Record<Protocol, number>>>;
  /** `Retry-After` of a 503 to ActiveSync devices; default 30 s. */
  readonly retryAfterSeconds?: number;
  /**
   * Emitting `abort` cancels the exchange with the next hop: a held Ping the drain has answered here
   * (drain.ts). Default: one of its own.
   */
  readonly cancel?: EventEmitter;
}

/** The access log's outcomes of a forwarded request. */
export type ForwardOutcome = 'proxied' | UpstreamOutcome;

/** What happened, for the access log. */
export interface ForwardResult {
  readonly outcome: ForwardOutcome;
  /** The status sent to the client; absent when no response head was sent. */
  readonly status?: number;
  /** The status the next hop answered; absent when it never answered. */
  readonly upstreamStatus?: number;
  /** Request body bytes read from the client. */
  readonly bytesIn: number;
  /** Response body bytes received from the next hop. */
  readonly bytesOut: number;
  /** Why it failed; absent when proxied. */
  readonly failure?: UpstreamFailure;
  /** Why a first attempt failed, when the request was sent a second time. */
  readonly retried?: UpstreamFailure;
}

/**
 * Forward `req` to `target` and answer `res` with what the next hop answers. Never rejects: failures
 * become a response (when no head was sent yet), a destroyed client socket otherwise, and an outcome.
 */
export async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  target: ForwardTarget,
  options: ForwardOptions,
): Promise<ForwardResult> {
  let bytesIn = 0;
  let bytesOut = 0;
  let upstreamStatus: number | undefined;
  let clientAborted = false;
  let channel: Client | undefined;
  let retried: UpstreamFailure | undefined;
  // undici takes an EventEmitter that emits 'abort' as the signal: far cheaper per request than an
  // AbortController (whose AbortSignal and DOMException showed in the profile; proxy-anchors.md measured
  // about 20% of throughput for it).
  const cancel = options.cancel ?? new EventEmitter();
  // The client hung up before the answer was complete: cancel the upstream request (Caddy's 499).
  const onClose = (): void => {
    if (res.writableFinished) return;
    // A request body destroyed with an error other than Node's client-abort mark was destroyed by undici
    // (an upstream failure mid-upload): the close that follows is the upstream's doing, not the client's.
    if (req.errored !== null && !isClientAbort(req.errored)) return;
    clientAborted = true;
    cancel.emit('abort');
  };
  // `on`: 'close' is emitted once; `once` would add a wrapper closure held for the whole request.
  res.on('close', onClose);

  try {
    const url = new URL(target.url);
    const method = req.method ?? 'GET';
    if (target.pinned === undefined && (method === 'RPC_IN_DATA' || method === 'RPC_OUT_DATA'))
      channel = options.upstreams.channel(url.origin);
    const pool = target.pinned ?? channel ?? options.upstreams.pool(url.origin);
    const headers = forwardRequestHeaders(req.headers, {
      peerAddress: clientAddressOf(req.socket),
      ...(options.peer === undefined ? {} : { peer: options.peer }),
      scheme: options.scheme,
      listenerPort: options.listenerPort,
      upstreamHost: url.host,
      serverName: target.serverName,
      requestId: options.requestId,
    });
    if (target.caller !== undefined) {
      delete headers['authorization'];
      headers[headerNames.caller] = target.caller;
    }
    const idle = options.idleTimeoutsMs?.[target.protocol] ?? idleTimeoutMs[target.protocol];

    const length = req.headers['content-length'];
    let buffered = target.body;
    // The client's own body, read here only to hold less: still not sent a second time (below).
    const readHere = buffered === undefined && channel === undefined && isSmallBody(req);
    if (readHere) {
      try {
        buffered = await readSmallBody(req);
      } catch (err) {
        clientAborted = true;
        throw err;
      }
    }
    const hasBody =
      buffered === undefined &&
      (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0'));
    if (buffered !== undefined) {
      bytesIn = buffered.length;
      // Re-framed with the length now known (the client may have sent it chunked).
      delete headers['transfer-encoding'];
      headers['content-length'] = String(buffered.length);
    } else if (hasBody) {
      // Paused explicitly, so this listener does not start the flow: undici resumes the stream when the
      // socket is ready and pauses it on backpressure; both listeners see every chunk.
      req.pause();
      req.on('data', (chunk: Buffer) => {
        bytesIn += chunk.length;
      });
    }

    const request: Dispatcher.DispatchOptions = {
      path: url.pathname + url.search,
      method,
      headers,
      body: buffered ?? (hasBody ? req : null),
      headersTimeout: idle,
      bodyTimeout: idle,
      // `Connection: close` and no reuse: a pooled socket the server has silently closed would fail the
      // next request (docs/lab.md §3.4: SOGo fails every second request on a kept-alive connection); and an
      // Outlook Anywhere channel is the one request of its connection (MS-RPCH), which the next hop may close
      // as soon as it has answered.
      ...(target.keepAlive === false || channel !== undefined ? { reset: true } : {}),
    };
    const answer = (status: number, upstreamHeaders: IncomingHttpHeaders): OutgoingHeaders =>
      noStoreOwa(
        target.protocol,
        responseHeaders(upstreamHeaders, {
          requestId: options.requestId,
          serverName: target.serverName,
          ...(target.backendTarget === undefined ? {} : { backendTarget: target.backendTarget }),
          ...(target.nextServer === undefined ? {} : { nextServer: target.nextServer }),
          upstreamStatus: status,
        }),
        res,
      );
    const progress: RelayProgress = { bytesOut: 0 };
    try {
      try {
        await relay(pool, request, res, cancel, answer, progress);
      } catch (err) {
        // Once more, only when the request never reached the hop (or a bodiless safe request met a stale
        // keep-alive socket) and its body, if any, is still whole in memory (Caddy's tryAgain).
        const first = classifyUpstreamError(err, { clientAborted });
        if (
          progress.status !== undefined ||
          clientAborted ||
          target.pinned !== undefined ||
          hasBody ||
          readHere ||
          !retryable(first, method)
        )
          throw err;
        retried = first;
        await relay(pool, request, res, cancel, answer, progress);
      }
    } finally {
      upstreamStatus = progress.status;
      bytesOut = progress.bytesOut;
    }
    return {
      outcome: 'proxied',
      status: progress.status as number,
      upstreamStatus: progress.status as number,
      bytesIn,
      bytesOut,
      ...(retried === undefined ? {} : { retried }),
    };
  } catch (err) {
    const failure = classifyUpstreamError(err, {
      clientAborted: clientAborted || isClientAbort(req.errored),
    });
    const base = {
      outcome: failure.outcome,
      ...(retried === undefined ? {} : { retried }),
      ...(upstreamStatus === undefined ? {} : { upstreamStatus }),
      bytesIn,
      bytesOut,
      failure,
    };
    if (res.headersSent || res.destroyed) {
      // Part of an answer is on the wire (or the socket is gone): only a broken connection tells the
      // client the answer is incomplete.
      res.destroy();
      return res.headersSent ? { ...base, status: res.statusCode } : base;
    }
    const answer = failureResponse(
      failure,
      target.protocol,
      options.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: options.retryAfterSeconds },
    );
    if (answer === null) {
      res.destroy();
      return base;
    }
    const headers = {
      ...answer.headers,
      ...responseHeaders({}, { requestId: options.requestId, serverName: target.serverName }),
    };
    // An unread upload (up to 1 GiB for RPC_IN_DATA, §4.7) is not drained to keep the connection: close it.
    if (!req.complete) headers['connection'] = 'close';
    res.writeHead(answer.status, headers);
    res.end(answer.body);
    return { ...base, status: answer.status };
  } finally {
    res.off('close', onClose);
    // A channel's connection ends with it (Upstreams.channel).
    if (channel) options.upstreams.endChannel(channel);
  }
}

/**
 * Request bodies of at most this many bytes, declared by `Content-Length`, are read before the exchange and
 * sent as one buffer. A streamed body costs, for as long as the request is held, undici's body writer (with
 * the whole request head as a string) and its listeners on the request, which undici removes only when the
 * request closes: about 2 KB per held ActiveSync Ping, whose body is a few dozen bytes (docs/lab.md
 * §4.2). Larger bodies, and bodies of unknown length, stream as before.
 */
export const smallBodyBytes = 16 * 1024;

/** A body with a declared length of 1 to `smallBodyBytes` bytes, not yet read (Node checked the header). */
function isSmallBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined || req.readableEnded) return false;
  const declared = Number(req.headers['content-length']);
  return declared > 0 && declared <= smallBodyBytes;
}

/**
 * Read a small body whole; rejects when the client goes away first. Its listeners go with it, so nothing of
 * the read stays on the request while it is held.
 */
function readSmallBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onGone = (): void => {
      stop();
      reject(new ClientGone());
    };
    const stop = (): void => {
      req.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onGone);
    };
    req.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onGone);
  });
}

/** Response headers as undici's dispatcher hands them over (lower-case names). */
type IncomingHttpHeaders = Record<string, string | string[] | undefined>;

/** What a relay has done so far: the next hop's status once its head arrived, and body bytes passed on. */
interface RelayProgress {
  status?: number;
  bytesOut: number;
}

/**
 * One exchange with the next hop through undici's dispatcher, the answer written straight into `res`: no
 * intermediate stream, promise pipeline or AbortSignal per request (each showed in the profile; the
 * handler API is what proxy-anchors.md measured fastest). Backpressure: the upstream parser is paused
 * while `res` is over its high-water mark. Resolves when the answer is handed to `res` in full; rejects
 * with undici's or the client's error otherwise. `cancel` emitting 'abort' cancels the exchange.
 */
function relay(
  dispatcher: Dispatcher,
  request: Dispatcher.DispatchOptions,
  res: ServerResponse,
  cancel: EventEmitter,
  answer: (status: number, headers: IncomingHttpHeaders) => OutgoingHeaders,
  progress: RelayProgress,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let cancelled = false;
    let settled = false;
    const onCancel = (): void => {
      cancelled = true;
      controller?.abort(new errors.RequestAbortedError());
    };
    const onDrain = (): void => controller?.resume();
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      cancel.off('abort', onCancel);
      res.off('drain', onDrain);
      if (err) reject(err);
      else resolve();
    };
    cancel.once('abort', onCancel);
    dispatcher.dispatch(request, {
      onRequestStart(c) {
        controller = c;
        if (cancelled) c.abort(new errors.RequestAbortedError());
      },
      onResponseStart(c, statusCode, headers) {
        // Interim answers (102, 103) are not passed on; 100 Continue never reaches here (undici).
        if (statusCode < 200) return;
        progress.status = statusCode;
        try {
          res.writeHead(statusCode, answer(statusCode, headers));
        } catch (err) {
          // A header value Node refuses to send (ERR_INVALID_CHAR): the answer cannot be passed on.
          c.abort(err as Error);
          return;
        }
        res.on('drain', onDrain);
        controller = c;
      },
      onResponseData(c, chunk) {
        progress.bytesOut += chunk.length;
        if (!res.write(chunk)) c.pause();
      },
      onResponseEnd() {
        res.end();
        settle();
      },
      onResponseError(_c, err) {
        settle(err);
      },
    });
  });
}

/** Node's mark on a request whose client closed the connection before the body ended. */
function isClientAbort(e: (Error & { code?: unknown }) | null): boolean {
  return e !== null && e.code === 'ECONNRESET' && e.message === 'aborted';
}

/**
 * OWA and ECP answers passed through are a user's mail and settings: `Cache-Control: no-store`, so a browser
 * keeps no copy for Back to show after logoff, whatever the next hop said (Exchange sends `private`). Only
 * an answer the next hop marks `public` (a static resource, the same for everyone) keeps its own
 * (docs/security.md "OWA in the browser").
 */
function noStoreOwa(protocol: Protocol, headers: OutgoingHeaders, res: ServerResponse): OutgoingHeaders {
  if (protocol !== 'owa' && protocol !== 'ecp') return headers;
  // A session cookie re-sealed for this answer (owa-logon.ts presentSession) goes along with the next hop's
  // own cookies: writeHead would otherwise replace it with theirs.
  const own = res.getHeader('set-cookie');
  const theirs = headers['set-cookie'];
  if (own !== undefined && theirs !== undefined)
    headers['set-cookie'] = [...[theirs].flat().map(String), ...[own].flat().map(String)];
  const given = headers['cache-control'];
  const text = Array.isArray(given) ? given.join(',') : (given ?? '');
  if (!/(?:^|,)\s*public\s*(?:,|$)/i.test(text)) headers['cache-control'] = 'no-store';
  return headers;
}
