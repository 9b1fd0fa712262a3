/**
 * Extra front ends for the lab: more CAS2013-NY processes' worth of server nodes (in this process), each
 * on its own loopback port with the lab CA's certificate for the estate's names, reaching the lab's next
 * hops as the lab's own front end does. With one session key set and one Redis they are the front ends of
 * a load-balanced estate (docs/operations.md "Several front ends"); a client picks the front end by port,
 * as a load balancer without affinity would.
 */
import { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Agent, buildConnector, request } from 'undici';
import type { LockoutOptions, ServerNode } from '../../src/dataplane/index.ts';
import { startServerNode } from '../../src/dataplane/index.ts';
import type { SharedStoreSettings } from '../../src/dataplane/redis-store.ts';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import { Metrics } from '../../src/observability/metrics.ts';

/** A log destination that keeps its JSON lines and says when one matching a test arrives. */
export class WatchedLog extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  readonly #waiters: { test: (l: Record<string, unknown>) => boolean; resolve: () => void }[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    for (const text of chunk.toString('utf8').split('\n')) {
      if (text === '') continue;
      const line = JSON.parse(text) as Record<string, unknown>;
      this.lines.push(line);
      for (const w of [...this.#waiters])
        if (w.test(line)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve();
        }
    }
    cb();
  }

  /** Resolves at the next line (from now) that `test` accepts. */
  next(test: (l: Record<string, unknown>) => boolean): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }

  /** The raw text of every line, for scans. */
  text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}

/** One extra front end. */
export interface FrontEnd {
  readonly node: ServerNode;
  readonly metrics: Metrics;
  readonly log: WatchedLog;
  /** A request to the estate's names, sent to this front end. */
  fetch(
    url: string,
    o?: { method?: string; headers?: Record<string, string>; body?: string },
  ): Promise<{
    status: number;
    headers: Dispatcher.ResponseData['headers'];
    body: string;
    requestId: string;
  }>;
  close(): Promise<void>;
}

/** How the extra front ends are set up. */
export interface FrontEndOptions {
  readonly sessionKeys?: readonly Uint8Array[];
  readonly redis?: SharedStoreSettings;
  readonly lockout?: LockoutOptions;
  readonly cookieName?: string;
}

/** Start one more CAS2013-NY front end for `lab`. */
export async function startFrontEnd(lab: Lab, o: FrontEndOptions = {}): Promise<FrontEnd> {
  const server = lab.index.server('CAS2013-NY');
  if (!server) throw new Error('the lab estate has no CAS2013-NY');
  const hosts = ['mail.o365info.com', 'autodiscover.o365info.com', server.fqdn];
  const log = new WatchedLog();
  const metrics = new Metrics({ server: server.name });
  const node = await startServerNode({
    index: lab.index,
    server,
    listeners: [
      {
        name: 'front',
        role: 'cas',
        host: labAddresses.listen,
        port: 0,
        certificates: hosts.map((h) => ({ hosts: [h], ...lab.ca.issue([h]) })),
      },
    ],
    logger: createLogger({ level: 'info', destination: log }),
    metrics,
    upstreams: {
      ca: lab.ca.certPem,
      localAddress: labAddresses.servers,
      resolve: (hostname: string, port: number) => lab.resolve(hostname, port),
      clientCertificate: lab.ca.issue([server.fqdn], { serverAuth: false, clientAuth: true }),
    },
    internalCa: lab.ca.certPem,
    serverAddresses: [labAddresses.servers],
    health: { probe: false },
    ...(o.sessionKeys === undefined ? {} : { sessionKeys: o.sessionKeys }),
    ...(o.redis === undefined ? {} : { redis: o.redis }),
    ...(o.lockout === undefined ? {} : { lockout: o.lockout }),
  });
  const port = node.port('front');
  const base = buildConnector({ ca: lab.ca.certPem });
  const agent = new Agent({
    localAddress: labAddresses.externalClient,
    connect: (opts, cb) =>
      base({ ...opts, hostname: labAddresses.listen, port: String(port), servername: opts.hostname }, cb),
  });
  return {
    node,
    metrics,
    log,
    async fetch(url, r = {}) {
      const res = await request(url, {
        dispatcher: agent,
        method: (r.method ?? (r.body === undefined ? 'GET' : 'POST')) as Dispatcher.HttpMethod,
        headers: r.headers ?? {},
        ...(r.body === undefined ? {} : { body: r.body }),
      });
      return {
        status: res.statusCode,
        headers: res.headers,
        body: await res.body.text(),
        requestId: String(res.headers['request-id'] ?? ''),
      };
    },
    async close() {
      await agent.close();
      await node.close(0);
    },
  };
}
