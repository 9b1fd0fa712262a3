import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { limitsSchema } from '../config/estate-schema.ts';
import { createLogger } from '../observability/log.ts';
import type { EdgeEvent } from './edge-limits.ts';
import { sourceKey } from '../net/source.ts';
import { defaultEdgeLimits, EdgeGate, edgeLimits, KnownSources } from './edge-limits.ts';

/** A stand-in for an accepted socket: an address and a close event. */
function socket(remoteAddress: string): Socket & { close(): void } {
  const s = new EventEmitter() as EventEmitter & { remoteAddress: string; close(): void };
  s.remoteAddress = remoteAddress;
  s.close = () => s.emit('close');
  return s as unknown as Socket & { close(): void };
}

function gate(
  limits: Parameters<typeof edgeLimits>[0],
  exempt?: (a: string) => boolean,
  known?: (a: string) => boolean,
) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const events: EdgeEvent[] = [];
  let open = 0;
  const g = new EdgeGate(edgeLimits(limits), {
    logger: createLogger({ level: 'info', destination: sink }),
    serverName: 'CAS2013-NY',
    observer: { event: (e) => events.push(e), opened: () => open++, closed: () => open-- },
    ...(exempt ? { exempt } : {}),
    ...(known ? { known } : {}),
  });
  return { g, lines, events, open: () => open };
}

describe('edge limits', () => {
  test('a source is an IPv4 address, an IPv4-mapped one unmapped, or an IPv6 /64', () => {
    assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
    assert.equal(sourceKey('2001:db8:0:1:bbbb:cccc:dddd:eeee'), '2001:db8:0:1::/64');
    assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
  });

  test('the per-source cap refuses past it, and frees a place when a connection closes', () => {
    const { g, events, open } = gate({ maxConnectionsPerSource: 2, maxConnections: 10 });
    const a = [socket('192.0.2.1'), socket('192.0.2.1')];
    for (const s of a) assert.equal(g.admit(s, 'front'), true);
    assert.equal(g.admit(socket('192.0.2.1'), 'front'), false);
    assert.equal(g.admit(socket('192.0.2.2'), 'front'), true, 'another source is admitted');
    assert.deepEqual(events, ['refused_per_source']);
    a[0]?.close();
    assert.equal(g.admit(socket('192.0.2.1'), 'front'), true);
    assert.equal(open(), 3);
    assert.equal(g.open, 3);
  });

  test('the total cap refuses whatever the source; exempt sources skip only the per-source cap', () => {
    const { g, events } = gate({ maxConnectionsPerSource: 1, maxConnections: 3 }, (a) => a === '10.0.0.2');
    assert.equal(g.admit(socket('10.0.0.2'), 'mailbox'), true);
    assert.equal(g.admit(socket('10.0.0.2'), 'mailbox'), true);
    assert.equal(g.admit(socket('10.0.0.9'), 'front'), true);
    assert.equal(g.admit(socket('10.0.0.10'), 'front'), false);
    assert.deepEqual(events, ['refused_total']);
  });

  test('the reserved places are kept for known and exempt sources; the total still caps them', () => {
    const known = new KnownSources();
    known.add('192.0.2.50');
    const { g, events } = gate(
      { maxConnections: 10, reservedPercent: 30, maxConnectionsPerSource: 0 },
      (a) => a === '10.0.0.2',
      (a) => known.has(a),
    );
    const flood = Array.from({ length: 7 }, (_, i) => socket(`198.51.100.${i}`));
    for (const s of flood) assert.equal(g.admit(s, 'front'), true);
    assert.equal(g.admit(socket('198.51.100.99'), 'front'), false, 'an unknown source stops at 7 of 10');
    assert.deepEqual(events, ['refused_reserved']);
    assert.equal(g.admit(socket('192.0.2.50'), 'front'), true, 'a known source takes a reserved place');
    assert.equal(g.admit(socket('::ffff:192.0.2.50'), 'front'), true, 'the same source, IPv4-mapped');
    assert.equal(g.admit(socket('10.0.0.2'), 'mailbox'), true, 'an exempt source too');
    assert.equal(g.admit(socket('192.0.2.50'), 'front'), false, 'but not past the total');
    assert.deepEqual(events, ['refused_reserved', 'refused_total']);
    flood[0]?.close();
    assert.equal(g.admit(socket('198.51.100.98'), 'front'), false, 'still 9 open: above the 7 open to all');
  });

  test('known sources: bounded, expiring, one entry per source', () => {
    let now = 0;
    const known = new KnownSources({ maxEntries: 2, ttlMs: 1_000, now: () => now });
    known.add('192.0.2.1');
    known.add('2001:db8:0:1::5');
    assert.equal(known.has('2001:db8:0:1::99'), true, 'an IPv6 source is its /64');
    known.add('192.0.2.3');
    assert.equal(known.size, 2);
    assert.equal(known.has('192.0.2.1'), false, 'the least recently seen went first');
    now = 999;
    assert.equal(known.has('192.0.2.3'), true);
    now = 1_000;
    assert.equal(known.has('192.0.2.3'), false, 'gone after ttlMs');
    known.add(undefined);
    assert.equal(known.size, 1);
  });

  test('0 turns a cap off', () => {
    const { g } = gate({ maxConnectionsPerSource: 0, maxConnections: 0 });
    for (let i = 0; i < 50; i++) assert.equal(g.admit(socket('192.0.2.1'), 'front'), true);
  });

  test('events are counted at once and logged at most once per interval, with the count', () => {
    const { g, lines, events } = gate({ logIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) g.report('head_timeout', `192.0.2.${i}`, 'front');
    assert.equal(events.length, 5);
    assert.equal(lines.length, 1, 'the first at once, the rest held back');
    assert.equal(lines[0]?.['count'], 1);
    assert.equal(lines[0]?.['code'], 'CX_HTTP_REQUEST_TIMEOUT');
    g.close();
    assert.equal(lines.length, 2, 'what was held back is written when the server stops');
    assert.equal(lines[1]?.['count'], 4);
    assert.equal(lines[1]?.['lastSource'], '192.0.2.4');
  });

  test("the estate file's limits section documents the same defaults", () => {
    const shape = limitsSchema.shape;
    for (const [key, value] of Object.entries(defaultEdgeLimits)) {
      const text = shape[key as keyof typeof shape].description ?? '';
      assert.ok(text.includes(`Default ${value}`), `${key}: "${text}" names the default ${value}`);
    }
  });
});
