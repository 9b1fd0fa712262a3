/**
 * `coexist serve --session-key-file --redis --redis-password-file` (docs/operations.md "Several front
 * ends"): bad values refused at start with exit code 2 and a message naming the option, the file and what is
 * wrong (never a key or password); good ones give a front end whose OWA cookies open under the shared key and
 * whose shared store is a real redis-server with a password (the gauge at 1, the password nowhere in what it
 * prints).
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { OwaSessions } from '../../src/dataplane/owa-session.ts';
import type { RedisDaemon } from '../../src/lab/redis.ts';
import { startRedis } from '../../src/lab/redis.ts';
import { demoPassword } from '../support/lab-client.ts';
import { runCli } from '../support/run-cli.ts';

const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
const estate = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const base = [
  'serve',
  '--estate',
  estate,
  '--as',
  'CAS2013-NY',
  '--allow-http',
  '--listen',
  '127.0.0.1:0',
  '--workers',
  '1',
];
const key = randomBytes(32);
const redisPassword = `pw-${randomBytes(9).toString('hex')}`;

describe('coexist serve: session key file and shared store options', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-serve-sessions-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a key file others can read: exit 2, the file and the fix named, no key printed', async () => {
    const file = join(dir, 'open-keys');
    await writeFile(file, `${key.toString('base64')}\n`);
    await chmod(file, 0o644);
    const r = await runCli([...base, '--session-key-file', file]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      new RegExp(`--session-key-file ${file}: permissions 0644 are too open.*chmod 600`),
    );
    assert.ok(!r.stderr.includes(key.toString('base64')));
  });

  test('a key file with a short key: exit 2, the line named', async () => {
    const file = join(dir, 'short-keys');
    await writeFile(file, `${randomBytes(16).toString('base64')}\n`, { mode: 0o600 });
    const r = await runCli([...base, '--session-key-file', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /line 1 is 16 bytes, a key must be exactly 32/);
  });

  test('a Redis URL of another scheme, and a password file without a URL: exit 2', async () => {
    const bad = await runCli([...base, '--redis', 'http://user:secret@127.0.0.1:6379']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--redis: the URL has the scheme http, not redis or rediss/);
    assert.ok(!bad.stderr.includes('secret'));
    const lonely = await runCli([...base, '--redis-password-file', join(dir, 'absent')]);
    assert.equal(lonely.code, 2);
    assert.match(lonely.stderr, /--redis-password-file needs --redis URL/);
    const missing = await runCli([
      ...base,
      '--redis',
      'redis://127.0.0.1:1',
      '--redis-password-file',
      join(dir, 'absent'),
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent: cannot be read \(ENOENT\)/);
  });

  describe('a front end with both', () => {
    let redis: RedisDaemon;
    let child: ChildProcessWithoutNullStreams;
    let exit: Promise<number | null>;
    let out = '';
    let port = 0;
    let adminPort = 0;

    before(async () => {
      redis = await startRedis({ password: redisPassword });
      const keyFile = join(dir, 'keys');
      await writeFile(keyFile, `${key.toString('base64')}\n`, { mode: 0o600 });
      const passwordFile = join(dir, 'redis-password');
      await writeFile(passwordFile, `${redisPassword}\n`, { mode: 0o600 });
      child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          entry,
          ...base,
          '--admin',
          '127.0.0.1:0',
          '--session-key-file',
          keyFile,
          '--redis',
          redis.url,
          '--redis-password-file',
          passwordFile,
        ],
        { stdio: 'pipe' },
      );
      exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
      const started = new Promise<void>((resolve, reject) => {
        const seen = (d: Buffer): void => {
          out += d.toString();
          if (/metrics on http:\/\/127\.0\.0\.1:(\d+)/.test(out)) resolve();
        };
        child.stdout.on('data', seen);
        child.stderr.on('data', seen);
        void exit.then((code) => reject(new Error(`serve exited (${code}):\n${out}`)));
      });
      await started;
      port = Number(/front listening on http port (\d+)/.exec(out)?.[1]);
      adminPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    });
    after(async () => {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await exit;
      }
      await redis?.close();
    });

    test('the shared store is Redis (the gauge at 1), and the password is printed nowhere', async () => {
      const metrics = await (await request(`http://127.0.0.1:${adminPort}/metrics`)).body.text();
      assert.match(metrics, /^coexist_shared_store_up\{server="CAS2013-NY"\} 1$/m);
      assert.match(out, /shared store: Redis in use/);
      assert.ok(!out.includes(redisPassword));
    });

    test('its OWA cookie is sealed with the key file: another holder of the key opens it', async () => {
      const r = await request(`http://127.0.0.1:${port}/owa/auth.owa`, {
        method: 'POST',
        headers: {
          host: 'mail.o365info.com',
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: `destination=%2Fowa%2F&username=alice%40o365info.com&password=${encodeURIComponent(demoPassword)}`,
      });
      await r.body.dump();
      assert.equal(r.statusCode, 302);
      const value = String(r.headers['set-cookie']).split(';')[0]?.split('=')[1];
      const check = await new OwaSessions({ keys: [key] }).verify(value);
      assert.ok(check.ok);
      assert.equal(check.session.user, 'alice@o365info.com');
      assert.ok(!out.includes(demoPassword));
    });
  });
});
