import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EstateConfigError, formatConfigProblems, REPORT_LIMIT } from './config-error.ts';

test('a report with thousands of problems is cut at REPORT_LIMIT lines and says how many more there are', () => {
  const problems = Array.from({ length: REPORT_LIMIT + 50 }, (_, i) => ({
    file: 'big.yaml',
    line: i + 1,
    column: 1,
    path: `users[${i}].address`,
    code: 'CX_CONFIG_SCHEMA' as const,
    message: 'must be an SMTP address',
  }));
  const text = formatConfigProblems(new EstateConfigError('big.yaml', problems));
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], `big.yaml: ${REPORT_LIMIT + 50} problems`);
  assert.equal(lines.length, 1 + REPORT_LIMIT + 1);
  assert.match(lines.at(-1) ?? '', /and 50 more problems/);
});
