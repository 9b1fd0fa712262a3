/**
 * NTLM end to end through the lab on Active Directory (docs/security.md "Windows authentication"): `curl --ntlm`
 * at the front door, CAS2013-NY passing the handshake through on a pinned connection, CAS2007-NY terminating it
 * with the lab's verifier (Samba's `ntlm_auth` on the domain controller, docs/lab.md §5.5) and handing the
 * verified caller to MBX2007-NY, which answers from bob's mailbox (docs/flows.md EWS-2). Real curl, real Samba,
 * real TLS; Samba must be installed and the tests run as root (npm run setup): without them they fail, never
 * skip.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import { demoPassword } from '../../src/lab/index.ts';
import { curlUserConfig } from '../support/curl.ts';
import type { CurlAnswer } from '../support/kerberos-lab.ts';
import { curlAt } from '../support/kerberos-lab.ts';
import type { LineSink } from '../support/lab-client.ts';
import { labForTests } from '../support/logged-lab.ts';
import { until } from '../support/ntlm-front.ts';

const getFolder =
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2007_SP1"/></soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder>' +
  '</soap:Body></soap:Envelope>';

/** The access line of `server` for the request `reqId`, once written (an observable condition). */
async function accessLineOf(sink: LineSink, reqId: string, server: string): Promise<Record<string, unknown>> {
  const find = (): Record<string, unknown> | undefined =>
    sink.records().find((l) => l['msg'] === 'access' && l['reqId'] === reqId && l['server'] === server);
  await until(() => find() !== undefined, `the access line of ${server} for ${reqId}`);
  return find() ?? {};
}

/** `curl --ntlm` at the lab's front door; the credentials on stdin, so no password is on a command line. */
const curlNtlmAt = (lab: Lab, user: string, password: string, headers: string[]): Promise<CurlAnswer> =>
  curlAt(
    lab,
    'https://mail.o365info.com/EWS/Exchange.asmx',
    [
      '--ntlm',
      '-K',
      '-',
      '-H',
      'Content-Type: text/xml; charset=utf-8',
      ...headers.flatMap((h) => ['-H', h]),
      '--data-binary',
      getFolder,
    ],
    process.env,
    curlUserConfig(user, password),
  );

describe('NTLM through the lab on Active Directory', () => {
  const demo = labForTests({ directory: 'ad' });

  const accessLine = (reqId: string, server: string): Promise<Record<string, unknown>> =>
    accessLineOf(demo.sink, reqId, server);
  const curlNtlm = (user: string, password: string, headers: string[]): Promise<CurlAnswer> =>
    curlNtlmAt(demo.lab, user, password, headers);

  test('EWS-2: bob with X-AnchorMailbox, 200 from his mailbox: CAS2013-NY -> CAS2007-NY -> MBX2007-NY', async () => {
    const r = await curlNtlm('O365INFO\\bob', demoPassword, ['X-AnchorMailbox: bob@o365info.com']);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /NoError/);
    const last = r.requestIds.at(-1);
    assert.ok(last, 'the answer carries a request id');
    await demo.lab.recorder.waitFor(last, 'CAS2013-NY');
    await demo.lab.recorder.waitFor(last, 'MBX2007-NY');
    assert.deepEqual(demo.lab.recorder.path(last), ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
    const mailboxHop = demo.lab.recorder.records(last).find((h) => h.server === 'MBX2007-NY');
    assert.equal(mailboxHop?.user, 'bob@o365info.com');
    const front = demo.lab.recorder.records(last).find((h) => h.server === 'CAS2013-NY');
    assert.equal(front?.routedBy, 'x-anchormailbox');
    assert.equal(front?.authMethod, 'ntlm');
    // The handshake's two legs took one connection at each hop: the CHALLENGE came from CAS2007-NY.
    const first = r.requestIds[0];
    assert.ok(first && first !== last);
    const challenge = await accessLine(first, 'CAS2007-NY');
    assert.equal(challenge['status'], 401);
    assert.equal(challenge['authMethod'], 'ntlm');
    assert.equal((await accessLine(first, 'CAS2013-NY'))['outcome'], 'proxied');
  });

  test('alice, no anchor: the default next hop MBX2013-NY holds her mailbox and terminates: 200', async () => {
    const r = await curlNtlm('alice@o365info.local', demoPassword, []);
    assert.equal(r.status, 200, r.body);
    const last = r.requestIds.at(-1);
    assert.ok(last);
    await demo.lab.recorder.waitFor(last, 'MBX2013-NY');
    assert.deepEqual(demo.lab.recorder.path(last), ['CAS2013-NY', 'MBX2013-NY']);
    assert.equal(
      demo.lab.recorder.records(last).find((h) => h.server === 'MBX2013-NY')?.user,
      'alice@o365info.com',
    );
  });

  test('bob, no anchor: his AUTHENTICATE routes elsewhere than the NEGOTIATE went: 401, the code logged', async () => {
    const r = await curlNtlm('O365INFO\\bob', demoPassword, []);
    assert.equal(r.status, 401);
    const last = r.requestIds.at(-1);
    assert.ok(last);
    const line = await accessLine(last, 'CAS2013-NY');
    assert.equal(line['code'], 'CX_AUTH_WINDOWS_REROUTED');
    assert.equal(line['routedBy'], 'ntlm-user');
  });

  test('a wrong password: 401 from CAS2007-NY, nothing reaches the mailbox', async () => {
    const r = await curlNtlm('O365INFO\\bob', 'not-his-password', ['X-AnchorMailbox: bob@o365info.com']);
    assert.equal(r.status, 401);
    const last = r.requestIds.at(-1);
    assert.ok(last);
    const refused = await accessLine(last, 'CAS2007-NY');
    assert.equal(refused['status'], 401);
    assert.equal(refused['auth'], 'bad_credentials');
    assert.equal(refused['code'], 'CX_AUTH_FAILED');
    assert.ok(
      !demo.sink.records().some((l) => l['reqId'] === last && l['server'] === 'MBX2007-NY'),
      'nothing reached the mailbox server',
    );
  });
});

describe('NTLM and the extranet smart lockout', () => {
  const demo = labForTests({
    directory: 'ad',
    lockout: { unfamiliarThreshold: 3, sleep: () => Promise.resolve() },
  });

  test('failed Windows logons count as wrong passwords: after three, the right one is refused too', async () => {
    const anchor = ['X-AnchorMailbox: bob@o365info.com'];
    for (let i = 0; i < 3; i++) {
      const wrong = await curlNtlmAt(demo.lab, 'O365INFO\\bob', `wrong-${i}`, anchor);
      assert.equal(wrong.status, 401);
    }
    const right = await curlNtlmAt(demo.lab, 'O365INFO\\bob', demoPassword, anchor);
    assert.equal(right.status, 401, 'locked: the same answer as a wrong password');
    const last = right.requestIds.at(-1);
    assert.ok(last);
    const line = await accessLineOf(demo.sink, last, 'CAS2007-NY');
    assert.equal(line['auth'], 'locked');
  });
});
