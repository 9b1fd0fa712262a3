/**
 * Reload and drain of a running server node (docs/operations.md "Reload", "Drain"): what a reload swaps in,
 * what only a restart can change, and the generations of estate in use, each kept until its last request
 * ends, so a request (a held Ping, an RPC channel) finishes with the estate it started with.
 */
import type { ServerResponse } from 'node:http';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Directory } from '../directory/directory.ts';
import type { EdgeLimits } from './edge-limits.ts';
import { edgeLimits } from './edge-limits.ts';
import type { HealthSettings } from './health.ts';
import type { CertificateEntry } from './listener.ts';
import type { LockoutOptions } from './lockout.ts';

/** What a reload swaps in: a new estate and what is read with it. */
export interface NodeEstate {
  readonly index: EstateIndex;
  /** Default: the estate file's users. */
  readonly directory?: Directory | undefined;
  readonly lockout?: LockoutOptions | undefined;
  readonly limits?: Partial<EdgeLimits> | undefined;
  readonly health?: (HealthSettings & { readonly probe?: boolean }) | undefined;
  /** The certificates of every TLS listener, read again; absent: they keep theirs. */
  readonly certificates?: readonly CertificateEntry[] | undefined;
}

/** A reload swapped in (`generation`), or was refused with every reason. */
export type ReloadResult =
  | {
      readonly ok: true;
      /** The number of the estate now in use. */
      readonly generation: number;
      /** Resolves once no request that started with the previous estate is left. */
      readonly retired: Promise<void>;
    }
  | { readonly ok: false; readonly reasons: readonly string[] };

/** How a node drains. */
export interface DrainOptions {
  /** How long the listeners keep accepting after the pages went 503 (a balancer notices within it). */
  readonly graceMs: number;
  /** From the start of the drain: requests still in flight then are cut. */
  readonly timeoutMs: number;
  /** Resolves to end the grace early (a second `POST /drain`). */
  readonly endGrace?: Promise<unknown>;
  /** Resolves to cut everything now (a second signal). */
  readonly cutNow?: Promise<unknown>;
}

/** What a drain did, for its log line. */
export interface DrainReport {
  /** Held ActiveSync Pings answered early. */
  readonly pingsAnswered: number;
  /** Connections still open at the timeout (or the second signal), cut. */
  readonly cut: number;
  /** A second signal cut it short. */
  readonly cutShort: boolean;
  readonly ms: number;
}

/** Where the estate in use and the new one are the same server, as a restart would have them. */
interface Live {
  readonly server: { readonly name: string; readonly roles: readonly string[] };
  readonly limits?: Partial<EdgeLimits> | undefined;
}

/**
 * Why `next` needs a restart rather than a reload, one readable reason each; empty when it can be swapped
 * in. The listeners were made for this server's roles, and the edge's limits are the listeners' own.
 */
export function restartReasons(live: Live, next: NodeEstate): string[] {
  const reasons: string[] = [];
  const name = live.server.name;
  const server = next.index.server(name);
  if (server === undefined) {
    reasons.push(`${name} is no longer a server of the estate: a restart with another --as is needed`);
  } else {
    const was = [...live.server.roles].sort().join(', ');
    const now = [...server.roles].sort().join(', ');
    if (was !== now)
      reasons.push(`${name}'s roles changed (${was} -> ${now}): its listeners are made at start`);
  }
  const before = edgeLimits(live.limits);
  const after = edgeLimits(next.limits);
  const changed = (Object.keys(before) as (keyof EdgeLimits)[]).filter((k) => before[k] !== after[k]);
  if (changed.length > 0)
    reasons.push(`limits.${changed.join(', limits.')} changed: the edge's limits are set at start`);
  return reasons;
}

/**
 * The generations of estate of a node: the current one, which new requests get, and the earlier ones still
 * finishing requests. An earlier one is stopped (`stop`) when its last request ends.
 */
export class Generations<G> {
  #current: G;
  #number = 1;
  readonly #inFlight = new Map<G, number>();
  readonly #retired = new Map<G, () => void>();

  constructor(
    first: G,
    /** Called once per generation when it is done: retired with no request left, or at `stopAll`. */
    private readonly stop: (g: G, successor: G | undefined) => void,
  ) {
    this.#current = first;
  }

  get current(): G {
    return this.#current;
  }

  /** The number of the current generation: 1 at start, one more per swap. */
  get number(): number {
    return this.#number;
  }

  /** The generation a request is handled with: the current one, held until `res` closes. */
  handle(res: ServerResponse): G {
    const g = this.#current;
    this.#inFlight.set(g, (this.#inFlight.get(g) ?? 0) + 1);
    // `on`: 'close' is emitted once; `once` would add a wrapper that lives as long as the request.
    res.on('close', () => {
      const left = (this.#inFlight.get(g) ?? 1) - 1;
      if (left > 0) {
        this.#inFlight.set(g, left);
        return;
      }
      this.#inFlight.delete(g);
      this.#retired.get(g)?.();
    });
    return g;
  }

  /** Make `next` current; resolves when the previous one has no request left (and was stopped). */
  swap(next: G): Promise<void> {
    const previous = this.#current;
    this.#current = next;
    this.#number++;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.#retired.delete(previous);
        this.stop(previous, this.#current);
        resolve();
      };
      if (!this.#inFlight.has(previous)) done();
      else this.#retired.set(previous, done);
    });
  }

  /** The node stops: every generation still running is stopped. */
  stopAll(): void {
    for (const done of [...this.#retired.values()]) done();
    this.stop(this.#current, undefined);
  }
}
