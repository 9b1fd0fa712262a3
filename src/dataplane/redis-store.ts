/**
 * The shared store in Redis (docs/operations.md "Several front ends: the shared store"): the lockout's
 * counters and the logoff revocations of every front end of the estate, under one key prefix, each key with
 * a TTL. Counting is atomic (a Lua script: INCR, then PEXPIRE on a new key), so failures counted by two
 * front ends for one account add up.
 *
 * Redis down or frozen: every command has a bounded timeout; the first that fails switches this process to
 * its own memory (one warn line, `coexist_shared_store_up` 0), where the lockout counts on and revocations
 * are checked against what this process knows; a PING every `probeMs` brings it back (one info line, the
 * gauge 1), handing Redis the revocations made meanwhile. Sign-ins never wait for Redis longer than the
 * timeout. Nothing a client could use as a credential is ever written: counters under account and source
 * names, revocations under random session ids.
 */
import { createClient } from '@redis/client';
import type { MemoryStoreOptions, SharedStore } from './shared-store.ts';
import { MemorySharedStore } from './shared-store.ts';

/** The log lines of the store's state changes (a pino logger fits). */
export interface StoreLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** How the Redis store connects and behaves. */
export interface RedisStoreOptions {
  /** `redis://host:port[/db]` or `rediss://` (TLS). A password in it works, but is better in `password`. */
  readonly url: string;
  /** The password (`requirepass` or an ACL user's), e.g. read from a file; never logged. */
  readonly password?: string;
  /** Before every key; default `coexist:`. Front ends of one estate must agree. */
  readonly keyPrefix?: string;
  /** Longest any Redis command (and the first connection) may take; default 500 ms. */
  readonly timeoutMs?: number;
  /** While Redis is away, a PING this often; default 1 s. */
  readonly probeMs?: number;
  readonly log: StoreLog;
  /** Told each change: true when Redis is in use, false when this process's memory is. */
  readonly onState?: (up: boolean) => void;
  /** The fallback's bounds and clock. */
  readonly memory?: MemoryStoreOptions;
}

/** Where the store is, for a log line: never the URL itself, which may hold a password. */
export function redisEndpoint(url: string): { readonly redis: string } {
  if (!URL.canParse(url)) return { redis: 'an unparseable URL' };
  const u = new URL(url);
  return { redis: `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}` };
}

/** Refuse a URL that is not redis:// or rediss:// (a clear message, no echo of a password). */
export function checkRedisUrl(url: string): string | undefined {
  if (!URL.canParse(url)) return 'is not a URL (redis://host:port or rediss://host:port)';
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    return `has the scheme ${u.protocol.replace(/:$/, '')}, not redis or rediss`;
  if (u.hostname === '') return 'names no host';
  return undefined;
}

// INCR, and a TTL for a key that has none (a new one): one atomic step on the server.
const incrementScript = `local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

type Client = ReturnType<typeof createClient>;

/** The shared store in Redis, with this process's memory while Redis is away. */
export class RedisSharedStore implements SharedStore {
  readonly #client: Client;
  readonly #cmd: Client;
  readonly #memory: MemorySharedStore;
  readonly #prefix: string;
  readonly #probeMs: number;
  readonly #o: RedisStoreOptions;
  #up = false;
  #state: 'starting' | 'up' | 'down' = 'starting';
  #closed = false;
  #probe: ReturnType<typeof setInterval> | undefined;
  #probing = false;
  /** The client's last error, for the line at start (refused, wrong password): never holds the password. */
  #lastError: string | undefined;
  readonly #waiters = new Set<{ readonly up: boolean; readonly resolve: () => void }>();

  private constructor(o: RedisStoreOptions) {
    const problem = checkRedisUrl(o.url);
    if (problem) throw new TypeError(`shared store URL ${problem}`);
    const timeoutMs = o.timeoutMs ?? 500;
    this.#o = o;
    this.#prefix = o.keyPrefix ?? 'coexist:';
    this.#probeMs = o.probeMs ?? 1_000;
    this.#memory = new MemorySharedStore(o.memory);
    this.#client = createClient({
      url: o.url,
      ...(o.password === undefined ? {} : { password: o.password }),
      // Commands fail at once while disconnected (to the fallback), never wait in a queue.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: Math.max(timeoutMs, 1_000),
        // Reconnect on its own, backing off to 2 s; the probe notices when it is back.
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2_000),
      },
    });
    // Errors are reported through the commands that fail (and the one state line); without a listener
    // an 'error' event would end the process.
    this.#client.on('error', (err: unknown) => {
      this.#lastError = err instanceof Error ? err.message : String(err);
    });
    this.#client.on('ready', () => void this.#check());
    // A frozen Redis: the command is rejected after the timeout even once sent (its late reply is dropped).
    this.#cmd = this.#client.withCommandOptions({
      timeout: timeoutMs,
      rejectInFlight: true,
    }) as unknown as Client;
  }

  /**
   * Connect (within the timeout) and start; a Redis that does not answer yet is not an error: the store
   * starts on this process's memory (degraded, logged) and switches when Redis answers.
   */
  static async open(o: RedisStoreOptions): Promise<RedisSharedStore> {
    const store = new RedisSharedStore(o);
    const timeoutMs = Math.max(o.timeoutMs ?? 500, 1_000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connected = await Promise.race([
      store.#client.connect().then(
        () => true,
        (err: unknown) => {
          store.#lastError ??= err instanceof Error ? err.message : String(err);
          return false;
        },
      ),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (connected && (await store.#ping())) store.#setUp(true, undefined);
    else store.#setUp(false, new Error(store.#lastError ?? `no answer within ${timeoutMs} ms at start`));
    return store;
  }

  /** Whether Redis is in use now (false: this process's memory). */
  get up(): boolean {
    return this.#up;
  }

  /** Resolves when the store is (or next becomes) up, or down: for tests and orderly starts. */
  whenState(up: boolean): Promise<void> {
    if (this.#up === up) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.add({ up, resolve }));
  }

  get(key: string): Promise<number> {
    return this.#run(
      async (c) => Number((await c.get(this.#prefix + key)) ?? 0),
      () => this.#memory.get(key),
    );
  }

  increment(key: string, ttlMs: number): Promise<number> {
    return this.#run(
      async (c) =>
        Number(
          await c.eval(incrementScript, {
            keys: [this.#prefix + key],
            arguments: [String(Math.max(1, Math.ceil(ttlMs)))],
          }),
        ),
      () => this.#memory.increment(key, ttlMs),
    );
  }

  expire(key: string, ttlMs: number): Promise<void> {
    return this.#run(
      async (c) => {
        if (ttlMs <= 0) await c.del(this.#prefix + key);
        else await c.pExpire(this.#prefix + key, Math.ceil(ttlMs));
      },
      () => this.#memory.expire(key, ttlMs),
    );
  }

  async revoke(id: string, ttlMs: number): Promise<void> {
    // Always known here too: honoured by this process while Redis is away, and handed back to it after.
    this.#memory.revoke(id, ttlMs);
    await this.#run(
      async (c) => {
        await c.set(`${this.#prefix}rv:${id}`, '1', { PX: Math.max(1, Math.ceil(ttlMs)) });
      },
      () => undefined,
    );
  }

  async revoked(id: string): Promise<boolean> {
    if (this.#memory.revoked(id)) return true;
    return this.#run(
      async (c) => (await c.exists(`${this.#prefix}rv:${id}`)) > 0,
      () => false,
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#probe);
    this.#probe = undefined;
    // Also while it is still trying to reconnect: no timer of it may outlive the store.
    try {
      this.#client.destroy();
    } catch {
      // already closed
    }
    await Promise.resolve();
  }

  async #run<T>(redis: (c: Client) => Promise<T>, memory: () => T): Promise<T> {
    if (!this.#up) return memory();
    try {
      return await redis(this.#cmd);
    } catch (err) {
      this.#setUp(false, err);
      return memory();
    }
  }

  async #ping(): Promise<boolean> {
    try {
      return (await this.#cmd.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /** While down: does Redis answer again? Then hand it the revocations made meanwhile, and use it. */
  async #check(): Promise<void> {
    if (this.#up || this.#probing || this.#closed) return;
    this.#probing = true;
    try {
      if (!(await this.#ping())) return;
      // Pipelined a thousand at a time (the client sends them in one write): a long outage's logoffs are
      // handed over in a few round trips.
      let batch: Promise<unknown>[] = [];
      for (const [id, ttlMs] of this.#memory.revocations.entries()) {
        batch.push(this.#cmd.set(`${this.#prefix}rv:${id}`, '1', { PX: Math.max(1, Math.ceil(ttlMs)) }));
        if (batch.length === 1_000) {
          await Promise.all(batch);
          batch = [];
        }
      }
      await Promise.all(batch);
      this.#setUp(true, undefined);
    } catch {
      // Still away: the next probe tries again.
    } finally {
      this.#probing = false;
    }
  }

  #setUp(up: boolean, err: unknown): void {
    if (this.#closed) return;
    const state = up ? 'up' : 'down';
    if (this.#state === state) return;
    this.#state = state;
    this.#up = up;
    if (up) {
      clearInterval(this.#probe);
      this.#probe = undefined;
      this.#o.log.info(redisEndpoint(this.#o.url), 'shared store: Redis in use');
    } else {
      this.#probe ??= setInterval(() => void this.#check(), this.#probeMs).unref();
      // One line per change, never per request; the error's text names the endpoint, not the password.
      this.#o.log.warn(
        { ...redisEndpoint(this.#o.url), err: err instanceof Error ? err.message : String(err) },
        "shared store: Redis unavailable, degraded to this process's memory (lockout per process, revocations known here)",
      );
    }
    this.#o.onState?.(up);
    for (const w of this.#waiters)
      if (w.up === up) {
        this.#waiters.delete(w);
        w.resolve();
      }
  }
}

/** Where the shared store is: absent, this process's memory (one front end). */
export interface SharedStoreSettings {
  /** `redis://` or `rediss://` URL (docs/operations.md "Several front ends: the shared store"). */
  readonly url: string;
  /** Read from `--redis-password-file`; never logged. */
  readonly password?: string;
  readonly keyPrefix?: string;
  readonly timeoutMs?: number;
  readonly probeMs?: number;
}

/**
 * The store a server node uses: Redis when `redis` is set (falling back to memory while it is away), else
 * memory. `onState` is told each change of Redis's state (the metric).
 */
export async function openSharedStore(o: {
  readonly redis?: SharedStoreSettings | undefined;
  readonly log: StoreLog;
  readonly onState?: ((up: boolean) => void) | undefined;
  readonly memory?: MemoryStoreOptions;
}): Promise<SharedStore> {
  if (o.redis === undefined) return new MemorySharedStore(o.memory);
  return RedisSharedStore.open({
    ...o.redis,
    log: o.log,
    ...(o.onState === undefined ? {} : { onState: o.onState }),
    ...(o.memory === undefined ? {} : { memory: o.memory }),
  });
}
