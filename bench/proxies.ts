/**
 * coexist against the usual proxies, on loopback, with wrk (`-t1 -c64 --latency`, keep-alive): the same back end
 * reached (a) directly, (b) through nginx with a static upstream, (c) through HAProxy, (d) through nginx with
 * `auth_request` to a lookup service that names the user's back end (per-user routing the usual way), (n)
 * through a bare Node proxy on the same runtime and HTTP client (the ceiling), and (e) through coexist doing
 * its real work (CAS2013-NY: identify, authenticate from the cache, look the mailbox up, decide, proxy to
 * MBX2013-NY's back-end site over TLS). Three request shapes: ActiveSync-like POST 2 KiB
 * -> 4 KiB, EWS-like SOAP POST 10 KiB -> 10 KiB, OWA-like GET -> 100 KiB. Rounds are interleaved and ratios
 * are paired within a round. Everything runs on 127.0.0.1, every run is bounded by wrk's duration, and all
 * processes (nginx and HAProxy with configs in a temp dir) are stopped at the end, also on errors.
 * Layout (after docs/lab.md §4.1): proxy under test on CPU 0, wrk + back end on CPU 1.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { coexistNodeFlags } from '../src/cli/node-flags.ts';
import type { Summary } from './table.ts';
import { formatInt, formatRate, formatRatio, formatSpread, printTable, summarize } from './table.ts';

export interface ProxyRun {
  readonly round: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Non-2xx/3xx answers plus socket errors that wrk counted. */
  readonly errors: number;
}

export interface ProxyRow {
  readonly body: string;
  readonly target: string;
  readonly label: string;
  readonly runs: readonly ProxyRun[];
  readonly requestsPerSecond?: Summary;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  /** Paired with the same round's run of each other target, then the median. */
  readonly ratios: Readonly<Record<string, number>>;
  readonly skipped?: string;
}

const repo = fileURLToPath(new URL('../', import.meta.url));
const here = fileURLToPath(new URL('proxies/', import.meta.url));
const credentials = Buffer.from('alice@o365info.com:Coexist-Lab-2026!').toString('base64');

interface Shape {
  readonly name: string;
  readonly path: string;
  readonly method: 'GET' | 'POST';
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly headers: Readonly<Record<string, string>>;
}
const shapes: readonly Shape[] = [
  {
    name: 'ActiveSync POST 2 KiB -> 4 KiB',
    path: '/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=BENCH1&DeviceType=Bench',
    method: 'POST',
    requestBytes: 2048,
    responseBytes: 4096,
    headers: { 'Content-Type': 'application/vnd.ms-sync.wbxml', 'MS-ASProtocolVersion': '14.1' },
  },
  {
    name: 'EWS SOAP POST 10 KiB -> 10 KiB',
    path: '/EWS/Exchange.asmx',
    method: 'POST',
    requestBytes: 10 * 1024,
    responseBytes: 10 * 1024,
    headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '"FindItem"' },
  },
  {
    name: 'OWA GET -> 100 KiB',
    path: '/owa/',
    method: 'GET',
    requestBytes: 0,
    responseBytes: 100 * 1024,
    headers: {},
  },
];

interface Target {
  readonly id: string;
  readonly label: string;
  port: number;
}

const progress = (text: string): void => {
  process.stderr.write(`.. ${text}\n`);
};

const has = (command: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** nginx, haproxy and wrk present, installing them when root; otherwise the message to print. */
function ensureTools(): string | undefined {
  const missing = ['nginx', 'haproxy', 'wrk'].filter((c) => !has(c));
  if (!has('taskset')) return 'taskset (util-linux) is missing';
  if (missing.length === 0) return undefined;
  if (process.getuid?.() !== 0) {
    return `missing ${missing.join(', ')}: install with \`sudo apt-get install -y --no-install-recommends ${missing.join(' ')}\``;
  }
  progress(`proxies: installing ${missing.join(' ')}`);
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 300_000,
    });
  } catch (e) {
    return `apt-get install ${missing.join(' ')} failed: ${String(e)}`;
  }
  const still = missing.filter((c) => !has(c));
  return still.length === 0 ? undefined : `still missing after apt-get: ${still.join(', ')}`;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    if (await portOpen(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port}`);
}

const children: ChildProcess[] = [];
const killAll = (): void => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};

function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => c.kill('SIGKILL'), 3000);
    c.once('exit', () => {
      clearTimeout(hard);
      resolve();
    });
    c.kill('SIGTERM');
  });
}

/** Spawn `command` pinned to `cpu`; its stdout goes to /dev/null (coexist's `info` log, in one case). */
function spawnPinned(cpu: number, command: string, args: readonly string[], ipc: boolean): ChildProcess {
  const c = spawn('taskset', ['-c', String(cpu), command, ...args], {
    cwd: repo,
    stdio: ipc ? ['ignore', 'ignore', 'inherit', 'ipc'] : ['ignore', 'ignore', 'inherit'],
  });
  children.push(c);
  return c;
}

/** A Node helper of bench/proxies/ under tsx; resolves with what it reports over IPC. */
function startNode(
  cpu: number,
  script: string,
  args: readonly string[],
): Promise<{ http: number; https?: number }> {
  // The Node processes under test (coexist and the bare Node proxy) run with coexist's own Node flags
  // (bin/coexist.js), so that the two compare code, not flags.
  const flags = script === 'coexist-node.ts' || script === 'node-proxy.ts' ? coexistNodeFlags() : [];
  const c = spawnPinned(
    cpu,
    process.execPath,
    [...flags, '--import', 'tsx', join(here, script), ...args],
    true,
  );
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${script} did not start in 30 s`)), 30_000);
    c.once('message', (m: { http: number; https?: number }) => {
      clearTimeout(t);
      resolve(m);
    });
    c.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${script} exited with ${code}`));
    });
  });
}

function nginxConf(dir: string, p: Record<string, number>, caFile: string): string {
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 120s;
  keepalive_requests 10000000;
  client_body_buffer_size 64k;
  client_max_body_size 10m;
  proxy_http_version 1.1;
  proxy_buffering off;
  proxy_request_buffering off;
  proxy_buffer_size 64k;
  proxy_buffers 4 64k;
  proxy_read_timeout 3600s;
  proxy_set_header Connection "";
  proxy_set_header Host $host;
  upstream mbx2013_ny { server 127.0.0.1:${p.backend}; keepalive 64; keepalive_requests 10000000; }
  upstream mbx2013_ny_tls { server 127.0.0.1:${p.backendTls}; keepalive 64; keepalive_requests 10000000; }
  upstream lookup { server 127.0.0.1:${p.lookup}; keepalive 64; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:${p.nginx};
    location / { proxy_pass http://mbx2013_ny; }
  }
  server {
    listen 127.0.0.1:${p.nginxTls};
    location / {
      proxy_pass https://mbx2013_ny_tls;
      proxy_ssl_session_reuse on;
      proxy_ssl_server_name on;
      proxy_ssl_name mbx2013-ny.o365info.local;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${caFile};
    }
  }
  server {
    listen 127.0.0.1:${p.nginxAuth};
    location = /_lookup {
      internal;
      proxy_pass http://lookup;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Original-URI $request_uri;
    }
    location / {
      auth_request /_lookup;
      auth_request_set $be $upstream_http_x_backend;
      proxy_pass http://$be;
    }
  }
}
`;
}

function haproxyConf(dir: string, p: Record<string, number>): string {
  return `global
  nbthread 1
  maxconn 4000
  pidfile ${dir}/haproxy.pid
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
frontend fe
  bind 127.0.0.1:${p.haproxy}
  default_backend be
backend be
  server s1 127.0.0.1:${p.backend}
`;
}

function wrkScript(s: Shape): string {
  const headers = { Host: 'mail.o365info.com', Authorization: `Basic ${credentials}`, ...s.headers };
  return [
    `wrk.method = "${s.method}"`,
    ...(s.requestBytes > 0 ? [`wrk.body = string.rep("x", ${s.requestBytes})`] : []),
    ...Object.entries(headers).map(([k, v]) => `wrk.headers["${k}"] = '${v}'`),
    '',
  ].join('\n');
}

const unitMs: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const toMs = (text: string): number => {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  return m ? Number(m[1]) * (unitMs[m[2] ?? 'ms'] ?? 1) : Number.NaN;
};

/** One wrk run pinned to CPU 1, bounded by its duration (and killed 15 s after it). */
function runWrk(port: number, script: string, s: Shape, seconds: number): Promise<Omit<ProxyRun, 'round'>> {
  const url = `http://127.0.0.1:${port}${s.path}`;
  const args = ['-c', '1', 'wrk', '-t1', '-c64', `-d${seconds}s`, '--latency', '-s', script, url];
  return new Promise((resolve, reject) => {
    const c = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(c);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), (seconds + 15) * 1000);
    c.once('exit', (code) => {
      clearTimeout(t);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      if (code !== 0 || !rps) {
        reject(new Error(`wrk ${url} exited with ${code}: ${out.trim().slice(0, 300)}`));
        return;
      }
      const pct = (p: string): number => toMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
      resolve({
        requestsPerSecond: Number(rps[1]),
        p50Ms: pct('50'),
        p99Ms: pct('99'),
        errors: non2xx + sockErrors,
      });
    });
  });
}

/** One request as wrk would send it: answers 200 with the expected body size, or says what it got. */
async function probe(port: number, s: Shape): Promise<string | undefined> {
  try {
    const r = await request(`http://127.0.0.1:${port}${s.path}`, {
      method: s.method,
      headers: { host: 'mail.o365info.com', authorization: `Basic ${credentials}`, ...s.headers },
      ...(s.requestBytes > 0 ? { body: Buffer.alloc(s.requestBytes, 0x78) } : {}),
    });
    const body = Buffer.from(await r.body.arrayBuffer());
    if (r.statusCode !== 200 || body.length !== s.responseBytes) {
      return `HTTP ${r.statusCode}, ${body.length} bytes: ${body.toString('utf8', 0, 120)}`;
    }
    return undefined;
  } catch (e) {
    return String(e);
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const fmtMs = (ms: number | undefined): string =>
  ms === undefined || !Number.isFinite(ms) ? '-' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1);

/** Run the proxy comparison and print its tables; `quick`: 1 round of 1 s runs instead of 3 of 5 s. */
export async function benchProxies(quick: boolean): Promise<ProxyRow[]> {
  const rounds = quick ? 1 : 3;
  const seconds = quick ? 1 : 5;
  const title = `Proxies: requests/s and latency through each proxy to one back end, wrk -t1 -c64 keep-alive, ${rounds} x ${seconds} s per cell`;
  const missing = ensureTools();
  if (missing !== undefined) {
    console.log(`${title}\n  skipped: ${missing}\n`);
    return [];
  }
  if (cpus().length < 2) progress('proxies: fewer than 2 CPUs, the pinning below shares one core');
  const dir = mkdtempSync(join(tmpdir(), 'coexist-bench-proxies-'));
  const onExit = (): void => killAll();
  process.once('exit', onExit);
  const targets: Target[] = [
    { id: 'a', label: '(a) direct: client -> back end (the limit)', port: 0 },
    { id: 'b', label: '(b) nginx, static upstream', port: 0 },
    { id: 'b-tls', label: "(b') nginx, static upstream over TLS (as coexist's hop)", port: 0 },
    { id: 'c', label: '(c) HAProxy, static upstream', port: 0 },
    { id: 'd', label: '(d) nginx + auth_request lookup (Node)', port: 0 },
    { id: 'n', label: "(n) bare Node proxy, undici over TLS (the ceiling of coexist's runtime)", port: 0 },
    { id: 'e', label: '(e) coexist CAS2013-NY, log silent', port: 0 },
    { id: 'e-info', label: '(e) coexist CAS2013-NY, log info -> /dev/null', port: 0 },
  ];
  const runs = new Map<string, ProxyRun[]>();
  const skipped = new Map<string, string>();
  const key = (t: string, s: string): string => `${t}\u0000${s}`;
  try {
    progress('proxies: starting back end, lookup service, nginx, HAProxy, coexist x2');
    const caFile = join(dir, 'ca.pem');
    const backend = await startNode(1, 'backend.ts', [caFile]);
    const backendTls = backend.https ?? 0;
    const lookup = await startNode(0, 'lookup.ts', []);
    const p: Record<string, number> = {
      backend: backend.http,
      backendTls,
      lookup: lookup.http,
      nginx: await freePort(),
      nginxTls: await freePort(),
      nginxAuth: await freePort(),
      haproxy: await freePort(),
    };
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, p, caFile));
    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConf(dir, p));
    const nginx = spawnPinned(0, 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], false);
    const haproxy = spawnPinned(0, 'haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], false);
    await waitForPort(p.nginx as number, nginx, 'nginx');
    await waitForPort(p.haproxy as number, haproxy, 'haproxy');
    const bare = await startNode(0, 'node-proxy.ts', [String(backendTls), caFile]);
    const silent = await startNode(0, 'coexist-node.ts', [String(backendTls), caFile, 'silent']);
    const info = await startNode(0, 'coexist-node.ts', [String(backendTls), caFile, 'info']);
    const ports: Record<string, number> = {
      a: backend.http,
      b: p.nginx as number,
      'b-tls': p.nginxTls as number,
      c: p.haproxy as number,
      d: p.nginxAuth as number,
      n: bare.http,
      e: silent.http,
      'e-info': info.http,
    };
    for (const t of targets) t.port = ports[t.id] ?? 0;

    const scripts = shapes.map((s, i) => {
      const file = join(dir, `shape-${i}.lua`);
      writeFileSync(file, wrkScript(s));
      return file;
    });
    for (const t of targets) {
      for (const s of shapes) {
        const problem = await probe(t.port, s);
        if (problem !== undefined) skipped.set(key(t.id, s.name), problem);
        runs.set(key(t.id, s.name), []);
      }
    }
    progress('proxies: warm-up, 1 s per target and shape');
    for (const [i, s] of shapes.entries()) {
      for (const t of targets) {
        if (!skipped.has(key(t.id, s.name))) await runWrk(t.port, scripts[i] as string, s, 1);
      }
    }
    for (let round = 1; round <= rounds; round++) {
      for (const [i, s] of shapes.entries()) {
        progress(`proxies: round ${round}/${rounds}, ${s.name}`);
        for (const t of targets) {
          const k = key(t.id, s.name);
          if (skipped.has(k)) continue;
          try {
            const r = await runWrk(t.port, scripts[i] as string, s, seconds);
            runs.get(k)?.push({ round, ...r });
          } catch (e) {
            skipped.set(k, String(e));
          }
        }
      }
    }
  } catch (e) {
    console.log(`${title}\n  stopped early: ${String(e)}\n`);
  } finally {
    await Promise.all(children.map(stop));
    process.removeListener('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  }

  // Paired ratios: target / other, run by run within a round, then the median.
  const paired = (t: string, other: string, s: string, field: 'requestsPerSecond'): number => {
    const mine = runs.get(key(t, s)) ?? [];
    const theirs = new Map((runs.get(key(other, s)) ?? []).map((r) => [r.round, r[field]]));
    return median(
      mine.flatMap((r) => (theirs.has(r.round) ? [r[field] / (theirs.get(r.round) as number)] : [])),
    );
  };
  const rows: ProxyRow[] = shapes.flatMap((s) =>
    targets.map((t): ProxyRow => {
      const rs = runs.get(key(t.id, s.name)) ?? [];
      const skip = skipped.get(key(t.id, s.name));
      return {
        body: s.name,
        target: t.id,
        label: t.label,
        runs: rs,
        ...(rs.length > 0
          ? {
              requestsPerSecond: summarize(rs.map((r) => r.requestsPerSecond)),
              p50Ms: median(rs.map((r) => r.p50Ms)),
              p99Ms: median(rs.map((r) => r.p99Ms)),
            }
          : {}),
        ratios: Object.fromEntries(
          ['a', 'b', 'b-tls', 'd', 'n'].map((o) => [o, paired(t.id, o, s.name, 'requestsPerSecond')]),
        ),
        ...(skip === undefined ? {} : { skipped: skip }),
      };
    }),
  );

  const ratio = (x: number | undefined): string =>
    x === undefined || !Number.isFinite(x) ? '-' : formatRatio(x);
  printTable(
    title,
    [
      { header: 'target' },
      { header: 'req/s', align: 'right' },
      { header: `spread (${rounds} runs)` },
      { header: 'p50 ms', align: 'right' },
      { header: 'p99 ms', align: 'right' },
      { header: 'vs (a)', align: 'right' },
      { header: 'errors', align: 'right' },
    ],
    shapes.flatMap((s) => [
      [s.name],
      ...rows
        .filter((r) => r.body === s.name)
        .map((r) =>
          r.requestsPerSecond === undefined
            ? [r.label, '-', `skipped: ${(r.skipped ?? 'no runs').slice(0, 100)}`, '', '', '', '']
            : [
                r.label,
                formatRate(r.requestsPerSecond.median),
                formatSpread(r.requestsPerSecond, formatRate),
                fmtMs(r.p50Ms),
                fmtMs(r.p99Ms),
                ratio(r.ratios.a),
                formatInt(r.runs.reduce((a, x) => a + x.errors, 0)),
              ],
        ),
    ]),
    [
      'Pinning (taskset): the proxy under test on CPU 0 (nginx 1 worker; HAProxy nbthread 1; coexist and (n) one Node process;',
      'for (d) nginx and its Node lookup service share CPU 0); wrk and the back end (one node:http process) on CPU 1, so (a)',
      'is the most the load side can feed, not a back end with a core of its own. All targets run all the time, idle when',
      'not measured. Rounds interleaved (round 1 of every target and shape, then round 2 ...); 1 s warm-up per cell.',
      'Back end answers by path (4 KiB / 10 KiB / 100 KiB, Content-Length), after reading the request body; plain HTTP for',
      "(a)-(d), HTTPS (lab CA, session reuse by the pool) for (b'), (n) and (e): coexist's next hop is MBX2013-NY's",
      'back-end site https://mbx2013-ny.o365info.local:444, sent to the bench back end by upstreams.resolve.',
      'nginx: proxy_buffering and proxy_request_buffering off, 64 KiB buffers, upstream keepalive 64, access_log off.',
      '(d): auth_request subrequest per request to a node:http service that maps the Basic user to an upstream group name',
      '(no password check, no cache); (e): Basic alice@o365info.com, password checked once, then from the HMAC cache.',
      "coexist log 'info' = pino JSON access line per request to the child's stdout, which is /dev/null.",
      'Under 64 closed-loop connections latency is mostly queueing (p50 ~ 64 / throughput). Noisy shared VM: compare',
      'only figures of one run; the paired ratios below are the steadier figures.',
    ],
  );

  const goalRows = shapes.flatMap((s) =>
    (['e', 'e-info'] as const).map((id) => {
      const r = rows.find((x) => x.body === s.name && x.target === id);
      const get = (t: string): ProxyRow | undefined => rows.find((x) => x.body === s.name && x.target === t);
      const addedP99 = (t: string): number => (get(t)?.p99Ms ?? Number.NaN) - (get('a')?.p99Ms ?? Number.NaN);
      const eAdded = addedP99(id);
      const nAdded = addedP99('b');
      const verdict = (x: number | undefined, goal: number): string =>
        x === undefined || !Number.isFinite(x) ? '-' : x >= goal ? 'met' : 'NOT met';
      return [
        s.name,
        id === 'e' ? 'silent' : 'info',
        ratio(r?.ratios.a),
        ratio(r?.ratios.b),
        ratio(r?.ratios['b-tls']),
        ratio(r?.ratios.d),
        ratio(r?.ratios.n),
        `${verdict(r?.ratios.d, 1.5)} / ${verdict(r?.ratios.b, 0.6)}`,
        `${fmtMs(eAdded)} vs ${fmtMs(nAdded)}`,
        Number.isFinite(eAdded) && Number.isFinite(nAdded)
          ? eAdded <= 2 * Math.max(nAdded, 0)
            ? 'met'
            : 'NOT met'
          : '-',
      ];
    }),
  );
  printTable(
    'Proxies: coexist (e) against the others, req/s ratios paired per round (median), and the goals of issue #6',
    [
      { header: 'shape' },
      { header: 'log' },
      { header: '(e)/(a)', align: 'right' },
      { header: '(e)/(b)', align: 'right' },
      { header: "(e)/(b')", align: 'right' },
      { header: '(e)/(d)', align: 'right' },
      { header: '(e)/(n)', align: 'right' },
      { header: '>=1.5x (d) / >=0.6x (b)' },
      { header: 'added p99 ms: (e) vs (b)' },
      { header: 'p99 within 2x nginx' },
    ],
    goalRows,
    [
      "Added p99 = target's p99 minus (a)'s p99 in the same sitting (medians over rounds); goal: (e)'s <= 2x (b)'s.",
      "(b') is nginx with the same TLS hop coexist makes; the goals are stated against (b), plain HTTP upstream.",
      "(n) is the same Node runtime and client doing nothing of coexist's work: (e)/(n) is what coexist's work costs,",
      'and (n)/(b) bounds what any single-process Node proxy can reach against nginx here.',
    ],
  );
  return rows;
}
