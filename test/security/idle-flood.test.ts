/**
 * Attack: an idle-connection flood from one source. The attacker opened ~20 000 idle TLS
 * connections and took every file descriptor. Each source (an IPv4 address, an IPv6 /64) may hold at most
 * `limits.maxConnectionsPerSource` connections (docs/security.md "Limits and timeouts at the edge"; 200
 * here): past it, a new connection is closed at accept, before any TLS work, counted
 * (`refused_per_source`) and logged at a rate-limited level. Meanwhile a client from another address
 * still gets its FolderSync answered, and once the flood lets go its source is served again.
 */
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses } from '../../src/lab/index.ts';
import type { LabClient, LineSink } from '../support/lab-client.ts';
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
  tls,
} from './edge-client.ts';

const cap = 200;
const over = 100;

describe('attack: an idle-connection flood from one source', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    // Heads and handshakes get long deadlines here, so that only the cap decides what is refused.
    ({ lab, sink } = await loggedLab({
      limits: {
        maxConnectionsPerSource: cap,
        ...onlyTheCapLimits,
      },
    }));
  });
  after(() => lab.close());

  test(`${cap} idle TLS connections held, ${over} more refused at once, other sources served`, async () => {
    const baseline = await openConnections(lab);
    const flood: TLSSocket[] = [];
    let internal: LabClient | undefined;
    try {
      for (let i = 0; i < cap; i += 50) {
        flood.push(...(await Promise.all(Array.from({ length: 50 }, () => tls(lab)))));
      }
      assert.equal(
        await openConnections(lab),
        baseline + cap,
        'the server holds every connection up to the cap',
      );

      // (a) Over the cap: closed at accept, with not a byte of TLS answered, long before any timeout.
      const before = await edgeCount(lab, 'refused_per_source');
      const refused = await Promise.all(Array.from({ length: over }, () => tcp(lab)));
      const ends = await Promise.all(refused.map((s) => closedWithin(s, 10_000)));
      for (const e of ends) assert.equal(e.received, '');
      assert.equal((await edgeCount(lab, 'refused_per_source')) - before, over, 'each refusal is counted');
      const lines = edgeLines(sink, 'refused_per_source');
      assert.ok(lines.length >= 1 && lines.length < over, 'logged, at a rate-limited level');
      assert.equal(lines[0]?.['code'], 'CX_HTTP_CONNECTION_LIMIT');
      assert.equal(lines[0]?.['lastSource'], labAddresses.externalClient);
      assert.ok(
        flood.every((s) => !s.destroyed),
        'the connections under the cap are kept',
      );

      // (b) Another source is served meanwhile.
      internal = labClient(lab, 'internal');
      await assertFolderSyncWorks(internal);
    } finally {
      for (const s of flood) s.destroy();
      await internal?.close();
    }
    // (c) Once the flood has let go, its own source is served again.
    await assertServedAfterFlood(lab, baseline);
  });
});
