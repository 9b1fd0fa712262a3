/**
 * The import fences hold. Each file under test/lint/fixtures/ breaks them on purpose: ESLint (src/core is
 * pure and imports only src/core, eslint.config.js) and dependency-cruiser (the arrows between folders
 * and no cycles, .dependency-cruiser.cjs) must report every break with the rule meant for it, and nothing
 * else; the real tree must pass both.
 */
import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ICruiseResult } from 'dependency-cruiser';
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { ESLint } from 'eslint';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

describe('ESLint: src/core is pure', () => {
  const eslint = new ESLint({ cwd: root });

  /** Lint a fixture's text as if it were `path` of the real tree: each problem as `rule name`. */
  async function lintAs(path: string, fixture: string): Promise<string[]> {
    const text = await readFile(join(fixtures, fixture), 'utf8');
    const [result] = await eslint.lintText(text, { filePath: join(root, path) });
    assert.ok(result);
    return result.messages
      .map((m) => `${m.ruleId ?? 'fatal'} ${/['"]([^'"]+)['"]/.exec(m.message)?.[1] ?? m.message}`)
      .sort();
  }

  it('reports every import that leaves src/core: packages, node: modules, other folders, re-exports', async () => {
    assert.deepEqual(await lintAs('src/core/imports-outside.ts', 'src/core/imports-outside.ts'), [
      'coexist/core-imports-only-core ../dataplane/forward.ts',
      'coexist/core-imports-only-core ../lab/lab.ts',
      'coexist/core-imports-only-core node:fs',
      'coexist/core-imports-only-core undici',
    ]);
  });

  it('holds at any depth of src/core: ../ is allowed only while it stays inside', async () => {
    const text =
      "import { x } from '../../dataplane/forward.ts';\nimport { y } from '../estate/estate.ts';\n";
    const [result] = await eslint.lintText(`${text}export const uses = [x, y];\n`, {
      filePath: join(root, 'src/core/routing/fixture.ts'),
    });
    assert.deepEqual(
      result?.messages.map((m) => [m.ruleId, m.line]),
      [['coexist/core-imports-only-core', 1]],
    );
  });

  it('reports the clock, timers, the network, randomness and the process', async () => {
    assert.deepEqual(await lintAs('src/core/impure-globals.ts', 'src/core/impure-globals.ts'), [
      'no-restricted-globals Date',
      'no-restricted-globals crypto',
      'no-restricted-globals fetch',
      'no-restricted-globals performance',
      'no-restricted-globals process',
      'no-restricted-globals setTimeout',
      'no-restricted-properties Math.random',
    ]);
  });

  it('fences src/core only: the same code elsewhere, and core tests, may import anything', async () => {
    assert.deepEqual(await lintAs('src/dataplane/fixture.ts', 'src/core/imports-outside.ts'), []);
    assert.deepEqual(await lintAs('src/dataplane/fixture.ts', 'src/core/impure-globals.ts'), []);
    assert.deepEqual(await lintAs('src/core/fixture.test.ts', 'src/core/imports-outside.ts'), []);
  });

  it('passes on the real src/core', async () => {
    const results = await eslint.lintFiles(['src/core']);
    const problems = results.flatMap((r) => r.messages.map((m) => `${r.filePath}:${m.line} ${m.ruleId}`));
    assert.deepEqual(problems, []);
  });
});

describe('dependency-cruiser: the arrows between folders, no cycles', () => {
  const options = extractDepcruiseOptions(join(root, '.dependency-cruiser.cjs'));

  async function violations(baseDir: string, dirs: string[]): Promise<string[]> {
    const { output } = await cruise(dirs, { ...(await options), baseDir });
    // A package is shown by its folder under node_modules, wherever the fixture sits.
    const shown = (p: string): string => p.replace(/^(\.\.\/)*node_modules\/([^/]+)\/.*$/, '$2 (package)');
    return (output as ICruiseResult).summary.violations
      .map((v) => `${v.rule.name}: ${v.from} -> ${shown(v.to)}`)
      .sort();
  }

  it('reports each broken fence with its rule, and nothing else', async () => {
    assert.deepEqual(await violations(fixtures, ['src', 'test']), [
      'check-not-outward: src/check/imports-lab.ts -> src/lab/lab.ts',
      'client-not-outward: src/client/imports-dataplane.ts -> src/dataplane/forward.ts',
      'codec-only-codec-core: src/codec/imports-dataplane.ts -> src/dataplane/forward.ts',
      'config-not-outward: src/config/imports-lab.ts -> src/lab/lab.ts',
      'core-only-core: src/core/imports-outside.ts -> fs',
      'core-only-core: src/core/imports-outside.ts -> src/dataplane/forward.ts',
      'core-only-core: src/core/imports-outside.ts -> src/lab/lab.ts',
      'core-only-core: src/core/imports-outside.ts -> undici (package)',
      'dataplane-not-outward: src/dataplane/imports-lab.ts -> src/lab/lab.ts',
      'directory-not-outward: src/directory/imports-config.ts -> src/config/settings.ts',
      'discover-only-core: src/discover/imports-config.ts -> src/config/settings.ts',
      'lab-not-to-cli: src/lab/lab.ts -> src/cli/main.ts',
      'net-only-net-core: src/net/imports-client.ts -> src/client/client.ts',
      // The cycle the CLI had, through a type-only import.
      'no-circular: src/cli/commands/trace.ts -> src/cli/main.ts',
      'not-to-unresolvable: src/dataplane/imports-missing.ts -> ./moved-away.ts',
      'observability-only-core: src/observability/imports-dataplane.ts -> src/dataplane/forward.ts',
      'src-not-to-dev-dependency: src/dataplane/imports-dev-dependency.ts -> prettier (package)',
      'src-not-to-test: src/lab/imports-test.ts -> test/support/helper.ts',
    ]);
  });

  it('passes on the real tree', async () => {
    assert.deepEqual(await violations(root, ['src', 'test', 'bench', 'scripts']), []);
  });
});
