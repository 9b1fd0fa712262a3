/**
 * The directory's answers remembered in front of any `Directory` (issue 5): where a mailbox lives, and which
 * credentials were recently right. Every request asks one or both questions before `decide()`, so an answer
 * from memory must cost next to nothing (the goal: under 0.2 ms at p99 added to a proxied request). A lookup
 * hit is a lower-casing (no copy when the identity is lower-case already), one `Map.get`, a few pointer
 * writes to keep the recency order, a clock read and the promise stored with the entry, already resolved:
 * nothing is allocated.
 *
 * Lookups: found mailboxes are trusted for `lookupTtlMs`, unknown identities for `negativeTtlMs`, and
 * when the directory fails (LDAP down: `DirectoryUnavailableError`, or any error) the last found mailbox
 * is served for at most `staleIfErrorMs` past its expiry, with a `warn` event; otherwise the error goes to
 * the caller, which answers 503 (architecture.md "How a request flows"). Password checks: only successes
 * are remembered, for `authTtlMs`, under HMAC-SHA256 of the credentials with a random key made per
 * instance, so neither the password nor anything that can be checked against it offline outlives the
 * process. Both caches ask the directory at most once at a time per key, so a device's burst of requests
 * (or a thousand devices after a restart) costs one LDAP search or bind per key, not one each.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Mailbox } from '../core/estate/estate-index.ts';
import type { Directory } from './directory.ts';

/** Which question an observer event is about: a mailbox lookup or a password check. */
export type DirectoryCacheKind = 'lookup' | 'auth';

/**
 * What the cache tells metrics (the lead adapts it to prom-client). Each call is exactly one of `hit`,
 * `coalesced` or `miss`, or for a lookup `stale` when it was answered from an expired entry during the
 * retry back-off; each question the directory is asked then reports `latency`, and `error` when it threw.
 */
export interface DirectoryCacheObserver {
  /** Answered from a fresh entry (for lookups, a found mailbox or a remembered "unknown"). */
  hit(kind: DirectoryCacheKind): void;
  /** The directory is asked; `latency` follows when it answers. */
  miss(kind: DirectoryCacheKind): void;
  /** Joined a question to the directory already in flight for the same key. */
  coalesced(kind: DirectoryCacheKind): void;
  /**
   * A lookup answered from an expired entry because the directory failed: once per failed question it
   * covered (with a `warn` event) and once per call answered during the back-off that follows.
   */
  stale(kind: DirectoryCacheKind): void;
  /** The directory threw (whether or not a stale entry covered it). */
  error(kind: DirectoryCacheKind): void;
  /** How long the directory took to answer or fail, in milliseconds of `now()`. */
  latency(kind: DirectoryCacheKind, ms: number): void;
}

/** The `warn` event: the directory failed and a lookup was answered with the last mailbox it gave. */
export interface StaleLookupEvent {
  readonly event: 'directory-stale-lookup';
  /** The identity asked for, lower-cased (the cache key). */
  readonly identity: string;
  /** The mailbox served and the server it was on when last seen. */
  readonly address: string;
  readonly server: string;
  /** How long past its TTL the entry is; it is served until this reaches `staleIfErrorMs`. */
  readonly expiredMs: number;
  /** What the directory threw. */
  readonly error: unknown;
}

/** Options of `CachedDirectory`; every one has a default. */
export interface DirectoryCacheOptions {
  /** How long a found mailbox is trusted, ms. Default 300 000 (5 min). */
  readonly lookupTtlMs?: number;
  /** How long "no such mailbox" is trusted, ms. Default 30 000 (30 s). */
  readonly negativeTtlMs?: number;
  /** How long past its TTL a found mailbox may be served while the directory fails, ms. Default 15 min. */
  readonly staleIfErrorMs?: number;
  /**
   * After a failure covered by a stale entry, how long that entry answers without asking the directory
   * again, ms, so that a directory that hangs rather than refuses is not waited for on every request.
   * Default 5 000 (5 s); 0 asks every time.
   */
  readonly staleRetryMs?: number;
  /** Most lookups remembered; the least recently used goes first. Default 100 000; 0 remembers none. */
  readonly lookupMaxEntries?: number;
  /** How long a successful password check is trusted, ms. Default 60 000 (60 s). */
  readonly authTtlMs?: number;
  /** Most successful password checks remembered, least recently used first out. Default 100 000; 0: none. */
  readonly authMaxEntries?: number;
  /** Milliseconds on a monotonic clock. Default `performance.now()`. */
  readonly now?: () => number;
  /** Told each time a lookup is answered stale because the directory failed. Default: nobody. */
  readonly warn?: (event: StaleLookupEvent) => void;
  readonly observer?: DirectoryCacheObserver;
}

/** The defaults of `DirectoryCacheOptions`. */
export const directoryCacheDefaults = {
  lookupTtlMs: 300_000,
  negativeTtlMs: 30_000,
  staleIfErrorMs: 900_000,
  staleRetryMs: 5_000,
  lookupMaxEntries: 100_000,
  authTtlMs: 60_000,
  authMaxEntries: 100_000,
} as const satisfies Required<Omit<DirectoryCacheOptions, 'now' | 'warn' | 'observer'>>;

/** Every "unknown" answer is this one promise: a negative hit allocates nothing either. */
const unknown: Promise<Mailbox | undefined> = Promise.resolve(undefined);

/** One remembered answer, and its place in the recency list. */
class Entry {
  /** Until when a stale answer is served without asking again (`staleRetryMs` after a failure). */
  retryAt = -Infinity;
  newer: Entry | undefined = undefined;
  older: Entry | undefined = undefined;

  constructor(
    readonly key: string,
    readonly mailbox: Mailbox | undefined,
    /** `mailbox`, as the already-resolved promise every hit returns. */
    readonly answer: Promise<Mailbox | undefined>,
    /** Fresh while `now() < expires`. */
    readonly expires: number,
    /** Servable stale while `now() < staleUntil`; -Infinity for "unknown", which is never served stale. */
    readonly staleUntil: number,
  ) {}
}

/**
 * Entries by key with an exact least-recently-used order kept as a linked list through the entries. The
 * usual trick, deleting and re-inserting the key in the `Map` on each hit, was measured at about 17 bytes
 * allocated per hit (the `Map` rehashes as deleted slots pile up, a 100 000-entry table at a time, which
 * showed as pauses of several ms); relinking two entries allocates nothing.
 */
class Lru {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;
  #newest: Entry | undefined;
  #oldest: Entry | undefined;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry of `key`, made the most recently used. */
  get(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry !== this.#newest) {
      this.#unlink(entry);
      this.#link(entry);
    }
    return entry;
  }

  /** Remember `entry` as the most recent, replacing its key's; then forget the oldest beyond the bound. */
  set(entry: Entry): void {
    const old = this.#entries.get(entry.key);
    if (old !== undefined) this.#unlink(old);
    this.#entries.set(entry.key, entry);
    this.#link(entry);
    while (this.#entries.size > this.#max && this.#oldest !== undefined) this.delete(this.#oldest.key);
  }

  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#unlink(entry);
  }

  #link(entry: Entry): void {
    entry.older = this.#newest;
    entry.newer = undefined;
    if (this.#newest !== undefined) this.#newest.newer = entry;
    this.#newest = entry;
    this.#oldest ??= entry;
  }

  #unlink(entry: Entry): void {
    if (entry.newer === undefined) this.#newest = entry.older;
    else entry.newer.older = entry.older;
    if (entry.older === undefined) this.#oldest = entry.newer;
    else entry.older.newer = entry.newer;
    entry.newer = undefined;
    entry.older = undefined;
  }
}

/** How many entries each cache holds, for a gauge. */
export interface DirectoryCacheSize {
  readonly lookups: number;
  readonly credentials: number;
}

function checkMs(name: string, value: number): number {
  if (!(value >= 0)) {
    throw new RangeError(`CachedDirectory: ${name} must be a number of milliseconds >= 0 (got ${value})`);
  }
  return value;
}

function checkCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`CachedDirectory: ${name} must be a whole number >= 0 (got ${value})`);
  }
  return value;
}

/** A `Directory` that answers recent lookups and recently verified credentials from memory. */
export class CachedDirectory implements Directory {
  readonly #inner: Directory;
  readonly #lookups: Lru;
  readonly #lookupFlights = new Map<string, Promise<Mailbox | undefined>>();
  readonly #credentials: Lru;
  readonly #credentialFlights = new Map<string, Promise<Mailbox | undefined>>();
  /** The HMAC key of credential keys: random, never leaves this object, dies with it. */
  readonly #secret = randomBytes(32);
  readonly #lookupTtl: number;
  readonly #negativeTtl: number;
  readonly #staleIfError: number;
  readonly #staleRetry: number;
  readonly #authTtl: number;
  readonly #now: () => number;
  readonly #warn: ((event: StaleLookupEvent) => void) | undefined;
  readonly #observer: DirectoryCacheObserver | undefined;

  constructor(inner: Directory, options: DirectoryCacheOptions = {}) {
    const d = directoryCacheDefaults;
    this.#inner = inner;
    this.#lookupTtl = checkMs('lookupTtlMs', options.lookupTtlMs ?? d.lookupTtlMs);
    this.#negativeTtl = checkMs('negativeTtlMs', options.negativeTtlMs ?? d.negativeTtlMs);
    this.#staleIfError = checkMs('staleIfErrorMs', options.staleIfErrorMs ?? d.staleIfErrorMs);
    this.#staleRetry = checkMs('staleRetryMs', options.staleRetryMs ?? d.staleRetryMs);
    this.#authTtl = checkMs('authTtlMs', options.authTtlMs ?? d.authTtlMs);
    this.#lookups = new Lru(checkCount('lookupMaxEntries', options.lookupMaxEntries ?? d.lookupMaxEntries));
    this.#credentials = new Lru(checkCount('authMaxEntries', options.authMaxEntries ?? d.authMaxEntries));
    this.#now = options.now ?? (() => performance.now());
    this.#warn = options.warn;
    this.#observer = options.observer;
  }

  /** How many lookups and credentials are remembered (expired ones too, until touched or pushed out). */
  get size(): DirectoryCacheSize {
    return { lookups: this.#lookups.size, credentials: this.#credentials.size };
  }

  findMailbox(identity: string): Promise<Mailbox | undefined> {
    // Directories match identities without regard to case (addresses, UPNs, DOMAIN\user).
    const key = identity.toLowerCase();
    const entry = this.#lookups.get(key);
    if (entry !== undefined) {
      const now = this.#now();
      if (now < entry.expires) {
        this.#observer?.hit('lookup');
        return entry.answer;
      }
      if (now < entry.retryAt && now < entry.staleUntil) {
        this.#observer?.stale('lookup');
        return entry.answer;
      }
    }
    const pending = this.#lookupFlights.get(key);
    if (pending !== undefined) {
      this.#observer?.coalesced('lookup');
      return pending;
    }
    this.#observer?.miss('lookup');
    const started = this.#now();
    let asked: Promise<Mailbox | undefined>;
    try {
      asked = this.#inner.findMailbox(identity);
    } catch (error) {
      // A directory that throws at once still gets a flight that ends.
      asked = Promise.reject(error);
    }
    const flight = this.#settleLookup(key, entry, started, asked);
    this.#lookupFlights.set(key, flight);
    return flight;
  }

  authenticate(login: string, password: string): Promise<Mailbox | undefined> {
    const key = this.#credentialKey(login, password);
    const entry = this.#credentials.get(key);
    if (entry !== undefined) {
      if (this.#now() < entry.expires) {
        this.#observer?.hit('auth');
        return entry.answer;
      }
      this.#credentials.delete(key);
    }
    const pending = this.#credentialFlights.get(key);
    if (pending !== undefined) {
      this.#observer?.coalesced('auth');
      return pending;
    }
    this.#observer?.miss('auth');
    const started = this.#now();
    let asked: Promise<Mailbox | undefined>;
    try {
      asked = this.#inner.authenticate(login, password);
    } catch (error) {
      asked = Promise.reject(error);
    }
    // The flight gets the question already asked, so none of its closures holds the password meanwhile.
    const flight = this.#settleCredentials(key, started, asked);
    this.#credentialFlights.set(key, flight);
    return flight;
  }

  /**
   * HMAC-SHA256 over the login's length, the lower-cased login and the password. The length keeps the pair
   * unambiguous even for a login that holds a NUL (`a\0b` + `c` against `a` + `b\0c`); the lower-casing
   * matches the directory's own case-blind logins. Strings go in as UTF-8, as they reach scrypt or LDAP.
   */
  #credentialKey(login: string, password: string): string {
    const user = login.toLowerCase();
    return createHmac('sha256', this.#secret)
      .update(`${user.length}\0`)
      .update(user)
      .update(password)
      .digest('base64');
  }

  /** The flight of a lookup: remembers the answer or covers a failure with `last`, then is forgotten. */
  #settleLookup(
    key: string,
    last: Entry | undefined,
    started: number,
    asked: Promise<Mailbox | undefined>,
  ): Promise<Mailbox | undefined> {
    return asked.then(
      (mailbox) => {
        this.#lookupFlights.delete(key);
        const now = this.#now();
        this.#observer?.latency('lookup', now - started);
        if (mailbox === undefined) {
          this.#lookups.set(new Entry(key, undefined, unknown, now + this.#negativeTtl, -Infinity));
          return undefined;
        }
        const expires = now + this.#lookupTtl;
        const answer = Promise.resolve(mailbox);
        this.#lookups.set(new Entry(key, mailbox, answer, expires, expires + this.#staleIfError));
        return mailbox;
      },
      (error: unknown) => {
        this.#lookupFlights.delete(key);
        const now = this.#now();
        this.#observer?.latency('lookup', now - started);
        this.#observer?.error('lookup');
        if (last === undefined || last.mailbox === undefined || !(now < last.staleUntil)) throw error;
        last.retryAt = now + this.#staleRetry;
        this.#observer?.stale('lookup');
        this.#tellStale(last, now, error);
        return last.mailbox;
      },
    );
  }

  /** The flight of a password check: only a success is remembered, never an error. */
  #settleCredentials(
    key: string,
    started: number,
    asked: Promise<Mailbox | undefined>,
  ): Promise<Mailbox | undefined> {
    return asked.then(
      (mailbox) => {
        this.#credentialFlights.delete(key);
        const now = this.#now();
        this.#observer?.latency('auth', now - started);
        if (mailbox !== undefined) {
          const answer = Promise.resolve(mailbox);
          this.#credentials.set(new Entry(key, mailbox, answer, now + this.#authTtl, -Infinity));
        }
        return mailbox;
      },
      (error: unknown) => {
        this.#credentialFlights.delete(key);
        this.#observer?.latency('auth', this.#now() - started);
        this.#observer?.error('auth');
        throw error;
      },
    );
  }

  #tellStale(entry: Entry, now: number, error: unknown): void {
    const mailbox = entry.mailbox;
    if (this.#warn === undefined || mailbox === undefined) return;
    try {
      this.#warn({
        event: 'directory-stale-lookup',
        identity: entry.key,
        address: mailbox.address,
        server: mailbox.server.name,
        expiredMs: now - entry.expires,
        error,
      });
    } catch {
      // A failing log line must not turn the stale answer it reports into an error.
    }
  }
}
