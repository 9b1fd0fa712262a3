/**
 * Extranet smart lockout (docs/security.md "Extranet smart lockout"): failed sign-ins are counted per
 * account, apart for familiar sources (where this account signed in successfully before) and unfamiliar
 * ones, and per source across accounts (password spraying). Past a threshold the pipeline answers the
 * protocol's own failure at once, without asking the directory, so an attacker never drives the account
 * to Active Directory's own lockout threshold, while the user's phone (a familiar source) keeps working.
 * Failures are answered after a progressive, bounded delay.
 *
 * The state is counters with an expiry behind `LockoutStore` (get / increment / expire per key): in memory
 * for one front end (`MemoryLockoutStore`), in Redis for several, so their counts add up (redis-store.ts;
 * docs/operations.md "Several front ends"). The clock and the sleep are injected, so tests are deterministic.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { sourceKey } from '../net/source.ts';
import type { LockoutObserver } from '../observability/metrics.ts';

type Awaitable<T> = T | Promise<T>;

/** Counters with an expiry: what the lockout keeps, in a form a shared store can hold. */
export interface LockoutStore {
  /** The count under `key`; 0 when absent or expired. */
  get(key: string): Awaitable<number>;
  /** Add one and return the new count; a key that is absent or expired starts at 1 and lives `ttlMs`. */
  increment(key: string, ttlMs: number): Awaitable<number>;
  /** The key now lives `ttlMs` from now (0 or less: it is gone). Nothing happens to an absent key. */
  expire(key: string, ttlMs: number): Awaitable<void>;
}

/** The estate file's `lockout` section (all optional; see `lockoutDefaults`). */
export interface LockoutSettings {
  /** false turns the lockout off (every attempt is asked to the directory, as before). */
  readonly enabled?: boolean;
  /** The observation window: failures are counted for this long from the first; a lock lasts this long. */
  readonly windowSeconds?: number;
  /** Failures from unfamiliar sources, per account, that lock the account for unfamiliar sources. */
  readonly unfamiliarThreshold?: number;
  /** Failures from familiar sources, per account, that lock the account for familiar sources too. */
  readonly familiarThreshold?: number;
  /** Failures from one source across accounts (unfamiliar to each) that lock the source: spraying. */
  readonly sourceThreshold?: number;
  /** A source stays familiar to an account this long after its last successful sign-in from it. */
  readonly familiarDays?: number;
  /** Failures answered without delay before the delay starts. */
  readonly freeFailures?: number;
  /** The first delay; each further failure doubles it, up to `maxDelayMs`. */
  readonly firstDelayMs?: number;
  /** The longest delay before a failure is answered. */
  readonly maxDelayMs?: number;
  /** The most keys the in-memory store holds; the least recently written goes first. */
  readonly maxKeys?: number;
}

export const lockoutDefaults = {
  enabled: true,
  windowSeconds: 30 * 60,
  unfamiliarThreshold: 5,
  familiarThreshold: 4,
  sourceThreshold: 20,
  familiarDays: 30,
  freeFailures: 2,
  firstDelayMs: 250,
  maxDelayMs: 2_000,
  maxKeys: 200_000,
} as const satisfies Required<LockoutSettings>;

/** A lockout transition, for the log (never a password). */
export interface LockoutEvent {
  readonly state: 'locked' | 'unlocked';
  /** Which counter: the account for unfamiliar or familiar sources, or the source across accounts. */
  readonly scope: LockScope;
  readonly account: string;
  readonly source: string;
  readonly failures?: number;
  readonly forSeconds?: number;
}

export type LockScope = 'unfamiliar' | 'familiar' | 'source';

/** How a lockout runs: its settings, and what tests inject. */
export interface LockoutOptions extends LockoutSettings {
  /** Default: an in-memory store of `maxKeys` keys on `now`. */
  readonly store?: LockoutStore;
  /** Milliseconds; default `Date.now` (a shared store needs the wall clock every front end agrees on). */
  readonly now?: () => number;
  /** Waits the progressive delay; default a timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly observer?: LockoutObserver;
  /** Called once per lock and once per unlock. */
  readonly onTransition?: (e: LockoutEvent) => void;
}

/** One sign-in attempt, between `check` and `failed` / `succeeded`. */
export interface Attempt {
  readonly account: string;
  readonly source: string;
  readonly familiar: boolean;
  /** Set when the attempt must be refused without asking the directory. */
  readonly refused?: LockScope;
}

// Keys are short prefixes so a shared store can hold other things beside them.
const keyOf = {
  unfamiliar: (account: string) => `lo:u:${account}`,
  familiar: (account: string) => `lo:f:${account}`,
  source: (source: string) => `lo:s:${source}`,
  known: (account: string, source: string) => `lo:k:${source}|${account}`,
} as const;

/** Longest account name kept as a key: a real login is shorter; a longer one cannot grow memory. */
const maxAccountLength = 256;

/** The extranet smart lockout of one server. */
export class Lockout {
  readonly #store: LockoutStore;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #observer: LockoutObserver | undefined;
  readonly #onTransition: ((e: LockoutEvent) => void) | undefined;
  readonly #s: Required<Omit<LockoutSettings, 'enabled'>>;
  readonly #windowMs: number;
  // The locks this server has seen start, in the order they started; all last one window, so the first is
  // always the next to end (an unlock is noticed on the next attempt or sweep, and logged once).
  readonly #locks = new Map<string, { readonly event: LockoutEvent; readonly until: number }>();

  constructor(o: LockoutOptions = {}) {
    const s = { ...lockoutDefaults, ...definedOnly(o) };
    for (const name of [
      'windowSeconds',
      'unfamiliarThreshold',
      'familiarThreshold',
      'sourceThreshold',
      'familiarDays',
      'maxKeys',
    ] as const)
      if (!(Number.isFinite(s[name]) && s[name] > 0)) throw new RangeError(`lockout: ${name} must be > 0`);
    for (const name of ['freeFailures', 'firstDelayMs', 'maxDelayMs'] as const)
      if (!(Number.isFinite(s[name]) && s[name] >= 0)) throw new RangeError(`lockout: ${name} must be >= 0`);
    this.#s = s;
    this.#windowMs = s.windowSeconds * 1000;
    this.#now = o.now ?? Date.now;
    this.#sleep = o.sleep ?? ((ms) => sleepFor(ms).then(() => undefined));
    this.#store = o.store ?? new MemoryLockoutStore({ maxKeys: s.maxKeys, now: this.#now });
    this.#observer = o.observer;
    this.#onTransition = o.onTransition;
  }

  /**
   * Before the directory is asked: is this source familiar to the account, and must the attempt be refused
   * at once (the account is locked for sources like this one, or this unfamiliar source is spraying)?
   */
  async check(login: string, sourceAddress: string): Promise<Attempt> {
    this.sweep();
    const account = accountKey(login);
    const source = sourceKey(sourceAddress);
    const familiar = (await this.#store.get(keyOf.known(account, source))) > 0;
    let refused: LockScope | undefined;
    if (familiar) {
      if ((await this.#store.get(keyOf.familiar(account))) >= this.#s.familiarThreshold) refused = 'familiar';
    } else if ((await this.#store.get(keyOf.unfamiliar(account))) >= this.#s.unfamiliarThreshold) {
      refused = 'unfamiliar';
    } else if ((await this.#store.get(keyOf.source(source))) >= this.#s.sourceThreshold) {
      // A source that signed this account in before is not a sprayer for it (an office behind one NAT).
      refused = 'source';
    }
    if (refused !== undefined) this.#observer?.refused(refused);
    return refused === undefined ? { account, source, familiar } : { account, source, familiar, refused };
  }

  /** The directory said the password is wrong: count it, lock past a threshold, then wait the delay. */
  async failed(a: Attempt): Promise<void> {
    if (a.refused !== undefined) return;
    this.#observer?.failure(a.familiar ? 'familiar' : 'unfamiliar');
    const scope: LockScope = a.familiar ? 'familiar' : 'unfamiliar';
    const key = a.familiar ? keyOf.familiar(a.account) : keyOf.unfamiliar(a.account);
    const threshold = a.familiar ? this.#s.familiarThreshold : this.#s.unfamiliarThreshold;
    const failures = await this.#store.increment(key, this.#windowMs);
    if (failures === threshold)
      await this.#lock(key, { scope, account: a.account, source: a.source, failures });
    let sourceFailures = 0;
    if (!a.familiar) {
      const sKey = keyOf.source(a.source);
      sourceFailures = await this.#store.increment(sKey, this.#windowMs);
      if (sourceFailures === this.#s.sourceThreshold)
        await this.#lock(sKey, {
          scope: 'source',
          account: a.account,
          source: a.source,
          failures: sourceFailures,
        });
    }
    const ms = this.delayMs(Math.max(failures, sourceFailures));
    if (ms > 0) await this.#sleep(ms);
  }

  /** The password was right: this source is familiar to the account; a familiar success clears its count. */
  async succeeded(a: Attempt): Promise<void> {
    if (a.refused !== undefined) return;
    const known = keyOf.known(a.account, a.source);
    const ttl = this.#s.familiarDays * 86_400_000;
    if (a.familiar) {
      await this.#store.expire(known, ttl);
      // As Active Directory resets badPwdCount on a good password.
      await this.#store.expire(keyOf.familiar(a.account), 0);
    } else {
      await this.#store.increment(known, ttl);
    }
  }

  /** The delay before the `failures`-th failure is answered: 0 for the free ones, then doubling, capped. */
  delayMs(failures: number): number {
    const past = failures - this.#s.freeFailures;
    if (past <= 0) return 0;
    return Math.min(this.#s.maxDelayMs, this.#s.firstDelayMs * 2 ** Math.min(past - 1, 30));
  }

  /** Log the locks whose window has passed (also done on every attempt; a timer may call it too). */
  sweep(): void {
    const now = this.#now();
    for (const [key, lock] of this.#locks) {
      if (lock.until > now) return;
      this.#locks.delete(key);
      const { scope, account, source } = lock.event;
      this.#onTransition?.({ state: 'unlocked', scope, account, source });
    }
  }

  async #lock(key: string, e: Omit<LockoutEvent, 'state'>): Promise<void> {
    // The lock lasts a whole window from now, not the rest of the window the first failure opened.
    await this.#store.expire(key, this.#windowMs);
    const event: LockoutEvent = { ...e, state: 'locked', forSeconds: this.#s.windowSeconds };
    this.#locks.delete(key);
    this.#locks.set(key, { event, until: this.#now() + this.#windowMs });
    this.#observer?.locked(e.scope);
    this.#onTransition?.(event);
  }
}

/**
 * The counter's name for an account: what the caller passes (the estate's address for a login it knows,
 * see sign-in.ts), lower-cased and trimmed, cut to a bounded length, so `BOB@` and `bob@` share a counter.
 */
export function accountKey(login: string): string {
  return login.trim().toLowerCase().slice(0, maxAccountLength);
}

/** Counters in memory, with their expiry; the least recently written go first past `maxKeys`. */
export class MemoryLockoutStore implements LockoutStore {
  readonly #entries = new Map<string, { count: number; until: number }>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(o: { readonly maxKeys: number; readonly now: () => number }) {
    this.#max = o.maxKeys;
    this.#now = o.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): number {
    const e = this.#entries.get(key);
    if (e === undefined) return 0;
    if (e.until <= this.#now()) {
      this.#entries.delete(key);
      return 0;
    }
    return e.count;
  }

  increment(key: string, ttlMs: number): number {
    const now = this.#now();
    const e = this.#entries.get(key);
    this.#entries.delete(key);
    const next =
      e === undefined || e.until <= now ? { count: 1, until: now + ttlMs } : { ...e, count: e.count + 1 };
    this.#put(key, next);
    return next.count;
  }

  expire(key: string, ttlMs: number): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    this.#entries.delete(key);
    if (ttlMs > 0 && e.until > this.#now()) this.#put(key, { count: e.count, until: this.#now() + ttlMs });
  }

  #put(key: string, e: { count: number; until: number }): void {
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, e);
  }
}

function definedOnly(o: LockoutSettings): LockoutSettings {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && k in lockoutDefaults) out[k] = v;
  return out as LockoutSettings;
}
