/**
 * The soak's plan, decided before anything starts, from the estate and the seed: how long each phase lasts,
 * when each fault strikes (the seed moves them within bounds), which 2007 CAS is stopped (the one most held
 * Pings go through), how the Pings are spread over the estate's users and namespaces, and what that costs
 * in file descriptors. Pure: the same options give the same plan.
 */
import type { EstateIndex } from '../../src/core/estate/estate-index.ts';
import { traceFlow } from '../../src/core/routing/flow.ts';

/** What `npm run soak` is asked for. */
export interface SoakOptions {
  /** The load phase, milliseconds (`--minutes`, `--seconds`). */
  readonly durationMs: number;
  /** Held ActiveSync Pings (`--pings`). */
  readonly pings: number;
  readonly directory: 'file' | 'ldap';
  readonly seed: number;
}

/** A span of the load phase, milliseconds from its start. */
export interface Span {
  readonly fromMs: number;
  readonly toMs: number;
}

/** One kind of device holding Pings: whose mailbox, through which namespace, and how many. */
export interface PingGroup {
  readonly user: string;
  readonly host: string;
  readonly count: number;
  /** The servers the Ping passes through (the engine's flow). */
  readonly path: readonly string[];
  /** File descriptors one held Ping costs the lab: its client connection, and both ends of every hop. */
  readonly fdsEach: number;
}

export interface SoakPlan {
  readonly options: SoakOptions;
  /** How long the mailbox simulators hold a Ping (LabOptions.maxPingHoldMs). */
  readonly pingHoldMs: number;
  /** Pings are opened at this rate from the start (the ramp). */
  readonly pingRatePerSecond: number;
  readonly pingGroups: readonly PingGroup[];
  /** What the held Pings cost the lab in file descriptors at most (the hard limit is per process). */
  readonly pingFds: number;
  /** The 2007 CAS stopped, and when it is down. */
  readonly casFault: Span & { readonly server: string };
  /** When the LDAP directory is down (only with `directory: 'ldap'`). */
  readonly ldapFault?: Span;
  /** Slowloris and brute force run during this span. */
  readonly attack: Span;
}

/** The lab's file descriptors left for everything but held Pings (hard limit 20 000 per process). */
export const pingFdBudget = 17_000;

/** mulberry32: a small seeded generator of numbers in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * How the Pings are spread, in parts: most on the 2013 mailbox (two hops), the rest on 2007 mailboxes through
 * the front door (EAS-1, EAS-2, EAS-3A: four or three hops) and through their own namespaces (devices never
 * moved to the new one: two hops). A Ping held through four servers costs the lab 7 descriptors, so the
 * mix keeps 5 000 of them within `pingFdBudget`.
 */
const pingMix: readonly { user: string; host: string; parts: number }[] = [
  { user: 'alice@o365info.com', host: 'mail.o365info.com', parts: 60 },
  { user: 'bob@o365info.com', host: 'legacy.mail.o365info.com', parts: 15 },
  { user: 'diego@o365info.com', host: 'europe.mail.o365info.com', parts: 15 },
  { user: 'bob@o365info.com', host: 'mail.o365info.com', parts: 4 },
  { user: 'carol@o365info.com', host: 'mail.o365info.com', parts: 3 },
  { user: 'diego@o365info.com', host: 'mail.o365info.com', parts: 3 },
];

/** A plan too costly for one lab process. */
export class SoakPlanError extends Error {
  override readonly name = 'SoakPlanError';
}

/** The plan of a run: phases are fractions of the load phase, moved by the seed within bounds. */
export function planSoak(index: EstateIndex, options: SoakOptions): SoakPlan {
  const random = seeded(options.seed);
  const d = options.durationMs;
  const at = (fraction: number): number => Math.round(d * fraction);
  const jitter = (lo: number, hi: number): number => lo + (hi - lo) * random();
  // A Ping is held for 40 % of the run: answered and sent again once, with time left for both.
  const pingHoldMs = at(0.4);
  const casStart = jitter(0.2, 0.26);
  const ldapStart = jitter(0.42, 0.48);
  const ldapFault =
    options.directory === 'ldap' ? { fromMs: at(ldapStart), toMs: at(ldapStart + 0.06) } : undefined;
  const attack = { fromMs: at(0.62), toMs: at(0.82) };

  const totalParts = pingMix.reduce((n, m) => n + m.parts, 0);
  let left = options.pings;
  const pingGroups = pingMix.map((m, i): PingGroup => {
    const count = i === pingMix.length - 1 ? left : Math.floor((options.pings * m.parts) / totalParts);
    left -= count;
    const flow = traceFlow(index, { user: m.user, protocol: 'activesync', client: 'external', host: m.host });
    const path = flow.legs[0] ?? [];
    return { user: m.user, host: m.host, count, path, fdsEach: 1 + 2 * (path.length - 1) };
  });
  const casFault = {
    server: busiestCas(index, pingGroups),
    fromMs: at(casStart),
    toMs: at(casStart + 0.06),
  };
  const pingFds = pingGroups.reduce((n, g) => n + g.count * g.fdsEach, 0);
  if (pingFds > pingFdBudget)
    throw new SoakPlanError(
      `${options.pings} held Pings would cost the lab ${pingFds} file descriptors (budget ${pingFdBudget})`,
    );
  return {
    options,
    pingHoldMs,
    // The ramp takes 5 % of the run, at 60 new Pings a second at most: each is a TLS handshake at every hop,
    // all in the lab's one process, and faster than it can shake hands only fills its accept queues.
    pingRatePerSecond: Math.min(60, Math.max(10, Math.ceil(options.pings / (d * 0.05e-3)))),
    pingGroups,
    pingFds,
    casFault,
    ...(ldapFault ? { ldapFault } : {}),
    attack,
  };
}

/** The 2007 CAS the most held Pings go through (the name first in order on a tie). */
function busiestCas(index: EstateIndex, groups: readonly PingGroup[]): string {
  const cas = index.estate.sites
    .flatMap((s) => s.servers)
    .filter((s) => s.version === 2007 && s.roles.includes('cas'))
    .map((s) => s.name)
    .sort();
  const through = (name: string): number =>
    groups.filter((g) => g.path.includes(name)).reduce((n, g) => n + g.count, 0);
  const chosen = [...cas].sort((a, b) => through(b) - through(a))[0];
  if (chosen === undefined) throw new SoakPlanError('the estate has no 2007 CAS to stop');
  return chosen;
}
