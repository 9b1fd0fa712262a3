/**
 * A program run against one DC's winbind socket directory in a mount namespace of its own
 * (src/lab/samba/winbind-socket.ts, docs/lab.md §5.5), with directories of this test in place of DCs: the
 * program finds the directory (and a real unix socket in it) at /run/samba/winbindd, two run at once each
 * with its own, the machine's namespace never has the mount, the spawned pid is the program's own, and a
 * mount that fails stops before the program runs. Needs root (a mount namespace): without it these tests
 * fail, they never skip.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  inWinbindNamespace,
  mountFailedExitCode,
  mountRoots,
  winbindSocketDir,
} from '../../src/lab/samba/winbind-socket.ts';

/** A wrapped program, started: its stdout so far, and its end. */
function start(
  socketDir: string,
  program: string,
  args: readonly string[],
): {
  pid: number;
  stdout: () => string;
  line: () => Promise<string>;
  end: Promise<{ code: number | null; stderr: string }>;
  stdin: NodeJS.WritableStream;
} {
  const command = inWinbindNamespace(socketDir, program, args);
  const child = spawn(command.command, [...command.args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const end = new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr: err }));
  });
  const line = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          child.stdout.off('data', check);
          resolve(out.slice(0, nl));
        }
      };
      child.stdout.on('data', check);
      void end.then(() => reject(new Error(`the program ended before a line: ${out} ${err}`)));
      check();
    });
  return { pid: child.pid as number, stdout: () => out, line, end, stdin: child.stdin };
}

/** This machine's (this process's) mounts on /run/samba/winbindd from `dir`. */
const machineMountsFrom = (dir: string): string[] =>
  mountRoots(winbindSocketDir).filter((root) => root.includes(basename(dir)));

describe('a program in a mount namespace with a DC socket directory at /run/samba/winbindd', () => {
  const dirs: string[] = [];
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'coexist-winbind-ns-'));
    for (const name of ['dc-a', 'dc-b']) {
      const dir = await mkdtemp(join(root, `${name}-`));
      await writeFile(join(dir, 'marker'), `${name}\n`);
      dirs.push(dir);
    }
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('reaches a real unix socket in the directory through the fixed path; the machine has no mount', async () => {
    const dir = dirs[0] as string;
    const server = createServer((req, res) => res.end(`answered ${req.url ?? ''}`));
    await new Promise<void>((resolve) => server.listen(join(dir, 'pipe'), resolve));
    try {
      const curl = start(dir, 'curl', [
        '-sS',
        '--unix-socket',
        `${winbindSocketDir}/pipe`,
        'http://dc/hello',
      ]);
      const { code, stderr } = await curl.end;
      assert.equal(code, 0, stderr);
      assert.equal(curl.stdout(), 'answered /hello');
      assert.deepEqual(machineMountsFrom(dir), []);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('two at once each see their own directory, in their own namespace only; the pid is the program', async () => {
    // Each (one cat) prints its marker, then copies stdin until it closes: both run at the same time.
    const running = dirs.map((dir) => start(dir, 'cat', [`${winbindSocketDir}/marker`, '-']));
    try {
      const lines = await Promise.all(running.map((r) => r.line()));
      assert.deepEqual(lines, ['dc-a', 'dc-b']);
      running.forEach((r, i) => {
        const dir = dirs[i] as string;
        const roots = mountRoots(winbindSocketDir, readFileSync(`/proc/${r.pid}/mountinfo`, 'utf8'));
        assert.ok(roots.at(-1)?.endsWith(basename(dir)), `on top in ${r.pid}: ${roots.join(', ')}`);
        // unshare and the shell exec the program: killing this pid kills it.
        assert.equal(readFileSync(`/proc/${r.pid}/comm`, 'utf8').trim(), 'cat');
        assert.deepEqual(machineMountsFrom(dir), []);
      });
    } finally {
      for (const r of running) r.stdin.end();
    }
    for (const r of running) assert.equal((await r.end).code, 0);
    for (const dir of dirs) assert.deepEqual(machineMountsFrom(dir), []);
  });

  test('a directory that cannot be mounted stops before the program runs, with its own exit code', async () => {
    const missing = join(root, 'no-such-dc');
    const witness = join(root, 'ran');
    const r = start(missing, '/bin/sh', ['-c', `echo ran > ${witness}`]);
    const { code, stderr } = await r.end;
    assert.equal(code, mountFailedExitCode);
    assert.match(stderr, /mount/);
    await assert.rejects(readFile(witness), { code: 'ENOENT' });
    assert.deepEqual(machineMountsFrom(missing), []);
  });
});
