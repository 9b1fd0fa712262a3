/**
 * scripts/preflight.mjs, which `npm test` runs first: on a machine without the Debian programs, one block
 * naming the missing packages and the command that installs them; on one with them, one short line. Run
 * against made-up roots and PATHs, so the answer does not depend on what this machine has installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: plain JavaScript (it runs before npm ci), no declarations
import { missingPackages, nodeMajor, report, requirements, runtimeNote } from '../../scripts/preflight.mjs';

const script = fileURLToPath(new URL('../../scripts/preflight.mjs', import.meta.url));
const packageJson = fileURLToPath(new URL('../../package.json', import.meta.url));
const setup = fileURLToPath(new URL('../../scripts/setup.sh', import.meta.url));

interface Requirement {
  readonly package: string;
  readonly files?: readonly string[];
  readonly programs?: readonly string[];
  readonly python?: string;
  readonly postgres?: readonly string[];
  readonly multiarch?: readonly string[];
}
const all = (requirements as readonly Requirement[]).map((r) => r.package);
const missingIn = missingPackages as (where: { root: string; path: string }) => string[];
const reportOf = report as (missing: readonly string[], who: { asRoot: boolean }) => string;
const noteOf = runtimeNote as (version: string, execPath: string) => string;

async function executable(file: string, body = 'exit 0'): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
}

/** A root and a PATH directory holding everything the requirements look for (as stub programs). */
async function completeMachine(): Promise<{ root: string; bin: string }> {
  const root = await mkdtemp(join(tmpdir(), 'coexist-preflight-root-'));
  const bin = join(root, 'bin-on-path');
  await mkdir(bin);
  for (const r of requirements as readonly Requirement[]) {
    for (const f of r.files ?? []) await executable(join(root, f));
    for (const p of r.programs ?? []) await executable(join(bin, p));
    if (r.python) await executable(join(root, '/usr/bin/python3'));
    for (const b of r.postgres ?? []) await executable(join(root, '/usr/lib/postgresql/15/bin', b));
    for (const f of r.multiarch ?? []) await executable(join(root, '/usr/lib/aarch64-linux-gnu', f));
  }
  return { root, bin };
}

test("the list is the suite's Debian packages", () => {
  assert.deepEqual([...all].sort(), [
    'chromium',
    'curl',
    'dovecot-imapd',
    'haproxy',
    'krb5-user',
    'ldap-utils',
    'libnginx-mod-stream',
    'libnss3-tools',
    'libwbxml2-utils',
    'memcached',
    'nginx',
    'postgresql',
    'python3-exchangelib',
    'redis-server',
    'samba',
    'samba-ad-provision',
    'samba-dsdb-modules',
    'samba-vfs-modules',
    'slapd',
    'sogo',
    'sogo-activesync',
    'squid',
    'systemd',
    'winbind',
  ]);
});

test('on an empty machine every package is missing, and npm test prints one block with the command', async () => {
  const empty = await mkdtemp(join(tmpdir(), 'coexist-preflight-empty-'));
  assert.deepEqual(missingIn({ root: empty, path: empty }), all);
  const r = spawnSync(process.execPath, [script], {
    encoding: 'utf8',
    env: { PATH: empty },
    cwd: empty,
  });
  assert.equal(r.status, 0, r.stderr);
  // The real machine's /usr may hold some of them: only the packages found on PATH are certain to be
  // missing here, and the block must be there with them.
  const lines = r.stdout.trimEnd().split('\n');
  const missingLine = lines.find((l) => l.trim().startsWith('missing: '));
  assert.ok(missingLine, r.stdout);
  for (const p of ['ldap-utils', 'curl', 'libwbxml2-utils']) assert.ok(missingLine.split(' ').includes(p), p);
  assert.match(r.stdout, /^\s+install with: (sudo )?npm run setup$/m);
  assert.ok(lines[0]?.startsWith('preflight: '), r.stdout);
  assert.equal(r.stderr, '');
});

test('the block: what is missing, and the one command (sudo unless root)', () => {
  const text = reportOf(['slapd', 'curl'], { asRoot: false });
  assert.equal(
    text,
    [
      'preflight: 2 Debian packages the tests drive are not installed;',
      '  the tests that need them will fail (none is skipped), each saying what it lacks.',
      '  missing: slapd curl',
      '  install with: sudo npm run setup',
      '',
    ].join('\n'),
  );
  assert.match(reportOf(['curl'], { asRoot: true }), /1 Debian package the tests drive is not installed;/);
  assert.match(reportOf(['curl'], { asRoot: true }), /^ {2}install with: npm run setup$/m);
});

test('a node older than 24 is named first, with what to do; Node 24 and later say nothing', async () => {
  assert.equal(nodeMajor, 24);
  const note = noteOf('v20.20.2', '/usr/bin/node');
  assert.equal(
    note,
    [
      'preflight: this is Node v20.20.2 (/usr/bin/node), not Node 24: coexist and its libraries need Node 24;',
      '  run npm install (its `node` package brings Node 24) and then the npm scripts (npm test), which use it.',
      '',
    ].join('\n'),
  );
  assert.equal(noteOf('v24.11.0', '/x/node'), '');
  assert.equal(noteOf('v26.0.0', '/x/node'), '');
  // package.json asks npm for the same major, and the project brings it.
  const pkg = JSON.parse(await readFile(packageJson, 'utf8')) as {
    engines: { node: string };
    devDependencies: Record<string, string>;
  };
  assert.match(pkg.engines.node, new RegExp(`^>=${nodeMajor}\\.`));
  assert.match(pkg.devDependencies['node'] ?? '', new RegExp(`^\\^${nodeMajor}\\.`));
  // The script itself, run by this node: a note exactly when this node is older.
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { PATH: '' }, cwd: tmpdir() });
  assert.equal(
    r.stdout.startsWith('preflight: this is Node'),
    Number(process.versions.node.split('.')[0]) < 24,
  );
});

test('with everything there, nothing is missing and the report is one line', async () => {
  const { root, bin } = await completeMachine();
  assert.deepEqual(missingIn({ root, path: bin }), []);
  const text = reportOf([], { asRoot: false });
  assert.equal(text.split('\n').filter((l) => l !== '').length, 1);
});

test('each probe on its own: one thing taken away, that one package is missing', async () => {
  const { root, bin } = await completeMachine();
  // exchangelib that does not import
  await executable(join(root, '/usr/bin/python3'), 'exit 1');
  assert.deepEqual(missingIn({ root, path: bin }), ['python3-exchangelib']);
  await executable(join(root, '/usr/bin/python3'));
  // one of the two libwbxml tools
  await chmod(join(bin, 'wbxml2xml'), 0o644);
  assert.deepEqual(missingIn({ root, path: bin }), ['libwbxml2-utils']);
  await chmod(join(bin, 'wbxml2xml'), 0o755);
  // PostgreSQL without pg_isready
  await chmod(join(root, '/usr/lib/postgresql/15/bin/pg_isready'), 0o644);
  assert.deepEqual(missingIn({ root, path: bin }), ['postgresql']);
  await chmod(join(root, '/usr/lib/postgresql/15/bin/pg_isready'), 0o755);
  // a library of a multiarch dir (/usr/lib/<triplet>, here aarch64-linux-gnu)
  await rm(join(root, '/usr/lib/aarch64-linux-gnu/samba/vfs/acl_xattr.so'));
  assert.deepEqual(missingIn({ root, path: bin }), ['samba-vfs-modules']);
});

test("npm test raises the file limit, runs the preflight first, then the test files, and ends with the tests' exit code", async () => {
  const scripts = (JSON.parse(await readFile(packageJson, 'utf8')) as { scripts: Record<string, string> })
    .scripts;
  assert.equal(
    scripts['test'],
    // The soak's 60-second run holds hundreds of Pings across the lab's hops: the soft limit up to the hard one.
    'ulimit -n "$(ulimit -Hn)" 2>/dev/null; ' +
      "node scripts/preflight.mjs; node --import tsx --test --test-reporter=spec $(find src test -name '*.test.ts' | sort)",
  );
  assert.equal(scripts['setup'], 'bash scripts/setup.sh');
});

test('npm run setup installs what the preflight finds missing, and says it needs root', async () => {
  // A PATH with node, dirname and an `id` that answers a user's uid: nothing of the suite's is on it.
  const bin = await mkdtemp(join(tmpdir(), 'coexist-setup-bin-'));
  await symlink(process.execPath, join(bin, 'node'));
  const which = spawnSync('sh', ['-c', 'command -v dirname'], { encoding: 'utf8' });
  await symlink(which.stdout.trim(), join(bin, 'dirname'));
  await executable(join(bin, 'id'), 'echo 1000');
  const r = spawnSync('/bin/bash', [setup], { encoding: 'utf8', env: { PATH: bin } });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    /^setup: installing Debian packages needs root: run sudo npm run setup \(missing: .*\bcurl\b.*\)$/m,
  );
  assert.match(r.stderr, /\bldap-utils\b.*\blibwbxml2-utils\b/);
});
