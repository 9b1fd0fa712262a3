/**
 * The estate file's `health` section (docs/config.md "health"): loaded into the settings `coexist serve` and
 * `coexist lab` hand to every server, absent by default (the probes then run with their defaults), and a
 * wrong value is reported like any other problem of the file.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EstateConfigError, parseEstate } from '../../src/config/index.ts';

const demo = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

test('no health section: no settings', async () => {
  const { settings } = parseEstate(await readFile(demo, 'utf8'), demo);
  assert.equal(settings.health, undefined);
});

test('the health section is read into the settings', async () => {
  const text = `${await readFile(demo, 'utf8')}\nhealth:\n  intervalSeconds: 5\n  downAfter: 2\n  rule: every\n`;
  const { settings } = parseEstate(text, 'estate.yaml');
  assert.deepEqual(settings.health, { intervalSeconds: 5, downAfter: 2, rule: 'every' });
});

test('a wrong health value or a misspelt key is a problem of the file', async () => {
  const text = `${await readFile(demo, 'utf8')}\nhealth:\n  rule: some\n  intervalSecs: 5\n`;
  assert.throws(
    () => parseEstate(text, 'estate.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof EstateConfigError);
      const paths = e.problems.map((p) => p.path);
      assert.ok(paths.includes('health.rule'), JSON.stringify(e.problems));
      assert.ok(
        e.problems.some((p) => p.path.startsWith('health') && /intervalSecs/.test(p.message)),
        JSON.stringify(e.problems),
      );
      return true;
    },
  );
});
