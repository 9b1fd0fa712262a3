/**
 * `coexist check` as a process against a lab the test starts, reached as `coexist lab` prints it (--ca and
 * curl-like --connect-to): the tree and exit 0, --json for scripts, an internal client, a wrong password
 * (exit 1, the fix, the password nowhere); bad usage in-process (exit 2).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { CheckReport } from '../../src/check/index.ts';
import { loadEstate } from '../../src/config/index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { demoPassword, labAddresses, startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { CliResult } from '../support/run-cli.ts';
import { runCli, runCliProcess } from '../support/run-cli.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

describe('coexist check (the CLI, as a process)', () => {
  let lab: Lab;

  before(async () => {
    lab = await startLab({
      index: (await loadEstate(estateFile)).index,
      logger: createLogger({ level: 'silent' }),
      maxPingHoldMs: 300,
    });
  });
  after(async () => {
    await lab.close();
  });

  const cli = (args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> =>
    runCliProcess('check', lab, args, { env: { COEXIST_PASSWORD: '', ...env } });

  test('bob, every protocol: the step tree, the hops against the estate, exit 0, no password', async () => {
    const r = await cli(['--user', 'bob@o365info.com', '--protocol', 'all'], {
      COEXIST_PASSWORD: demoPassword,
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^coexist check bob@o365info\.com {2}\(from external, 4 protocols\)$/m);
    for (const g of ['✔ Autodiscover', '✔ ActiveSync \\(EAS-1\\)', '✔ EWS \\(EWS-2\\)', '✔ OWA'])
      assert.match(r.stdout, new RegExp(`^${g}$`, 'm'));
    assert.match(
      r.stdout,
      /^ {2}✔ DNS autodiscover\.o365info\.com -> 127\.0\.0\.1:\d+ \(connect-to\) +\d+ ms$/m,
    );
    assert.match(r.stdout, /^ {2}✔ TLS certificate mail\.o365info\.com \(CN\/SAN match, /m);
    assert.match(
      r.stdout,
      /^ {2}✔ OPTIONS 200 versions 2\.0\.\.12\.1.* via CAS2013-NY -> MBX2013-NY -> CAS2007-NY -> MBX2007-NY {3}expected: same ✔/m,
    );
    assert.match(r.stdout, /^ {5}EWS external: https:\/\/legacy\.mail\.o365info\.com\/EWS\/Exchange\.asmx$/m);
    assert.match(
      r.stdout,
      /^ {2}✔ GET \/owa\/ 302 -> https:\/\/legacy\.mail\.o365info\.com\/owa\?reason=20 /m,
    );
    assert.match(r.stdout, /^PASS: 4 protocols, \d+ steps in \d+ ms$/m);
    assert.ok(!r.stdout.includes('✘'));
    assert.equal(r.stderr, '', 'no progress display when stderr is not a terminal');
    assert.ok(!(r.stdout + r.stderr).includes(demoPassword));
  });

  test('--json: the whole tree parses, with every step and its hops', async () => {
    const r = await cli([
      '--user',
      'diego@o365info.com',
      '--protocol',
      'activesync,ews',
      '--password',
      demoPassword,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as CheckReport;
    assert.equal(report.verdict, 'pass');
    assert.equal(report.user, 'diego@o365info.com');
    assert.deepEqual(report.protocols, ['activesync', 'ews']);
    assert.deepEqual(
      report.groups.map((g) => [g.title, g.flow]),
      [
        ['ActiveSync', 'EAS-3A'],
        ['EWS', 'EWS-2'],
      ],
    );
    const options = report.groups[0]?.steps.find((s) => s.title === 'OPTIONS');
    assert.deepEqual(options?.hops?.actual, ['CAS2013-NY', 'CAS2007-MAD', 'MBX2007-MAD']);
    assert.deepEqual(options?.hops?.expected, ['CAS2013-NY', 'CAS2007-MAD', 'MBX2007-MAD']);
    for (const g of report.groups)
      for (const s of g.steps) {
        assert.equal(s.verdict, 'pass', s.title);
        if (s.status !== undefined) assert.equal(s.hops?.comparison.kind, 'same', s.title);
      }
    assert.ok(!r.stdout.includes(demoPassword));
  });

  test('--from internal from 127.0.0.3: carol reaches CAS2007-LA directly (EWS-1)', async () => {
    const r = await cli(
      [
        'carol@o365info.com',
        '--protocol',
        'ews',
        '--from',
        'internal',
        '--local-address',
        labAddresses.internalClient,
      ],
      { COEXIST_PASSWORD: demoPassword },
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^coexist check carol@o365info\.com {2}\(from internal, 1 protocol\)$/m);
    assert.match(r.stdout, /^✔ EWS \(EWS-1\)$/m);
    assert.match(
      r.stdout,
      /GetFolder inbox at cas2007-la\.o365info\.local \(Autodiscover's URL\) 200 .* via CAS2007-LA -> MBX2007-LA {3}expected: same ✔/,
    );
  });

  test('a wrong password: exit 1, the 401 step with its fix, and the password in neither stream', async () => {
    const wrong = 'Wrong-Password-42';
    const r = await cli(['--user', 'bob@o365info.com', '--password', wrong]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^✘ Autodiscover$/m);
    assert.match(r.stdout, /✘ POST \/Autodiscover\/Autodiscover\.xml \(outlook 2006a\) 401 /);
    assert.match(
      r.stdout,
      /^ {5}fix: CAS2013-NY refused the credentials of bob@o365info\.com \(HTTP 401\): check the user name and password/m,
    );
    assert.match(r.stdout, /^FAIL: 1 step failed \(Autodiscover\)/m);
    assert.match(
      r.stderr,
      /^coexist: check failed for bob@o365info\.com: Autodiscover: POST \/Autodiscover\/Autodiscover\.xml \(outlook 2006a\) \(HTTP 401\) \[CX_AUTH_FAILED\]$/m,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    for (const secret of [wrong, demoPassword, Buffer.from(`bob@o365info.com:${wrong}`).toString('base64')])
      assert.ok(!(r.stdout + r.stderr).includes(secret));
  });

  test('bad usage exits 2 with one line: no user, no password, an unknown protocol or user', async () => {
    const saved = process.env['COEXIST_PASSWORD'];
    delete process.env['COEXIST_PASSWORD'];
    try {
      for (const [args, message] of [
        [[], /--user is required/],
        [['--user', 'bob@o365info.com'], /give the password with --password or the COEXIST_PASSWORD/],
        [
          ['--user', 'bob@o365info.com', '--password', 'x1234', '--protocol', 'imap'],
          /unknown protocol "imap"/,
        ],
        [['--user', 'bob@o365info.com', '--password', 'x1234', '--timeout-ms', 'soon'], /--timeout-ms takes/],
        [
          ['--user', 'nobody@o365info.com', '--password', 'x1234'],
          /unknown user "nobody@o365info\.com".*\[CX_CLI_UNKNOWN_USER\]/,
        ],
      ] as const) {
        const r = await runCli(['check', ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.equal(r.stdout, '');
        assert.ok(!r.stderr.includes('x1234'));
      }
    } finally {
      if (saved !== undefined) process.env['COEXIST_PASSWORD'] = saved;
    }
  });
});
