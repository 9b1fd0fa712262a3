// Lint rules. src/core is pure (docs/architecture.md): it imports only src/core (an allow-list, checked by
// the local rule below against where each import really points), and it reaches for no clock, timer,
// network, randomness or process. The other arrows between folders are dependency-cruiser's
// (.dependency-cruiser.cjs); test/lint/fences.test.ts proves both fences hold.
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const coreDir = resolve(dirname(fileURLToPath(import.meta.url)), 'src', 'core');

/** Every module specifier of a file: imports, re-exports, import(), `import x = require()`, import types. */
function onSpecifiers(check) {
  const literal = (node) =>
    node && node.type === 'Literal' && typeof node.value === 'string' ? node : undefined;
  return {
    ImportDeclaration: (n) => check(n.source),
    ExportAllDeclaration: (n) => check(n.source),
    ExportNamedDeclaration: (n) => n.source && check(n.source),
    ImportExpression: (n) => check(literal(n.source) ?? n.source),
    TSExternalModuleReference: (n) => check(literal(n.expression) ?? n.expression),
    TSImportType: (n) => check(literal(n.argument?.literal ?? n.argument) ?? n.argument),
  };
}

/** src/core imports only src/core: a relative path that stays inside it; no package, no node: module. */
const coreImportsOnlyCore = {
  meta: {
    type: 'problem',
    docs: { description: 'src/core imports only src/core (docs/architecture.md)' },
    schema: [],
    messages: {
      computed: 'src/core imports only src/core: a computed module name cannot be checked.',
      bare: 'src/core imports only src/core: "{{name}}" is a package or a Node built-in (core is pure: no I/O).',
      outside: 'src/core imports only src/core: "{{name}}" resolves to {{target}}.',
    },
  },
  create(context) {
    const from = dirname(context.filename);
    return onSpecifiers((node) => {
      const name = node?.type === 'Literal' && typeof node.value === 'string' ? node.value : undefined;
      if (name === undefined) return context.report({ node, messageId: 'computed' });
      if (!name.startsWith('./') && !name.startsWith('../'))
        return context.report({ node, messageId: 'bare', data: { name } });
      const target = resolve(from, name);
      if (!target.startsWith(coreDir + sep)) {
        const shown = relative(resolve(coreDir, '..', '..'), target)
          .split(sep)
          .join('/');
        context.report({ node, messageId: 'outside', data: { name, target: shown } });
      }
    });
  },
};

const pure = (what) => `src/core is pure: ${what}.`;

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'scratch/**', 'test/lint/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Named exports only (docs/architecture.md).' },
      ],
    },
  },
  // ESLint itself needs this file's default export.
  { files: ['eslint.config.js'], rules: { 'no-restricted-syntax': 'off' } },
  // dependency-cruiser reads its configuration as CommonJS.
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable' } } },
  {
    files: ['src/core/**/*.ts'],
    // Tests of core may use node:test, node:fs and the other modules.
    ignores: ['src/core/**/*.test.ts'],
    plugins: { coexist: { rules: { 'core-imports-only-core': coreImportsOnlyCore } } },
    rules: {
      'coexist/core-imports-only-core': 'error',
      'no-restricted-globals': [
        'error',
        ...['process', 'globalThis', 'global', 'self', 'window'].map((name) => ({
          name,
          message: pure('pass configuration in'),
        })),
        ...['Date', 'performance'].map((name) => ({ name, message: pure('pass the clock in') })),
        ...[
          'setTimeout',
          'setInterval',
          'setImmediate',
          'clearTimeout',
          'clearInterval',
          'clearImmediate',
          'queueMicrotask',
        ].map((name) => ({ name, message: pure('no timers; the caller schedules') })),
        ...['fetch', 'XMLHttpRequest', 'WebSocket', 'EventSource'].map((name) => ({
          name,
          message: pure('no network; the data plane does I/O'),
        })),
        { name: 'crypto', message: pure('pass randomness and hashing in') },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: pure('pass randomness in') },
      ],
    },
  },
);
