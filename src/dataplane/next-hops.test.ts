import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { parseEstate } from '../config/index.ts';
import type { Server } from '../core/estate/estate.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { ProxyDecision } from '../core/routing/decision.ts';
import { decide } from '../core/routing/decide.ts';
import { healthPlan, hopKey } from './health.ts';
import type { NextHopObserver } from './next-hops.ts';
import { NextHops, weight } from './next-hops.ts';
import type { UpstreamFailure } from './upstream-errors.ts';

const estateFile = new URL('../../test/fixtures/estates/equivalent-cas.yaml', import.meta.url);
const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile.pathname);

const server = (name: string): Server => {
  const s = index.server(name);
  assert.ok(s, name);
  return s;
};

/** The engine's decision at the front end for a 2007 New York mailbox. */
function decisionFor(protocol: Protocol, user = 'bob@o365info.com'): ProxyDecision {
  const d = decide(
    { server: server('CAS2013-NY'), role: 'cas' },
    { protocol, mailbox: index.mailbox(user), client: 'external', host: 'mail.o365info.com' },
    index,
    index.estate.policies,
  );
  assert.equal(d.kind, 'proxy');
  return d;
}

/** A synthetic decision: `servers[0]` first, the rest its equivalents, each at its own EWS URL. */
function synthetic(names: readonly string[]): ProxyDecision {
  const [first, ...rest] = names.map((n) => ({
    to: { ...server('CAS2007-NY'), name: n, fqdn: `${n.toLowerCase()}.example` },
    url: `https://${n.toLowerCase()}.example/EWS/Exchange.asmx`,
  }));
  assert.ok(first);
  return {
    kind: 'proxy',
    to: first.to,
    via: 'internal-url',
    url: first.url,
    alternatives: rest,
    credentials: 'passed-on',
    reasons: [],
  };
}

const mailboxes = Array.from({ length: 3000 }, (_, i) => `user${i}@o365info.com`);

const refused: UpstreamFailure = {
  outcome: 'upstream_unreachable',
  reachedUpstream: false,
  code: 'CX_UPSTREAM_CONNECT_REFUSED',
  errorCode: 'ECONNREFUSED',
};

/** Put a hop down or up as the prober would say it. */
function probeState(hops: NextHops, url: string, serverName: string, up: boolean): void {
  hops.healthObserver().transition({ url, server: serverName }, up);
}

describe('the engine lists equivalent servers (docs/config.md "Equivalent servers")', () => {
  test('EWS for a 2007 New York mailbox: CAS2007-NY, and CAS2007-NY2 at its own internal URL', () => {
    const d = decisionFor('ews');
    assert.equal(d.to.name, 'CAS2007-NY');
    assert.deepEqual(
      d.alternatives?.map((a) => [a.to.name, a.url]),
      [['CAS2007-NY2', 'https://cas2007-ny2.o365info.local/EWS/Exchange.asmx']],
    );
  });

  test('Outlook Anywhere: CAS2007-NY2 publishes no URL for it, so it is no equivalent', () => {
    assert.equal(decisionFor('rpc').alternatives, undefined);
  });

  test('the same decision object shares one list (no allocation per request)', () => {
    assert.equal(decisionFor('ews').alternatives, decisionFor('ews', 'gina@o365info.com').alternatives);
  });

  test('the health plan probes both, and either serves the New York 2007 mailboxes', () => {
    const plan = healthPlan(index, server('CAS2013-NY'));
    const ews = plan.needs.get('cas')?.get('ews');
    const group = ews?.groups.find((g) => g.some((u) => plan.hops.get(u)?.server === 'CAS2007-NY2'));
    assert.deepEqual(
      new Set(group?.map((u) => plan.hops.get(u)?.server)),
      new Set(['CAS2007-NY', 'CAS2007-NY2']),
    );
  });
});

describe('NextHops.choose: rendezvous hashing of the routed mailbox over the usable equivalents', () => {
  test('a decision without equivalents goes where it says, whatever the state', () => {
    const hops = new NextHops();
    const d = decisionFor('rpc');
    probeState(hops, hopKey(d.url ?? '', 'rpc'), d.to.name, false);
    const c = hops.choose(d, 'rpc', 'bob@o365info.com');
    assert.equal(c.to, d.to);
    assert.equal(c.url, d.url);
    assert.equal(c.alternative, false);
  });

  test('stable per mailbox, whatever the case of its address, and spread evenly over two and three servers', () => {
    for (const names of [
      ['A', 'B'],
      ['A', 'B', 'C'],
    ]) {
      const hops = new NextHops();
      const d = synthetic(names);
      const counts = new Map<string, number>();
      for (const m of mailboxes) {
        const c = hops.choose(d, 'ews', m);
        assert.equal(hops.choose(d, 'ews', m.toUpperCase()).to.name, c.to.name);
        counts.set(c.to.name, (counts.get(c.to.name) ?? 0) + 1);
      }
      const share = 1 / names.length;
      for (const n of names) {
        const got = (counts.get(n) ?? 0) / mailboxes.length;
        assert.ok(Math.abs(got - share) < 0.05, `${n}: ${got} of the mailboxes, expected about ${share}`);
      }
    }
  });

  test('a server going away moves only its own mailboxes, and they come back when it returns', () => {
    const hops = new NextHops();
    const d = synthetic(['A', 'B', 'C']);
    const before = new Map(mailboxes.map((m) => [m, hops.choose(d, 'ews', m).to.name]));
    probeState(hops, hopKey('https://b.example/', 'ews'), 'B', false);
    for (const m of mailboxes) {
      const now = hops.choose(d, 'ews', m).to.name;
      if (before.get(m) === 'B') assert.notEqual(now, 'B', m);
      else assert.equal(now, before.get(m), `${m} stays where it was`);
    }
    probeState(hops, hopKey('https://b.example/', 'ews'), 'B', true);
    for (const m of mailboxes) assert.equal(hops.choose(d, 'ews', m).to.name, before.get(m));
  });

  test('every equivalent down: the configured server, never a loop', () => {
    const hops = new NextHops();
    const d = synthetic(['A', 'B']);
    for (const n of ['A', 'B'])
      probeState(hops, hopKey(`https://${n.toLowerCase()}.example/`, 'ews'), n, false);
    for (const m of mailboxes.slice(0, 50)) {
      const c = hops.choose(d, 'ews', m);
      assert.equal(c.to.name, 'A');
      assert.equal(c.alternative, false);
    }
  });

  test('the weight depends on the mailbox and the server only', () => {
    assert.equal(weight('bob@o365info.com', 'CAS2007-NY'), weight('bob@o365info.com', 'CAS2007-NY'));
    assert.notEqual(weight('bob@o365info.com', 'CAS2007-NY'), weight('bob@o365info.com', 'CAS2007-NY2'));
    assert.notEqual(weight('bob@o365info.com', 'CAS2007-NY'), weight('bob@o365info.co', 'mCAS2007-NY'));
  });
});

describe('passive ejection and active return', () => {
  const key = hopKey('https://a.example/EWS/Exchange.asmx', 'ews');
  const events: string[] = [];
  const observer: NextHopObserver = {
    request: (hop, p, result) => events.push(`${hop.server} ${p} ${result}`),
    ejected: (hop, p, ejected) => events.push(`${hop.server} ${p} ${ejected ? 'ejected' : 'back'}`),
  };

  test('ejected after `ejectAfter` consecutive failures without an answer; traffic moves at once', () => {
    events.length = 0;
    let now = Date.parse('2026-12-07T10:00:00Z');
    const hops = new NextHops({ settings: { ejectAfter: 3 }, observer, now: () => now });
    const d = synthetic(['A', 'B']);
    const onA = mailboxes.find((m) => hops.choose(d, 'ews', m).to.name === 'A') ?? '';
    hops.report(key, 'A', 'ews', { failure: refused });
    hops.report(key, 'A', 'ews', { failure: refused });
    // An answer, whatever its status, resets the count: the hop is alive.
    hops.report(key, 'A', 'ews', { upstreamStatus: 503 });
    hops.report(key, 'A', 'ews', { failure: refused });
    hops.report(key, 'A', 'ews', { failure: refused });
    assert.equal(hops.state(key), 'up');
    assert.equal(hops.choose(d, 'ews', onA).to.name, 'A');
    now += 1000;
    hops.report(key, 'A', 'ews', { failure: refused });
    assert.equal(hops.state(key), 'ejected');
    assert.equal(hops.choose(d, 'ews', onA).to.name, 'B');
    const [status] = hops.status();
    assert.deepEqual(status, {
      server: 'A',
      protocols: ['ews'],
      url: 'https://a.example/EWS',
      state: 'ejected',
      since: '2026-12-07T10:00:01.000Z',
      consecutiveFailures: 3,
      consecutiveProbeFailures: 0,
      lastError: {
        at: '2026-12-07T10:00:01.000Z',
        by: 'request',
        error: 'CX_UPSTREAM_CONNECT_REFUSED (ECONNREFUSED)',
      },
    });
    assert.deepEqual(events.slice(-2), ['A ews failed', 'A ews ejected']);
  });

  test('a reload keeps what is known: the new NextHops inherits the ejection, its counts and last error', () => {
    let now = Date.parse('2026-12-07T11:00:00Z');
    const old = new NextHops({ settings: { ejectAfter: 2 }, now: () => now });
    const d = synthetic(['A', 'B']);
    const onA = mailboxes.find((m) => old.choose(d, 'ews', m).to.name === 'A') ?? '';
    old.report(key, 'A', 'ews', { failure: refused });
    old.report(key, 'A', 'ews', { failure: refused });
    assert.equal(old.state(key), 'ejected');
    now += 5000;
    const next = new NextHops({ settings: { ejectAfter: 2 }, now: () => now });
    next.inherit(old);
    assert.equal(next.state(key), 'ejected', 'still ejected after the reload');
    assert.equal(next.choose(d, 'ews', onA).to.name, 'B', 'traffic stays away from it');
    assert.deepEqual(next.status(), old.status());
    // It returns as before: on the next probe that answers.
    next.healthObserver().probe({ url: key, server: 'A' }, true);
    assert.equal(next.state(key), 'up');
    assert.equal(old.state(key), 'ejected', 'the old one is left as it was');
  });

  test('a client that went away, and a 502 the hop answers, count nothing against it', () => {
    const hops = new NextHops({ settings: { ejectAfter: 1 } });
    hops.report(key, 'A', 'ews', {
      failure: { outcome: 'client_aborted', reachedUpstream: true, code: 'CX_UPSTREAM_CLIENT_ABORTED' },
    });
    hops.report(key, 'A', 'ews', { upstreamStatus: 502 });
    assert.equal(hops.state(key), 'up');
    assert.equal(hops.status()[0]?.consecutiveFailures, 0);
  });

  test('a failed probe keeps it out; the next probe that answers brings it back', () => {
    events.length = 0;
    const hops = new NextHops({ settings: { ejectAfter: 1 }, observer });
    const d = synthetic(['A', 'B']);
    const onA = mailboxes.find((m) => hops.choose(d, 'ews', m).to.name === 'A') ?? '';
    hops.report(key, 'A', 'ews', { failure: refused });
    assert.equal(hops.choose(d, 'ews', onA).to.name, 'B');
    const probe = hops.healthObserver().probe;
    probe({ url: key, server: 'A' }, false);
    assert.equal(hops.state(key), 'ejected');
    assert.equal(hops.status()[0]?.consecutiveProbeFailures, 1);
    assert.equal(hops.status()[0]?.lastError?.by, 'probe');
    probe({ url: key, server: 'A' }, true);
    assert.equal(hops.state(key), 'up');
    assert.equal(hops.choose(d, 'ews', onA).to.name, 'A');
    assert.deepEqual(events, ['A ews failed', 'A ews ejected', 'A ews back']);
  });

  test('down by its probes wins over ejected in the state shown', () => {
    const hops = new NextHops({ settings: { ejectAfter: 1 } });
    hops.report(key, 'A', 'ews', { failure: refused });
    probeState(hops, key, 'A', false);
    assert.equal(hops.state(key), 'down');
    assert.equal(hops.usable(key), false);
  });
});
