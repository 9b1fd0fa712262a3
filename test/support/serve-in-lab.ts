/**
 * `coexist serve --as CAS2013-NY` as a separate process in front of an in-process lab (its next hops, reached
 * through the lab's DNS by a preload, test/support/serve-dns-preload.ts), as an operator runs it: its own
 * estate file and certificate in a temp dir, its output kept, JSON log lines readable.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, buildConnector } from 'undici';
import { parseEstate } from '../../src/config/index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { startLab } from '../../src/lab/index.ts';
import { hostsByServer, labAddresses } from '../../src/lab/lab.ts';
import { createLogger } from '../../src/observability/log.ts';
import { LineSink } from './lab-client.ts';
import { demoEstateFile } from './logged-lab.ts';
import { loopbackListeners } from './serve-process.ts';

const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
const preload = new URL('./serve-dns-preload.ts', import.meta.url).href;

/** Poll `check` until true: only for readiness (a process up, a Ping held), with a generous deadline. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A `coexist serve --as CAS2013-NY` in front of `lab`, with its output kept. */
export interface Served {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exit: Promise<number | null>;
  readonly port: number;
  readonly adminPort: number;
  readonly agent: Agent;
  readonly dir: string;
  readonly estate: string;
  out(): string;
  /** The JSON log lines with message `msg`. */
  lines(msg: string): Record<string, unknown>[];
}

export async function serve(
  lab: Lab,
  extra: readonly string[] = [],
  o: { readonly clientAddress?: string } = {},
): Promise<Served> {
  const dir = await mkdtemp(join(tmpdir(), 'coexist-reload-'));
  const estate = join(dir, 'estate.yaml');
  await writeFile(estate, await readFile(demoEstateFile, 'utf8'));
  const cert = lab.ca.issue(['mail.o365info.com', 'autodiscover.o365info.com']);
  await writeFile(join(dir, 'mail.crt'), cert.certPem);
  await writeFile(join(dir, 'mail.key'), cert.keyPem);
  // The lab's DNS for the child: every server's names on 443 and 444, where the lab listens for them.
  const hosts: Record<string, number> = {};
  for (const names of hostsByServer(lab.index).values())
    for (const host of names)
      for (const port of [443, 444]) {
        const to = lab.resolve(host, port);
        if (to) hosts[`${host}:${port}`] = to.port;
      }
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      preload,
      entry,
      'serve',
      '--estate',
      estate,
      '--as',
      'CAS2013-NY',
      ...loopbackListeners,
      '--cert',
      `mail.o365info.com,autodiscover.o365info.com=${join(dir, 'mail.crt')},${join(dir, 'mail.key')}`,
      // The next hops' certificates are the lab CA's.
      '--internal-ca',
      lab.caPath,
      // One process unless a test asks for workers (test/cli/serve-workers.test.ts).
      ...(extra.includes('--workers') ? [] : ['--workers', '1']),
      ...extra,
    ],
    {
      stdio: 'pipe',
      env: {
        ...process.env,
        COEXIST_LAB_HOSTS: JSON.stringify(hosts),
        COEXIST_LAB_LISTEN: labAddresses.listen,
      },
    },
  );
  let out = '';
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await until('serve to start', () => {
    if (child.exitCode !== null) throw new Error(`serve exited:\n${out}`);
    return /metrics on http:\/\/127\.0\.0\.1:(\d+)/.test(out);
  });
  const port = Number(/front listening on https port (\d+)/.exec(out)?.[1]);
  const adminPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  const base = buildConnector({ ca: lab.ca.certPem });
  const agent = new Agent({
    ...(o.clientAddress === undefined ? {} : { localAddress: o.clientAddress }),
    connect: (opts, cb) =>
      base({ ...opts, hostname: '127.0.0.1', port: String(port), servername: opts.hostname }, cb),
  });
  const lines = (msg: string): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['msg'] === msg);
  return { child, exit, port, adminPort, agent, dir, estate, out: () => out, lines };
}

/** The demo lab behind served front ends: a quiet log, and Pings held until released (`lab.releasePings`). */
export async function labForServe(): Promise<Lab> {
  const { index } = parseEstate(await readFile(demoEstateFile, 'utf8'), demoEstateFile);
  return startLab({
    index,
    logger: createLogger({ level: 'warn', destination: new LineSink() }),
    maxPingHoldMs: 600_000,
  });
}

/** Close a served front end's client and kill the process if it still runs. */
export async function stopServed(s: Served | undefined): Promise<void> {
  await s?.agent.close();
  if (s && s.child.exitCode === null) s.child.kill('SIGKILL');
}
