/**
 * The shared store of `coexist serve --workers N` without Redis (docs/operations.md "Workers"): the primary
 * process holds the one in-memory store (shared-store.ts), and each worker reaches it over the cluster's IPC
 * channel, so a logoff in one worker is honoured in the others and failed sign-ins in two workers add up to
 * one lockout, as across front ends with Redis (redis-store.ts).
 *
 * It behaves as the Redis store does when its server is away: every call has a bounded timeout; the first that
 * fails switches this worker to its own memory (one warn line, `coexist_shared_store_up` 0), a ping every
 * `probeMs` brings it back (one info line, the gauge 1) and hands the primary the revocations made meanwhile.
 */
import type { MemorySharedStore, SharedStore } from './shared-store.ts';
import { MemorySharedStore as Memory } from './shared-store.ts';
import type { StoreLog } from './redis-store.ts';

/** What a worker asks the primary's store. */
export interface StoreRequest {
  readonly coexistStore: 'ask';
  readonly id: number;
  readonly op: 'get' | 'increment' | 'expire' | 'revoke' | 'revoked' | 'ping';
  readonly key?: string;
  readonly ttlMs?: number;
}

/** The primary's answer. */
export interface StoreAnswer {
  readonly coexistStore: 'answer';
  readonly id: number;
  readonly value?: number | boolean;
  readonly error?: string;
}

/** The worker's end of the IPC channel (`process` in a cluster worker). */
export interface StoreChannel {
  /** Send to the primary; false or a throw when the channel is closed. */
  send(message: StoreRequest): boolean;
  /** Every message from the primary; returns how to stop listening. */
  subscribe(listener: (message: unknown) => void): () => void;
}

/** How the worker's store behaves. */
export interface IpcStoreOptions {
  readonly channel: StoreChannel;
  readonly log: StoreLog;
  /**
   * Longest a call may take; default 2 s. Longer than Redis's 500 ms: the primary is on this machine, so a late
   * answer means a loaded machine (its run queue), not a frozen server, and the lockout should stay one count
   * through a load spike; a primary that is really gone costs one sign-in this long, then none.
   */
  readonly timeoutMs?: number;
  /** While the primary does not answer, a ping this often; default 1 s. */
  readonly probeMs?: number;
  /** Told each change: true when the primary's store is in use, false when this worker's memory is. */
  readonly onState?: (up: boolean) => void;
  readonly memory?: ConstructorParameters<typeof Memory>[0];
}

/** A worker's view of the primary's store, with its own memory while the primary does not answer. */
export class IpcSharedStore implements SharedStore {
  readonly #o: IpcStoreOptions;
  readonly #memory: MemorySharedStore;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, { resolve: (a: StoreAnswer) => void; timer: NodeJS.Timeout }>();
  readonly #unsubscribe: () => void;
  #next = 1;
  #up = true;
  #closed = false;
  #probe: NodeJS.Timeout | undefined;
  #probing = false;

  private constructor(o: IpcStoreOptions) {
    this.#o = o;
    this.#memory = new Memory(o.memory);
    this.#timeoutMs = o.timeoutMs ?? 2_000;
    this.#unsubscribe = o.channel.subscribe((m) => {
      const a = m as Partial<StoreAnswer> | null;
      if (a?.coexistStore !== 'answer' || typeof a.id !== 'number') return;
      const p = this.#pending.get(a.id);
      if (p === undefined) return;
      this.#pending.delete(a.id);
      clearTimeout(p.timer);
      p.resolve(a as StoreAnswer);
    });
  }

  /** Start: in use when the primary answers a ping, else degraded to this worker's memory (logged). */
  static async open(o: IpcStoreOptions): Promise<IpcSharedStore> {
    const store = new IpcSharedStore(o);
    try {
      await store.#call({ op: 'ping' });
      o.onState?.(true);
    } catch (err) {
      store.#setUp(false, err);
    }
    return store;
  }

  /** Whether the primary's store is in use now (false: this worker's memory). */
  get up(): boolean {
    return this.#up;
  }

  get(key: string): Promise<number> {
    return this.#run({ op: 'get', key }, Number, () => this.#memory.get(key));
  }

  increment(key: string, ttlMs: number): Promise<number> {
    return this.#run({ op: 'increment', key, ttlMs }, Number, () => this.#memory.increment(key, ttlMs));
  }

  async expire(key: string, ttlMs: number): Promise<void> {
    await this.#run(
      { op: 'expire', key, ttlMs },
      () => undefined,
      () => this.#memory.expire(key, ttlMs),
    );
  }

  async revoke(id: string, ttlMs: number): Promise<void> {
    // Always known here too: honoured by this worker while the primary does not answer, handed over after.
    this.#memory.revoke(id, ttlMs);
    await this.#run(
      { op: 'revoke', key: id, ttlMs },
      () => undefined,
      () => undefined,
    );
  }

  async revoked(id: string): Promise<boolean> {
    if (this.#memory.revoked(id)) return true;
    return this.#run(
      { op: 'revoked', key: id },
      (v) => v === true,
      () => false,
    );
  }

  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#probe);
    this.#unsubscribe();
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.resolve({ coexistStore: 'answer', id, error: 'closed' });
    }
    this.#pending.clear();
    return Promise.resolve();
  }

  async #run<T>(
    ask: Omit<StoreRequest, 'coexistStore' | 'id'>,
    read: (v: StoreAnswer['value']) => T,
    memory: () => T,
  ): Promise<T> {
    if (!this.#up) return memory();
    try {
      return read((await this.#call(ask)).value);
    } catch (err) {
      this.#setUp(false, err);
      return memory();
    }
  }

  #call(ask: Omit<StoreRequest, 'coexistStore' | 'id'>): Promise<StoreAnswer> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    const id = this.#next++;
    return new Promise<StoreAnswer>((resolve, reject) => {
      // The rejection waits one more turn of the event loop: when this worker's own loop was busy past the
      // timeout, timers run before the I/O that came in meanwhile, and an answer already in the channel would
      // be taken for a primary that does not answer. setImmediate runs after that I/O has been read.
      const timer = setTimeout(() => {
        setImmediate(() => {
          if (!this.#pending.delete(id)) return;
          reject(new Error(`no answer from the primary process within ${this.#timeoutMs} ms`));
        });
      }, this.#timeoutMs);
      this.#pending.set(id, {
        timer,
        resolve: (a) => (a.error === undefined ? resolve(a) : reject(new Error(a.error))),
      });
      let sent: boolean;
      try {
        sent = this.#o.channel.send({ coexistStore: 'ask', id, ...ask });
      } catch {
        sent = false;
      }
      if (!sent) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new Error('the IPC channel to the primary process is closed'));
      }
    });
  }

  /** While degraded: does the primary answer again? Then hand it the revocations made meanwhile. */
  async #check(): Promise<void> {
    if (this.#up || this.#probing || this.#closed) return;
    this.#probing = true;
    try {
      await this.#call({ op: 'ping' });
      await Promise.all(
        [...this.#memory.revocations.entries()].map(([id, ttlMs]) =>
          this.#call({ op: 'revoke', key: id, ttlMs }),
        ),
      );
      this.#setUp(true, undefined);
    } catch {
      // Still not answering: the next probe tries again.
    } finally {
      this.#probing = false;
    }
  }

  #setUp(up: boolean, err: unknown): void {
    if (this.#closed || this.#up === up) return;
    this.#up = up;
    if (up) {
      clearInterval(this.#probe);
      this.#probe = undefined;
      this.#o.log.info({ store: 'primary process' }, "shared store: the primary process's store in use");
    } else {
      this.#probe ??= setInterval(() => void this.#check(), this.#o.probeMs ?? 1_000).unref();
      this.#o.log.warn(
        { store: 'primary process', err: err instanceof Error ? err.message : String(err) },
        "shared store: the primary process does not answer, degraded to this worker's memory (lockout per worker, revocations known here)",
      );
    }
    this.#o.onState?.(up);
  }
}

/**
 * The primary's end: answer `message` from `store` when it is a store request (returns false otherwise, for
 * the caller's other messages). `reply` sends the answer back to the worker that asked.
 */
export function answerStoreRequest(
  store: MemorySharedStore,
  message: unknown,
  reply: (answer: StoreAnswer) => void,
): boolean {
  const m = message as Partial<StoreRequest> | null;
  if (m?.coexistStore !== 'ask' || typeof m.id !== 'number') return false;
  const key = typeof m.key === 'string' ? m.key : '';
  const ttlMs = typeof m.ttlMs === 'number' && Number.isFinite(m.ttlMs) ? m.ttlMs : 0;
  const answer = (value?: number | boolean): void =>
    reply({ coexistStore: 'answer', id: m.id as number, ...(value === undefined ? {} : { value }) });
  switch (m.op) {
    case 'ping':
      answer();
      break;
    case 'get':
      answer(store.get(key));
      break;
    case 'increment':
      answer(store.increment(key, ttlMs));
      break;
    case 'expire':
      store.expire(key, ttlMs);
      answer();
      break;
    case 'revoke':
      store.revoke(key, ttlMs);
      answer();
      break;
    case 'revoked':
      answer(store.revoked(key));
      break;
    default:
      reply({ coexistStore: 'answer', id: m.id, error: 'unknown operation' });
  }
  return true;
}
