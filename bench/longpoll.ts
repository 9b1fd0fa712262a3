/**
 * Idle long-poll capacity: N ActiveSync `Ping` requests held open at once through a proxy, and what holding
 * them costs the proxy in memory (RSS of all its processes). The baseline is nginx holding the same, in the
 * same run. Method as in docs/lab.md §4.2: a raw-socket client
 * (bench/longpoll/client.ts), a back end that holds every request until told to answer
 * (bench/longpoll/holdback.ts), RSS sampled while all N are held. Reports only; nothing is asserted.
 *
 * coexist is measured twice. First `startServerNode` as CAS2013-NY (bench/longpoll/coexist-node.ts), one child
 * process per lane: a process can hold about 9 990 proxied requests (2 fds each, hard fd limit 20 000 here),
 * so N is split over `lanes` processes, each with its own port, back end and client process. Then the product
 * as deployed: `coexist serve --workers W` (the CLI, a primary and W workers on one port, docs/operations.md
 * "Workers"), the same lanes of clients and back ends on that one port. nginx gets `lanes` workers
 * (`reuseport`) and the same back ends.
 *
 * Run alone: `node --import tsx bench/longpoll.ts [--quick] [--n N] [--lanes L] [--workers W]`.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { coexistNodeFlags } from '../src/cli/node-flags.ts';
import { createLabCa } from '../src/lab/lab-ca.ts';
import type { Answer } from './longpoll/ipc.ts';
import { pingRequestBody } from './longpoll/ipc.ts';
import { formatInt, formatRatio, printTable } from './table.ts';

export interface LongPollRow {
  readonly proxy: string;
  readonly processes: number;
  /** Requests the clients sent. */
  readonly n: number;
  /** Requests the back ends were holding when RSS was sampled. */
  readonly held: number;
  readonly rssIdleBytes: number;
  readonly rssHeldBytes: number;
  /** (rssHeldBytes - rssIdleBytes) / held. */
  readonly bytesPerHeld: number;
  readonly fdsHeld: number;
  /** The most file descriptors one of its processes had while held (the limit is per process). */
  readonly fdsMaxProcess: number;
  /** Ramp: from the first connection until all were held (or the ramp gave up). */
  readonly rampMs: number;
  /** CPU time (user + system) of all its processes during the ramp, per Ping held at its end. */
  readonly rampCpuMsPerHeld: number;
  readonly answered200: number;
  readonly answeredOther: Readonly<Record<string, number>>;
  readonly closedWithoutAnswer: number;
  readonly errors: number;
  readonly errorCodes: Readonly<Record<string, number>>;
  /** bytesPerHeld / nginx's bytesPerHeld in the same run. */
  readonly ratioToNginx?: number;
  /** coexist only: V8 heapUsed of all its processes, idle and held. */
  readonly heapUsedIdleBytes?: number;
  readonly heapUsedHeldBytes?: number;
  /** `coexist serve --workers` only: client connections each worker held (coexist_worker_client_connections). */
  readonly workerConnections?: readonly number[];
  /** What the proxy reported that a reader of the figures should know (a worker replaced, warn lines). */
  readonly remarks?: readonly string[];
  /** `coexist serve --workers` only: the primary's own RSS, idle and held (it serves no client). */
  readonly primaryRssIdleBytes?: number;
  readonly primaryRssHeldBytes?: number;
}

const root = fileURLToPath(new URL('../', import.meta.url));
const auth = `Basic ${Buffer.from('alice@o365info.com:Coexist-Lab-2026!').toString('base64')}`;
const nextHop = 'mbx2013-ny.o365info.local';
const goalRatio = 1.5;

const progress = (text: string): void => {
  process.stderr.write(`.. ${text}\n`);
};

// ---------------------------------------------------------------------------------------------------------
// Child processes

interface Child {
  readonly proc: ChildProcess;
  readonly ready: Promise<number>;
  ask(cmd: string, extra?: Record<string, unknown>): Promise<Answer>;
}

const children = new Set<ChildProcess>();

/**
 * Run `command` with the soft fd limit raised to the hard one (a shell wrapper: Node cannot set rlimits; `exec`
 * keeps the pid). `ipc`: an IPC channel, stderr shown; `quiet`: stderr shown; `pipe`: stdout and stderr piped.
 */
function spawnRaised(
  command: string,
  args: readonly string[],
  io: 'ipc' | 'quiet' | 'pipe',
  env: NodeJS.ProcessEnv = process.env,
): ChildProcess {
  const proc = spawn(
    'sh',
    ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', command, ...args],
    {
      cwd: root,
      env,
      stdio:
        io === 'ipc'
          ? ['ignore', 'ignore', 'inherit', 'ipc']
          : io === 'quiet'
            ? ['ignore', 'ignore', 'inherit']
            : ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

/** A bench/longpoll/<script>.ts child, talked to over IPC; `nodeFlags` before the script (coexist's own). */
function spawnScript(script: string, nodeFlags: readonly string[] = []): Child {
  const proc = spawnRaised(
    process.execPath,
    [...nodeFlags, '--import', 'tsx', `bench/longpoll/${script}`],
    'ipc',
  );
  let next = 1;
  const waiting = new Map<number, (a: Answer) => void>();
  let onReady: (port: number) => void = () => undefined;
  let onFail: (e: Error) => void = () => undefined;
  const ready = new Promise<number>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  ready.catch(() => undefined);
  proc.on('message', (m: Answer) => {
    if (m.type === 'ready') onReady(Number(m['port']));
    else if (m.id !== undefined) waiting.get(m.id)?.(m);
  });
  proc.once('exit', (code) => {
    const e = new Error(`${script} exited (${String(code)})`);
    onFail(e);
    for (const w of waiting.values()) w({ error: e.message });
    waiting.clear();
  });
  return {
    proc,
    ready,
    ask: (cmd, extra = {}) =>
      new Promise<Answer>((resolve) => {
        if (proc.exitCode !== null || !proc.connected) {
          resolve({ error: `${script} is not running` });
          return;
        }
        const id = next++;
        waiting.set(id, (a) => {
          waiting.delete(id);
          resolve(a);
        });
        proc.send({ id, cmd, ...extra });
      }),
  };
}

/** SIGTERM, then SIGKILL after `graceMs` (`coexist serve` drains its workers first). */
async function stop(proc: ChildProcess, graceMs = 3000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stop(c, c === serveProc ? 15_000 : 3000)));
}

/** The `coexist serve` primary of the running workers row, if any (its workers are its own children). */
let serveProc: ChildProcess | undefined;

// ---------------------------------------------------------------------------------------------------------
// /proc

const childPids = (pid: number): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);

const rssOf = (pid: number): number => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
};

const fdsOf = (pid: number): number => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
};

/** Clock ticks per second of /proc/<pid>/stat's times. */
const ticksPerSecond = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time, user + system, of a process so far, in ms (0 once it is gone). */
const cpuMsOf = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / ticksPerSecond;
  } catch {
    return 0;
  }
};

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------------------------------------------------
// Helpers

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** One Ping answered at once (DeviceId WARM...): warms the proxy's pipeline, directory cache and pool. */
function warmPing(port: number, i: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=WARM${i}&DeviceType=BenchPhone`,
        headers: {
          host: 'mail.o365info.com',
          authorization: auth,
          'ms-asprotocolversion': '14.1',
          'content-type': 'application/vnd.ms-sync.wbxml',
          connection: 'close',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(pingRequestBody);
  });
}

async function waitListening(port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if ((await warmPing(port, 0)) !== 0) return;
    if (Date.now() > until) throw new Error(`nothing answers on port ${port}`);
    await sleep(100);
  }
}

/** An ECDSA P-256 certificate for the back end (cheap handshakes); the lab CA's RSA when openssl is missing. */
function backEndCertificate(dir: string): { certPem: string; keyPem: string; caPem: string } {
  try {
    const key = join(dir, 'back.key');
    const cert = join(dir, 'back.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '90',
        '-subj',
        `/CN=${nextHop}`,
        '-addext',
        `subjectAltName=DNS:${nextHop}`,
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const certPem = readFileSync(cert, 'utf8');
    return { certPem, keyPem: readFileSync(key, 'utf8'), caPem: certPem };
  } catch {
    const ca = createLabCa();
    const leaf = ca.issue([nextHop]);
    return { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: ca.certPem };
  }
}

function nginxPath(): string | undefined {
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    try {
      execFileSync(p, ['-v'], { stdio: 'ignore' });
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

function nginxConf(dir: string, port: number, workers: number, backPorts: readonly number[]): string {
  return `daemon off;
master_process on;
worker_processes ${workers};
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 19990; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream back {
${backPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port}${workers > 1 ? ' reuseport' : ''};
    location / {
      proxy_pass https://back;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host ${nextHop};
      proxy_ssl_server_name on;
      proxy_ssl_name ${nextHop};
      proxy_ssl_session_reuse on;
      proxy_read_timeout 3660s;
      proxy_send_timeout 3660s;
    }
  }
}
`;
}

// ---------------------------------------------------------------------------------------------------------
// One proxy

interface Proxy {
  readonly name: string;
  /** The port client `lane` connects to. */
  readonly ports: readonly number[];
  readonly pids: () => number[];
  /** Sum of V8 heapUsed (coexist only). */
  readonly heapUsed?: () => Promise<number>;
  /** Warm-up Pings per port before the idle sample (default 20): enough to reach every worker. */
  readonly warmups?: number;
  /** Client connections per worker (`coexist serve --workers` only). */
  readonly workerConnections?: () => Promise<number[]>;
  /** Read once the Pings are answered: see LongPollRow.remarks. */
  readonly remarks?: () => Promise<string[]>;
  /** A primary process that serves no client (`coexist serve --workers`): its RSS is shown apart too. */
  readonly primary?: number;
}

interface Plan {
  readonly n: number;
  readonly lanes: number;
  /** Workers of `coexist serve --workers`. */
  readonly workers: number;
  readonly ratePerSecond: number;
  readonly rampLimitMs: number;
  readonly maxHoldMs: number;
  /** Connections a lane may open beyond those held (keeps the accept queue, 511 by default, from overflowing). */
  readonly window: number;
}

async function measure(
  plan: Plan,
  cert: { certPem: string; keyPem: string },
  startProxy: (backPorts: readonly number[]) => Promise<Proxy>,
): Promise<Omit<LongPollRow, 'ratioToNginx'>> {
  const backs = Array.from({ length: plan.lanes }, () => spawnScript('holdback.ts'));
  const clients = Array.from({ length: plan.lanes }, () => spawnScript('client.ts'));
  for (const b of backs) void b.ask('start', { ...cert, maxHoldMs: plan.maxHoldMs });
  const backPorts = await Promise.all(backs.map((b) => b.ready));
  const proxy = await startProxy(backPorts);
  progress(`long poll, ${proxy.name}: warm-up`);
  for (const port of new Set(proxy.ports)) {
    await waitListening(port, 20_000);
    for (let i = 1; i <= (proxy.warmups ?? 20); i++) {
      const status = await warmPing(port, i);
      if (status !== 200) throw new Error(`${proxy.name}: warm-up Ping answered ${status}`);
    }
  }
  await sleep(3000);
  const rssIdleBytes = sum(proxy.pids().map(rssOf));
  const primaryRssIdleBytes = proxy.primary === undefined ? undefined : rssOf(proxy.primary);
  let primaryRssHeldBytes = 0;
  const heapUsedIdleBytes = proxy.heapUsed ? await proxy.heapUsed() : undefined;

  progress(`long poll, ${proxy.name}: ${formatInt(plan.n)} Pings`);
  const perLane = Math.floor(plan.n / plan.lanes);
  const n = perLane * plan.lanes;
  const cpuBefore = sum(proxy.pids().map(cpuMsOf));
  const started = performance.now();
  await Promise.all(
    clients.map((c, lane) =>
      c.ask('start', {
        port: proxy.ports[lane],
        n: perLane,
        ratePerSecond: plan.ratePerSecond / plan.lanes,
        device: `BENCH${lane}x`,
        auth,
        allowed: plan.window,
      }),
    ),
  );
  const heldNow = async (): Promise<number> =>
    sum((await Promise.all(backs.map((b) => b.ask('count')))).map((a) => Number(a['held'] ?? 0)));
  let held = 0;
  let lastChange = performance.now();
  while (
    held < n &&
    performance.now() - started < plan.rampLimitMs &&
    performance.now() - lastChange < 15_000
  ) {
    await sleep(250);
    const h = await heldNow();
    if (h !== held) lastChange = performance.now();
    held = h;
    // Closed loop: each lane may be at most `window` connections ahead of what the back ends hold.
    const ahead = Math.floor((held + plan.window * plan.lanes) / plan.lanes);
    await Promise.all(clients.map((c) => c.ask('allow', { allowed: ahead })));
  }
  const rampMs = performance.now() - started;
  const rampCpuMs = sum(proxy.pids().map(cpuMsOf)) - cpuBefore;
  await sleep(1000);
  let rssHeldBytes = 0;
  let fdsHeld = 0;
  let fdsMaxProcess = 0;
  let processes = 0;
  for (let i = 0; i < 3; i++) {
    const pids = proxy.pids();
    processes = Math.max(processes, pids.length);
    const fds = pids.map(fdsOf);
    rssHeldBytes = Math.max(rssHeldBytes, sum(pids.map(rssOf)));
    if (proxy.primary !== undefined)
      primaryRssHeldBytes = Math.max(primaryRssHeldBytes, rssOf(proxy.primary));
    fdsHeld = Math.max(fdsHeld, sum(fds));
    fdsMaxProcess = Math.max(fdsMaxProcess, ...fds);
    await sleep(500);
  }
  held = await heldNow();
  const heapUsedHeldBytes = proxy.heapUsed ? await proxy.heapUsed() : undefined;
  const workerConnections = proxy.workerConnections ? await proxy.workerConnections() : undefined;

  progress(`long poll, ${proxy.name}: ${formatInt(held)} held; answering them`);
  await Promise.all(backs.map((b) => b.ask('release')));
  const settle = performance.now();
  const tally = (): Promise<Answer[]> => Promise.all(clients.map((c) => c.ask('count')));
  let tallies = await tally();
  while (sum(tallies.map((t) => Number(t['settled'] ?? 0))) < n && performance.now() - settle < 30_000) {
    await sleep(250);
    tallies = await tally();
  }
  const statuses: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  for (const t of tallies) {
    for (const [k, v] of Object.entries((t['statuses'] ?? {}) as Record<string, number>))
      statuses[k] = (statuses[k] ?? 0) + v;
    for (const [k, v] of Object.entries((t['errorCodes'] ?? {}) as Record<string, number>))
      errorCodes[k] = (errorCodes[k] ?? 0) + v;
  }
  const { '200': answered200 = 0, ...answeredOther } = statuses;
  const remarks = proxy.remarks ? await proxy.remarks() : [];
  return {
    proxy: proxy.name,
    processes,
    n,
    held,
    rssIdleBytes,
    rssHeldBytes,
    bytesPerHeld: held > 0 ? (rssHeldBytes - rssIdleBytes) / held : Number.NaN,
    fdsHeld,
    fdsMaxProcess,
    rampMs,
    rampCpuMsPerHeld: held > 0 ? rampCpuMs / held : Number.NaN,
    answered200,
    answeredOther,
    closedWithoutAnswer: sum(tallies.map((t) => Number(t['closedWithoutAnswer'] ?? 0))),
    errors: sum(tallies.map((t) => Number(t['errors'] ?? 0))),
    errorCodes,
    ...(heapUsedIdleBytes === undefined ? {} : { heapUsedIdleBytes }),
    ...(heapUsedHeldBytes === undefined ? {} : { heapUsedHeldBytes }),
    ...(workerConnections === undefined ? {} : { workerConnections }),
    ...(remarks.length === 0 ? {} : { remarks }),
    ...(primaryRssIdleBytes === undefined ? {} : { primaryRssIdleBytes, primaryRssHeldBytes }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// coexist serve --workers W

const entry = fileURLToPath(new URL('../src/cli/entry.ts', import.meta.url));
const spreadPreload = new URL('./longpoll/spread-preload.ts', import.meta.url).href;
/** Client connections one worker may admit: 2 fds each stays under the 20 000 per process, with room. */
const perWorkerCap = 9_500;

/**
 * `coexist serve --workers W` as CAS2013-NY of examples/o365info.yaml, plain HTTP on loopback: the CLI as an
 * admin runs it (its entry point under tsx, like the other coexist row), its next hop spread over the holding
 * back ends by bench/longpoll/spread-preload.ts. The estate is the demo's with the edge caps set for one client
 * address (a load balancer's, as here) and the probes quiet.
 */
async function startServe(
  plan: Plan,
  dir: string,
  caPem: string,
  backPorts: readonly number[],
): Promise<Proxy> {
  const estate = join(dir, 'estate.yaml');
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, caPem);
  writeFileSync(
    estate,
    `${readFileSync(join(root, 'examples/o365info.yaml'), 'utf8')}\n` +
      `limits:\n  maxConnections: ${perWorkerCap * plan.workers}\n  maxConnectionsPerSource: 0\n  reservedPercent: 0\n` +
      'health:\n  intervalSeconds: 3600\n  timeoutSeconds: 1\n',
  );
  const proc = spawnRaised(
    process.execPath,
    [
      ...coexistNodeFlags(),
      '--import',
      'tsx',
      '--import',
      spreadPreload,
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
      String(plan.workers),
      '--ca',
      ca,
      '--log-level',
      'warn',
      '--drain-grace',
      '0',
      '--drain-timeout',
      '5',
    ],
    'pipe',
    { ...process.env, COEXIST_BENCH_BACKENDS: JSON.stringify({ [`${nextHop}:444`]: backPorts }) },
  );
  serveProc = proc;
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const until = Date.now() + 120_000;
  // Readiness only: its start lines, with a generous deadline.
  while (!/metrics on http:\/\/127\.0\.0\.1:\d+/.test(out)) {
    if (proc.exitCode !== null || Date.now() > until)
      throw new Error(`coexist serve --workers ${plan.workers} did not start:\n${out}`);
    await sleep(100);
  }
  const port = Number(/front listening on http port (\d+)/.exec(out)?.[1]);
  const admin = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  const series = async (name: string): Promise<number[]> => {
    const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
      .map((l) => Number(l.split(' ').at(-1)));
  };
  const pid = proc.pid ?? -1;
  return {
    name: `coexist serve --workers ${plan.workers} (1 port)`,
    ports: Array.from({ length: plan.lanes }, () => port),
    pids: () => [pid, ...childPids(pid)],
    primary: pid,
    // The workers' V8 heaps (the primary's is not in its /metrics).
    heapUsed: async () => sum(await series('nodejs_heap_size_used_bytes')),
    warmups: 20 * plan.workers,
    workerConnections: () => series('coexist_worker_client_connections'),
    remarks: async () => {
      const restarts = sum(await series('coexist_worker_restarts_total'));
      // Its warn and error lines (JSON), by message: none is expected.
      const byMessage = new Map<string, number>();
      for (const line of out.split('\n').filter((l) => l.startsWith('{'))) {
        try {
          const msg = String((JSON.parse(line) as { msg?: unknown }).msg);
          byMessage.set(msg, (byMessage.get(msg) ?? 0) + 1);
        } catch {
          // a line cut by the 20 000-character tail
        }
      }
      return [
        ...(restarts > 0 ? [`${formatInt(restarts)} worker(s) replaced during the run`] : []),
        ...[...byMessage].map(([msg, count]) => `logged ${count}x: ${msg}`),
      ];
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The scenario

/**
 * Run the long-poll bench and print its table: N = 2 000 in one lane and 2 workers (quick), 20 000 over 4 lanes
 * and 4 workers (full); `size` overrides either.
 *
 * Why 4 workers for 20 000 on a 2-core machine: each held Ping costs its worker 2 fds and a process may have
 * 20 000, so 2 workers (10 000 Pings, 20 000 fds each) would sit at the limit; 4 hold about 5 000 each (about
 * 10 000 fds), half the limit, which leaves room for an uneven spread (on Node 20 the workers share one
 * listening socket and whichever is free accepts) and the next hops' kept-alive connections. Idle held Pings
 * cost no CPU, so more workers than cores cost memory only: an idle process each, counted in RSS idle.
 */
export async function benchLongPoll(
  quick: boolean,
  size: Partial<Pick<Plan, 'n' | 'lanes' | 'workers'>> = {},
): Promise<LongPollRow[]> {
  const plan: Plan = {
    ...(quick
      ? {
          n: 2_000,
          lanes: 1,
          workers: 2,
          ratePerSecond: 2_000,
          rampLimitMs: 60_000,
          maxHoldMs: 180_000,
          window: 256,
        }
      : {
          n: 20_000,
          lanes: 4,
          workers: 4,
          ratePerSecond: 2_000,
          rampLimitMs: 300_000,
          maxHoldMs: 600_000,
          window: 256,
        }),
    ...size,
  };
  const dir = mkdtempSync(join(tmpdir(), 'coexist-longpoll-'));
  const onExit = (): void => {
    // The workers of `coexist serve` first: a SIGKILLed primary cannot stop them.
    if (serveProc?.pid !== undefined && serveProc.exitCode === null)
      for (const pid of childPids(serveProc.pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    for (const c of children) c.kill('SIGKILL');
  };
  process.once('exit', onExit);
  const rows: Omit<LongPollRow, 'ratioToNginx'>[] = [];
  const notes: string[] = [];
  try {
    const cert = backEndCertificate(dir);
    const nginx = nginxPath();
    if (nginx === undefined) {
      notes.push('nginx is not installed (apt-get install nginx, as root): no baseline row, no ratio.');
    } else {
      rows.push(
        await measure(plan, cert, async (backPorts) => {
          const port = await freePort();
          const conf = join(dir, 'nginx.conf');
          writeFileSync(conf, nginxConf(dir, port, plan.lanes, backPorts));
          const master = spawnRaised(nginx, ['-p', dir, '-c', conf], 'quiet');
          const pid = master.pid ?? -1;
          return {
            name: `nginx (${plan.lanes} worker${plan.lanes > 1 ? 's, reuseport' : ''})`,
            ports: Array.from({ length: plan.lanes }, () => port),
            pids: () => [pid, ...childPids(pid)],
          };
        }),
      );
      await stopAll();
    }
    rows.push(
      await measure(plan, cert, async (backPorts) => {
        // With the Node flags `coexist` runs with (bin/coexist.js): the memory measured is a real server's.
        const nodes = backPorts.map(() => spawnScript('coexist-node.ts', coexistNodeFlags()));
        nodes.forEach((c, i) => void c.ask('start', { backPort: backPorts[i], caPem: cert.caPem }));
        const ports = await Promise.all(nodes.map((c) => c.ready));
        return {
          name: `coexist (${plan.lanes} process${plan.lanes > 1 ? 'es, a port each' : ''})`,
          ports,
          pids: () => nodes.map((c) => c.proc.pid ?? -1),
          heapUsed: async () =>
            sum(
              (await Promise.all(nodes.map((c) => c.ask('memory')))).map((a) => Number(a['heapUsed'] ?? 0)),
            ),
        };
      }),
    );
    await stopAll();
    rows.push(await measure(plan, cert, (backPorts) => startServe(plan, dir, cert.caPem, backPorts)));
  } finally {
    await stopAll();
    process.off('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  }

  const base = rows.find((r) => r.proxy.startsWith('nginx'));
  const out: LongPollRow[] = rows.map((r) =>
    base && r !== base ? { ...r, ratioToNginx: r.bytesPerHeld / base.bytesPerHeld } : r,
  );
  const mb = (b: number): string => (b / 2 ** 20).toFixed(1);
  const all200 = (r: LongPollRow): string =>
    `${formatInt(r.answered200)}/${formatInt(r.n)}` +
    (r.closedWithoutAnswer + r.errors > 0 ? ` (${r.closedWithoutAnswer} closed, ${r.errors} errors)` : '') +
    (Object.keys(r.answeredOther).length > 0 ? ` other: ${JSON.stringify(r.answeredOther)}` : '');
  printTable(
    `Idle long polls: ${formatInt(plan.n)} ActiveSync Pings held at once through each proxy (RSS of all its processes)`,
    [
      { header: 'proxy' },
      { header: 'processes', align: 'right' },
      { header: 'held', align: 'right' },
      { header: 'RSS idle MB', align: 'right' },
      { header: 'RSS held MB', align: 'right' },
      { header: 'bytes per held', align: 'right' },
      { header: 'fds held', align: 'right' },
      { header: 'most fds in 1', align: 'right' },
      { header: 'ramp', align: 'right' },
      { header: 'CPU ms/Ping', align: 'right' },
      { header: 'vs nginx', align: 'right' },
      { header: `goal <= ${goalRatio}x` },
      { header: 'answered 200' },
    ],
    out.map((r) => [
      r.proxy,
      String(r.processes),
      formatInt(r.held),
      mb(r.rssIdleBytes),
      mb(r.rssHeldBytes),
      formatInt(Math.round(r.bytesPerHeld)),
      formatInt(r.fdsHeld),
      formatInt(r.fdsMaxProcess),
      `${(r.rampMs / 1000).toFixed(1)} s`,
      r.rampCpuMsPerHeld.toFixed(2),
      r.ratioToNginx === undefined ? (r === base ? '1.0x' : '-') : formatRatio(r.ratioToNginx),
      r.ratioToNginx === undefined ? '' : r.ratioToNginx <= goalRatio ? 'met' : 'NOT met',
      all200(r),
    ]),
    [
      'Client: raw sockets (bench/longpoll/client.ts), plain HTTP/1.1, one POST Cmd=Ping&User=alice per connection,',
      `Basic alice@o365info.com, at most ${formatInt(plan.ratePerSecond)} connections/s and ${plan.window} per lane ahead of the held; back end: HTTPS (ECDSA P-256), holds each Ping`,
      `until every one is held, then answers 200. coexist (N processes) = startServerNode as CAS2013-NY (node ${coexistNodeFlags().join(' ')}), MBX2013-NY's back end`,
      'resolved to the holding back end (TLS upstream, like nginx proxy_pass https); logger silent; run under tsx.',
      `coexist serve --workers ${plan.workers} = the CLI under tsx as CAS2013-NY of the demo estate (--allow-http, --log-level warn; caps`,
      `${formatInt(perWorkerCap)} connections per worker, none per source), a primary and ${plan.workers} workers on one port; its next hop's TLS connections`,
      `spread round robin over the ${plan.lanes} back end${plan.lanes > 1 ? 's' : ''} (bench/longpoll/spread-preload.ts); RSS of the primary and the workers.`,
      `${plan.lanes > 1 ? `N split over ${plan.lanes} lanes (back end and client each; proxy process/worker for the other rows): a process holds at most ~9 990 (2 fds each, hard limit 20 000). ` : ''}` +
        'bytes per held = (RSS held - RSS idle) / held; RSS idle after 20 warm-up Pings per port (per worker for serve) and 3 s; held: max of 3 samples.',
      'most fds in 1: the most file descriptors one process of the proxy had (the limit is per process). CPU ms/Ping: CPU time',
      '(user + system) of all its processes during the ramp / held (the ramp is paced by the proxy: the clients stay a window ahead).',
      'vs nginx: bytes per held / nginx bytes per held, same run. Kernel socket memory is not in RSS.',
      ...out
        .filter((r) => r.workerConnections !== undefined)
        .map(
          (r) =>
            `${r.proxy}: client connections per worker while held ${(r.workerConnections ?? []).map(formatInt).join(' + ')}.`,
        ),
      ...out
        .filter((r) => r.primaryRssIdleBytes !== undefined)
        .map(
          (r) =>
            `${r.proxy}: the primary's RSS ${mb(r.primaryRssIdleBytes ?? 0)} MB idle, ${mb(r.primaryRssHeldBytes ?? 0)} MB held (in the row's figures).`,
        ),
      ...out
        .filter((r) => r.heapUsedIdleBytes !== undefined && r.heapUsedHeldBytes !== undefined && r.held > 0)
        .map(
          (r) =>
            `${r.proxy}: V8 heap used ${mb(r.heapUsedIdleBytes ?? 0)} MB idle, ${mb(r.heapUsedHeldBytes ?? 0)} MB held, ` +
            `${formatInt(Math.round(((r.heapUsedHeldBytes ?? 0) - (r.heapUsedIdleBytes ?? 0)) / r.held))} bytes per held${r.primaryRssIdleBytes === undefined ? '' : " (the workers'; the primary's is not in /metrics)"}.`,
        ),
      ...out.flatMap((r) => (r.remarks ?? []).map((m) => `${r.proxy}: ${m}`)),
      ...notes,
    ],
  );
  return out;
}

// `node --import tsx bench/longpoll.ts [--quick] [--n N] [--lanes L] [--workers W]`: this scenario alone.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      n: { type: 'string' },
      lanes: { type: 'string' },
      workers: { type: 'string' },
    },
  });
  const whole = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isInteger(x) || x < 1) throw new Error(`--${name} must be a whole number >= 1, not ${v}`);
    return x;
  };
  const n = whole('n', values.n);
  const lanes = whole('lanes', values.lanes);
  const workers = whole('workers', values.workers);
  await benchLongPoll(values.quick, {
    ...(n === undefined ? {} : { n }),
    ...(lanes === undefined ? {} : { lanes }),
    ...(workers === undefined ? {} : { workers }),
  });
}
