/**
 * `coexist serve --workers 2` holds more than 10 000 connections on one machine (docs/operations.md
 * "Workers"): 10 500 ActiveSync Pings held at once through the front end. One process cannot: each held Ping
 * costs it two file descriptors (the client's connection and the one to the next hop), and a process may have
 * 20 000 here (`ulimit -Hn`); two workers hold half each.
 *
 * The pieces are the long-poll bench's (bench/longpoll/): a raw-socket client process that opens the
 * connections and sends one Ping on each, and a holding back end process standing in for MBX2013-NY's
 * back-end listener (HTTPS, every request held until told). `coexist serve` reaches it by the estate's name
 * through test/support/serve-dns-preload.ts. Every wait is on a count (the back end's, the metrics'), with a
 * generous deadline; then the back end answers every Ping and the client counts 10 500 answers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import { demoEstateFile } from '../support/logged-lab.ts';
import { until } from '../support/serve-in-lab.ts';

const n = 10_500;
/** Connections a client may have open beyond those held (half the listen backlog of 4 096 between two). */
const window = 1_000;
const root = fileURLToPath(new URL('../../', import.meta.url));
const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
const preload = new URL('../support/serve-dns-preload.ts', import.meta.url).href;
const auth = `Basic ${Buffer.from('alice@o365info.com:Coexist-Lab-2026!').toString('base64')}`;

/** A child with its soft fd limit raised to the hard one (Node cannot set rlimits itself). */
function raised(args: readonly string[], env: NodeJS.ProcessEnv, ipc: boolean): ChildProcess {
  return spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...args], {
    cwd: root,
    env,
    stdio: ipc ? ['ignore', 'ignore', 'inherit', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
}

/** A bench/longpoll/<script>.ts child and its IPC questions (bench/longpoll/ipc.ts). */
function script(name: string): {
  proc: ChildProcess;
  ready: Promise<number>;
  ask(cmd: string, extra?: object): Promise<Record<string, unknown>>;
} {
  const proc = raised([process.execPath, '--import', 'tsx', `bench/longpoll/${name}.ts`], process.env, true);
  let next = 1;
  const waiting = new Map<number, (a: Record<string, unknown>) => void>();
  const ready = new Promise<number>((resolve, reject) => {
    proc.on('message', (m: Record<string, unknown>) => {
      if (m['type'] === 'ready') resolve(Number(m['port']));
      else waiting.get(Number(m['id']))?.(m);
    });
    proc.once('exit', (code) => reject(new Error(`${name} exited (${String(code)})`)));
  });
  ready.catch(() => undefined);
  return {
    proc,
    ready,
    ask: (cmd, extra = {}) =>
      new Promise((resolve) => {
        const id = next++;
        waiting.set(id, (a) => {
          waiting.delete(id);
          resolve(a);
        });
        proc.send({ id, cmd, ...extra });
      }),
  };
}

const fdsOf = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;
const rssOf = (pid: number): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

describe('coexist serve --workers 2 holds more than 10 000 connections', () => {
  let dir = '';
  let back: ReturnType<typeof script>;
  const clients: ReturnType<typeof script>[] = [];
  let serve: ChildProcess | undefined;
  let out = '';
  let adminPort = 0;
  let port = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-10k-'));
    const ca = createLabCa();
    const cert = ca.issue(['mbx2013-ny.o365info.local']);
    await writeFile(join(dir, 'ca.pem'), ca.certPem);
    back = script('holdback');
    back.proc.send({ id: 0, cmd: 'start', certPem: cert.certPem, keyPem: cert.keyPem, maxHoldMs: 600_000 });
    const backPort = await back.ready;
    // The demo estate with the front end's caps raised for one client address and 10 500 connections, and
    // the probes quiet (this test is about connections, not next hops).
    const estate = join(dir, 'estate.yaml');
    await writeFile(
      estate,
      `${await readFile(demoEstateFile, 'utf8')}\nlimits:\n  maxConnections: 16000\n  maxConnectionsPerSource: 0\n  reservedPercent: 0\nhealth:\n  intervalSeconds: 3600\n  timeoutSeconds: 1\n`,
    );
    serve = raised(
      [
        process.execPath,
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
        '--allow-http',
        '--listen',
        '127.0.0.1:0',
        '--admin',
        '127.0.0.1:0',
        '--workers',
        '2',
        '--ca',
        join(dir, 'ca.pem'),
        '--log-level',
        'warn',
        '--drain-grace',
        '0',
      ],
      {
        ...process.env,
        COEXIST_LAB_HOSTS: JSON.stringify({ 'mbx2013-ny.o365info.local:444': backPort }),
        COEXIST_LAB_LISTEN: '127.0.0.1',
      },
      false,
    );
    serve.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    serve.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await until(
      'serve --workers 2 to start',
      () => {
        if (serve?.exitCode !== null) throw new Error(`serve exited:\n${out}`);
        return /metrics on http:\/\/127\.0\.0\.1:\d+/.test(out);
      },
      60_000,
    );
    port = Number(/front listening on http port (\d+)/.exec(out)?.[1]);
    adminPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    // Two client processes, each with its own descriptors: 5 250 connections each.
    for (let i = 0; i < 2; i++) clients.push(script('client'));
    await Promise.all(clients.map((c) => c.proc.connected));
  });

  after(async () => {
    for (const c of clients) c.proc.kill('SIGKILL');
    back?.proc.kill('SIGKILL');
    if (serve && serve.exitCode === null) serve.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  const metric = async (series: RegExp): Promise<number[]> => {
    const text = await (await request(`http://127.0.0.1:${adminPort}/metrics`)).body.text();
    return text
      .split('\n')
      .filter((l) => series.test(l))
      .map((l) => Number(l.split(' ').at(-1)));
  };

  test('10 500 Pings held at once, spread over both workers, all answered when released', async (t) => {
    const workerPids = async (): Promise<number[]> =>
      (
        (await (await request(`http://127.0.0.1:${adminPort}/status`)).body.json()) as {
          workers: { pid: number }[];
        }
      ).workers.map((w) => w.pid);
    const idleRss = (await workerPids()).map(rssOf);
    const began = Date.now();
    await Promise.all(
      clients.map((c, i) =>
        c.ask('start', { port, n: n / 2, ratePerSecond: 2000, device: `HELD${i}X`, auth, allowed: window }),
      ),
    );
    await until(
      'every Ping held by the back end',
      async () => {
        const held = Number((await back.ask('stats'))['held']);
        // At most `window` connections of a client not held yet: the workers' accept queue stays short (a
        // full one drops connections, which the client would see reset), however busy the machine is.
        await Promise.all(
          clients.map((c) => c.ask('allow', { allowed: Math.min(n / 2, Math.floor(held / 2) + window) })),
        );
        return held === n;
      },
      120_000,
    ).catch(async (e: unknown) => {
      const seen = {
        back: await back.ask('stats'),
        clients: await Promise.all(clients.map((c) => c.ask('stats'))),
        connections: await metric(/^coexist_(worker_)?client_connections\{/),
        edge: await metric(/^coexist_edge_events_total\{/),
      };
      throw new Error(`${String(e)}: ${JSON.stringify(seen)}\n${out.slice(-3000)}`);
    });
    const heldMs = Date.now() - began;
    // All open and served at once: every client connection admitted by a worker, every one's Ping upstream.
    const [total] = await metric(/^coexist_client_connections\{/);
    const perWorker = await metric(/^coexist_worker_client_connections\{/);
    assert.equal(total, n);
    assert.equal(perWorker.length, 2);
    assert.equal(
      perWorker.reduce((a, b) => a + b, 0),
      n,
    );
    for (const w of perWorker) assert.ok(w > 0, 'both workers hold connections');
    const pids = await workerPids();
    assert.equal(pids.length, 2);
    const fds = pids.map(fdsOf);
    t.diagnostic(
      `held ${n} in ${heldMs} ms; per worker ${perWorker.join(' + ')} connections, ${fds.join(' + ')} fds, ` +
        `RSS ${pids.map((p) => Math.round(rssOf(p) / 2 ** 20)).join(' + ')} MiB, ` +
        `${Math.round((pids.reduce((a, p) => a + rssOf(p), 0) - idleRss.reduce((a, b) => a + b, 0)) / n / 1024)} KiB per held Ping`,
    );
    for (const f of fds) assert.ok(f < 20_000, 'each worker under the per-process fd limit');
    const stats = await Promise.all(clients.map((c) => c.ask('stats')));
    for (const s of stats) {
      assert.equal(s['errors'], 0, JSON.stringify(s));
      assert.equal(s['open'], n / 2);
    }

    assert.equal(Number((await back.ask('release'))['released']), n);
    await until(
      'every Ping answered',
      async () => {
        const all = await Promise.all(clients.map((c) => c.ask('stats')));
        return all.every((s) => (s['statuses'] as Record<string, number>)['200'] === n / 2);
      },
      120_000,
    );
    const [left] = await metric(/^coexist_client_connections\{/);
    assert.ok(left !== undefined && left < n);
    serve?.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => serve?.once('exit', resolve));
    assert.equal(code, 0, out);
  });
});
