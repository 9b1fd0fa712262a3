/** The soak's table (bench/table.ts style) and its goals. */
import type { Reading, SoakResult } from './run.ts';
import { formatInt, formatMs, formatTable } from '../table.ts';

/** RSS may grow by less than this from start to end (issue 13 item 10). */
export const rssGrowthGoal = 0.05;

const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MB`;
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');

/** What RSS holds besides V8's heap and the external memory JavaScript objects account for (malloc's). */
const outsideV8 = (x: Reading): number => x.rssBytes - x.heapTotalBytes - x.externalBytes;

/** RSS growth from after the warm-up cycle to after the load, as a fraction of the first. */
export const rssGrowth = (r: SoakResult): number => (r.rssBytes.end - r.rssBytes.start) / r.rssBytes.start;
/** The same for V8's heap in use after a full GC. */
export const heapGrowth = (r: SoakResult): number =>
  (r.heapUsedBytes.end - r.heapUsedBytes.start) / r.heapUsedBytes.start;

/** The table of a run. */
export function soakTable(r: SoakResult): string {
  const { plan } = r;
  const o = plan.options;
  const t = r.traffic;
  const p = r.pings;
  const a = r.attack;
  const w = r.warmUp;
  const { cold, start, end } = r.readings;
  const rows: string[][] = [
    [
      `warm-up cycle${w.cycles > 1 ? `s (${w.cycles})` : ''}: requests judged`,
      formatInt(w.total),
      `${formatInt(w.pingsHeld)} Pings held and answered; ${formatInt(w.right)} right, ${w.misrouted} misrouted, ${w.lost} lost (goal 0: ${met(w.misrouted + w.lost === 0)})`,
    ],
    ['requests judged (mixed traffic and Pings)', formatInt(t.total), ''],
    ['  right mailbox, right path', formatInt(t.right), ''],
    ['  correct temporary error during a fault', formatInt(t.temporary), ''],
    ['  misrouted', formatInt(t.misrouted), `goal 0: ${met(t.misrouted === 0)}`],
    ['  lost without a correct error', formatInt(t.lost), `goal 0: ${met(t.lost === 0)}`],
    ...Object.entries(r.byKind).map(([kind, k]) => [
      `    ${kind}`,
      formatInt(k.total),
      `${formatInt(k.right)} right, ${formatInt(k.temporary)} temporary, ${k.misrouted} misrouted, ${k.lost} lost`,
    ]),
    [
      `held Pings (${formatInt(p.devices)} devices, held ${plan.pingHoldMs / 1000} s)`,
      formatInt(p.total),
      `${formatInt(p.answeredAfterHold)} answered after their hold, ${formatInt(p.temporary)} temporary errors, ${p.lost} lost`,
    ],
    [
      'RSS of the lab process, start / end',
      `${mb(r.rssBytes.start)} / ${mb(r.rssBytes.end)}`,
      `growth ${pct(rssGrowth(r))}, goal < 5 %: ${met(rssGrowth(r) < rssGrowthGoal)}; cold ${mb(r.rssBytes.cold)}, peak ${mb(r.rssBytes.peak)}`,
    ],
    [
      '  of which outside V8 (malloc), start / end',
      `${mb(outsideV8(start))} / ${mb(outsideV8(end))}`,
      `cold ${mb(outsideV8(cold))}; V8 heap reserved ${mb(start.heapTotalBytes)} / ${mb(end.heapTotalBytes)}; lazily freed ${mb(start.lazyFreeBytes)} / ${mb(end.lazyFreeBytes)}`,
    ],
    [
      'V8 heap in use after GC, start / end',
      `${mb(r.heapUsedBytes.start)} / ${mb(r.heapUsedBytes.end)}`,
      `growth ${pct(heapGrowth(r))} (what a leak of objects would grow); cold ${mb(r.heapUsedBytes.cold)}`,
    ],
    [
      'file descriptors, start / end',
      `${r.fds.start} / ${r.fds.end}`,
      `back to baseline: ${met(r.fds.end <= r.fds.start)}; cold ${r.fds.cold}, peak ${formatInt(r.fds.peak)}`,
    ],
    [
      'p99 of right answers, no attack / under attack',
      `${formatMs(r.p99Ms.calm)} / ${formatMs(r.p99Ms.underAttack)}`,
      `${formatInt(r.samples.calm)} / ${formatInt(r.samples.underAttack)} requests`,
    ],
    [
      `slowloris (${a.slowlorisConnections} connections at a time)`,
      formatInt(a.slowloris.opened),
      `${formatInt(a.slowloris.cut408)} cut with 408, ${a.slowloris.cutOther} cut otherwise, ${a.slowloris.openAtStop} open at the end of the attack`,
    ],
    [
      `brute force on ${a.bruteForceUser}`,
      formatInt(a.bruteForce.attempts),
      `${formatInt(a.bruteForce.refused401)} refused 401, ${a.bruteForce.busy503} 503 (directory down), other ${JSON.stringify(a.bruteForce.other)}`,
    ],
  ];
  const rel = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;
  const notes = [
    `seed ${o.seed}; ${o.directory} directory; load phase ${o.durationMs / 1000} s, started ${r.startedAt}.`,
    ...r.faults.map((f) => `fault: ${f.name} for ${((f.toMs - f.fromMs) / 1000).toFixed(1)} s`),
    `attack phase: ${rel(plan.attack.fromMs)} to ${rel(plan.attack.toMs)} of the load phase.`,
    `Ping devices: ${plan.pingGroups.map((g) => `${g.count} ${g.user.split('@')[0] ?? ''} via ${g.host}`).join(', ')} (at most ${formatInt(plan.pingFds)} lab fds).`,
    'Readings of the lab process, each once every connection has closed and after a full GC: "cold" after the first',
    'requests (every kind for every user); "start" after the warm-up cycle (the load\'s shape once: every Ping held',
    'and answered, mixed traffic, slowloris, brute force; caches, pools and the allocator at their working size);',
    '"end" after the load. Growth is start to end; cold to start is the working set, not a leak. "Outside V8" is RSS',
    "less V8's reserved heap and external memory: malloc's (OpenSSL, parsers), freed pages glibc keeps, and pages",
    'V8 no longer counts that are still resident; "lazily freed" is the part of RSS the kernel may take back (LazyFree).',
    `glibc malloc: MALLOC_ARENA_MAX ${r.mallocArenaMax ?? 'unset (8 arenas a core)'}.`,
    'p99 "no attack": right answers outside faults and the attack, after the Ping ramp; "under attack": inside the attack phase.',
    ...(r.labCloseError === undefined ? [] : [`WARNING: closing the lab failed: ${r.labCloseError}`]),
    ...(r.settled ? [] : ['WARNING: some server still reported client connections at the end.']),
    ...r.slowestUnderAttack.map((x) => `slowest under attack: ${x}`),
    ...[...w.examples].slice(0, 10).map((e) => `! warm-up: ${e}`),
    ...[...t.examples].slice(0, 10).map((e) => `! ${e}`),
  ];
  return formatTable(
    'Soak: the lab under held Pings, mixed traffic, faults and attacks',
    [{ header: 'what' }, { header: 'count', align: 'right' }, { header: 'detail' }],
    rows,
    notes,
  );
}
