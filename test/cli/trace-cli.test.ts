/** `coexist trace` as a user meets it: defaults, formats, and one-line errors with exit code 2. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { runCli } from '../support/run-cli.ts';
import { assertGolden } from '../support/golden.ts';

describe('coexist trace', () => {
  test('uses the embedded demo estate by default: carol over ActiveSync is the nine steps of EAS-2', async () => {
    const r = await runCli(['trace', '--user', 'carol@o365info.com', '--protocol', 'activesync']);
    assert.equal(r.code, 0);
    const numbered = r.stdout.split('\n').filter((l) => /^\s+\d+\. /.test(l));
    assert.equal(numbered.length, 9);
    for (const name of ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-LA', 'MBX2007-LA'])
      assert.match(r.stdout, new RegExp(name));
    assert.match(r.stdout, /internal ActiveSync URL of CAS2007-LA/);
    assert.match(r.stdout, /url: https:\/\/cas2007-la\.o365info\.local\/Microsoft-Server-ActiveSync/);
  });

  test('accepts aliases and logins for the user, and protocol aliases', async () => {
    const a = await runCli(['trace', '--user', 'O365INFO\\carol', '--protocol', 'eas']);
    const b = await runCli(['trace', '--user', 'carol.white@o365info.com', '--protocol', 'activesync']);
    assert.equal(a.code, 0);
    assert.equal(a.stdout, b.stdout);
  });

  test('--format mermaid draws the flow as a sequence diagram', async () => {
    const r = await runCli([
      'trace',
      '--user',
      'carol@o365info.com',
      '--protocol',
      'owa',
      '--format',
      'mermaid',
    ]);
    assert.equal(r.code, 0);
    assertGolden('cli/owa-carol.mmd', r.stdout);
  });

  test('--all prints every flow of every user', async () => {
    const r = await runCli(['trace', '--all', '--format', 'json']);
    assert.equal(r.code, 0);
    const flows = JSON.parse(r.stdout) as { user: string; protocol: string }[];
    // 6 users (4 people, 2 service accounts) x (7 protocols x 2 client locations + ActiveSync external only)
    assert.equal(flows.length, 6 * 15);
    assert.deepEqual(
      new Set(flows.map((f) => f.user)),
      new Set([
        'alice@o365info.com',
        'bob@o365info.com',
        'carol@o365info.com',
        'diego@o365info.com',
        'svc-archive@o365info.com',
        'svc-crm@o365info.com',
      ]),
    );
  });

  test('--all --format summary: one row per flow with outcome and path, legs apart', async () => {
    const r = await runCli(['trace', '--all', '--format', 'summary']);
    assert.equal(r.code, 0);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2 + 90);
    assert.match(lines[0] ?? '', /^user +protocol +client +steps +outcome +path$/);
    const carolEas = lines.find((l) => l.startsWith('carol@o365info.com') && l.includes('ActiveSync'));
    assert.match(
      carolEas ?? '',
      /answered by MBX2007-LA +CAS2013-NY > MBX2013-NY > CAS2007-LA > MBX2007-LA$/,
    );
    const bobOwa = lines.find(
      (l) => l.startsWith('bob@o365info.com') && l.includes('OWA') && l.includes('external'),
    );
    assert.match(bobOwa ?? '', /CAS2013-NY \| CAS2007-NY > MBX2007-NY$/);
  });

  const oneLineErrors: [string, string[], RegExp][] = [
    [
      'unknown user',
      ['--user', 'mallory@o365info.com', '--protocol', 'owa'],
      /unknown user "mallory@o365info.com".*\[CX_CLI_UNKNOWN_USER\]/,
    ],
    [
      'unknown protocol',
      ['--user', 'bob@o365info.com', '--protocol', 'pop4'],
      /unknown protocol "pop4": use one of .*\[CX_CLI_USAGE\]/,
    ],
    [
      'unknown namespace',
      ['--user', 'bob@o365info.com', '--protocol', 'owa', '--namespace', 'mail.example.org'],
      /unknown namespace "mail.example.org".*\[CX_CLI_UNKNOWN_NAMESPACE\]/,
    ],
    [
      'bad policy value',
      ['--user', 'bob@o365info.com', '--protocol', 'owa', '--policy', 'activesyncCrossSite=maybe'],
      /--policy activesyncCrossSite: .*\[CX_CLI_USAGE\]/,
    ],
    ['missing --protocol', ['--user', 'bob@o365info.com'], /--protocol is required.*\[CX_CLI_USAGE\]/],
  ];
  for (const [name, args, message] of oneLineErrors) {
    test(`${name}: one clear line on stderr, exit code 2`, async () => {
      const r = await runCli(['trace', ...args]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, message);
    });
  }

  test('a broken estate file: every problem with its path, no stack trace, exit code 2 (real process)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coexist-'));
    const file = join(dir, 'broken.yaml');
    writeFileSync(
      file,
      [
        'name: broken',
        'organization: Broken',
        'domains: [broken.example]',
        'namespaces: []',
        'sites:',
        '  - name: One',
        '    internetFacing: maybe',
        '    servers:',
        '      - name: CAS1',
        '        fqdn: cas1.broken.local',
        '        version: 2012',
        '        roles: [cas]',
        'users:',
        '  - address: not-an-address',
        '    mailbox: { server: CAS1 }',
        '',
      ].join('\n'),
    );
    const run = promisify(execFile);
    const r = await run(process.execPath, [
      '--import',
      'tsx',
      'src/cli/entry.ts',
      'trace',
      '--all',
      '--estate',
      file,
    ]).then(
      () => assert.fail('expected a non-zero exit'),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    for (const path of ['sites[0].internetFacing', 'sites[0].servers[0].version', 'users[0].address']) {
      assert.match(r.stderr, new RegExp(`broken\\.yaml:\\d+:\\d+ +${path.replace(/[[\].]/g, '\\$&')} `));
    }
  });
});
