/**
 * `coexist status` as an admin runs it, a separate process asking a running server's admin listener: every
 * next hop with its state, exit 0 when all are up and 1 when one is down; `--json`; 3 when the admin listener
 * cannot be asked, 2 for a bad `--admin`. Against the lab's front end (a real server node whose probe rounds the
 * test drives) and against `coexist serve` itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { healthPlan, nodeStatus } from '../../src/dataplane/index.ts';
import type { HealthTimers, NodeStatus, ServerNode } from '../../src/dataplane/index.ts';
import type { Lab } from '../../src/lab/index.ts';
import type { AdminServer } from '../../src/observability/metrics.ts';
import { startAdminServer } from '../../src/observability/metrics.ts';
import { loggedLab } from '../support/logged-lab.ts';
import type { ServeProcess } from '../support/serve-process.ts';
import { demoEstate, startServe } from '../support/serve-process.ts';

const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
const run = promisify(execFile);
const front = 'CAS2013-NY';

/** `coexist status ARGS` as a process; never rejects. */
async function status(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', entry, 'status', ...args], {
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

/** A loopback port nobody listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Timers that never fire: a probe round runs only when the test asks. */
const heldTimers: HealthTimers = { set: () => ({}), clear: () => undefined };

describe('coexist status against the lab front end', () => {
  let lab: Lab;
  let admin: AdminServer;
  const node = (): ServerNode => {
    const n = lab.nodes.get(front);
    assert.ok(n);
    return n;
  };
  const rounds = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await Promise.all([...lab.nodes.values()].map((s) => s.health.round()));
  };

  before(async () => {
    // rule `every`: with CAS2007-NY down the front end cannot serve some protocols, so it is not ready.
    ({ lab } = await loggedLab({ health: { downAfter: 2, rule: 'every', timers: heldTimers } }));
    const metrics = lab.metrics.get(front);
    assert.ok(metrics);
    admin = await startAdminServer({
      metrics,
      readiness: () => node().health.readiness(),
      status: () => nodeStatus(node()),
    });
    // The first rounds ran while later servers were still starting; one full round resets their counts.
    await rounds(2);
  });
  after(async () => {
    await admin?.close();
    await lab?.close();
  });

  test('every hop up: one row per next hop of the plan, exit 0', async () => {
    const r = await status(['--admin', `127.0.0.1:${admin.port}`]);
    assert.equal(r.code, 0, r.stderr);
    const plan = healthPlan(lab.index, node().server);
    const servers = new Set([...plan.hops.values()].map((h) => h.server));
    assert.match(
      r.stdout,
      new RegExp(`^${front}: ready, directory up, ${plan.hops.size} next hops \\(${plan.hops.size} up\\)`),
    );
    const rows = r.stdout
      .split('\n')
      .slice(r.stdout.split('\n').findIndex((l) => l.startsWith('SERVER')) + 1)
      .filter((l) => l !== '');
    assert.equal(rows.length, plan.hops.size);
    assert.deepEqual(new Set(rows.map((l) => l.split(/\s+/)[0])), servers);
    for (const row of rows) assert.match(row, /\s+up\s+/);
  });

  test('CAS2007-NY stopped and probed down: its rows say down, since when, the last error; exit 1', async () => {
    await lab.stopServer('CAS2007-NY');
    await rounds(2);
    const r = await status(['--admin', `127.0.0.1:${admin.port}`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /NOT READY/);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('CAS2007-NY '));
    assert.ok(rows.length > 0);
    for (const row of rows) {
      assert.match(
        row,
        /\s+down\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+0\s+2\s+https:\/\/\S+\s+probe failed \(probe, /,
      );
    }
    const json = await status(['--admin', `127.0.0.1:${admin.port}`, '--json']);
    assert.equal(json.code, 1);
    const doc = JSON.parse(json.stdout) as NodeStatus;
    assert.equal(doc.server, front);
    assert.ok(Array.isArray(doc.hops));
    const down = doc.hops.filter((h) => h.state !== 'up');
    assert.ok(down.length > 0 && down.every((h) => h.server === 'CAS2007-NY' && h.state === 'down'));
    assert.ok(down.every((h) => h.consecutiveProbeFailures === 2 && h.lastError?.by === 'probe'));

    await lab.startServer('CAS2007-NY');
    await rounds(1);
    assert.equal((await status(['--admin', `127.0.0.1:${admin.port}`])).code, 0);
  });

  test('no admin listener there: exit 3 and why; a bad --admin: exit 2', async () => {
    const port = await closedPort();
    const r = await status(['--admin', `127.0.0.1:${port}`]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, new RegExp(`cannot get http://127\\.0\\.0\\.1:${port}/status: ECONNREFUSED`));
    const bad = await status(['--admin', 'nowhere']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--admin takes host:port/);
  });
});

describe('coexist status against coexist serve', () => {
  let serve: ServeProcess;
  before(async () => {
    serve = await startServe(['--estate', demoEstate, '--as', front, '--allow-http', '--log-level', 'warn']);
  });
  after(async () => {
    await serve?.stop();
  });

  test("the server's own status document: its name, every next hop of its plan; the exit code follows the states", async () => {
    const r = await status(['--admin', `127.0.0.1:${serve.adminPort}`, '--json']);
    const doc = JSON.parse(r.stdout) as NodeStatus;
    assert.equal(doc.server, front);
    // Nothing of the estate runs here, so the hops go down as the probes say; which, the document tells.
    const allUp = doc.ready && doc.hops.every((h) => h.state === 'up');
    assert.equal(r.code, allUp ? 0 : 1);
    assert.deepEqual(
      new Set(doc.hops.map((h) => h.server)),
      new Set(['MBX2013-NY', 'CAS2007-NY', 'CAS2007-LA', 'CAS2007-MAD']),
    );
    for (const h of doc.hops) {
      assert.ok(['up', 'down', 'ejected'].includes(h.state));
      assert.match(h.url, /^https:\/\//);
      assert.ok(!Number.isNaN(Date.parse(h.since)));
    }
  });
});
