/**
 * `npm run bench` (`--quick` for a smoke run): the routing engine's decisions per second and the estate load
 * time, each with a baseline measured in the same run. Prints one table per scenario and writes the raw
 * figures to bench/results/latest.json. Reports only: nothing here asserts a timing.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, arch, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { load as loadYaml } from 'js-yaml';
import { checkEstate, parseEstate } from '../src/config/index.ts';
import { estateFileSchema } from '../src/config/estate-schema.ts';
import { toEstate } from '../src/config/to-estate.ts';
import type { Policies } from '../src/core/estate/estate.ts';
import type { EstateIndex } from '../src/core/estate/estate-index.ts';
import { indexEstate } from '../src/core/estate/estate-index.ts';
import type { Protocol } from '../src/core/protocols/protocol.ts';
import { alwaysExternal, protocols } from '../src/core/protocols/protocol.ts';
import type { RoutingInput, ServerRef } from '../src/core/routing/decide.ts';
import { decide } from '../src/core/routing/decide.ts';
import { benchDirectory } from './directory.ts';
import { generateEstateYaml } from './generate-estate.ts';
import { benchHops } from './hops.ts';
import { benchLongPoll } from './longpoll.ts';
import { benchProxies } from './proxies.ts';
import type { Summary } from './table.ts';
import {
  canCollectGarbage,
  checksum,
  consume,
  formatInt,
  formatMs,
  formatRate,
  formatRatio,
  formatSpread,
  measurePhases,
  measureRate,
  printTable,
} from './table.ts';

const quick = process.argv.includes('--quick');
const config = quick
  ? { users: 10_000, reps: 3, minTimeMs: 150, warmupMs: 100, loadReps: 3, jsonReps: 3 }
  : { users: 100_000, reps: 3, minTimeMs: 1000, warmupMs: 500, loadReps: 3, jsonReps: 5 };
const large = { sites: 50, serversPerSite: 10, users: config.users, seed: 1 };
const decisionGoal = 1_000_000;
const loadGoalMs = 1000;

const root = new URL('../', import.meta.url);
const demoPath = fileURLToPath(new URL('examples/o365info.yaml', root));
const resultsDir = fileURLToPath(new URL('bench/results/', root));

const progress = (text: string): void => {
  process.stderr.write(`.. ${text}\n`);
};

// ---------------------------------------------------------------------------------------------------------
// Machine

const cpuList = cpus();
const machine = {
  cpu: cpuList[0]?.model.trim() ?? 'unknown',
  logicalCpus: cpuList.length,
  platform: `${platform()} ${arch()}`,
  memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
  node: process.version,
  v8: process.versions.v8,
};
console.log(
  `coexist bench, ${new Date().toISOString()}${quick ? ' (--quick: short runs, 10 000 users)' : ''}`,
);
console.log(
  `machine: ${machine.cpu}, ${machine.logicalCpus} logical CPUs, ${machine.platform}, ${machine.memoryGiB} GiB RAM`,
);
console.log(`node ${machine.node} (V8 ${machine.v8})`);
console.log(
  'Everything runs on one core: routing and loading are single-threaded JavaScript on the main thread.' +
    (canCollectGarbage ? ' A full GC runs before each repetition.' : ''),
);
console.log('');

// ---------------------------------------------------------------------------------------------------------
// Estates

progress(
  `generating the large estate (${large.sites} sites, ${large.sites * large.serversPerSite} servers, ${formatInt(large.users)} users)`,
);
const genStart = performance.now();
const largeYaml = generateEstateYaml(large);
const genMs = performance.now() - genStart;
// The same estate as JSON (which is YAML too): what an export from a directory would usually produce.
const largeJson = JSON.stringify(loadYaml(largeYaml));
const yamlMB = Buffer.byteLength(largeYaml) / 1e6;
const jsonMB = Buffer.byteLength(largeJson) / 1e6;

// ---------------------------------------------------------------------------------------------------------
// Scenario b: estate load (run first: its last index is reused by the engine scenario)

progress(`estate load: ${config.loadReps} repetitions of each loader run, then of each phase`);
let largeIndex: EstateIndex | undefined;
const loader = await measurePhases(config.loadReps, async (phase) => {
  consume((await phase('yaml', () => parseEstate(largeYaml, 'large.yaml').index)).estate.users.length);
  largeIndex = await phase('json', () => parseEstate(largeJson, 'large.json').index);
  consume(largeIndex.estate.users.length);
});
if (!largeIndex) throw new Error('unreachable: no load repetition ran');

// The loader's phases, run apart (the loader itself never computes positions for a valid file).
const phases = await measurePhases(config.loadReps, async (phase) => {
  consume(((await phase('js-yaml', () => loadYaml(largeYaml))) as { users: unknown[] }).users.length);
  const raw = await phase('JSON.parse', () => JSON.parse(largeJson) as unknown);
  const file = await phase('schema', () => estateFileSchema.parse(raw));
  const identities = new Map<string, number>();
  consume((await phase('checkEstate', () => checkEstate(file, { identities }))).length);
  const estate = await phase('toEstate', () => toEstate(file));
  consume((await phase('indexEstate', () => indexEstate(estate, { identities }))).estate.users.length);
});
const jsonParse = phaseOf(phases, 'JSON.parse');

function phaseOf(summaries: ReadonlyMap<string, Summary>, name: string): Summary {
  const found = summaries.get(name);
  if (!found) throw new Error(`no phase ${name}`);
  return found;
}
const goalCell = (s: Summary): string => `< 1 s: ${s.median < loadGoalMs ? 'met' : 'NOT met'}`;
const loadRow = (label: string, s: Summary, goal = ''): string[] => [
  label,
  formatMs(s.median),
  formatSpread(s, formatMs),
  formatRatio(s.median / jsonParse.median),
  goal,
];
const largeEstate = largeIndex.estate;
const serverCount = largeEstate.sites.reduce((n, site) => n + site.servers.length, 0);
printTable(
  `Estate load + index: ${largeEstate.sites.length} sites, ${serverCount} servers, ${formatInt(largeEstate.users.length)} users, ` +
    `${largeEstate.namespaces.length} namespaces; YAML ${yamlMB.toFixed(2)} MB, JSON ${jsonMB.toFixed(2)} MB`,
  [
    { header: 'measured' },
    { header: 'median', align: 'right' },
    { header: `spread (${config.loadReps} runs: min .. max)` },
    { header: 'vs JSON.parse', align: 'right' },
    { header: 'goal' },
  ],
  [
    ['the loader, parseEstate(text): parse, validate, check, convert, index'],
    loadRow('  estate file as YAML', phaseOf(loader, 'yaml'), goalCell(phaseOf(loader, 'yaml'))),
    loadRow('  estate file as JSON', phaseOf(loader, 'json'), goalCell(phaseOf(loader, 'json'))),
    ['its phases, run apart:'],
    loadRow('  parse YAML (js-yaml)', phaseOf(phases, 'js-yaml')),
    loadRow('  schema validation (zod)', phaseOf(phases, 'schema')),
    loadRow('  checkEstate (references, duplicates)', phaseOf(phases, 'checkEstate')),
    loadRow('  toEstate', phaseOf(phases, 'toEstate')),
    loadRow('  indexEstate (reusing the identity map)', phaseOf(phases, 'indexEstate')),
    ['baseline:'],
    loadRow('  JSON.parse of the same document', jsonParse),
  ],
  [
    'vs JSON.parse: median / the JSON.parse median of the same run.',
    `The estate text was generated in ${formatMs(genMs)} (bench/generate-estate.ts, seed ${large.seed}); not timed above.`,
    "The `yaml` package (used only to locate syntax errors) takes about 15x js-yaml's time on this file; it is not on the load path.",
  ],
);

// ---------------------------------------------------------------------------------------------------------
// Scenario a: the engine

interface EngineCase {
  readonly label: string;
  readonly index: EstateIndex;
  readonly policies: Policies;
  readonly at: ServerRef;
  readonly inputs: readonly RoutingInput[];
  /** Per input: the identity the client presented (address, alias or login, in turn), for the lookup row. */
  readonly identities: readonly string[];
  readonly users: number;
  readonly mix: string;
}

/** A new string with the same characters (not a slice or a cons of the original). */
const fresh = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

/**
 * The front end (the primary namespace's server, as a CAS) receiving every user x protocol x client location,
 * ActiveSync external only: what `coexist trace --all` walks. Hosts are the defaults a client uses.
 */
function engineCase(label: string, index: EstateIndex): EngineCase {
  const primary = index.namespaceOfKind('primary');
  const fe = primary && index.server(primary.server);
  if (!primary || !fe) throw new Error(`${label}: the estate has no primary namespace`);
  const autodiscoverHost = index.namespaceOfKind('autodiscover')?.host ?? primary.host;
  const inputs: RoutingInput[] = [];
  const identities: string[] = [];
  for (const user of index.estate.users) {
    // Fresh copies, as a request would carry them: not the index's own key strings (whose hashes V8 has cached
    // and which a Map matches by pointer), which would flatter the lookup.
    const ids = [user.address, ...user.aliases, ...(user.login === undefined ? [] : [user.login])].map(fresh);
    const mailbox = index.mailbox(user.address);
    for (const protocol of protocols as readonly Protocol[]) {
      const host = protocol === 'autodiscover' ? autodiscoverHost : primary.host;
      for (const client of alwaysExternal(protocol)
        ? (['external'] as const)
        : (['external', 'internal'] as const)) {
        identities.push(ids[inputs.length % ids.length] ?? user.address);
        inputs.push({ protocol, mailbox, client, host });
      }
    }
  }
  const at: ServerRef = { server: fe, role: 'cas' };
  const policies = index.estate.policies;
  const kinds = new Map<string, number>();
  for (const input of inputs) {
    const d = decide(at, input, index, policies);
    const k = d.kind === 'refuse' ? `refuse ${d.code}` : d.kind;
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  const mix = [...kinds]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${((n / inputs.length) * 100).toFixed(1)}%`)
    .join(', ');
  return { label, index, policies, at, inputs, identities, users: index.estate.users.length, mix };
}

/** The baseline's work per input: one Map lookup, through a function call of decide()'s shape. */
function trivial(lookup: ReadonlyMap<string, number>, input: RoutingInput): number {
  return lookup.get(input.host) ?? 0;
}

interface EngineRow {
  readonly estate: string;
  readonly measured: string;
  readonly inputs: number;
  readonly users: number;
  readonly summary: Summary;
  readonly ratioToBaseline: number;
}

function measureEngine(c: EngineCase): EngineRow[] {
  const { at, index, policies, inputs, identities } = c;
  const len = inputs.length;
  const opts = { reps: config.reps, minTimeMs: config.minTimeMs, warmupMs: config.warmupMs };

  const hosts = new Map<string, number>();
  for (const ns of index.estate.namespaces) hosts.set(ns.host, ns.server.length);
  let j = 0;
  progress(`engine, ${c.label}: baseline`);
  const baseline = measureRate(opts, (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += trivial(hosts, inputs[j] as RoutingInput);
      if (++j === len) j = 0;
    }
    return acc;
  });

  j = 0;
  progress(`engine, ${c.label}: decide()`);
  const decideOnly = measureRate(opts, (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const d = decide(at, inputs[j] as RoutingInput, index, policies);
      acc += d.reasons.length + d.kind.length;
      if (++j === len) j = 0;
    }
    return acc;
  });

  j = 0;
  progress(`engine, ${c.label}: index.mailbox() + decide()`);
  const withLookup = measureRate(opts, (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const input = inputs[j] as RoutingInput;
      const mailbox = index.mailbox(identities[j] as string);
      const d = decide(
        at,
        { protocol: input.protocol, mailbox, client: input.client, host: input.host },
        index,
        policies,
      );
      acc += d.reasons.length + d.kind.length;
      if (++j === len) j = 0;
    }
    return acc;
  });

  const row = (measured: string, summary: Summary): EngineRow => ({
    estate: c.label,
    measured,
    inputs: len,
    users: c.users,
    summary,
    ratioToBaseline: summary.median / baseline.median,
  });
  return [
    row('baseline: Map.get per input', baseline),
    row('decide()', decideOnly),
    row('index.mailbox() + decide()', withLookup),
  ];
}

const demo = parseEstate(readFileSync(demoPath, 'utf8'), demoPath).index;
const cases = [engineCase('o365info (demo)', demo), engineCase('generated large', largeIndex)];
const engineRows = cases.flatMap(measureEngine);

printTable(
  'Engine: decisions per second at the front end (one core)',
  [
    { header: 'estate' },
    { header: 'measured' },
    { header: 'inputs', align: 'right' },
    { header: 'median', align: 'right' },
    { header: `spread (${config.reps} runs: min .. max)` },
    { header: 'vs baseline', align: 'right' },
    { header: 'goal >= 1 000 000/s' },
  ],
  engineRows.map((r) => [
    r.estate,
    r.measured,
    formatInt(r.inputs),
    formatRate(r.summary.median),
    formatSpread(r.summary, formatRate),
    r.measured.startsWith('baseline')
      ? '1.0x'
      : `${formatRatio(r.ratioToBaseline)} (${(1 / r.ratioToBaseline).toFixed(0)}x slower)`,
    r.measured.startsWith('baseline') ? '' : r.summary.median >= decisionGoal ? 'met' : 'NOT met',
  ]),
  [
    ...cases.map(
      (c) =>
        `${c.label}: ${formatInt(c.users)} users x 15 (8 protocols, internal + external, ActiveSync external only) ` +
        `at ${c.at.server.name}; outcomes: ${c.mix}.`,
    ),
    `Each run >= ${formatMs(config.minTimeMs)} after ${formatMs(config.warmupMs)} of warm-up; mailboxes are resolved ` +
      'before the timed loop except in the index.mailbox() rows (identity: address, alias or login in turn, as fresh strings).',
  ],
);

// ---------------------------------------------------------------------------------------------------------
// Scenario c: latency per hop through the lab

progress('lab: latency per hop');
const hopRows = await benchHops(quick ? 300 : 2000);

// ---------------------------------------------------------------------------------------------------------
// Scenario d: the directory (LDAP on a real slapd, the cache, and the lab on LDAP against the embedded one)

progress('directory: findMailbox and authenticate, cached and uncached; the lab on LDAP');
const directoryRows = await benchDirectory(quick);

// ---------------------------------------------------------------------------------------------------------
// Scenario: coexist against nginx, HAProxy and nginx + auth_request, with wrk on loopback

progress('proxies: wrk through nginx, HAProxy, nginx + auth_request and coexist');
const proxyRows = await benchProxies(quick);

// ---------------------------------------------------------------------------------------------------------
// Scenario: idle long polls (ActiveSync Ping held through coexist and nginx; RSS per held request)

progress('long poll: Pings held through nginx and coexist');
const longPollRows = await benchLongPoll(quick);

// ---------------------------------------------------------------------------------------------------------
// Raw figures

const raw = (s: Summary): Record<string, unknown> => ({
  median: s.median,
  min: s.min,
  max: s.max,
  spreadPct: s.spreadPct,
  samples: s.samples,
});
const rawPhases = (phases: ReadonlyMap<string, Summary>): Record<string, unknown> =>
  Object.fromEntries([...phases].map(([k, s]) => [k, raw(s)]));
mkdirSync(resultsDir, { recursive: true });
const results = {
  date: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  machine,
  gcBetweenRepetitions: canCollectGarbage,
  largeEstate: {
    ...large,
    servers: serverCount,
    namespaces: largeEstate.namespaces.length,
    yamlBytes: Buffer.byteLength(largeYaml),
    jsonBytes: Buffer.byteLength(largeJson),
    generateMs: genMs,
  },
  load: {
    unit: 'ms',
    goalMs: loadGoalMs,
    loader: rawPhases(loader),
    phases: rawPhases(phases),
  },
  engine: {
    unit: 'decisions/s',
    goal: decisionGoal,
    minTimeMs: config.minTimeMs,
    rows: engineRows.map((r) => ({
      estate: r.estate,
      measured: r.measured,
      inputs: r.inputs,
      users: r.users,
      ...raw(r.summary),
      ratioToBaseline: r.ratioToBaseline,
    })),
    mix: Object.fromEntries(cases.map((c) => [c.label, c.mix])),
  },
  hops: { unit: 'ms', rows: hopRows },
  directory: { unit: 'ms (latencies), calls/s (perSecond)', rows: directoryRows },
  proxies: { unit: 'requests/s (requestsPerSecond), ms (p50Ms, p99Ms)', rows: proxyRows },
  longPoll: { unit: 'bytes (RSS), ms (rampMs)', rows: longPollRows },
  checksum: checksum(),
};
const resultsFile = new URL('latest.json', pathToFileURL(resultsDir));
writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
console.log(`Raw figures: bench/results/latest.json (checksum ${checksum()})`);
