import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CheckReport } from './model.ts';
import { compareHops, group } from './model.ts';
import { hopsText, progressLine, renderReport, reportJson, summaryLine } from './render.ts';

const nyEas = ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY'];

const report: CheckReport = {
  user: 'bob@o365info.com',
  from: 'external',
  estate: 'o365info',
  protocols: ['autodiscover', 'activesync', 'ews'],
  verdict: 'fail',
  startedAt: '2026-01-01T00:00:00.000Z',
  ms: 120,
  groups: [
    group('autodiscover', [
      { title: 'DNS autodiscover.o365info.com -> 127.0.0.1:8443', verdict: 'pass', ms: 2 },
      {
        title: 'POST /Autodiscover/Autodiscover.xml (outlook 2006a)',
        verdict: 'pass',
        status: 200,
        ms: 12,
        hops: compareHops(['CAS2013-NY'], ['CAS2013-NY']),
        details: ['EWS external: https://legacy.mail.o365info.com/EWS/Exchange.asmx'],
      },
    ]),
    group(
      'activesync',
      [
        {
          title: 'OPTIONS',
          verdict: 'warn',
          status: 200,
          note: 'versions 2.0..12.1',
          ms: 30,
          hops: compareHops(['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY'], nyEas),
          fix: 'The answer came back another way.',
        },
        { title: 'ActiveSync session', verdict: 'skip', note: '(not run: why)' },
      ],
      'EAS-1',
    ),
    group(
      'ews',
      [
        {
          title: 'GetFolder inbox',
          verdict: 'fail',
          status: 502,
          ms: 5,
          hops: compareHops(['CAS2013-NY'], ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']),
          fix: 'CAS2007-NY did not answer CAS2013-NY (connection refused).',
          diagnostics: { requestId: 'abc-123' },
        },
      ],
      'EWS-2',
    ),
  ],
};

test('the tree: groups with their flow, steps with status, note, hops against the estate, time, details, fix', () => {
  const expected = [
    'coexist check bob@o365info.com  (from external, 3 protocols)',
    '✔ Autodiscover',
    '  ✔ DNS autodiscover.o365info.com -> 127.0.0.1:8443                              2 ms',
    '  ✔ POST /Autodiscover/Autodiscover.xml (outlook 2006a) 200  via CAS2013-NY   expected: same ✔  12 ms',
    '     EWS external: https://legacy.mail.o365info.com/EWS/Exchange.asmx',
    '⚠ ActiveSync (EAS-1)',
    '  ⚠ OPTIONS 200 versions 2.0..12.1  via CAS2013-NY -> CAS2007-NY -> MBX2007-NY   expected: CAS2013-NY -> MBX2013-NY -> CAS2007-NY -> MBX2007-NY ✘  30 ms',
    '     fix: The answer came back another way.',
    '  – ActiveSync session (not run: why)',
    '✘ EWS (EWS-2)',
    '  ✘ GetFolder inbox 502  via CAS2013-NY (stopped at CAS2013-NY; expected next: CAS2007-NY)  5 ms',
    '     fix: CAS2007-NY did not answer CAS2013-NY (connection refused).',
    '     request-id: abc-123',
    '',
    'FAIL: 1 step failed (EWS), 1 not run; 5 steps in 120 ms',
    '',
  ].join('\n');
  assert.equal(renderReport(report), expected);
});

test('hopsText: every comparison', () => {
  assert.equal(hopsText(compareHops(['A', 'B'], ['A', 'B'])), 'via A -> B   expected: same ✔');
  assert.equal(hopsText(compareHops(['A'], ['A', 'B'])), 'via A (stopped at A; expected next: B)');
  assert.equal(hopsText(compareHops(['A', 'C'], ['A', 'B'])), 'via A -> C   expected: A -> B ✘');
  assert.equal(hopsText(compareHops(['A'], undefined)), 'via A');
  assert.equal(hopsText(compareHops([], ['A'])), 'no X-Coexist-Path (expected: A)');
});

test('summaryLine: pass, pass with warnings, incomplete', () => {
  const ok: CheckReport = {
    ...report,
    verdict: 'pass',
    groups: [report.groups[0] as CheckReport['groups'][0]],
  };
  assert.equal(summaryLine(ok), 'PASS: 1 protocol, 2 steps in 120 ms');
  const warned: CheckReport = { ...report, verdict: 'warn', groups: report.groups.slice(0, 2) };
  assert.equal(summaryLine(warned), 'PASS with warnings: 1 warning (ActiveSync); 4 steps in 120 ms');
  const skipped = group('owa', [{ title: 'OWA', verdict: 'skip' }]);
  assert.equal(
    summaryLine({ ...report, verdict: 'skip', groups: [skipped] }),
    'INCOMPLETE: 1 step not run (OWA); 1 steps in 120 ms',
  );
});

test('the progress line: one line, the group and the step, no escape codes', () => {
  const line = progressLine('EWS', report.groups[2]?.steps[0] as CheckReport['groups'][0]['steps'][0]);
  assert.equal(
    line,
    '✘ EWS: GetFolder inbox 502                                                       5 ms\n',
  );
  assert.ok(!line.includes('\u001b'));
  assert.equal(line.split('\n').length, 2);
});

test('JSON: the whole report, parseable', () => {
  const back = JSON.parse(reportJson(report)) as CheckReport;
  assert.deepEqual(back, report);
});
