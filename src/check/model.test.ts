import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CheckReport } from './model.ts';
import { compareHops, firstFailure, group, passed, worst } from './model.ts';

const nyEas = ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY'];

test('compareHops: the same servers, in order, case-insensitive', () => {
  assert.deepEqual(compareHops(nyEas, nyEas).comparison, { kind: 'same' });
  assert.deepEqual(
    compareHops(
      nyEas.map((s) => s.toLowerCase()),
      nyEas,
    ).comparison,
    { kind: 'same' },
  );
});

test('compareHops: a path that stops early names where it stopped and the next expected server', () => {
  assert.deepEqual(compareHops(['CAS2013-NY', 'MBX2013-NY'], nyEas).comparison, {
    kind: 'stopped',
    at: 'MBX2013-NY',
    next: 'CAS2007-NY',
  });
  assert.deepEqual(compareHops(['CAS2013-NY'], ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']).comparison, {
    kind: 'stopped',
    at: 'CAS2013-NY',
    next: 'CAS2007-NY',
  });
});

test('compareHops: another path, a longer one, none at all, or no expectation', () => {
  assert.deepEqual(compareHops(['CAS2013-NY', 'CAS2007-LA', 'MBX2007-LA'], nyEas).comparison, {
    kind: 'different',
    index: 1,
  });
  assert.deepEqual(compareHops([...nyEas, 'EXTRA'], nyEas).comparison, { kind: 'different', index: 4 });
  assert.deepEqual(compareHops([], nyEas).comparison, { kind: 'none' });
  const unknown = compareHops(nyEas, undefined);
  assert.deepEqual(unknown.comparison, { kind: 'unknown' });
  assert.equal('expected' in unknown, false);
});

test('worst: fail > warn > skip > pass; nothing is skip', () => {
  assert.equal(worst(['pass', 'warn', 'pass']), 'warn');
  assert.equal(worst(['pass', 'skip']), 'skip');
  assert.equal(worst(['skip', 'warn']), 'warn');
  assert.equal(worst(['warn', 'fail', 'skip']), 'fail');
  assert.equal(worst(['pass']), 'pass');
  assert.equal(worst([]), 'skip');
});

test('passed: exit 0 for pass and warn only', () => {
  assert.deepEqual((['pass', 'warn', 'skip', 'fail'] as const).map(passed), [true, true, false, false]);
});

test('group and firstFailure: the group takes its worst step; the first failing step is found', () => {
  const ok = group('autodiscover', [{ title: 'a', verdict: 'pass' }]);
  const bad = group(
    'ews',
    [
      { title: 'b', verdict: 'pass' },
      { title: 'c', verdict: 'fail', code: 'CX_UPSTREAM_CONNECT_REFUSED' },
      { title: 'd', verdict: 'fail' },
    ],
    'EWS-2',
  );
  assert.equal(ok.verdict, 'pass');
  assert.equal(ok.title, 'Autodiscover');
  assert.equal(bad.verdict, 'fail');
  assert.equal(bad.flow, 'EWS-2');
  const report: CheckReport = {
    user: 'bob@o365info.com',
    from: 'external',
    estate: 'o365info',
    protocols: ['autodiscover', 'ews'],
    verdict: 'fail',
    groups: [ok, bad],
    startedAt: '2026-01-01T00:00:00.000Z',
    ms: 1,
  };
  assert.equal(firstFailure(report)?.step.title, 'c');
  assert.equal(firstFailure({ ...report, groups: [ok] }), undefined);
});
