/**
 * Kerberos at the edge (docs/security.md "Windows authentication", Kerberos): the attacks it must refuse, in the
 * lab on Active Directory with real tickets (Samba's KDC, MIT Kerberos's initiator) and the front ends' keytab.
 * A connection authenticated with a ticket is that user's and no one else's: another client connection, bare or
 * claiming the user in `X-Coexist-Caller`, gets 401; a client's own `X-Coexist-Caller` on its authenticated
 * connection never changes whose mailbox answers; two users interleaved on their own connections never cross.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import { demoPassword, labAddresses } from '../../src/lab/index.ts';
import type { KerberosLogon } from '../support/kerberos-lab.ts';
import { kerberosLogon, negotiateToken } from '../support/kerberos-lab.ts';
import { labForTests } from '../support/logged-lab.ts';

const getFolder =
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder>' +
  '</soap:Body></soap:Envelope>';

interface Answer {
  readonly status: number;
  readonly requestId: string;
  /** The local port of the client connection the answer came on. */
  readonly port: number;
}

/** One client connection to the lab's front door (an agent holding one keep-alive socket). */
function connection(lab: Lab): {
  send: (headers: Record<string, string>) => Promise<Answer>;
  close: () => void;
} {
  const to = lab.resolve('mail.o365info.com', 443);
  assert.ok(to);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return {
    send: async (headers) => {
      const ca = await readFile(lab.caPath, 'utf8');
      return new Promise((resolve, reject) => {
        const req = request(
          {
            host: to.address,
            port: to.port,
            servername: 'mail.o365info.com',
            localAddress: labAddresses.externalClient,
            ca,
            agent,
            method: 'POST',
            path: '/EWS/Exchange.asmx',
            headers: {
              host: 'mail.o365info.com',
              'content-type': 'text/xml; charset=utf-8',
              'content-length': String(Buffer.byteLength(getFolder)),
              ...headers,
            },
          },
          (res) => {
            // Read now: the socket goes back to the agent when the answer ends.
            const port = res.socket.localPort ?? 0;
            res.resume();
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                requestId: String(res.headers['request-id'] ?? ''),
                port,
              }),
            );
          },
        );
        req.on('error', reject);
        req.end(getFolder);
      });
    },
    close: () => agent.destroy(),
  };
}

describe('Kerberos at the edge: one connection, one user', () => {
  const demo = labForTests({ directory: 'ad' });
  let alice: KerberosLogon;
  let archive: KerberosLogon;

  before(async () => {
    alice = await kerberosLogon(demo.lab, 'alice@O365INFO.LOCAL', demoPassword);
    archive = await kerberosLogon(demo.lab, 'svc-archive@O365INFO.LOCAL', demoPassword);
  });
  after(async () => {
    await alice?.close();
    await archive?.close();
  });

  /** The user MBX2013-NY answered request `reqId` for. */
  const answeredFor = async (reqId: string): Promise<string | undefined> => {
    await demo.lab.recorder.waitFor(reqId, 'MBX2013-NY');
    return demo.lab.recorder.records(reqId).find((h) => h.server === 'MBX2013-NY')?.user;
  };

  test("alice's ticket authenticates her connection only: another connection, bare or naming her, gets 401", async () => {
    const a = connection(demo.lab);
    const b = connection(demo.lab);
    try {
      const first = await a.send({
        authorization: `Negotiate ${await negotiateToken(alice, 'mail.o365info.com')}`,
      });
      assert.equal(first.status, 200);
      assert.equal(await answeredFor(first.requestId), 'alice@o365info.com');
      // Her connection stays hers: a bare request on it is answered from her mailbox.
      const bare = await a.send({});
      assert.equal(bare.status, 200);
      assert.equal(bare.port, first.port, 'the same client connection');
      assert.equal(await answeredFor(bare.requestId), 'alice@o365info.com');
      // Another client connection: bare, then claiming to be her in the header a front end hands over.
      const other = await b.send({});
      assert.equal(other.status, 401);
      assert.notEqual(other.port, first.port);
      const claimed = await b.send({ 'x-coexist-caller': 'alice@o365info.com' });
      assert.equal(claimed.status, 401);
      for (const r of [other, claimed]) {
        assert.ok(!demo.lab.recorder.path(r.requestId).includes('MBX2013-NY'), 'nothing reached the mailbox');
      }
    } finally {
      a.close();
      b.close();
    }
  });

  test("a client's X-Coexist-Caller on its own Kerberos connection is ignored: its own mailbox answers", async () => {
    const a = connection(demo.lab);
    try {
      const token = await negotiateToken(archive, 'mail.o365info.com');
      const r = await a.send({
        authorization: `Negotiate ${token}`,
        'x-coexist-caller': 'alice@o365info.com',
      });
      assert.equal(r.status, 200);
      // svc-archive@O365INFO.LOCAL is O365INFO\svc-archive (its UPN is its address): found, and answered as such.
      assert.equal(await answeredFor(r.requestId), 'svc-archive@o365info.com');
      const bare = await a.send({ 'x-coexist-caller': 'alice@o365info.com' });
      assert.equal(bare.status, 200);
      assert.equal(await answeredFor(bare.requestId), 'svc-archive@o365info.com');
    } finally {
      a.close();
    }
  });

  test("two users on eight connections each, interleaved: every answer is the connection owner's", async () => {
    const users = [
      { logon: alice, address: 'alice@o365info.com' },
      { logon: archive, address: 'svc-archive@o365info.com' },
    ];
    const conns = await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const user = users[i % 2] as (typeof users)[number];
        const c = connection(demo.lab);
        const first = await c.send({
          authorization: `Negotiate ${await negotiateToken(user.logon, 'mail.o365info.com')}`,
        });
        assert.equal(first.status, 200);
        return { c, user, port: first.port, ids: [first.requestId] };
      }),
    );
    try {
      for (let round = 0; round < 10; round++) {
        const answers = await Promise.all(conns.map((x) => x.c.send({})));
        answers.forEach((a, i) => {
          const x = conns[i] as (typeof conns)[number];
          assert.equal(a.status, 200);
          assert.equal(a.port, x.port, 'each request rode its own connection');
          x.ids.push(a.requestId);
        });
      }
      let crossings = 0;
      for (const x of conns)
        for (const id of x.ids) if ((await answeredFor(id)) !== x.user.address) crossings++;
      assert.equal(crossings, 0);
    } finally {
      for (const x of conns) x.c.close();
    }
  });
});
