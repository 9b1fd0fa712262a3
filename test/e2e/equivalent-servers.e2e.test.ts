/**
 * Equivalent servers on the lab (docs/config.md "Equivalent servers", docs/operations.md "Next hops"): the
 * demo estate with a second 2007 CAS in New York (test/fixtures/estates/equivalent-cas.yaml). Each mailbox
 * sticks to one of the two CASes, both take some; CAS2007-NY stopped: its mailboxes fail at most `ejectAfter`
 * requests per server that routes to it, then every request goes to CAS2007-NY2; its probes put it down within
 * two rounds, and only the healthcheck.htm pages with no equivalent (Outlook Anywhere and OAB, which
 * CAS2007-NY2 does not publish) go 503; back, the next round returns it and its mailboxes with it.
 * The probe rounds are driven here through the monitors' injected timers (which never fire by themselves),
 * so nothing waits on a clock.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { parseEstate } from '../../src/config/index.ts';
import type { HealthTimers, NodeStatus, ServerNode } from '../../src/dataplane/index.ts';
import { healthPlan, nodeStatus, vdirOf } from '../../src/dataplane/index.ts';
import type { Protocol } from '../../src/core/protocols/protocol.ts';
import { protocols } from '../../src/core/protocols/protocol.ts';
import type { Lab } from '../../src/lab/index.ts';
import { startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { AdminServer } from '../../src/observability/metrics.ts';
import { startAdminServer } from '../../src/observability/metrics.ts';
import type { LabClient, Reply } from '../support/lab-client.ts';
import { labClient, LineSink } from '../support/lab-client.ts';

const estateFile = fileURLToPath(new URL('../fixtures/estates/equivalent-cas.yaml', import.meta.url));
const front = 'CAS2013-NY';
const stopped = 'CAS2007-NY';
const standIn = 'CAS2007-NY2';
const users = ['bob', 'erin', 'gina', 'hugo'].map((u) => `${u}@o365info.com`);
const ejectAfter = 2;

const ewsUrl = 'https://mail.o365info.com/EWS/Exchange.asmx';
const getInbox =
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header>' +
  '<t:RequestServerVersion Version="Exchange2007_SP1"/></soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape>' +
  '<t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/>' +
  '</FolderIds></GetFolder></soap:Body></soap:Envelope>';
const folderSync = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01,
]);
const easUrl = (user: string): string =>
  `https://mail.o365info.com/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=${user.split('@')[0] ?? ''}` +
  `&DeviceId=EQ${(user.split('@')[0] ?? '').toUpperCase()}1&DeviceType=TestDevice`;
const page = (p: Protocol): string => `https://mail.o365info.com/${vdirOf(p)}/healthcheck.htm`;

/**
 * The monitors' timers, shared by every server of the lab: they never fire by themselves; `fire()` runs every
 * pending one at once, as if one interval had passed.
 */
function intervalTimers(): HealthTimers & { fire(): void } {
  const pending = new Set<() => void>();
  return {
    set: (fn) => {
      pending.add(fn);
      return fn;
    },
    clear: (h) => void pending.delete(h as () => void),
    fire: () => {
      const due = [...pending];
      pending.clear();
      for (const fn of due) fn();
    },
  };
}
const timers = intervalTimers();

type Kind = 'ews' | 'activesync';

describe('equivalent 2007 CASes in one site', () => {
  let lab: Lab;
  let client: LabClient;
  let admin: AdminServer;
  const sink = new LineSink();
  /** Each user's CAS before anything is stopped. */
  const home = new Map<string, string>();

  const node = (name: string): ServerNode => {
    const n = lab.nodes.get(name);
    assert.ok(n, name);
    return n;
  };
  /** One check interval passes: every server's next probe round runs, and the test waits until all have ended. */
  const interval = async (): Promise<void> => {
    timers.fire();
    // Joins the round each timer started (a server started since runs its first one).
    await Promise.all([...lab.nodes.values()].map((n) => n.health.round()));
  };
  const send = (user: string, kind: Kind): Promise<Reply> =>
    kind === 'ews'
      ? client.fetch(ewsUrl, { user, headers: { 'content-type': 'text/xml; charset=utf-8' }, body: getInbox })
      : client.fetch(easUrl(user), {
          user,
          headers: { 'ms-asprotocolversion': '12.1', 'content-type': 'application/vnd.ms-sync.wbxml' },
          body: folderSync,
        });
  /** The 2007 CAS an answer came back through; asserts there is exactly one. */
  const casOf = (r: Reply): string => {
    const cas = r.path.filter((s) => s.startsWith('CAS2007-'));
    assert.equal(cas.length, 1, `one 2007 CAS on the path: ${r.path.join(', ')} (HTTP ${r.status})`);
    return cas[0] as string;
  };
  const ok = (r: Reply): boolean => r.status === 200;
  const status = async (): Promise<NodeStatus> => {
    const r = await request(`http://127.0.0.1:${admin.port}/status`);
    assert.equal(r.statusCode, 200);
    return (await r.body.json()) as NodeStatus;
  };
  const hopOf = (s: NodeStatus, server: string, p: Protocol): NodeStatus['hops'][number] => {
    const hop = s.hops.find((h) => h.server === server && h.protocols.includes(p));
    assert.ok(hop, `${server} ${p} in /status`);
    return hop;
  };
  const metric = async (name: string, labels: Record<string, string>): Promise<number | undefined> => {
    const text = (await lab.metrics.get(front)?.text()) ?? '';
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
        return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return undefined;
  };

  before(async () => {
    const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile);
    lab = await startLab({
      index,
      logger: createLogger({ level: 'info', destination: sink }),
      // rule `every`: a page is 503 as soon as some mailboxes have no next hop left, so the equivalent
      // server is what keeps EWS and ActiveSync up.
      health: { timeoutSeconds: 5, downAfter: 2, ejectAfter, rule: 'every', timers },
    });
    client = labClient(lab);
    const metrics = lab.metrics.get(front);
    assert.ok(metrics);
    admin = await startAdminServer({
      metrics,
      readiness: () => node(front).health.readiness(),
      status: () => nodeStatus(node(front)),
    });
    // The first round each monitor starts by itself ran while the servers after it were still starting (its
    // probes of them failed): one interval with everything running resets the counts.
    await Promise.all([...lab.nodes.values()].map((n) => n.health.round()));
    await interval();
  });
  after(async () => {
    await client.close();
    await admin?.close();
    await lab?.close();
  });

  test('each mailbox sticks to one CAS for every protocol, and both CASes take some', async () => {
    for (const user of users) {
      const seen = new Set<string>();
      for (const kind of ['ews', 'activesync', 'ews', 'activesync'] as const) {
        const r = await send(user, kind);
        assert.equal(r.status, 200, `${user} ${kind}`);
        seen.add(casOf(r));
      }
      assert.equal(seen.size, 1, `${user}: ${[...seen].join(', ')}`);
      home.set(user, [...seen][0] as string);
    }
    assert.deepEqual(new Set(home.values()), new Set([stopped, standIn]), [...home].join('; '));
    const s = await status();
    assert.equal(s.ready, true);
    assert.ok(s.hops.length > 0 && s.hops.every((h) => h.state === 'up'));
  });

  test(`${stopped} stopped: at most ${ejectAfter} failed requests per server that routes to it, then ${standIn}`, async () => {
    await lab.stopServer(stopped);
    const movers = users.filter((u) => home.get(u) === stopped);
    const stayers = users.filter((u) => home.get(u) === standIn);
    for (const kind of ['ews', 'activesync'] as const) {
      let failed = 0;
      for (const user of movers) {
        // Until its first answer; each failure is the protocol's own error, never a hang.
        for (let r = await send(user, kind); !ok(r); r = await send(user, kind)) {
          assert.ok(r.status === 502 || r.status === 503 || r.status === 504, `${kind}: HTTP ${r.status}`);
          failed++;
          assert.ok(failed <= ejectAfter, `${kind}: ${failed} failed requests`);
        }
        for (let i = 0; i < 3; i++) {
          const r = await send(user, kind);
          assert.equal(r.status, 200, `${user} ${kind} after ejection`);
          assert.equal(casOf(r), standIn);
        }
      }
      assert.equal(failed, ejectAfter, `${kind}: ejected after exactly ${ejectAfter} failures`);
      for (const user of stayers) {
        const r = await send(user, kind);
        assert.equal(r.status, 200);
        assert.equal(casOf(r), standIn, `${user} never moved`);
      }
    }
    // The front end proxies EWS to the 2007 CAS itself; ActiveSync goes through MBX2013-NY, which ejected it.
    const hop = hopOf(await status(), stopped, 'ews');
    assert.equal(hop.state, 'ejected');
    assert.equal(hop.consecutiveFailures, ejectAfter);
    assert.equal(hop.lastError?.by, 'request');
    assert.match(hop.lastError?.error ?? '', /^CX_UPSTREAM_/);
    assert.equal(
      node('MBX2013-NY')
        .nextHops.status()
        .find((h) => h.server === stopped && h.protocols.includes('activesync'))?.state,
      'ejected',
    );
    assert.equal(await metric('coexist_upstream_ejected', { upstream: stopped, protocol: 'ews' }), 1);
    // One line for the operator, naming the hop and the failure (never a client's data).
    const lines = sink
      .records()
      .filter((l) => l['msg'] === 'next hop ejected: requests to it failed' && l['server'] === front);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.['nextHop'], stopped);
    assert.equal(lines[0]?.['protocol'], 'ews');
    assert.match(String(lines[0]?.['error']), /^CX_UPSTREAM_/);
    assert.equal(
      await metric('coexist_upstream_requests_total', {
        upstream: stopped,
        protocol: 'ews',
        result: 'failed',
      }),
      ejectAfter,
    );
    assert.ok(
      ((await metric('coexist_upstream_requests_total', {
        upstream: standIn,
        protocol: 'ews',
        result: 'answered',
      })) ?? 0) > 0,
    );
  });

  test('its probes put it down within two intervals; healthcheck.htm 503 only where no equivalent serves', async () => {
    const server = lab.index.server(front);
    assert.ok(server);
    const plan = healthPlan(lab.index, server);
    // Protocols with mailboxes whose every next hop is the stopped server: from the engine, not by hand.
    const needsIt = new Set(
      [...(plan.needs.get('cas') ?? new Map<Protocol, never>())]
        .filter(([, n]) => n.groups.some((g) => g.every((u) => plan.hops.get(u)?.server === stopped)))
        .map(([p]) => p),
    );
    assert.deepEqual(needsIt, new Set(['rpc', 'oab']));
    await interval();
    await interval();
    const s = await status();
    assert.equal(hopOf(s, stopped, 'ews').state, 'down');
    assert.equal(hopOf(s, stopped, 'ews').consecutiveProbeFailures, 2);
    assert.equal(hopOf(s, standIn, 'ews').state, 'up');
    assert.equal(s.ready, false);
    assert.deepEqual(new Set(s.unavailable.map((u) => u.protocol)), needsIt);
    for (const p of protocols) {
      const r = await client.fetch(page(p));
      assert.equal(r.status, needsIt.has(p) ? 503 : 200, p);
    }
    // No request fails any more: the down hop is not tried.
    for (const user of users)
      for (const kind of ['ews', 'activesync'] as const) {
        const r = await send(user, kind);
        assert.equal(r.status, 200, `${user} ${kind}`);
        assert.equal(casOf(r), standIn);
      }
  });

  test(`${stopped} back: the next round returns it, and its mailboxes with it`, async () => {
    await lab.startServer(stopped);
    await interval();
    const s = await status();
    assert.equal(s.ready, true);
    assert.ok(
      s.hops.every((h) => h.state === 'up'),
      JSON.stringify(s.hops.filter((h) => h.state !== 'up')),
    );
    assert.equal(await metric('coexist_upstream_ejected', { upstream: stopped, protocol: 'ews' }), 0);
    for (const p of protocols) assert.equal((await client.fetch(page(p))).status, 200, p);
    for (const user of users)
      for (const kind of ['ews', 'activesync'] as const) {
        const r = await send(user, kind);
        assert.equal(r.status, 200, `${user} ${kind}`);
        assert.equal(casOf(r), home.get(user), `${user} ${kind} back home`);
      }
  });
});
