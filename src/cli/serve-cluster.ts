/**
 * The primary of `coexist serve --workers N` (docs/operations.md "Workers"): it forks N workers
 * (serve-worker.ts), each a full front end on the same ports, and serves nothing itself. Connections are
 * spread by the kernel, never through the primary: where the runtime has SO_REUSEPORT for TCP listeners
 * (`reusePort`, Node 22.12 and later; found by trying it, not by version) each worker binds its own socket
 * and the kernel hashes connections over them; else the workers share one listening socket
 * (`SCHED_NONE`) and whichever is free accepts. (Node's default round-robin would pass every connection
 * through this process.)
 *
 * What the workers share, as front ends do (docs/operations.md "Several front ends"): one OWA session key
 * (the file's, or one made here and handed over IPC), and the shared store (Redis, or the one held here,
 * dataplane/ipc-store.ts). The admin listener is here alone: `/metrics` merged, `/readyz` and `/status` over
 * every worker (serve-merge.ts); SIGHUP and `POST /reload` check the estate here once, then every worker
 * reloads; SIGTERM and `POST /drain` drain every worker, and the primary exits when all have. A worker that
 * dies is replaced (not while draining), within a bound.
 */
import { randomBytes } from 'node:crypto';
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { CommanderError } from 'commander';
import { Counter, Gauge } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Server } from '../core/estate/estate.ts';
import type { Readiness } from '../dataplane/health.ts';
import type { NodeListener } from '../dataplane/index.ts';
import { MemorySharedStore } from '../dataplane/shared-store.ts';
import { answerStoreRequest } from '../dataplane/ipc-store.ts';
import type { DrainReport, ReloadResult } from '../dataplane/reload.ts';
import { restartReasons } from '../dataplane/reload.ts';
import type { NodeStatus } from '../dataplane/status.ts';
import type { EdgeLimits } from '../dataplane/edge-limits.ts';
import type { AdminAnswer } from '../observability/admin-actions.ts';
import { CertificatesInUse } from './certificates.ts';
import type { CertificateInUse } from '../observability/certificates.ts';
import { lifecycleMetrics } from '../observability/lifecycle-metrics.ts';
import { createLogger } from '../observability/log.ts';
import { Metrics, startAdminServer } from '../observability/metrics.ts';
import type { Io } from './common.ts';
import type { loadCaBundle } from './certificates.ts';
import type { loadInternalPki } from './internal-pki.ts';
import type { sessionOptions } from './session-options.ts';
import type { Loaded } from './reload.ts';
import { Lifecycle } from './reload.ts';
import { clientConnections, mergeMetrics, mergeReadiness, mergeStatus } from './serve-merge.ts';
import type { FromWorker, ToWorker, WorkerInit } from './serve-worker.ts';

/** What `serve` reads and checks before it starts anything: each bad file or option named. */
export interface CheckedServe {
  readonly estateFile: string;
  /** Everything read from files, at start and again at each reload (docs/operations.md "Reload"). */
  readonly load: () => Promise<Loaded & { readonly inUse: readonly CertificateInUse[] }>;
  /** The certificates the last `load` read. */
  readonly lastLoaded: () => readonly CertificateInUse[];
  readonly first: Loaded & { readonly inUse: readonly CertificateInUse[] };
  readonly server: Server;
  readonly listeners: readonly NodeListener[];
  readonly drainGraceMs: number;
  readonly drainTimeoutMs: number;
  readonly pki: Awaited<ReturnType<typeof loadInternalPki>>;
  readonly caBundle: Awaited<ReturnType<typeof loadCaBundle>> | undefined;
  readonly session: ReturnType<typeof sessionOptions>;
}

/** What the primary needs of `serve`'s options and checked files (commands/serve.ts). */
export interface PrimaryInput {
  readonly o: {
    readonly admin: string;
    readonly logLevel: string;
    readonly sessionKeyFile?: string;
    readonly redis?: string;
  };
  readonly io: Io;
  readonly workers: number;
  readonly hostPort: (s: string) => { host: string; port: number };
  readonly checked: CheckedServe;
  /** The certificates of `--internal-ca`, `--client-cert` (certificates.ts `internalPkiInUse`). */
  readonly pkiInUse?: readonly CertificateInUse[];
}

/** A crash loop: more restarts than this within `crashWindowMs` stops the service (exit 1). */
const maxRestarts = 5;
const crashWindowMs = 60_000;
/** Longest a worker may take to answer the primary's question (readiness, status, series). */
const askTimeoutMs = 5_000;

/**
 * Whether this runtime binds TCP listeners with SO_REUSEPORT (`reusePort`): two listeners on one port both
 * succeed only if it does. A runtime without it ignores the option, and the second bind fails.
 */
export async function hasReusePort(host = '127.0.0.1'): Promise<boolean> {
  const listen = (port: number): Promise<ReturnType<typeof createServer> | undefined> =>
    new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(undefined));
      s.listen({ host, port, exclusive: true, ...({ reusePort: true } as object) }, () => resolve(s));
    });
  const a = await listen(0);
  if (a === undefined) return false;
  const b = await listen((a.address() as AddressInfo).port);
  a.close();
  b?.close();
  return b !== undefined;
}

interface Slot {
  readonly slot: number;
  worker: Worker;
  ready: boolean;
  exited: boolean;
  /** It said it drained (told by the primary, or by a signal of its own: systemd's stop reaches every process). */
  drained: boolean;
}

/** Run the primary until every worker has drained or stopped. */
export async function runPrimary(input: PrimaryInput): Promise<void> {
  const { o, io, checked, workers } = input;
  const logger = createLogger({ level: o.logLevel });
  const server = checked.server;
  // Reloads, the drain and the certificates are the primary's series; the workers' are merged in.
  const metrics = new Metrics({ server: server.name });
  const registers = [metrics.registry];
  const running = new Gauge({
    name: 'coexist_workers',
    help: 'Worker processes running and ready.',
    registers,
  });
  const restarts = new Counter({
    name: 'coexist_worker_restarts_total',
    help: 'Workers that exited unexpectedly and were replaced (docs/operations.md "Workers").',
    registers,
  });
  const perWorker = new Gauge({
    name: 'coexist_worker_client_connections',
    help: "Client connections open now in each worker (how the kernel spreads them); coexist_client_connections is the front end's total.",
    labelNames: ['worker'] as const,
    registers,
  });
  const inUseNow = new CertificatesInUse(metrics, logger, [
    ...(input.pkiInUse ?? []),
    ...(checked.caBundle?.inUse ?? []),
  ]);
  inUseNow.use(checked.first.inUse);

  const reusePort = await hasReusePort();
  // Before the first fork: a shared socket is accepted from by the workers themselves, never round-robin here.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const sessionKey = o.sessionKeyFile === undefined ? randomBytes(32).toString('base64') : undefined;
  const store = o.redis === undefined ? new MemorySharedStore() : undefined;

  const slots = new Map<number, Slot>();
  /** The first worker's ports: with SO_REUSEPORT, every other worker's too (a port 0 is chosen once). */
  let readyPorts: Record<string, number> | undefined;
  let onFirstReady: () => void = () => undefined;
  const firstReady = new Promise<void>((resolve) => (onFirstReady = resolve));
  let stopping = false;
  let draining = false;
  const restartTimes: number[] = [];
  let allExited: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => (allExited = resolve));
  const reports: DrainReport[] = [];
  let nextAsk = 1;
  const asks = new Map<number, (value: unknown) => void>();
  let started: (() => void) | undefined;
  let failedAtStart: ((code: number) => void) | undefined;

  const fork = (slot: number): Slot => {
    const worker = cluster.fork();
    const s: Slot = { slot, worker, ready: false, exited: false, drained: false };
    slots.set(slot, s);
    const init: WorkerInit = {
      coexist: 'init',
      slot,
      ...(sessionKey === undefined ? {} : { sessionKey }),
      ports: reusePort ? (readyPorts ?? {}) : {},
      reusePort,
      ipcStore: store !== undefined,
    };
    worker.on('message', (m: FromWorker) => {
      if (store && answerStoreRequest(store, m, (a) => worker.isConnected() && worker.send(a))) return;
      if (m.coexist === 'hello') worker.send(init);
      else if (m.coexist === 'ready') {
        if (readyPorts === undefined) {
          readyPorts = { ...m.ports };
          onFirstReady();
        }
        s.ready = true;
        running.set([...slots.values()].filter((x) => x.ready && !x.exited).length);
        logger.info({ worker: slot, workerPid: worker.process.pid, ports: m.ports }, 'worker ready');
        // Every worker forked (with SO_REUSEPORT the first one is alone for a while) and ready.
        if (slots.size === workers && [...slots.values()].every((x) => x.ready)) started?.();
      } else if (m.coexist === 'reply') asks.get(m.id)?.(m.value);
      else if (m.coexist === 'drained') {
        s.drained = true;
        if (m.report) reports.push(m.report);
      }
    });
    return s;
  };

  cluster.on('exit', (worker, code, signal) => {
    const s = [...slots.values()].find((x) => x.worker === worker);
    if (s === undefined) return;
    s.exited = true;
    s.ready = false;
    running.set([...slots.values()].filter((x) => x.ready && !x.exited).length);
    if (failedAtStart) {
      failedAtStart(code ?? 1);
      return;
    }
    if (stopping || s.drained) {
      // A worker drained by a signal of its own before the primary's came: not replaced; when every one
      // has, the primary ends as after its own drain.
      if ([...slots.values()].every((x) => x.exited)) {
        if (stopping) allExited();
        else life.drain('every worker drained');
      }
      return;
    }
    const fields = { worker: s.slot, workerPid: worker.process.pid, code, signal };
    const now = Date.now();
    restartTimes.push(now);
    while ((restartTimes[0] ?? now) < now - crashWindowMs) restartTimes.shift();
    if (restartTimes.length > maxRestarts) {
      logger.error(
        { ...fields, restarts: restartTimes.length, windowMs: crashWindowMs },
        'worker exited: too many restarts, stopping (a crash loop)',
      );
      process.exitCode = 1;
      life.close();
      return;
    }
    restarts.inc();
    logger.warn(fields, 'worker exited unexpectedly: starting another');
    fork(s.slot);
  });

  // Start the first worker alone when each binds its own socket: its ports are the others' (port 0).
  const startWorkers = new Promise<void>((resolve, reject) => {
    started = resolve;
    failedAtStart = (code) => reject(code);
  });
  try {
    fork(1);
    if (reusePort) await Promise.race([firstReady, startWorkers]);
    for (let slot = 2; slot <= workers; slot++) fork(slot);
    await startWorkers;
  } catch (code) {
    // A worker that cannot start (it printed why): stop the others, exit with its code.
    stopping = true;
    for (const s of slots.values()) if (!s.exited) s.worker.process.kill('SIGKILL');
    throw new CommanderError(Number(code) || 1, 'coexist.worker', 'a worker did not start');
  }
  failedAtStart = undefined;

  const live = () => [...slots.values()].filter((s) => !s.exited);
  const ask = (s: Slot, what: string, extra: object = {}, timeoutMs = askTimeoutMs): Promise<unknown> =>
    new Promise((resolve) => {
      if (s.exited || !s.worker.isConnected()) {
        resolve(undefined);
        return;
      }
      const id = nextAsk++;
      const timer = setTimeout(() => {
        asks.delete(id);
        resolve(undefined);
      }, timeoutMs);
      asks.set(id, (value) => {
        clearTimeout(timer);
        asks.delete(id);
        resolve(value);
      });
      const message: ToWorker = { coexist: 'ask', id, what: what as 'status', ...extra };
      s.worker.send(message);
    });
  const tell = (coexist: 'drain' | 'end-grace' | 'close', trigger: string): void => {
    for (const s of live()) if (s.worker.isConnected()) s.worker.send({ coexist, trigger } as ToWorker);
  };
  const all = (): Slot[] => [...slots.values()].sort((a, b) => a.slot - b.slot);

  // The estate in use, for what a reload may not change (checked here once, as a single process does).
  let current: { server: Server; limits: Partial<EdgeLimits> | undefined } = {
    server,
    limits: checked.first.settings.limits,
  };
  let generation = 1;
  let reloading = Promise.resolve();
  const node = {
    get generation() {
      return generation;
    },
    async reload(next: Parameters<typeof restartReasons>[1]): Promise<ReloadResult> {
      if (draining || stopping) return { ok: false, reasons: ['the server is draining'] };
      const reasons = restartReasons(current, next);
      if (reasons.length > 0) return { ok: false, reasons };
      // Every worker reads and swaps in the files itself, one worker after another.
      const run = reloading.then(async () => {
        const answers = await Promise.all(
          live().map(async (s) => ({
            s,
            a: (await ask(s, 'reload', {}, 120_000)) as AdminAnswer | undefined,
          })),
        );
        return answers.filter(({ a }) => a?.status !== 200);
      });
      reloading = run.then(() => undefined);
      const failed = await run;
      if (failed.length > 0) {
        logger.error(
          { workers: failed.map(({ s, a }) => ({ worker: s.slot, answer: a?.body })) },
          'reload: a worker refused it; the workers may now serve different estates: reload again or restart',
        );
        return {
          ok: false,
          reasons: failed.map(({ s, a }) => `worker ${s.slot}: ${JSON.stringify(a?.body ?? 'no answer')}`),
        };
      }
      current = { server: next.index.server(server.name) ?? server, limits: next.limits };
      generation++;
      return { ok: true, generation, retired: Promise.resolve() };
    },
    async drain(d: { endGrace?: Promise<unknown>; cutNow?: Promise<unknown> }): Promise<DrainReport> {
      draining = true;
      stopping = true;
      const began = Date.now();
      let cutShort = false;
      tell('drain', 'primary');
      void d.endGrace?.then(() => tell('end-grace', 'POST /drain'));
      void d.cutNow?.then(() => {
        cutShort = true;
        tell('close', 'primary');
      });
      if (live().length === 0) allExited();
      await exited;
      return {
        pingsAnswered: reports.reduce((n, r) => n + r.pingsAnswered, 0),
        cut: reports.reduce((n, r) => n + r.cut, 0),
        cutShort,
        ms: Date.now() - began,
      };
    },
    async close(): Promise<void> {
      stopping = true;
      tell('close', 'primary');
      if (live().length === 0) allExited();
      await exited;
    },
  };
  const life = new Lifecycle({
    node,
    load: checked.load,
    // Each worker opens its own directory; the primary only checks the estate.
    openDirectory: () => Promise.resolve(undefined),
    directory: undefined,
    logger,
    observer: inUseNow.following(lifecycleMetrics(metrics), checked.lastLoaded),
    drainGraceMs: checked.drainGraceMs,
    drainTimeoutMs: checked.drainTimeoutMs,
    estateFile: checked.estateFile,
  });
  const admin = await startAdminServer({
    actions: life.actions,
    ...input.hostPort(o.admin),
    metrics: {
      contentType: metrics.contentType,
      text: async () => {
        const series = await Promise.all(
          all().map(async (s) => ({
            s,
            m: ((await ask(s, 'metrics')) ?? []) as MetricObjectWithValues<MetricValue<string>>[],
          })),
        );
        perWorker.reset();
        for (const { s, m } of series) perWorker.set({ worker: String(s.slot) }, clientConnections(m));
        return mergeMetrics(
          series.map(({ m }) => m),
          await metrics.registry.getMetricsAsJSON(),
        );
      },
    },
    readiness: async () =>
      mergeReadiness(
        await Promise.all(
          all().map(async (s) => ({
            worker: s.slot,
            pid: s.worker.process.pid,
            readiness: (await ask(s, 'readiness')) as Readiness | undefined,
          })),
        ),
        draining,
      ),
    status: async () => ({
      ...mergeStatus(
        server.name,
        new Date().toISOString(),
        await Promise.all(
          all().map(async (s) => ({
            worker: s.slot,
            ...(s.worker.process.pid === undefined ? {} : { pid: s.worker.process.pid }),
            status: (await ask(s, 'status')) as NodeStatus | undefined,
          })),
        ),
        draining,
      ),
      certificates: inUseNow.status(),
    }),
  });
  for (const l of checked.listeners) {
    const port = readyPorts?.[l.name] ?? l.port;
    io.out(
      `coexist serve: ${server.name} ${l.name} listening on ${l.certificates && l.certificates.length > 0 ? 'https' : 'http'} port ${port}\n`,
    );
  }
  io.out(
    `coexist serve: ${workers} workers (${reusePort ? 'SO_REUSEPORT' : 'one shared listening socket'}); metrics on http://${input.hostPort(o.admin).host}:${admin.port}/metrics\n`,
  );
  await life.run();
  await admin.close();
  logger.info({ workers }, 'every worker stopped');
}
