/**
 * Attack: a flood from many sources against the server's total. Whatever the sources, a server holds at
 * most `limits.maxConnections` client connections (docs/security.md "Limits and timeouts at the edge"; 150
 * here), so a flood runs into the cap rather than into the process's file-descriptor limit, where every
 * accept, upstream connection and log write would fail. Past it, a new connection is closed at accept,
 * counted (`refused_total`) and logged at a rate-limited level; once the flood lets go, requests are
 * served again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';
import {
  assertServedAfterFlood,
  closedWithin,
  edgeCount,
  edgeLines,
  onlyTheCapLimits,
  openConnections,
  tcp,
  tlsFlood,
} from './edge-client.ts';

const cap = 150;
/** Sources of the flood: loopback addresses besides the lab's own (127.0.0.1 to .3). */
const sources = ['127.0.0.5', '127.0.0.6', '127.0.0.7'];

describe("attack: a flood from many sources against the server's total", () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab({
      limits: {
        maxConnections: cap,
        // No room kept for known sources (test/security/reserved-room.test.ts): the whole total is tried.
        reservedPercent: 0,
        ...onlyTheCapLimits,
      },
    }));
  });
  after(() => lab.close());

  test(`at ${cap} connections a new one is closed at accept; served again once they close`, async () => {
    const baseline = await openConnections(lab);
    const flood = await tlsFlood(lab, sources, cap - baseline);
    try {
      assert.equal(await openConnections(lab), cap);
      const before = await edgeCount(lab, 'refused_total');
      const late = await tcp(lab, '127.0.0.8');
      const end = await closedWithin(late, 10_000);
      assert.equal(end.received, '', 'closed before any TLS');
      assert.equal((await edgeCount(lab, 'refused_total')) - before, 1);
      assert.equal(edgeLines(sink, 'refused_total')[0]?.['code'], 'CX_HTTP_CONNECTION_LIMIT');
    } finally {
      for (const s of flood) s.destroy();
    }
    await assertServedAfterFlood(lab, baseline);
  });
});
