/**
 * The primary's admin answers made from its workers' (serve-merge.ts): series added up with nothing counted
 * twice (a state gauge is not summed, the primary's reload and certificate series come once), readiness only
 * when every worker is ready, every next hop once in its worst state.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../observability/metrics.ts';
import { lifecycleMetrics } from '../observability/lifecycle-metrics.ts';
import type { NodeStatus } from '../dataplane/status.ts';
import { clientConnections, mergeMetrics, mergeReadiness, mergeStatus } from './serve-merge.ts';

async function worker(o: { connections: number; up: 0 | 1; ejected: 0 | 1; requests: number }) {
  const m = new Metrics({ server: 'CAS2013-NY' });
  const edge = m.edgeObserver();
  for (let i = 0; i < o.connections; i++) edge.opened();
  m.healthObserver().hopState({ server: 'CAS2007-NY' }, new Set(['ews'] as const), o.up === 1);
  m.nextHopObserver().ejected({ server: 'CAS2007-NY' }, 'ews', o.ejected === 1);
  for (let i = 0; i < o.requests; i++)
    m.nextHopObserver().request({ server: 'CAS2007-NY' }, 'ews', 'answered');
  // A worker's own lifecycle series: the primary's count, not these.
  lifecycleMetrics(m).reload('ok', 2);
  return m.registry.getMetricsAsJSON();
}

const value = (text: string, series: RegExp): number => {
  const line = text.split('\n').find((l) => series.test(l));
  assert.ok(line, `no ${String(series)} in\n${text}`);
  return Number(line.split(' ').at(-1));
};

describe('the primary of serve --workers: merged answers', () => {
  test('/metrics: counters and connections summed, states by min/max, lifecycle series from the primary only', async () => {
    const a = await worker({ connections: 3, up: 1, ejected: 0, requests: 5 });
    const b = await worker({ connections: 4, up: 0, ejected: 1, requests: 7 });
    const primary = new Metrics({ server: 'CAS2013-NY' });
    lifecycleMetrics(primary).reload('ok', 5);
    const text = await mergeMetrics([a, b], await primary.registry.getMetricsAsJSON());
    assert.equal(value(text, /^coexist_client_connections\{/), 7);
    assert.equal(value(text, /^coexist_upstream_requests_total\{.*result="answered"/), 12);
    assert.equal(value(text, /^coexist_upstream_up\{/), 0, 'up only where every worker sees it up');
    assert.equal(value(text, /^coexist_upstream_ejected\{/), 1, 'ejected where any worker ejected it');
    assert.equal(value(text, /^coexist_reloads_total\{.*result="ok"/), 1, "the primary's one reload");
    assert.equal(value(text, /^coexist_estate_generation\{/), 5);
    assert.equal(text.match(/^# TYPE coexist_reloads_total /gm)?.length, 1);
    // Every series once: no name's TYPE line twice.
    const types = text.match(/^# TYPE \S+/gm) ?? [];
    assert.equal(new Set(types).size, types.length);
    assert.equal(clientConnections(a), 3);
  });

  test('/readyz: ready only when every worker is; a worker that did not answer is not ready', () => {
    const ok = { ready: true, directory: 'up' as const, down: [] };
    const down = {
      ready: false,
      directory: 'up' as const,
      down: [{ role: 'cas' as const, protocol: 'ews' as const, hops: [{ server: 'CAS2007-NY', url: 'u' }] }],
    };
    assert.equal(
      mergeReadiness(
        [
          { worker: 1, pid: 10, readiness: ok },
          { worker: 2, pid: 11, readiness: ok },
        ],
        false,
      ).ready,
      true,
    );
    assert.equal(
      mergeReadiness(
        [
          { worker: 1, pid: 10, readiness: ok },
          { worker: 2, pid: 11 },
        ],
        false,
      ).ready,
      false,
    );
    assert.equal(mergeReadiness([{ worker: 1, pid: 10, readiness: ok }], true).ready, false);
    const merged = mergeReadiness(
      [
        { worker: 1, pid: 10, readiness: down },
        { worker: 2, pid: 11, readiness: down },
      ],
      false,
    );
    assert.deepEqual(merged.down, down.down, 'what is down, once');
    assert.deepEqual(merged.workers, [
      { worker: 1, pid: 10, ready: false },
      { worker: 2, pid: 11, ready: false },
    ]);
  });

  test('/status: every hop once, in the worst state a worker sees, the largest counts and the latest error', () => {
    const hop = {
      server: 'CAS2007-NY',
      protocols: ['ews' as const],
      url: 'https://cas2007-ny.o365info.local/EWS',
      state: 'up' as const,
      since: '2026-12-07T10:00:00.000Z',
      consecutiveFailures: 0,
      consecutiveProbeFailures: 0,
    };
    const status = (h: NodeStatus['hops'][number]): NodeStatus => ({
      server: 'CAS2013-NY',
      at: '2026-12-07T10:00:00.000Z',
      ready: true,
      directory: 'up',
      unavailable: [],
      hops: [h],
    });
    const ejected = {
      ...hop,
      state: 'ejected' as const,
      since: '2026-12-07T10:00:05.000Z',
      consecutiveFailures: 3,
      lastError: {
        at: '2026-12-07T10:00:05.000Z',
        by: 'request' as const,
        error: 'CX_UPSTREAM_CONNECT_REFUSED',
      },
    };
    const merged = mergeStatus(
      'CAS2013-NY',
      '2026-12-07T10:00:06.000Z',
      [
        { worker: 1, pid: 10, status: status({ ...hop, protocols: ['rpc'] as never }) },
        { worker: 2, pid: 11, status: status(ejected) },
      ],
      false,
    );
    assert.equal(merged.hops.length, 1);
    assert.equal(merged.hops[0]?.state, 'ejected');
    assert.equal(merged.hops[0]?.since, ejected.since);
    assert.equal(merged.hops[0]?.consecutiveFailures, 3);
    assert.deepEqual(merged.hops[0]?.protocols, ['ews', 'rpc']);
    assert.deepEqual(merged.hops[0]?.lastError, ejected.lastError);
    assert.deepEqual(merged.workers[1], {
      worker: 2,
      pid: 11,
      ready: true,
      notUp: [{ server: 'CAS2007-NY', url: hop.url, state: 'ejected' }],
    });
    assert.equal(merged.ready, true);
    assert.equal(mergeStatus('CAS2013-NY', 'now', [{ worker: 1 }], false).ready, false);
  });
});
