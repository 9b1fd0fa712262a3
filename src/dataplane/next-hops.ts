/**
 * The next hops as the data plane uses them (docs/operations.md "Next hops"): which of a decision's equivalent
 * servers a request goes to, and each hop's state from both sides: the active prober's (health.ts, down after
 * `downAfter` failed probes) and real traffic's (ejected after `ejectAfter` consecutive failures, back when the
 * prober next sees it answer). `/status` and `coexist status` print this state.
 *
 * The engine decides the rule and lists the equivalent servers (docs/config.md "Equivalent servers"); this
 * module only chooses among them, so the printed flow and the real one differ at most in which equivalent
 * server took the hop.
 */
import type { Server } from '../core/estate/estate.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { Alternative, ProxyDecision } from '../core/routing/decision.ts';
import type { HealthObserver, HealthPlan, HopTarget } from './health.ts';
import { healthDefaults, hopKey } from './health.ts';
import type { Logger } from '../observability/log.ts';
import type { UpstreamFailure } from './upstream-errors.ts';

/** The estate file's `health` settings this module reads. */
export interface NextHopSettings {
  /** Consecutive failed requests to a next hop after which it is ejected; default 3. */
  readonly ejectAfter?: number;
}

/** The default of `NextHopSettings.ejectAfter` (docs/operations.md "Next hops"). */
export const defaultEjectAfter = healthDefaults.ejectAfter;

/** A hop's state: `down` (its probes fail), `ejected` (real traffic failed), else `up`. */
export type HopState = 'up' | 'down' | 'ejected';

/** One hop as `/status` reports it. */
export interface HopStatus {
  /** The next hop's estate name. */
  readonly server: string;
  readonly protocols: readonly Protocol[];
  /** The origin and vdir requests go to (`https://cas2007-ny.o365info.local/EWS`). */
  readonly url: string;
  readonly state: HopState;
  /** When the state last changed (ISO 8601); at start, when this server started. */
  readonly since: string;
  /** Consecutive requests to it that failed without an answer (reset by any answer). */
  readonly consecutiveFailures: number;
  /** Consecutive failed probes (reset by any answer to a probe). */
  readonly consecutiveProbeFailures: number;
  /** The last failure seen, by a request or a probe: when, and its catalogue code or `probe failed`. */
  readonly lastError?: { readonly at: string; readonly by: 'request' | 'probe'; readonly error: string };
}

/** Which hop a request goes to. */
export interface HopChoice {
  readonly to: Server;
  /** The decision's URL for that server; absent for a `store` hop (the caller knows its endpoint). */
  readonly url: string | undefined;
  /** The chosen server is an equivalent, not the one the decision names first. */
  readonly alternative: boolean;
}

/** What the hops report (metrics.ts `nextHopObserver`). */
export interface NextHopObserver {
  /** One request's result at a hop: it answered, failed without an answer, or the client went away first. */
  request(hop: { readonly server: string }, protocol: Protocol, result: RequestResult): void;
  /** A hop's ejection started (true, with the failure that ejected it) or ended (false). */
  ejected(hop: { readonly server: string }, protocol: Protocol, ejected: boolean, error?: string): void;
}

/**
 * `metrics` and one log line per ejection and return, with the hop's name and URL (the log is the operator's):
 * what a server node reports its next hops to.
 */
export function nextHopLog(logger: Logger, serverName: string, metrics?: NextHopObserver): NextHopObserver {
  return {
    request: (hop, protocol, result) => metrics?.request(hop, protocol, result),
    ejected: (hop, protocol, ejected, error) => {
      metrics?.ejected(hop, protocol, ejected, error);
      const fields = { server: serverName, nextHop: hop.server, protocol };
      if (ejected) logger.warn({ ...fields, error }, 'next hop ejected: requests to it failed');
      else logger.info(fields, 'next hop back: its probe answered');
    },
  };
}

/** How a request at a next hop ended, for its counts. */
export type RequestResult = 'answered' | 'failed' | 'client_aborted';

interface Hop {
  readonly key: string;
  readonly server: string;
  readonly protocols: Set<Protocol>;
  probeUp: boolean;
  ejected: boolean;
  since: number;
  failures: number;
  probeFailures: number;
  lastError?: { at: number; by: 'request' | 'probe'; error: string };
}

/** Options of `NextHops`. */
export interface NextHopsOptions {
  readonly settings?: NextHopSettings;
  readonly observer?: NextHopObserver;
  /** The wall clock, for `since` (tests pass their own). */
  readonly now?: () => number;
}

/**
 * Every next hop of one server and the choice among equivalent ones. Which equivalent server takes a request
 * is decided per mailbox by rendezvous hashing (highest random weight) over the usable ones: the same mailbox
 * always reaches the same server while it is usable, so a device's Ping and Sync, or an Outlook's RPC channels,
 * land together; when a server goes, only its mailboxes move, and they come back when it returns. Nothing a
 * client sends besides which mailbox it is routed for takes part (docs/security.md "Next hops").
 */
export class NextHops {
  readonly #hops = new Map<string, Hop>();
  /** Protocol -> decision URL -> hop key (URLs come from the estate: bounded maps; no string built per request). */
  readonly #keys = new Map<Protocol, Map<string, string>>();
  readonly #ejectAfter: number;
  readonly #observer: NextHopObserver | undefined;
  readonly #now: () => number;

  constructor(o: NextHopsOptions = {}) {
    this.#ejectAfter = o.settings?.ejectAfter ?? defaultEjectAfter;
    this.#observer = o.observer;
    this.#now = o.now ?? Date.now;
  }

  /** Know the hops the prober probes (health.ts `healthPlan`) from the start; others are added as requests reach them. */
  register(plan: HealthPlan): void {
    for (const [key, target] of plan.hops) {
      const hop = this.#hop(key, target.server);
      for (const p of plan.hopProtocols.get(key) ?? []) hop.protocols.add(p);
    }
  }

  /** The key of the hop a request to `url` for `protocol` goes to (memoised: health.ts `hopKey`). */
  keyOf(url: string, protocol: Protocol): string {
    let byUrl = this.#keys.get(protocol);
    if (byUrl === undefined) this.#keys.set(protocol, (byUrl = new Map()));
    let key = byUrl.get(url);
    if (key === undefined) {
      key = hopKey(url, protocol);
      byUrl.set(url, key);
    }
    return key;
  }

  /**
   * The server a proxy decision's request goes to: among the decision's server and its equivalents, the usable
   * one (up and not ejected) that `anchor` (the routed mailbox's address) ranks first. When none is usable,
   * the decision's own server: the request fails there as it would without equivalents, and is never sent
   * round in search of one.
   */
  choose(d: ProxyDecision, protocol: Protocol, anchor: string): HopChoice {
    const alternatives = d.alternatives;
    if (alternatives === undefined || alternatives.length === 0 || d.url === undefined)
      return { to: d.to, url: d.url, alternative: false };
    const seed = anchorHash(anchor.toLowerCase());
    // The decision's own server first (index -1), then its alternatives; no closure or object per candidate.
    let best = -2;
    let bestWeight = -1;
    for (let i = -1; i < alternatives.length; i++) {
      const a = i < 0 ? undefined : (alternatives[i] as Alternative);
      const to = a === undefined ? d.to : a.to;
      if (!this.usable(this.keyOf(a === undefined ? d.url : a.url, protocol))) continue;
      const w = serverWeight(seed, to.name);
      if (w > bestWeight) {
        bestWeight = w;
        best = i;
      }
    }
    const chosen = best >= 0 ? alternatives[best] : undefined;
    return chosen === undefined
      ? { to: d.to, url: d.url, alternative: false }
      : { to: chosen.to, url: chosen.url, alternative: true };
  }

  /**
   * Take over the hops' states from the `NextHops` this one replaces (a reload): an ejected or probed-down hop
   * stays so, and its counts and last error carry on, so a reload does not send traffic to a dead hop again.
   */
  inherit(previous: NextHops): void {
    for (const [key, before] of previous.#hops) {
      const hop = this.#hop(key, before.server);
      for (const p of before.protocols) hop.protocols.add(p);
      hop.probeUp = before.probeUp;
      hop.ejected = before.ejected;
      hop.since = before.since;
      hop.failures = before.failures;
      hop.probeFailures = before.probeFailures;
      if (before.lastError !== undefined) hop.lastError = { ...before.lastError };
    }
  }

  /** Whether requests may go to the hop: its probes have not put it down and traffic has not ejected it. */
  usable(key: string): boolean {
    const hop = this.#hops.get(key);
    return hop === undefined || (hop.probeUp && !hop.ejected);
  }

  /** The hop's state now. */
  state(key: string): HopState {
    const hop = this.#hops.get(key);
    if (hop === undefined) return 'up';
    return !hop.probeUp ? 'down' : hop.ejected ? 'ejected' : 'up';
  }

  /**
   * A request at the hop ended. Counted against it only when the hop itself did not answer: no connection,
   * a TLS failure, or the connection broken or timed out before its answer's head. A 502, 503 or 504 the hop
   * answers is about the servers behind it (which its equivalents share), and a client that went away is
   * nobody's fault of the hop's (docs/operations.md "Next hops").
   */
  report(
    key: string,
    server: string,
    protocol: Protocol,
    result: { readonly upstreamStatus?: number; readonly failure?: UpstreamFailure },
  ): void {
    const hop = this.#hop(key, server);
    hop.protocols.add(protocol);
    const failure = result.failure;
    if (result.upstreamStatus !== undefined || failure === undefined) {
      this.#observer?.request(hop, protocol, 'answered');
      hop.failures = 0;
      return;
    }
    if (failure.outcome === 'client_aborted') {
      this.#observer?.request(hop, protocol, 'client_aborted');
      return;
    }
    this.#observer?.request(hop, protocol, 'failed');
    hop.failures++;
    const at = this.#now();
    hop.lastError = {
      at,
      by: 'request',
      error: failure.errorCode === undefined ? failure.code : `${failure.code} (${failure.errorCode})`,
    };
    if (hop.ejected || hop.failures < this.#ejectAfter) return;
    hop.ejected = true;
    if (hop.probeUp) hop.since = at;
    for (const p of hop.protocols) this.#observer?.ejected(hop, p, true, hop.lastError.error);
  }

  /**
   * What the prober reports here (compose it into the monitor's observer): every probe's result (any
   * answer ends an ejection: the hop is back) and every change of its up/down state.
   */
  healthObserver(): Required<Pick<HealthObserver, 'probe' | 'transition'>> {
    return {
      probe: (target: HopTarget, ok: boolean) => {
        const hop = this.#hop(target.url, target.server);
        if (!ok) {
          hop.probeFailures++;
          hop.lastError = { at: this.#now(), by: 'probe', error: 'probe failed' };
          return;
        }
        hop.probeFailures = 0;
        if (!hop.ejected) return;
        hop.ejected = false;
        hop.failures = 0;
        hop.since = this.#now();
        for (const p of hop.protocols) this.#observer?.ejected(hop, p, false);
      },
      transition: (target: HopTarget | undefined, up: boolean) => {
        if (target === undefined) return;
        const hop = this.#hop(target.url, target.server);
        hop.probeUp = up;
        hop.since = this.#now();
      },
    };
  }

  /** Every hop, by server name then URL. */
  status(): HopStatus[] {
    return [...this.#hops.values()]
      .map((h): HopStatus => {
        const status: HopStatus = {
          server: h.server,
          protocols: [...h.protocols].sort(),
          url: h.key.slice(0, -'/healthcheck.htm'.length),
          state: this.state(h.key),
          since: new Date(h.since).toISOString(),
          consecutiveFailures: h.failures,
          consecutiveProbeFailures: h.probeFailures,
        };
        const e = h.lastError;
        return e === undefined
          ? status
          : { ...status, lastError: { at: new Date(e.at).toISOString(), by: e.by, error: e.error } };
      })
      .sort((a, b) => (a.server === b.server ? cmp(a.url, b.url) : cmp(a.server, b.server)));
  }

  #hop(key: string, server: string): Hop {
    let hop = this.#hops.get(key);
    if (hop === undefined) {
      hop = {
        key,
        server,
        protocols: new Set(),
        probeUp: true,
        ejected: false,
        since: this.#now(),
        failures: 0,
        probeFailures: 0,
      };
      this.#hops.set(key, hop);
    }
    return hop;
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The rendezvous weight of `server` for `anchor`: FNV-1a (32 bits) over both, then a final avalanche so that
 * names differing in their last letter spread well. Not a secret: a client learns nothing it could use to pick
 * a server, since only the mailbox it is routed for takes part.
 */
export function weight(anchor: string, server: string): number {
  return serverWeight(anchorHash(anchor), server);
}

/** FNV-1a over `s`, from `h`. */
function fnv(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** The hash state after the anchor and a separator: computed once per request, whatever the candidates. */
const anchorHash = (anchor: string): number => fnv(fnv(0x811c9dc5, anchor), '\n');

/** `weight` from the anchor's hash state. */
function serverWeight(seed: number, server: string): number {
  let h = fnv(seed, server);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
