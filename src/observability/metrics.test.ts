import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Agent, request } from 'node:http';
import { after, describe, test } from 'node:test';
import { CoexistError } from '../core/errors.ts';
import type { AccessRecord } from './log.ts';
import type { AdminServer } from './metrics.ts';
import { Metrics, startAdminServer } from './metrics.ts';

// Keep-alive, as Prometheus scrapes: close() must not wait for these sockets.
const agent = new Agent({ keepAlive: true });
after(() => agent.destroy());

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

async function get(port: number, path: string, method = 'GET', via: Agent | false = agent): Promise<Reply> {
  const req = request({ host: '127.0.0.1', port, path, method, agent: via });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.setEncoding('utf8');
  let body = '';
  for await (const chunk of res) body += chunk as string;
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}

/** The value of the sample `name` whose labels include `labels`, from the text exposition format. */
function sample(
  text: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      found.set(l[1] ?? '', l[2] ?? '');
    }
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

const proxied: AccessRecord = {
  reqId: 'r1',
  listener: 'front',
  server: 'cas2013-ny',
  method: 'POST',
  host: 'mail.o365info.com',
  path: '/Microsoft-Server-ActiveSync',
  protocol: 'activesync',
  user: 'diego@o365info.com',
  auth: 'ok',
  decision: 'proxy',
  status: 200,
  outcome: 'proxied',
  timings: { totalMs: 12, authMs: 1, lookupMs: 0.5, upstreamMs: 9 },
};

describe('Metrics', () => {
  test('a request record feeds the request, duration, upstream and auth series, labelled with the server', async () => {
    const m = new Metrics({ server: 'cas2013-ny' });
    m.observeRequest(proxied);
    m.observeRequest(proxied);
    const text = await m.text();
    const labels = { protocol: 'activesync', decision: 'proxy', outcome: 'proxied', status: '200' };
    assert.equal(sample(text, 'coexist_requests_total', { ...labels, server: 'cas2013-ny' }), 2);
    const d = { protocol: 'activesync', outcome: 'proxied' };
    assert.equal(sample(text, 'coexist_request_duration_seconds_count', d), 2);
    assert.equal(sample(text, 'coexist_request_duration_seconds_bucket', { ...d, le: '0.01' }), 0);
    assert.equal(sample(text, 'coexist_request_duration_seconds_bucket', { ...d, le: '0.025' }), 2);
    assert.equal(sample(text, 'coexist_request_duration_seconds_bucket', { ...d, le: '0.0005' }), 0);
    assert.equal(sample(text, 'coexist_request_duration_seconds_bucket', { ...d, le: '60' }), 2);
    assert.equal(sample(text, 'coexist_upstream_duration_seconds_count', { protocol: 'activesync' }), 2);
    assert.equal(sample(text, 'coexist_auth_total', { result: 'ok' }), 2);
    // Known series start at 0, before anything happens.
    assert.equal(sample(text, 'coexist_auth_total', { result: 'bad_credentials' }), 0);
    assert.equal(sample(text, 'coexist_inflight_requests', { protocol: 'ews' }), 0);
  });

  test('a refusal before classification is counted with "none" for what was not known yet', async () => {
    const m = new Metrics({ server: 'cas2013-ny' });
    m.observeRequest({
      reqId: 'r2',
      listener: 'front',
      server: 'cas2013-ny',
      method: 'GET',
      host: 'mail.o365info.com',
      path: '/nothing',
      outcome: 'refused',
      code: 'CX_HTTP_NOT_FOUND',
      status: 404,
      timings: { totalMs: 0.1 },
    });
    const text = await m.text();
    const labels = { protocol: 'none', decision: 'none', outcome: 'refused', status: '404' };
    assert.equal(sample(text, 'coexist_requests_total', labels), 1);
    assert.equal(sample(text, 'coexist_upstream_duration_seconds_count', { protocol: 'none' }), undefined);
  });

  test('upstream failures are counted by code; a client that went away is not an upstream failure', async () => {
    const m = new Metrics({ server: 'cas2013-ny' });
    const failed = { ...proxied, status: 504, outcome: 'upstream_timeout' as const };
    m.observeRequest({ ...failed, code: 'CX_UPSTREAM_HEADERS_TIMEOUT' });
    m.observeRequest({
      ...failed,
      outcome: 'upstream_unreachable',
      status: 502,
      code: 'CX_UPSTREAM_CONNECT_REFUSED',
    });
    m.observeRequest({ ...proxied, outcome: 'client_aborted', code: 'CX_UPSTREAM_CLIENT_ABORTED' });
    m.observeUpstreamFailure('CX_UPSTREAM_CONNECT_REFUSED');
    const text = await m.text();
    assert.equal(sample(text, 'coexist_upstream_failures_total', { code: 'CX_UPSTREAM_HEADERS_TIMEOUT' }), 1);
    assert.equal(sample(text, 'coexist_upstream_failures_total', { code: 'CX_UPSTREAM_CONNECT_REFUSED' }), 2);
    assert.equal(
      sample(text, 'coexist_upstream_failures_total', { code: 'CX_UPSTREAM_CLIENT_ABORTED' }),
      undefined,
    );
    assert.equal(sample(text, 'coexist_requests_total', { outcome: 'client_aborted', status: '200' }), 1);
  });

  test('the directory observer counts cache hits, misses, stale answers and errors, and the directory latency', async () => {
    const m = new Metrics({ server: 'CAS2013-NY' });
    const o = m.directoryObserver();
    o.hit('lookup');
    o.hit('lookup');
    o.miss('auth');
    o.stale('lookup');
    o.error('auth');
    o.latency('lookup', 1.5);
    const text = await m.text();
    const events = (kind: string, result: string): number | undefined =>
      sample(text, 'coexist_directory_requests_total', { kind, result, server: 'CAS2013-NY' });
    assert.equal(events('lookup', 'hit'), 2);
    assert.equal(events('auth', 'miss'), 1);
    assert.equal(events('lookup', 'stale'), 1);
    assert.equal(events('auth', 'error'), 1);
    assert.equal(sample(text, 'coexist_directory_duration_seconds_count', { kind: 'lookup' }), 1);
  });

  test('inflight counts up, and its end function counts down exactly once', async () => {
    const m = new Metrics({ server: 'cas2013-ny' });
    const endA = m.inflight('ews');
    const endB = m.inflight('ews');
    const endC = m.inflight(undefined);
    assert.equal(sample(await m.text(), 'coexist_inflight_requests', { protocol: 'ews' }), 2);
    endA();
    endA();
    assert.equal(sample(await m.text(), 'coexist_inflight_requests', { protocol: 'ews' }), 1);
    endB();
    endC();
    const text = await m.text();
    assert.equal(sample(text, 'coexist_inflight_requests', { protocol: 'ews' }), 0);
    assert.equal(sample(text, 'coexist_inflight_requests', { protocol: 'none' }), 0);
  });

  test('two servers in one process keep separate registries', async () => {
    const a = new Metrics({ server: 'cas2013-ny' });
    const b = new Metrics({ server: 'cas2013-la' });
    a.observeRequest(proxied);
    assert.equal(sample(await a.text(), 'coexist_requests_total', { server: 'cas2013-ny' }), 1);
    assert.equal(sample(await b.text(), 'coexist_requests_total'), undefined);
    assert.match(await b.text(), /server="cas2013-la"/);
    assert.doesNotMatch(await b.text(), /cas2013-ny/);
  });

  test('process metrics are there only when asked for', async () => {
    assert.equal(
      sample(await new Metrics({ server: 's' }).text(), 'process_cpu_user_seconds_total'),
      undefined,
    );
    const withDefaults = new Metrics({ server: 's', defaultMetrics: true });
    assert.ok(
      (sample(await withDefaults.text(), 'process_cpu_user_seconds_total', { server: 's' }) ?? -1) >= 0,
    );
  });
});

describe('startAdminServer', () => {
  let ready = false;
  const metrics = new Metrics({ server: 'cas2013-ny' });
  let admin: AdminServer | undefined;
  const port = async (): Promise<number> => {
    admin ??= await startAdminServer({ metrics, ready: () => ready });
    return admin.port;
  };
  after(async () => {
    await admin?.close();
  });

  test('GET /metrics serves the text format with what was counted', async () => {
    metrics.observeRequest(proxied);
    const r = await get(await port(), '/metrics');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(
      sample(r.body, 'coexist_requests_total', { protocol: 'activesync', server: 'cas2013-ny' }),
      1,
    );
    assert.match(r.body, /# TYPE coexist_request_duration_seconds histogram/);
    metrics.observeRequest(proxied);
    const again = await get(await port(), '/metrics?debug=1');
    assert.equal(sample(again.body, 'coexist_requests_total', { protocol: 'activesync' }), 2);
  });

  test('/healthz is 200 "ok"; /readyz follows ready()', async () => {
    const health = await get(await port(), '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok');
    ready = false;
    assert.equal((await get(await port(), '/readyz')).status, 503);
    ready = true;
    assert.equal((await get(await port(), '/readyz')).status, 200);
    ready = false;
    assert.equal((await get(await port(), '/readyz')).status, 503);
  });

  test('anything else is 404; another method on a known path is 405', async () => {
    for (const path of ['/', '/metrics/', '/favicon.ico', '/Microsoft-Server-ActiveSync']) {
      assert.equal((await get(await port(), path)).status, 404, path);
    }
    const post = await get(await port(), '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers['allow'], 'GET, HEAD');
  });

  test('a ready() that throws answers 503', async () => {
    const s = await startAdminServer({
      metrics,
      ready: () => {
        throw new Error('estate not loaded');
      },
    });
    try {
      assert.equal((await get(s.port, '/readyz')).status, 503);
    } finally {
      await s.close();
    }
  });

  test('close() ends with keep-alive connections open', async () => {
    const s = await startAdminServer({ metrics });
    await get(s.port, '/healthz');
    await s.close();
    // A fresh connection: the pooled one may not have seen its close yet (the keep-alive race).
    await assert.rejects(get(s.port, '/healthz', 'GET', false), { code: 'ECONNREFUSED' });
  });

  test('a non-loopback host is refused unless allowRemote', async () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10', '2001:db8::1', 'admin.o365info.com']) {
      await assert.rejects(
        startAdminServer({ metrics, host }),
        (e: unknown) => e instanceof CoexistError && e.code === 'CX_CLI_USAGE' && e.details['host'] === host,
        host,
      );
    }
    const s = await startAdminServer({ metrics, host: '127.0.0.2' });
    await s.close();
  });
});
