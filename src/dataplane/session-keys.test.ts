/**
 * The OWA session key file (docs/operations.md "OWA session keys"): one or two base64 keys of 32 bytes,
 * comments and blank lines ignored; anything else refused naming the file and what is wrong, never echoing a
 * key; a file group or others can read is refused, as ssh refuses an unprotected private key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSessionKeys, readSessionKeyFile, SessionKeyFileError } from './session-keys.ts';

const k1 = randomBytes(32);
const k2 = randomBytes(32);

describe('parseSessionKeys', () => {
  test('one key, or two (the first current), base64 or base64url, comments and blank lines ignored', () => {
    assert.deepEqual(parseSessionKeys(`${k1.toString('base64')}\n`, 'f'), [new Uint8Array(k1)]);
    assert.deepEqual(
      parseSessionKeys(
        `# current\n${k2.toString('base64url')}\r\n\n# retiring\n  ${k1.toString('base64')}  \n`,
        'f',
      ),
      [new Uint8Array(k2), new Uint8Array(k1)],
    );
  });

  for (const [what, text, message] of [
    ['an empty file', '\n# nothing\n', /keys\.txt: holds no key/],
    [
      'a short key',
      randomBytes(16).toString('base64'),
      /keys\.txt: line 1 is 16 bytes, a key must be exactly 32/,
    ],
    ['a long key', `#\n${randomBytes(48).toString('base64')}`, /line 2 is 48 bytes/],
    ['not base64', 'this is not a key!', /line 1 is not base64/],
    [
      'three keys',
      [k1, k2, randomBytes(32)].map((k) => k.toString('base64')).join('\n'),
      /holds 3 keys, at most 2/,
    ],
    ['a repeated key', `${k1.toString('base64')}\n${k1.toString('base64url')}`, /line 2 repeats a key/],
  ] as const)
    test(`refused: ${what}, naming the file and the line, without the key`, () => {
      assert.throws(
        () => parseSessionKeys(text, '/etc/coexist/keys.txt'),
        (err: unknown) => {
          assert.ok(err instanceof SessionKeyFileError);
          assert.match(err.message, /^\/etc\/coexist\/keys\.txt: /);
          assert.match(err.message, message);
          for (const line of text.split('\n'))
            if (line.length > 8) assert.ok(!err.message.includes(line.trim()));
          return true;
        },
      );
    });
});

describe('readSessionKeyFile', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-keys-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a file readable by its owner only is read', async () => {
    const file = join(dir, 'ok');
    await writeFile(file, `${k1.toString('base64')}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    assert.deepEqual(readSessionKeyFile(file), [new Uint8Array(k1)]);
    await chmod(file, 0o400);
    assert.deepEqual(readSessionKeyFile(file), [new Uint8Array(k1)]);
  });

  for (const mode of [0o640, 0o604, 0o660, 0o644, 0o602])
    test(`permissions ${mode.toString(8)} are refused, as too open`, async () => {
      const file = join(dir, `open-${mode.toString(8)}`);
      await writeFile(file, `${k1.toString('base64')}\n`);
      await chmod(file, mode);
      assert.throws(() => readSessionKeyFile(file), {
        name: 'SessionKeyFileError',
        message: new RegExp(`^${file}: permissions 0${mode.toString(8)} are too open: .*chmod 600`),
      });
    });

  test('a missing file and a directory are refused, named', () => {
    assert.throws(() => readSessionKeyFile(join(dir, 'absent')), /absent: cannot be read \(ENOENT\)/);
    assert.throws(() => readSessionKeyFile(dir), /is not a regular file/);
  });
});
