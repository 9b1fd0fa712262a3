/**
 * `coexist lab` as a newcomer runs it: a separate process that prints how to try each flow, and the curl
 * lines it prints work, run as printed by bash and curl.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';

const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
const run = promisify(execFile);

describe('coexist lab', () => {
  let child: ChildProcessWithoutNullStreams;
  let out = '';
  let exit: Promise<number | null>;

  before(async () => {
    const caDir = await mkdtemp(join(tmpdir(), 'coexist-lab-cli-'));
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        entry,
        'lab',
        '--port-base',
        '0',
        '--admin',
        '0',
        '--ca-dir',
        caDir,
        '--log-level',
        'warn',
      ],
      { stdio: 'pipe' },
    );
    exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const end = Date.now() + 30_000;
    while (!out.includes('/metrics')) {
      if (Date.now() > end) throw new Error(`the lab did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  test('prints every server, what it runs as, the CA and the demo credentials', () => {
    for (const name of ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY', 'CAS2007-LA', 'MBX2007-MAD'])
      assert.match(out, new RegExp(`^  ${name} `, 'm'));
    assert.match(out, /CAS2013-NY +coexist /);
    assert.match(out, /CAS2007-LA +simulator: Exchange 2007 CAS /);
    assert.match(out, /CA certificate: .*ca\.pem/);
    assert.match(out, /password Coexist-Lab-2026!/);
  });

  const expected: readonly [string, string][] = [
    ['EAS-1', 'CAS2013-NY, MBX2013-NY, CAS2007-NY, MBX2007-NY'],
    ['EAS-2', 'CAS2013-NY, MBX2013-NY, CAS2007-LA, MBX2007-LA'],
    ['EAS-3A', 'CAS2013-NY, CAS2007-MAD, MBX2007-MAD'],
    ['EWS-2', 'CAS2013-NY, CAS2007-NY, MBX2007-NY'],
    ['alice', 'CAS2013-NY, MBX2013-NY'],
    ['EWS-1', 'CAS2013-NY'],
  ];
  for (const [flow, path] of expected) {
    test(`the printed curl line for ${flow} works and comes back through ${path}`, async () => {
      const lab = /^ {2}LAB=.*$/m.exec(out)?.[0].trim();
      const line = out.split('\n').find((l) => l.trimStart().startsWith('curl ') && l.includes(`# ${flow}`));
      assert.ok(lab && line, `a LAB= line and a curl line for ${flow}`);
      const { stdout } = await run('bash', ['-c', `${lab}\n${line.trim()}`], { timeout: 20_000 });
      assert.match(stdout, /^HTTP\/1\.1 200 /);
      assert.match(stdout, new RegExp(`^x-coexist-path: ${path}\\r?$`, 'mi'));
    });
  }

  for (const [command, expect] of [
    ['check', /^PASS: 4 protocols/m],
    ['activesync', /^Inbox \[1\]: 2 items/m],
  ] as const) {
    test(`the printed coexist ${command} line works against the lab`, async () => {
      const cx = /^ {2}CX=.*$/m.exec(out)?.[0].trim();
      const line = out.split('\n').find((l) => l.trimStart().startsWith(`npx coexist ${command} `));
      assert.ok(cx && line, `a CX= line and a coexist ${command} line`);
      // As printed, with this checkout's entry point for `npx coexist`.
      const script = `${cx}\n${line.trim().replace('npx coexist', `'${process.execPath}' --import tsx '${entry}'`)}`;
      const { stdout } = await run('bash', ['-c', script], { timeout: 30_000 });
      assert.match(stdout, expect);
    });
  }

  test('the front end metrics are served; Ctrl-C (SIGINT) stops the lab', async () => {
    const url = /Metrics of CAS2013-NY: (http:\S+)/.exec(out)?.[1];
    assert.ok(url);
    const r = await request(url);
    assert.match(await r.body.text(), /coexist_requests_total\{[^}]*server="CAS2013-NY"/);
    child.kill('SIGINT');
    assert.equal(await exit, 0);
    assert.match(out, /coexist lab: stopping/);
  });
});
