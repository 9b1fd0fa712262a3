/**
 * Limits and timeouts at the edge (docs/security.md "Limits and timeouts at the edge"): how long a client
 * may take to finish its TLS handshake, send a request head or keep a request body flowing, how large a
 * head may be, and how many connections it may hold, in total and per source address. The listener
 * applies them (listener.ts); this module holds the defaults, the per-source accounting and the one
 * rate-limited report of what was refused or cut.
 */
import type { Socket } from 'node:net';
import { clientAddressOf } from '../net/proxy-protocol.ts';
import { sourceKey } from '../net/source.ts';
import type { Logger } from '../observability/log.ts';
import type { EdgeEvent, EdgeObserver } from '../observability/metrics.ts';

export type { EdgeEvent, EdgeObserver } from '../observability/metrics.ts';

/** The edge's limits; the estate file's `limits` section (docs/config.md) sets any of them. */
export interface EdgeLimits {
  /** From accept to the end of the TLS handshake, absolute (a trickled ClientHello does not extend it). */
  readonly tlsHandshakeTimeoutMs: number;
  /** To receive a request head (first line and headers, the RPC first-line sniffer included), absolute. */
  readonly headTimeoutMs: number;
  /** Longest silence while a declared request body is still arriving (not Outlook Anywhere channels). */
  readonly bodyIdleTimeoutMs: number;
  /** Idle time of a kept-alive connection between two requests. */
  readonly keepAliveTimeoutMs: number;
  /** Largest request head (request line and headers), bytes; over it: 431. */
  readonly maxHeaderBytes: number;
  /** Most header fields in a request; over it: 431. */
  readonly maxHeaderCount: number;
  /** Open client connections of this server, all listeners together; 0: no cap. */
  readonly maxConnections: number;
  /** Open client connections from one source (an IPv4 address, an IPv6 /64); 0: no cap. */
  readonly maxConnectionsPerSource: number;
  /**
   * The last places of `maxConnections`, in percent, kept for known sources (where someone signed in on
   * this server before, `KnownSources`): a flood from unknown sources stops short of them. 0: no reserve.
   */
  readonly reservedPercent: number;
  /** At most one warning line per kind of event this often, with the count since the last one. */
  readonly logIntervalMs: number;
}

/**
 * The defaults, chosen against what nginx and HAProxy apply and what Exchange's clients need
 * (docs/security.md "Limits and timeouts at the edge" says why each).
 */
export const defaultEdgeLimits: EdgeLimits = {
  tlsHandshakeTimeoutMs: 10_000,
  headTimeoutMs: 20_000,
  bodyIdleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  maxConnections: 10_000,
  maxConnectionsPerSource: 1_000,
  reservedPercent: 10,
  logIntervalMs: 10_000,
};

/** The defaults with `partial`'s values over them. */
export function edgeLimits(partial: Partial<EdgeLimits> = {}): EdgeLimits {
  const out: Record<string, number> = { ...defaultEdgeLimits };
  for (const [k, v] of Object.entries(partial)) if (typeof v === 'number') out[k] = v;
  return out as unknown as EdgeLimits;
}

/** What an event's warning line says, and its catalogue code. */
const eventText: Readonly<Record<EdgeEvent, { code: string; msg: string }>> = {
  refused_total: { code: 'CX_HTTP_CONNECTION_LIMIT', msg: 'connections refused: the server is at its cap' },
  refused_reserved: {
    code: 'CX_HTTP_CONNECTION_LIMIT',
    msg: 'connections refused: only places kept for known sources are left',
  },
  refused_per_source: {
    code: 'CX_HTTP_CONNECTION_LIMIT',
    msg: 'connections refused: a source is at its per-source cap',
  },
  tls_handshake_timeout: { code: 'CX_HTTP_TLS_TIMEOUT', msg: 'connections cut: TLS handshake too slow' },
  head_timeout: { code: 'CX_HTTP_REQUEST_TIMEOUT', msg: 'connections cut: request head too slow' },
  body_idle_timeout: { code: 'CX_HTTP_REQUEST_TIMEOUT', msg: 'connections cut: request body stalled' },
  headers_too_large: { code: 'CX_HTTP_HEADERS_TOO_LARGE', msg: 'requests refused: head too large' },
  proxy_header_invalid: {
    code: 'CX_HTTP_MALFORMED',
    msg: 'connections refused: a PROXY protocol sender sent no valid PROXY header',
  },
};

export interface EdgeGateOptions {
  readonly logger: Logger;
  readonly serverName: string;
  readonly observer?: EdgeObserver;
  /** Sources no per-source cap applies to (the estate's servers, a load balancer in front); still counted in the total. */
  readonly exempt?: (address: string) => boolean;
  /** Sources the reserved places are kept for (`KnownSources.has`); absent: none, the reserve stays empty. */
  readonly known?: (address: string) => boolean;
}

/** One kind of event's share of the rate-limited log. */
interface Pending {
  count: number;
  lastAt: number;
  source: string;
  listener: string;
  timer: NodeJS.Timeout | undefined;
}

/**
 * One server's admission of connections (all its listeners share it) and its report of the edge's events:
 * each is counted in the metrics at once, and logged at `warn` at most once per `logIntervalMs` per kind,
 * with how many there were since the last line, so a flood cannot flood the log too.
 */
export class EdgeGate {
  private total = 0;
  private readonly bySource = new Map<string, number>();
  private readonly pending = new Map<EdgeEvent, Pending>();

  /** Open connections past which only known (and exempt) sources are admitted. */
  readonly #openToAll: number;

  constructor(
    readonly limits: EdgeLimits,
    private readonly o: EdgeGateOptions,
  ) {
    const { maxConnections, reservedPercent } = limits;
    const reserved = Math.floor((maxConnections * Math.min(Math.max(reservedPercent, 0), 100)) / 100);
    this.#openToAll = maxConnections > 0 && reserved > 0 ? maxConnections - reserved : Infinity;
  }

  /** Open connections now. */
  get open(): number {
    return this.total;
  }

  /**
   * Admit a just-accepted connection, or say no (the caller closes it before any TLS or HTTP work). An
   * admitted connection is counted until it closes.
   */
  admit(socket: Socket, listener: string): boolean {
    const address = clientAddressOf(socket) ?? '';
    const { maxConnections, maxConnectionsPerSource } = this.limits;
    if (maxConnections > 0 && this.total >= maxConnections) {
      this.report('refused_total', address, listener);
      return false;
    }
    if (
      this.total >= this.#openToAll &&
      this.o.exempt?.(address) !== true &&
      this.o.known?.(address) !== true
    ) {
      this.report('refused_reserved', address, listener);
      return false;
    }
    const capped = maxConnectionsPerSource > 0 && this.o.exempt?.(address) !== true;
    const key = capped ? sourceKey(address) : undefined;
    const held = key === undefined ? 0 : (this.bySource.get(key) ?? 0);
    if (key !== undefined && held >= maxConnectionsPerSource) {
      this.report('refused_per_source', address, listener);
      return false;
    }
    this.total++;
    if (key !== undefined) this.bySource.set(key, held + 1);
    this.o.observer?.opened();
    // `on`: 'close' is emitted once; `once` would add a wrapper that lives as long as the connection.
    socket.on('close', () => {
      this.total--;
      this.o.observer?.closed();
      if (key === undefined) return;
      const left = (this.bySource.get(key) ?? 1) - 1;
      if (left === 0) this.bySource.delete(key);
      else this.bySource.set(key, left);
    });
    return true;
  }

  /** Count an event now; log it now or with the next line of its kind. */
  report(event: EdgeEvent, source: string, listener: string): void {
    this.o.observer?.event(event);
    let p = this.pending.get(event);
    if (!p) {
      p = { count: 0, lastAt: -Infinity, source, listener, timer: undefined };
      this.pending.set(event, p);
    }
    p.count++;
    p.source = source;
    p.listener = listener;
    if (p.timer !== undefined) return;
    const wait = p.lastAt + this.limits.logIntervalMs - Date.now();
    if (wait <= 0) this.flush(event, p);
    else {
      p.timer = setTimeout(() => this.flush(event, p), wait);
      p.timer.unref();
    }
  }

  private flush(event: EdgeEvent, p: Pending): void {
    p.timer = undefined;
    if (p.count === 0) return;
    const { code, msg } = eventText[event];
    this.o.logger.warn(
      {
        server: this.o.serverName,
        listener: p.listener,
        edge: event,
        code,
        count: p.count,
        lastSource: p.source,
        open: this.total,
      },
      msg,
    );
    p.count = 0;
    p.lastAt = Date.now();
  }

  /** Write what is still pending and stop the timers (the server is stopping). */
  close(): void {
    for (const [event, p] of this.pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      this.flush(event, p);
    }
  }
}

/**
 * The sources where someone signed in successfully on this server lately (the pipeline adds the TCP peer of
 * each good sign-in, sign-in.ts): the edge keeps its reserved places for them (docs/security.md "Limits and
 * timeouts at the edge"). Bounded: the least recently seen go first past `maxEntries`; an entry lasts
 * `ttlMs` from its last sign-in. Per process, in memory: a reserve for this front end's own regulars.
 */
export class KnownSources {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(
    o: { readonly maxEntries?: number; readonly ttlMs?: number; readonly now?: () => number } = {},
  ) {
    this.#max = o.maxEntries ?? 100_000;
    this.#ttlMs = o.ttlMs ?? 7 * 86_400_000;
    this.#now = o.now ?? Date.now;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Someone signed in from `address` just now. */
  add(address: string | undefined): void {
    if (address === undefined) return;
    const key = sourceKey(address);
    const now = this.#now();
    const at = this.#seen.get(key);
    // Seen within the last minute: nothing to refresh (keeps a busy source from rewriting the map per request).
    if (at !== undefined && now - at < 60_000) return;
    this.#seen.delete(key);
    while (this.#seen.size >= this.#max) {
      const oldest = this.#seen.keys().next();
      if (oldest.done) break;
      this.#seen.delete(oldest.value);
    }
    this.#seen.set(key, now);
  }

  /** Whether someone signed in from `address` within the last `ttlMs`. */
  has(address: string): boolean {
    const key = sourceKey(address);
    const at = this.#seen.get(key);
    if (at === undefined) return false;
    if (this.#now() - at < this.#ttlMs) return true;
    this.#seen.delete(key);
    return false;
  }
}
