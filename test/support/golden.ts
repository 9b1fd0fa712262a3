/**
 * Golden files: compare text with a file under test/golden; `UPDATE_GOLDEN=1 npm test` rewrites them
 * (review the diff before committing: the goldens are what a reviewer checks against the article).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../golden/', import.meta.url));

export function assertGolden(relativePath: string, actual: string): void {
  const file = join(root, relativePath);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(file, 'utf8');
  } catch {
    assert.fail(
      `golden file test/golden/${relativePath} is missing: run UPDATE_GOLDEN=1 npm test and review it`,
    );
  }
  assert.equal(actual, expected, `output differs from test/golden/${relativePath}`);
}
