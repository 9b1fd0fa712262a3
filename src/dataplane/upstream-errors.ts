/**
 * The one place upstream failures are mapped (Caddy's `statusError`, Envoy's response flags): an error
 * thrown while talking to the next hop becomes an outcome for the access log, a catalogue code, whether the
 * request reached the hop, and the answer for the client. Errors are recognised by their `code` property
 * (undici's `UND_ERR_*`, Node's system errors), so this module does not import undici.
 */
import { Buffer } from 'node:buffer';
import type { ErrorCode } from '../core/errors.ts';
import { catalogue, statusOf } from '../core/errors.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { OutgoingHeaders } from './headers.ts';

/** The upstream part of the access log's closed `outcome` set (architecture.md "Error modeling"). */
export const upstreamOutcomes = [
  'upstream_timeout',
  'upstream_unreachable',
  'client_aborted',
  'upstream_error',
] as const;
export type UpstreamOutcome = (typeof upstreamOutcomes)[number];

export type UpstreamCode = Extract<ErrorCode, `CX_UPSTREAM_${string}`>;

/** What went wrong with the next hop. */
export interface UpstreamFailure {
  readonly outcome: UpstreamOutcome;
  /**
   * False only when the request cannot have reached the hop (it failed while connecting, or was refused
   * before dispatch): the one case where a POST may be sent again.
   */
  readonly reachedUpstream: boolean;
  readonly code: UpstreamCode;
  /** The undici or system error code that decided it (`ECONNREFUSED`), for the log; absent when none. */
  readonly errorCode?: string;
}

/** A complete answer for the client: status, headers and an optional text body. */
export interface FailureResponse {
  readonly status: number;
  readonly headers: OutgoingHeaders;
  readonly body?: string;
}

type Mapping = Omit<UpstreamFailure, 'errorCode'>;

const notReached = (code: UpstreamCode): Mapping => ({
  outcome: 'upstream_unreachable',
  reachedUpstream: false,
  code,
});
const timedOut = (code: UpstreamCode): Mapping => ({
  outcome: 'upstream_timeout',
  reachedUpstream: true,
  code,
});
const failed = (code: UpstreamCode, reachedUpstream = true): Mapping => ({
  outcome: 'upstream_error',
  reachedUpstream,
  code,
});
const aborted: Mapping = {
  outcome: 'client_aborted',
  reachedUpstream: true,
  code: 'CX_UPSTREAM_CLIENT_ABORTED',
};
const unknown: Mapping = failed('CX_UPSTREAM_ERROR');

/**
 * Error `code` -> mapping. Connect-phase errors (refused, unreachable, DNS, TLS, no local sockets, a pool
 * closed before dispatch) never reached the hop. Everything raised on an open connection may have: undici
 * reports a reset of a pooled socket as the raw ECONNRESET or as UND_ERR_SOCKET ("other side closed")
 * whether or not the request was written, so those count as reached.
 */
const byCode: ReadonlyMap<string, Mapping> = new Map<string, Mapping>([
  // Connecting (undici ConnectTimeoutError; Node system errors from net.connect / dns.lookup)
  ['ECONNREFUSED', notReached('CX_UPSTREAM_CONNECT_REFUSED')],
  ['UND_ERR_CONNECT_TIMEOUT', notReached('CX_UPSTREAM_CONNECT_TIMEOUT')],
  ['EHOSTUNREACH', notReached('CX_UPSTREAM_HOST_UNREACHABLE')],
  ['ENETUNREACH', notReached('CX_UPSTREAM_HOST_UNREACHABLE')],
  ['EHOSTDOWN', notReached('CX_UPSTREAM_HOST_UNREACHABLE')],
  ['ENETDOWN', notReached('CX_UPSTREAM_HOST_UNREACHABLE')],
  ['ENOTFOUND', notReached('CX_UPSTREAM_DNS')],
  ['EAI_AGAIN', notReached('CX_UPSTREAM_DNS')],
  ['EAI_FAIL', notReached('CX_UPSTREAM_DNS')],
  ['EAI_NODATA', notReached('CX_UPSTREAM_DNS')],
  ['EAI_NONAME', notReached('CX_UPSTREAM_DNS')],
  ['EMFILE', notReached('CX_UPSTREAM_LOCAL_EXHAUSTED')],
  ['ENFILE', notReached('CX_UPSTREAM_LOCAL_EXHAUSTED')],
  ['EADDRNOTAVAIL', notReached('CX_UPSTREAM_LOCAL_EXHAUSTED')],
  ['ENOBUFS', notReached('CX_UPSTREAM_LOCAL_EXHAUSTED')],
  ['EPROTO', notReached('CX_UPSTREAM_TLS')],
  // undici ClientClosedError: the pool was closed, the request was never dispatched.
  ['UND_ERR_CLOSED', notReached('CX_UPSTREAM_POOL_CLOSED')],
  // undici ClientDestroyedError: destroyed, possibly with the request in flight.
  ['UND_ERR_DESTROYED', failed('CX_UPSTREAM_POOL_CLOSED')],
  // Waiting for the answer
  ['UND_ERR_HEADERS_TIMEOUT', timedOut('CX_UPSTREAM_HEADERS_TIMEOUT')],
  ['UND_ERR_BODY_TIMEOUT', timedOut('CX_UPSTREAM_BODY_TIMEOUT')],
  ['ETIMEDOUT', timedOut('CX_UPSTREAM_TIMEOUT')],
  // On an open connection
  ['ECONNRESET', failed('CX_UPSTREAM_CONNECTION_RESET')],
  ['EPIPE', failed('CX_UPSTREAM_CONNECTION_RESET')],
  ['ECONNABORTED', failed('CX_UPSTREAM_CONNECTION_RESET')],
  ['UND_ERR_SOCKET', failed('CX_UPSTREAM_CONNECTION_RESET')],
  ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', failed('CX_UPSTREAM_PROTOCOL')],
  ['UND_ERR_HEADERS_OVERFLOW', failed('CX_UPSTREAM_PROTOCOL')],
  ['UND_ERR_RES_EXCEEDED_MAX_SIZE', failed('CX_UPSTREAM_PROTOCOL')],
  ['UND_ERR_INFO', failed('CX_UPSTREAM_PROTOCOL')],
  ['UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', failed('CX_UPSTREAM_REQUEST_BODY')],
  // Refused by the client library before dispatch: our bug, and sending again will not help.
  ['UND_ERR_INVALID_ARG', failed('CX_UPSTREAM_REQUEST_REJECTED', false)],
  ['UND_ERR_NOT_SUPPORTED', failed('CX_UPSTREAM_REQUEST_REJECTED', false)],
  ['UND_ERR_INVALID_RETURN_VALUE', failed('CX_UPSTREAM_REQUEST_REJECTED', false)],
  ['ERR_INVALID_HTTP_TOKEN', failed('CX_UPSTREAM_REQUEST_REJECTED', false)],
  ['ERR_INVALID_CHAR', failed('CX_UPSTREAM_REQUEST_REJECTED', false)],
  // Aborted: the data plane aborts the upstream request only when the client hangs up.
  ['UND_ERR_ABORTED', aborted],
  ['UND_ERR_ABORT', aborted],
  ['ABORT_ERR', aborted],
]);

/** OpenSSL certificate verification codes Node reports as `code` (tls.TLSSocket#authorizationError). */
const tlsVerifyCodes: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
]);
const tlsFailure = notReached('CX_UPSTREAM_TLS');

function mappingOf(code: string): Mapping | undefined {
  const m = byCode.get(code);
  if (m) return m;
  if (code.startsWith('HPE_')) return failed('CX_UPSTREAM_PROTOCOL'); // llhttp parse error (undici HTTPParserError)
  if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || tlsVerifyCodes.has(code))
    return tlsFailure;
  return undefined;
}

interface ErrorLike {
  readonly code?: unknown;
  readonly name?: unknown;
  readonly cause?: unknown;
  readonly errors?: unknown;
}

/**
 * Map an error from the upstream request to a failure. `clientAborted`: the client's connection closed
 * before the answer was complete, which decides the outcome whatever the error says (Caddy's 499). Looks
 * through `cause` (fetch's `TypeError: fetch failed`) and Node's AggregateError of happy-eyeballs attempts,
 * whose ETIMEDOUT is a connect timeout. Never throws.
 */
export function classifyUpstreamError(
  err: unknown,
  options: { readonly clientAborted?: boolean } = {},
): UpstreamFailure {
  const found = find(err);
  if (options.clientAborted) return withCode(aborted, found?.errorCode);
  return found ?? unknown;
}

function find(err: unknown): UpstreamFailure | undefined {
  let e: unknown = err;
  let firstCode: string | undefined;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    const x = e as ErrorLike;
    const attempts = Array.isArray(x.errors) ? (x.errors as unknown[]) : undefined;
    let code = typeof x.code === 'string' ? x.code : undefined;
    if (code === undefined && attempts) code = attempts.map(codeOf).find((c) => c !== undefined);
    if (code !== undefined) {
      firstCode ??= code;
      // An AggregateError comes from net.connect trying each address: every attempt failed to connect.
      if (attempts && code === 'ETIMEDOUT') return withCode(notReached('CX_UPSTREAM_CONNECT_TIMEOUT'), code);
      const m = mappingOf(code);
      if (m) return withCode(m, code);
    }
    // DOMException from an AbortSignal: `code` is a number there, the name says what happened.
    if (x.name === 'AbortError') return withCode(aborted, code ?? 'AbortError');
    if (x.name === 'TimeoutError') return withCode(timedOut('CX_UPSTREAM_TIMEOUT'), code ?? 'TimeoutError');
    e = x.cause;
  }
  return firstCode === undefined ? undefined : withCode(unknown, firstCode);
}

function codeOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as ErrorLike).code;
  return typeof code === 'string' ? code : undefined;
}

function withCode(m: Mapping, errorCode: string | undefined): UpstreamFailure {
  return errorCode === undefined ? m : { ...m, errorCode };
}

/** What to send the client; null when the client is gone. Callers answer only if nothing was sent yet. */
export function failureResponse(
  failure: UpstreamFailure,
  protocol: Protocol,
  options: { readonly retryAfterSeconds?: number } = {},
): FailureResponse | null {
  if (failure.outcome === 'client_aborted') return null;
  // docs/protocols.md §4.1: ActiveSync devices get 503 + Retry-After when the next hop cannot be reached, and
  // back off instead of reporting a server error; other clients get the proxy's 502.
  const status =
    protocol === 'activesync' && failure.outcome === 'upstream_unreachable' ? 503 : statusOf(failure.code);
  const headers: OutgoingHeaders = { 'cache-control': 'no-store' };
  if (status === 503) headers['retry-after'] = String(options.retryAfterSeconds ?? 30);
  if (protocol === 'activesync') {
    // Exchange answers ActiveSync errors with an empty body (MS-ASHTTP examples, docs/protocols.md §4.1).
    headers['content-length'] = '0';
    return { status, headers };
  }
  const body = `${catalogue[failure.code].summary} (${failure.code})\n`;
  headers['content-type'] = 'text/plain; charset=utf-8';
  headers['content-length'] = String(Buffer.byteLength(body));
  return { status, headers, body };
}

const safeMethods: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * May the request be sent again (to the same hop or another)? Yes when it never reached the hop and the
 * hop, not the request, was the problem (Caddy's `tryAgain`): ActiveSync and EWS POSTs are not idempotent.
 * Once reached, only a bodiless safe method whose connection dropped (the stale keep-alive race; RFC 9110
 * §9.2.2), never after a timeout. The caller must also check nothing was sent to the client yet.
 */
export function retryable(failure: UpstreamFailure, method: string): boolean {
  if (!failure.reachedUpstream) return failure.outcome === 'upstream_unreachable';
  return failure.code === 'CX_UPSTREAM_CONNECTION_RESET' && safeMethods.has(method.toUpperCase());
}
