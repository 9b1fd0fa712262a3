/**
 * The health pages on the lab (docs/operations.md "Health pages"): every vdir's healthcheck.htm on the front
 * door answers 200 with the server's FQDN and no credentials; with CAS2007-NY stopped, the pages of the
 * protocols whose 2007-NY mailboxes have no other next hop (from the engine, `healthPlan`) go 503 within
 * the probe interval and come back after it starts again; `/readyz` follows. The test waits on the health
 * monitor's own state changes, never on a sleep.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import type { HealthMonitor } from '../../src/dataplane/index.ts';
import { healthPlan, vdirOf } from '../../src/dataplane/index.ts';
import type { Lab } from '../../src/lab/index.ts';
import type { Protocol } from '../../src/core/protocols/protocol.ts';
import { protocols } from '../../src/core/protocols/protocol.ts';
import type { AdminServer } from '../../src/observability/metrics.ts';
import { startAdminServer } from '../../src/observability/metrics.ts';
import type { LabClient, LineSink } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';
import { accessLines, loggedLab } from '../support/logged-lab.ts';

const front = 'CAS2013-NY';
const stopped = 'CAS2007-NY';
const page = (p: Protocol): string => `https://mail.o365info.com/${vdirOf(p)}/healthcheck.htm`;

/** Resolve once `holds()` is true: now, or after one of the monitor's state changes. */
function when(monitor: HealthMonitor, holds: () => boolean): Promise<void> {
  if (holds()) return Promise.resolve();
  return new Promise((resolve) => {
    const off = monitor.subscribe(() => {
      if (!holds()) return;
      off();
      resolve();
    });
  });
}

describe('health pages on the lab', () => {
  let lab: Lab;
  let sink: LineSink;
  let client: LabClient;
  let admin: AdminServer;
  const monitor = (): HealthMonitor => {
    const node = lab.nodes.get(front);
    assert.ok(node);
    return node.health;
  };
  const readyz = async (): Promise<{ status: number; body: string }> => {
    const r = await request(`http://127.0.0.1:${admin.port}/readyz`);
    return { status: r.statusCode, body: await r.body.text() };
  };

  before(async () => {
    // A quarter-second interval, down after two failed rounds; `every`: a protocol is down as soon as some
    // mailboxes have no next hop (with the default `any` MBX2013-NY alone keeps every page up).
    // Logged at debug: a health page's access line is written there (docs/operations.md).
    ({ lab, sink } = await loggedLab(
      { health: { intervalSeconds: 0.25, timeoutSeconds: 2, downAfter: 2, rule: 'every' } },
      'debug',
    ));
    client = labClient(lab);
    const metrics = lab.metrics.get(front);
    assert.ok(metrics);
    admin = await startAdminServer({
      metrics,
      readiness: () => lab.nodes.get(front)?.health.readiness() ?? { ready: false },
    });
  });
  after(async () => {
    await client.close();
    await admin.close();
    await lab.close();
  });

  test('every vdir answers 200 with the server FQDN, without credentials, one access line, nothing routed', async () => {
    for (const p of protocols) {
      const r = await client.fetch(page(p));
      assert.equal(r.status, 200, p);
      assert.equal(r.body.toString(), '200 OK<br/>cas2013-ny.o365info.local', p);
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.deepEqual(lab.recorder.records(r.requestId), [], `${p}: never proxied`);
      const lines = accessLines(sink, r.requestId);
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.['outcome'], 'health');
      assert.equal(lines[0]?.['protocol'], p);
    }
    assert.equal((await readyz()).status, 200);
  });

  test(`${stopped} stopped: the pages that need it go 503, /readyz says which; back after it starts`, async () => {
    const server = lab.index.server(front);
    assert.ok(server);
    const plan = healthPlan(lab.index, server);
    // Protocols with mailboxes whose every next hop is the stopped server: from the engine, not by hand.
    const needsIt = new Set(
      [...(plan.needs.get('cas') ?? new Map<Protocol, never>())]
        .filter(([, n]) => n.groups.some((g) => g.every((u) => plan.hops.get(u)?.server === stopped)))
        .map(([p]) => p),
    );
    assert.ok(needsIt.size > 0 && needsIt.has('ews'), [...needsIt].join());

    await lab.stopServer(stopped);
    await when(monitor(), () => [...needsIt].every((p) => monitor().page('cas', p).status === 503));
    for (const p of protocols) {
      const r = await client.fetch(page(p));
      assert.equal(r.status, needsIt.has(p) ? 503 : 200, p);
      // The internet learns nothing of which hop is down.
      assert.doesNotMatch(r.body.toString(), /2007|mbx|ldap|directory/i);
    }
    const down = await readyz();
    assert.equal(down.status, 503);
    const detail = JSON.parse(down.body) as {
      ready: boolean;
      down: { protocol: string; hops: { server: string }[] }[];
    };
    assert.equal(detail.ready, false);
    assert.deepEqual(new Set(detail.down.map((d) => d.protocol)), needsIt);
    assert.ok(detail.down.every((d) => d.hops.some((h) => h.server === stopped)));
    const metrics = await lab.metrics.get(front)?.text();
    assert.match(
      metrics ?? '',
      new RegExp(`coexist_upstream_up\\{[^}]*upstream="${stopped}"[^}]*protocol="ews"[^}]*\\} 0`),
    );

    await lab.startServer(stopped);
    await when(monitor(), () => monitor().readiness().ready);
    for (const p of protocols) assert.equal((await client.fetch(page(p))).status, 200, p);
    assert.equal((await readyz()).status, 200);
  });
});
