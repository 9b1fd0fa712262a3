/**
 * What the front ends of an estate share besides the session key (docs/security.md "OWA sessions", "Extranet
 * smart lockout"): the logoff revocations a cookie cannot carry, and the lockout's counters, so failures on
 * two front ends add up. One front end keeps them in memory (the default); several keep them in Redis
 * (redis-store.ts), with this process's memory as the fallback while Redis is away.
 */
import type { LockoutStore } from './lockout.ts';
import { MemoryLockoutStore } from './lockout.ts';

type Awaitable<T> = T | Promise<T>;

/** Revoked session ids, each until the session's absolute expiry. */
export interface RevocationStore {
  /** `id` is revoked for `ttlMs` from now. */
  revoke(id: string, ttlMs: number): Awaitable<void>;
  /** Whether `id` is revoked now. */
  revoked(id: string): Awaitable<boolean>;
}

/** Everything shared: the lockout's counters and the revocations. */
export interface SharedStore extends LockoutStore, RevocationStore {
  /** Stop: timers, connections. */
  close(): Promise<void>;
}

/** Bounds of the in-memory store. */
export interface MemoryStoreOptions {
  /** The most lockout keys; the least recently written goes first. Default 200 000. */
  readonly maxKeys?: number;
  /** The most revocations; the one ending first goes first past it. Default 100 000. */
  readonly maxRevocations?: number;
  /** Wall-clock milliseconds; default `Date.now`. */
  readonly now?: () => number;
}

/** Revocations in memory, bounded: past the bound, the one that would end soonest goes first. */
export class MemoryRevocations implements RevocationStore {
  // Insertion order is not expiry order (sessions started at different times), so a sweep walks them all;
  // it runs only when the map is full, and drops every expired one at once.
  readonly #until = new Map<string, number>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(o: { readonly max?: number; readonly now?: () => number } = {}) {
    this.#max = o.max ?? 100_000;
    this.#now = o.now ?? Date.now;
  }

  get size(): number {
    return this.#until.size;
  }

  revoke(id: string, ttlMs: number): void {
    if (ttlMs <= 0) return;
    const now = this.#now();
    if (this.#until.size >= this.#max && !this.#until.has(id)) this.#makeRoom(now);
    this.#until.set(id, Math.max(this.#until.get(id) ?? 0, now + ttlMs));
  }

  revoked(id: string): boolean {
    const until = this.#until.get(id);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#until.delete(id);
    return false;
  }

  /** The live revocations, with what is left of each (to hand to a shared store that comes back). */
  *entries(): IterableIterator<[id: string, ttlMs: number]> {
    const now = this.#now();
    for (const [id, until] of this.#until) if (until > now) yield [id, until - now];
  }

  #makeRoom(now: number): void {
    let soonest: string | undefined;
    let soonestUntil = Infinity;
    for (const [id, until] of this.#until) {
      if (until <= now) this.#until.delete(id);
      else if (until < soonestUntil) [soonest, soonestUntil] = [id, until];
    }
    if (this.#until.size >= this.#max && soonest !== undefined) this.#until.delete(soonest);
  }
}

/** The default for one front end: both in this process's memory. */
export class MemorySharedStore implements SharedStore {
  readonly counters: MemoryLockoutStore;
  readonly revocations: MemoryRevocations;

  constructor(o: MemoryStoreOptions = {}) {
    const now = o.now ?? Date.now;
    this.counters = new MemoryLockoutStore({ maxKeys: o.maxKeys ?? 200_000, now });
    this.revocations = new MemoryRevocations({ max: o.maxRevocations ?? 100_000, now });
  }

  get(key: string): number {
    return this.counters.get(key);
  }

  increment(key: string, ttlMs: number): number {
    return this.counters.increment(key, ttlMs);
  }

  expire(key: string, ttlMs: number): void {
    this.counters.expire(key, ttlMs);
  }

  revoke(id: string, ttlMs: number): void {
    this.revocations.revoke(id, ttlMs);
  }

  revoked(id: string): boolean {
    return this.revocations.revoked(id);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
