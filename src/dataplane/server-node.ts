/**
 * One server of the estate, running: its listeners, its pools and its pipeline (`coexist serve --as`, and
 * each server of the lab). Build once, serve many: the estate index, pools and session store are made at
 * start and shared by every request.
 */
import { randomBytes } from 'node:crypto';
import type { RequestListener } from 'node:http';
import { BlockList } from 'node:net';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Server } from '../core/estate/estate.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { Role } from '../core/routing/decide.ts';
import { CachedDirectory } from '../directory/directory-cache.ts';
import type { Directory } from '../directory/directory.ts';
import { FileDirectory } from '../directory/directory.ts';
import type { Logger } from '../observability/log.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { TrustedProxies } from './headers.ts';
import type { CertificateEntry, Listening } from './listener.ts';
import { listen } from './listener.ts';
import { OwaSessions } from './owa-session.ts';
import type { HopObserver, MailboxResponder, ServerContext, StoreEndpoints } from './contracts.ts';
import { createRequestHandler } from './pipeline.ts';
import type { UpstreamsOptions } from './upstreams.ts';
import { Upstreams } from './upstreams.ts';

/** One listener of a server node. */
export interface NodeListener {
  /** `front` (443) or `backend` (444), or any name; logged with each request. */
  readonly name: string;
  readonly role: Role;
  readonly host: string;
  readonly port: number;
  /** Absent: plain HTTP. */
  readonly certificates?: readonly CertificateEntry[];
}

export interface ServerNodeOptions {
  readonly index: EstateIndex;
  /** The estate server this node is. */
  readonly server: Server;
  readonly listeners: readonly NodeListener[];
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Default: the estate file's users. Whichever it is, it is asked through the cache. */
  readonly directory?: Directory;
  readonly upstreams?: UpstreamsOptions;
  readonly observer?: HopObserver;
  readonly responder?: MailboxResponder;
  readonly trustedProxies?: TrustedProxies;
  /** Source networks of internal clients (CIDR), besides the estate's own `internalNetworks`. */
  readonly internalNetworks?: readonly string[];
  readonly implementation?: string;
  /** HMAC key of OWA session cookies; random per process by default. */
  readonly sessionSecret?: Uint8Array;
  readonly retryAfterSeconds?: number;
  readonly idleTimeoutsMs?: Readonly<Partial<Record<Protocol, number>>>;
  /** Stand-in endpoints of mailbox servers (the lab's real ActiveSync servers); see `StoreEndpoint`. */
  readonly storeEndpoints?: StoreEndpoints;
}

/** A running server node. */
export interface ServerNode {
  readonly server: Server;
  readonly listeners: readonly Listening[];
  /** The port of the listener named `name`. */
  port(name: string): number;
  /** Graceful stop: listeners first (requests in flight get `graceMs`), then the pools. */
  close(graceMs?: number): Promise<void>;
}

/** The networks as one matcher (the loader has checked each is `address/prefix`). */
export function blockList(networks: readonly string[]): BlockList {
  const list = new BlockList();
  for (const n of networks) {
    const [address = '', bits = ''] = n.split('/');
    list.addSubnet(address, Number(bits), address.includes(':') ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** Start a server node. */
export async function startServerNode(o: ServerNodeOptions): Promise<ServerNode> {
  const upstreams = new Upstreams(o.upstreams);
  const ctx: ServerContext = {
    index: o.index,
    server: o.server,
    policies: o.index.estate.policies,
    // Every directory gets the cache: lookups with TTL, negative and stale-if-error entries, successful
    // password checks under an HMAC (directory-cache.ts).
    directory: new CachedDirectory(o.directory ?? new FileDirectory(o.index), {
      ...(o.metrics === undefined ? {} : { observer: o.metrics.directoryObserver() }),
      warn: (e) =>
        o.logger.warn(
          {
            server: o.server.name,
            identity: e.identity,
            mailboxServer: e.server,
            expiredMs: e.expiredMs,
            err: String(e.error),
          },
          'directory unavailable: serving the last known mailbox',
        ),
    }),
    upstreams,
    logger: o.logger,
    sessions: new OwaSessions({ secret: o.sessionSecret ?? randomBytes(32) }),
    implementation: o.implementation ?? 'coexist',
    ...(o.metrics === undefined ? {} : { metrics: o.metrics }),
    ...(o.observer === undefined ? {} : { observer: o.observer }),
    ...(o.responder === undefined ? {} : { responder: o.responder }),
    ...(o.trustedProxies === undefined ? {} : { trustedProxies: o.trustedProxies }),
    internalNetworks: blockList([...o.index.estate.internalNetworks, ...(o.internalNetworks ?? [])]),
    ...(o.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: o.retryAfterSeconds }),
    ...(o.idleTimeoutsMs === undefined ? {} : { idleTimeoutsMs: o.idleTimeoutsMs }),
    ...(o.storeEndpoints === undefined ? {} : { storeEndpoints: o.storeEndpoints }),
  };
  const started: Listening[] = [];
  try {
    for (const l of o.listeners) {
      const scheme = l.certificates && l.certificates.length > 0 ? 'https' : 'http';
      // The handler needs the bound port (X-Forwarded-Port); with port 0 it is known only after listen.
      let handler: RequestListener = (_req, res) => res.destroy();
      const listening = await listen(
        {
          name: l.name,
          host: l.host,
          port: l.port,
          ...(l.certificates ? { certificates: l.certificates } : {}),
        },
        (req, res) => handler(req, res),
        o.logger,
        o.server.name,
      );
      handler = createRequestHandler(ctx, { name: l.name, role: l.role, scheme, port: listening.port });
      started.push(listening);
    }
  } catch (err) {
    await Promise.all(started.map((l) => l.close(0)));
    await upstreams.destroy();
    throw err;
  }
  return {
    server: o.server,
    listeners: started,
    port(name) {
      const l = started.find((s) => s.name === name);
      if (!l) throw new Error(`no listener named ${name} on ${o.server.name}`);
      return l.port;
    },
    async close(graceMs = 5_000) {
      await Promise.all(started.map((l) => l.close(graceMs)));
      await upstreams.close();
    },
  };
}
