/**
 * Attack: a flood from many unknown sources, meant to fill the server's total so that its real clients
 * cannot connect. The last `limits.reservedPercent` of `limits.maxConnections` are kept for known sources,
 * where someone signed in successfully on this server before (docs/security.md "Limits and timeouts at the
 * edge", "Room kept for known clients"): the flood stops short of them, a new unknown source is closed at
 * accept (`refused_reserved`, logged), and a client that signed in before still connects and is served.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';
import {
  assertFolderSyncWorks,
  assertServedAfterFlood,
  closedWithin,
  edgeCount,
  edgeLines,
  onlyTheCapLimits,
  openConnections,
  tcp,
  tlsFlood,
  waitFor,
} from './edge-client.ts';

const cap = 150;
const reservedPercent = 20;
/** Open connections past which only known sources are admitted. */
const openToAll = cap - (cap * reservedPercent) / 100;
/** Sources of the flood: loopback addresses besides the lab's own (127.0.0.1 to .3); none signs in. */
const sources = ['127.0.0.5', '127.0.0.6', '127.0.0.7'];

describe('attack: a flood from unknown sources against the room kept for known clients', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab({
      limits: { maxConnections: cap, reservedPercent, ...onlyTheCapLimits },
    }));
  });
  after(() => lab.close());

  test(`unknown sources stop at ${openToAll} of ${cap}; a client that signed in before still gets 200`, async () => {
    // The external client (127.0.0.1) signs in once: its source is known from now on.
    const regular = labClient(lab);
    try {
      await assertFolderSyncWorks(regular);
    } finally {
      await regular.close();
    }
    // Nothing else connects to the front door here: once the server saw that connection close, it holds none.
    await waitFor(
      'the front door to see the first connection close',
      async () => (await openConnections(lab)) === 0,
    );
    const baseline = 0;
    const flood = await tlsFlood(lab, sources, openToAll - baseline);
    try {
      assert.equal(await openConnections(lab), openToAll);

      const before = await edgeCount(lab, 'refused_reserved');
      const stranger = await tcp(lab, '127.0.0.8');
      const end = await closedWithin(stranger, 10_000);
      assert.equal(end.received, '', 'an unknown source is closed before any TLS');
      assert.equal((await edgeCount(lab, 'refused_reserved')) - before, 1);
      const line = edgeLines(sink, 'refused_reserved')[0];
      assert.equal(line?.['code'], 'CX_HTTP_CONNECTION_LIMIT');
      assert.equal(line?.['lastSource'], '127.0.0.8');

      // The regular client, on a new connection, takes a reserved place and is served along its path.
      const again = labClient(lab);
      try {
        await assertFolderSyncWorks(again);
      } finally {
        await again.close();
      }
      assert.equal(await edgeCount(lab, 'refused_reserved'), before + 1, 'the known source was not refused');
    } finally {
      for (const s of flood) s.destroy();
    }
    await assertServedAfterFlood(lab, baseline);
  });
});
