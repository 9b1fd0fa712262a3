/**
 * One undici `Pool` per upstream origin, created on first use and kept for the life of the process (build
 * once, serve many: architecture.md habit 10). Health state is not kept here yet; when it is, it lives
 * apart from the pools so a config reload does not forget which servers are down (Caddy `Upstream` vs
 * `Host`).
 */
import { errors, Pool } from 'undici';

/** Connection settings shared by every pool. */
export interface UpstreamsOptions {
  /** Give up connecting after this long (undici `connect.timeout`); default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Keep an idle socket this long when the server does not say (undici `keepAliveTimeout`); default 4 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Never keep an idle socket longer than this, whatever the server's `Keep-Alive` says; default 10 min. */
  readonly keepAliveMaxTimeoutMs?: number;
  /** Sockets per origin; default unlimited (each held long poll needs its own socket: protocol-facts §4.1). */
  readonly connectionsPerOrigin?: number;
  /** Verify upstream TLS certificates (default true); the lab's self-signed servers need false or a CA. */
  readonly rejectUnauthorized?: boolean;
}

/** The pools of all upstream origins this server talks to. */
export class Upstreams {
  readonly #pools = new Map<string, Pool>();
  readonly #options: UpstreamsOptions;
  #closed = false;

  constructor(options: UpstreamsOptions = {}) {
    this.#options = options;
  }

  /** The pool of `origin` (`https://cas2007.ny.example:443`, as `new URL(u).origin` gives it). */
  pool(origin: string): Pool {
    const existing = this.#pools.get(origin);
    if (existing) return existing;
    // undici's own error for a closed pool, so `classifyUpstreamError` maps it (never reached the hop).
    if (this.#closed) throw new errors.ClientClosedError();
    const o = this.#options;
    const pool = new Pool(origin, {
      connections: o.connectionsPerOrigin ?? null,
      connect: {
        timeout: o.connectTimeoutMs ?? 10_000,
        ...(o.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: o.rejectUnauthorized }),
      },
      keepAliveTimeout: o.keepAliveTimeoutMs ?? 4_000,
      keepAliveMaxTimeout: o.keepAliveMaxTimeoutMs ?? 600_000,
    });
    this.#pools.set(origin, pool);
    return pool;
  }

  /** How many origins have a pool. */
  get size(): number {
    return this.#pools.size;
  }

  /** Close every pool: requests in flight finish, new ones are refused. */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.close()));
  }

  /** Destroy every pool now, failing the requests in flight (shutdown after a grace period). */
  async destroy(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy()));
  }
}
