/**
 * One undici `Pool` per upstream origin, created on first use and kept for the life of the process (build
 * once, serve many: architecture.md habit 10). Health state is not kept here yet; when it is, it lives
 * apart from the pools so a config reload does not forget which servers are down (Caddy `Upstream` vs
 * `Host`).
 */
import type { buildConnector } from 'undici';
import { Client, errors, Pool } from 'undici';
import { routedConnector } from '../net/connector.ts';

/** Connection settings shared by every pool. */
export interface UpstreamsOptions {
  /** Give up connecting after this long (undici `connect.timeout`); default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Keep an idle socket this long when the server does not say (undici `keepAliveTimeout`); default 4 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Never keep an idle socket longer than this, whatever the server's `Keep-Alive` says; default 10 min. */
  readonly keepAliveMaxTimeoutMs?: number;
  /** Sockets per origin; default unlimited (each held long poll needs its own socket: docs/protocols.md §4.1). */
  readonly connectionsPerOrigin?: number;
  /** Verify upstream TLS certificates (default true). */
  readonly rejectUnauthorized?: boolean;
  /** Certificate authorities to trust instead of Node's bundle (the lab's own CA). */
  readonly ca?: string | readonly string[];
  /**
   * This server's client certificate (clientAuth, its FQDN) from the estate's internal CA, presented on every
   * hop, pools and RPC channels alike: what makes the next hop believe it is a server of the estate
   * (docs/security.md "How servers authenticate each other").
   */
  readonly clientCertificate?: { readonly certPem: string; readonly keyPem: string };
  /** The local address upstream connections come from (the lab's "internal network" address). */
  readonly localAddress?: string;
  /**
   * Where a host name really is: the estate's DNS (the lab maps every name to a loopback port). The
   * request keeps the logical name for `Host`, SNI and certificate checks; only the socket goes elsewhere.
   */
  readonly resolve?: (
    hostname: string,
    port: number,
  ) => { readonly address: string; readonly port: number } | undefined;
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
    const key = origin;
    const existing = this.#pools.get(key);
    if (existing) return existing;
    // undici's own error for a closed pool, so `classifyUpstreamError` maps it (never reached the hop).
    if (this.#closed) throw new errors.ClientClosedError();
    const o = this.#options;
    const pool = new Pool(origin, {
      // HTTP/1.1 to every next hop (the connector offers nothing else: net/connector.ts).
      allowH2: false,
      connections: o.connectionsPerOrigin ?? null,
      connect: this.#connector(),
      ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
      keepAliveTimeout: o.keepAliveTimeoutMs ?? 4_000,
      keepAliveMaxTimeout: o.keepAliveMaxTimeoutMs ?? 600_000,
    });
    this.#pools.set(key, pool);
    return pool;
  }

  /**
   * A client of its own for one Outlook Anywhere channel (RPC_IN_DATA / RPC_OUT_DATA): a new connection,
   * as Outlook opens one per channel (MS-RPCH), and as a next hop built on a parser that accepts such a
   * method only first on a connection (Node's, see listener.ts) needs. The channel's request says
   * `Connection: close` (forward.ts), and the caller lets the client go when the channel ends (`endChannel`).
   */
  channel(origin: string): Client {
    if (this.#closed) throw new errors.ClientClosedError();
    const client = new Client(origin, {
      allowH2: false,
      connect: this.#connector(),
      ...(this.#options.localAddress === undefined ? {} : { localAddress: this.#options.localAddress }),
    });
    this.#channels.add(client);
    client.once('disconnect', () => this.#channels.delete(client));
    return client;
  }

  readonly #channels = new Set<Client>();

  /**
   * A connection of its own for one client connection's Windows authentication (NTLM, Negotiate: docs/security.md
   * "Windows authentication"): never in a pool, never handed to another client connection (windows-auth.ts
   * keeps it per client socket). Keep-alive, long: the handshake and the requests after it ride this one
   * connection, and an idle gap must not end it (the client's own idle timeout ends both). The caller destroys
   * it (`endChannel`) when either side closes: undici would otherwise open a new, unauthenticated socket.
   */
  pinned(origin: string): Client {
    if (this.#closed) throw new errors.ClientClosedError();
    const o = this.#options;
    const client = new Client(origin, {
      allowH2: false,
      connect: this.#connector(),
      ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
      keepAliveTimeout: o.keepAliveMaxTimeoutMs ?? 600_000,
      keepAliveMaxTimeout: o.keepAliveMaxTimeoutMs ?? 600_000,
    });
    this.#channels.add(client);
    return client;
  }

  /**
   * The channel is over: its connection goes with it. The client leaves the set here, not on `disconnect`
   * alone, which a client that never connected (its next hop down) never emits; a destroyed client left in
   * the set would make `close()` fail with ClientDestroyedError.
   */
  endChannel(client: Client): void {
    this.#channels.delete(client);
    void client.destroy().catch(() => undefined);
  }

  #connectorMemo: buildConnector.connector | undefined;

  /** One connector for every pool (one TLS context for all: net/connector.ts), and the estate's DNS. */
  #connector(): buildConnector.connector {
    if (this.#connectorMemo) return this.#connectorMemo;
    const o = this.#options;
    const resolve = o.resolve;
    this.#connectorMemo = routedConnector({
      connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
      rejectUnauthorized: o.rejectUnauthorized,
      ca: o.ca,
      clientCertificate: o.clientCertificate,
      route:
        resolve &&
        ((hostname, port) => {
          const to = resolve(hostname, port);
          return to && { host: to.address, port: to.port };
        }),
    });
    return this.#connectorMemo;
  }

  /** How many origins have a pool. */
  get size(): number {
    return this.#pools.size;
  }

  /** Close every pool: requests in flight finish, new ones are refused. */
  async close(): Promise<void> {
    await Promise.all(this.#takeAll().map((p) => p.close()));
  }

  /** Destroy every pool now, failing the requests in flight (shutdown after a grace period). */
  async destroy(): Promise<void> {
    await Promise.all(this.#takeAll().map((p) => p.destroy()));
  }

  /** Refuse new requests and hand over every pool and channel client. */
  #takeAll(): (Pool | Client)[] {
    this.#closed = true;
    const all = [...this.#pools.values(), ...[...this.#channels].filter((c) => !c.destroyed)];
    this.#pools.clear();
    this.#channels.clear();
    return all;
  }
}
