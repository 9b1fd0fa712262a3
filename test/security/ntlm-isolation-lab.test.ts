/**
 * Attack, at the scale of the issue, against the real lab on Active Directory (docs/auth.md, docs/security.md
 * "Windows authentication"): two users' NTLM sessions interleaved on many client connections at once through the
 * same front end (CAS2013-NY), both users' mailboxes behind the same next hop (MBX2013-NY), where a proxy that
 * pooled NTLM-authenticated upstream connections would hand one user's connection to the other. Each connection does
 * a real NTLMv2 handshake (src/check/ntlm.ts) verified by Samba at MBX2013-NY, then sends bare requests (NTLM
 * authenticates the connection). Every answer is checked for its own user's mailbox (the folder id the store
 * answers names the mailbox); every hop record of MBX2013-NY says which upstream connection of the front end
 * carried the request, and no upstream connection ever carries a second user or a second client connection. And a
 * client that starts NTLM and hangs up mid-handshake leaves no upstream connection open (seen with `ss`).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { buildConnector, Client } from 'undici';
import {
  authenticateMessage,
  challengeToken,
  negotiateMessage,
  parseChallenge,
} from '../../src/check/ntlm.ts';
import { demoPassword, labAddresses } from '../../src/lab/index.ts';
import { labForTests } from '../support/logged-lab.ts';
import { until } from '../support/raw-tls.ts';

const host = 'mail.o365info.com';
const getFolder =
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/></soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>IdOnly</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder>' +
  '</soap:Body></soap:Envelope>';

/** Connections per user, and bare requests per connection after its handshake. */
const connectionsPerUser = 16;
const requestsPerConnection = 64;

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** The mailbox the store's answer is about: the one its inbox's folder id names (`ews:<server>:<mailbox>:inbox`). */
function mailboxOfAnswer(body: string): string | undefined {
  const id = /<t:FolderId Id="([^"]+)"/.exec(body)?.[1];
  if (id === undefined) return undefined;
  const parts = Buffer.from(id, 'base64').toString('utf8').split(':');
  return parts.length === 4 ? parts[2] : undefined;
}

describe('attack, at scale on the real lab: NTLM-authenticated upstream connections shared between users', () => {
  const demo = labForTests({ directory: 'ad' });

  /** One client connection to the front door (an undici Client is exactly one connection). */
  const connection = (): Client => {
    const to = demo.lab.resolve(host, 443);
    assert.ok(to);
    const connect = buildConnector({
      ca: demo.lab.ca.certPem,
      servername: host,
      localAddress: labAddresses.externalClient,
    });
    return new Client(`https://${host}`, {
      connect: (opts, cb) => connect({ ...opts, hostname: to.address, port: String(to.port) }, cb),
      pipelining: 1,
    });
  };

  const send = async (client: Client, headers: Record<string, string>): Promise<Answer> => {
    const r = await client.request({
      path: '/EWS/Exchange.asmx',
      method: 'POST',
      headers: { host, 'content-type': 'text/xml; charset=utf-8', ...headers },
      body: getFolder,
    });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  };

  const idOf = (a: Answer): string => {
    const id = a.headers['request-id'];
    assert.ok(typeof id === 'string', 'the answer carries a request id');
    return id;
  };

  test(`two users, ${2 * connectionsPerUser} connections at once, ${requestsPerConnection} requests each after the handshake: zero crossings`, async () => {
    const users = [
      { login: 'O365INFO\\alice', address: 'alice@o365info.com' },
      { login: 'O365INFO\\svc-crm', address: 'svc-crm@o365info.com' },
    ];
    /** Request id -> the user and client connection (its index) that sent it. */
    const sent = new Map<string, { user: string; connection: number }>();
    let crossings = 0;
    const runs = Array.from({ length: 2 * connectionsPerUser }, async (_, i) => {
      const user = users[i % 2];
      assert.ok(user);
      const anchor = { 'x-anchormailbox': user.address };
      const client = connection();
      try {
        const first = await send(client, {
          ...anchor,
          authorization: `NTLM ${negotiateMessage().toString('base64')}`,
        });
        assert.equal(first.status, 401);
        const challenge = parseChallenge(
          challengeToken(String(first.headers['www-authenticate']), 'NTLM') ?? Buffer.alloc(0),
        );
        assert.ok(challenge, 'the next hop challenged');
        const token = authenticateMessage(challenge, user.login, demoPassword);
        const answers = [
          await send(client, { ...anchor, authorization: `NTLM ${token.toString('base64')}` }),
        ];
        for (let r = 0; r < requestsPerConnection; r++) answers.push(await send(client, anchor));
        for (const a of answers) {
          assert.equal(a.status, 200, a.body.slice(0, 300));
          if (mailboxOfAnswer(a.body) !== user.address) crossings++;
          sent.set(idOf(a), { user: user.address, connection: i });
        }
      } finally {
        await client.close();
      }
    });
    await Promise.all(runs);
    assert.equal(crossings, 0, 'an answer from another mailbox than its connection’s own user’s');
    assert.equal(sent.size, 2 * connectionsPerUser * (requestsPerConnection + 1));

    // Every request's record at the next hop: who it was served as, and which upstream connection carried it.
    const byUpstream = new Map<string, { users: Set<string>; clients: Set<number> }>();
    const upstreamsOfClient = new Map<number, Set<string>>();
    for (const [id, from] of sent) {
      await demo.lab.recorder.waitFor(id, 'MBX2013-NY');
      const hop = demo.lab.recorder.records(id).find((h) => h.server === 'MBX2013-NY');
      assert.equal(hop?.user, from.user, `request ${id} served as ${String(hop?.user)}`);
      const upstream = hop?.connection;
      assert.ok(upstream, 'the record names the connection');
      const seen = byUpstream.get(upstream) ?? { users: new Set(), clients: new Set() };
      seen.users.add(from.user);
      seen.clients.add(from.connection);
      byUpstream.set(upstream, seen);
      upstreamsOfClient.set(
        from.connection,
        (upstreamsOfClient.get(from.connection) ?? new Set()).add(upstream),
      );
    }
    for (const [upstream, seen] of byUpstream) {
      assert.equal(
        seen.users.size,
        1,
        `upstream connection ${upstream} carried ${[...seen.users].join(', ')}`,
      );
      assert.equal(
        seen.clients.size,
        1,
        `upstream connection ${upstream} carried several client connections`,
      );
    }
    // Pinned: each client connection rode one upstream connection, its own.
    for (const [client, upstreams] of upstreamsOfClient)
      assert.equal(
        upstreams.size,
        1,
        `client connection ${client} rode ${upstreams.size} upstream connections`,
      );
    assert.equal(byUpstream.size, 2 * connectionsPerUser);
    // And the front end logged the method for each.
    const front = demo.sink
      .records()
      .filter((l) => l['msg'] === 'access' && l['server'] === 'CAS2013-NY' && sent.has(String(l['reqId'])));
    assert.ok(front.length > 0 && front.every((l) => l['authMethod'] === 'ntlm'));
  });

  test('a client that starts NTLM and hangs up mid-handshake leaves no upstream connection open', async () => {
    const client = connection();
    const challenge = await send(client, {
      'x-anchormailbox': 'alice@o365info.com',
      authorization: `NTLM ${negotiateMessage().toString('base64')}`,
    });
    assert.equal(challenge.status, 401);
    const id = idOf(challenge);
    await demo.lab.recorder.waitFor(id, 'MBX2013-NY');
    // The upstream connection the CHALLENGE came back on: its source port at the front end, seen by MBX2013-NY.
    const upstream = demo.lab.recorder.records(id).find((h) => h.server === 'MBX2013-NY')?.connection;
    assert.ok(upstream);
    const [address, port] = upstream.split('|');
    assert.ok(address && port);
    const established = async (): Promise<boolean> => {
      const { stdout } = await promisify(execFile)('ss', [
        '-tnH',
        'state',
        'established',
        `( sport = :${port} )`,
      ]);
      return stdout.includes(`:${port}`);
    };
    assert.equal(await established(), true, 'the pinned upstream connection is open during the handshake');
    // The client goes away without its AUTHENTICATE.
    await client.destroy();
    let open = true;
    await until(
      () => !open,
      'the upstream connection closed',
      10_000,
      async () => {
        open = await established();
      },
    );
  });
});
