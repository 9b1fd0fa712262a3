/**
 * Bench helpers: plain-text tables with aligned columns (ASCII only, readable in any terminal) and
 * repeated measurements summarized as median and spread. No assertions: the bench reports, it never fails.
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface Column {
  readonly header: string;
  /** Numbers read best right-aligned; default left. */
  readonly align?: 'left' | 'right';
}

/** Render a table: title, header, rule, rows, then notes. A row of one cell is a section heading: printed as is, spanning the columns. */
export function formatTable(
  title: string,
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
  notes: readonly string[] = [],
): string {
  const cellRows = rows.filter((r) => r.length > 1);
  const widths = columns.map((c, i) =>
    Math.max(c.header.length, ...cellRows.map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? '';
        const w = widths[i] ?? 0;
        return c.align === 'right' ? cell.padStart(w) : cell.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [
    title,
    '='.repeat(Math.max(title.length, rule.length)),
    line(columns.map((c) => c.header)),
    rule,
    ...rows.map((r) => (r.length > 1 ? line(r) : (r[0] ?? ''))),
    ...notes.map((n) => `  ${n}`),
    '',
  ].join('\n');
}

export function printTable(
  title: string,
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
  notes: readonly string[] = [],
): void {
  console.log(formatTable(title, columns, rows, notes));
}

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Half the min-max range, as a percentage of the median. */
  readonly spreadPct: number;
  readonly samples: readonly number[];
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError('no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  const min = sorted[0] as number;
  const max = sorted[sorted.length - 1] as number;
  return { median, min, max, spreadPct: median === 0 ? 0 : ((max - min) / 2 / median) * 100, samples };
}

/** Where checksums of measured work go, so that the JIT cannot drop the work as dead code. */
let sink = 0;
export const consume = (x: number): void => {
  sink = (sink + x) | 0;
};
export const checksum = (): number => sink;

const gcFunction = ((): ((options?: object) => void) | undefined => {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as (options?: object) => void) : undefined;
  } catch {
    return undefined;
  }
})();

/** Full garbage collection between repetitions (when V8 lets us), so one repetition's garbage does not tax the next. */
export function collectGarbage(): void {
  gcFunction?.();
}

/**
 * A full garbage collection that also gives back the pages it frees, for memory readings. After a regular
 * full GC, Node 24's V8 keeps the freed pages of its heap committed (its reserved heap stays near the peak
 * of the load, 100 MB and more) until its memory reducer runs on an idle process; Node 20's gave them back
 * at once. V8's last-resort collection returns them, so that a reading is of what the process holds rather
 * than of when V8 last tidied up.
 */
export function collectAllGarbage(): void {
  gcFunction?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
export const canCollectGarbage = gcFunction !== undefined;

function checkReps(reps: number): void {
  if (!Number.isInteger(reps) || reps < 3) throw new RangeError('a measurement needs at least 3 repetitions');
}

/**
 * Time `fn` once per repetition (after a full GC); samples in milliseconds. `fn` returns a number that is
 * consumed (dead-code guard). For phases of one run, see `measurePhases`.
 */
export function measureTime(reps: number, fn: () => number): Summary {
  checkReps(reps);
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) {
    collectGarbage();
    const t0 = performance.now();
    consume(fn());
    samples.push(performance.now() - t0);
  }
  return summarize(samples);
}

/** Repeat a phased run; per phase a summary of milliseconds, plus the total of each repetition under `total`. */
export async function measurePhases(
  reps: number,
  run: (phase: <T>(name: string, fn: () => T | Promise<T>) => Promise<T>) => Promise<void>,
): Promise<Map<string, Summary>> {
  checkReps(reps);
  const perPhase = new Map<string, number[]>();
  const totals: number[] = [];
  for (let r = 0; r < reps; r++) {
    collectGarbage();
    let total = 0;
    await run(async (name, fn) => {
      const t0 = performance.now();
      const result = await fn();
      const ms = performance.now() - t0;
      total += ms;
      const list = perPhase.get(name);
      if (list) list.push(ms);
      else perPhase.set(name, [ms]);
      return result;
    });
    totals.push(total);
  }
  const out = new Map<string, Summary>();
  for (const [name, samples] of perPhase) out.set(name, summarize(samples));
  out.set('total', summarize(totals));
  return out;
}

export interface RateOptions {
  readonly reps: number;
  /** Minimum duration of each repetition. */
  readonly minTimeMs: number;
  /** Untimed warm-up before the first repetition (the JIT's optimizing tiers). */
  readonly warmupMs: number;
}

/**
 * Operations per second of `run(n)`, which must do `n` operations and return a checksum. The batch size is
 * calibrated so that one batch takes ~10 ms (the clock is read once per batch); each repetition runs whole
 * batches until `minTimeMs` has passed. Samples in operations per second.
 */
export function measureRate(opts: RateOptions, run: (n: number) => number): Summary {
  checkReps(opts.reps);
  let batch = 64;
  for (;;) {
    const t0 = performance.now();
    consume(run(batch));
    if (performance.now() - t0 >= 10 || batch >= 1 << 26) break;
    batch *= 2;
  }
  const warmEnd = performance.now() + opts.warmupMs;
  while (performance.now() < warmEnd) consume(run(batch));
  const samples: number[] = [];
  for (let r = 0; r < opts.reps; r++) {
    collectGarbage();
    let ops = 0;
    const t0 = performance.now();
    let elapsed: number;
    do {
      consume(run(batch));
      ops += batch;
      elapsed = performance.now() - t0;
    } while (elapsed < opts.minTimeMs);
    samples.push((ops / elapsed) * 1000);
  }
  return summarize(samples);
}

// Formatting (ASCII only).

/** 1234567 -> "1 234 567". */
export function formatInt(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

/** Operations per second with a unit: "1.23 M/s", "456 k/s". */
export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k/s`;
  return `${perSecond.toFixed(0)} /s`;
}

export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(0)} ms`;
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  return `${(ms * 1000).toFixed(0)} us`;
}

/** "+-3.1% (1.20-1.31 M/s)" style spread of a summary, with the unit formatter of its values. */
export function formatSpread(s: Summary, format: (n: number) => string): string {
  return `+-${s.spreadPct.toFixed(1)}% (${format(s.min)} .. ${format(s.max)})`;
}

export function formatRatio(x: number): string {
  return x >= 10 ? `${x.toFixed(0)}x` : x >= 1 ? `${x.toFixed(1)}x` : `${x.toFixed(3)}x`;
}
