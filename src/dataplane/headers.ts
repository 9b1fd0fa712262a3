/**
 * Header rules of the proxy, as pure functions over plain header records (lower-case names, as Node's
 * `IncomingMessage.headers` and undici's response headers give them): what goes to the next hop, and what
 * goes back to the client. No I/O; one pass over the headers and one output object per call (hot path).
 */
import type { PeerTrust } from './peer-trust.ts';
import { unmapIPv4 } from './peer-trust.ts';

/** Headers as received: lower-case names; repeated headers as arrays or joined, as Node gives them. */
export type HeaderRecord = Readonly<Record<string, string | readonly string[] | undefined>>;

/** Headers to send: lower-case names, ready for undici's `headers` or `ServerResponse.writeHead`. */
export type OutgoingHeaders = Record<string, string | string[]>;

/** What `forwardRequestHeaders` needs to know about this hop. */
export interface ForwardContext {
  /** The TCP peer (`socket.remoteAddress`); undefined when the socket is already gone. */
  readonly peerAddress: string | undefined;
  /**
   * Who the peer proved to be (peer-trust.ts): `X-Forwarded-*` are believed from a server of the estate or a
   * listed load balancer, `X-Coexist-Hops` from a server only; absent, a client.
   */
  readonly peer?: PeerTrust;
  /** The scheme the client used to reach this listener. */
  readonly scheme: 'http' | 'https';
  /** The port of the listener that accepted the request. */
  readonly listenerPort: number;
  /** The next hop's authority, `host[:port]` as `new URL(url).host` gives it: the Host to send. */
  readonly upstreamHost: string;
  /** This server's name in the estate (`cas2013-ny`): appended to `X-Coexist-Hops`. */
  readonly serverName: string;
  /** This request's id: sent as `X-Coexist-Request-Id`, echoed to the client as `request-id`. */
  readonly requestId: string;
}

/** What `responseHeaders` adds: Exchange's front-end diagnostics (docs/protocols.md §4.10). */
export interface ResponseContext {
  readonly requestId: string;
  /** This front end's name: `X-FEServer`. */
  readonly serverName: string;
  /** The back-end FQDN this server computed: `X-CalculatedBETarget`; omitted when there is none. */
  readonly backendTarget?: string;
  /** The status the next hop answered: `X-BackEndHttpStatus`; omitted when it never answered. */
  readonly upstreamStatus?: number;
  /**
   * The estate name of the server that answered: the end of `X-Coexist-Path` when its answer names no
   * path itself (a server that is not coexist: an Exchange CAS, the lab's real ActiveSync server).
   */
  readonly nextServer?: string;
}

/** Names of the headers coexist sets (lower case, as on the wire in HTTP/2 and in Node's records). */
export const headerNames = {
  hops: 'x-coexist-hops',
  path: 'x-coexist-path',
  forwardRequestId: 'x-coexist-request-id',
  requestId: 'request-id',
  feServer: 'x-feserver',
  calculatedBeTarget: 'x-calculatedbetarget',
  backEndHttpStatus: 'x-backendhttpstatus',
  beServer: 'x-beserver',
  diagInfo: 'x-diaginfo',
  /** The caller a store hop's sender verified with Windows authentication (windows-auth.ts); server to server only. */
  caller: 'x-coexist-caller',
} as const;

/**
 * Hop-by-hop headers, never forwarded in either direction. RFC 9110 §7.6.1: Connection and every field it
 * names MUST be removed, and Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and Upgrade SHOULD be;
 * Proxy-Authenticate / Proxy-Authorization apply to one proxy only (RFC 9110 §11.7.1, §11.7.2); Trailer
 * announces this connection's trailers (RFC 9110 §6.6.2), so whoever sends trailers onward announces them.
 */
const hopByHop: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/**
 * Request headers a client must not be able to set (docs/protocols.md §4.10: what an Exchange front end refuses
 * to copy), plus the two a front end adds for its back end (`X-FE-ClientIP`, `X-MS-EdgeIP`), plus `Expect`:
 * Node's server has already answered `100-continue`, and undici refuses the header (NotSupportedError).
 * `X-Forwarded-*`, `Forwarded` and `X-Coexist-*` are handled apart: believed from trusted peers only.
 */
const refused: ReadonlySet<string> = new Set([
  'x-commonaccesstoken',
  'x-isfromcafe',
  'x-sourcecafeserver',
  'msexchproxyuri',
  'x-msexchangeactivityctx',
  'return-client-request-id',
  'x-fe-clientip',
  'x-ms-edgeip',
  'expect',
]);

const forwardedFromPeer: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'forwarded',
]);

/** The ones `responseHeaders` sets itself; an upstream's values are replaced by this front end's. */
const diagnostics: ReadonlySet<string> = new Set([
  headerNames.requestId,
  headerNames.feServer,
  headerNames.calculatedBeTarget,
  headerNames.backEndHttpStatus,
]);

/** The headers to send to the next hop for a request that arrived with `incoming` (see the module doc). */
export function forwardRequestHeaders(incoming: HeaderRecord, ctx: ForwardContext): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  const peer = ctx.peerAddress;
  const peerKind = ctx.peer?.kind ?? 'client';
  const trusted = peerKind !== 'client';
  const fromServer = peerKind === 'server';
  const named = connectionOptions(incoming['connection']);
  // RFC 9112 §6.3 (3): with Transfer-Encoding present, Content-Length is wrong or a smuggling attempt, and
  // an intermediary MUST remove it; the body is re-framed by the client library.
  const dropLength = incoming['transfer-encoding'] !== undefined;
  let forwardedFor: string | undefined;
  let hops: string | undefined;
  let teTrailers = false;

  for (const key in incoming) {
    if (!Object.hasOwn(incoming, key)) continue;
    const value = incoming[key];
    if (value === undefined) continue;
    const name = key.toLowerCase();
    if (name.charCodeAt(0) === 58 /* ':' HTTP/2 pseudo-header */ || name === '__proto__') continue;
    if (hopByHop.has(name)) {
      // RFC 9110 §10.1.4: TE is hop-by-hop, but `trailers` only says this client accepts trailers, which
      // stays true of the chain when the proxy relays them (what Go's ReverseProxy does; RFC 9113 §8.2.2
      // allows exactly `TE: trailers` over HTTP/2). Any transfer coding in TE is this connection's alone.
      if (name === 'te' && hasToken(value, 'trailers')) teTrailers = true;
      continue;
    }
    if (named !== undefined && named.includes(name)) continue;
    if (refused.has(name) || name === 'host') continue;
    if (name === 'content-length' && dropLength) continue;
    if (name.startsWith('x-')) {
      if (name.startsWith('x-backend-diag-')) continue;
      if (name.startsWith('x-coexist-')) {
        // Our own headers are believed only from our own servers (another coexist hop, proven by its
        // certificate), never from a load balancer, which passes on whatever its client wrote.
        if (fromServer && name === headerNames.hops) hops = joined(value);
        continue;
      }
    }
    if (forwardedFromPeer.has(name)) {
      if (!trusted) continue;
      if (name === 'x-forwarded-for') {
        forwardedFor = joined(value);
        continue;
      }
    }
    const v = copy(value);
    if (v !== undefined) out[name] = v;
  }

  out['host'] = ctx.upstreamHost;
  if (teTrailers) out['te'] = 'trailers';
  if (peer !== undefined) {
    const client = unmapIPv4(peer);
    out['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${client}` : client;
  }
  // A trusted load balancer saw the client's scheme, host and port; otherwise this listener did.
  if (out['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = ctx.scheme;
  if (out['x-forwarded-host'] === undefined) {
    const host = first(incoming['host']) ?? first(incoming[':authority']);
    if (host) out['x-forwarded-host'] = host;
  }
  if (out['x-forwarded-port'] === undefined) out['x-forwarded-port'] = String(ctx.listenerPort);
  out[headerNames.hops] = hops ? `${hops}, ${ctx.serverName}` : ctx.serverName;
  out[headerNames.forwardRequestId] = ctx.requestId;
  return out;
}

/** The headers to send to the client for the next hop's response `upstream` (see the module doc). */
export function responseHeaders(upstream: HeaderRecord, ctx: ResponseContext): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  const named = connectionOptions(upstream['connection']);
  const dropLength = upstream['transfer-encoding'] !== undefined;
  let path: string | undefined;

  for (const key in upstream) {
    if (!Object.hasOwn(upstream, key)) continue;
    const value = upstream[key];
    if (value === undefined) continue;
    const name = key.toLowerCase();
    if (name.charCodeAt(0) === 58 || name === '__proto__') continue;
    if (hopByHop.has(name) || diagnostics.has(name)) continue;
    if (named !== undefined && named.includes(name)) continue;
    if (name === 'content-length' && dropLength) continue;
    // Internal to coexist servers (the §5.3 identity token among them): never shown to a client, except
    // the path the answer came back along, which each server extends (like Exchange's X-BEServer, §4.10).
    if (name.startsWith('x-coexist-')) {
      if (name === headerNames.path) path = joined(value);
      continue;
    }
    // X-BEServer and X-DiagInfo pass through: they say which back end answered (§4.10).
    const v = copy(value);
    if (v !== undefined) out[name] = v;
  }

  const rest = path ?? ctx.nextServer;
  out[headerNames.path] = rest ? `${ctx.serverName}, ${rest}` : ctx.serverName;
  out[headerNames.requestId] = ctx.requestId;
  out[headerNames.feServer] = ctx.serverName;
  if (ctx.backendTarget !== undefined) out[headerNames.calculatedBeTarget] = ctx.backendTarget;
  if (ctx.upstreamStatus !== undefined) out[headerNames.backEndHttpStatus] = String(ctx.upstreamStatus);
  return out;
}

/** The servers an `X-Coexist-Hops` value lists, in order (empty entries dropped). */
export function parseHops(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  return joined(value)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The lower-case field names a Connection header lists (RFC 9110 §7.6.1); undefined when absent. */
function connectionOptions(value: string | readonly string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const options: string[] = [];
  for (const part of joined(value).split(',')) {
    const option = part.trim().toLowerCase();
    if (option !== '') options.push(option);
  }
  return options;
}

function hasToken(value: string | readonly string[], token: string): boolean {
  for (const part of joined(value).split(',')) {
    // `trailers` takes no parameters, but tolerate `trailers;q=1`.
    const semi = part.indexOf(';');
    if ((semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase() === token) return true;
  }
  return false;
}

/** One string for a header value; tolerant of values the types rule out (numbers from hand-made records). */
function joined(value: string | readonly string[]): string {
  if (typeof value === 'string') return value;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** A value to send: strings as they are, arrays copied (never an empty one), anything else as a string. */
function copy(value: string | readonly string[]): string | string[] | undefined {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) return String(value);
  return value.length === 0 ? undefined : [...(value as readonly string[])];
}

function first(value: string | readonly string[] | undefined): string | undefined {
  return value === undefined || typeof value === 'string' ? value : value[0];
}
