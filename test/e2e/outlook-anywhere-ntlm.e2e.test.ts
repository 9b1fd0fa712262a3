/**
 * Outlook Anywhere with NTLM through two coexist hops on the lab's Active Directory (docs/auth.md): the channel's
 * connection is authenticated by the handshake's legs, each a request of the RPC method itself (MS-RPCH), so every
 * listener on the way (the front end's, then the 2007 CAS's on its pinned upstream connection) takes an RPC method
 * on later requests of a kept-alive connection, not only on the first. Real `curl --ntlm -X RPC_IN_DATA` and
 * `RPC_OUT_DATA`, real Samba AD verifying at the 2007 CAS, the hops recorded. Without Samba it fails, never skips.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import { demoPassword } from '../../src/lab/index.ts';
import { curlUserConfig } from '../support/curl.ts';
import { curlAt } from '../support/kerberos-lab.ts';
import { labForTests } from '../support/logged-lab.ts';
import { until as waitUntil } from '../support/ntlm-front.ts';

interface Answer {
  /** The status of every answer curl received, in order. */
  readonly statuses: number[];
  /** The `request-id` of each answer, in order. */
  readonly requestIds: string[];
}

/** `curl --ntlm -X <method>` at the lab's front door, the credentials on stdin; an empty channel request. */
async function curlRpc(
  lab: Lab,
  method: string,
  target: string,
  user: string,
  password: string,
): Promise<Answer> {
  const r = await curlAt(
    lab,
    `https://mail.o365info.com/rpc/rpcproxy.dll?${target}:6001`,
    ['--ntlm', '-K', '-', '-X', method, '-o', '/dev/null', '-H', 'Content-Length: 0'],
    process.env,
    curlUserConfig(user, password),
  );
  return {
    statuses: r.heads.flatMap((h) => [...h.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]))),
    requestIds: r.requestIds,
  };
}

describe('Outlook Anywhere with NTLM through two coexist hops', () => {
  const demo = labForTests({ directory: 'ad' });

  const lineAt = (id: string, server: string): Record<string, unknown> | undefined =>
    demo.sink.records().find((r) => r['msg'] === 'access' && r['reqId'] === id && r['server'] === server);
  /** `find()`, once it finds something (an access line is written when its answer ends). */
  const until = async (find: () => Record<string, unknown> | undefined): Promise<Record<string, unknown>> => {
    await waitUntil(() => find() !== undefined, 'the access line');
    return find() ?? {};
  };

  const chains = [
    { user: 'bob', target: 'mbx2007-ny.o365info.local', cas: 'CAS2007-NY', mailbox: 'MBX2007-NY' },
    { user: 'carol', target: 'mbx2007-la.o365info.local', cas: 'CAS2007-LA', mailbox: 'MBX2007-LA' },
  ];
  for (const c of chains)
    for (const method of ['RPC_IN_DATA', 'RPC_OUT_DATA'])
      test(`${c.user}: ${method} with NTLM, the handshake on one connection per hop, 200 at ${c.mailbox}`, async () => {
        const r = await curlRpc(demo.lab, method, c.target, `O365INFO\\${c.user}`, demoPassword);
        // NEGOTIATE -> 401 with the CHALLENGE; AUTHENTICATE (a second RPC request on the connection) -> 200.
        assert.deepEqual(r.statuses, [401, 200]);
        const [challenge, done] = r.requestIds;
        assert.ok(challenge && done);
        // Every server reports when its part is done: the front end last, after the answer streamed back.
        for (const server of ['CAS2013-NY', c.cas, c.mailbox]) await demo.lab.recorder.waitFor(done, server);
        const path = demo.lab.recorder.path(done);
        assert.equal(path[0], 'CAS2013-NY');
        assert.deepEqual(path.slice(-2), [c.cas, c.mailbox], path.join(' -> '));
        const records = demo.lab.recorder.records(done);
        assert.equal(records.find((h) => h.server === c.mailbox)?.user, `${c.user}@o365info.com`);
        const front = records.find((h) => h.server === 'CAS2013-NY');
        assert.equal(front?.routedBy, 'rpc-target');
        assert.equal(front?.authMethod, 'ntlm');
        assert.equal((await until(() => lineAt(done, 'CAS2013-NY')))['method'], method);
        // The CHALLENGE came from the 2007 CAS that then verified the AUTHENTICATE: its verifier keeps the handshake
        // per client connection, so both legs arrived there on one (pinned) connection.
        const challenged = await until(() => lineAt(challenge, c.cas));
        assert.equal(challenged['status'], 401);
        assert.equal(challenged['method'], method);
        assert.equal(challenged['authMethod'], 'ntlm');
        assert.equal((await until(() => lineAt(done, c.cas)))['auth'], 'ok');
      });

  test('a wrong password: the channel is refused at the 2007 CAS, nothing reaches the mailbox', async () => {
    const r = await curlRpc(demo.lab, 'RPC_IN_DATA', 'mbx2007-ny.o365info.local', 'O365INFO\\bob', 'not-his');
    assert.deepEqual(r.statuses, [401, 401]);
    const last = r.requestIds.at(-1);
    assert.ok(last);
    const refused = await until(() => lineAt(last, 'CAS2007-NY'));
    assert.equal(refused['code'], 'CX_AUTH_FAILED');
    assert.equal(refused['method'], 'RPC_IN_DATA');
    assert.ok(!demo.sink.records().some((l) => l['reqId'] === last && l['server'] === 'MBX2007-NY'));
  });
});
