/**
 * Attack: claiming to be a caller a server verified. A hop that terminates Windows authentication and passes the
 * request to its store names the verified caller in `X-Coexist-Caller` (docs/security.md "Windows
 * authentication"). Believed from anyone else, the header would sign anyone in as anyone: it must be believed
 * only from a peer that proved with a client certificate from the estate's internal CA that it is a server of
 * the estate, and never be passed on by a hop. Real sockets: the front end of test/support/ntlm-front.ts, its
 * next hop the NTLM simulator, which records what reached it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import type { NtlmFront } from '../support/ntlm-front.ts';
import { send, startNtlmFront } from '../support/ntlm-front.ts';
import { authorization, basic, ntlmNegotiate } from '../support/ntlm.ts';

describe('attack: X-Coexist-Caller from a client', () => {
  let front: NtlmFront;
  before(async () => {
    front = await startNtlmFront();
  });
  after(() => front.close());

  const lastAccess = (): Record<string, unknown> | undefined =>
    front.log.lines.findLast((l) => l['msg'] === 'access');

  test("a client naming a caller, without credentials: coexist's own 401, no next hop reached", async () => {
    const client = front.client();
    const from = front.seen.length;
    const answer = await send(client, { 'x-coexist-caller': 'alice@o365info.com' });
    assert.equal(answer.status, 401);
    assert.equal(front.seen.length, from, 'nothing reached a next hop');
    assert.notEqual(lastAccess()?.['user'], 'alice@o365info.com');
    await client.close();
  });

  test('with NTLM or Basic credentials of its own, the header is neither believed nor passed on', async () => {
    const client = front.client();
    const from = front.seen.length;
    const ntlm = await send(client, {
      authorization: authorization('NTLM', ntlmNegotiate()),
      'x-coexist-caller': 'alice@o365info.com',
      'x-anchormailbox': 'bob@o365info.com',
    });
    assert.equal(ntlm.status, 401, "the next hop's CHALLENGE");
    const wrong = await send(front.client(), {
      authorization: basic('bob@o365info.com', 'not-the-password'),
      'x-coexist-caller': 'alice@o365info.com',
    });
    assert.equal(wrong.status, 401, 'a wrong Basic password stays wrong');
    for (const r of front.seen.slice(from)) assert.equal(r.caller, undefined, 'X-Coexist-Caller passed on');
    await client.close();
  });

  test('a client certificate of another CA proves nothing', async () => {
    const other = createLabCa();
    for (const certificate of [
      other.issue(['cas2007-ny.o365info.local'], { serverAuth: false, clientAuth: true }),
    ]) {
      const client = front.client({ certificate });
      const from = front.seen.length;
      const answer = await send(client, { 'x-coexist-caller': 'alice@o365info.com' }).catch(
        (err: unknown) => ({ status: 0, err }),
      );
      // Refused at the TLS handshake, or an anonymous client: never alice.
      assert.ok(answer.status === 0 || answer.status === 401, String(answer.status));
      assert.equal(front.seen.length, from);
      await client.destroy();
    }
  });

  test("a proven server, on a front end's listener: not believed (only a mailbox server's store hop is)", async () => {
    const client = front.client({ certificate: front.serverCertificate('cas2007-ny.o365info.local') });
    const from = front.seen.length;
    const answer = await send(client, { 'x-coexist-caller': 'alice@o365info.com' });
    assert.equal(answer.status, 401);
    assert.equal(front.seen.length, from, 'nothing reached a next hop');
    await client.close();
  });
});

describe('X-Coexist-Caller at a mailbox server, from a proven server of the estate', () => {
  let mbx: NtlmFront;
  before(async () => {
    mbx = await startNtlmFront({ server: 'MBX2013-NY' });
  });
  after(() => mbx.close());

  test('believed: the request goes on as the caller, without the header or any Authorization', async () => {
    const client = mbx.client({ certificate: mbx.serverCertificate('cas2013-ny.o365info.local') });
    const from = mbx.seen.length;
    await send(client, { 'x-coexist-caller': 'bob@o365info.com' });
    // bob's mailbox is on Exchange 2007: MBX2013-NY proxies EWS to the 2007 CAS, the simulator.
    assert.equal(mbx.seen.length, from + 1);
    assert.equal(mbx.seen[from]?.caller, undefined, 'not passed on further');
    assert.equal(mbx.seen[from]?.authorization, undefined);
    const line = mbx.log.lines.findLast((l) => l['msg'] === 'access' && l['peerServer'] === 'CAS2013-NY');
    assert.equal(line?.['user'], 'bob@o365info.com');
    assert.equal(line?.['authMethod'], 'ntlm');
    assert.equal(line?.['outcome'], 'proxied');
    await client.close();
  });

  test('from a client at the same listener: ignored', async () => {
    const client = mbx.client();
    const from = mbx.seen.length;
    const answer = await send(client, { 'x-coexist-caller': 'bob@o365info.com' });
    assert.equal(answer.status, 401);
    assert.equal(mbx.seen.length, from);
    await client.close();
  });
});
