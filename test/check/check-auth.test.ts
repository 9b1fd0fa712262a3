/**
 * `coexist check --auth ntlm|negotiate` against the lab on Active Directory (docs/auth.md): the check's Autodiscover
 * and EWS probes do the NTLM handshake (src/check/ntlm.ts, MS-NLMP's NTLMv2) on a connection of their own, Samba's
 * verifier at the hop that terminates says yes, and every step passes with the hops the estate says; the report
 * and its text name the method; the front end's access lines say ntlm or negotiate; a wrong password is the 401
 * step, with nothing reaching the mailbox. Real HTTPS, real Samba AD; without Samba it fails, never skips.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CheckOptions, CheckReport } from '../../src/check/index.ts';
import { allSteps, passed, renderReport, runCheck } from '../../src/check/index.ts';
import { demoPassword } from '../../src/lab/index.ts';
import { labForTests } from '../support/logged-lab.ts';
import { until } from '../support/raw-tls.ts';
import { runCliProcess } from '../support/run-cli.ts';

describe('coexist check --auth against the lab on Active Directory', () => {
  const demo = labForTests({ directory: 'ad' });

  const check = (user: string, o: Partial<CheckOptions>): Promise<CheckReport> =>
    runCheck({
      user,
      password: demoPassword,
      protocols: ['autodiscover', 'ews'],
      from: 'external',
      index: demo.lab.index,
      route: (h, p) => {
        const to = demo.lab.resolve(h, p);
        return to && { host: to.address, port: to.port };
      },
      ca: demo.lab.ca.certPem,
      ...o,
    });

  const show = (r: CheckReport): string => renderReport(r);

  /** The front end's access lines of the report's answered steps. */
  const frontLines = (r: CheckReport): Record<string, unknown>[] => {
    const ids = new Set(
      [...allSteps(r)].map(({ step }) => step.diagnostics?.requestId).filter((id) => id !== undefined),
    );
    assert.ok(ids.size > 0, 'the steps carry request ids');
    return demo.sink
      .records()
      .filter((l) => l['msg'] === 'access' && l['server'] === 'CAS2013-NY' && ids.has(String(l['reqId'])));
  };

  for (const [auth, user, login] of [
    ['ntlm', 'bob@o365info.com', 'O365INFO\\bob'],
    ['ntlm', 'alice@o365info.com', 'alice@o365info.local'],
    ['negotiate', 'carol@o365info.com', 'O365INFO\\carol'],
  ] as const)
    test(`--auth ${auth}: ${user} (${login}) passes Autodiscover and EWS, the hops as the estate says`, async () => {
      const r = await check(user, { auth, login });
      assert.ok(passed(r.verdict), show(r));
      assert.equal(r.auth, auth);
      assert.match(
        show(r),
        new RegExp(`^coexist check ${user} {2}\\(from external, 2 protocols, auth ${auth}\\)$`, 'm'),
      );
      for (const { step } of allSteps(r))
        if (step.hops) assert.notEqual(step.hops.comparison.kind, 'different', show(r));
      const lines = frontLines(r);
      const credentialed = lines.filter((l) => l['authMethod'] !== 'none');
      assert.ok(credentialed.length > 0);
      for (const l of credentialed) assert.equal(l['authMethod'], auth, JSON.stringify(l));
      assert.ok(!lines.some((l) => l['authMethod'] === 'basic'), 'no Basic sent');
    });

  test('the CLI: `coexist check --auth ntlm` names the method, exit 0, the password nowhere', async () => {
    const r = await runCliProcess(
      'check',
      demo.lab,
      [
        '--user',
        'bob@o365info.com',
        '--login',
        'O365INFO\\bob',
        '--protocol',
        'autodiscover,ews',
        '--auth',
        'ntlm',
      ],
      { env: { COEXIST_PASSWORD: demoPassword } },
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^coexist check bob@o365info\.com {2}\(from external, 2 protocols, auth ntlm\)$/m);
    assert.ok(!(r.stdout + r.stderr).includes(demoPassword));
    const bad = await runCliProcess('check', demo.lab, ['--user', 'bob@o365info.com', '--auth', 'kerberos'], {
      env: { COEXIST_PASSWORD: demoPassword },
    });
    assert.equal(bad.code, 2, 'an unknown method is a usage error');
  });

  test('--auth ntlm with a wrong password: the 401 step fails with the credentials fix', async () => {
    const r = await check('bob@o365info.com', { auth: 'ntlm', login: 'O365INFO\\bob', password: 'not-his' });
    assert.equal(r.verdict, 'fail');
    const failed = [...allSteps(r)].find(({ step }) => step.verdict === 'fail');
    assert.equal(failed?.step.status, 401, show(r));
    assert.ok(failed?.step.fix, 'a fix is given');
    // Refused by the domain's verifier after the handshake, at the hop that terminates it.
    const id = failed?.step.diagnostics?.requestId;
    assert.ok(id);
    const find = (): Record<string, unknown> | undefined =>
      demo.sink
        .records()
        .find((l) => l['msg'] === 'access' && l['reqId'] === id && l['code'] === 'CX_AUTH_FAILED');
    await until(() => find() !== undefined, 'the refusal logged');
    const refused = find();
    assert.equal(refused?.['auth'], 'bad_credentials', show(r));
  });
});
