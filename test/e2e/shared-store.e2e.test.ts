/**
 * The shared store of several front ends (docs/operations.md "Several front ends: the shared store") against
 * a real redis-server on loopback (src/lab/redis.ts): two stores, as two front ends hold them, count one
 * account's failures together, atomically, with TTLs; revocations cross; Redis stopped: each falls back to
 * its own memory with one log line and the gauge at 0, and comes back when Redis does, handing over the
 * revocations made meanwhile; Redis frozen: no call waits longer than the timeout. No clock is faked here
 * but none is waited on either: TTLs are read back, state changes are awaited as events.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@redis/client';
import { RedisSharedStore } from '../../src/dataplane/redis-store.ts';
import type { RedisDaemon } from '../../src/lab/redis.ts';
import { startRedis } from '../../src/lab/redis.ts';
import { Metrics } from '../../src/observability/metrics.ts';

/** The store's log lines, kept for assertions. */
class Log {
  readonly lines: { level: 'warn' | 'info'; fields: Record<string, unknown>; message: string }[] = [];
  warn(fields: object, message: string): void {
    this.lines.push({ level: 'warn', fields: fields as Record<string, unknown>, message });
  }
  info(fields: object, message: string): void {
    this.lines.push({ level: 'info', fields: fields as Record<string, unknown>, message });
  }
}

const password = 'redis-pass-7f3a9c';

describe('the shared store in Redis', () => {
  let redis: RedisDaemon;
  let a: RedisSharedStore;
  let b: RedisSharedStore;
  const logA = new Log();
  const logB = new Log();
  const metrics = new Metrics({ server: 'CAS2013-NY' });
  let admin: ReturnType<typeof createClient>;

  before(async () => {
    redis = await startRedis({ password });
    const open = (log: Log, onState?: (up: boolean) => void) =>
      RedisSharedStore.open({
        url: redis.url,
        password,
        log,
        probeMs: 50,
        timeoutMs: 300,
        ...(onState ? { onState } : {}),
      });
    a = await open(logA, metrics.sharedStoreObserver());
    b = await open(logB);
    admin = createClient({ url: redis.url, password });
    admin.on('error', () => undefined);
    await admin.connect();
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    if (admin?.isOpen) admin.destroy();
    await redis?.close();
  });

  const gauge = async (): Promise<string | undefined> =>
    (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith('coexist_shared_store_up{'));

  test('both start on Redis, each with one info line, the gauge at 1', async () => {
    assert.ok(a.up && b.up);
    assert.deepEqual(
      logA.lines.map((l) => [l.level, l.message]),
      [['info', 'shared store: Redis in use']],
    );
    assert.equal(await gauge(), 'coexist_shared_store_up{server="CAS2013-NY"} 1');
  });

  test('failures counted by two front ends add up, atomically, under the prefix, with the TTL', async () => {
    const key = 'lo:u:bob@o365info.com';
    // 20 increments at once from both: INCR in a script, never a read-then-write.
    const counts = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).increment(key, 60_000)),
    );
    assert.deepEqual(
      [...counts].sort((x, y) => x - y),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.equal(await a.get(key), 20);
    assert.equal(await b.get(key), 20);
    const ttl = await admin.pTTL(`coexist:${key}`);
    assert.ok(ttl > 0 && ttl <= 60_000, `a TTL from the first failure (${ttl})`);
    await b.expire(key, 0);
    assert.equal(await a.get(key), 0, 'a success on one front end clears it for both');
    await a.expire('lo:f:absent', 1_000);
    assert.equal(await admin.exists('coexist:lo:f:absent'), 0, 'expire does not create a key');
  });

  test('a revocation on one is seen by the other, with a TTL', async () => {
    await a.revoke('sessionIdAAAAAAAAAAAAA', 30_000);
    assert.equal(await b.revoked('sessionIdAAAAAAAAAAAAA'), true);
    assert.equal(await b.revoked('sessionIdBBBBBBBBBBBBB'), false);
    const ttl = await admin.pTTL('coexist:rv:sessionIdAAAAAAAAAAAAA');
    assert.ok(ttl > 0 && ttl <= 30_000);
  });

  test('Redis stopped: both carry on in memory, one warn line each, the gauge at 0', async () => {
    const downA = a.whenState(false);
    const downB = b.whenState(false);
    await redis.stop();
    // The first call after the stop notices it; the answer still comes, from memory.
    assert.equal(await a.increment('lo:u:carol@o365info.com', 60_000), 1);
    assert.equal(await a.increment('lo:u:carol@o365info.com', 60_000), 2);
    assert.equal(await b.increment('lo:u:carol@o365info.com', 60_000), 1, 'b counts alone: its own memory');
    await a.revoke('sessionIdCCCCCCCCCCCCC', 30_000);
    assert.equal(await a.revoked('sessionIdCCCCCCCCCCCCC'), true, 'known where it was made');
    assert.equal(await b.revoked('sessionIdCCCCCCCCCCCCC'), false, 'not yet where it was not');
    assert.equal(await b.revoked('sessionIdAAAAAAAAAAAAA'), false, "b never knew a's earlier revocation");
    await Promise.all([downA, downB]);
    for (let i = 0; i < 5; i++) await a.get('lo:u:carol@o365info.com');
    const warns = logA.lines.filter((l) => l.level === 'warn');
    assert.equal(warns.length, 1, 'one line for the change, not one per call');
    assert.match(String(warns[0]?.message), /degraded/);
    assert.equal(warns[0]?.fields['redis'], redis.url);
    assert.equal(await gauge(), 'coexist_shared_store_up{server="CAS2013-NY"} 0');
  });

  test('Redis back: both use it again, and the revocations made meanwhile are handed over', async () => {
    const upA = a.whenState(true);
    const upB = b.whenState(true);
    await redis.start();
    await Promise.all([upA, upB]);
    assert.equal(await gauge(), 'coexist_shared_store_up{server="CAS2013-NY"} 1');
    assert.equal(await b.revoked('sessionIdCCCCCCCCCCCCC'), true, "a's revocation while Redis was away");
    await a.revoke('sessionIdDDDDDDDDDDDDD', 30_000);
    assert.equal(await b.revoked('sessionIdDDDDDDDDDDDDD'), true, 'shared again');
    assert.equal(await a.increment('lo:u:diego@o365info.com', 60_000), 1);
    assert.equal(await b.increment('lo:u:diego@o365info.com', 60_000), 2, 'counting together again');
    assert.deepEqual(
      logA.lines.map((l) => l.level),
      ['info', 'warn', 'info'],
    );
  });

  test('Redis frozen: a call returns within the timeout, from memory; thawed, it comes back', async () => {
    const down = a.whenState(false);
    await redis.pause();
    try {
      const began = performance.now();
      const n = await a.get('lo:u:diego@o365info.com');
      const took = performance.now() - began;
      assert.equal(n, 0, 'memory has no count for it');
      // The timeout is 300 ms; the bound leaves room for a loaded machine, and is far below "hung".
      assert.ok(took < 5_000, `answered in ${Math.round(took)} ms`);
      await down;
      assert.equal(a.up, false);
    } finally {
      redis.resume();
    }
    await a.whenState(true);
    assert.equal(await a.get('lo:u:diego@o365info.com'), 2);
  });

  test('a wrong password: the store starts degraded, the line says why, without the password', async () => {
    const log = new Log();
    const wrong = await RedisSharedStore.open({
      url: redis.url,
      password: 'not-the-password-42',
      log,
      timeoutMs: 300,
    });
    try {
      assert.equal(wrong.up, false);
      assert.equal(await wrong.increment('lo:u:x', 1_000), 1, 'counting in memory');
      assert.equal(log.lines.length, 1);
      assert.match(String(log.lines[0]?.fields['err']), /WRONGPASS|invalid username-password/i);
      assert.ok(!JSON.stringify(log.lines).includes('not-the-password-42'));
    } finally {
      await wrong.close();
    }
  });

  test('nothing but counters and revocation marks is in Redis, all under the prefix, all with a TTL', async () => {
    const keys = await admin.keys('*');
    assert.ok(keys.length > 0);
    for (const key of keys) {
      assert.match(key, /^coexist:(lo:[ufsk]:|rv:)/);
      assert.ok((await admin.pTTL(key)) > 0, `${key} has a TTL`);
      assert.match(String(await admin.get(key)), /^\d+$/);
    }
  });
});
