/**
 * Lookups through `CachedDirectory` (issue 5): hits, TTLs, "unknown" remembered, least-recently-used
 * eviction, one question in flight per identity, and the last known mailbox served for a bounded time while
 * the directory fails. A fake clock and a fake directory that counts its calls; no sleeps, no timing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Mailbox } from '../core/estate/estate-index.ts';
import type {
  DirectoryCacheKind,
  DirectoryCacheObserver,
  DirectoryCacheOptions,
  StaleLookupEvent,
} from './directory-cache.ts';
import { CachedDirectory, directoryCacheDefaults } from './directory-cache.ts';
import type { Directory } from './directory.ts';
import { DirectoryUnavailableError } from './directory.ts';

const second = 1_000;
const minute = 60 * second;

/** The cache looks at nothing but `address` and `server.name` (for its warning). */
const mailbox = (address: string, server = 'MBX2013-NY'): Mailbox =>
  ({ address, displayName: address, server: { name: server } }) as unknown as Mailbox;

const alice = mailbox('alice@o365info.com');
const bob = mailbox('bob@o365info.com', 'EX2007-NY');

/** A directory that counts lookups, can be told to fail, and can hold its answers until released. */
class FakeDirectory implements Directory {
  readonly mailboxes = new Map<string, Mailbox>();
  lookups = 0;
  failWith: Error | undefined;
  throwAtOnce = false;
  /** Added to the clock while "asking", so latency is known. */
  takesMs = 0;
  #held: (() => void)[] = [];
  #holding = false;

  constructor(
    readonly clock: Clock,
    ...mailboxes: Mailbox[]
  ) {
    for (const m of mailboxes) this.mailboxes.set(m.address, m);
  }

  hold(): void {
    this.#holding = true;
  }

  release(): void {
    this.#holding = false;
    for (const go of this.#held.splice(0)) go();
  }

  findMailbox(identity: string): Promise<Mailbox | undefined> {
    this.lookups++;
    if (this.throwAtOnce) throw new DirectoryUnavailableError('thrown at once');
    const answer = async (): Promise<Mailbox | undefined> => {
      if (this.#holding) await new Promise<void>((go) => this.#held.push(go));
      this.clock.t += this.takesMs;
      if (this.failWith) throw this.failWith;
      return this.mailboxes.get(identity.toLowerCase());
    };
    return answer();
  }

  authenticate(): Promise<Mailbox | undefined> {
    return Promise.reject(new Error('not used here'));
  }
}

interface Clock {
  t: number;
}

type Counts = Record<Exclude<keyof DirectoryCacheObserver, 'latency'>, number> & { latency: number[] };

/** An observer that counts lookup events (auth events would be a failure here). */
const counting = (): { observer: DirectoryCacheObserver; counts: Counts } => {
  const counts: Counts = { hit: 0, miss: 0, coalesced: 0, stale: 0, error: 0, latency: [] };
  const count = (kind: DirectoryCacheKind, event: Exclude<keyof Counts, 'latency'>): void => {
    assert.equal(kind, 'lookup');
    counts[event]++;
  };
  const observer: DirectoryCacheObserver = {
    hit: (k) => count(k, 'hit'),
    miss: (k) => count(k, 'miss'),
    coalesced: (k) => count(k, 'coalesced'),
    stale: (k) => count(k, 'stale'),
    error: (k) => count(k, 'error'),
    latency: (k, ms) => {
      assert.equal(k, 'lookup');
      counts.latency.push(ms);
    },
  };
  return { observer, counts };
};

/** A cache over a fake directory holding alice and bob, on a clock the test moves. */
const setup = (o: DirectoryCacheOptions = {}) => {
  const clock: Clock = { t: 1_000_000 };
  const inner = new FakeDirectory(clock, alice, bob);
  const warnings: StaleLookupEvent[] = [];
  const { observer, counts } = counting();
  const cache = new CachedDirectory(inner, {
    now: () => clock.t,
    warn: (e) => warnings.push(e),
    observer,
    ...o,
  });
  return { cache, inner, clock, warnings, counts };
};

describe('CachedDirectory lookups: hits and TTLs', () => {
  test('the defaults are those of issue 5', () => {
    assert.deepEqual(directoryCacheDefaults, {
      lookupTtlMs: 5 * minute,
      negativeTtlMs: 30 * second,
      staleIfErrorMs: 15 * minute,
      staleRetryMs: 5 * second,
      lookupMaxEntries: 100_000,
      authTtlMs: 60 * second,
      authMaxEntries: 100_000,
    });
  });

  test('a found mailbox is answered from memory, whatever the case of the identity', async () => {
    const { cache, inner, counts } = setup();
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    assert.equal(await cache.findMailbox('Alice@O365info.COM'), alice);
    assert.equal(await cache.findMailbox('ALICE@O365INFO.COM'), alice);
    assert.equal(inner.lookups, 1);
    assert.deepEqual([counts.miss, counts.hit], [1, 2]);
    assert.deepEqual(cache.size, { lookups: 1, credentials: 0 });
  });

  test('every hit returns the same already-resolved promise: nothing is allocated per hit', async () => {
    const { cache } = setup();
    await cache.findMailbox('alice@o365info.com');
    const first = cache.findMailbox('alice@o365info.com');
    assert.equal(cache.findMailbox('ALICE@o365info.com'), first);
    assert.equal(await first, alice);
    await cache.findMailbox('nobody@o365info.com');
    assert.equal(cache.findMailbox('nobody@o365info.com'), cache.findMailbox('NOBODY@o365info.com'));
  });

  test('a found mailbox is trusted for the TTL, then asked again', async () => {
    const { cache, inner, clock } = setup();
    await cache.findMailbox('alice@o365info.com');
    clock.t += 5 * minute - 1;
    await cache.findMailbox('alice@o365info.com');
    assert.equal(inner.lookups, 1);
    clock.t += 1;
    await cache.findMailbox('alice@o365info.com');
    assert.equal(inner.lookups, 2);
  });

  test('a mailbox that moved is seen once its entry expires', async () => {
    const { cache, inner, clock } = setup({ lookupTtlMs: 10 * second });
    assert.equal((await cache.findMailbox('alice@o365info.com'))?.server.name, 'MBX2013-NY');
    const moved = mailbox('alice@o365info.com', 'MBX2013-MAD');
    inner.mailboxes.set('alice@o365info.com', moved);
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    clock.t += 10 * second;
    assert.equal(await cache.findMailbox('alice@o365info.com'), moved);
  });

  test('an unknown identity is remembered as unknown for the negative TTL only', async () => {
    const { cache, inner, clock, counts } = setup();
    assert.equal(await cache.findMailbox('carol@o365info.com'), undefined);
    clock.t += 30 * second - 1;
    assert.equal(await cache.findMailbox('Carol@o365info.com'), undefined);
    assert.equal(inner.lookups, 1);
    assert.equal(counts.hit, 1);
    // Carol's mailbox is created; she is found as soon as "unknown" expires.
    const carol = mailbox('carol@o365info.com');
    inner.mailboxes.set('carol@o365info.com', carol);
    clock.t += 1;
    assert.equal(await cache.findMailbox('carol@o365info.com'), carol);
    assert.equal(inner.lookups, 2);
    clock.t += 4 * minute;
    assert.equal(await cache.findMailbox('carol@o365info.com'), carol);
    assert.equal(inner.lookups, 2, 'now under the positive TTL');
  });

  test('a mailbox that is gone becomes "unknown" when its entry expires', async () => {
    const { cache, inner, clock } = setup();
    await cache.findMailbox('bob@o365info.com');
    inner.mailboxes.delete('bob@o365info.com');
    clock.t += 5 * minute;
    assert.equal(await cache.findMailbox('bob@o365info.com'), undefined);
    clock.t += 29 * second;
    assert.equal(await cache.findMailbox('bob@o365info.com'), undefined);
    assert.equal(inner.lookups, 2);
  });

  test('latency is what the directory took, on the injected clock', async () => {
    const { cache, inner, counts } = setup();
    inner.takesMs = 7;
    await cache.findMailbox('alice@o365info.com');
    await cache.findMailbox('alice@o365info.com');
    assert.deepEqual(counts.latency, [7]);
  });
});

describe('CachedDirectory lookups: the bound', () => {
  test('beyond maxEntries the least recently used entry goes first', async () => {
    const { cache, inner, counts } = setup({ lookupMaxEntries: 3 });
    for (const name of ['a', 'b', 'c']) inner.mailboxes.set(`${name}@x`, mailbox(`${name}@x`));
    await cache.findMailbox('a@x');
    await cache.findMailbox('b@x');
    await cache.findMailbox('c@x');
    await cache.findMailbox('a@x'); // a is now the most recently used: b is the oldest
    await cache.findMailbox('d@x'); // "unknown" is an entry too, and pushes b out
    assert.deepEqual(cache.size, { lookups: 3, credentials: 0 });
    assert.equal(inner.lookups, 4);
    // a, c and d are still remembered; b is not.
    await cache.findMailbox('c@x');
    await cache.findMailbox('a@x');
    await cache.findMailbox('d@x');
    assert.equal(inner.lookups, 4);
    assert.equal(counts.hit, 4);
    // Those hits left the order d, a, c (newest first): asking for b again pushes out c.
    await cache.findMailbox('b@x');
    assert.equal(inner.lookups, 5);
    await cache.findMailbox('a@x');
    await cache.findMailbox('d@x');
    await cache.findMailbox('b@x');
    assert.equal(inner.lookups, 5);
    await cache.findMailbox('c@x');
    assert.equal(inner.lookups, 6);
  });

  test('a refreshed entry is the most recent one, not a second entry', async () => {
    const { cache, inner, clock } = setup({ lookupMaxEntries: 2 });
    await cache.findMailbox('alice@o365info.com');
    await cache.findMailbox('bob@o365info.com');
    clock.t += 5 * minute;
    await cache.findMailbox('alice@o365info.com'); // expired: asked again, replaces its entry
    assert.deepEqual(cache.size, { lookups: 2, credentials: 0 });
    await cache.findMailbox('nobody@x'); // pushes out bob (the older), not alice
    clock.t += 1;
    assert.equal(inner.lookups, 4);
    await cache.findMailbox('alice@o365info.com');
    assert.equal(inner.lookups, 4);
    await cache.findMailbox('bob@o365info.com');
    assert.equal(inner.lookups, 5);
  });

  test('lookupMaxEntries 0 remembers nothing, and still asks once per identity at a time', async () => {
    const { cache, inner } = setup({ lookupMaxEntries: 0 });
    await cache.findMailbox('alice@o365info.com');
    await cache.findMailbox('alice@o365info.com');
    assert.equal(inner.lookups, 2);
    assert.equal(cache.size.lookups, 0);
    inner.hold();
    const both = [cache.findMailbox('alice@o365info.com'), cache.findMailbox('alice@o365info.com')];
    inner.release();
    assert.deepEqual(await Promise.all(both), [alice, alice]);
    assert.equal(inner.lookups, 3);
  });
});

describe('CachedDirectory lookups: one question in flight per identity', () => {
  test('100 concurrent lookups of one identity ask the directory once', async () => {
    const { cache, inner, counts } = setup();
    inner.hold();
    const all = Array.from({ length: 100 }, (_, i) =>
      cache.findMailbox(i % 2 ? 'alice@o365info.com' : 'ALICE@o365info.com'),
    );
    assert.equal(inner.lookups, 1);
    inner.release();
    const answers = await Promise.all(all);
    assert.ok(answers.every((m) => m === alice));
    assert.deepEqual([counts.miss, counts.coalesced, counts.hit], [1, 99, 0]);
    await cache.findMailbox('alice@o365info.com');
    assert.equal(inner.lookups, 1);
  });

  test('different identities are asked for separately', async () => {
    const { cache, inner } = setup();
    inner.hold();
    const all = [cache.findMailbox('alice@o365info.com'), cache.findMailbox('bob@o365info.com')];
    inner.release();
    assert.deepEqual(await Promise.all(all), [alice, bob]);
    assert.equal(inner.lookups, 2);
  });

  test('100 concurrent lookups while down: one question, 100 of the same error', async () => {
    const { cache, inner, counts } = setup();
    const down = new DirectoryUnavailableError('ldap down');
    inner.failWith = down;
    inner.hold();
    const all = Array.from({ length: 100 }, () => cache.findMailbox('alice@o365info.com'));
    inner.release();
    const results = await Promise.allSettled(all);
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason === down));
    assert.equal(inner.lookups, 1);
    assert.deepEqual([counts.miss, counts.coalesced, counts.error], [1, 99, 1]);
  });

  test('an expired entry being refreshed: the callers meanwhile share the one question', async () => {
    const { cache, inner, clock } = setup();
    await cache.findMailbox('alice@o365info.com');
    clock.t += 5 * minute;
    inner.hold();
    const all = Array.from({ length: 10 }, () => cache.findMailbox('alice@o365info.com'));
    inner.release();
    assert.ok((await Promise.all(all)).every((m) => m === alice));
    assert.equal(inner.lookups, 2);
  });
});

describe('CachedDirectory lookups: the directory failing', () => {
  test('a failure is not remembered: the next lookup asks again', async () => {
    const { cache, inner, counts } = setup();
    inner.failWith = new DirectoryUnavailableError('ldap down');
    await assert.rejects(cache.findMailbox('alice@o365info.com'), DirectoryUnavailableError);
    inner.failWith = undefined;
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    assert.equal(inner.lookups, 2);
    assert.equal(counts.error, 1);
  });

  test('a directory that throws at once is a rejection, and leaves no flight behind', async () => {
    const { cache, inner } = setup();
    inner.throwAtOnce = true;
    await assert.rejects(cache.findMailbox('alice@o365info.com'), /thrown at once/);
    await assert.rejects(cache.findMailbox('alice@o365info.com'), /thrown at once/);
    inner.throwAtOnce = false;
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    assert.equal(inner.lookups, 3);
  });

  test('an unknown identity while down gets the error (the pipeline answers 503)', async () => {
    const { cache, inner, warnings } = setup();
    const down = new DirectoryUnavailableError('ldap down');
    inner.failWith = down;
    await assert.rejects(cache.findMailbox('alice@o365info.com'), (e) => e === down);
    assert.deepEqual(warnings, []);
  });

  test('a remembered "unknown" that expired is not served stale: the error goes through', async () => {
    const { cache, inner, clock, warnings } = setup();
    await cache.findMailbox('carol@o365info.com');
    clock.t += 30 * second;
    inner.failWith = new DirectoryUnavailableError('ldap down');
    await assert.rejects(cache.findMailbox('carol@o365info.com'), DirectoryUnavailableError);
    assert.deepEqual(warnings, []);
  });

  test('a fresh entry answers without asking, down or not', async () => {
    const { cache, inner, warnings } = setup();
    await cache.findMailbox('alice@o365info.com');
    inner.failWith = new DirectoryUnavailableError('ldap down');
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    assert.equal(inner.lookups, 1);
    assert.deepEqual(warnings, []);
  });

  test('an expired mailbox is served for up to staleIfErrorMs past its TTL, with a warning', async () => {
    const { cache, inner, clock, warnings, counts } = setup({ staleRetryMs: 0 });
    await cache.findMailbox('alice@o365info.com');
    const down = new DirectoryUnavailableError('ldap down');
    inner.failWith = down;
    clock.t += 5 * minute + 2 * minute;
    assert.equal(await cache.findMailbox('Alice@o365info.com'), alice);
    assert.deepEqual(warnings, [
      {
        event: 'directory-stale-lookup',
        identity: 'alice@o365info.com',
        address: 'alice@o365info.com',
        server: 'MBX2013-NY',
        expiredMs: 2 * minute,
        error: down,
      },
    ]);
    assert.deepEqual([counts.miss, counts.error, counts.stale], [2, 1, 1]);
    // The last millisecond of the bound still gets the mailbox...
    clock.t += 13 * minute - 1;
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    assert.equal(warnings.length, 2);
    assert.equal(warnings[1]?.expiredMs, 15 * minute - 1);
    // ...and then the error itself.
    clock.t += 1;
    await assert.rejects(cache.findMailbox('alice@o365info.com'), (e) => e === down);
    assert.equal(warnings.length, 2);
    assert.equal(inner.lookups, 4);
  });

  test('after a stale answer the directory is asked again only after staleRetryMs', async () => {
    const { cache, inner, clock, warnings, counts } = setup();
    await cache.findMailbox('alice@o365info.com');
    inner.failWith = new DirectoryUnavailableError('ldap down');
    clock.t += 5 * minute;
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    assert.equal(inner.lookups, 2);
    // Within the back-off: answered stale at once, no question, no further warning.
    clock.t += 5 * second - 1;
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    assert.equal(inner.lookups, 2);
    assert.equal(warnings.length, 1);
    assert.equal(counts.stale, 3);
    // Then asked again; the directory is back, and its answer is fresh for a full TTL.
    clock.t += 1;
    inner.failWith = undefined;
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    assert.equal(inner.lookups, 3);
    clock.t += 5 * minute - 1;
    await cache.findMailbox('alice@o365info.com');
    assert.equal(inner.lookups, 3);
  });

  test('the back-off never stretches the stale bound', async () => {
    const { cache, inner, clock } = setup({ staleRetryMs: 10 * minute });
    await cache.findMailbox('alice@o365info.com');
    inner.failWith = new DirectoryUnavailableError('ldap down');
    clock.t += 5 * minute + 14 * minute;
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
    clock.t += minute; // still in the back-off, but 15 min past the TTL
    await assert.rejects(cache.findMailbox('alice@o365info.com'), DirectoryUnavailableError);
  });

  test('100 concurrent lookups of an expired mailbox while down: one question, one warning', async () => {
    const { cache, inner, clock, warnings } = setup();
    await cache.findMailbox('alice@o365info.com');
    clock.t += 6 * minute;
    inner.failWith = new DirectoryUnavailableError('ldap down');
    inner.hold();
    const all = Array.from({ length: 100 }, () => cache.findMailbox('alice@o365info.com'));
    inner.release();
    assert.ok((await Promise.all(all)).every((m) => m === alice));
    assert.equal(inner.lookups, 2);
    assert.equal(warnings.length, 1);
  });

  test('a warn callback that throws does not turn the stale answer into an error', async () => {
    const { cache, inner, clock } = setup({
      warn: () => {
        throw new Error('logger broke');
      },
    });
    await cache.findMailbox('alice@o365info.com');
    clock.t += 6 * minute;
    inner.failWith = new DirectoryUnavailableError('ldap down');
    assert.equal(await cache.findMailbox('alice@o365info.com'), alice);
  });
});

describe('CachedDirectory: options', () => {
  test('impossible values are refused with a clear error', () => {
    const inner = new FakeDirectory({ t: 0 });
    assert.throws(() => new CachedDirectory(inner, { lookupTtlMs: -1 }), {
      name: 'RangeError',
      message: /lookupTtlMs must be a number of milliseconds >= 0 \(got -1\)/,
    });
    assert.throws(() => new CachedDirectory(inner, { staleIfErrorMs: Number.NaN }), RangeError);
    assert.throws(() => new CachedDirectory(inner, { lookupMaxEntries: 1.5 }), /whole number/);
    assert.throws(() => new CachedDirectory(inner, { authMaxEntries: -1 }), /authMaxEntries/);
    assert.doesNotThrow(() => new CachedDirectory(inner, { lookupTtlMs: 0, negativeTtlMs: Infinity }));
  });

  test('with no clock given it runs on performance.now()', async () => {
    const inner = new FakeDirectory({ t: 0 }, alice);
    const cache = new CachedDirectory(inner);
    await cache.findMailbox('alice@o365info.com');
    await cache.findMailbox('alice@o365info.com');
    assert.equal(inner.lookups, 1);
  });
});
