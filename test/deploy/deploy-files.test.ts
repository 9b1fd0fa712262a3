/**
 * The files under deploy/ are what an admin installs (docs/deploy.md): each is checked by the program that
 * will read it (HAProxy's and nginx's own configuration checks, systemd-analyze), and every `coexist serve`
 * option the systemd unit passes must exist. The balancer configurations are also run for real in
 * test/deploy/two-front-ends.e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import { runCli } from '../support/run-cli.ts';

const run = promisify(execFile);
const deploy = fileURLToPath(new URL('../../deploy/', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));

describe('deploy/', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-deploy-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('haproxy.cfg passes haproxy -c (with its CA file in place)', async () => {
    const ca = join(dir, 'coexist-ca.pem');
    await writeFile(ca, createLabCa().certPem);
    const text = (await readFile(join(deploy, 'haproxy.cfg'), 'utf8'))
      .replaceAll('/etc/haproxy/coexist-ca.pem', ca)
      // No syslog socket in a test sandbox: log to a UDP address instead (nothing is sent by a check).
      .replaceAll('/dev/log', '127.0.0.1:514');
    const cfg = join(dir, 'haproxy.cfg');
    await writeFile(cfg, text);
    const { stdout, stderr } = await run('haproxy', ['-c', '-f', cfg]);
    assert.match(stdout + stderr, /Configuration file is valid/);
    assert.doesNotMatch(stdout + stderr, /WARNING/);
  });

  test('nginx-stream.conf passes nginx -t as an include at the top level', async () => {
    const conf = join(dir, 'nginx.conf');
    await writeFile(
      conf,
      [
        'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
        `error_log ${join(dir, 'nginx-error.log')};`,
        `pid ${join(dir, 'nginx.pid')};`,
        'events {}',
        `include ${join(deploy, 'nginx-stream.conf')};`,
        '',
      ].join('\n'),
    );
    const { stderr } = await run('nginx', ['-t', '-c', conf, '-p', dir]);
    assert.match(stderr, /test is successful/);
  });

  test('coexist.service passes systemd-analyze verify, and passes coexist serve only options it has', async () => {
    const unit = await readFile(join(deploy, 'coexist.service'), 'utf8');
    // The program it runs is the checkout's own (docs/deploy.md clones it to /opt/coexist), executable.
    const program = /^ExecStart=\/opt\/coexist\/(\S+) /m.exec(unit)?.[1] ?? '';
    assert.ok(program !== '', 'ExecStart runs a program under /opt/coexist');
    await access(join(root, program), constants.X_OK);
    // systemd-analyze checks that the program exists: point it at an executable that exists here.
    const bin = join(dir, 'coexist');
    await writeFile(bin, '#!/bin/sh\nexit 0\n');
    await chmod(bin, 0o755);
    const copy = join(dir, 'coexist.service');
    await writeFile(copy, unit.replaceAll(`/opt/coexist/${program}`, bin));
    const verified = await run('systemd-analyze', ['verify', copy]).then(
      (r) => r.stdout + r.stderr,
      (e: { stdout: string; stderr: string }) => e.stdout + e.stderr,
    );
    // Only the unit's own lines count: systemd-analyze also reports on units of this machine.
    const own = verified.split('\n').filter((l) => l.includes('coexist.service'));
    assert.deepEqual(own, []);

    const exec = /^ExecStart=\S+ serve((?:.*\\\n)*.*)$/m.exec(unit)?.[1] ?? '';
    const options = [...exec.matchAll(/(--[a-z-]+)/g)].map((m) => m[1] as string);
    assert.ok(options.length >= 5, `the unit's ExecStart passes options: ${exec}`);
    const help = await runCli(['serve', '--help']);
    for (const option of options) assert.ok(help.stdout.includes(option), `coexist serve has ${option}`);
    for (const line of ['ExecReload=/bin/kill -HUP $MAINPID', 'KillSignal=SIGTERM', 'LimitNOFILE='])
      assert.ok(unit.includes(line), line);
    // A reload reads the certificate and its password again: systemd copies credentials (%d) at start only,
    // so a renewed certificate there would never be seen (docs/deploy.md "Patching one front end at a time").
    assert.doesNotMatch(exec, /--cert(-password-file)? \S*%d\//);
    // V8 takes memory protection keys at start: a filter without them kills Node (SIGSYS).
    assert.match(unit, /^SystemCallFilter=@pkey$/m);
  });

  test('every file of the checkout docs/deploy.md names under /opt/coexist exists there', async () => {
    const doc = await readFile(join(root, 'docs', 'deploy.md'), 'utf8');
    const paths = [...new Set([...doc.matchAll(/\/opt\/coexist\/([\w./-]*\w)/g)].map((m) => m[1] as string))];
    assert.ok(paths.includes('bin/coexist.js'), `the doc runs the program: ${paths.join(' ')}`);
    for (const path of paths) await access(join(root, path));
  });
});
