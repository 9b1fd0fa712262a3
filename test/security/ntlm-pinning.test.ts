/**
 * NTLM through the front door, pinned (docs/security.md "Windows authentication"): a client connection that
 * authenticates with NTLM gets an upstream connection of its own, which carries its handshake and every later
 * request of it to that next hop, never another client connection's, and which closes with it. Real sockets:
 * clients are undici Clients (one connection each) and curl; the next hop is the NTLM next-hop simulator of
 * test/support/ntlm-front.ts, which records the socket every request arrived on.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { mailboxGuid } from '../../src/dataplane/autodiscover/exchange.ts';
import type { NtlmFront } from '../support/ntlm-front.ts';
import { frontHost, handshake, send, startNtlmFront, until } from '../support/ntlm-front.ts';
import { authorization, negTokenInit, ntlmNegotiate } from '../support/ntlm.ts';
import { defined } from '../support/ntlm.ts';

const run = promisify(execFile);

describe('NTLM through the front door: pinned upstream connections', () => {
  let front: NtlmFront;
  before(async () => {
    front = await startNtlmFront();
  });
  after(() => front.close());

  test("a handshake's three requests ride one upstream socket, and the 401's challenge passes back unchanged", async () => {
    const client = front.client();
    const from = front.seen.length;
    const { challenge, done } = await handshake(client, { user: 'alice', domain: 'O365INFO' });
    assert.equal(challenge.status, 401);
    const offered = [challenge.headers['www-authenticate']].flat();
    assert.equal(offered.length, 1);
    assert.match(String(offered[0]), /^NTLM TlRMTVNTUAAC/, "the next hop's CHALLENGE, not a Basic challenge");
    assert.equal(done.status, 200, done.body);
    const later = await send(client);
    assert.equal(later.status, 200, 'a bare request after the handshake rides the authenticated socket');
    assert.equal(JSON.parse(later.body).user, 'O365INFO\\alice');
    const mine = front.seen.slice(from);
    assert.deepEqual(
      mine.map((r) => [r.ntlm, r.status]),
      [
        [1, 401],
        [3, 200],
        [0, 200],
      ],
    );
    assert.equal(new Set(mine.map((r) => r.socket)).size, 1, 'one upstream socket for all three');
    assert.equal(defined(mine[0]).host, 'mbx2013-ny.o365info.local');
    await client.close();
  });

  test('the access line says how the request authenticated and what routed it', async () => {
    const client = front.client();
    const wait = front.log.next((l) => l['msg'] === 'access' && l['routedBy'] === 'x-anchormailbox');
    const { done } = await handshake(
      client,
      { user: 'bob', domain: 'O365INFO' },
      { 'x-anchormailbox': 'bob@o365info.com' },
    );
    assert.equal(done.status, 200);
    await wait;
    const line = front.log.lines.findLast((l) => l['msg'] === 'access' && l['user'] === 'O365INFO\\bob');
    assert.ok(line, 'an access line for the AUTHENTICATE');
    assert.equal(line['authMethod'], 'ntlm');
    assert.equal(line['routedBy'], 'x-anchormailbox');
    assert.equal(JSON.parse(done.body).host, 'legacy.mail.o365info.com', "EWS-2: bob's 2007 CAS");
    const metrics = await front.metrics.registry.metrics();
    assert.match(metrics, /coexist_requests_by_auth_method_total\{[^}]*method="ntlm"[^}]*\} [1-9]/);
    await client.close();
  });

  test("MAPI's MailboxId and Outlook Anywhere's RPC target route the NEGOTIATE to the mailbox's next hop", async () => {
    const guid = mailboxGuid('alice@o365info.com');
    for (const [path, by, host] of [
      [`/mapi/emsmdb/?MailboxId=${guid}@o365info.com`, 'mapi-mailboxid', 'mbx2013-ny.o365info.local'],
      [`/rpc/rpcproxy.dll?${guid}@o365info.com:6001`, 'rpc-target', 'mbx2013-ny.o365info.local'],
      // A 2007 mailbox server as the target: bob's chain, not this front end's default next hop.
      ['/rpc/rpcproxy.dll?mbx2007-ny.o365info.local:6001', 'rpc-target', 'cas2007-ny.o365info.local'],
    ] as const) {
      const client = front.client();
      const logged = front.log.next((l) => l['msg'] === 'access' && l['routedBy'] === by);
      const from = front.seen.length;
      const answer = await send(client, { authorization: authorization('NTLM', ntlmNegotiate()) }, path);
      assert.equal(answer.status, 401, path);
      await logged;
      assert.equal(front.seen[from]?.host, host, path);
      await client.close();
    }
  });

  test('Negotiate-wrapped NTLM passes through the same way', async () => {
    const client = front.client();
    const from = front.seen.length;
    const { challenge, done } = await handshake(
      client,
      { user: 'alice', domain: 'O365INFO' },
      {},
      'Negotiate',
    );
    assert.equal(challenge.status, 401);
    assert.equal(done.status, 200);
    const mine = front.seen.slice(from);
    assert.equal(new Set(mine.map((r) => r.socket)).size, 1);
    await client.close();
  });

  test('no anchor: the AUTHENTICATE names a user on the same next hop as the default: 200', async () => {
    const client = front.client();
    const wait = front.log.next((l) => l['msg'] === 'access' && l['routedBy'] === 'default');
    const { done } = await handshake(client, { user: 'svc-crm', domain: 'O365INFO' });
    assert.equal(done.status, 200, done.body);
    await wait;
    await client.close();
  });

  test("no anchor, and the AUTHENTICATE's user lives elsewhere: 401, a logged code, both connections closed", async () => {
    const client = front.client();
    const closed = new Promise<void>((resolve) => client.once('disconnect', () => resolve()));
    const logged = front.log.next((l) => l['code'] === 'CX_AUTH_WINDOWS_REROUTED' && l['msg'] !== 'access');
    const from = front.seen.length;
    const { challenge, done } = await handshake(client, { user: 'bob', domain: 'O365INFO' });
    assert.equal(challenge.status, 401);
    assert.equal(done.status, 401);
    assert.deepEqual([done.headers['www-authenticate']].flat(), [
      'Negotiate',
      'NTLM',
      'Basic realm="mail.o365info.com"',
    ]);
    await logged;
    await closed;
    const mine = front.seen.slice(from);
    assert.deepEqual(
      mine.map((r) => r.ntlm),
      [1],
      'the AUTHENTICATE never reached any next hop',
    );
    await until(() => !defined(front.sockets.get(defined(mine[0]).socket)).open, 'the pinned socket closed');
  });

  test('the client hangs up: its upstream socket closes', async () => {
    const client = front.client();
    const from = front.seen.length;
    await handshake(client, { user: 'alice', domain: 'O365INFO' });
    const socket = defined(front.seen[from]).socket;
    assert.equal(defined(front.sockets.get(socket)).open, true);
    await client.destroy();
    await until(
      () => !defined(front.sockets.get(socket)).open,
      'the upstream socket closed after the client',
    );
  });

  test('a client that starts NTLM and hangs up mid-handshake leaves no upstream connection open', async () => {
    const client = front.client();
    const from = front.seen.length;
    const challenge = await send(client, { authorization: authorization('NTLM', ntlmNegotiate()) });
    assert.equal(challenge.status, 401);
    const socket = defined(front.seen[from]).socket;
    await client.destroy();
    await until(() => !defined(front.sockets.get(socket)).open, 'the upstream socket closed mid-handshake');
  });

  test('the next hop closes the pinned socket: the client connection is closed too', async () => {
    const client = front.client();
    const from = front.seen.length;
    const closed = new Promise<void>((resolve) => client.once('disconnect', () => resolve()));
    await handshake(client, { user: 'alice', domain: 'O365INFO' });
    const socket = defined(front.seen[from]).socket;
    defined(front.sockets.get(socket)).socket.destroy();
    await closed;
  });

  test('curl --ntlm through the front door: 200 from the next hop as the user curl was given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'coexist-ntlm-'));
    try {
      const caFile = join(dir, 'ca.pem');
      await writeFile(caFile, front.ca);
      const from = front.seen.length;
      const { stdout } = await run('curl', [
        '--silent',
        '--show-error',
        '--ntlm',
        '--user',
        'O365INFO\\bob:Passw0rd!',
        '--cacert',
        caFile,
        '--resolve',
        `${frontHost}:${front.port}:127.0.0.1`,
        '--header',
        'X-AnchorMailbox: bob@o365info.com',
        `https://${frontHost}:${front.port}/EWS/Exchange.asmx`,
      ]);
      const answer = JSON.parse(stdout) as { user: string; host: string };
      assert.deepEqual([answer.user, answer.host], ['O365INFO\\bob', 'legacy.mail.o365info.com']);
      const mine = front.seen.slice(from);
      assert.equal(new Set(mine.map((r) => r.socket)).size, 1);
      assert.deepEqual(
        mine.map((r) => r.ntlm),
        [1, 3],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("coexist's own 401: the challenges the server offers for the protocol", () => {
  let front: NtlmFront;
  before(async () => {
    front = await startNtlmFront({
      authentication: { ews: ['negotiate', 'ntlm', 'basic'], autodiscover: ['ntlm'] },
    });
  });
  after(() => front.close());

  test('EWS offers Negotiate, NTLM and Basic, each in its own field, in that order', async () => {
    const client = front.client();
    const answer = await send(client);
    assert.equal(answer.status, 401);
    assert.deepEqual([answer.headers['www-authenticate']].flat(), [
      'Negotiate',
      'NTLM',
      'Basic realm="mail.o365info.com"',
    ]);
    await client.close();
  });

  test('NTLM to a directory that does not offer it: its own 401, nothing passed on', async () => {
    const client = front.client();
    const from = front.seen.length;
    const eas = await send(
      client,
      { authorization: authorization('NTLM', ntlmNegotiate()) },
      '/Microsoft-Server-ActiveSync?Cmd=Sync&User=bob&DeviceId=abc&DeviceType=iPhone',
    );
    assert.equal(eas.status, 401);
    assert.deepEqual([eas.headers['www-authenticate']].flat(), ['Basic realm="mail.o365info.com"']);
    const autodiscover = await send(
      client,
      { authorization: authorization('Negotiate', negTokenInit(ntlmNegotiate())) },
      '/autodiscover/autodiscover.json/v1.0/bob@o365info.com?Protocol=EWS',
    );
    assert.equal(autodiscover.status, 401, 'Autodiscover offers NTLM, not Negotiate');
    assert.deepEqual([autodiscover.headers['www-authenticate']].flat(), ['NTLM']);
    assert.equal(front.seen.length, from);
    await client.close();
  });

  test('Autodiscover offers NTLM alone; ActiveSync, not configured, Basic alone', async () => {
    const client = front.client();
    const autodiscover = await send(
      client,
      {},
      '/autodiscover/autodiscover.json/v1.0/bob@o365info.com?Protocol=EWS',
    );
    assert.equal(autodiscover.status, 401);
    assert.deepEqual([autodiscover.headers['www-authenticate']].flat(), ['NTLM']);
    const eas = await send(
      client,
      {},
      '/Microsoft-Server-ActiveSync?Cmd=Sync&User=bob&DeviceId=abc&DeviceType=iPhone',
    );
    assert.equal(eas.status, 401);
    assert.deepEqual([eas.headers['www-authenticate']].flat(), ['Basic realm="mail.o365info.com"']);
    await client.close();
  });
});

describe('an estate that says nothing about authentication: Basic only, as before', () => {
  let front: NtlmFront;
  before(async () => {
    front = await startNtlmFront({ authentication: null });
  });
  after(() => front.close());

  test('NTLM is refused with the Basic challenge, and reaches no next hop', async () => {
    const client = front.client();
    const answer = await send(client, { authorization: authorization('NTLM', ntlmNegotiate()) });
    assert.equal(answer.status, 401);
    assert.deepEqual([answer.headers['www-authenticate']].flat(), ['Basic realm="mail.o365info.com"']);
    assert.equal(front.seen.length, 0);
    await client.close();
  });
});
