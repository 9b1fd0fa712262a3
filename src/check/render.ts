/** A check report as a text tree, as one progress line per finished step, and as JSON. Pure. */
import type { CheckGroup, CheckReport, CheckStep, Hops, Verdict } from './model.ts';

export const verdictSymbol: Readonly<Record<Verdict, string>> = {
  pass: '✔',
  warn: '⚠',
  fail: '✘',
  skip: '–',
};

const arrow = (hops: readonly string[]): string => hops.join(' -> ');

/** The hop part of a step line: where the answer came through, and how that compares with the estate. */
export function hopsText(h: Hops): string {
  const c = h.comparison;
  switch (c.kind) {
    case 'none':
      return h.expected ? `no X-Coexist-Path (expected: ${arrow(h.expected)})` : 'no X-Coexist-Path';
    case 'unknown':
      return `via ${arrow(h.actual)}`;
    case 'same':
      return `via ${arrow(h.actual)}   expected: same ✔`;
    case 'stopped':
      return `via ${arrow(h.actual)} (stopped at ${c.at}; expected next: ${c.next})`;
    case 'different':
      return `via ${arrow(h.actual)}   expected: ${arrow(h.expected ?? [])} ✘`;
  }
}

/** The line of one step, without indentation or the time. */
export function stepText(s: CheckStep): string {
  const parts = [`${verdictSymbol[s.verdict]} ${s.title}`];
  if (s.status !== undefined) parts.push(String(s.status));
  if (s.note) parts.push(s.note);
  const head = parts.join(' ');
  return s.hops ? `${head}  ${hopsText(s.hops)}` : head;
}

/** Where step times line up (longer lines get two spaces before the time). */
const timeColumn = 78;

function withTime(line: string, ms: number | undefined): string {
  if (ms === undefined) return line;
  const time = `${ms} ms`.padStart(7);
  const width = [...line].length;
  return width < timeColumn ? `${line}${' '.repeat(timeColumn - width)}${time}` : `${line}  ${time.trim()}`;
}

export function groupTitle(g: CheckGroup): string {
  return `${verdictSymbol[g.verdict]} ${g.title}${g.flow ? ` (${g.flow})` : ''}`;
}

/** The whole tree, ending with a one-line verdict. */
export function renderReport(r: CheckReport): string {
  const n = r.protocols.length;
  const auth = r.auth === undefined ? '' : `, auth ${r.auth}`;
  const lines = [`coexist check ${r.user}  (from ${r.from}, ${n} protocol${n === 1 ? '' : 's'}${auth})`];
  for (const g of r.groups) {
    lines.push(groupTitle(g));
    for (const s of g.steps) {
      lines.push(withTime(`  ${stepText(s)}`, s.ms));
      for (const d of s.details ?? []) lines.push(`     ${d}`);
      if (s.fix) lines.push(`     fix: ${s.fix}`);
      if (s.verdict === 'fail' && s.diagnostics?.requestId)
        lines.push(`     request-id: ${s.diagnostics.requestId}`);
    }
  }
  lines.push('', summaryLine(r));
  return lines.join('\n') + '\n';
}

/** `PASS: 4 protocols, 23 steps in 812 ms`, or what failed and warned. */
export function summaryLine(r: CheckReport): string {
  const steps = r.groups.flatMap((g) => g.steps);
  const count = (v: Verdict): number => steps.filter((s) => s.verdict === v).length;
  const names = (v: Verdict): string =>
    r.groups
      .filter((g) => g.verdict === v)
      .map((g) => g.title)
      .join(', ');
  const tail = `${steps.length} steps in ${r.ms} ms`;
  const notRun = count('skip') > 0 ? `, ${count('skip')} not run` : '';
  switch (r.verdict) {
    case 'fail':
      return `FAIL: ${count('fail')} step${count('fail') === 1 ? '' : 's'} failed (${names('fail')})${notRun}; ${tail}`;
    case 'warn':
      return `PASS with warnings: ${count('warn')} warning${count('warn') === 1 ? '' : 's'} (${names('warn')}); ${tail}`;
    case 'pass':
      return `PASS: ${r.groups.length} protocol${r.groups.length === 1 ? '' : 's'}, ${tail}`;
    case 'skip':
      return `INCOMPLETE: ${count('skip')} step${count('skip') === 1 ? '' : 's'} not run (${names('skip')}); ${tail}`;
  }
}

/** One line of the progress display: the step finished, under its group (no escape codes). */
export function progressLine(groupName: string, s: CheckStep): string {
  const status = s.status === undefined ? '' : ` ${s.status}`;
  return withTime(`${verdictSymbol[s.verdict]} ${groupName}: ${s.title}${status}`, s.ms) + '\n';
}

/** The report for scripts. */
export function reportJson(r: CheckReport): string {
  return JSON.stringify(r, null, 2) + '\n';
}
