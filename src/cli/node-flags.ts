/**
 * The Node options a coexist server runs with. They are written once, in the first line of bin/coexist.js
 * (`#!/usr/bin/env -S node <flags>`), which is how `coexist`, `npx coexist` and a global install start it;
 * `npm start` and `npm run soak` (whose process is the lab) repeat them (a test holds them together), and
 * the benches start their coexist processes with what this module reads from there, so that they measure
 * what a real server runs.
 *
 * `--max-semi-space-size=16` (MiB): V8's young generation as Node 20 had it. Node 24's V8 sizes it from the
 * heap limit, up to 64 MiB per semi-space on a machine with a few GB of memory, and a front end holding
 * thousands of long polls paid for it in resident memory (docs/operations.md "Memory per held long poll").
 */
import { readFileSync } from 'node:fs';

/** The Node flags of a `#!/usr/bin/env -S node <flags>` line; none for a plain `#!/usr/bin/env node`. */
export function nodeFlagsOf(shebang: string): string[] {
  const m = /^#!\s*\S*env(?:\s+-S)?\s+node((?:\s+--\S+)*)\s*$/.exec(shebang.trim());
  if (!m) throw new Error(`not a node shebang line: ${shebang}`);
  return (m[1] ?? '').split(/\s+/).filter((f) => f !== '');
}

/** The flags of bin/coexist.js (the file sits two folders up from this one, in src/ and in dist/ alike). */
export function coexistNodeFlags(): string[] {
  const bin = new URL('../../bin/coexist.js', import.meta.url);
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  return nodeFlagsOf(first);
}
