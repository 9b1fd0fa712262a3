import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LockoutEvent, LockoutOptions } from './lockout.ts';
import { sourceKey } from '../net/source.ts';
import { Lockout, MemoryLockoutStore, accountKey } from './lockout.ts';

/** A lockout on a clock the test moves, whose delays are recorded instead of waited. */
function rig(o: LockoutOptions = {}) {
  let now = 1_000_000;
  const slept: number[] = [];
  const events: LockoutEvent[] = [];
  const counted = { failure: [] as string[], locked: [] as string[], refused: [] as string[] };
  const lockout = new Lockout({
    windowSeconds: 60,
    ...o,
    now: () => now,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
    onTransition: (e) => events.push(e),
    observer: {
      failure: (f) => counted.failure.push(f),
      locked: (s) => counted.locked.push(s),
      refused: (s) => counted.refused.push(s),
    },
  });
  /** One sign-in attempt: 'refused' (locked, directory not asked), 'failed' or 'ok'. */
  const attempt = async (
    account: string,
    source: string,
    rightPassword: boolean,
  ): Promise<'refused' | 'failed' | 'ok'> => {
    const a = await lockout.check(account, source);
    if (a.refused !== undefined) return 'refused';
    if (!rightPassword) {
      await lockout.failed(a);
      return 'failed';
    }
    await lockout.succeeded(a);
    return 'ok';
  };
  return {
    lockout,
    slept,
    events,
    counted,
    attempt,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const phone = '198.51.100.7';
const attacker = '203.0.113.9';

describe('extranet smart lockout', () => {
  test('unfamiliar failures lock the account for unfamiliar sources only; the familiar phone keeps working', async () => {
    const r = rig();
    assert.equal(await r.attempt('bob@o365info.com', phone, true), 'ok');
    for (let i = 0; i < 5; i++) assert.equal(await r.attempt('bob@o365info.com', attacker, false), 'failed');
    // Locked: the right password from the attacker's source is refused without the directory.
    assert.equal(await r.attempt('bob@o365info.com', attacker, true), 'refused');
    assert.equal(await r.attempt('bob@o365info.com', '192.0.2.1', true), 'refused', 'any unfamiliar source');
    assert.equal(await r.attempt('bob@o365info.com', phone, true), 'ok', 'the familiar source is not locked');
    assert.deepEqual(r.counted.failure, Array(5).fill('unfamiliar'));
    assert.deepEqual(r.counted.locked, ['unfamiliar']);
    assert.deepEqual(r.counted.refused, ['unfamiliar', 'unfamiliar']);
    assert.deepEqual(r.events, [
      {
        state: 'locked',
        scope: 'unfamiliar',
        account: 'bob@o365info.com',
        source: attacker,
        failures: 5,
        forSeconds: 60,
      },
    ]);
  });

  test('the lock lasts one window from when it started, then one unlock line, and the counts start again', async () => {
    const r = rig();
    r.advance(0);
    for (let i = 0; i < 4; i++) await r.attempt('bob', attacker, false);
    r.advance(50_000); // the fifth failure comes late in the window: the lock still lasts a whole window
    await r.attempt('bob', attacker, false);
    r.advance(59_999);
    assert.equal(await r.attempt('bob', attacker, true), 'refused');
    assert.equal(r.events.length, 1);
    r.advance(1);
    assert.equal(await r.attempt('bob', attacker, true), 'ok');
    assert.deepEqual(
      r.events.map((e) => e.state),
      ['locked', 'unlocked'],
    );
    assert.deepEqual(r.events[1], {
      state: 'unlocked',
      scope: 'unfamiliar',
      account: 'bob',
      source: attacker,
    });
  });

  test('failures outside the window do not add up', async () => {
    const r = rig();
    for (let i = 0; i < 4; i++) await r.attempt('bob', attacker, false);
    r.advance(60_000);
    for (let i = 0; i < 4; i++) await r.attempt('bob', attacker, false);
    assert.equal(await r.attempt('bob', attacker, true), 'ok');
    assert.deepEqual(r.events, []);
  });

  test('the familiar source has its own threshold, and a good password there clears its count', async () => {
    const r = rig({ familiarThreshold: 3 });
    await r.attempt('bob', phone, true);
    await r.attempt('bob', phone, false);
    await r.attempt('bob', phone, false);
    await r.attempt('bob', phone, true); // AD resets badPwdCount on a good password; so does the lockout
    for (let i = 0; i < 3; i++) assert.equal(await r.attempt('bob', phone, false), 'failed');
    assert.equal(await r.attempt('bob', phone, true), 'refused');
    assert.equal(r.events[0]?.scope, 'familiar');
    assert.equal(await r.attempt('bob', attacker, true), 'ok', 'unfamiliar failures are counted apart');
  });

  test('a source spraying many accounts is locked for accounts it never signed in', async () => {
    const r = rig({ sourceThreshold: 10 });
    await r.attempt('alice', attacker, true); // the sprayer's address once signed alice in (a shared NAT)
    for (let i = 0; i < 10; i++) assert.equal(await r.attempt(`user${i}`, attacker, false), 'failed');
    assert.equal(await r.attempt('user99', attacker, true), 'refused', 'a new account from the source');
    assert.equal(await r.attempt('alice', attacker, true), 'ok', 'the source is familiar to alice');
    assert.equal(await r.attempt('user99', phone, true), 'ok', 'other sources are not locked');
    assert.deepEqual(
      r.events.map((e) => [e.state, e.scope, e.source]),
      [['locked', 'source', attacker]],
    );
    assert.deepEqual(r.counted.refused, ['source']);
  });

  test('progressive delay: none for the first failures, then doubling up to the cap', async () => {
    const r = rig({ unfamiliarThreshold: 100, sourceThreshold: 100 });
    for (let i = 0; i < 8; i++) await r.attempt('bob', attacker, false);
    assert.deepEqual(r.slept, [250, 500, 1000, 2000, 2000, 2000]);
    assert.equal(r.lockout.delayMs(1), 0);
    assert.equal(r.lockout.delayMs(2), 0);
    assert.equal(r.lockout.delayMs(1_000_000), 2000);
  });

  test('a refused attempt is answered at once and counts nothing', async () => {
    const r = rig();
    for (let i = 0; i < 5; i++) await r.attempt('bob', attacker, false);
    const slept = r.slept.length;
    for (let i = 0; i < 50; i++) assert.equal(await r.attempt('bob', attacker, false), 'refused');
    assert.equal(r.slept.length, slept);
    assert.equal(r.counted.failure.length, 5);
  });

  test('one account under any spelling of its login shares a counter; IPv6 sources by their /64', async () => {
    const r = rig();
    for (const login of ['BOB@o365info.com', 'bob@O365INFO.com', ' bob@o365info.com', 'Bob@o365info.com'])
      await r.attempt(login, attacker, false);
    await r.attempt('bob@o365info.com', '2001:db8:1:2:aaaa::1', false);
    assert.equal(await r.attempt('bob@o365info.com', attacker, true), 'refused');
    assert.equal(accountKey('X'.repeat(10_000)).length, 256);
    assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:0db8:0001:0002:ffff:0:0:1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(sourceKey('192.0.2.1'), '192.0.2.1');
  });

  test('settings are checked', () => {
    assert.throws(() => new Lockout({ unfamiliarThreshold: 0 }), /unfamiliarThreshold/);
    assert.throws(() => new Lockout({ maxDelayMs: -1 }), /maxDelayMs/);
    assert.doesNotThrow(() => new Lockout({ freeFailures: 0, maxDelayMs: 0 }));
  });
});

describe('the in-memory store', () => {
  test('counts with an expiry, extends and drops keys, and holds at most maxKeys', () => {
    let now = 0;
    const s = new MemoryLockoutStore({ maxKeys: 3, now: () => now });
    assert.equal(s.increment('a', 100), 1);
    assert.equal(s.increment('a', 100), 2);
    now = 99;
    assert.equal(s.get('a'), 2);
    s.expire('a', 100); // now lives to 199
    now = 150;
    assert.equal(s.get('a'), 2);
    now = 199;
    assert.equal(s.get('a'), 0);
    assert.equal(s.increment('a', 100), 1, 'an expired key starts again');
    s.expire('a', 0);
    assert.equal(s.get('a'), 0);
    s.expire('absent', 100);
    assert.equal(s.get('absent'), 0);
    for (const k of ['k1', 'k2', 'k3', 'k4']) s.increment(k, 1000);
    assert.equal(s.size, 3);
    assert.equal(s.get('k1'), 0, 'the least recently written went first');
    assert.equal(s.get('k4'), 1);
  });
});
