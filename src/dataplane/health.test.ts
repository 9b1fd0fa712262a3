import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { parseEstate } from '../config/index.ts';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Server } from '../core/estate/estate.ts';
import type { HealthTimers, HopTarget } from './health.ts';
import { directoryProbe, HealthMonitor, healthPageOf, healthPlan } from './health.ts';
import type { Directory } from '../directory/directory.ts';

const estateFile = new URL('../../examples/o365info.yaml', import.meta.url);
const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile.pathname);

const server = (name: string): Server => {
  const s = (index as EstateIndex).server(name);
  assert.ok(s, name);
  return s;
};

/** Timers the test fires by hand: the one pending round, and its delay. */
function manualTimers(): HealthTimers & { pending: { fn: () => void; ms: number }[] } {
  const pending: { fn: () => void; ms: number }[] = [];
  return {
    pending,
    set: (fn, ms) => {
      const t = { fn, ms };
      pending.push(t);
      return t;
    },
    clear: (h) => {
      const i = pending.indexOf(h as { fn: () => void; ms: number });
      if (i >= 0) pending.splice(i, 1);
    },
  };
}

/** A prober whose answer per next-hop server the test sets; counts calls. */
function fakeProbe(): {
  down: Set<string>;
  calls: number;
  probe: (hop: HopTarget) => Promise<boolean>;
} {
  const state = {
    down: new Set<string>(),
    calls: 0,
    probe: (hop: HopTarget): Promise<boolean> => {
      state.calls++;
      return Promise.resolve(!state.down.has(hop.server));
    },
  };
  return state;
}

const cas2013 = server('CAS2013-NY');
const plan = healthPlan(index, cas2013);
const body = (b: Buffer): string => b.toString('utf8');

describe('healthPlan: the next hops the engine gives a server, per protocol', () => {
  test('the front end: Autodiscover answered here, EWS through MBX2013-NY and each 2007 CAS', () => {
    const needs = plan.needs.get('cas');
    assert.ok(needs);
    assert.equal(needs.get('autodiscover')?.answersHere, true);
    const ews = needs.get('ews');
    assert.equal(ews?.answersHere, false);
    const servers = new Set(ews?.groups.flat().map((u) => plan.hops.get(u)?.server));
    assert.deepEqual(servers, new Set(['MBX2013-NY', 'CAS2007-NY', 'CAS2007-LA', 'CAS2007-MAD']));
    // Each hop is probed at its vdir's health page, through the URL the engine proxies to.
    assert.ok(plan.hops.has('https://mbx2013-ny.o365info.local:444/EWS/healthcheck.htm'));
    assert.ok(plan.hops.has('https://legacy.mail.o365info.com/EWS/healthcheck.htm'));
    assert.deepEqual(
      plan.hopProtocols.get('https://legacy.mail.o365info.com/EWS/healthcheck.htm'),
      new Set(['ews']),
    );
  });

  test('a legacy mailbox server (no CAS role) answers for what it serves, needing no hop', () => {
    const p = healthPlan(index, server('MBX2007-NY'));
    assert.deepEqual([...p.needs.keys()], ['mailbox']);
    assert.equal(p.hops.size, 0);
    assert.equal(p.needs.get('mailbox')?.get('ews')?.answersHere, true);
    // MAPI/HTTP is not offered for 2007 mailboxes: nothing is served, the page says so.
    assert.equal(p.needs.get('mailbox')?.get('mapi')?.answersHere, false);
    assert.equal(p.needs.get('mailbox')?.get('mapi')?.groups.length, 0);
  });

  test('a stand-in store endpoint is probed where it is', () => {
    const p = healthPlan(index, server('CAS2007-NY'), (s, protocol) =>
      s === 'MBX2007-NY' && protocol === 'activesync' ? { url: 'https://127.0.0.1:9999/SOGo/x' } : undefined,
    );
    assert.equal(
      p.hops.get('https://127.0.0.1:9999/Microsoft-Server-ActiveSync/healthcheck.htm')?.server,
      'MBX2007-NY',
    );
    assert.equal(p.hops.get('https://mbx2007-ny.o365info.local/EWS/healthcheck.htm')?.server, 'MBX2007-NY');
  });
});

describe('HealthMonitor: down after K failures, up after one success', () => {
  test('a hop goes down at the third failed round, not before, and up at the first success', async () => {
    const probe = fakeProbe();
    const monitor = new HealthMonitor({
      server: cas2013,
      plan,
      settings: { downAfter: 3, rule: 'every' },
      probeHop: probe.probe,
      timers: manualTimers(),
    });
    const changes: number[] = [];
    monitor.subscribe(() => changes.push(monitor.page('cas', 'ews').status));
    assert.equal(monitor.page('cas', 'ews').status, 200);
    assert.equal(body(monitor.page('cas', 'ews').body), '200 OK<br/>cas2013-ny.o365info.local');

    probe.down.add('CAS2007-NY');
    await monitor.round();
    await monitor.round();
    assert.equal(monitor.page('cas', 'ews').status, 200, 'two failures: still up');
    assert.deepEqual(changes, []);
    await monitor.round();
    assert.equal(monitor.page('cas', 'ews').status, 503);
    assert.equal(monitor.hopUp('https://legacy.mail.o365info.com/EWS/healthcheck.htm'), false);
    // Only the protocols whose 2007-NY mailboxes have no other next hop: ActiveSync goes through MBX2013-NY.
    assert.equal(monitor.page('cas', 'activesync').status, 200);
    assert.equal(monitor.page('cas', 'autodiscover').status, 200);
    const r = monitor.readiness();
    assert.equal(r.ready, false);
    assert.deepEqual(r.down.map((d) => d.protocol).sort(), ['ews', 'oab', 'rpc']);
    assert.ok(r.down.every((d) => d.hops.every((h) => h.server === 'CAS2007-NY')));
    // What the internet sees names nothing.
    assert.equal(body(monitor.page('cas', 'ews').body), 'Service Unavailable');

    probe.down.clear();
    await monitor.round();
    assert.equal(monitor.page('cas', 'ews').status, 200);
    assert.equal(monitor.readiness().ready, true);
    assert.deepEqual(changes, [503, 200]);
  });

  test('a reload: the new monitor starts with each hop of both plans as the old one had it', async () => {
    const probe = fakeProbe();
    const settings = { downAfter: 2, rule: 'every' } as const;
    const old = new HealthMonitor({
      server: cas2013,
      plan,
      settings,
      probeHop: probe.probe,
      timers: manualTimers(),
    });
    probe.down.add('CAS2007-NY');
    await old.round();
    await old.round();
    assert.equal(old.page('cas', 'ews').status, 503);
    const states: [string, boolean][] = [];
    const next = new HealthMonitor({
      server: cas2013,
      plan: healthPlan(index, cas2013),
      settings,
      probeHop: probe.probe,
      timers: manualTimers(),
      previous: old,
      observer: { hopState: (hop, _protocols, up) => states.push([hop.url, up]) },
    });
    // Down from the start: no request is sent to it until a probe says it is back.
    assert.equal(next.page('cas', 'ews').status, 503);
    assert.equal(next.hopUp('https://legacy.mail.o365info.com/EWS/healthcheck.htm'), false);
    assert.ok(
      states.some(([url, up]) => url === 'https://legacy.mail.o365info.com/EWS/healthcheck.htm' && !up),
    );
    assert.equal(next.hopUp('https://mbx2013-ny.o365info.local:444/EWS/healthcheck.htm'), true);
    probe.down.clear();
    await next.round();
    assert.equal(next.page('cas', 'ews').status, 200);
  });

  test('rule any: a protocol stays up while one next hop can serve', async () => {
    const probe = fakeProbe();
    const monitor = new HealthMonitor({
      server: cas2013,
      plan,
      settings: { downAfter: 1 },
      probeHop: probe.probe,
      timers: manualTimers(),
    });
    probe.down.add('CAS2007-NY');
    await monitor.round();
    assert.equal(monitor.page('cas', 'ews').status, 200);
    assert.equal(monitor.readiness().ready, true);
    probe.down.add('MBX2013-NY').add('CAS2007-LA').add('CAS2007-MAD');
    await monitor.round();
    assert.equal(monitor.page('cas', 'ews').status, 503);
    // Autodiscover is answered here: it needs only the directory.
    assert.equal(monitor.page('cas', 'autodiscover').status, 200);
    assert.equal(monitor.readiness().ready, false);
  });

  test('the directory down: every page 503, /readyz says so; a protocol not served here is 503', async () => {
    let directoryUp = false;
    const monitor = new HealthMonitor({
      server: cas2013,
      plan,
      settings: { downAfter: 2 },
      probeHop: () => Promise.resolve(true),
      probeDirectory: () => (directoryUp ? Promise.resolve() : Promise.reject(new Error('ldap down'))),
      timers: manualTimers(),
    });
    await monitor.round();
    assert.equal(monitor.page('cas', 'owa').status, 200);
    await monitor.round();
    assert.equal(monitor.page('cas', 'owa').status, 503);
    assert.equal(monitor.page('cas', 'autodiscover').status, 503);
    assert.equal(monitor.readiness().directory, 'down');
    assert.equal(monitor.readiness().ready, false);
    directoryUp = true;
    await monitor.round();
    assert.equal(monitor.page('cas', 'owa').status, 200);
    assert.equal(monitor.page('mailbox', 'owa').status, 503, 'no mailbox role on the front end');
  });

  test('rounds follow the interval, never overlap, and stop', async () => {
    const timers = manualTimers();
    const probe = fakeProbe();
    const held: (() => void)[] = [];
    const slow = (hop: HopTarget): Promise<boolean> =>
      new Promise((resolve) => {
        held.push(() => resolve(true));
        void probe.probe(hop);
      });
    const monitor = new HealthMonitor({
      server: server('CAS2007-LA'),
      plan: healthPlan(index, server('CAS2007-LA')),
      settings: { intervalSeconds: 7 },
      probeHop: slow,
      timers,
    });
    monitor.start();
    const first = probe.calls;
    assert.ok(first > 0, 'the first round starts at once');
    const again = monitor.round(); // joins the round in flight
    assert.equal(probe.calls, first);
    assert.equal(timers.pending.length, 0, 'no next round while one is in flight');
    for (const release of held) release();
    await again;
    assert.equal(timers.pending.length, 1);
    assert.equal(timers.pending[0]?.ms, 7_000);
    await monitor.stop();
    assert.equal(timers.pending.length, 0);
  });

  test('a probe that throws counts as failed', async () => {
    const monitor = new HealthMonitor({
      server: cas2013,
      plan,
      settings: { downAfter: 1, rule: 'every' },
      probeHop: () => Promise.reject(new Error('boom')),
      timers: manualTimers(),
    });
    await monitor.round();
    assert.equal(monitor.page('cas', 'ews').status, 503);
  });
});

describe('directoryProbe: a bounded lookup', () => {
  test('an answer, found or not, is up; a directory slower than the timeout is down', async () => {
    const answers: Directory = {
      findMailbox: () => Promise.resolve(undefined),
      authenticate: () => Promise.resolve(undefined),
    };
    await directoryProbe(answers, 'alice@o365info.com')(1_000);
    const never: Directory = {
      findMailbox: () => new Promise(() => undefined),
      authenticate: () => Promise.resolve(undefined),
    };
    await assert.rejects(directoryProbe(never, 'alice@o365info.com')(5), {
      name: 'DirectoryProbeTimeoutError',
    });
  });
});

describe('healthPageOf: the exact paths', () => {
  test('each vdir in any case, exactly healthcheck.htm', () => {
    assert.equal(healthPageOf('/owa/healthcheck.htm'), 'owa');
    assert.equal(healthPageOf('/OWA/healthcheck.htm'), 'owa');
    assert.equal(healthPageOf('/EWS/healthcheck.htm'), 'ews');
    assert.equal(healthPageOf('/Microsoft-Server-ActiveSync/healthcheck.htm'), 'activesync');
    assert.equal(healthPageOf('/autodiscover/healthcheck.htm'), 'autodiscover');
    assert.equal(healthPageOf('/Rpc/healthcheck.htm'), 'rpc');
    assert.equal(healthPageOf('/mapi/healthcheck.htm'), 'mapi');
    assert.equal(healthPageOf('/oab/healthcheck.htm'), 'oab');
    assert.equal(healthPageOf('/ecp/healthcheck.htm'), 'ecp');
  });

  test('anything else is not a page', () => {
    for (const p of [
      '/owa/HealthCheck.htm',
      '/owa/healthcheck.htm;x',
      '/owa/healthcheck.htm/../x',
      '/owa/healthcheck.htm%2f..',
      '/owa/x/healthcheck.htm',
      '/healthcheck.htm',
      '//owa/healthcheck.htm',
      '/owa%2fhealthcheck.htm',
      '/powershell/healthcheck.htm',
    ])
      assert.equal(healthPageOf(p), undefined, p);
  });
});
