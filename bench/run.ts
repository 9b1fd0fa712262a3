/**
 * `npm run bench` (`--quick` for a smoke run): the routing engine's decisions per second and the estate load
 * time, each with a baseline measured in the same run. Prints one table per scenario and writes the raw
 * figures to bench/results/latest.json. Reports only: nothing here asserts a timing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, arch, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { estateFileSchema } from '../src/config/estate-schema.ts';
import { toEstate } from '../src/config/to-estate.ts';
import type { Estate, Policies } from '../src/core/estate/estate.ts';
import type { EstateIndex } from '../src/core/estate/estate-index.ts';
import { indexEstate } from '../src/core/estate/estate-index.ts';
import type { Protocol } from '../src/core/protocols/protocol.ts';
import { alwaysExternal, protocols } from '../src/core/protocols/protocol.ts';
import type { RoutingInput, ServerRef } from '../src/core/routing/decide.ts';
import { decide } from '../src/core/routing/decide.ts';
import { generateEstateYaml } from './generate-estate.ts';
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
  measureTime,
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
const loaderPath = fileURLToPath(new URL('src/config/load-estate.ts', root));
const checkPath = fileURLToPath(new URL('src/config/check-estate.ts', root));
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

interface Loaded {
  readonly estate: Estate;
  readonly index: EstateIndex;
}

function loadPipeline(text: string): Loaded {
  const estate = toEstate(estateFileSchema.parse(parseYaml(text)));
  return { estate, index: indexEstate(estate) };
}

progress(
  `generating the large estate (${large.sites} sites, ${large.sites * large.serversPerSite} servers, ${formatInt(large.users)} users)`,
);
const genStart = performance.now();
const largeYaml = generateEstateYaml(large);
const genMs = performance.now() - genStart;
const yamlMB = Buffer.byteLength(largeYaml) / 1e6;

// ---------------------------------------------------------------------------------------------------------
// Scenario b: estate load (run first: its last repetition's index is reused by the engine scenario)

progress(
  `estate load: ${config.loadReps} repetitions of yaml.parse + validate + toEstate + indexEstate (${yamlMB.toFixed(1)} MB)`,
);
let largeLoaded: Loaded | undefined;
/** The last repetition's parsed document, kept only until the JSON baseline has serialized it. */
const kept: { raw?: unknown } = {};
const pipeline = await measurePhases(config.loadReps, async (phase) => {
  delete kept.raw;
  const raw = await phase('yaml', () => parseYaml(largeYaml) as unknown);
  const file = await phase('schema', () => estateFileSchema.parse(raw));
  const estate = await phase('toEstate', () => toEstate(file));
  const index = await phase('indexEstate', () => indexEstate(estate));
  consume(index.estate.users.length);
  largeLoaded = { estate, index };
  kept.raw = raw;
});
if (!largeLoaded) throw new Error('unreachable: no load repetition ran');

progress('baseline: JSON.parse of the same document');
const jsonText = JSON.stringify(kept.raw);
delete kept.raw;
const jsonMB = Buffer.byteLength(jsonText) / 1e6;
const jsonParse = measureTime(
  config.jsonReps,
  () => (JSON.parse(jsonText) as { users: unknown[] }).users.length,
);

type Measured<T> =
  { readonly status: 'measured'; readonly value: T } | { readonly status: 'skipped'; readonly note: string };

/** Import a module that may not exist yet (the loader is being written); undefined members are reported. */
async function importOptional(specifier: string, label: string): Promise<Record<string, unknown> | string> {
  try {
    return (await import(specifier)) as Record<string, unknown>;
  } catch (e) {
    return `${label} failed to import: ${firstLine(e)}`;
  }
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return text.split('\n')[0] ?? text;
}

/** The full loader (src/config/load-estate.ts, parseEstate) and, apart, the phases of its fast path. */
async function measureFullLoader(): Promise<{
  loader: Measured<Map<string, Summary>>;
  inside: Measured<Map<string, Summary>>;
}> {
  const skipped = (note: string): Measured<never> => ({ status: 'skipped', note });
  if (!existsSync(loaderPath)) {
    const note = 'src/config/load-estate.ts does not exist yet: full loader not measured.';
    return { loader: skipped(note), inside: skipped('') };
  }
  const mod = await importOptional(pathToFileURL(loaderPath).href, 'src/config/load-estate.ts');
  if (typeof mod === 'string') return { loader: skipped(mod), inside: skipped('') };
  if (typeof mod.parseEstate !== 'function') {
    return {
      loader: skipped('src/config/load-estate.ts does not export parseEstate(text, fileName).'),
      inside: skipped(''),
    };
  }
  const parseEstate = mod.parseEstate as (text: string, fileName: string) => Estate;
  let loader: Measured<Map<string, Summary>>;
  try {
    progress(`full loader: ${config.loadReps} repetitions of parseEstate() + indexEstate`);
    loader = {
      status: 'measured',
      value: await measurePhases(config.loadReps, async (phase) => {
        const estate = await phase('parseEstate', () => parseEstate(largeYaml, 'bench-large.yaml'));
        consume((await phase('indexEstate', () => indexEstate(estate))).estate.users.length);
      }),
    };
  } catch (e) {
    return {
      loader: skipped(`parseEstate() threw on the generated estate: ${firstLine(e)}`),
      inside: skipped(''),
    };
  }

  // The loader's fast path as of this writing: js-yaml, the schema, checkEstate, toEstate.
  const jsYaml = await importOptional('js-yaml', 'js-yaml');
  const check = await importOptional(pathToFileURL(checkPath).href, 'src/config/check-estate.ts');
  if (typeof jsYaml === 'string' || typeof check === 'string') {
    return { loader, inside: skipped(typeof jsYaml === 'string' ? jsYaml : (check as string)) };
  }
  const load = jsYaml.load;
  const checkEstate = check.checkEstate;
  if (typeof load !== 'function' || typeof checkEstate !== 'function') {
    return {
      loader,
      inside: skipped('js-yaml load() or checkEstate() not found: loader phases not measured.'),
    };
  }
  progress(`full loader's phases: ${config.loadReps} repetitions`);
  const inside = await measurePhases(config.loadReps, async (phase) => {
    const raw = await phase('js-yaml', () => (load as (text: string) => unknown)(largeYaml));
    const file = await phase('schema', () => estateFileSchema.parse(raw));
    const problems = await phase('checkEstate', () => (checkEstate as (f: unknown) => unknown[])(file));
    consume(problems.length + (await phase('toEstate', () => toEstate(file))).users.length);
  });
  return { loader, inside: { status: 'measured', value: inside } };
}
const full = await measureFullLoader();

const phaseOf = (phases: ReadonlyMap<string, Summary>, name: string): Summary => {
  const s = phases.get(name);
  if (!s) throw new Error(`no phase ${name}`);
  return s;
};
const goalCell = (s: Summary): string => `< 1 s: ${s.median < loadGoalMs ? 'met' : 'NOT met'}`;
const loadRow = (label: string, s: Summary, of: Summary | undefined, goal = ''): string[] => [
  label,
  formatMs(s.median),
  formatSpread(s, formatMs),
  of ? `${((s.median / of.median) * 100).toFixed(0)}%` : '',
  formatRatio(s.median / jsonParse.median),
  goal,
];
const pipelineTotal = phaseOf(pipeline, 'total');
const loadRows: string[][] = [
  ['reference pipeline (yaml package):'],
  loadRow('  YAML parse (yaml.parse)', phaseOf(pipeline, 'yaml'), pipelineTotal),
  loadRow('  schema validation (estateFileSchema.parse)', phaseOf(pipeline, 'schema'), pipelineTotal),
  loadRow('  toEstate', phaseOf(pipeline, 'toEstate'), pipelineTotal),
  loadRow('  indexEstate', phaseOf(pipeline, 'indexEstate'), pipelineTotal),
  loadRow('  = parse + validate + toEstate + index', pipelineTotal, pipelineTotal, goalCell(pipelineTotal)),
  ['full loader (src/config/load-estate.ts):'],
];
const loadNotes: string[] = [];
if (full.loader.status === 'measured') {
  const l = full.loader.value;
  const lt = phaseOf(l, 'total');
  loadRows.push(
    loadRow('  parseEstate(text, fileName)', phaseOf(l, 'parseEstate'), lt),
    loadRow('  indexEstate', phaseOf(l, 'indexEstate'), lt),
    loadRow('  = parseEstate + indexEstate', lt, lt, goalCell(lt)),
  );
  if (full.inside.status === 'measured') {
    const i = full.inside.value;
    const it = phaseOf(i, 'total');
    loadRows.push(
      ["  inside parseEstate, its fast path's phases (measured apart; share of their sum):"],
      loadRow('    YAML parse (js-yaml load)', phaseOf(i, 'js-yaml'), it),
      loadRow('    schema validation', phaseOf(i, 'schema'), it),
      loadRow('    checkEstate', phaseOf(i, 'checkEstate'), it),
      loadRow('    toEstate', phaseOf(i, 'toEstate'), it),
    );
  } else if (full.inside.note) {
    loadNotes.push(full.inside.note);
  }
} else {
  loadRows.push(['  parseEstate(text, fileName)', 'skipped']);
  loadNotes.push(full.loader.note);
}
loadRows.push(
  ['baseline:'],
  [
    '  JSON.parse of the same document',
    formatMs(jsonParse.median),
    formatSpread(jsonParse, formatMs),
    '',
    '1.0x',
    '',
  ],
);
const largeEstate = largeLoaded.estate;
const serverCount = largeEstate.sites.reduce((n, s) => n + s.servers.length, 0);
printTable(
  `Estate load: ${largeEstate.sites.length} sites, ${serverCount} servers, ${formatInt(largeEstate.users.length)} users, ` +
    `${largeEstate.namespaces.length} namespaces; YAML ${yamlMB.toFixed(2)} MB (as JSON ${jsonMB.toFixed(2)} MB)`,
  [
    { header: 'phase' },
    { header: 'median', align: 'right' },
    { header: `spread (${config.loadReps} runs: min .. max)` },
    { header: 'share', align: 'right' },
    { header: 'vs JSON.parse', align: 'right' },
    { header: 'goal' },
  ],
  loadRows,
  [
    ...loadNotes,
    `share: of the group's total (median). vs JSON.parse: median / JSON.parse median (${config.jsonReps} runs).`,
    `The estate text was generated in ${formatMs(genMs)} (bench/generate-estate.ts, seed ${large.seed}); not timed above.`,
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

const demo = loadPipeline(readFileSync(demoPath, 'utf8'));
const cases = [engineCase('o365info (demo)', demo.index), engineCase('generated large', largeLoaded.index)];
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
    jsonBytes: Buffer.byteLength(jsonText),
    generateMs: genMs,
  },
  load: {
    unit: 'ms',
    goalMs: loadGoalMs,
    pipeline: rawPhases(pipeline),
    fullLoader:
      full.loader.status === 'measured' ? rawPhases(full.loader.value) : { skipped: full.loader.note },
    fullLoaderFastPath:
      full.inside.status === 'measured'
        ? rawPhases(full.inside.value)
        : { skipped: full.inside.note || 'not measured' },
    jsonParse: raw(jsonParse),
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
  checksum: checksum(),
};
const resultsFile = new URL('latest.json', pathToFileURL(resultsDir));
writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
console.log(`Raw figures: bench/results/latest.json (checksum ${checksum()})`);
