/**
 * Refused Kerberos tickets and the extranet smart lockout (docs/security.md "Windows authentication",
 * Kerberos): a ticket the front ends' acceptor opened names its client, so a refusal of it counts like a wrong
 * password, and a locked account's valid ticket is refused; a ticket the acceptor cannot open (another service
 * principal) names no one and is not counted. `kinit` against the lab's Samba KDC, `curl --negotiate`, squid's
 * acceptor with the ASA's keytab; Samba, krb5-user and squid must be installed and the tests run as root (npm run
 * setup): without them they fail, never skip.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryLockoutStore } from '../../src/dataplane/lockout.ts';
import { demoPassword } from '../../src/lab/index.ts';
import { curlUserConfig } from '../support/curl.ts';
import type { CurlAnswer, KerberosLogon } from '../support/kerberos-lab.ts';
import { curlAt, ews, kerberosLogon, negotiateToken, soap } from '../support/kerberos-lab.ts';
import { labForTests } from '../support/logged-lab.ts';
import { until } from '../support/ntlm-front.ts';

describe('refused Kerberos tickets in the extranet smart lockout', () => {
  const demo = labForTests({
    directory: 'ad',
    lockout: {
      unfamiliarThreshold: 3,
      familiarThreshold: 3,
      sourceThreshold: 1000,
      // One store for every server, as Redis is for several (docs/operations.md): NTLM is counted where it
      // terminates (MBX2013-NY), Kerberos at the front end.
      store: new MemoryLockoutStore({ maxKeys: 1000, now: Date.now }),
      sleep: () => Promise.resolve(),
    },
  });
  let alice: KerberosLogon;
  let admin: KerberosLogon;

  before(async () => {
    alice = await kerberosLogon(demo.lab, 'alice@O365INFO.LOCAL', demoPassword);
    const administrator = demo.lab.samba?.administrator;
    assert.ok(administrator, 'the lab runs its DC');
    // The domain's Administrator: a real principal of the KDC with no mailbox in the directory.
    admin = await kerberosLogon(demo.lab, 'Administrator@O365INFO.LOCAL', administrator.password);
  });
  after(async () => {
    await alice?.close();
    await admin?.close();
  });

  const frontLine = async (r: CurlAnswer): Promise<Record<string, unknown>> => {
    const id = r.requestIds.at(-1);
    assert.ok(id, 'the answer carries a request id');
    const find = (): Record<string, unknown> | undefined =>
      demo.sink
        .records()
        .find((l) => l['msg'] === 'access' && l['reqId'] === id && l['server'] === 'CAS2013-NY');
    await until(() => find() !== undefined, `the access line of CAS2013-NY for ${id}`);
    return find() ?? {};
  };
  const negotiate = (logon: KerberosLogon): Promise<CurlAnswer> =>
    curlAt(demo.lab, ews, ['--negotiate', '-u', ':', ...soap], logon.env);

  test('tickets for another service principal name no one: four refused, then her own ticket is let in', async () => {
    for (let i = 0; i < 4; i++) {
      const token = await negotiateToken(alice, demo.lab.samba?.dcName ?? 'dc1.o365info.local');
      const r = await curlAt(demo.lab, ews, ['-H', `Authorization: Negotiate ${token}`, ...soap]);
      assert.equal(r.status, 401);
      const line = await frontLine(r);
      assert.equal(line['auth'], 'bad_credentials');
      assert.equal(line['user'], undefined, 'the refusal names no principal');
    }
    const r = await negotiate(alice);
    assert.equal(r.status, 200, r.body);
    assert.equal((await frontLine(r))['auth'], 'ok');
  });

  test('a principal the directory does not know counts as a wrong password: the fourth ticket is locked', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await negotiate(admin);
      assert.equal(r.status, 401);
      const line = await frontLine(r);
      assert.equal(line['auth'], 'bad_credentials');
      assert.equal(line['code'], 'CX_AUTH_FAILED');
      assert.match(String(line['user']), /^administrator@o365info\.local$/i);
    }
    const r = await negotiate(admin);
    assert.equal(r.status, 401, 'locked: the same answer as a refused ticket');
    assert.equal((await frontLine(r))['auth'], 'locked');
  });

  test("after three failed NTLM logons, alice's valid Kerberos ticket is refused too: one counter per account", async () => {
    for (let i = 0; i < 3; i++) {
      const wrong = await curlAt(
        demo.lab,
        ews,
        ['--ntlm', '-K', '-', ...soap],
        process.env,
        curlUserConfig('O365INFO\\alice', `wrong-${i}`),
      );
      assert.equal(wrong.status, 401);
    }
    const r = await negotiate(alice);
    assert.equal(r.status, 401, 'locked: the same answer as a refused ticket');
    const line = await frontLine(r);
    assert.equal(line['auth'], 'locked');
    assert.equal(line['user'], 'alice@o365info.com');
    assert.ok(
      !demo.lab.recorder.path(r.requestIds.at(-1) ?? '').includes('MBX2013-NY'),
      'nothing reached her mailbox',
    );
  });
});
