/**
 * The in-memory shared store of one front end (and the fallback of the Redis one): revocations with their
 * expiry and a bound, lockout counters as MemoryLockoutStore keeps them. An injected clock, no sockets.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryRevocations, MemorySharedStore } from './shared-store.ts';

describe('MemoryRevocations', () => {
  test('a revocation lasts its TTL, then is gone', () => {
    const clock = { t: 1_000 };
    const r = new MemoryRevocations({ now: () => clock.t });
    r.revoke('a', 100);
    r.revoke('zero', 0);
    assert.equal(r.revoked('a'), true);
    assert.equal(r.revoked('zero'), false, 'nothing to revoke for no time');
    assert.deepEqual([...r.entries()], [['a', 100]]);
    clock.t += 99;
    assert.equal(r.revoked('a'), true);
    clock.t += 1;
    assert.equal(r.revoked('a'), false);
    assert.equal(r.size, 0, 'dropped when seen expired');
  });

  test('revoking again never shortens a revocation', () => {
    const clock = { t: 0 };
    const r = new MemoryRevocations({ now: () => clock.t });
    r.revoke('a', 1_000);
    r.revoke('a', 10);
    clock.t = 500;
    assert.equal(r.revoked('a'), true);
  });

  test('bounded: full, the expired go first, then the one ending soonest', () => {
    const clock = { t: 0 };
    const r = new MemoryRevocations({ max: 3, now: () => clock.t });
    r.revoke('short', 10);
    r.revoke('long', 1_000);
    r.revoke('middle', 500);
    r.revoke('new', 800);
    assert.equal(r.size, 3);
    assert.equal(r.revoked('short'), false, 'the soonest to end made room');
    for (const id of ['long', 'middle', 'new']) assert.equal(r.revoked(id), true, id);
    clock.t = 600; // middle has ended
    r.revoke('later', 900);
    assert.equal(r.size, 3);
    for (const id of ['long', 'new', 'later']) assert.equal(r.revoked(id), true, id);
  });
});

describe('MemorySharedStore', () => {
  test('counters and revocations on one clock', async () => {
    const clock = { t: 0 };
    const s = new MemorySharedStore({ now: () => clock.t, maxKeys: 10 });
    assert.equal(s.increment('lo:u:bob', 1_000), 1);
    assert.equal(s.increment('lo:u:bob', 1_000), 2);
    s.revoke('id', 1_000);
    clock.t = 999;
    assert.equal(s.get('lo:u:bob'), 2);
    assert.equal(s.revoked('id'), true);
    s.expire('lo:u:bob', 0);
    assert.equal(s.get('lo:u:bob'), 0);
    clock.t = 1_000;
    assert.equal(s.revoked('id'), false);
    await s.close();
  });
});
