/**
 * The report of `coexist check`: a tree of groups (one per protocol) of steps (one per DNS lookup, TLS
 * handshake or HTTP exchange), each with a verdict, its timing, the servers the answer came back through
 * beside the ones `coexist trace` computes, and for a failure one or two sentences on what to fix. Pure:
 * the probes (probes.ts) fill it in, render.ts prints it.
 */
import type { ErrorCode } from '../core/errors.ts';

/** The protocols `coexist check` can walk, in the order it walks them. */
export const checkProtocols = ['autodiscover', 'activesync', 'ews', 'owa'] as const;
export type CheckProtocol = (typeof checkProtocols)[number];

export const checkProtocolTitles: Readonly<Record<CheckProtocol, string>> = {
  autodiscover: 'Autodiscover',
  activesync: 'ActiveSync',
  ews: 'EWS',
  owa: 'OWA',
};

/** How a step went: `skip` when it was not run (a step before it made it pointless). */
export type Verdict = 'pass' | 'warn' | 'fail' | 'skip';

/** The servers a request went through compared with the ones the estate says it should. */
export type HopComparison =
  /** Exactly the expected servers, in order. */
  | { readonly kind: 'same' }
  /** The estate cannot say (a host it does not know, a user it does not have). */
  | { readonly kind: 'unknown' }
  /** The answer names no server at all (a server that is not coexist, or no answer). */
  | { readonly kind: 'none' }
  /**
   * A strict beginning of the expected path: the request got as far as `at`, which could not hand it to
   * `next` (what a failed request's error answer shows).
   */
  | { readonly kind: 'stopped'; readonly at: string; readonly next: string }
  /** Another path; `index` is where it leaves the expected one. */
  | { readonly kind: 'different'; readonly index: number };

export interface Hops {
  /** `X-Coexist-Path` of the answer: the servers it came back through, the entry server first. */
  readonly actual: readonly string[];
  /** What `coexist trace` computes for this request; absent when the estate cannot say. */
  readonly expected?: readonly string[];
  readonly comparison: HopComparison;
}

/** Exchange's diagnostic headers of an answer. */
export interface Diagnostics {
  readonly requestId?: string;
  readonly feServer?: string;
  readonly beServer?: string;
  readonly calculatedBeTarget?: string;
}

export interface CheckStep {
  /** What was done: `DNS mail.o365info.com -> 127.0.0.1:8443`, `OPTIONS`, `GetFolder inbox`. */
  readonly title: string;
  readonly verdict: Verdict;
  /** Milliseconds the step took. */
  readonly ms?: number;
  /** The HTTP status of the answer. */
  readonly status?: number;
  /** A few words after the status (`versions 2.0..12.1`, `-> https://legacy.mail.o365info.com/owa`). */
  readonly note?: string;
  readonly hops?: Hops;
  /** Lines printed under the step (URLs an answer handed out). */
  readonly details?: readonly string[];
  /** For a failure or a warning: what to fix, in one or two sentences. */
  readonly fix?: string;
  /** The catalogue code that best names a failure (the exit message carries it). */
  readonly code?: ErrorCode;
  /** The URL asked (never with credentials). */
  readonly url?: string;
  readonly diagnostics?: Diagnostics;
}

export interface CheckGroup {
  readonly protocol: CheckProtocol;
  readonly title: string;
  /** The flow of docs/flows.md the estate says this is (`EAS-1`, `EWS-2`), when it names one. */
  readonly flow?: string;
  readonly verdict: Verdict;
  readonly steps: readonly CheckStep[];
}

export interface CheckReport {
  readonly user: string;
  readonly from: 'internal' | 'external';
  readonly estate: string;
  readonly protocols: readonly CheckProtocol[];
  /** How the credentialed requests authenticated (`--auth`; docs/auth.md). */
  readonly auth?: 'basic' | 'ntlm' | 'negotiate';
  readonly verdict: Verdict;
  readonly groups: readonly CheckGroup[];
  readonly startedAt: string;
  readonly ms: number;
}

const rank: Readonly<Record<Verdict, number>> = { pass: 0, skip: 1, warn: 2, fail: 3 };

/**
 * The worst verdict: fail > warn > skip > pass (a group with a step not run was not fully checked);
 * `skip` when there is none.
 */
export function worst(verdicts: Iterable<Verdict>): Verdict {
  let w: Verdict | undefined;
  for (const v of verdicts) if (w === undefined || rank[v] > rank[w]) w = v;
  return w ?? 'skip';
}

/** Whether a report lets `coexist check` exit 0: everything ran and nothing failed (warnings allowed). */
export const passed = (verdict: Verdict): boolean => verdict === 'pass' || verdict === 'warn';

/** A group from its steps: its verdict is its worst step's. */
export function group(
  protocol: CheckProtocol,
  steps: readonly CheckStep[],
  flow?: string,
  title: string = checkProtocolTitles[protocol],
): CheckGroup {
  return {
    protocol,
    title,
    ...(flow === undefined ? {} : { flow }),
    verdict: worst(steps.map((s) => s.verdict)),
    steps,
  };
}

/** Compare the servers an answer came back through with the expected ones. */
export function compareHops(actual: readonly string[], expected: readonly string[] | undefined): Hops {
  const base = { actual, ...(expected === undefined ? {} : { expected }) };
  if (expected === undefined) return { ...base, comparison: { kind: 'unknown' } };
  if (actual.length === 0) return { ...base, comparison: { kind: 'none' } };
  const same = (a: string | undefined, b: string | undefined): boolean =>
    a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();
  let i = 0;
  while (i < actual.length && i < expected.length && same(actual[i], expected[i])) i++;
  if (i === actual.length && i === expected.length) return { ...base, comparison: { kind: 'same' } };
  if (i === actual.length && i < expected.length)
    return {
      ...base,
      comparison: { kind: 'stopped', at: actual[i - 1] as string, next: expected[i] as string },
    };
  return { ...base, comparison: { kind: 'different', index: i } };
}

/** The first failing step of a report (the one the exit message names), with its group. */
export function firstFailure(report: CheckReport): { group: CheckGroup; step: CheckStep } | undefined {
  for (const g of report.groups)
    for (const s of g.steps) if (s.verdict === 'fail') return { group: g, step: s };
  return undefined;
}

/** Every step of a report, with its group, in order. */
export function* allSteps(report: CheckReport): Generator<{ group: CheckGroup; step: CheckStep }> {
  for (const g of report.groups) for (const s of g.steps) yield { group: g, step: s };
}
