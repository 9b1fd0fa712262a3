import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { catalogue, CoexistError, exitCodeOf, statusOf } from './errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = [...doc.matchAll(/^\| `(CX_[A-Z_]+)` \|/gm)].map((m) => m[1]);

test('every catalogue code is documented in docs/errors.md, once, and nothing else is', () => {
  assert.deepEqual([...documented].sort(), Object.keys(catalogue).sort());
  assert.equal(new Set(documented).size, documented.length);
});

test('codes are grouped by area and routing outcomes carry an HTTP status', () => {
  for (const [code, entry] of Object.entries(catalogue)) {
    assert.match(code, /^CX_(CONFIG|CLI|DISCOVER|ROUTE|DIRECTORY|IDENTITY|UPSTREAM|HTTP|AUTH)_[A-Z_]+$/);
    if (code.startsWith('CX_ROUTE_')) assert.ok(entry.status >= 400 && entry.status < 600, code);
    assert.ok(entry.summary.endsWith('.'), code);
  }
});

test('CoexistError keeps its code and details', () => {
  const e = new CoexistError('CX_CLI_UNKNOWN_USER', 'unknown user "x"', { user: 'x' });
  assert.equal(e.code, 'CX_CLI_UNKNOWN_USER');
  assert.deepEqual(e.details, { user: 'x' });
  assert.equal(statusOf('CX_ROUTE_NOT_OFFERED'), 404);
});

test('bad input exits 2 (command line, estate file, discover exports), every other failure 1', () => {
  for (const code of Object.keys(catalogue) as (keyof typeof catalogue)[]) {
    const input = code.startsWith('CX_CLI_') || code.startsWith('CX_CONFIG_') || code === 'CX_DISCOVER_INPUT';
    assert.equal(exitCodeOf(code), input ? 2 : 1, code);
  }
  assert.equal(exitCodeOf('CX_DIRECTORY_UNAVAILABLE'), 1);
});
