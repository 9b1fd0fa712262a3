/**
 * Attack: fishing a PFX password out of what coexist shows. The password protects the key of the front end's
 * certificate (docs/operations.md "Certificates"); it comes from a file, so it is never on the command line
 * where `ps` shows it, and it must reach no log line, no error message and no metric: not when the server
 * runs at debug level and is asked for things, not when the file is wrong (a wrong password, the right one
 * given to another file, a damaged file, a password file that is not text). Each run is a real `coexist
 * serve` process and everything it printed is scanned for the password in clear, hex and base64.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { demoEstate, startServe } from '../support/serve-process.ts';
import { exchangePfx, rootCa, serverCertificate } from '../support/test-pki.ts';

const run = promisify(execFile);
const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));

const password = 'Pfx-Secret-Ïq7-never-shown';
const wrongPassword = 'Pfx-Guess-Ïq8-never-shown';

/** Every form in which a password could leak: clear, hex and base64 of its UTF-8, and of its UTF-16LE. */
function forms(secret: string): string[] {
  const utf8 = Buffer.from(secret, 'utf8');
  const utf16 = Buffer.from(secret, 'utf16le');
  return [
    secret,
    utf8.toString('hex'),
    utf8.toString('base64'),
    utf16.toString('hex'),
    utf16.toString('base64'),
  ];
}

function assertNoSecret(text: string, where: string): void {
  for (const secret of [password, wrongPassword])
    for (const form of forms(secret)) assert.ok(!text.includes(form), `${where} shows a password (${form})`);
}

describe('attack: a PFX password in the logs, the errors, the metrics or the command line', () => {
  const root = rootCa('Contoso Root CA');
  const mail = serverCertificate(root, ['mail.o365info.com']);
  let dir = '';
  const file = (name: string): string => join(dir, name);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-pfx-secret-'));
    const pfx = exchangePfx(mail.key, [mail.cert, root.cert], password, 'legacy');
    for (const [name, content] of [
      ['mail.pfx', pfx],
      ['aes.pfx', exchangePfx(mail.key, [mail.cert, root.cert], password, 'aes256')],
      ['password.txt', `${password}\n`],
      ['wrong.txt', `${wrongPassword}\n`],
      ['damaged.pfx', Buffer.concat([pfx.subarray(0, 200), Buffer.alloc(64, 0xff), pfx.subarray(264)])],
      ['binary.txt', Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a])],
    ] as const)
      await writeFile(file(name), content);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('served at debug level and asked for things: no password in its output, /metrics or argv', async () => {
    const serve = await startServe([
      '--estate',
      demoEstate,
      '--as',
      'CAS2013-NY',
      '--log-level',
      'trace',
      // The password file as --cert-password-file (the other form, hosts=site.pfx,password.txt, below).
      '--cert',
      `mail.o365info.com=${file('mail.pfx')}`,
      '--cert-password-file',
      file('password.txt'),
    ]);
    try {
      // What `ps` shows: the password file's path, never its content.
      const argv = await readFile(`/proc/${serve.pid}/cmdline`, 'utf8');
      assert.ok(argv.includes(file('password.txt')));
      assertNoSecret(argv, 'its command line');
      // A handshake for a name it has no certificate for, a request, and one that fails.
      for (const servername of ['mail.o365info.com', 'unknown.example']) {
        const socket = connect({
          host: '127.0.0.1',
          port: serve.port,
          servername,
          ca: root.certPem,
          rejectUnauthorized: false,
        });
        await once(socket, 'secureConnect');
        socket.end('GET /owa/ HTTP/1.1\r\nHost: mail.o365info.com\r\nConnection: close\r\n\r\n');
        socket.resume();
        await once(socket, 'close');
      }
      const metrics = await (await request(`http://127.0.0.1:${serve.adminPort}/metrics`)).body.text();
      assert.match(metrics, /coexist_certificate_expiry_timestamp_seconds\{[^}]*use="listener"/);
      assertNoSecret(metrics, '/metrics');
      await serve.waitForLog((l) => l['msg'] === 'access');
    } finally {
      assert.equal(await serve.stop(), 0);
    }
    assert.ok(serve.output().includes('"msg":"access"'));
    assertNoSecret(serve.output(), 'the log');
  });

  for (const [title, cert] of [
    ['a wrong password', () => `mail.o365info.com=${file('mail.pfx')},${file('wrong.txt')}`],
    [
      'the wrong password for an AES-256 PFX',
      () => `mail.o365info.com=${file('aes.pfx')},${file('wrong.txt')}`,
    ],
    [
      'the right password for a damaged file',
      () => `mail.o365info.com=${file('damaged.pfx')},${file('password.txt')}`,
    ],
    ['a password file that is not text', () => `mail.o365info.com=${file('mail.pfx')},${file('binary.txt')}`],
    [
      'the password file given as the PFX',
      () => `mail.o365info.com=${file('password.txt')},${file('wrong.txt')}`,
    ],
  ] as const) {
    test(`${title}: exit 2, and the message shows no password`, async () => {
      const r = await run(
        process.execPath,
        [
          '--import',
          'tsx',
          entry,
          'serve',
          '--estate',
          demoEstate,
          '--as',
          'CAS2013-NY',
          '--listen',
          '127.0.0.1:0',
          '--admin',
          '127.0.0.1:0',
          '--log-level',
          'trace',
          '--cert',
          cert(),
        ],
        { timeout: 60_000 },
      ).then(
        () => ({ code: 0, stdout: '', stderr: '' }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({
          code: e.code,
          stdout: e.stdout ?? '',
          stderr: e.stderr ?? '',
        }),
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^coexist: --cert /);
      assertNoSecret(r.stdout + r.stderr, 'the error');
    });
  }
});
