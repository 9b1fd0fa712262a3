/**
 * Health of one server for load balancers (docs/operations.md "Health pages"): the directory's health, an
 * active prober of the next hops this server uses per protocol, and the `/<vdir>/healthcheck.htm` pages and
 * `/readyz` answer precomputed from them, so answering a probe costs a map lookup.
 *
 * Which next hops a protocol needs comes from the engine: `decide()` is asked, at this server in each of its
 * roles, for one mailbox of every mailbox server of the estate, from inside and from outside. A proxy
 * decision is a next hop; a redirect or an answer given here (Autodiscover at the front end, OWA's logon
 * and redirects, the mailbox role's own content) needs only the directory.
 */
import { Buffer } from 'node:buffer';
import type { EstateIndex, Mailbox } from '../core/estate/estate-index.ts';
import type { Server } from '../core/estate/estate.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import { protocolPath, protocols } from '../core/protocols/protocol.ts';
import type { Role } from '../core/routing/decide.ts';
import { decide } from '../core/routing/decide.ts';
import type { Directory } from '../directory/directory.ts';
import type { Upstreams } from './upstreams.ts';

/**
 * When a protocol's page answers 200: `any`, while it can serve some mailboxes (an answer it gives itself,
 * or at least one healthy next hop); `every`, only while every mailbox server's users it routes have a
 * healthy next hop or an answer given here.
 */
export type HealthRule = 'any' | 'every';

/** The estate file's `health` section, as the data plane takes it. */
export interface HealthSettings {
  /** Seconds between two probe rounds; default 10. */
  readonly intervalSeconds?: number;
  /** Longest a probe (a next hop's answer, a directory lookup) may take before it counts as failed; default 3. */
  readonly timeoutSeconds?: number;
  /** Consecutive failed probes after which a next hop (or the directory) is down; default 3. Up again after one success. */
  readonly downAfter?: number;
  /** When a page answers 200 (`HealthRule`); default `any`. */
  readonly rule?: HealthRule;
  /** Consecutive failed requests after which a next hop is ejected (next-hops.ts); default 3. */
  readonly ejectAfter?: number;
}

/** The defaults of `HealthSettings` (docs/operations.md "Health pages"). */
export const healthDefaults: Required<HealthSettings> = {
  intervalSeconds: 10,
  timeoutSeconds: 3,
  downAfter: 3,
  rule: 'any',
  ejectAfter: 3,
};

/** A next hop as the prober calls it. */
export interface HopTarget {
  /** The probe URL: the key of the hop. */
  readonly url: string;
  /** The next hop's estate name. */
  readonly server: string;
}

/** What one protocol needs at this server in one role. */
export interface ProtocolNeeds {
  /** Some mailboxes are answered (or redirected) here: only the directory is needed for them. */
  readonly answersHere: boolean;
  /** Per mailbox server whose users go on to a next hop: the probe URLs of the hops that can serve them. */
  readonly groups: readonly (readonly string[])[];
}

/** Every protocol's needs in one role, and every hop to probe. */
export interface HealthPlan {
  readonly needs: ReadonlyMap<Role, ReadonlyMap<Protocol, ProtocolNeeds>>;
  readonly hops: ReadonlyMap<string, HopTarget>;
  /** Which protocols use each hop (metrics label). */
  readonly hopProtocols: ReadonlyMap<string, ReadonlySet<Protocol>>;
}

/** The first path segment of a protocol's virtual directory (`EWS`, `Microsoft-Server-ActiveSync`). */
export const vdirOf = (p: Protocol): string => protocolPath[p].split('/')[1] ?? '';

/** `healthcheck.htm` of a protocol's virtual directory at `origin`. */
const probeUrl = (origin: string, p: Protocol): string => `${origin}/${vdirOf(p)}/healthcheck.htm`;

/**
 * The key of the next hop a request to `url` for `protocol` goes to: its probe URL (the origin's
 * `healthcheck.htm` of the protocol's vdir), what the prober, the passive counts (next-hops.ts), `/status` and
 * the metrics all name a hop by.
 */
export const hopKey = (url: string, p: Protocol): string => probeUrl(new URL(url).origin, p);

/**
 * The next hops `server` uses per protocol, derived with the engine for any user: one mailbox per mailbox
 * server stands for all its users (the engine routes on the mailbox's server and site), asked from inside
 * and outside and for every host name this server answers for.
 */
export function healthPlan(
  index: EstateIndex,
  server: Server,
  /** contracts.ts `StoreEndpoints`: a stand-in store endpoint is probed where it is. */
  storeEndpoints?: (server: string, protocol: Protocol) => { readonly url: string } | undefined,
): HealthPlan {
  const representatives = new Map<string, Mailbox>();
  for (const u of index.estate.users) {
    if (representatives.has(u.mailboxServer)) continue;
    const m = index.mailbox(u.address);
    if (m) representatives.set(u.mailboxServer, m);
  }
  const hostNames = [
    server.fqdn,
    ...index.estate.namespaces.filter((n) => n.server === server.name).map((n) => n.host),
  ];
  const hops = new Map<string, HopTarget>();
  const hopProtocols = new Map<string, Set<Protocol>>();
  const needs = new Map<Role, Map<Protocol, ProtocolNeeds>>();
  for (const role of server.roles) {
    const byProtocol = new Map<Protocol, ProtocolNeeds>();
    for (const protocol of protocols) {
      let answersHere = false;
      const groups: string[][] = [];
      for (const mailbox of representatives.values()) {
        const group = new Set<string>();
        let here = false;
        for (const client of ['internal', 'external'] as const) {
          for (const host of hostNames) {
            const d = decide(
              { server, role },
              { protocol, mailbox, client, host },
              index,
              index.estate.policies,
            );
            if (d.kind === 'respond' || d.kind === 'redirect') here = true;
            if (d.kind !== 'proxy') continue;
            const endpoint = d.via === 'store' ? storeEndpoints?.(d.to.name, protocol) : undefined;
            // The hop and its equivalent servers (docs/config.md "Equivalent servers"): any of them serves.
            const candidates = [
              { server: d.to.name, base: endpoint?.url ?? d.url ?? `https://${d.to.fqdn}/` },
              ...(d.alternatives ?? []).map((a) => ({ server: a.to.name, base: a.url })),
            ];
            for (const c of candidates) {
              const url = hopKey(c.base, protocol);
              hops.set(url, { url, server: c.server });
              let used = hopProtocols.get(url);
              if (!used) hopProtocols.set(url, (used = new Set()));
              used.add(protocol);
              group.add(url);
            }
          }
        }
        if (here) answersHere = true;
        else if (group.size > 0) groups.push([...group]);
      }
      byProtocol.set(protocol, { answersHere, groups });
    }
    needs.set(role, byProtocol);
  }
  return { needs, hops, hopProtocols };
}

/** Timers, injected so tests decide when a round runs. */
export interface HealthTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: HealthTimers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** What the monitor reports (metrics.ts `healthObserver`; the node's log). */
export interface HealthObserver {
  /** A probe's result. */
  probe?(hop: HopTarget, ok: boolean): void;
  /** A hop's state, per protocol that uses it: set at start and on every change. */
  hopState?(hop: HopTarget, protocols: ReadonlySet<Protocol>, up: boolean): void;
  /** The directory's state: set at start and on every change. */
  directoryState?(up: boolean): void;
  /** A state changed (hop `undefined`: the directory). */
  transition?(hop: HopTarget | undefined, up: boolean): void;
}

/** Options of `HealthMonitor`. */
export interface HealthMonitorOptions {
  readonly server: Server;
  readonly plan: HealthPlan;
  readonly settings?: HealthSettings;
  /** Probe one hop: resolve true for any HTTP answer, false for a connect/TLS failure or a timeout. */
  readonly probeHop: (hop: HopTarget, timeoutMs: number) => Promise<boolean>;
  /** A bounded lookup through the directory's own API; absent (the embedded directory): always up. */
  readonly probeDirectory?: (timeoutMs: number) => Promise<void>;
  readonly observer?: HealthObserver;
  readonly timers?: HealthTimers;
  /**
   * The monitor this one replaces (a reload, docs/operations.md "Reload"): a hop of both plans starts in the
   * state the old monitor had it in, so a dead hop stays down across the reload instead of being tried again
   * until `downAfter` probes fail. The directory starts up (a reload may open another one).
   */
  readonly previous?: HealthMonitor;
}

/** A precomputed answer: status and body. */
export interface HealthAnswer {
  readonly status: 200 | 503;
  readonly body: Buffer;
}

/** What `/readyz` says. */
export interface Readiness {
  readonly ready: boolean;
  /** The server is draining (docs/operations.md "Drain"): not ready, whatever the probes say. */
  readonly draining?: boolean;
  readonly directory: 'up' | 'down';
  /** Protocols this server serves that cannot be served now, with their hops that are down. */
  readonly down: readonly {
    readonly role: Role;
    readonly protocol: Protocol;
    readonly hops: readonly { readonly server: string; readonly url: string }[];
  }[];
}

interface Counter {
  up: boolean;
  failures: number;
}

/**
 * The health state machine: each hop and the directory are up at start, down after `downAfter`
 * consecutive failed probes, up again after one success. A round probes everything at once; the next starts
 * `intervalSeconds` after it ended (rounds never overlap).
 */
export class HealthMonitor {
  readonly #o: HealthMonitorOptions;
  readonly #settings: Required<HealthSettings>;
  readonly #timers: HealthTimers;
  readonly #hops = new Map<string, Counter>();
  readonly #directory: Counter = { up: true, failures: 0 };
  readonly #listeners = new Set<() => void>();
  #pages = new Map<Role, Map<Protocol, HealthAnswer>>();
  #readiness: Readiness = { ready: true, directory: 'up', down: [] };
  #timer: unknown;
  #stopped = true;
  /** Draining (docs/operations.md "Drain"): every page and `/readyz` say 503, whatever the probes say. */
  #draining = false;
  #round: Promise<void> | undefined;

  constructor(o: HealthMonitorOptions) {
    this.#o = o;
    this.#settings = { ...healthDefaults, ...o.settings };
    this.#timers = o.timers ?? realTimers;
    const previous = o.previous;
    for (const url of o.plan.hops.keys()) {
      const before = previous === undefined ? undefined : previous.#hops.get(url);
      this.#hops.set(url, before === undefined ? { up: true, failures: 0 } : { ...before });
    }
    for (const [url, hop] of o.plan.hops)
      o.observer?.hopState?.(hop, o.plan.hopProtocols.get(url) ?? new Set(), this.#hops.get(url)?.up ?? true);
    o.observer?.directoryState?.(true);
    this.#recompute();
  }

  /** Start probing: a first round now, then one every interval. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    void this.#loop();
  }

  /** Stop probing; a round in flight ends, but no other starts. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = undefined;
    await this.#round;
  }

  /** One probe round now (tests, and the loop). */
  round(): Promise<void> {
    this.#round ??= this.#probeAll().finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  /** The page of `protocol` for a request on a listener in `role`. */
  page(role: Role, protocol: Protocol): HealthAnswer {
    if (this.#draining) return draining;
    return this.#pages.get(role)?.get(protocol) ?? notServed;
  }

  /** What `/readyz` answers. */
  readiness(): Readiness {
    return this.#draining ? { ...this.#readiness, ready: false, draining: true } : this.#readiness;
  }

  /** The server is draining: from now on every page and `/readyz` answer 503, so balancers move traffic away. */
  drain(): void {
    this.#draining = true;
  }

  /** Whether a hop is up (by probe URL); undefined for a hop this server does not use. */
  hopUp(url: string): boolean | undefined {
    return this.#hops.get(url)?.up;
  }

  /** Call `listener` after every change of state; returns the function that unsubscribes. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async #loop(): Promise<void> {
    if (this.#stopped) return;
    await this.round();
    if (this.#stopped) return;
    this.#timer = this.#timers.set(() => void this.#loop(), this.#settings.intervalSeconds * 1000);
  }

  async #probeAll(): Promise<void> {
    const timeoutMs = this.#settings.timeoutSeconds * 1000;
    const { plan, observer, probeDirectory } = this.#o;
    const directory = probeDirectory
      ? probeDirectory(timeoutMs).then(
          () => true,
          () => false,
        )
      : Promise.resolve(true);
    const hops = [...plan.hops.values()].map(async (hop) => {
      const ok = await this.#o.probeHop(hop, timeoutMs).catch(() => false);
      observer?.probe?.(hop, ok);
      return { hop, ok };
    });
    const [dirOk, results] = await Promise.all([directory, Promise.all(hops)]);
    let changed = this.#count(this.#directory, dirOk);
    if (changed) {
      observer?.directoryState?.(this.#directory.up);
      observer?.transition?.(undefined, this.#directory.up);
    }
    for (const { hop, ok } of results) {
      const counter = this.#hops.get(hop.url);
      if (!counter || !this.#count(counter, ok)) continue;
      changed = true;
      observer?.hopState?.(hop, plan.hopProtocols.get(hop.url) ?? new Set(), counter.up);
      observer?.transition?.(hop, counter.up);
    }
    if (!changed) return;
    this.#recompute();
    for (const l of this.#listeners) l();
  }

  /** Count one result; whether the state changed. */
  #count(c: Counter, ok: boolean): boolean {
    if (ok) {
      c.failures = 0;
      if (c.up) return false;
      c.up = true;
      return true;
    }
    c.failures++;
    if (!c.up || c.failures < this.#settings.downAfter) return false;
    c.up = false;
    return true;
  }

  /** The pages and the readiness, from the states (after every change, never per request). */
  #recompute(): void {
    const { server, plan } = this.#o;
    const dirUp = this.#directory.up;
    const up = (url: string): boolean => this.#hops.get(url)?.up === true;
    const ok = answerOf(200, `200 OK<br/>${server.fqdn}`);
    const pages = new Map<Role, Map<Protocol, HealthAnswer>>();
    const down: Readiness['down'][number][] = [];
    for (const [role, byProtocol] of plan.needs) {
      const rolePages = new Map<Protocol, HealthAnswer>();
      for (const [protocol, n] of byProtocol) {
        if (!n.answersHere && n.groups.length === 0) continue; // not served here: the default answer
        const served =
          this.#settings.rule === 'every'
            ? n.groups.every((g) => g.some(up))
            : n.answersHere || n.groups.some((g) => g.some(up));
        if (!dirUp) rolePages.set(protocol, directoryDown);
        else rolePages.set(protocol, served ? ok : hopsDown);
        if (served) continue;
        const hopsOff = [...new Set(n.groups.flat())]
          .filter((u) => !up(u))
          .map((url) => ({ server: plan.hops.get(url)?.server ?? '', url }));
        down.push({ role, protocol, hops: hopsOff });
      }
      pages.set(role, rolePages);
    }
    this.#pages = pages;
    this.#readiness = { ready: dirUp && down.length === 0, directory: dirUp ? 'up' : 'down', down };
  }
}

function answerOf(status: 200 | 503, text: string): HealthAnswer {
  return { status, body: Buffer.from(text) };
}

// What the internet sees of a page that is down: a short reason, never a hop's name or the directory's detail.
const notServed = answerOf(503, 'Service Unavailable: not served here');
const directoryDown = answerOf(503, 'Service Unavailable');
const hopsDown = directoryDown;
const draining = directoryDown;

/** The lower-cased paths of the pages, each with its protocol: `/owa/healthcheck.htm` -> `owa`. */
const pagePaths: ReadonlyMap<string, Protocol> = new Map(
  protocols.map((p) => [`/${vdirOf(p).toLowerCase()}`, p] as const),
);

/**
 * The protocol whose health page `path` is: a vdir in any case, then exactly `/healthcheck.htm` (the
 * client's path as sent, query already removed). Anything else, `/owa/healthcheck.htm/../x`,
 * `/owa/healthcheck.htm%2f..`, `/owa/HealthCheck.htm;x`, is not a page.
 */
export function healthPageOf(path: string): Protocol | undefined {
  const slash = path.lastIndexOf('/');
  if (slash <= 0 || path.slice(slash + 1) !== 'healthcheck.htm') return undefined;
  return pagePaths.get(path.slice(0, slash).toLowerCase());
}

/**
 * Probe a hop through this server's own pools (its TLS context, client certificate and the estate's DNS):
 * `GET <vdir>/healthcheck.htm`. Any HTTP answer is up, whatever its status (a live Exchange 2007 vdir answers
 * 401, 302 or 404); a connect or TLS failure, or no answer within `timeoutMs`, is down.
 */
export function upstreamProbe(upstreams: Upstreams): (hop: HopTarget, timeoutMs: number) => Promise<boolean> {
  return async (hop, timeoutMs) => {
    const url = new URL(hop.url);
    try {
      const answer = await upstreams.pool(url.origin).request({
        method: 'GET',
        path: url.pathname,
        headers: { 'user-agent': 'coexist-health' },
        signal: AbortSignal.timeout(timeoutMs),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      await answer.body.dump();
      return true;
    } catch {
      return false;
    }
  };
}

/** The directory is slower than this: the probe failed. */
export class DirectoryProbeTimeoutError extends Error {
  override readonly name = 'DirectoryProbeTimeoutError';
}

/**
 * A bounded lookup through the directory's own API (not its cache): `identity` looked up, found or not, within
 * `timeoutMs`; a `DirectoryUnavailableError` or the timeout rejects.
 */
export function directoryProbe(directory: Directory, identity: string): (timeoutMs: number) => Promise<void> {
  return async (timeoutMs) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DirectoryProbeTimeoutError('directory probe timed out')),
        timeoutMs,
      );
    });
    try {
      await Promise.race([directory.findMailbox(identity), late]);
    } finally {
      clearTimeout(timer);
    }
  };
}
