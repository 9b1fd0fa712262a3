/**
 * Attacks on NTLM passed through (docs/security.md "Windows authentication"). NTLM authenticates a connection;
 * a proxy that lets a second client connection ride an upstream connection a first user authenticated serves
 * the second client the first user's mailbox. Here: (a) many users' connections interleaved, and a request
 * sent the moment another user's completes, never ride another's upstream connection; (b) an anchor switched
 * mid-connection to a mailbox on another next hop does not ride the pinned one; (c) malformed, truncated and
 * oversized tokens are refused with a logged code, and no token reaches a log; (d) a NEGOTIATE flood opens one
 * upstream connection per client connection and origin, not one per message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { NtlmFront } from '../support/ntlm-front.ts';
import { handshake, send, startNtlmFront, until } from '../support/ntlm-front.ts';
import { authorization, ntlmAuthenticate, ntlmNegotiate } from '../support/ntlm.ts';
import { defined } from '../support/ntlm.ts';

describe("attack: one user's NTLM-authenticated upstream connection serving another", () => {
  let front: NtlmFront;
  before(async () => {
    front = await startNtlmFront();
  });
  after(() => front.close());

  test("(a) 16 connections of two users interleaved, 25 requests each: every answer is its own user's", async () => {
    // alice and svc-crm both live on MBX2013-NY: the same next hop, where a shared pool would mix them.
    const users = ['alice', 'svc-crm'];
    const from = front.seen.length;
    const runs = Array.from({ length: 16 }, async (_, i) => {
      const user = defined(users[i % 2]);
      const client = front.client();
      const { done } = await handshake(client, { user, domain: 'O365INFO' });
      assert.equal(done.status, 200);
      const sockets = new Set<number>();
      for (let r = 0; r < 25; r++) {
        const answer = await send(client);
        assert.equal(answer.status, 200);
        const body = JSON.parse(answer.body) as { user: string; socket: number };
        assert.equal(
          body.user,
          `O365INFO\\${user}`,
          `connection ${i} request ${r} got another user's answer`,
        );
        sockets.add(body.socket);
      }
      await client.close();
      assert.equal(sockets.size, 1, `connection ${i}: one upstream socket`);
      return defined([...sockets][0]);
    });
    const sockets = await Promise.all(runs);
    assert.equal(new Set(sockets).size, 16, 'no two client connections shared an upstream socket');
    for (const r of front.seen.slice(from)) {
      const users = defined(front.sockets.get(r.socket)).users;
      assert.ok(users.size <= 1, `upstream socket ${r.socket} carried ${[...users].join(', ')}`);
    }
  });

  test("(a) B's bare request sent the moment A's completes is not A's: coexist's own 401, no next hop reached", async () => {
    const a = front.client();
    const b = front.client();
    await handshake(a, { user: 'alice', domain: 'O365INFO' });
    for (let i = 0; i < 20; i++) {
      const from = front.seen.length;
      // B's request goes out in the same turn A's answer is complete.
      const [answerA, answerB] = await send(a).then(async (x) => [x, await send(b)] as const);
      assert.equal(answerA.status, 200);
      assert.equal(answerB.status, 401, 'B, who never authenticated, must not be served');
      assert.deepEqual([answerB.headers['www-authenticate']].flat(), [
        'Negotiate',
        'NTLM',
        'Basic realm="mail.o365info.com"',
      ]);
      assert.equal(front.seen.length - from, 1, "only A's request reached the next hop");
    }
    // And B anchored on alice, bare, on a connection that has a pin of its own (its own NEGOTIATE): its own
    // socket, unauthenticated, never A's.
    const challenge = await send(b, {
      authorization: authorization('NTLM', ntlmNegotiate()),
      'x-anchormailbox': 'alice@o365info.com',
    });
    assert.equal(challenge.status, 401);
    const from = front.seen.length;
    const bare = await send(b, { 'x-anchormailbox': 'alice@o365info.com' });
    assert.equal(bare.status, 401);
    const aSocket = (JSON.parse((await send(a)).body) as { socket: number }).socket;
    assert.notEqual(defined(front.seen[from]).socket, aSocket);
    await a.close();
    await b.close();
  });

  test('(b) an anchor switched mid-connection to a mailbox on another next hop does not ride the pinned one', async () => {
    const client = front.client();
    const from = front.seen.length;
    const { done } = await handshake(
      client,
      { user: 'alice', domain: 'O365INFO' },
      { 'x-anchormailbox': 'alice@o365info.com' },
    );
    assert.equal(done.status, 200);
    const pinned = defined(front.seen[from]).socket;
    const switched = await send(client, { 'x-anchormailbox': 'bob@o365info.com' });
    assert.equal(switched.status, 401, "bob's next hop has not authenticated this connection");
    const last = defined(front.seen.at(-1));
    assert.equal(last.host, 'legacy.mail.o365info.com');
    assert.notEqual(last.socket, pinned);
    assert.equal(defined(front.sockets.get(last.socket)).users.size, 0);
    // Back to alice: the first pin is still this connection's, still alice's.
    const back = await send(client, { 'x-anchormailbox': 'alice@o365info.com' });
    assert.equal(back.status, 200);
    assert.equal((JSON.parse(back.body) as { socket: number }).socket, pinned);
    await client.close();
  });

  test('(c) malformed, truncated and oversized tokens: 400, a logged code, no crash, no token in any log', async () => {
    const good = ntlmAuthenticate({ user: 'alice', domain: 'O365INFO' });
    const cutField = Buffer.from(good);
    cutField.writeUInt32LE(0xfffffff0, 36 + 4);
    const tokens = [
      'NTLM',
      'NTLM !!!notbase64!!!',
      `NTLM ${good.subarray(0, 70).toString('base64')}`,
      `NTLM ${cutField.toString('base64')}`,
      `Negotiate ${Buffer.from('a184ffffffff30', 'hex').toString('base64')}`,
      `Negotiate ${Buffer.alloc(9000, 0x41).toString('base64')}`,
      `NTLM ${Buffer.concat([Buffer.from('NTLMSSP\0\x07\0\0\0', 'latin1'), Buffer.alloc(40)]).toString('base64')}`,
    ];
    for (const value of tokens) {
      const client = front.client();
      const logged = front.log.next(
        (l) => l['code'] === 'CX_IDENTITY_WINDOWS_AUTH_MALFORMED' && l['msg'] !== 'access',
      );
      const answer = await send(client, { authorization: value });
      assert.equal(answer.status, 400, value.slice(0, 40));
      await logged;
      await client.destroy();
    }
    // The front end still serves.
    const client = front.client();
    assert.equal((await handshake(client, { user: 'alice', domain: 'O365INFO' })).done.status, 200);
    await client.close();
    const text = front.log.text();
    for (const value of tokens) {
      const token = value.split(' ')[1];
      if (token && token.length > 8) assert.ok(!text.includes(token.slice(0, 24)), 'a token in the log');
    }
    assert.ok(!text.includes(good.toString('base64').slice(0, 24)));
    assert.ok(!text.includes('TlRMTVNT'), 'no NTLMSSP token in any log line');
  });

  test('(d) a NEGOTIATE flood on one connection opens one upstream connection per origin', async () => {
    const before = front.sockets.size;
    const client = front.client();
    const from = front.seen.length;
    for (let i = 0; i < 60; i++) {
      const anchor = i % 2 === 0 ? 'alice@o365info.com' : 'bob@o365info.com';
      const answer = await send(client, {
        authorization: authorization('NTLM', ntlmNegotiate()),
        'x-anchormailbox': anchor,
      });
      assert.equal(answer.status, 401);
    }
    const used = new Set(front.seen.slice(from).map((r) => r.socket));
    assert.equal(used.size, 2, 'one pinned connection to each of the two next hops');
    assert.equal(front.sockets.size - before, 2, 'and no other upstream connection opened');
    await client.destroy();
    await until(
      () => [...used].every((s) => !defined(front.sockets.get(s)).open),
      'both closed with the client',
    );
  });

  test('(d) eight flooding connections at once: eight upstream connections, all closed after', async () => {
    const before = front.sockets.size;
    const from = front.seen.length;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const client = front.client();
        for (let i = 0; i < 20; i++)
          await send(client, { authorization: authorization('NTLM', ntlmNegotiate()) });
        await client.destroy();
      }),
    );
    assert.equal(front.sockets.size - before, 8);
    const used = new Set(front.seen.slice(from).map((r) => r.socket));
    assert.equal(used.size, 8, 'each connection its own');
    await until(
      () => [...used].every((s) => !defined(front.sockets.get(s)).open),
      'every pinned socket closed',
    );
  });
});
