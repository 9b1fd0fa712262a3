/**
 * `coexist check` (the library) against the o365info lab over real HTTPS: every demo user passes, from
 * outside and from inside, and every step's servers (X-Coexist-Path, and what the servers themselves
 * recorded) are the ones `coexist trace` computes; a stopped CAS2007-NY fails the check at the hop that
 * tried to reach it, and the check passes again once it is back; a wrong password is the 401 step with the
 * credentials fix; a certificate that names another host, and one close to expiry; EAS-legacy's 451, as
 * the estate says and where it does not.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { CheckOptions, CheckReport, CheckStep } from '../../src/check/index.ts';
import { allSteps, passed, runCheck } from '../../src/check/index.ts';
import { loadEstate, parseEstate } from '../../src/config/index.ts';
import type { EstateIndex } from '../../src/core/estate/estate-index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { demoPassword, labAddresses, startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import { LineSink } from '../support/lab-client.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

describe('coexist check against the o365info lab', () => {
  let lab: Lab;
  const sink = new LineSink();

  before(async () => {
    lab = await startLab({
      index: (await loadEstate(estateFile)).index,
      logger: createLogger({ level: 'info', destination: sink }),
      maxPingHoldMs: 300,
    });
  });
  after(async () => {
    await lab.close();
  });

  const check = (
    user: string,
    o: Partial<CheckOptions> & { from?: 'internal' | 'external' } = {},
  ): Promise<CheckReport> =>
    runCheck({
      user,
      password: demoPassword,
      protocols: ['autodiscover', 'activesync', 'ews', 'owa'],
      from: 'external',
      index: lab.index,
      route: (h, p) => {
        const to = lab.resolve(h, p);
        return to && { host: to.address, port: to.port };
      },
      ca: lab.ca.certPem,
      ...(o.from === 'internal' ? { localAddress: labAddresses.internalClient } : {}),
      ...o,
    });

  const describeSteps = (r: CheckReport): string =>
    [...allSteps(r)]
      .map(
        ({ group, step }) =>
          `${group.title}: ${step.verdict} ${step.title} ${step.status ?? ''} ${step.fix ?? ''}`,
      )
      .join('\n');

  /** Every HTTP step says where it went and the estate says the same; the servers' own records agree. */
  async function assertHopsAsTraced(r: CheckReport): Promise<void> {
    let http = 0;
    for (const { group, step } of allSteps(r)) {
      if (step.status === undefined) continue;
      http++;
      const where = `${group.title}: ${step.title}`;
      assert.ok(step.hops, `${where}: hops`);
      assert.ok(step.hops.expected, `${where}: the estate gives the expected hops`);
      assert.deepEqual(step.hops.actual, step.hops.expected, where);
      assert.equal(step.hops.comparison.kind, 'same', where);
      const id = step.diagnostics?.requestId;
      if (step.hops.actual.length > 1 && id) {
        await lab.recorder.waitFor(id, step.hops.actual[0] as string);
        assert.deepEqual(lab.recorder.path(id), step.hops.actual, `${where}: what the servers recorded`);
      }
    }
    assert.ok(http >= 5, `HTTP steps: ${http}`);
  }

  const find = (r: CheckReport, groupTitle: string, title: RegExp): CheckStep => {
    const s = [...allSteps(r)].find((x) => x.group.title === groupTitle && title.test(x.step.title))?.step;
    assert.ok(s, `${groupTitle} ${title}:\n${describeSteps(r)}`);
    return s;
  };

  const flows: readonly [user: string, eas: string | undefined, ews: string | undefined][] = [
    ['bob', 'EAS-1', 'EWS-2'],
    ['carol', 'EAS-2', 'EWS-2'],
    ['diego', 'EAS-3A', 'EWS-2'],
    ['alice', undefined, undefined],
  ];
  for (const [name, eas, ews] of flows) {
    test(`${name}, from outside, every protocol: passes, each step through exactly the traced servers`, async () => {
      const r = await check(`${name}@o365info.com`);
      assert.equal(r.verdict, 'pass', describeSteps(r));
      assert.ok(passed(r.verdict));
      assert.deepEqual(
        r.groups.map((g) => g.title),
        ['Autodiscover', 'ActiveSync', 'EWS', 'OWA'],
      );
      assert.ok(
        [...allSteps(r)].every(({ step }) => step.verdict === 'pass'),
        describeSteps(r),
      );
      assert.equal(r.groups[1]?.flow, eas);
      assert.equal(r.groups[2]?.flow, ews);
      await assertHopsAsTraced(r);
      // The ActiveSync first session and the Ping ran.
      for (const t of [/^OPTIONS$/, /^Provision/, /^FolderSync$/, /^Sync Inbox$/, /^Ping/])
        find(r, 'ActiveSync', t);
      assert.match(find(r, 'ActiveSync', /^Ping/).note ?? '', /^Status/);
    });
  }

  test('the paths of bob from outside: EAS-1 via MBX2013-NY, EWS-2 proxied, OWA redirected to the legacy namespace', async () => {
    const r = await check('bob@o365info.com');
    assert.deepEqual(find(r, 'ActiveSync', /^OPTIONS$/).hops?.actual, [
      'CAS2013-NY',
      'MBX2013-NY',
      'CAS2007-NY',
      'MBX2007-NY',
    ]);
    assert.deepEqual(find(r, 'EWS', /primary namespace/).hops?.actual, [
      'CAS2013-NY',
      'CAS2007-NY',
      'MBX2007-NY',
    ]);
    const redirect = find(r, 'OWA', /^GET \/owa\/$/);
    assert.equal(redirect.status, 302);
    assert.equal(redirect.verdict, 'pass');
    assert.match(redirect.note ?? '', /-> https:\/\/legacy\.mail\.o365info\.com\/owa/);
    assert.deepEqual(find(r, 'OWA', /^GET \/owa\/ at legacy\.mail\.o365info\.com$/).hops?.actual, [
      'CAS2007-NY',
      'MBX2007-NY',
    ]);
    const tls = find(r, 'Autodiscover', /^TLS certificate autodiscover\.o365info\.com/);
    assert.match(tls.title, /CN\/SAN match, issuer coexist lab CA .*expires \d{4}-\d{2}-\d{2}, \d+ days/);
  });

  for (const name of ['bob', 'carol']) {
    test(`${name} from inside (127.0.0.3): EWS-1, Autodiscover's EWS URL reached without the front end`, async () => {
      const r = await check(`${name}@o365info.com`, { from: 'internal' });
      assert.equal(r.verdict, 'pass', describeSteps(r));
      assert.equal(r.from, 'internal');
      assert.equal(r.groups[2]?.flow, 'EWS-1');
      await assertHopsAsTraced(r);
      const direct = find(r, 'EWS', /Autodiscover's URL/);
      assert.ok(
        !direct.hops?.actual.includes('CAS2013-NY'),
        'the front end is not in the path (EWS-1 step 5)',
      );
    });
  }

  test('--from internal without the internal address: the OWA redirect shows the server sees an external client', async () => {
    const r = await check('bob@o365info.com', {
      protocols: ['owa'],
      from: 'internal',
      localAddress: labAddresses.externalClient,
    });
    assert.equal(r.verdict, 'fail');
    const redirect = find(r, 'OWA', /^GET \/owa\/$/);
    assert.equal(redirect.status, 302);
    assert.match(
      redirect.fix ?? '',
      /where the estate sends external clients: the server sees this client as external, not internal \(check --from/,
    );
  });

  test('CAS2007-NY stopped: the check fails at the hop that tried to reach it; back, it passes again', async () => {
    await lab.stopServer('CAS2007-NY');
    let down: CheckReport;
    try {
      down = await check('bob@o365info.com');
    } finally {
      await lab.startServer('CAS2007-NY');
    }
    assert.equal(down.verdict, 'fail');
    assert.ok(!passed(down.verdict));
    assert.equal(
      down.groups[0]?.verdict,
      'pass',
      'Autodiscover for 2007 mailboxes is answered by the front end',
    );
    // EAS-1: MBX2013-NY answers 503 (Retry-After) when CAS2007-NY does not take the connection.
    const options = find(down, 'ActiveSync', /^OPTIONS$/);
    assert.equal(options.verdict, 'fail');
    assert.equal(options.status, 503);
    assert.deepEqual(options.hops?.comparison, { kind: 'stopped', at: 'MBX2013-NY', next: 'CAS2007-NY' });
    assert.match(options.fix ?? '', /^CAS2007-NY did not answer MBX2013-NY \(/);
    assert.match(
      options.fix ?? '',
      /reachable from MBX2013-NY at https:\/\/cas2007-ny\.o365info\.local\/Microsoft-Server-ActiveSync/,
    );
    // EWS-2: the front end itself could not connect.
    const ews = find(down, 'EWS', /primary namespace/);
    assert.equal(ews.status, 502);
    assert.deepEqual(ews.hops?.comparison, { kind: 'stopped', at: 'CAS2013-NY', next: 'CAS2007-NY' });
    assert.match(ews.fix ?? '', /^CAS2007-NY did not answer CAS2013-NY \(connection refused\)/);
    assert.equal(ews.code, 'CX_UPSTREAM_CONNECT_REFUSED');
    // The legacy namespace Autodiscover hands out is CAS2007-NY itself: nothing listens there.
    const legacy = find(down, 'EWS', /^TLS legacy\.mail\.o365info\.com/);
    assert.equal(legacy.verdict, 'fail');
    assert.match(legacy.fix ?? '', /CAS2007-NY in the estate/);

    const up = await check('bob@o365info.com');
    assert.equal(up.verdict, 'pass', describeSteps(up));
    await assertHopsAsTraced(up);
  });

  test('a wrong password: the 401 step with the credentials fix, and no further attempts', async () => {
    const wrong = 'Not-The-Password-7';
    const r = await check('bob@o365info.com', { password: wrong });
    assert.equal(r.verdict, 'fail');
    const pox = find(r, 'Autodiscover', /outlook 2006a/);
    assert.equal(pox.status, 401);
    assert.equal(pox.verdict, 'fail');
    assert.equal(pox.code, 'CX_AUTH_FAILED');
    assert.match(
      pox.fix ?? '',
      /CAS2013-NY refused the credentials of bob@o365info\.com \(HTTP 401\): check the user name and password/,
    );
    // Later credentialed steps are not run (the account would lock out).
    assert.equal(find(r, 'ActiveSync', /^ActiveSync session/).verdict, 'skip');
    assert.equal(find(r, 'EWS', /^GetFolder/).verdict, 'skip');
    assert.ok(!JSON.stringify(r).includes(wrong));
  });

  test('a host whose certificate names another: the TLS step names the host and what the certificate has', async () => {
    const r = await check('alice@o365info.com', {
      protocols: ['owa'],
      // mail.o365info.com sent to CAS2007-NY's listener, which has no certificate for it.
      route: (h, p) => {
        const to = lab.resolve(h === 'mail.o365info.com' ? 'legacy.mail.o365info.com' : h, p);
        return to && { host: to.address, port: to.port };
      },
    });
    assert.equal(r.verdict, 'fail', describeSteps(r));
    const tls = find(r, 'OWA', /^TLS/);
    assert.equal(tls.verdict, 'fail');
    assert.match(tls.fix ?? '', /mail\.o365info\.com/);
  });

  test('a certificate with fewer days left than --cert-warn-days: a warning, and the check still passes', async () => {
    const r = await check('alice@o365info.com', { protocols: ['autodiscover'], certWarnDays: 400 });
    assert.equal(r.verdict, 'warn', describeSteps(r));
    assert.ok(passed(r.verdict));
    const tls = find(r, 'Autodiscover', /^TLS certificate/);
    assert.equal(tls.verdict, 'warn');
    assert.match(tls.fix ?? '', /expires on \d{4}-\d{2}-\d{2}, in \d+ days: renew it/);
  });

  test('no credential reached any server log line', () => {
    const text = sink.lines.join('\n');
    assert.ok(sink.lines.length > 10);
    assert.ok(!text.includes(demoPassword));
    assert.ok(!text.includes(Buffer.from(`bob@o365info.com:${demoPassword}`).toString('base64')));
  });
});

describe('coexist check under activesyncCrossSite=redirect-451 (EAS-legacy)', () => {
  let lab: Lab;
  let legacyIndex: EstateIndex;

  before(async () => {
    const text = (await readFile(estateFile, 'utf8')).replace(
      /activesyncCrossSite: proxy/,
      'activesyncCrossSite: redirect-451',
    );
    legacyIndex = parseEstate(text, estateFile).index;
    lab = await startLab({
      index: legacyIndex,
      logger: createLogger({ level: 'silent' }),
      maxPingHoldMs: 300,
    });
  });
  after(async () => {
    await lab.close();
  });

  const check = async (index: EstateIndex): Promise<CheckReport> =>
    runCheck({
      user: 'diego@o365info.com',
      password: demoPassword,
      protocols: ['activesync'],
      from: 'external',
      index,
      route: (h, p) => {
        const to = lab.resolve(h, p);
        return to && { host: to.address, port: to.port };
      },
      ca: lab.ca.certPem,
    });

  test('the 451 the estate says is followed: a pass, and the session ends at the regional namespace (EAS-3B)', async () => {
    const r = await check(legacyIndex);
    assert.equal(r.verdict, 'pass');
    assert.equal(r.groups[0]?.flow, 'EAS-legacy');
    const steps = r.groups[0]?.steps ?? [];
    const redirect = steps.find((s) => s.status === 451);
    assert.ok(redirect);
    assert.equal(redirect.verdict, 'pass');
    assert.match(
      redirect.note ?? '',
      /X-MS-Location https:\/\/europe\.mail\.o365info\.com\/Microsoft-Server-ActiveSync/,
    );
    const after451 = steps.filter((s) => s.status === 200);
    assert.ok(after451.length >= 5);
    for (const s of after451) assert.deepEqual(s.hops?.actual, ['CAS2007-MAD', 'MBX2007-MAD'], s.title);
  });

  test('a 451 where the estate file says proxy: a warning that the device must follow X-MS-Location', async () => {
    const r = await check((await loadEstate(estateFile)).index);
    assert.equal(r.verdict, 'warn');
    const redirect = r.groups[0]?.steps.find((s) => s.status === 451);
    assert.equal(redirect?.verdict, 'warn');
    assert.match(
      redirect?.fix ?? '',
      /^The server answered HTTP 451: the device must follow X-MS-Location to https:\/\/europe\.mail/,
    );
    assert.equal(redirect?.hops?.comparison.kind, 'different');
  });
});
