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
import { capField } from '../observability/log.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { TrustedProxies } from './peer-trust.ts';
import { estateServers, isTrustedAddress } from './peer-trust.ts';
import type { EdgeLimits } from './edge-limits.ts';
import type { HealthSettings, HealthTimers } from './health.ts';
import { directoryProbe, HealthMonitor, healthPlan, upstreamProbe } from './health.ts';
import { EdgeGate, edgeLimits, KnownSources } from './edge-limits.ts';
import type { CertificateEntry, Listening } from './listener.ts';
import { listen } from './listener.ts';
import type { LockoutOptions } from './lockout.ts';
import { Lockout } from './lockout.ts';
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
  /**
   * Load balancers in front, by address: their `X-Forwarded-*` are believed (docs/security.md "How servers
   * authenticate each other"). Never the estate's servers: they prove themselves by certificate (`internalCa`).
   */
  readonly trustedProxies?: TrustedProxies;
  /**
   * The estate's internal CA (PEM): every listener asks for a client certificate verified against it alone,
   * and a peer whose certificate has clientAuth and names a server FQDN of the estate is that server. Absent:
   * no peer is ever a server.
   */
  readonly internalCa?: string | readonly string[];
  /**
   * Addresses other servers of the estate connect from: exempt from the per-source connection cap, since each
   * carries many clients' connections. Trusted for nothing else (a server proves itself by certificate).
   */
  readonly serverAddresses?: readonly string[];
  /** Source networks of internal clients (CIDR), besides the estate's own `internalNetworks`. */
  readonly internalNetworks?: readonly string[];
  readonly implementation?: string;
  /** HMAC key of OWA session cookies; random per process by default. */
  readonly sessionSecret?: Uint8Array;
  readonly retryAfterSeconds?: number;
  readonly idleTimeoutsMs?: Readonly<Partial<Record<Protocol, number>>>;
  /** Stand-in endpoints of mailbox servers (the lab's real ActiveSync servers); see `StoreEndpoint`. */
  readonly storeEndpoints?: StoreEndpoints;
  /** The edge's limits (the estate file's `limits`); the defaults for the rest (edge-limits.ts). */
  readonly limits?: Partial<EdgeLimits>;
  /** The estate file's `lockout` settings (and, in tests, a clock and sleep); on with defaults when absent. */
  readonly lockout?: LockoutOptions;
  /**
   * The estate file's `health` section (docs/operations.md "Health pages"), and in tests the probe rounds'
   * timers; `probe: false` answers the pages from the state at start (everything up) and probes nothing.
   */
  readonly health?: HealthSettings & { readonly timers?: HealthTimers; readonly probe?: boolean };
}

/** A running server node. */
export interface ServerNode {
  readonly server: Server;
  readonly listeners: readonly Listening[];
  /** The port of the listener named `name`. */
  port(name: string): number;
  /** Its health pages and readiness (docs/operations.md "Health pages"). */
  readonly health: HealthMonitor;
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
  const lockout = o.lockout?.enabled === false ? undefined : startLockout(o);
  const knownSources = new KnownSources();
  const health = startHealth(o, upstreams);
  // Unlocks are also noticed on the next attempt; the timer logs those of accounts nobody tries again.
  const lockoutSweep = lockout ? setInterval(() => lockout.sweep(), 60_000).unref() : undefined;
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
            // What the client named (an anchor, a login): capped like every client value in a log line.
            identity: capField(e.identity),
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
    ...(o.internalCa === undefined ? {} : { estateServers: estateServers(o.index) }),
    internalNetworks: blockList([...o.index.estate.internalNetworks, ...(o.internalNetworks ?? [])]),
    ...(o.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: o.retryAfterSeconds }),
    ...(o.idleTimeoutsMs === undefined ? {} : { idleTimeoutsMs: o.idleTimeoutsMs }),
    ...(o.storeEndpoints === undefined ? {} : { storeEndpoints: o.storeEndpoints }),
    ...(lockout === undefined ? {} : { lockout }),
    knownSources,
    health,
  };
  // One admission for all the node's listeners: the caps are the server's (docs/security.md "Limits and
  // timeouts at the edge"). Load balancers and the addresses the estate's servers connect from carry many
  // clients' connections each, so no per-source cap applies to them; they count in the total. This is decided
  // at accept, before any certificate is seen, and exempts from the cap only: it is no trust.
  const servers = o.serverAddresses === undefined ? undefined : new Set(o.serverAddresses);
  const proxies = o.trustedProxies;
  const gate = new EdgeGate(edgeLimits(o.limits), {
    logger: o.logger,
    serverName: o.server.name,
    ...(o.metrics === undefined ? {} : { observer: o.metrics.edgeObserver() }),
    // The room kept for regular clients (docs/security.md "Room kept for known clients").
    known: (address: string) => knownSources.has(address),
    ...(proxies === undefined && servers === undefined
      ? {}
      : {
          exempt: (address: string) =>
            isTrustedAddress(proxies, address) || isTrustedAddress(servers, address),
        }),
  });
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
          ...(o.internalCa === undefined ? {} : { clientCa: o.internalCa }),
          gate,
        },
        (req, res) => handler(req, res),
        o.logger,
        o.server.name,
      );
      handler = createRequestHandler(ctx, { name: l.name, role: l.role, scheme, port: listening.port });
      started.push(listening);
    }
  } catch (err) {
    clearInterval(lockoutSweep);
    await health.stop();
    await Promise.all(started.map((l) => l.close(0)));
    gate.close();
    await upstreams.destroy();
    throw err;
  }
  if (o.health?.probe !== false) health.start();
  return {
    server: o.server,
    listeners: started,
    health,
    port(name) {
      const l = started.find((s) => s.name === name);
      if (!l) throw new Error(`no listener named ${name} on ${o.server.name}`);
      return l.port;
    },
    async close(graceMs = 5_000) {
      clearInterval(lockoutSweep);
      await health.stop();
      await Promise.all(started.map((l) => l.close(graceMs)));
      gate.close();
      await upstreams.close();
    },
  };
}

/** The extranet smart lockout of this server: counted in its metrics, one log line per lock and unlock. */
function startLockout(o: ServerNodeOptions): Lockout {
  return new Lockout({
    ...o.lockout,
    ...(o.metrics === undefined ? {} : { observer: o.metrics.lockoutObserver() }),
    onTransition: (e) => {
      // Account and source, never a password (docs/security.md "Extranet smart lockout").
      const fields = { server: o.server.name, ...e };
      if (e.state === 'locked') o.logger.warn(fields, 'sign-in locked');
      else o.logger.info(fields, 'sign-in unlocked');
    },
  });
}

/**
 * The server's health: the next hops the engine gives it per protocol, probed through its own pools; the
 * directory asked directly (not through the cache), when it is not the estate file's (always up).
 */
function startHealth(o: ServerNodeOptions, upstreams: Upstreams): HealthMonitor {
  const identity = o.index.estate.users[0]?.address ?? 'coexist-health-probe';
  const { timers, intervalSeconds, timeoutSeconds, downAfter, rule } = o.health ?? {};
  const settings = {
    ...(intervalSeconds === undefined ? {} : { intervalSeconds }),
    ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
    ...(downAfter === undefined ? {} : { downAfter }),
    ...(rule === undefined ? {} : { rule }),
  };
  return new HealthMonitor({
    server: o.server,
    plan: healthPlan(o.index, o.server, o.storeEndpoints),
    settings,
    probeHop: upstreamProbe(upstreams),
    ...(o.directory === undefined ? {} : { probeDirectory: directoryProbe(o.directory, identity) }),
    ...(timers === undefined ? {} : { timers }),
    observer: {
      ...o.metrics?.healthObserver(),
      // One line per change, with the hop's name: the log is the operator's, not the internet's.
      transition: (hop, up) => {
        const fields = hop
          ? { server: o.server.name, nextHop: hop.server, url: hop.url }
          : { server: o.server.name, directory: true };
        const what = hop ? 'next hop' : 'directory';
        if (up) o.logger.info(fields, `health: ${what} up`);
        else o.logger.warn(fields, `health: ${what} down`);
      },
    },
  });
}
