/**
 * Password checks through the cache, under the name the data plane imports (`CachedDirectory`): successes
 * remembered for a short TTL under an HMAC of the credentials, never failures or errors, one check in flight
 * per credential, and the clear password nowhere in the cache's state (walked with the V8 inspector, private
 * fields included). A fake clock and a fake directory; no sleeps, no timing.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { Runtime } from 'node:inspector';
import { Session } from 'node:inspector/promises';
import { describe, test } from 'node:test';
import type { Mailbox } from '../core/estate/estate-index.ts';
import type { DirectoryCacheKind, DirectoryCacheObserver, DirectoryCacheOptions } from './directory-cache.ts';
import { CachedDirectory } from './directory-cache.ts';
import type { Directory } from './directory.ts';

const second = 1_000;

const mailbox = (address: string): Mailbox =>
  ({ address, displayName: address, server: { name: 'MBX2013-NY' } }) as unknown as Mailbox;

const bob = mailbox('bob@o365info.com');
const password = 'Hunter2-Correct-Horse';

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A password check kept in a closure, which the state walk does not enter: what it finds is the cache's. */
const accepting = (pw: string): ((candidate: string) => boolean) => {
  const hash = sha256(pw);
  return (candidate) => sha256(candidate) === hash;
};

/** A directory with one user, `O365INFO\bob` (and `a\0b`, for the NUL test), that counts its checks. */
class FakeDirectory implements Directory {
  checks = 0;
  failWith: Error | undefined;
  #accepts = accepting(password);
  #held: (() => void)[] = [];
  #holding = false;

  /** The password changes: the directory now accepts only `next`. */
  changePassword(next: string): void {
    this.#accepts = accepting(next);
  }

  hold(): void {
    this.#holding = true;
  }

  release(): void {
    this.#holding = false;
    for (const go of this.#held.splice(0)) go();
  }

  findMailbox(): Promise<Mailbox | undefined> {
    return Promise.reject(new Error('not used here'));
  }

  async authenticate(login: string, pw: string): Promise<Mailbox | undefined> {
    this.checks++;
    if (this.#holding) await new Promise<void>((go) => this.#held.push(go));
    if (this.failWith) throw this.failWith;
    const known = login.toLowerCase() === 'o365info\\bob' || login.toLowerCase() === 'a\0b';
    return known && this.#accepts(pw) ? bob : undefined;
  }
}

const setup = (o: DirectoryCacheOptions = {}) => {
  const clock = { t: 5_000_000 };
  const inner = new FakeDirectory();
  const counts = { hit: 0, miss: 0, coalesced: 0, stale: 0, error: 0, latency: 0 };
  const count = (kind: DirectoryCacheKind, event: keyof typeof counts): void => {
    assert.equal(kind, 'auth');
    counts[event]++;
  };
  const observer: DirectoryCacheObserver = {
    hit: (k) => count(k, 'hit'),
    miss: (k) => count(k, 'miss'),
    coalesced: (k) => count(k, 'coalesced'),
    stale: (k) => count(k, 'stale'),
    error: (k) => count(k, 'error'),
    latency: (k) => count(k, 'latency'),
  };
  const cache = new CachedDirectory(inner, { now: () => clock.t, observer, ...o });
  return { cache, inner, clock, counts };
};

/**
 * Every string reachable from `root` as V8 sees it: own and private fields, `Map` entries, promise results,
 * typed-array bytes as text. Functions are not entered (their scopes reach this test module, which holds the
 * password on purpose); each object is visited once.
 */
async function reachableStrings(root: object): Promise<string[]> {
  const session = new Session();
  session.connect();
  const probe = globalThis as { __coexistProbe?: object; __coexistSeen?: WeakSet<object> };
  probe.__coexistProbe = root;
  probe.__coexistSeen = new WeakSet();
  const strings: string[] = [];
  const firstVisit = async (objectId: string): Promise<boolean> => {
    const { result } = await session.post('Runtime.callFunctionOn', {
      objectId,
      functionDeclaration: `function () {
        const seen = globalThis.__coexistSeen;
        if (seen.has(this)) return false;
        seen.add(this);
        return true;
      }`,
      returnByValue: true,
    });
    return result.value === true;
  };
  const visit = async (objectId: string): Promise<void> => {
    if (!(await firstVisit(objectId))) return;
    // V8 sends private fields as `privateProperties`, which @types/node's protocol types do not list yet.
    const props: Runtime.GetPropertiesReturnType & {
      privateProperties?: { name: string; value?: Runtime.RemoteObject }[];
    } = await session.post('Runtime.getProperties', { objectId, ownProperties: true });
    const values = [
      ...props.result.map((p) => p.value),
      ...(props.privateProperties ?? []).map((p) => p.value),
      ...(props.internalProperties ?? []).filter((p) => p.name !== '[[Prototype]]').map((p) => p.value),
    ];
    const bytes: number[] = [];
    for (const v of values) {
      if (v === undefined) continue;
      if (v.type === 'string') strings.push(String(v.value));
      else if (v.type === 'number' && typeof v.value === 'number') bytes.push(v.value);
      else if (v.type === 'object' && v.objectId !== undefined) await visit(v.objectId);
    }
    if (bytes.length > 0) strings.push(Buffer.from(bytes.map((b) => b & 0xff)).toString('latin1'));
  };
  try {
    const { result } = await session.post('Runtime.evaluate', { expression: 'globalThis.__coexistProbe' });
    assert.ok(result.objectId);
    await visit(result.objectId);
  } finally {
    delete probe.__coexistProbe;
    delete probe.__coexistSeen;
    session.disconnect();
  }
  return strings;
}

describe('CachedDirectory password checks', () => {
  test('is CachedDirectory under its earlier name', () => {
    assert.equal(CachedDirectory, CachedDirectory);
    assert.ok(new CachedDirectory(new FakeDirectory()) instanceof CachedDirectory);
  });

  test('a success is remembered for the TTL (60 s), whatever the case of the login', async () => {
    const { cache, inner, clock, counts } = setup();
    assert.equal(await cache.authenticate('O365INFO\\bob', password), bob);
    assert.equal(await cache.authenticate('o365info\\BOB', password), bob);
    clock.t += 60 * second - 1;
    assert.equal(await cache.authenticate('O365INFO\\bob', password), bob);
    assert.equal(inner.checks, 1);
    assert.deepEqual([counts.miss, counts.hit, counts.latency], [1, 2, 1]);
    clock.t += 1;
    assert.equal(await cache.authenticate('O365INFO\\bob', password), bob);
    assert.equal(inner.checks, 2);
    assert.deepEqual(cache.size, { lookups: 0, credentials: 1 });
  });

  test('a hit returns the one already-resolved promise of its entry', async () => {
    const { cache } = setup();
    await cache.authenticate('O365INFO\\bob', password);
    assert.equal(
      cache.authenticate('O365INFO\\bob', password),
      cache.authenticate('O365INFO\\bob', password),
    );
  });

  test('a different password is a miss, and a wrong password is never remembered', async () => {
    const { cache, inner } = setup();
    await cache.authenticate('O365INFO\\bob', password);
    assert.equal(await cache.authenticate('O365INFO\\bob', 'wrong'), undefined);
    assert.equal(await cache.authenticate('O365INFO\\bob', 'wrong'), undefined);
    assert.equal(await cache.authenticate('O365INFO\\bob', `${password} `), undefined);
    assert.equal(await cache.authenticate('O365INFO\\bob', password.toLowerCase()), undefined);
    assert.equal(inner.checks, 5);
    assert.deepEqual(cache.size, { lookups: 0, credentials: 1 });
  });

  test('a changed password works at once; the old one is trusted until its entry expires', async () => {
    const { cache, inner, clock } = setup();
    await cache.authenticate('O365INFO\\bob', password);
    inner.changePassword('Brand-New-Password');
    assert.equal(await cache.authenticate('O365INFO\\bob', 'Brand-New-Password'), bob);
    assert.equal(await cache.authenticate('O365INFO\\bob', password), bob, 'remembered, for at most the TTL');
    clock.t += 60 * second;
    assert.equal(await cache.authenticate('O365INFO\\bob', password), undefined);
  });

  test('login and password cannot be shifted into each other (a NUL in the login)', async () => {
    const { cache, inner } = setup();
    assert.equal(await cache.authenticate('a\0b', password), bob);
    // Same characters once joined with the NUL: must still be a different key, so the directory is asked.
    assert.equal(await cache.authenticate('a', `b\0${password}`), undefined);
    assert.equal(inner.checks, 2);
  });

  test('100 concurrent checks of one credential ask the directory once', async () => {
    const { cache, inner, counts } = setup();
    inner.hold();
    const all = Array.from({ length: 100 }, () => cache.authenticate('O365INFO\\bob', password));
    assert.equal(inner.checks, 1);
    inner.release();
    assert.ok((await Promise.all(all)).every((m) => m === bob));
    assert.deepEqual([counts.miss, counts.coalesced], [1, 99]);
  });

  test('100 concurrent wrong passwords: one check, none remembered', async () => {
    const { cache, inner } = setup();
    inner.hold();
    const all = Array.from({ length: 100 }, () => cache.authenticate('O365INFO\\bob', 'guess'));
    inner.release();
    assert.ok((await Promise.all(all)).every((m) => m === undefined));
    assert.equal(inner.checks, 1);
    await cache.authenticate('O365INFO\\bob', 'guess');
    assert.equal(inner.checks, 2);
  });

  test('concurrent checks with different passwords are separate questions', async () => {
    const { cache, inner } = setup();
    inner.hold();
    const all = [cache.authenticate('O365INFO\\bob', password), cache.authenticate('O365INFO\\bob', 'guess')];
    inner.release();
    assert.deepEqual(await Promise.all(all), [bob, undefined]);
    assert.equal(inner.checks, 2);
  });

  test('a failure of the directory is passed on and never remembered', async () => {
    const { cache, inner, counts } = setup();
    const down = new Error('ldap down');
    inner.failWith = down;
    inner.hold();
    const all = Array.from({ length: 10 }, () => cache.authenticate('O365INFO\\bob', password));
    inner.release();
    const results = await Promise.allSettled(all);
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason === down));
    assert.equal(inner.checks, 1);
    inner.failWith = undefined;
    assert.equal(await cache.authenticate('O365INFO\\bob', password), bob);
    assert.equal(inner.checks, 2);
    assert.deepEqual([counts.error, counts.stale], [1, 0]);
  });

  test('an expired success is not served while the directory is down', async () => {
    const { cache, inner, clock } = setup();
    await cache.authenticate('O365INFO\\bob', password);
    clock.t += 60 * second;
    inner.failWith = new Error('ldap down');
    await assert.rejects(cache.authenticate('O365INFO\\bob', password), /ldap down/);
  });

  test('beyond authMaxEntries the least recently used credential goes first', async () => {
    const { cache, inner } = setup({ authMaxEntries: 2 });
    const pw = (n: number) => `pw-${n}`;
    inner.changePassword(pw(1));
    await cache.authenticate('O365INFO\\bob', pw(1));
    inner.changePassword(pw(2));
    await cache.authenticate('O365INFO\\bob', pw(2));
    await cache.authenticate('O365INFO\\bob', pw(1)); // pw-2 is now the least recent
    inner.changePassword(pw(3));
    await cache.authenticate('O365INFO\\bob', pw(3));
    assert.equal(inner.checks, 3);
    assert.equal(cache.size.credentials, 2);
    assert.equal(await cache.authenticate('O365INFO\\bob', pw(1)), bob);
    assert.equal(await cache.authenticate('O365INFO\\bob', pw(3)), bob);
    assert.equal(inner.checks, 3);
    assert.equal(
      await cache.authenticate('O365INFO\\bob', pw(2)),
      undefined,
      'forgotten, and no longer right',
    );
    assert.equal(inner.checks, 4);
  });

  test('password checks and lookups are remembered apart', async () => {
    const { cache } = setup();
    await cache.authenticate('O365INFO\\bob', password);
    assert.deepEqual(cache.size, { lookups: 0, credentials: 1 });
  });
});

describe('CachedDirectory state holds no password', () => {
  test('the clear password is nowhere in what the cache holds, only 32-byte HMACs', async () => {
    const { cache, inner } = setup();
    await cache.authenticate('O365INFO\\bob', password);
    await cache.authenticate('O365INFO\\alice', 'Another-Secret-Pw');
    await cache.authenticate('a\0b', password);
    inner.hold();
    const pending = cache.authenticate('O365INFO\\bob', 'In-Flight-Secret');
    const strings = await reachableStrings(cache);
    inner.release();
    await pending;

    // The walk did reach the entries: the mailbox is there, and the keys.
    assert.ok(strings.includes('bob@o365info.com'));
    const keys = strings.filter((s) => /^[A-Za-z0-9+/]{43}=$/.test(s));
    assert.equal(new Set(keys).size, 3, 'bob, a\\0b, and the check in flight');
    for (const secret of [password, 'Another-Secret-Pw', 'In-Flight-Secret']) {
      assert.ok(!strings.some((s) => s.includes(secret)), `${secret} found in the cache's state`);
    }
    // Nor an unkeyed hash of it, which could be guessed at offline.
    const digest = createHash('sha256').update(password).digest();
    for (const form of [digest.toString('hex'), digest.toString('base64'), digest.toString('latin1')]) {
      assert.ok(!strings.some((s) => s.includes(form)), 'a plain SHA-256 of the password');
    }
  });

  test('the HMAC key is per instance: the same credential has another key elsewhere', async () => {
    const one = setup().cache;
    const two = setup().cache;
    await one.authenticate('O365INFO\\bob', password);
    await two.authenticate('O365INFO\\bob', password);
    const keys = async (c: CachedDirectory) => [
      ...new Set((await reachableStrings(c)).filter((s) => /^[A-Za-z0-9+/]{43}=$/.test(s))),
    ];
    const [k1, k2] = [await keys(one), await keys(two)];
    assert.equal(k1.length, 1);
    assert.equal(k2.length, 1);
    assert.notEqual(k1[0], k2[0]);
  });
});
