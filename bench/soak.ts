/**
 * `npm run soak`: the lab under held ActiveSync Pings, mixed traffic, faults and attacks for N minutes, every
 * answer judged against the routing engine (docs/security.md "Soak"). Prints one table and writes the figures
 * to bench/results/soak-latest.json. Exits 1 when a request (warm-up cycle included) was misrouted or lost, or
 * file descriptors did not come back to their baseline.
 *
 *   npm run soak -- [--minutes 10 | --seconds 60] [--pings 5000] [--directory ldap|file] [--seed 1]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { soakTable } from './soak/report.ts';
import { runSoak } from './soak/run.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seconds: { type: 'string' },
    pings: { type: 'string', default: '5000' },
    directory: { type: 'string', default: 'ldap' },
    seed: { type: 'string', default: '1' },
  },
});
const seconds = values.seconds === undefined ? Number(values.minutes) * 60 : Number(values.seconds);
const pings = Number(values.pings);
const seed = Number(values.seed);
const directory = values.directory;
if (!(seconds >= 10) || !Number.isInteger(pings) || pings < 1 || !Number.isInteger(seed)) {
  console.error(
    'usage: npm run soak -- [--minutes N | --seconds N (>= 10)] [--pings N] [--directory ldap|file] [--seed N]',
  );
  process.exit(2);
}
if (directory !== 'ldap' && directory !== 'file') {
  console.error('--directory is ldap or file');
  process.exit(2);
}

const result = await runSoak({ durationMs: seconds * 1000, pings, directory, seed }, (line) =>
  process.stderr.write(`.. ${line}\n`),
);
console.log(soakTable(result));
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}soak-latest.json`, JSON.stringify(result, null, 2) + '\n');
console.log('written: bench/results/soak-latest.json');
const ok =
  result.traffic.misrouted === 0 &&
  result.traffic.lost === 0 &&
  result.warmUp.misrouted === 0 &&
  result.warmUp.lost === 0 &&
  result.fds.end <= result.fds.start;
process.exitCode = ok ? 0 : 1;
