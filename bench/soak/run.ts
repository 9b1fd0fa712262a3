/**
 * The soak (docs/security.md "Soak"): the whole lab in this process, its clients in child processes (held
 * Pings, mixed traffic, attackers), faults on the plan's schedule (a 2007 CAS stopped and started again, the
 * LDAP directory restarted), and every answer judged against the engine (classify.ts). Measures the lab
 * process's RSS and file descriptors after warm-up and again once the load has stopped and its
 * connections have closed.
 *
 * The readings (docs/security.md "Soak"): a cold one after the first requests (every kind for every user),
 * the start after a warm-up cycle of the same load shape (every device's Ping held and answered, the mixed
 * traffic, slowloris and brute force: caches, pools and the allocator at their working size), and the end
 * after the load; each once every connection has closed, after a full GC. Growth from start to end is what
 * leaks; cold to start is what the working set costs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../src/config/index.ts';
import type { EstateIndex } from '../../src/core/estate/estate-index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses, startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import { collectAllGarbage } from '../table.ts';
import type { FaultWindow, Judged, Observation, Verdict } from './classify.ts';
import { judge } from './classify.ts';
import type { Child, LabEndpoint } from './ipc.ts';
import { spawnChild } from './ipc.ts';
import type { Device } from './pinger.ts';
import type { SoakOptions, SoakPlan } from './plan.ts';
import { planSoak, seeded } from './plan.ts';
import type { Expected } from './requests.ts';
import { autodiscoverHost, expectedAnswer, primaryHost } from './requests.ts';

export const demoEstateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

/** Counts of one class of requests by verdict, and examples of what went wrong. */
export interface Tally {
  readonly total: number;
  readonly right: number;
  readonly temporary: number;
  readonly misrouted: number;
  readonly lost: number;
  /** Up to 10 of the misrouted and lost, with why. */
  readonly examples: readonly string[];
}

export interface AttackResult {
  readonly slowloris: {
    opened: number;
    cut408: number;
    cutOther: number;
    openAtStop: number;
    otherCuts: Record<string, number>;
  };
  readonly bruteForce: {
    attempts: number;
    refused401: number;
    busy503: number;
    other: Record<string, number>;
  };
  readonly slowlorisConnections: number;
  readonly bruteForceUser: string;
}

export interface SoakResult {
  readonly plan: SoakPlan;
  readonly startedAt: string;
  readonly faults: readonly FaultWindow[];
  /** Mixed traffic (every protocol) and held Pings, judged. */
  readonly traffic: Tally;
  readonly pings: Tally & { readonly devices: number; readonly answeredAfterHold: number };
  readonly byKind: Readonly<Record<string, Tally>>;
  readonly attack: AttackResult;
  /** p99 of right answers of the mixed traffic, ms: outside faults and attack, and during the attack. */
  readonly p99Ms: { readonly calm: number; readonly underAttack: number };
  readonly samples: { readonly calm: number; readonly underAttack: number };
  /** The slowest right answers under attack, to say where the time went. */
  readonly slowestUnderAttack: readonly string[];
  /** The warm-up cycle's requests (its Pings and mixed traffic), judged: no fault, so every one right. */
  readonly warmUp: Tally & { readonly cycles: number; readonly pingsHeld: number };
  /** Each reading (cold, start, end), as it was taken. */
  readonly readings: { readonly cold: Reading; readonly start: Reading; readonly end: Reading };
  /** V8's heap in use after a full GC: what a leak would grow. Start is after the warm-up cycle. */
  readonly heapUsedBytes: { readonly cold: number; readonly start: number; readonly end: number };
  readonly rssBytes: {
    readonly cold: number;
    readonly start: number;
    readonly end: number;
    readonly peak: number;
  };
  readonly fds: {
    readonly cold: number;
    readonly start: number;
    readonly end: number;
    readonly peak: number;
  };
  /** Whether every server of the lab reported no client connection at the end (before the last reading). */
  readonly settled: boolean;
  /** The lab process's MALLOC_ARENA_MAX, when set (glibc's arenas keep freed pages in RSS). */
  readonly mallocArenaMax?: string;
  /** What `lab.close()` threw, if it did. */
  readonly labCloseError?: string;
}

/** The lab process's memory and descriptors at one moment, after a full GC. */
export interface Reading {
  readonly rssBytes: number;
  /** V8's heap: in use, and all it has from the system. */
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  /** Memory outside V8's heap that JavaScript objects hold (Buffers, TLS sockets' native parts...). */
  readonly externalBytes: number;
  /**
   * Pages freed with MADV_FREE that the kernel has not taken back yet: still in RSS (/proc/self/smaps_rollup
   * LazyFree; 0 where it cannot be read).
   */
  readonly lazyFreeBytes: number;
  readonly fds: number;
}

/** Looks into the lab process at each reading (scratch/ heap snapshots): told which reading it is. */
export interface SoakProbe {
  /** Warm-up cycles before the start reading (1 by default): 2 or more to compare identical cycles. */
  readonly warmUpCycles?: number;
  readonly reading?: (label: string) => void | Promise<void>;
}

/** LazyFree of /proc/self/smaps_rollup, bytes; 0 where there is none. */
function lazyFree(): number {
  try {
    const kb = /^LazyFree:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/** The lab process's open file descriptors. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Client connections the lab's servers hold now, all together. */
async function labConnections(lab: Lab): Promise<number> {
  let n = 0;
  for (const m of lab.metrics.values()) {
    const g = m.registry.getSingleMetric('coexist_client_connections');
    const { values } = g ? await g.get() : { values: [] };
    n += values.reduce((s, v) => s + v.value, 0);
  }
  return n;
}

/** Wait until `condition` holds, or `deadlineMs` passes; whether it held. */
async function until(condition: () => boolean | Promise<boolean>, deadlineMs: number): Promise<boolean> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    if (await condition()) return true;
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const at = (wallMs: number): Promise<void> =>
  new Promise((r) => setTimeout(r, Math.max(0, wallMs - Date.now())));

function p99(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? Number.NaN;
}

function tally(judged: readonly { o: Observation; j: Judged }[]): Tally {
  const count = (v: Verdict): number => judged.filter((x) => x.j.verdict === v).length;
  return {
    total: judged.length,
    right: count('right'),
    temporary: count('temporary'),
    misrouted: count('misrouted'),
    lost: count('lost'),
    examples: judged
      .filter((x) => x.j.verdict === 'misrouted' || x.j.verdict === 'lost')
      .slice(0, 10)
      .map(
        (x) =>
          `${x.o.kind} ${x.o.user} via ${x.o.host} at ${new Date(x.o.startMs).toISOString()}: ${x.j.verdict}, ${x.j.why ?? ''}`,
      ),
  };
}

function addTally(a: Tally, b: Tally): Tally {
  return {
    total: a.total + b.total,
    right: a.right + b.right,
    temporary: a.temporary + b.temporary,
    misrouted: a.misrouted + b.misrouted,
    lost: a.lost + b.lost,
    examples: [...a.examples, ...b.examples].slice(0, 10),
  };
}

/** Run the soak; `progress` hears what it is doing. */
export async function runSoak(
  options: SoakOptions,
  progress: (line: string) => void = () => undefined,
  probe: SoakProbe = {},
): Promise<SoakResult> {
  const { index } = parseEstate(await readFile(demoEstateFile, 'utf8'), demoEstateFile);
  const plan = planSoak(index, options);
  const random = seeded(options.seed ^ 0x5eed);
  const users = index.estate.users.map((u) => u.address);
  const bruteForceUser = users[Math.floor(random() * users.length)] ?? 'carol@o365info.com';
  // The edge's head deadline short enough to cut each slowloris connection several times in the attack
  // phase, and never shorter than a normal client needs (docs/security.md "Limits and timeouts at the edge").
  const headTimeoutMs = Math.max(
    2_000,
    Math.min(20_000, Math.round((plan.attack.toMs - plan.attack.fromMs) / 4)),
  );
  progress(
    `lab (${options.directory} directory), ${options.pings} Pings held ${plan.pingHoldMs / 1000} s, ${plan.casFault.server} stopped at ${plan.casFault.fromMs / 1000} s`,
  );
  const lab = await startLab({
    index,
    logger: createLogger({ level: 'silent' }),
    directory: options.directory,
    maxPingHoldMs: plan.pingHoldMs,
    // The soak judges paths by the answers' headers and reads none from the recorder: a bound the warm-up
    // fills, so the recorder (a lab tool, not part of the data plane) weighs the same in every reading.
    recordedRequests: 256,
    retryAfterSeconds: 2,
    limits: { headTimeoutMs, logIntervalMs: 60_000 },
  });
  const children: Child[] = [];
  let result: SoakResult;
  let labCloseError: string | undefined;
  try {
    result = await soak(lab, index, plan, {
      users,
      bruteForceUser,
      headTimeoutMs,
      children,
      progress,
      probe,
    });
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    // Closing the lab is part of what the soak checks: a failure is reported, not thrown.
    await lab.close().catch((e: unknown) => {
      labCloseError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    });
  }
  return labCloseError === undefined ? result : { ...result, labCloseError };
}

interface Context {
  readonly users: readonly string[];
  readonly bruteForceUser: string;
  readonly headTimeoutMs: number;
  readonly children: Child[];
  readonly progress: (line: string) => void;
  readonly probe: SoakProbe;
}

/** Every connection of the lab closed (kept-alive ones after the keep-alive timeout), or the deadline passed. */
const settled = (lab: Lab, deadlineMs: number): Promise<boolean> =>
  until(async () => (await labConnections(lab)) === 0, deadlineMs);

async function read(label: string, probe: SoakProbe): Promise<Reading> {
  collectAllGarbage();
  const m = process.memoryUsage();
  const r: Reading = {
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    heapTotalBytes: m.heapTotal,
    externalBytes: m.external,
    lazyFreeBytes: lazyFree(),
    fds: openFds(),
  };
  await probe.reading?.(label);
  return r;
}

async function soak(lab: Lab, index: EstateIndex, plan: SoakPlan, c: Context): Promise<SoakResult> {
  const { options } = plan;
  const hosts = [primaryHost, autodiscoverHost, ...new Set(plan.pingGroups.map((g) => g.host))];
  const ports: Record<string, number> = {};
  for (const h of hosts) {
    const to = lab.resolve(h, 443);
    if (to) ports[h] = to.port;
  }
  const endpoint: LabEndpoint = { caPem: lab.ca.certPem, ports };
  const authorization: Record<string, string> = {};
  for (const u of c.users) {
    const password = await lab.knownPassword(u);
    if (password === undefined) throw new Error(`the lab knows no password for ${u}`);
    authorization[u] = `Basic ${Buffer.from(`${u}:${password}`).toString('base64')}`;
  }

  // Sources: at most 500 Pings per address (the edge's per-source cap is 1 000), 4 traffic clients, and an
  // address for each attacker. None is the lab's servers' address (127.0.0.2), which the servers trust.
  const devices: Device[] = [];
  for (const g of plan.pingGroups)
    for (let i = 0; i < g.count; i++) {
      const n = devices.length;
      devices.push({
        id: `SOAKPING${n}`,
        user: g.user,
        host: g.host,
        source: `127.0.${20 + Math.floor(n / 500 / 250)}.${(Math.floor(n / 500) % 250) + 1}`,
      });
    }
  const trafficSources = ['127.0.30.1', '127.0.30.2', '127.0.30.3', '127.0.30.4'];
  const slowlorisConnections = slowlorisCount(options.durationMs);

  const pinger = spawnChild('pinger');
  const traffic = spawnChild('traffic');
  const attacker = spawnChild('attacker');
  c.children.push(pinger, traffic, attacker);

  // Warm-up: every kind of request for every user from every traffic client, each answered right.
  c.progress('warm-up');
  const base = { lab: endpoint, users: c.users, authorization, sources: trafficSources };
  const warm = await traffic.ask<{ observations: Observation[] }>('warm-up', base);
  const expectations = new Map<string, Expected>();
  const expected = (o: Observation): Expected => {
    const key = `${o.kind}\n${o.user}\n${o.host}`;
    let e = expectations.get(key);
    if (!e) {
      e = expectedAnswer(
        index,
        o.kind === 'ping' ? 'activesync' : (o.kind as Parameters<typeof expectedAnswer>[1]),
        o.user,
        o.host,
      );
      expectations.set(key, e);
    }
    return e;
  };
  for (const o of warm.observations) {
    const j = judge(o, expected(o), []);
    if (j.verdict !== 'right')
      throw new Error(`warm-up: ${o.kind} for ${o.user}: ${j.verdict} (${j.why ?? ''})`);
  }
  // The cold reading: once every connection of the first requests has closed, after a full GC.
  await settled(lab, 30_000);
  const cold = await read('cold', c.probe);
  let rssPeak = cold.rssBytes;
  let fdsPeak = cold.fds;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    fdsPeak = Math.max(fdsPeak, openFds());
  }, 1_000);

  // The warm-up cycle(s): the load's shape once, then the start reading.
  // Only the tally of the warm-up is kept: its observations would weigh in the start reading.
  let warmUp: Tally | undefined;
  let pingsHeld = 0;
  const cycles = c.probe.warmUpCycles ?? 1;
  for (let cycle = 1; cycle <= cycles; cycle++) {
    const w = await warmUpCycle(lab, plan, c, {
      devices,
      endpoint,
      base,
      authorization,
      cycle,
      children: { pinger, traffic, attacker },
    });
    pingsHeld += w.pingsHeld;
    const t = tally(w.observations.map((o) => ({ o, j: judge(o, expected(o), []) })));
    warmUp = warmUp ? addTally(warmUp, t) : t;
    await settled(lab, 30_000);
    if (cycle < cycles) await read(`warm-up ${cycle}`, c.probe);
  }
  const start = await read(cycles > 1 ? `warm-up ${cycles}` : 'start', c.probe);
  const fdsStart = start.fds;

  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  const loadEndMs = t0 + options.durationMs;
  c.progress(`load phase: ${options.durationMs / 1000} s`);
  await pinger.ask('start', {
    lab: endpoint,
    devices,
    ratePerSecond: plan.pingRatePerSecond,
    holdMs: plan.pingHoldMs,
    loadEndMs,
    seed: options.seed,
    authorization,
  });
  await traffic.ask('start', { ...base, seed: options.seed, pauseMs: 200 });

  const faults: FaultWindow[] = [];
  const casFault = (async () => {
    const server = plan.casFault.server;
    await at(t0 + plan.casFault.fromMs);
    c.progress(`fault: ${server} stopped`);
    const fromMs = Date.now();
    await lab.stopServer(server);
    await at(t0 + plan.casFault.toMs);
    await lab.startServer(server);
    const toMs = Date.now();
    c.progress(`fault: ${server} started again`);
    const recoveredMs = await recoveryOf(lab, index, server, toMs);
    faults.push({ name: `${server} stopped`, server, fromMs, toMs, recoveredMs });
    c.progress(`fault: ${server} recovered ${((recoveredMs - toMs) / 1000).toFixed(1)} s after its restart`);
  })();
  const ldapFault = (async () => {
    const slapd = lab.slapd;
    if (!plan.ldapFault || !slapd) return;
    await at(t0 + plan.ldapFault.fromMs);
    c.progress('fault: LDAP directory stopped');
    const fromMs = Date.now();
    await slapd.stop();
    await at(t0 + plan.ldapFault.toMs);
    await slapd.start();
    faults.push({ name: 'LDAP directory restarted', fromMs, toMs: Date.now() });
    c.progress('fault: LDAP directory started again');
  })();
  const attack = (async (): Promise<Omit<AttackResult, 'slowlorisConnections' | 'bruteForceUser'>> => {
    await at(t0 + plan.attack.fromMs);
    c.progress(
      `attack: slowloris (${slowlorisConnections} connections) and brute force on ${c.bruteForceUser}`,
    );
    await attacker.ask('start', {
      lab: endpoint,
      host: primaryHost,
      slowloris: { connections: slowlorisConnections, source: '127.0.40.1' },
      bruteForce: { user: c.bruteForceUser, source: '127.0.41.1', perSecond: 10 },
    });
    await at(t0 + plan.attack.toMs);
    const r = await attacker.ask<Omit<AttackResult, 'slowlorisConnections' | 'bruteForceUser'>>('stop');
    c.progress('attack over');
    return r;
  })();
  const status = setInterval(
    () => {
      void pinger
        .ask<{ sent: number; answered: number; inFlight: number }>('count')
        .then((p) =>
          c.progress(
            `t+${Math.round((Date.now() - t0) / 1000)} s: Pings in flight ${p.inFlight}, answered ${p.answered}; lab fds ${openFds()}, RSS ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB`,
          ),
        );
    },
    Math.max(5_000, Math.round(options.durationMs / 20)),
  );

  await at(loadEndMs);
  clearInterval(status);
  c.progress('load phase over: stopping the traffic, waiting for every held Ping');
  const [attackResult] = await Promise.all([attack, casFault, ldapFault]);
  await traffic.ask('stop');
  const drained = await pinger.ask<{ rampDoneMs?: number }>('drain');
  const allClosed = await settled(lab, 60_000);
  await until(() => openFds() <= fdsStart, 10_000);
  clearInterval(sampler);
  const end = await read('end', c.probe);
  // What is judged comes over only now: in the lab process at a reading, it would look like a leak.
  const trafficResult = await traffic.ask<{ observations: (Observation & { ms: number })[] }>('observations');
  const pingResult = await pinger.ask<{ observations: Observation[] }>('observations');

  // Judge every answer.
  const judgedTraffic = trafficResult.observations.map((o) => ({ o, j: judge(o, expected(o), faults) }));
  const judgedPings = pingResult.observations.map((o) => ({ o, j: judge(o, expected(o), faults) }));
  const byKind: Record<string, Tally> = {};
  for (const kind of new Set(judgedTraffic.map((x) => x.o.kind)))
    byKind[kind] = tally(judgedTraffic.filter((x) => x.o.kind === kind));
  byKind['ping'] = tally(judgedPings);
  const rampDone = drained.rampDoneMs ?? t0;
  const attackFrom = t0 + plan.attack.fromMs;
  const attackTo = t0 + plan.attack.toMs;
  const overlaps = (o: Observation, from: number, to: number): boolean => o.startMs <= to && o.endMs >= from;
  const right = judgedTraffic.filter((x) => x.j.verdict === 'right');
  const calm = right
    .filter((x) => x.o.startMs >= rampDone && !overlaps(x.o, attackFrom, attackTo))
    .filter((x) => !faults.some((f) => overlaps(x.o, f.fromMs, f.toMs)))
    .map((x) => (x.o as Observation & { ms: number }).ms);
  const attacked = right.filter((x) => x.o.startMs >= attackFrom && x.o.endMs <= attackTo);
  const underAttack = attacked.map((x) => (x.o as Observation & { ms: number }).ms);
  const slowest = [...attacked]
    .sort((a, b) => (b.o as Observation & { ms: number }).ms - (a.o as Observation & { ms: number }).ms)
    .slice(0, 5)
    .map(
      (x) =>
        `${x.o.kind} ${x.o.user} at t+${((x.o.startMs - t0) / 1000).toFixed(1)} s: ${Math.round((x.o as Observation & { ms: number }).ms)} ms`,
    );
  const pingTally = tally(judgedPings);

  return {
    plan,
    startedAt,
    faults,
    traffic: tally([...judgedTraffic, ...judgedPings]),
    pings: { ...pingTally, devices: devices.length, answeredAfterHold: pingTally.right },
    byKind,
    attack: { ...attackResult, slowlorisConnections, bruteForceUser: c.bruteForceUser },
    p99Ms: { calm: p99(calm), underAttack: p99(underAttack) },
    samples: { calm: calm.length, underAttack: underAttack.length },
    slowestUnderAttack: slowest,
    warmUp: { ...(warmUp ?? tally([])), cycles, pingsHeld },
    readings: { cold, start, end },
    heapUsedBytes: { cold: cold.heapUsedBytes, start: start.heapUsedBytes, end: end.heapUsedBytes },
    rssBytes: { cold: cold.rssBytes, start: start.rssBytes, end: end.rssBytes, peak: rssPeak },
    fds: { cold: cold.fds, start: start.fds, end: end.fds, peak: fdsPeak },
    settled: allClosed,
    ...(process.env['MALLOC_ARENA_MAX'] === undefined
      ? {}
      : { mallocArenaMax: process.env['MALLOC_ARENA_MAX'] }),
  };
}

/**
 * The data plane's connect deadline to a next hop (src/dataplane/upstreams.ts, `connectTimeoutMs`' default):
 * past it, the hop in front answers the protocol's temporary error (CX_UPSTREAM_CONNECT_TIMEOUT).
 */
const upstreamConnectDeadlineMs = 10_000;
/** How often, and for how long after a restart, `recoveryOf` opens a connection to the restarted server. */
const recoveryProbeEveryMs = 250;
const recoveryProbeForMs = 2 * upstreamConnectDeadlineMs;

/**
 * When a restarted server can take new connections in time again (classify.ts `FaultWindow.recoveredMs`).
 * Right after its restart it shakes hands with every client the stop cut off, which all come back within
 * their Retry-After, and opens a new connection to its own next hop for each: in the lab, full TLS
 * handshakes on the one thread every server shares. A hop that connects to it meanwhile waits its turn and
 * may give up at its connect deadline. So: a connection as a server of the estate opens (127.0.0.2, a
 * client certificate, the lab CA) every `recoveryProbeEveryMs` for `recoveryProbeForMs`; the server has
 * recovered from just after the last probe whose handshake did not finish within the deadline (its
 * restart, when every one did).
 */
async function recoveryOf(lab: Lab, index: EstateIndex, name: string, restartedMs: number): Promise<number> {
  const server = index.server(name);
  const to = server && lab.resolve(server.fqdn, 443);
  if (!server || !to) return restartedMs;
  const cert = lab.ca.issue([server.fqdn], { serverAuth: false, clientAuth: true });
  const probe = (): Promise<{ startMs: number; inTime: boolean }> =>
    new Promise((resolve) => {
      const startMs = Date.now();
      // tls.connect takes no local address: the TCP connection is made first, from the servers' address.
      const tcp = netConnect({ host: to.address, port: to.port, localAddress: labAddresses.servers });
      const socket = tlsConnect({
        socket: tcp,
        servername: server.fqdn,
        ca: lab.ca.certPem,
        cert: cert.certPem,
        key: cert.keyPem,
      });
      const done = (inTime: boolean): void => {
        clearTimeout(timer);
        socket.destroy();
        tcp.destroy();
        resolve({ startMs, inTime });
      };
      const timer = setTimeout(() => done(false), upstreamConnectDeadlineMs);
      socket.once('secureConnect', () => done(true));
      socket.once('error', () => done(false));
      tcp.once('error', () => done(false));
    });
  const probes: Promise<{ startMs: number; inTime: boolean }>[] = [];
  while (Date.now() < restartedMs + recoveryProbeForMs) {
    probes.push(probe());
    await new Promise((r) => setTimeout(r, recoveryProbeEveryMs));
  }
  const late = (await Promise.all(probes)).filter((p) => !p.inTime).map((p) => p.startMs);
  return late.length === 0 ? restartedMs : Math.max(...late) + recoveryProbeEveryMs;
}

/** Slowloris connections held at a time: more for a longer run, 20 to 100. */
const slowlorisCount = (durationMs: number): number =>
  Math.min(100, Math.max(20, Math.round(durationMs / 6_000)));

interface WarmUpInput {
  readonly devices: readonly Device[];
  readonly endpoint: LabEndpoint;
  readonly base: Record<string, unknown>;
  readonly authorization: Record<string, string>;
  readonly cycle: number;
  /** The load's children, each started afresh by the load's own `start`. */
  readonly children: { readonly pinger: Child; readonly traffic: Child; readonly attacker: Child };
}

/**
 * One warm-up cycle, by the load's children: the mixed traffic runs throughout; every device sends a Ping
 * at the load's ramp rate; once the lab holds all of them, slowloris and brute force run for one and a half
 * head deadlines (each slowloris connection is cut once); then every held Ping is answered (Lab.releasePings)
 * and everything stops. No fault, so every answer must be right.
 */
async function warmUpCycle(
  lab: Lab,
  plan: SoakPlan,
  c: Context,
  w: WarmUpInput,
): Promise<{ observations: Observation[]; pingsHeld: number }> {
  const { options } = plan;
  const { pinger, traffic, attacker } = w.children;
  const began = performance.now();
  c.progress(`warm-up cycle ${w.cycle}: ${w.devices.length} Pings at ${plan.pingRatePerSecond} a second`);
  await traffic.ask('start', { ...w.base, seed: options.seed + w.cycle, pauseMs: 200 });
  await pinger.ask('start', {
    lab: w.endpoint,
    devices: w.devices,
    ratePerSecond: plan.pingRatePerSecond,
    holdMs: plan.pingHoldMs,
    loadEndMs: 0,
    seed: options.seed + w.cycle,
    authorization: w.authorization,
    once: true,
  });
  // Every device's Ping held, or already answered at the end of its hold when the ramp takes longer than a
  // hold (as in the load); a Ping refused on the way is sent again, so all of them get there.
  const rampMs = (w.devices.length / plan.pingRatePerSecond) * 1000;
  const allThere = async (): Promise<boolean> => {
    const { answered } = await pinger.ask<{ answered: number }>('count');
    return answered + lab.heldPings() >= w.devices.length;
  };
  if (!(await until(allThere, 3 * rampMs + 60_000)))
    c.progress(`warm-up cycle ${w.cycle}: not every device's Ping got to its mailbox`);
  await attacker.ask('start', {
    lab: w.endpoint,
    host: primaryHost,
    slowloris: { connections: slowlorisCount(options.durationMs), source: '127.0.40.1' },
    bruteForce: { user: c.bruteForceUser, source: '127.0.41.1', perSecond: 10 },
  });
  await new Promise((r) => setTimeout(r, Math.round(c.headTimeoutMs * 1.5)));
  await attacker.ask('stop');
  lab.releasePings();
  await pinger.ask('drain');
  await traffic.ask('stop');
  const pings = await pinger.ask<{ observations: Observation[] }>('observations');
  const mixed = await traffic.ask<{ observations: Observation[] }>('observations');
  const pingsHeld = pings.observations.filter((o) => o.status === 200).length;
  const took = ((performance.now() - began) / 1000).toFixed(1);
  c.progress(`warm-up cycle ${w.cycle}: ${pingsHeld} Pings held and answered in ${took} s`);
  return { observations: [...pings.observations, ...mixed.observations], pingsHeld };
}
