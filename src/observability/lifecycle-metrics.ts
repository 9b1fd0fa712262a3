/**
 * Reload and drain in the metrics (docs/operations.md "Reload", "Drain"): reloads by result, the estate in
 * use (its generation and when it was loaded), and whether the server is draining. On the server's own
 * registry, beside `Metrics`' series.
 */
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from './metrics.ts';

/** What a reload or a drain reports. */
export interface LifecycleObserver {
  /** A reload ended: swapped in (`ok`) or refused (the estate has problems, or it needs a restart). */
  reload(result: 'ok' | 'refused', generation: number): void;
  draining(): void;
}

/** The series, registered on `metrics`' registry; generation 1 loaded now. */
export function lifecycleMetrics(metrics: Metrics, now: () => number = Date.now): LifecycleObserver {
  const registers = [metrics.registry];
  const reloads = new Counter({
    name: 'coexist_reloads_total',
    help: 'Reloads of the estate file and certificates (SIGHUP, POST /reload), by result: ok, or refused (the old estate keeps serving).',
    labelNames: ['result'] as const,
    registers,
  });
  const generation = new Gauge({
    name: 'coexist_estate_generation',
    help: 'The estate in use: 1 at start, one more at each reload that was swapped in.',
    registers,
  });
  const loaded = new Gauge({
    name: 'coexist_estate_loaded_timestamp_seconds',
    help: 'When the estate in use was loaded (Unix time).',
    registers,
  });
  const draining = new Gauge({
    name: 'coexist_draining',
    help: 'Whether the server is draining (1): its health pages answer 503 and it stops once requests end.',
    registers,
  });
  for (const result of ['ok', 'refused'] as const) reloads.inc({ result }, 0);
  generation.set(1);
  loaded.set(now() / 1000);
  draining.set(0);
  return {
    reload(result, n) {
      reloads.inc({ result });
      if (result !== 'ok') return;
      generation.set(n);
      loaded.set(now() / 1000);
    },
    draining: () => draining.set(1),
  };
}
