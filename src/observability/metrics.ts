/**
 * The front door's Prometheus metrics, fed from the access record, and the admin listener that serves
 * them with the health and readiness probes.
 */
import { Buffer } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CoexistError } from '../core/errors.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import { protocols } from '../core/protocols/protocol.ts';
import type { CertificateInUse } from './certificates.ts';
import type { AccessOutcome, AccessRecord, AuthResult } from './log.ts';
import type { AdminActions } from './admin-actions.ts';
import { actionOf, ownHosts, readRefusal, refusal } from './admin-actions.ts';

/**
 * Seconds, 0.5 ms to 60 s: a front end answers redirects and Autodiscover in well under a millisecond and
 * a proxied request in tens of ms. ActiveSync Ping, EWS streaming notifications and Outlook Anywhere
 * channels are held open for minutes by design and land in +Inf; `_sum` and `_count` stay exact.
 */
const durationBuckets = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

const authResults: readonly AuthResult[] = ['ok', 'bad_credentials', 'locked', 'error'];

const upstreamFailureOutcomes: ReadonlySet<AccessOutcome> = new Set<AccessOutcome>([
  'upstream_timeout',
  'upstream_unreachable',
  'upstream_error',
]);

/** The label value written when a record has no value for a label (the request ended before it was known). */
const none = 'none';

/** Options of `Metrics`. */
export interface MetricsOptions {
  /** This server's estate name: the `server` label on every series. */
  readonly server: string;
  /** Also collect prom-client's process metrics (CPU, memory, event loop, GC) into this registry. */
  readonly defaultMetrics?: boolean;
}

/** The directory cache's events, as `Metrics.directoryObserver()` counts them. */
export interface DirectoryObserver {
  hit(kind: 'lookup' | 'auth'): void;
  miss(kind: 'lookup' | 'auth'): void;
  /** Joined a question already in flight for the same key. */
  coalesced(kind: 'lookup' | 'auth'): void;
  stale(kind: 'lookup' | 'auth'): void;
  error(kind: 'lookup' | 'auth'): void;
  latency(kind: 'lookup' | 'auth', ms: number): void;
}

/** The extranet smart lockout's events (docs/security.md "Extranet smart lockout"), as `Metrics.lockoutObserver()` counts them. */
export interface LockoutObserver {
  /** A wrong password, from a source familiar to the account or not. */
  failure(familiarity: 'familiar' | 'unfamiliar'): void;
  /** A counter reached its threshold: the account (for unfamiliar or familiar sources) or the source is locked. */
  locked(scope: 'unfamiliar' | 'familiar' | 'source'): void;
  /** An attempt answered at once, without asking the directory, because of a lock. */
  refused(scope: 'unfamiliar' | 'familiar' | 'source'): void;
}

/** The health monitor's reports (dataplane/health.ts `HealthObserver`), as `Metrics.healthObserver()` counts them. */
export interface HealthMetricsObserver {
  probe(hop: { readonly server: string }, ok: boolean): void;
  hopState(hop: { readonly server: string }, protocols: ReadonlySet<Protocol>, up: boolean): void;
  directoryState(up: boolean): void;
}

/** The next hops' reports (dataplane/next-hops.ts `NextHopObserver`), as `Metrics.nextHopObserver()` counts them. */
export interface NextHopMetricsObserver {
  request(
    hop: { readonly server: string },
    protocol: Protocol,
    result: 'answered' | 'failed' | 'client_aborted',
  ): void;
  ejected(hop: { readonly server: string }, protocol: Protocol, ejected: boolean): void;
}

/** What the edge refuses or cuts (docs/security.md "Limits and timeouts at the edge"). */
export type EdgeEvent =
  | 'refused_total'
  | 'refused_reserved'
  | 'refused_per_source'
  | 'tls_handshake_timeout'
  | 'head_timeout'
  | 'body_idle_timeout'
  | 'headers_too_large'
  | 'proxy_header_invalid';

const edgeEvents: readonly EdgeEvent[] = [
  'refused_total',
  'refused_reserved',
  'refused_per_source',
  'tls_handshake_timeout',
  'head_timeout',
  'body_idle_timeout',
  'headers_too_large',
  'proxy_header_invalid',
];

/** The edge's events, as `Metrics.edgeObserver()` counts them. */
export interface EdgeObserver {
  event(kind: EdgeEvent): void;
  /** A client connection was admitted. */
  opened(): void;
  /** An admitted client connection closed. */
  closed(): void;
}

/**
 * One server's metrics over its own registry, never prom-client's global one, so tests and several
 * servers in one process (the lab) do not collide.
 */
export class Metrics {
  readonly registry: Registry;
  private readonly requests: Counter<'protocol' | 'decision' | 'outcome' | 'status'>;
  private readonly duration: Histogram<'protocol' | 'outcome'>;
  private readonly upstreamDuration: Histogram<'protocol'>;
  private readonly auth: Counter<'result'>;
  private readonly authMethods: Counter<'protocol' | 'method'>;
  private readonly inflightGauge: Gauge<'protocol'>;
  private readonly upstreamFailures: Counter<'code'>;
  private readonly directoryEvents: Counter<'kind' | 'result'>;
  private readonly directoryDuration: Histogram<'kind'>;
  private readonly edgeEventsTotal: Counter<'event'>;
  private readonly connectionsOpen: Gauge;
  private readonly lockoutFailures: Counter<'familiarity'>;
  private readonly lockouts: Counter<'scope'>;
  private readonly lockoutRefused: Counter<'scope'>;
  private readonly upstreamUp: Gauge<'upstream' | 'protocol'>;
  private readonly probes: Counter<'upstream' | 'result'>;
  private readonly directoryUp: Gauge;
  private readonly sharedStoreUp: Gauge;
  private readonly upstreamRequests: Counter<'upstream' | 'protocol' | 'result'>;
  private readonly upstreamEjected: Gauge<'upstream' | 'protocol'>;
  private readonly certificateExpiry: Gauge<'use' | 'subject' | 'hosts'>;

  constructor(options: MetricsOptions) {
    this.registry = new Registry();
    const registers = [this.registry];
    this.registry.setDefaultLabels({ server: options.server });
    this.requests = new Counter({
      name: 'coexist_requests_total',
      help: 'Requests handled, by protocol, decision kind, outcome and status sent to the client.',
      labelNames: ['protocol', 'decision', 'outcome', 'status'] as const,
      registers,
    });
    this.duration = new Histogram({
      name: 'coexist_request_duration_seconds',
      help: 'Time from the request head to the end of the answer.',
      labelNames: ['protocol', 'outcome'] as const,
      buckets: durationBuckets,
      registers,
    });
    this.upstreamDuration = new Histogram({
      name: 'coexist_upstream_duration_seconds',
      help: 'Time spent forwarding to the next hop and streaming its answer back.',
      labelNames: ['protocol'] as const,
      buckets: durationBuckets,
      registers,
    });
    this.auth = new Counter({
      name: 'coexist_auth_total',
      help: 'Caller authentications, by result.',
      labelNames: ['result'] as const,
      registers,
    });
    this.authMethods = new Counter({
      name: 'coexist_requests_by_auth_method_total',
      help: 'Requests by how they authenticated: basic, ntlm, negotiate, session, none (docs/security.md "Windows authentication").',
      labelNames: ['protocol', 'method'] as const,
      registers,
    });
    this.inflightGauge = new Gauge({
      name: 'coexist_inflight_requests',
      help: 'Requests being handled now.',
      labelNames: ['protocol'] as const,
      registers,
    });
    this.upstreamFailures = new Counter({
      name: 'coexist_upstream_failures_total',
      help: 'Requests whose next hop failed, by catalogue code (CX_UPSTREAM_*).',
      labelNames: ['code'] as const,
      registers,
    });
    this.directoryEvents = new Counter({
      name: 'coexist_directory_requests_total',
      help: 'Directory questions (kind lookup or auth) by result: hit and miss of the cache, coalesced (joined a question in flight), stale (served from cache while the directory is down), error.',
      labelNames: ['kind', 'result'] as const,
      registers,
    });
    this.directoryDuration = new Histogram({
      name: 'coexist_directory_duration_seconds',
      help: 'Time the directory itself took to answer (cache misses only).',
      labelNames: ['kind'] as const,
      buckets: durationBuckets,
      registers,
    });
    this.lockoutFailures = new Counter({
      name: 'coexist_signin_failures_total',
      help: 'Wrong passwords, by whether the source had signed this account in before (familiar) or not.',
      labelNames: ['familiarity'] as const,
      registers,
    });
    this.lockouts = new Counter({
      name: 'coexist_lockouts_total',
      help: 'Lockouts started: an account locked for unfamiliar or familiar sources, or a source locked for spraying.',
      labelNames: ['scope'] as const,
      registers,
    });
    this.lockoutRefused = new Counter({
      name: 'coexist_lockout_refused_total',
      help: 'Sign-in attempts refused at once, without asking the directory, while locked, by lock scope.',
      labelNames: ['scope'] as const,
      registers,
    });
    this.edgeEventsTotal = new Counter({
      name: 'coexist_edge_events_total',
      help: 'Client connections refused at accept (refused_total, refused_per_source) or cut (tls_handshake_timeout, head_timeout, body_idle_timeout), and heads refused as too large.',
      labelNames: ['event'] as const,
      registers,
    });
    this.connectionsOpen = new Gauge({
      name: 'coexist_client_connections',
      help: 'Client connections open now (admitted, all listeners).',
      registers,
    });
    // The `server` label is this server's (every series has it), so the next hop is `upstream`.
    this.upstreamUp = new Gauge({
      name: 'coexist_upstream_up',
      help: 'Whether a next hop this server uses for a protocol is up (1) or down (0), as its health probes say (docs/operations.md "Health pages").',
      labelNames: ['upstream', 'protocol'] as const,
      registers,
    });
    this.probes = new Counter({
      name: 'coexist_upstream_probes_total',
      help: 'Health probes of next hops, by next hop and result (ok: any HTTP answer; failed: no connection, TLS failure or timeout).',
      labelNames: ['upstream', 'result'] as const,
      registers,
    });
    this.directoryUp = new Gauge({
      name: 'coexist_directory_up',
      help: 'Whether the directory answers its health probe (1) or not (0).',
      registers,
    });
    this.sharedStoreUp = new Gauge({
      name: 'coexist_shared_store_up',
      help: "Whether the shared store (Redis) is in use (1), or this process's memory while it is away (0); absent without Redis (docs/operations.md).",
      registers,
    });
    this.upstreamRequests = new Counter({
      name: 'coexist_upstream_requests_total',
      help: 'Requests sent to a next hop, by next hop, protocol and result (answered: any HTTP answer; failed: no answer, which counts towards ejection; client_aborted) (docs/operations.md "Next hops").',
      labelNames: ['upstream', 'protocol', 'result'] as const,
      registers,
    });
    this.upstreamEjected = new Gauge({
      name: 'coexist_upstream_ejected',
      help: 'Whether a next hop is ejected for a protocol (1) after consecutive failed requests, until its next probe answers (docs/operations.md "Next hops").',
      labelNames: ['upstream', 'protocol'] as const,
      registers,
    });
    this.certificateExpiry = new Gauge({
      name: 'coexist_certificate_expiry_timestamp_seconds',
      help: 'When each certificate in use expires (Unix seconds), by use (listener, chain, client, ca, internal-ca), subject and the hosts it serves (docs/operations.md "Certificates").',
      labelNames: ['use', 'subject', 'hosts'] as const,
      registers,
    });
    for (const event of edgeEvents) this.edgeEventsTotal.inc({ event }, 0);
    // Series that exist from the start, so rate() and alerts see a 0 before the first event.
    for (const familiarity of ['familiar', 'unfamiliar'] as const)
      this.lockoutFailures.inc({ familiarity }, 0);
    for (const scope of ['unfamiliar', 'familiar', 'source'] as const) {
      this.lockouts.inc({ scope }, 0);
      this.lockoutRefused.inc({ scope }, 0);
    }
    for (const result of authResults) this.auth.inc({ result }, 0);
    for (const protocol of protocols) this.inflightGauge.set({ protocol }, 0);
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Count one finished request from its access record: the one call the pipeline makes per request. */
  observeRequest(record: AccessRecord): void {
    const protocol = record.protocol ?? none;
    const { outcome, timings } = record;
    this.requests.inc({
      protocol,
      decision: record.decision ?? none,
      outcome,
      status: record.status === undefined ? none : String(record.status),
    });
    this.duration.observe({ protocol, outcome }, timings.totalMs / 1000);
    if (timings.upstreamMs !== undefined)
      this.upstreamDuration.observe({ protocol }, timings.upstreamMs / 1000);
    if (record.auth !== undefined) this.auth.inc({ result: record.auth });
    if (record.authMethod !== undefined) this.authMethods.inc({ protocol, method: record.authMethod });
    if (upstreamFailureOutcomes.has(outcome))
      this.upstreamFailures.inc({ code: record.code ?? 'CX_UPSTREAM_ERROR' });
  }

  /**
   * Count a failed attempt at a next hop that the request's record will not show (one that was retried).
   * `observeRequest` already counts the failure a request ends with.
   */
  observeUpstreamFailure(code: string): void {
    this.upstreamFailures.inc({ code });
  }

  /** What the directory cache reports to (its `observer` option): counters and the directory's latency. */
  directoryObserver(): DirectoryObserver {
    const events = this.directoryEvents;
    const duration = this.directoryDuration;
    return {
      hit: (kind) => events.inc({ kind, result: 'hit' }),
      miss: (kind) => events.inc({ kind, result: 'miss' }),
      coalesced: (kind) => events.inc({ kind, result: 'coalesced' }),
      stale: (kind) => events.inc({ kind, result: 'stale' }),
      error: (kind) => events.inc({ kind, result: 'error' }),
      latency: (kind, ms) => duration.observe({ kind }, ms / 1000),
    };
  }

  /** What the shared store reports each change of Redis's state to (dataplane/redis-store.ts `onState`). */
  sharedStoreObserver(): (up: boolean) => void {
    return (up) => this.sharedStoreUp.set(up ? 1 : 0);
  }

  /** What the extranet smart lockout reports to (its `observer` option). */
  lockoutObserver(): LockoutObserver {
    return {
      failure: (familiarity) => this.lockoutFailures.inc({ familiarity }),
      locked: (scope) => this.lockouts.inc({ scope }),
      refused: (scope) => this.lockoutRefused.inc({ scope }),
    };
  }

  /** What the health monitor reports to (dataplane/health.ts): next hops' and the directory's states, probes. */
  healthObserver(): HealthMetricsObserver {
    // A hop used by several protocols is one gauge per protocol; two hops of one server for one protocol
    // (rare) show the last change.
    return {
      probe: (hop, ok) => this.probes.inc({ upstream: hop.server, result: ok ? 'ok' : 'failed' }),
      hopState: (hop, used, up) => {
        for (const protocol of used) this.upstreamUp.set({ upstream: hop.server, protocol }, up ? 1 : 0);
      },
      directoryState: (up) => this.directoryUp.set(up ? 1 : 0),
    };
  }

  /** The certificates in use now, replacing any set before (a reload sets them again). */
  setCertificates(certificates: readonly CertificateInUse[]): void {
    this.certificateExpiry.reset();
    for (const c of certificates)
      this.certificateExpiry.set(
        { use: c.use, subject: c.subject, hosts: c.hosts.join(',') },
        Math.floor(c.notAfter.getTime() / 1000),
      );
  }

  /** What the next hops report to (dataplane/next-hops.ts): requests per hop and ejections. */
  nextHopObserver(): NextHopMetricsObserver {
    return {
      request: (hop, protocol, result) =>
        this.upstreamRequests.inc({ upstream: hop.server, protocol, result }),
      ejected: (hop, protocol, ejected) =>
        this.upstreamEjected.set({ upstream: hop.server, protocol }, ejected ? 1 : 0),
    };
  }

  /** What the edge reports to (`EdgeGate`): refusals and cuts, and the open connections. */
  edgeObserver(): EdgeObserver {
    return {
      event: (event) => this.edgeEventsTotal.inc({ event }),
      opened: () => this.connectionsOpen.inc(),
      closed: () => this.connectionsOpen.dec(),
    };
  }

  /** How many edge events of `kind` were counted (tests, the bench). */
  async edgeCount(kind: EdgeEvent): Promise<number> {
    const m = await this.edgeEventsTotal.get();
    return m.values.find((v) => v.labels['event'] === kind)?.value ?? 0;
  }

  /** Count a request as in flight; call the returned function when it ends (calling it again does nothing). */
  inflight(protocol: Protocol | undefined): () => void {
    const labels = { protocol: protocol ?? none };
    this.inflightGauge.inc(labels);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inflightGauge.dec(labels);
    };
  }

  /** The Prometheus text exposition of every series. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The `Content-Type` of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** What `/metrics` serves: one server's `Metrics`, or the series of several workers merged (serve --workers). */
export type MetricsSource = Pick<Metrics, 'text' | 'contentType'>;

/** Options of `startAdminServer`. */
export interface AdminServerOptions {
  readonly metrics: MetricsSource;
  /** Address to listen on; 127.0.0.1 when absent. */
  readonly host?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Whether `/readyz` answers 200; always ready when absent. */
  readonly ready?: () => boolean;
  /**
   * Instead of `ready`: whether `/readyz` answers 200, with a JSON body saying why (which protocol and next hop
   * is down: the admin listener is the operator's).
   */
  readonly readiness?: () => { readonly ready: boolean } | Promise<{ readonly ready: boolean }>;
  /** Allow a non-loopback `host`: the admin listener has no authentication. */
  readonly allowRemote?: boolean;
  /**
   * What `GET /status` answers, as JSON (`coexist status`, docs/operations.md "Next hops"): an object whose
   * `hops` array lists every next hop's state, open to more sections. Absent: `/status` is 404.
   */
  readonly status?: () =>
    { readonly hops: readonly unknown[] } | Promise<{ readonly hops: readonly unknown[] }>;
  /** `POST /reload` and `POST /drain` (admin-actions.ts: POST only, never from a web page). */
  readonly actions?: AdminActions;
}

/** A running admin listener. */
export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** Whether `host` can only be reached from this machine (the IPv4-mapped forms of 127/8 included). */
function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  if (family === 0) return false;
  return loopback.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

const allow = 'GET, HEAD';

/**
 * Serve `GET /metrics`, `/healthz` (200 while the process runs), `/readyz` (200 when `ready()`, else
 * 503) and, given `status`, `/status` (JSON) over plain HTTP; anything else is 404. Loopback only unless
 * `allowRemote`.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const host = options.host ?? '127.0.0.1';
  if (!options.allowRemote && !isLoopback(host)) {
    throw new CoexistError(
      'CX_CLI_USAGE',
      `The admin listener would listen on ${host}, which is not a loopback address, and it has no ` +
        'authentication. Use 127.0.0.1 or ::1, or allow a remote address explicitly (allowRemote).',
      { host },
    );
  }
  const { metrics } = options;
  const ready = options.ready ?? (() => true);
  const readiness = options.readiness ?? (() => ({ ready: ready() }));
  const detailed = options.readiness !== undefined;
  let own: string[] = [];
  const { actions } = options;
  const server = createServer((req, res) => {
    const action = actions && actionOf(pathOf(req.url ?? '/'));
    if (actions && action) void runAction(req, res, actions, action, own);
    else void answer(req, res, metrics, readiness, detailed, options.status, own);
  });
  // Probes and scrapes are small and quick; a client that trickles its head does not hold a socket long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  // Bound to every address: the machine's own addresses are the listener's (networkInterfaces: IPv6 link-local
  // ones carry a %scope a Host cannot, and are left out by the URL form). Asked only then: listing them takes a
  // netlink socket, which deploy/coexist.service does not allow (RestrictAddressFamilies).
  const everyAddress = host === '0.0.0.0' || host === '::';
  own = ownHosts(
    host,
    port,
    everyAddress
      ? Object.values(networkInterfaces())
          .flat()
          .flatMap((i) => (i === undefined || i.address.includes('%') ? [] : [i.address]))
      : [],
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // A scraper's keep-alive connection would hold close() open until it times out.
        server.closeAllConnections();
      }),
  };
}

const pathOf = (url: string): string => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

/** An admin action, once admin-actions.ts `refusal` let the request through; its answer is JSON. */
async function runAction(
  req: IncomingMessage,
  res: ServerResponse,
  actions: AdminActions,
  action: keyof AdminActions,
  own: readonly string[],
): Promise<void> {
  const run = actions[action];
  let a = run === undefined ? { status: 404, body: { error: 'not found' } } : refusal(req, own);
  if (a === undefined && run !== undefined) {
    try {
      a = await run();
    } catch {
      a = { status: 500, body: { error: `${action} failed` } };
    }
  }
  a ??= { status: 500, body: { error: `${action} failed` } };
  // The request's body, if any, is not read: the connection ends with the answer.
  send(res, a.status, `${JSON.stringify(a.body)}\n`, {
    'content-type': 'application/json; charset=utf-8',
    connection: 'close',
    ...(a.status === 405 ? { allow: 'POST' } : {}),
  });
}

async function answer(
  req: IncomingMessage,
  res: ServerResponse,
  metrics: MetricsSource,
  readiness: NonNullable<AdminServerOptions['readiness']>,
  detailed: boolean,
  status: AdminServerOptions['status'],
  own: readonly string[],
): Promise<void> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (
    path !== '/metrics' &&
    path !== '/healthz' &&
    path !== '/readyz' &&
    (path !== '/status' || status === undefined)
  ) {
    send(res, 404, 'not found\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'method not allowed\n', { allow });
    return;
  }
  if (path === '/healthz') {
    send(res, 200, 'ok');
    return;
  }
  // What a page rebound to 127.0.0.1 could otherwise read (admin-actions.ts `readRefusal`).
  const refused = readRefusal(req, own);
  if (refused !== undefined) {
    send(res, refused.status, `${JSON.stringify(refused.body)}\n`, {
      'content-type': 'application/json; charset=utf-8',
    });
    return;
  }
  if (path === '/status' && status !== undefined) {
    try {
      send(res, 200, `${JSON.stringify(await status())}\n`, {
        'content-type': 'application/json; charset=utf-8',
      });
    } catch {
      send(res, 500, 'status failed\n');
    }
    return;
  }
  if (path === '/readyz') {
    let state: { readonly ready: boolean } = { ready: false };
    try {
      state = await readiness();
    } catch {
      // A readiness check that throws is not ready; the probe itself must not fail.
    }
    const status = state.ready ? 200 : 503;
    if (detailed)
      send(res, status, `${JSON.stringify(state)}\n`, { 'content-type': 'application/json; charset=utf-8' });
    else send(res, status, state.ready ? 'ready' : 'not ready');
    return;
  }
  try {
    send(res, 200, await metrics.text(), { 'content-type': metrics.contentType });
  } catch {
    send(res, 500, 'metrics collection failed\n');
  }
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}
