/**
 * One server of the estate, running: its listeners, its pools and its pipeline (`coexist serve --as`, and
 * each server of the lab). Build once, serve many: the estate index, pools and session store are made at
 * start and shared by every request.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
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
import { nextHopLog, NextHops } from './next-hops.ts';
import { EdgeGate, edgeLimits, KnownSources } from './edge-limits.ts';
import type { CertificateEntry, Listening } from './listener.ts';
import { listen } from './listener.ts';
import type { LockoutOptions, LockoutStore } from './lockout.ts';
import { Lockout } from './lockout.ts';
import { OwaSessions } from './owa-session.ts';
import type { SharedStoreSettings } from './redis-store.ts';
import { openSharedStore } from './redis-store.ts';
import type { SharedStore } from './shared-store.ts';
import type {
  HopObserver,
  ListenerInfo,
  MailboxResponder,
  ServerContext,
  StoreEndpoints,
  WindowsAuthVerifier,
} from './contracts.ts';
import { createRequestHandler } from './pipeline.ts';
import { HeldPings } from './drain.ts';
import type { DrainOptions, DrainReport, NodeEstate, ReloadResult } from './reload.ts';
import { Generations, restartReasons } from './reload.ts';
import { sniContexts } from './listener.ts';
import { lockoutDefaults } from './lockout.ts';
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
  /** Layer-4 load balancers that send a PROXY protocol header, by address (listener.ts `proxyProtocolFrom`). */
  readonly proxyProtocolFrom?: ReadonlySet<string>;
  /** Bind with SO_REUSEPORT (listener.ts `reusePort`): each `serve --workers` worker its own socket. */
  readonly reusePort?: boolean;
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
  /** Verifies the Windows authentication this server terminates (ServerContext.windowsAuth). */
  readonly windowsAuth?: WindowsAuthVerifier;
  /** Accepts Kerberos for the front ends' service principal (ServerContext.kerberos). */
  readonly kerberos?: WindowsAuthVerifier;
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
  /**
   * The OWA session cookies' keys (`--session-key-file`, session-keys.ts): the first seals, each opens; the
   * front ends of an estate share them. Default: one random key per process (one front end).
   */
  readonly sessionKeys?: readonly Uint8Array[];
  /** The shared store for revocations and lockout counters (`--redis`); default this process's memory. */
  readonly redis?: SharedStoreSettings;
  /** A shared store opened by the caller (a `serve --workers` worker's, ipc-store.ts); instead of `redis`. */
  readonly sharedStore?: SharedStore;
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
  /** This server as the estate in use describes it. */
  readonly server: Server;
  readonly listeners: readonly Listening[];
  /** The port of the listener named `name`. */
  port(name: string): number;
  /** Its health pages and readiness (docs/operations.md "Health pages"), for the estate in use. */
  readonly health: HealthMonitor;
  /** Its next hops' states, for `/status` (docs/operations.md "Next hops"), for the estate in use. */
  readonly nextHops: NextHops;
  /** The estate in use: 1 at start, one more at each reload. */
  readonly generation: number;
  /**
   * Swap in a new estate (docs/operations.md "Reload"): new requests see it, requests in flight keep the one
   * they started with. Refused, changing nothing, when it needs a restart (this server gone or its roles
   * changed, other edge limits, certificates that do not load) or while draining.
   */
  reload(next: NodeEstate): Promise<ReloadResult>;
  /**
   * Drain (docs/operations.md "Drain"): pages and `/readyz` 503 at once, `Connection: close` on every answer,
   * held Pings answered early; stop accepting after the grace, cut what is left at the timeout; then close.
   */
  drain(options: DrainOptions): Promise<DrainReport>;
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
  const store =
    o.sharedStore ??
    (await openSharedStore({
      redis: o.redis,
      log: o.logger.child({ server: o.server.name }),
      onState: o.metrics?.sharedStoreObserver(),
      memory: { maxKeys: o.lockout?.maxKeys ?? lockoutDefaults.maxKeys, now: o.lockout?.now ?? Date.now },
    }));
  // What lives as long as the process, whatever estate is loaded: pools, OWA sessions, held Pings, the edge's
  // known sources and the lockout's counters (a reload that changes the lockout's settings keeps them).
  const shared: Shared = {
    upstreams,
    knownSources: new KnownSources(),
    sessions: new OwaSessions({ keys: o.sessionKeys ?? [randomBytes(32)], revocations: store }),
    pings: new HeldPings(),
    lockoutStore: o.lockout?.store ?? store,
  };
  const generations = new Generations<Generation>(startGeneration(o, shared, undefined), (g, successor) =>
    g.stop(successor),
  );
  /** The options of the estate in use (a reload replaces its estate parts). */
  let live = o;
  let draining = false;
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
    known: (address: string) => shared.knownSources.has(address),
    ...(proxies === undefined && servers === undefined
      ? {}
      : {
          exempt: (address: string) =>
            isTrustedAddress(proxies, address) || isTrustedAddress(servers, address),
        }),
  });
  const started: Listening[] = [];
  const stopAll = async (graceMs: number): Promise<void> => {
    await generations.current.health.stop();
    await Promise.all(started.map((l) => l.close(graceMs)));
    generations.stopAll();
    gate.close();
  };
  try {
    for (const l of o.listeners) {
      const scheme = l.certificates && l.certificates.length > 0 ? 'https' : 'http';
      // The handler needs the bound port (X-Forwarded-Port); with port 0 it is known only after listen.
      const at: { info?: ListenerInfo } = {};
      const listening = await listen(
        {
          name: l.name,
          host: l.host,
          port: l.port,
          ...(l.certificates ? { certificates: l.certificates } : {}),
          ...(o.internalCa === undefined ? {} : { clientCa: o.internalCa }),
          ...(l.proxyProtocolFrom ? { proxyProtocolFrom: l.proxyProtocolFrom } : {}),
          ...(l.reusePort ? { reusePort: true } : {}),
          gate,
        },
        // Each request is handled with the estate in use when it came in, to its end (a reload swaps
        // `generations.current` for new requests only).
        (req, res) => {
          if (at.info === undefined) res.destroy();
          else generations.handle(res).handler(at.info)(req, res);
        },
        o.logger,
        o.server.name,
      );
      at.info = { name: l.name, role: l.role, scheme, port: listening.port };
      started.push(listening);
    }
  } catch (err) {
    await stopAll(0);
    await upstreams.destroy();
    await store.close();
    throw err;
  }
  if (o.health?.probe !== false) generations.current.health.start();
  return {
    get server() {
      return generations.current.ctx.server;
    },
    listeners: started,
    get health() {
      return generations.current.health;
    },
    get nextHops() {
      return generations.current.ctx.nextHops as NextHops;
    },
    get generation() {
      return generations.number;
    },
    port(name) {
      const l = started.find((s) => s.name === name);
      if (!l) throw new Error(`no listener named ${name} on ${o.server.name}`);
      return l.port;
    },
    async reload(next) {
      if (draining) return { ok: false, reasons: ['the server is draining'] };
      const reasons = restartReasons(live, next);
      const tls = started.filter((l) => l.scheme === 'https');
      if (next.certificates !== undefined && tls.length > 0) {
        try {
          // Built once here only to check them: a bad pair refuses the reload before anything is swapped.
          sniContexts(next.certificates, o.internalCa);
        } catch (err) {
          reasons.push(`certificates: ${(err as Error).message}`);
        }
      }
      if (reasons.length > 0) return { ok: false, reasons };
      const server = next.index.server(o.server.name) as Server;
      const options: ServerNodeOptions = {
        ...live,
        index: next.index,
        server,
        directory: next.directory,
        lockout: next.lockout,
        limits: next.limits,
        health: next.health === undefined ? undefined : { ...next.health, timers: o.health?.timers },
      };
      const generation = startGeneration(options, shared, generations.current);
      if (next.certificates !== undefined) for (const l of tls) l.setCertificates(next.certificates);
      const previous = generations.current;
      const retired = generations.swap(generation);
      live = options;
      await previous.health.stop();
      if (o.health?.probe !== false) generation.health.start();
      return { ok: true, generation: generations.number, retired };
    },
    async drain(d) {
      draining = true;
      const began = performance.now();
      generations.current.health.drain();
      for (const l of started) l.drain();
      let pings = shared.pings.releaseAll();
      const cutNow = d.cutNow ?? new Promise<never>(() => undefined);
      let graceTimer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        graceTimer = setTimeout(resolve, d.graceMs);
      });
      let cutShort = false;
      void cutNow.then(() => {
        cutShort = true;
        // Closing (or about to): every connection is cut now, the drain's close resolves with them.
        for (const l of started) void l.close(0);
      });
      await Promise.race([grace, d.endGrace, cutNow].filter((p) => p !== undefined));
      clearTimeout(graceTimer);
      // Cut short: nothing more is answered, every connection is cut at once.
      if (!cutShort) pings += shared.pings.close();
      const left = Math.max(0, d.timeoutMs - (performance.now() - began));
      const cut = (await Promise.all(started.map((l) => l.close(left)))).reduce((a, b) => a + b, 0);
      await generations.current.health.stop();
      generations.stopAll();
      gate.close();
      await upstreams.close();
      await store.close();
      return { pingsAnswered: pings, cut, cutShort, ms: Math.round(performance.now() - began) };
    },
    async close(graceMs = 5_000) {
      await stopAll(graceMs);
      await upstreams.close();
      await store.close();
    },
  };
}

/** What outlives a reload: everything a server node keeps whatever estate it serves. */
interface Shared {
  readonly upstreams: Upstreams;
  readonly knownSources: KnownSources;
  readonly sessions: OwaSessions;
  readonly pings: HeldPings;
  readonly lockoutStore: LockoutStore;
}

/** One estate in use: its context, its health monitor, its lockout (kept by the next one when unchanged). */
interface Generation {
  readonly ctx: ServerContext;
  readonly health: HealthMonitor;
  readonly lockout: RunningLockout | undefined;
  /** The request handler of each listener, with this generation's context. */
  handler(listener: ListenerInfo): (req: IncomingMessage, res: ServerResponse) => void;
  /** No request of it is left: stop what is its own (the lockout's timer, unless `successor` kept it). */
  stop(successor: Generation | undefined): void;
}

/** A lockout with its settings (to tell a reload that changes them) and its sweep timer. */
interface RunningLockout {
  readonly lockout: Lockout;
  readonly settings: string;
  readonly sweep: NodeJS.Timeout;
}

/** The context and health of an estate; the lockout of `previous` when its settings did not change. */
function startGeneration(o: ServerNodeOptions, shared: Shared, previous: Generation | undefined): Generation {
  const settings = JSON.stringify(o.lockout ?? {}, (_k, v: unknown) =>
    typeof v === 'function' ? undefined : v,
  );
  const kept = previous?.lockout?.settings === settings ? previous.lockout : undefined;
  let running: RunningLockout | undefined = kept;
  if (running === undefined && o.lockout?.enabled !== false) {
    const lockout = startLockout({ ...o, lockout: { ...o.lockout, store: shared.lockoutStore } });
    // Unlocks are also noticed on the next attempt; the timer logs those of accounts nobody tries again.
    running = { lockout, settings, sweep: setInterval(() => lockout.sweep(), 60_000).unref() };
  }
  const lockout = running?.lockout;
  // The next hops' states and the choice among equivalent servers (docs/operations.md "Next hops").
  const nextHops = new NextHops({
    settings: o.health ?? {},
    observer: nextHopLog(o.logger, o.server.name, o.metrics?.nextHopObserver()),
  });
  const health = startHealth(o, shared.upstreams, nextHops, previous?.health);
  // A reload keeps what is known of each next hop (docs/operations.md "Reload").
  if (previous?.ctx.nextHops !== undefined) nextHops.inherit(previous.ctx.nextHops);
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
    upstreams: shared.upstreams,
    logger: o.logger,
    sessions: shared.sessions,
    implementation: o.implementation ?? 'coexist',
    ...(o.metrics === undefined ? {} : { metrics: o.metrics }),
    ...(o.observer === undefined ? {} : { observer: o.observer }),
    ...(o.responder === undefined ? {} : { responder: o.responder }),
    ...(o.windowsAuth === undefined ? {} : { windowsAuth: o.windowsAuth }),
    ...(o.kerberos === undefined ? {} : { kerberos: o.kerberos }),
    ...(o.trustedProxies === undefined ? {} : { trustedProxies: o.trustedProxies }),
    ...(o.internalCa === undefined ? {} : { estateServers: estateServers(o.index) }),
    internalNetworks: blockList([...o.index.estate.internalNetworks, ...(o.internalNetworks ?? [])]),
    ...(o.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: o.retryAfterSeconds }),
    ...(o.idleTimeoutsMs === undefined ? {} : { idleTimeoutsMs: o.idleTimeoutsMs }),
    ...(o.storeEndpoints === undefined ? {} : { storeEndpoints: o.storeEndpoints }),
    ...(lockout === undefined ? {} : { lockout }),
    knownSources: shared.knownSources,
    health,
    nextHops,
    pings: shared.pings,
  };
  const handlers = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  return {
    ctx,
    health,
    lockout: running,
    handler(listener) {
      let h = handlers.get(listener.name);
      if (h === undefined) handlers.set(listener.name, (h = createRequestHandler(ctx, listener)));
      return h;
    },
    stop(successor) {
      if (running !== undefined && successor?.lockout !== running) clearInterval(running.sweep);
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
function startHealth(
  o: ServerNodeOptions,
  upstreams: Upstreams,
  nextHops: NextHops,
  previous: HealthMonitor | undefined,
): HealthMonitor {
  const identity = o.index.estate.users[0]?.address ?? 'coexist-health-probe';
  const { timers, intervalSeconds, timeoutSeconds, downAfter, rule } = o.health ?? {};
  const settings = {
    ...(intervalSeconds === undefined ? {} : { intervalSeconds }),
    ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
    ...(downAfter === undefined ? {} : { downAfter }),
    ...(rule === undefined ? {} : { rule }),
  };
  const plan = healthPlan(o.index, o.server, o.storeEndpoints);
  nextHops.register(plan);
  const metrics = o.metrics?.healthObserver();
  const hops = nextHops.healthObserver();
  return new HealthMonitor({
    server: o.server,
    plan,
    ...(previous === undefined ? {} : { previous }),
    settings,
    probeHop: upstreamProbe(upstreams),
    ...(o.directory === undefined ? {} : { probeDirectory: directoryProbe(o.directory, identity) }),
    ...(timers === undefined ? {} : { timers }),
    observer: {
      ...metrics,
      probe: (hop, ok) => {
        metrics?.probe(hop, ok);
        hops.probe(hop, ok);
      },
      // One line per change, with the hop's name: the log is the operator's, not the internet's.
      transition: (hop, up) => {
        hops.transition(hop, up);
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
