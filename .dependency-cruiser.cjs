// The arrows of docs/architecture.md, checked on every import of src/ (`npm run lint`, which CI runs):
// dependencies point one way, and nothing imports in a circle. ESLint also holds src/core to importing
// only src/core and keeps clocks, timers and the network out of it (eslint.config.js).
// test/lint/fences.test.ts breaks each rule once in test/lint/fixtures/ and proves it is reported.

/** Modules that are not tests: the rules are about the shipped code; tests may reach anywhere. */
const shipped = '\\.test\\.ts$';

/** `from` folder of src (non-test files) must not import any of `folders`. */
const never = (name, from, folders, comment) => ({
  name,
  comment,
  severity: 'error',
  from: { path: `^src/${from}/`, pathNot: shipped },
  to: { path: `^src/(${folders.join('|')})/` },
});

/** `from` folder of src (non-test files) imports from src only these folders (packages are allowed). */
const onlyFrom = (name, from, folders, comment) => ({
  name,
  comment,
  severity: 'error',
  from: { path: `^src/${from}/`, pathNot: shipped },
  to: { path: '^src/', pathNot: `^src/(${[from, ...folders].join('|')})/` },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle: a module reaches itself again through its imports.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that points at no file (a module moved and this import was not updated).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'core-only-core',
      comment: 'src/core is pure: it imports only src/core; no package, no Node built-in.',
      severity: 'error',
      from: { path: '^src/core/', pathNot: shipped },
      to: { pathNot: '^src/core/' },
    },
    {
      name: 'codec-only-codec-core',
      comment: 'src/codec (wire codecs) imports only src/codec, src/core and the XML parser (saxes).',
      severity: 'error',
      from: { path: '^src/codec/', pathNot: shipped },
      to: { pathNot: '^src/(codec|core)/|(^|/)node_modules/saxes/' },
    },
    onlyFrom(
      'net-only-net-core',
      'net',
      ['core'],
      'src/net (shared network helpers) imports only src/net and src/core.',
    ),
    onlyFrom(
      'discover-only-core',
      'discover',
      ['core'],
      'src/discover (coexist discover) imports only src/discover and src/core: it reads exports into a plain model; the CLI checks the estate it writes.',
    ),
    onlyFrom(
      'observability-only-core',
      'observability',
      ['core'],
      'src/observability (logs, metrics) imports only src/core.',
    ),
    never(
      'dataplane-not-outward',
      'dataplane',
      ['lab', 'cli', 'check', 'client'],
      'The data plane never imports the lab, the CLI, check or the clients: it declares what it needs (HopObserver, MailboxResponder).',
    ),
    never(
      'directory-not-outward',
      'directory',
      ['config', 'dataplane', 'lab', 'cli', 'check', 'client'],
      'A directory knows the estate (core) and nothing that uses it: config hands it its settings.',
    ),
    never(
      'config-not-outward',
      'config',
      ['dataplane', 'lab', 'cli', 'check', 'client'],
      'Loading an estate needs no server, lab, command or client.',
    ),
    never(
      'client-not-outward',
      'client',
      ['dataplane', 'lab', 'cli', 'check'],
      'The clients talk to servers over the network only: no data plane, lab, CLI or check inside.',
    ),
    never(
      'check-not-outward',
      'check',
      ['lab', 'cli', 'dataplane'],
      '`coexist check` runs against any estate, never a lab of its own.',
    ),
    never(
      'lab-not-to-cli',
      'lab',
      ['cli'],
      'The lab is a library the CLI and the tests start; it never imports the CLI.',
    ),
    {
      name: 'src-not-to-dev-dependency',
      comment: 'Shipped code imports only dependencies: devDependencies are not installed with coexist.',
      severity: 'error',
      from: { path: '^src/', pathNot: shipped },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'src-not-to-test',
      comment: 'Shipped code never imports test code (test/ is not published).',
      severity: 'error',
      from: { path: '^src/', pathNot: shipped },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^test/lint/fixtures/' },
    // `import type` counts: a type-only arrow the wrong way is still a dependency the wrong way.
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
      // Packages' `exports` maps, as Node resolves them.
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
    cache: false,
  },
};
