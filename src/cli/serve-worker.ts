/**
 * One worker of `coexist serve --workers N` (docs/operations.md "Workers"): a full front end in its own
 * process, started by the primary (serve-cluster.ts) with the same command line. What it gets from the
 * primary over the cluster's IPC channel, never on a command line or in a log: the OWA session key when no
 * `--session-key-file` is given, the ports to bind, and the shared store when no `--redis` is given
 * (dataplane/ipc-store.ts). It has no admin listener: the primary's asks it for its readiness, status and
 * series, and tells it to reload, drain or stop.
 */
import pino from 'pino';
import type { NodeListener, ServerNode } from '../dataplane/index.ts';
import { nodeStatus } from '../dataplane/index.ts';
import { edgeLimits } from '../dataplane/edge-limits.ts';
import type { EdgeLimits } from '../dataplane/edge-limits.ts';
import { IpcSharedStore } from '../dataplane/ipc-store.ts';
import type { SharedStore } from '../dataplane/shared-store.ts';
import type { DrainReport } from '../dataplane/reload.ts';
import type { Logger } from '../observability/log.ts';
import { createLogger } from '../observability/log.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Lifecycle } from './reload.ts';

/** The primary's first message to a worker. */
export interface WorkerInit {
  readonly coexist: 'init';
  /** 1..N: the `worker` field of its log lines. */
  readonly slot: number;
  /** The OWA session key (base64) the primary made, when no `--session-key-file` is given. */
  readonly sessionKey?: string;
  /** Ports to bind instead of the configured ones, by listener name (the first worker's, for port 0). */
  readonly ports: Readonly<Record<string, number>>;
  /** Each worker binds its own socket with SO_REUSEPORT (else the cluster shares the primary's). */
  readonly reusePort: boolean;
  /** The primary holds the shared store (no `--redis`). */
  readonly ipcStore: boolean;
}

/** What the primary asks a worker (an `ask`), or tells it. */
export type ToWorker =
  | WorkerInit
  | {
      readonly coexist: 'ask';
      readonly id: number;
      readonly what: 'readiness' | 'status' | 'metrics' | 'reload';
      readonly trigger?: string;
    }
  | { readonly coexist: 'drain' | 'end-grace' | 'close'; readonly trigger: string };

/** What a worker tells the primary. */
export type FromWorker =
  | { readonly coexist: 'hello' }
  | { readonly coexist: 'ready'; readonly ports: Readonly<Record<string, number>> }
  | { readonly coexist: 'reply'; readonly id: number; readonly value: unknown }
  | { readonly coexist: 'drained'; readonly report: DrainReport | undefined };

/** What `serve` needs to run as a worker. */
export interface WorkerSetup {
  readonly slot: number;
  readonly workers: number;
  readonly sessionKeys?: Uint8Array[];
  /** The listeners to start: the configured ones with the primary's ports and SO_REUSEPORT. */
  listeners(configured: readonly NodeListener[]): NodeListener[];
  /** `startServerNode`'s `sharedStore` when the primary holds it. */
  sharedStore(logger: Logger, metrics: Metrics): Promise<{ sharedStore?: SharedStore }>;
  /** Started: tell the primary, and answer it from now on. */
  serve(parts: { readonly node: ServerNode; readonly life: Lifecycle; readonly metrics: Metrics }): void;
  /** Drained or closed: tell the primary and let the process end. */
  done(report: DrainReport | undefined): void;
}

function send(message: FromWorker, then?: () => void): void {
  if (process.connected && process.send) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

/**
 * A worker's share of the edge's caps: `limits.maxConnections` and `maxConnectionsPerSource` are the front
 * end's, so each of N workers admits its Nth (rounded up), and together they never admit more than the
 * total plus N-1 (docs/security.md "Limits and timeouts at the edge"). 0 (no cap) stays 0.
 */
export function shareLimits(limits: Partial<EdgeLimits> | undefined, workers: number): Partial<EdgeLimits> {
  const all = edgeLimits(limits);
  const share = (n: number): number => (n > 0 ? Math.ceil(n / workers) : 0);
  return {
    ...limits,
    maxConnections: share(all.maxConnections),
    maxConnectionsPerSource: share(all.maxConnectionsPerSource),
  };
}

/**
 * A worker's logger: each line carries `worker` (its slot) beside pino's `pid`, and is written with one
 * write(2) of its own, so lines of workers sharing standard output never interleave (a pipe or the journal
 * takes a write of up to 4 KiB whole).
 */
export function workerLogger(level: string, worker: { readonly slot: number }): Logger {
  return createLogger({ level, destination: pino.destination({ dest: 1, sync: true }) }).child({
    worker: worker.slot,
  });
}

/** Wait for the primary's `init`, then return what `serve` needs to run as this worker. */
export async function joinPrimary(workers: number): Promise<WorkerSetup> {
  const init = await new Promise<WorkerInit>((resolve) => {
    const on = (m: unknown): void => {
      if ((m as Partial<WorkerInit> | null)?.coexist !== 'init') return;
      process.off('message', on);
      resolve(m as WorkerInit);
    };
    process.on('message', on);
    // Asked for once listening: a message sent before a listener is there would be lost.
    send({ coexist: 'hello' });
  });
  return {
    slot: init.slot,
    workers,
    ...(init.sessionKey === undefined ? {} : { sessionKeys: [Buffer.from(init.sessionKey, 'base64')] }),
    listeners: (configured) =>
      configured.map((l) => ({
        ...l,
        port: init.ports[l.name] ?? l.port,
        ...(init.reusePort ? { reusePort: true } : {}),
      })),
    sharedStore: async (logger, metrics) => {
      if (!init.ipcStore) return {};
      const store = await IpcSharedStore.open({
        channel: {
          send: (m) => {
            if (!process.connected || !process.send) return false;
            process.send(m);
            return true;
          },
          subscribe: (listener) => {
            process.on('message', listener);
            return () => process.off('message', listener);
          },
        },
        log: logger,
        onState: metrics.sharedStoreObserver(),
      });
      return { sharedStore: store };
    },
    serve: ({ node, life, metrics }) => {
      process.on('message', (m: ToWorker) => {
        if (m.coexist === 'ask') void answer(m.id, m.what, m.trigger ?? 'primary');
        // The first drain: from the primary, unless a signal to this process (systemd's stop reaches every
        // process of the unit) started it already; a second one ends the grace.
        else if (m.coexist === 'drain') {
          if (!life.draining) life.drain(m.trigger);
        } else if (m.coexist === 'end-grace') life.drain(m.trigger);
        else if (m.coexist === 'close') life.close();
      });
      const answer = async (id: number, what: string, trigger: string): Promise<void> => {
        let value: unknown;
        try {
          if (what === 'readiness') value = node.health.readiness();
          else if (what === 'status') value = nodeStatus(node);
          else if (what === 'metrics') value = await metrics.registry.getMetricsAsJSON();
          else if (what === 'reload') value = await life.reload(trigger);
        } catch (err) {
          value = { error: err instanceof Error ? err.message : String(err) };
        }
        send({ coexist: 'reply', id, value });
      };
      const ports: Record<string, number> = {};
      for (const l of node.listeners) ports[l.name] = l.port;
      send({ coexist: 'ready', ports });
    },
    done: (report) => {
      send({ coexist: 'drained', report }, () => process.disconnect?.());
    },
  };
}
