/**
 * The estate file's `lockout` section (docs/config.md "lockout"): loaded into the settings `coexist serve`
 * and `coexist lab` hand to every server, absent by default (the lockout then runs with its defaults), and
 * a wrong value is reported like any other problem of the file.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EstateConfigError, parseEstate } from '../../src/config/index.ts';

const demo = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

test('no lockout section: no settings, so every server runs the lockout with its defaults', async () => {
  const { settings } = parseEstate(await readFile(demo, 'utf8'), demo);
  assert.equal(settings.lockout, undefined);
});

test('the lockout section is read into the settings', async () => {
  const text = `${await readFile(demo, 'utf8')}\nlockout:\n  windowSeconds: 900\n  unfamiliarThreshold: 3\n  maxDelayMs: 0\n`;
  const { settings } = parseEstate(text, 'estate.yaml');
  assert.deepEqual(settings.lockout, { windowSeconds: 900, unfamiliarThreshold: 3, maxDelayMs: 0 });
});

test('a wrong lockout value or a misspelt key is a problem of the file', async () => {
  const text = `${await readFile(demo, 'utf8')}\nlockout:\n  unfamiliarThreshold: 0\n  windowSecs: 60\n`;
  assert.throws(
    () => parseEstate(text, 'estate.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof EstateConfigError);
      const paths = e.problems.map((p) => p.path);
      assert.ok(paths.includes('lockout.unfamiliarThreshold'), JSON.stringify(e.problems));
      assert.ok(
        e.problems.some((p) => p.path.startsWith('lockout') && /windowSecs/.test(p.message)),
        JSON.stringify(e.problems),
      );
      return true;
    },
  );
});
