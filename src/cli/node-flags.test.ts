/**
 * The Node flags a coexist server runs with: written once in bin/coexist.js's first line, repeated by
 * `npm start`, and really given to V8 when the file is run as a program (through `env -S`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { coexistNodeFlags, nodeFlagsOf } from './node-flags.ts';

const root = new URL('../../', import.meta.url);

test('the flags of a shebang line', () => {
  assert.deepEqual(nodeFlagsOf('#!/usr/bin/env node'), []);
  assert.deepEqual(nodeFlagsOf('#!/usr/bin/env -S node --max-semi-space-size=16'), [
    '--max-semi-space-size=16',
  ]);
  assert.deepEqual(nodeFlagsOf('#!/usr/bin/env -S node --a=1 --b'), ['--a=1', '--b']);
  assert.throws(() => nodeFlagsOf('#!/bin/sh'), /not a node shebang line/);
});

test("bin/coexist.js runs with V8's young generation as Node 20 had it, and npm start and npm run soak the same", async () => {
  const flags = coexistNodeFlags();
  assert.deepEqual(flags, ['--max-semi-space-size=16']);
  const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.equal(pkg.scripts['start'], `node ${flags.join(' ')} bin/coexist.js lab`);
  // The soak runs the whole lab in its own process: its memory readings are a real server's only with them.
  assert.ok(
    pkg.scripts['soak']?.includes(`exec node ${flags.join(' ')} --import tsx bench/soak.ts`),
    pkg.scripts['soak'],
  );
});

test('run as a program, the first line of bin/coexist.js gives node its flags', async () => {
  // The same first line on a script that reports what node got: the kernel and env(1) run it, as they run
  // `coexist` from PATH or `npx coexist`, with this node first on PATH.
  const first = (await readFile(new URL('bin/coexist.js', root), 'utf8')).split('\n', 1)[0] ?? '';
  const dir = await mkdtemp(join(tmpdir(), 'coexist-shebang-'));
  const probe = join(dir, 'probe.mjs');
  await writeFile(probe, `${first}\nconsole.log(JSON.stringify({ execArgv: process.execArgv }));\n`);
  await chmod(probe, 0o755);
  const r = spawnSync(probe, [], {
    encoding: 'utf8',
    env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin` },
  });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { execArgv: string[] };
  assert.deepEqual(got.execArgv, coexistNodeFlags());
});
