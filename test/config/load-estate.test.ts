/**
 * The estate loader. Each file in test/fixtures/configs/bad/ declares, in `# expect: CODE PATH [LINE:COL]`
 * comment lines (PATH `-` for the file as a whole), exactly the problems it must produce: no more, no fewer.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { ConfigProblem } from '../../src/config/index.ts';
import {
  EstateConfigError,
  estateFileSchema,
  formatConfigProblems,
  loadEstate,
  parseEstate,
  toEstate,
} from '../../src/config/index.ts';
import type { EstatePath } from '../../src/config/check-estate.ts';
import { pathToString } from '../../src/config/check-estate.ts';
import { positionsOf } from '../../src/config/load-estate.ts';
import { CoexistError } from '../../src/core/errors.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = join(root, 'test/fixtures/configs');
const examples = ['examples/o365info.yaml', 'examples/o365info-2010.yaml'];

interface Expected {
  readonly key: string;
  readonly position?: string;
}

function expectations(text: string): Expected[] {
  const out: Expected[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break;
    const m = /^# expect: (CX_[A-Z_]+) (\S+)(?: (\d+:\d+))?\s*$/.exec(line);
    if (line.startsWith('# expect:') && !m) assert.fail(`malformed expect line: ${line}`);
    if (m) out.push({ key: `${m[1]} ${m[2]}`, ...(m[3] !== undefined && { position: m[3] }) });
  }
  return out;
}

async function problemsOf(file: string): Promise<readonly ConfigProblem[]> {
  try {
    await loadEstate(file);
    return [];
  } catch (e) {
    if (e instanceof EstateConfigError) return e.problems;
    throw e;
  }
}

const keyOf = (p: ConfigProblem): string => `${p.code} ${p.path === '' ? '-' : p.path}`;
const positionOf = (p: ConfigProblem): string | undefined =>
  p.line === undefined ? undefined : `${p.line}:${p.column ?? '?'}`;

const badFiles = readdirSync(join(fixtures, 'bad'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();

test('there are at least 12 broken estate fixtures', () => {
  assert.ok(badFiles.length >= 12, badFiles.join(', '));
});

for (const name of badFiles) {
  test(`bad/${name}: reports exactly the problems it declares`, async () => {
    const file = join(fixtures, 'bad', name);
    const expected = expectations(readFileSync(file, 'utf8'));
    assert.ok(expected.length > 0, 'the fixture declares no "# expect:" line');
    const problems = await problemsOf(file);
    const report = problems.map((p) => `${keyOf(p)} ${positionOf(p) ?? ''}  ${p.message}`).join('\n');
    assert.deepEqual(problems.map(keyOf).sort(), expected.map((e) => e.key).sort(), `reported:\n${report}`);
    for (const e of expected) {
      if (e.position === undefined) continue;
      const at = problems.filter((p) => keyOf(p) === e.key).map(positionOf);
      assert.ok(at.includes(e.position), `${e.key}: expected at ${e.position}, reported at ${at.join(', ')}`);
    }
    for (const p of problems) {
      assert.equal(p.file, file);
      // zod's own wording ("Invalid input", "Too small") never reaches an admin.
      assert.doesNotMatch(p.message, /Invalid input|Invalid option|Too small|Unrecognized key/, p.message);
    }
  });
}

for (const example of [...examples, 'test/fixtures/configs/good/minimal.yaml']) {
  test(`${example} loads without problems`, async () => {
    const problems = await problemsOf(join(root, example));
    assert.deepEqual(problems, []);
  });
}

test('the fast path (js-yaml) and the reference (yaml) read the examples alike', () => {
  for (const example of examples) {
    const text = readFileSync(join(root, example), 'utf8');
    const reference = toEstate(estateFileSchema.parse(parse(text)));
    assert.deepEqual(parseEstate(text, example).estate, reference);
  }
});

test('the examples become the estates the engine expects', async () => {
  const { estate } = await loadEstate(join(root, 'examples/o365info.yaml'));
  // alice, bob, carol, diego and two service accounts with the ApplicationImpersonation role.
  assert.equal(estate.users.length, 6);
  assert.equal(estate.users.find((u) => u.address === 'svc-archive@o365info.com')?.impersonation, 'all');
  const bob = estate.users.find((u) => u.address === 'bob@o365info.com');
  assert.equal(bob?.mailboxServer, 'MBX2007-NY');
  assert.equal(bob?.database, 'DB2007-NY');
  assert.deepEqual(
    estate.namespaces.map((n) => n.kind),
    ['primary', 'autodiscover', 'legacy', 'regional'],
  );
  assert.equal(estate.policies.activesyncCrossSite, 'proxy');
});

test('formatConfigProblems: the file, every path and code, line:column, and no stack trace', async () => {
  const file = join(fixtures, 'bad/several-problems.yaml');
  const err = await loadEstate(file).then(
    () => assert.fail('expected an EstateConfigError'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof EstateConfigError);
  assert.ok(err instanceof CoexistError);
  const text = formatConfigProblems(err);
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], `${file}: ${err.problems.length} problems`);
  assert.equal(lines.length, err.problems.length + 1);
  for (const [i, p] of err.problems.entries()) {
    assert.equal(lines[i + 1], `  ${file}:${p.line}:${p.column}  ${p.path}  ${p.message} [${p.code}]`);
  }
  assert.ok(!text.includes('    at '), text);
  assert.ok(text.endsWith('\n'));
  // The error's own message is the same report, so printing the error alone says everything.
  assert.equal(err.message, text.trimEnd());
});

test('problems are in file order, and the error carries the code of the first', async () => {
  const err = await loadEstate(join(fixtures, 'bad/several-problems.yaml')).catch((e: unknown) => e);
  assert.ok(err instanceof EstateConfigError);
  const lines = err.problems.map((p) => p.line ?? 0);
  assert.deepEqual(
    lines,
    [...lines].sort((a, b) => a - b),
  );
  assert.equal(err.code, err.problems[0]?.code);
});

test('a missing file gives CX_CONFIG_READ, naming the file and the reason', async () => {
  const file = join(fixtures, 'no-such-estate.yaml');
  const err = await loadEstate(file).catch((e: unknown) => e);
  assert.ok(err instanceof EstateConfigError);
  assert.equal(err.code, 'CX_CONFIG_READ');
  assert.deepEqual(
    err.problems.map((p) => [p.code, p.path, p.line]),
    [['CX_CONFIG_READ', '', undefined]],
  );
  const text = formatConfigProblems(err);
  assert.equal(
    text,
    `${file}: 1 problem\n  ${file}  cannot read the estate file: no such file (ENOENT) [CX_CONFIG_READ]\n`,
  );
});

test('parseEstate names the file it is given, and finds problems deep in a large estate', () => {
  const head = readFileSync(join(root, 'examples/o365info.yaml'), 'utf8').split('\nusers:\n')[0] as string;
  const users = Array.from(
    { length: 3000 },
    (_, i) =>
      `  - address: user${i}@o365info.com\n    mailbox: { database: ${i === 2500 ? 'DB2007-NX' : 'DB2007-NY'} }\n`,
  );
  const text = `${head}\nusers:\n${users.join('')}`;
  const line = text.split('\n').findIndex((l) => l.includes('DB2007-NX')) + 1;
  const err = (() => {
    try {
      parseEstate(text, 'generated.yaml');
    } catch (e) {
      return e;
    }
    return assert.fail('expected an EstateConfigError');
  })();
  assert.ok(err instanceof EstateConfigError);
  assert.deepEqual(
    err.problems.map((p) => [p.file, p.line, p.column, p.path, p.code]),
    [['generated.yaml', line, 26, 'users[2500].mailbox.database', 'CX_CONFIG_REFERENCE']],
  );
  assert.match(err.problems[0]?.message ?? '', /did you mean "DB2007-NY"\?/);
});

test('fixture paths in messages are relative to where they were given', async () => {
  const file = relative(process.cwd(), join(fixtures, 'bad/unknown-database.yaml'));
  const problems = await problemsOf(file);
  assert.equal(problems[0]?.file, file);
});

test('both parsers put every node and key of the examples at the same line:column', () => {
  const leafPaths = (value: unknown, path: EstatePath = []): { path: EstatePath; atKey?: boolean }[] => {
    const here = [{ path }];
    if (Array.isArray(value)) return [...here, ...value.flatMap((v, i) => leafPaths(v, [...path, i]))];
    if (typeof value === 'object' && value !== null) {
      return [
        ...here,
        ...Object.entries(value).flatMap(([k, v]) => [
          { path: [...path, k], atKey: true },
          ...leafPaths(v, [...path, k]),
        ]),
      ];
    }
    return here;
  };
  for (const example of examples) {
    const text = readFileSync(join(root, example), 'utf8');
    // Missing paths too: they fall back to the nearest existing node.
    const paths = [...leafPaths(parse(text)), { path: ['users', 0, 'upn'] }, { path: ['sites', 9, 'name'] }];
    const fast = positionsOf(text, paths, 'js-yaml');
    const reference = positionsOf(text, paths, 'yaml');
    assert.ok(paths.length > 300);
    for (const [i, p] of paths.entries()) {
      assert.deepEqual(fast[i], reference[i], `${pathToString(p.path)}${p.atKey ? ' (key)' : ''}`);
    }
  }
});
