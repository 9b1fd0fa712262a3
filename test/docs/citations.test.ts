/**
 * Every citation of the project's own reference points at something that exists: `docs/flows.md <ID>`
 * (with `step N` or `steps N-M` within the flow's numbered steps) or `docs/flows.md "<heading>"`, and
 * `docs/protocols.md §N[.M]` / `docs/lab.md §N[.M]` (with `rule N` and `Table A|B` where given). The
 * citations are read from the sources, bench, scripts, tests, goldens, README, docs, examples and schema;
 * documents outside the repository (the old `protocol-facts`, a `flows.md` without `docs/`, lab notes,
 * a `shared/` folder) may not be cited at all. Then the engine runs every flow of the demo estates, under
 * every policy and from every namespace, and each reason's `source`, which `coexist trace` shows to users,
 * must cite an existing section.
 *
 * COEXIST_DOCS_ROOT points the whole check (files and engine) at another checkout; default: this one.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as ConfigModule from '../../src/config/index.ts';
import type { Policies } from '../../src/core/estate/estate.ts';
import type * as ProtocolModule from '../../src/core/protocols/protocol.ts';
import type * as FlowModule from '../../src/core/routing/flow.ts';

const root = process.env['COEXIST_DOCS_ROOT'] ?? fileURLToPath(new URL('../../', import.meta.url));

// ---------------------------------------------------------------------------------------------------
// The documents

interface Section {
  readonly heading: string;
  readonly body: string;
}

const headingLine = /^(#{1,4})\s+(.+?)\s*$/;

/** Headings of a markdown document with the text up to the next heading (code fences skipped). */
function sectionsOf(text: string): Section[] {
  const out: { heading: string; body: string[] }[] = [];
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const h = fenced ? null : headingLine.exec(line);
    if (h?.[2] !== undefined) out.push({ heading: h[2], body: [] });
    else out.at(-1)?.body.push(line);
  }
  return out.map((s) => ({ heading: s.heading, body: s.body.join('\n') }));
}

/** `## 2. Proxy or redirect`, `### 2.1 Ground rules`: numbered sections by number. */
function numbered(text: string): Map<string, Section> {
  const map = new Map<string, Section>();
  for (const s of sectionsOf(text)) {
    const m = /^(\d+(?:\.\d+)*)\.?\s/.exec(s.heading);
    if (m?.[1] !== undefined) map.set(m[1], s);
  }
  return map;
}

const flowId = /^[A-Z][A-Z0-9]*-[A-Za-z0-9]+$/;

interface FlowsDoc {
  /** Flow id (first word of a heading) -> the number of its numbered steps. */
  readonly ids: Map<string, number>;
  readonly headings: readonly string[];
}

function flowsDoc(text: string): FlowsDoc {
  const ids = new Map<string, number>();
  const headings: string[] = [];
  for (const s of sectionsOf(text)) {
    headings.push(s.heading);
    const first = s.heading.split(/\s+/)[0] ?? '';
    if (flowId.test(first)) {
      const steps = [...s.body.matchAll(/^(\d+)\.\s/gm)].map((m) => Number(m[1]));
      ids.set(first, Math.max(0, ...steps));
    }
  }
  return { ids, headings };
}

function readDoc(name: string): string {
  const path = join(root, 'docs', name);
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

const flows = flowsDoc(readDoc('flows.md'));
const sectioned: Record<'protocols' | 'lab', Map<string, Section>> = {
  protocols: numbered(readDoc('protocols.md')),
  lab: numbered(readDoc('lab.md')),
};

// ---------------------------------------------------------------------------------------------------
// Citations

/** Documents that are not in the repository; citing them is an error wherever it happens. */
const outside: readonly (readonly [RegExp, string])[] = [
  [/protocol-facts/, 'protocol-facts (now docs/protocols.md)'],
  [/(?<![\w/.-])flows\.md/, 'flows.md without docs/ (now docs/flows.md)'],
  [/\blab[ -]notes\b/, 'lab notes (now docs/lab.md)'],
  [/\bshared\//, 'a shared/ folder outside the repository'],
];

/** The problems of the citations in a text, one sentence each. */
type Check = (text: string) => string[];

/** The clause after a citation: up to `;`, a line end, a quote, an unbalanced `)` or the next citation. */
function clauseAfter(text: string, from: number): string {
  let depth = 0;
  let i = from;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '\n' || c === ';' || c === "'" || c === '"' || c === '`') break;
    if (text.startsWith('docs/', i)) break;
    if (c === '(') depth++;
    if (c === ')' && --depth < 0) break;
  }
  return text.slice(from, i);
}

const checkFlows: Check = (text) => {
  const problems: string[] = [];
  const cite =
    /docs\/flows\.md(?:\s+(?:"([^"\n]+)"|([A-Za-z][A-Za-z0-9]*-[A-Za-z0-9]+)))?(?:\s+steps?\s+(\d+)(?:\s*-\s*(\d+))?)?/g;
  for (const m of text.matchAll(cite)) {
    const [whole, title, id, from, to] = m;
    if (title !== undefined) {
      const t = title.toLowerCase();
      const found = flows.headings.some((h) => {
        const l = h.toLowerCase();
        return l === t || l.startsWith(t + ' ');
      });
      if (!found) problems.push(`${whole}: docs/flows.md has no heading "${title}"`);
    }
    if (id !== undefined) {
      const steps = flows.ids.get(id);
      if (steps === undefined) problems.push(`${whole}: docs/flows.md has no flow ${id}`);
      else {
        const last = Number(to ?? from ?? 0);
        if (last > steps) problems.push(`${whole}: ${id} has ${steps} numbered steps in docs/flows.md`);
      }
    }
  }
  return problems;
};

function checkSectioned(doc: 'protocols' | 'lab'): Check {
  const sections = sectioned[doc];
  return (text) => {
    const problems: string[] = [];
    for (const m of text.matchAll(new RegExp(`docs/${doc}\\.md`, 'g'))) {
      const clause = clauseAfter(text, (m.index ?? 0) + m[0].length);
      // § of another document named in the same clause (MS-ASHTTP §2.2.1, RFC 9110 §7.6.1) is not ours.
      for (const s of clause.matchAll(/(?<!(?:MS-[A-Z]+|RFC ?\d+|WBXML)\s?)§(\d+(?:\.\d+)*)/g)) {
        const n = s[1] ?? '';
        const section = sections.get(n);
        const where = `docs/${doc}.md §${n}`;
        if (!section) {
          problems.push(`${where}: no such section`);
          continue;
        }
        const after = clause.slice((s.index ?? 0) + s[0].length);
        const rule = /^\s+rules?\s+(\d+)/.exec(after);
        if (rule && !new RegExp(`^${rule[1]}\\.\\s`, 'm').test(section.body))
          problems.push(`${where} rule ${rule[1]}: the section has no item ${rule[1]}`);
        const table = /^\s+Table ([A-Z])\b/.exec(after);
        if (table && !section.heading.includes(`Table ${table[1]}`))
          problems.push(`${where} Table ${table[1]}: the section is "${section.heading}"`);
      }
    }
    return problems;
  };
}

const checks: readonly Check[] = [
  (text) => outside.filter(([re]) => re.test(text)).map(([, what]) => `cites ${what}`),
  checkFlows,
  checkSectioned('protocols'),
  checkSectioned('lab'),
];

/** Every problem of every citation in `text`, with the line it is on. */
function problemsIn(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    // A citation may run onto the next line of a comment ("docs/lab.md\n * §1.3"): look at two lines.
    const pair = line.trimEnd().endsWith('.md')
      ? `${line} ${lines[i + 1]?.replace(/^\s*(?:\*|#|\/\/)?\s*/, '') ?? ''}`
      : line;
    for (const check of checks) for (const p of check(pair)) out.push(`line ${i + 1}: ${p}`);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The files

const scanned = [
  '.ts',
  '.mts',
  '.mjs',
  '.js',
  '.cjs',
  '.sh',
  '.md',
  '.txt',
  '.yaml',
  '.yml',
  '.json',
  '.mmd',
];

function walk(dir: string, out: string[]): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (scanned.includes(extname(name))) out.push(path);
  }
  return out;
}

function filesToScan(): string[] {
  const files = ['src', 'bench', 'scripts', 'test', 'docs', 'examples'].flatMap((d) =>
    walk(join(root, d), []),
  );
  for (const f of ['README.md', '.ci/run', 'schema/estate.schema.json'])
    if (existsSync(join(root, f))) files.push(join(root, f));
  // This test names the old forms on purpose; lint fixtures are deliberately broken code.
  const own = join('test', 'docs') + sep;
  return files.filter((f) => {
    const rel = relative(root, f);
    return !rel.startsWith(own) && !rel.startsWith(join('test', 'lint', 'fixtures') + sep);
  });
}

describe('docs: the reference documents', () => {
  test('docs/flows.md, docs/protocols.md and docs/lab.md exist and have their sections', () => {
    for (const id of ['EAS-1', 'EAS-2', 'EAS-3A', 'EAS-3B', 'EAS-legacy', 'EWS-1', 'EWS-2'])
      assert.ok(flows.ids.has(id), `docs/flows.md has no heading for ${id}`);
    for (const n of ['1', '2.1', '2.2', '2.8', '3', '3.1', '4.1', '4.10', '5.3', '6', '7', '8', '9'])
      assert.ok(sectioned.protocols.has(n), `docs/protocols.md has no §${n}`);
    assert.ok(sectioned.lab.size > 0, 'docs/lab.md has numbered sections');
  });

  test('every citation in the repository points at an existing section, and none at an outside document', () => {
    const problems: string[] = [];
    for (const file of filesToScan()) {
      for (const p of problemsIn(readFileSync(file, 'utf8'))) problems.push(`${relative(root, file)} ${p}`);
    }
    assert.deepEqual(problems, []);
  });
});

// ---------------------------------------------------------------------------------------------------
// The engine's reasons

async function load<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(join(root, path)).href)) as T;
}

describe('docs: every Reason.source the engine gives cites an existing section', () => {
  test('all flows of both demo estates, under every policy, from every namespace', async () => {
    const config = await load<typeof ConfigModule>('src/config/index.ts');
    const { traceFlow } = await load<typeof FlowModule>('src/core/routing/flow.ts');
    const { protocols, alwaysExternal } = await load<typeof ProtocolModule>('src/core/protocols/protocol.ts');
    const overrides: readonly Partial<Policies>[] = [
      {},
      { activesyncCrossSite: 'redirect-451' },
      { autodiscoverLegacy: 'proxy-to-mailbox' },
      { mobileAutodiscover: 'primary-namespace' },
      { owaRedirectStyle: 'silent-fba' },
    ];
    const sources = new Map<string, string>();
    for (const file of ['examples/o365info.yaml', 'examples/o365info-2010.yaml']) {
      const { index } = await config.loadEstate(join(root, file));
      const hosts = [undefined, ...index.estate.namespaces.map((n) => n.host)];
      for (const o of overrides) {
        const policies: Policies = { ...index.estate.policies, ...o };
        for (const user of index.estate.users)
          for (const protocol of protocols)
            for (const client of alwaysExternal(protocol)
              ? (['external'] as const)
              : (['external', 'internal'] as const))
              for (const host of hosts) {
                const flow = traceFlow(
                  index,
                  { user: user.address, protocol, client, ...(host && { host }) },
                  policies,
                );
                for (const step of flow.steps)
                  for (const r of step.reasons)
                    if (!sources.has(r.source))
                      sources.set(r.source, `${r.rule} (${file}, ${user.address} ${protocol})`);
              }
      }
    }
    assert.ok(sources.size > 10, `only ${sources.size} distinct sources`);
    const problems: string[] = [];
    for (const [source, where] of sources) {
      if (!/docs\/flows\.md\s+("|[A-Za-z][A-Za-z0-9]*-)|docs\/(protocols|lab)\.md[^;]*§\d/.test(source))
        problems.push(
          `${where}: "${source}" names no section of docs/flows.md, docs/protocols.md or docs/lab.md`,
        );
      for (const check of checks) for (const p of check(source)) problems.push(`${where}: "${source}": ${p}`);
    }
    assert.deepEqual(problems, []);
  });
});
