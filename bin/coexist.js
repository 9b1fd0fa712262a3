#!/usr/bin/env -S node --max-semi-space-size=16
// The `coexist` command: runs the compiled CLI (dist/ is built by `npm run build`, which `npm install` runs).
// The flags above are the ones a coexist server runs with (src/cli/node-flags.ts says why; `npm start`
// repeats them). Run as `node bin/coexist.js`, the line is not read: give them to node yourself.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  // Before anything is loaded: its libraries need Node 22+, and would fail with an error about themselves.
  process.stderr.write(
    `coexist needs Node.js 24 or later; this is ${process.version} (${process.execPath}).\n` +
      '  In a checkout, `npm install` brings Node 24 (the `node` package) and npm scripts and npx use it;\n' +
      '  installed as a package, install Node.js 24 (docs/operations.md "Runtime").\n',
  );
  process.exit(2);
}
await import('../dist/cli/entry.js');
