/**
 * Remembers recent successful password checks, so a device that sends Basic credentials on every request
 * does not pay for scrypt (or an LDAP bind) each time. Keys are HMAC-SHA256 of login and password under a
 * per-process random key: the clear password is never kept, and the key dies with the process. Failures are
 * not remembered, so a changed password works at once; a success is trusted for `ttlMs` (default 60 s).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Mailbox } from '../core/estate/estate-index.ts';
import type { Directory } from './directory.ts';

export interface AuthCacheOptions {
  readonly ttlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry {
  readonly mailbox: Mailbox;
  readonly expires: number;
}

/** A `Directory` whose `authenticate` answers from memory for recently verified credentials. */
export class CachingDirectory implements Directory {
  readonly #inner: Directory;
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<Mailbox | undefined>>();
  readonly #ttl: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(inner: Directory, options: AuthCacheOptions = {}) {
    this.#inner = inner;
    this.#ttl = options.ttlMs ?? 60_000;
    this.#max = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  findMailbox(identity: string): Promise<Mailbox | undefined> {
    return this.#inner.findMailbox(identity);
  }

  authenticate(login: string, password: string): Promise<Mailbox | undefined> {
    const key = createHmac('sha256', this.#key)
      .update(login.toLowerCase())
      .update('\0')
      .update(password)
      .digest('base64');
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      if (hit.expires > this.#now()) return Promise.resolve(hit.mailbox);
      this.#entries.delete(key);
    }
    // One check in flight per credential: a device's burst of requests costs one scrypt.
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const check = this.#inner.authenticate(login, password).then(
      (mailbox) => {
        this.#inflight.delete(key);
        if (mailbox !== undefined) this.#remember(key, mailbox);
        return mailbox;
      },
      (err: unknown) => {
        this.#inflight.delete(key);
        throw err;
      },
    );
    this.#inflight.set(key, check);
    return check;
  }

  #remember(key: string, mailbox: Mailbox): void {
    if (this.#entries.size >= this.#max) {
      // Maps iterate in insertion order: drop the oldest.
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { mailbox, expires: this.#now() + this.#ttl });
  }
}
