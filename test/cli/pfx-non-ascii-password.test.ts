/**
 * An AES-256 PFX (the style of current Exchange exports) whose password is not ASCII opens every time. Its
 * bags are keyed with the password's UTF-8 bytes, while forge's first reading keys them otherwise: that
 * wrong key usually fails the padding check, but about once in 256 files the garbage has valid padding and
 * fails later, as a damaged file would, and such a file was once refused as damaged. The fixture is such a
 * file: made by test/support/test-pki.ts `exchangePfx` with `seededBytes`, chosen because forge's first
 * reading fails it that way (a throwaway key and certificate for mail.o365info.com, valid until 2075).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadListenerCertificates } from '../../src/cli/certificates.ts';

const fixture = fileURLToPath(
  new URL('../fixtures/certs/aes256-utf8-password-valid-padding.pfx', import.meta.url),
);
const password = 'Exchange Export 2026 contraseña!';
let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coexist-pfx-utf8-'));
  await writeFile(join(dir, 'password.txt'), `${password}\n`);
});
after(() => rm(dir, { recursive: true, force: true }));

test('an AES-256 PFX whose wrongly keyed first reading has valid padding opens with its non-ASCII password', async () => {
  const loaded = await loadListenerCertificates([
    `mail.o365info.com=${fixture},${join(dir, 'password.txt')}`,
  ]);
  assert.equal(loaded.entries.length, 1);
  assert.deepEqual(loaded.entries[0]?.hosts, ['mail.o365info.com']);
  assert.match(loaded.entries[0]?.keyPem ?? '', /PRIVATE KEY/);
});

test('the same file with a wrong password is a wrong password, not a damaged file', async () => {
  await writeFile(join(dir, 'wrong.txt'), 'Exchange Export 2026 contrasena!\n');
  await assert.rejects(
    loadListenerCertificates([`mail.o365info.com=${fixture},${join(dir, 'wrong.txt')}`]),
    /wrong password in .*wrong\.txt/,
  );
});
