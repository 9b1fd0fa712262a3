/**
 * What the primary of `coexist serve --workers N` answers on its admin listener, made from its workers'
 * answers (docs/operations.md "Workers"): `/readyz` (ready when every worker is), `/status` (every next hop
 * once, in the worst state any worker sees it in) and `/metrics` (the workers' series added up, each gauge by
 * the rule that fits it, the primary's own series once).
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { AggregatorRegistry } from 'prom-client';
import type { Readiness } from '../dataplane/health.ts';
import type { HopStatus } from '../dataplane/next-hops.ts';
import type { NodeStatus } from '../dataplane/status.ts';

/** One worker as the primary knows it. */
export interface WorkerView {
  /** Its slot, 1..N (the `worker` field of its log lines); a replacement takes the slot of the one it replaces. */
  readonly worker: number;
  readonly pid: number | undefined;
  /** Its answer, or undefined when it is not running or did not answer. */
  readonly readiness?: Readiness | undefined;
}

/** `/readyz` of the primary: ready when every worker runs and is ready; what is down, once. */
export function mergeReadiness(
  workers: readonly WorkerView[],
  draining: boolean,
): Readiness & { readonly workers: readonly { worker: number; pid?: number; ready: boolean }[] } {
  const down = new Map<string, Readiness['down'][number]>();
  for (const w of workers)
    for (const d of w.readiness?.down ?? [])
      down.set(`${d.role} ${d.protocol}`, down.get(`${d.role} ${d.protocol}`) ?? d);
  const ready = !draining && workers.length > 0 && workers.every((w) => w.readiness?.ready === true);
  return {
    ready,
    ...(draining ? { draining: true } : {}),
    directory: workers.some((w) => w.readiness?.directory === 'down') ? 'down' : 'up',
    down: [...down.values()],
    workers: workers.map((w) => ({
      worker: w.worker,
      ...(w.pid === undefined ? {} : { pid: w.pid }),
      ready: w.readiness?.ready === true,
    })),
  };
}

/** How bad a hop's state is: the merged hop takes the worst any worker sees. */
const rank: Readonly<Record<HopStatus['state'], number>> = { up: 0, ejected: 1, down: 2 };

/**
 * `/status` of the primary. Each worker keeps its own view of every next hop (its own probes, its own
 * requests), so a hop is listed once: in the worst state a worker sees (down over ejected over up) with that
 * worker's `since`, the largest counts, the latest error and every protocol; `workers` says which worker saw
 * what (its pid, whether it is ready, its hops that are not up).
 */
export function mergeStatus(
  server: string,
  at: string,
  statuses: readonly { readonly worker: number; readonly pid?: number; readonly status?: NodeStatus }[],
  draining: boolean,
): NodeStatus & { readonly workers: readonly unknown[] } {
  const hops = new Map<string, HopStatus>();
  for (const { status } of statuses)
    for (const h of status?.hops ?? []) {
      const key = `${h.server} ${h.url}`;
      const was = hops.get(key);
      if (was === undefined) {
        hops.set(key, h);
        continue;
      }
      const worse = rank[h.state] > rank[was.state] ? h : was;
      const lastError =
        (h.lastError?.at ?? '') > (was.lastError?.at ?? '') ? h.lastError : (was.lastError ?? h.lastError);
      hops.set(key, {
        ...worse,
        protocols: [...new Set([...was.protocols, ...h.protocols])].sort(),
        consecutiveFailures: Math.max(was.consecutiveFailures, h.consecutiveFailures),
        consecutiveProbeFailures: Math.max(was.consecutiveProbeFailures, h.consecutiveProbeFailures),
        ...(lastError === undefined ? {} : { lastError }),
      });
    }
  const unavailable = new Map<string, NodeStatus['unavailable'][number]>();
  for (const { status } of statuses)
    for (const u of status?.unavailable ?? []) unavailable.set(`${u.role} ${u.protocol}`, u);
  const all = statuses.map((s) => s.status);
  return {
    server,
    at,
    ready: !draining && all.length > 0 && all.every((s) => s?.ready === true),
    directory: all.some((s) => s === undefined || s.directory === 'down') ? 'down' : 'up',
    unavailable: [...unavailable.values()],
    hops: [...hops.values()].sort((a, b) => a.server.localeCompare(b.server) || a.url.localeCompare(b.url)),
    workers: statuses.map((s) => ({
      worker: s.worker,
      ...(s.pid === undefined ? {} : { pid: s.pid }),
      ready: s.status?.ready === true,
      notUp: (s.status?.hops ?? [])
        .filter((h) => h.state !== 'up')
        .map((h) => ({ server: h.server, url: h.url, state: h.state })),
    })),
  };
}

/** Series only the primary reports: reloads and drain are its, certificates it reads too, the workers'. */
export const primarySeries: ReadonlySet<string> = new Set([
  'coexist_reloads_total',
  'coexist_estate_generation',
  'coexist_estate_loaded_timestamp_seconds',
  'coexist_draining',
  'coexist_certificate_expiry_timestamp_seconds',
  'coexist_workers',
  'coexist_worker_restarts_total',
  'coexist_worker_client_connections',
]);

/**
 * How each workers' gauge adds up; everything else is summed (counters, histograms, and gauges that count:
 * connections, requests in flight), and prom-client's process series bring their own rule. A state that every
 * worker reports for itself must not be summed: a next hop up in both workers is up (1), not 2.
 */
const gaugeRules: Readonly<Record<string, 'min' | 'max'>> = {
  // Up only where every worker sees it up; ejected where any worker has ejected it.
  coexist_upstream_up: 'min',
  coexist_upstream_ejected: 'max',
  coexist_directory_up: 'min',
  coexist_shared_store_up: 'min',
};

/** The workers' series and the primary's own, as one registry's Prometheus text. */
export async function mergeMetrics(
  workers: readonly (readonly MetricObjectWithValues<MetricValue<string>>[])[],
  own: readonly MetricObjectWithValues<MetricValue<string>>[],
): Promise<string> {
  const fromWorkers = workers.map((metrics) =>
    metrics
      .filter((m) => !primarySeries.has(m.name))
      .map((m) => {
        const rule = gaugeRules[m.name];
        return rule === undefined ? m : { ...m, aggregator: rule };
      }),
  );
  const mine = own.filter((m) => primarySeries.has(m.name));
  return AggregatorRegistry.aggregate([...fromWorkers, mine] as MetricObjectWithValues<
    MetricValue<string>
  >[][]).metrics();
}

/** One worker's open client connections, from its series. */
export function clientConnections(metrics: readonly MetricObjectWithValues<MetricValue<string>>[]): number {
  const m = metrics.find((x) => x.name === 'coexist_client_connections');
  return m?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}
