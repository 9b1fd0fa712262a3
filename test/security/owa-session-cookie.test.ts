/**
 * Attack: forging, altering or replaying the OWA session cookie, now that it carries the session itself
 * (docs/security.md "OWA sessions"): the user, the credential for the next hop and the times, sealed with
 * AES-256-GCM under the front ends' shared key. A cookie with one bit flipped, cut short, with another version
 * byte, made for another cookie name or under a key the estate does not hold opens nothing: the browser gets
 * the logon page and the log one structured line with the reason, never the cookie's value. A cookie past its
 * absolute expiry is refused however recently it was used, and its times cannot be moved without the key. A
 * cookie logged off on one front end and replayed on the other is refused there. And no credential reaches
 * any log line, or Redis. Real sockets: the lab, two extra front ends, a real redis-server.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@redis/client';
import { basicAuthorization, OwaSessions } from '../../src/dataplane/owa-session.ts';
import type { Lab } from '../../src/lab/index.ts';
import type { RedisDaemon } from '../../src/lab/redis.ts';
import { startRedis } from '../../src/lab/redis.ts';
import type { FrontEnd } from '../support/front-ends.ts';
import { startFrontEnd } from '../support/front-ends.ts';
import type { LineSink } from '../support/lab-client.ts';
import { demoPassword } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';

const mail = 'https://mail.o365info.com';
const formType = { 'content-type': 'application/x-www-form-urlencoded' };
const hour = 3_600_000;

describe('attack: a forged, altered or replayed OWA session cookie', () => {
  let lab: Lab;
  let sink: LineSink;
  let redis: RedisDaemon;
  let a: FrontEnd;
  let b: FrontEnd;
  const key = randomBytes(32);
  const values: string[] = [];

  before(async () => {
    redis = await startRedis();
    ({ lab, sink } = await loggedLab());
    const options = { sessionKeys: [key], redis: { url: redis.url } };
    a = await startFrontEnd(lab, options);
    b = await startFrontEnd(lab, options);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await lab?.close();
    await redis?.close();
  });

  async function signIn(fe: FrontEnd): Promise<string> {
    const r = await fe.fetch(`${mail}/owa/auth.owa`, {
      headers: formType,
      body: `destination=${encodeURIComponent(`${mail}/owa/`)}&username=alice%40o365info.com&password=${encodeURIComponent(demoPassword)}`,
    });
    assert.equal(r.status, 302);
    const value = String(r.headers['set-cookie']).split(';')[0]?.split('=')[1] as string;
    values.push(value);
    return value;
  }

  /** `value` sent as the session cookie to `fe`: the logon page, and the one log line with `reason`. */
  async function assertRefused(fe: FrontEnd, value: string, reason: string): Promise<void> {
    const r = await fe.fetch(`${mail}/owa/`, { headers: { cookie: `coexist-session=${value}` } });
    assert.equal(r.status, 302, `${reason}: ${r.body}`);
    assert.match(String(r.headers['location']), /^\/owa\/auth\/logon\.aspx\?replaceCurrent=1&url=/);
    const lines = fe.log.lines.filter((l) => l['reqId'] === r.requestId);
    const refused = lines.filter((l) => l['msg'] === 'owa session refused');
    assert.equal(refused.length, 1, JSON.stringify(lines));
    assert.equal(refused[0]?.['reason'], reason);
    assert.equal(refused[0]?.['cookieName'], 'coexist-session', 'the name, never the value');
    const text = JSON.stringify(lines);
    assert.ok(!text.includes(value.slice(0, 24)), 'no part of the cookie value is logged');
    values.push(value);
  }

  test('the real cookie works on both front ends', async () => {
    const cookie = await signIn(a);
    for (const fe of [a, b])
      assert.equal(
        (await fe.fetch(`${mail}/owa/`, { headers: { cookie: `coexist-session=${cookie}` } })).status,
        200,
      );
  });

  test('one bit flipped in the seal, the nonce, the key id or the version byte', async () => {
    const raw = Buffer.from(await signIn(a), 'base64url');
    const flip = (byte: number, bit = 0) => {
      const bad = Buffer.from(raw);
      bad[byte] = (bad[byte] as number) ^ (1 << bit);
      return bad.toString('base64url');
    };
    await assertRefused(b, flip(raw.length - 1), 'forged'); // the tag
    await assertRefused(b, flip(raw.length - 30, 3), 'forged'); // the ciphertext: the times, the credential
    await assertRefused(b, flip(8), 'forged'); // the nonce
    await assertRefused(b, flip(2), 'unknown-key'); // the key id
    await assertRefused(b, flip(0, 1), 'version'); // another version byte
  });

  test('truncated, and padded out', async () => {
    const value = await signIn(a);
    const raw = Buffer.from(value, 'base64url');
    await assertRefused(b, raw.subarray(0, raw.length - 3).toString('base64url'), 'forged');
    await assertRefused(b, raw.subarray(0, 20).toString('base64url'), 'malformed');
    await assertRefused(b, Buffer.concat([raw, Buffer.alloc(3)]).toString('base64url'), 'forged');
    await assertRefused(b, `${value}%00`, 'malformed');
  });

  test('a cookie made for another cookie name, under the same key', async () => {
    const other = new OwaSessions({ keys: [key], cookieName: 'coexist-other' });
    const setCookie = other.create(
      'alice@o365info.com',
      basicAuthorization('alice@o365info.com', demoPassword),
    );
    await assertRefused(b, setCookie.split(';')[0]?.split('=')[1] as string, 'forged');
  });

  test('a cookie sealed under a key the estate does not hold', async () => {
    const stranger = new OwaSessions({ keys: [randomBytes(32)] });
    const setCookie = stranger.create(
      'alice@o365info.com',
      basicAuthorization('alice@o365info.com', demoPassword),
    );
    await assertRefused(b, setCookie.split(';')[0]?.split('=')[1] as string, 'unknown-key');
  });

  test('past its absolute expiry: refused however recent its last use, and its times cannot be moved', async () => {
    // Made by a holder of the key 9 h ago (the default absolute limit is 8 h), last seen a minute ago.
    let now = Date.now() - 9 * hour;
    const then = new OwaSessions({
      keys: [key],
      now: () => now,
      idleMs: 24 * hour,
      maxAgeMs: 24 * hour,
      refreshMs: 1,
    });
    const old = then.create('alice@o365info.com', basicAuthorization('alice@o365info.com', demoPassword));
    now = Date.now() - 60_000;
    const check = await then.verify(old.split(';')[0]?.split('=')[1]);
    assert.ok(check.ok && check.setCookie, 're-sealed with a recent last-seen time');
    const value = check.setCookie.split(';')[0]?.split('=')[1] as string;
    await assertRefused(b, value, 'expired');
    // Without the key, no bit of the sealed times can change and still open.
    const raw = Buffer.from(value, 'base64url');
    for (let byte = 17; byte < raw.length - 16; byte += 7) {
      const bad = Buffer.from(raw);
      bad[byte] = (bad[byte] as number) ^ 0x01;
      const r = await b.fetch(`${mail}/owa/`, {
        headers: { cookie: `coexist-session=${bad.toString('base64url')}` },
      });
      assert.equal(r.status, 302, `byte ${byte}`);
    }
  });

  test('a cookie logged off on A and replayed on B is refused there', async () => {
    const value = await signIn(a);
    const cookie = `coexist-session=${value}`;
    assert.equal((await b.fetch(`${mail}/owa/`, { headers: { cookie } })).status, 200);
    const off = await a.fetch(`${mail}/owa/auth/logoff.aspx`, { headers: { cookie } });
    assert.equal(off.status, 302);
    await assertRefused(b, value, 'revoked');
    await assertRefused(a, value, 'revoked');
  });

  test('no credential in any log line, nor in Redis', async () => {
    const credential = basicAuthorization('alice@o365info.com', demoPassword).slice('Basic '.length);
    const logs = [sink.lines.join('\n'), a.log.text(), b.log.text()].join('\n');
    assert.ok(logs.includes('owa session refused'), 'the log was written');
    for (const secret of [demoPassword, credential, ...values.map((v) => v.slice(0, 24))])
      assert.ok(!logs.includes(secret), `a log holds ${secret.slice(0, 6)}…`);

    const admin = createClient({ url: redis.url });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      const keys = await admin.keys('*');
      assert.ok(
        keys.some((k) => k.startsWith('coexist:rv:')),
        'the revocation is there',
      );
      for (const k of keys) {
        const v = String(await admin.get(k));
        for (const secret of [demoPassword, credential, 'alice@o365info.com:'])
          assert.ok(!k.includes(secret) && !v.includes(secret), `${k} holds a credential`);
        for (const value of values)
          assert.ok(!k.includes(value.slice(0, 24)) && !v.includes(value.slice(0, 24)));
      }
    } finally {
      admin.destroy();
    }
  });
});
