/**
 * Two `coexist serve` front ends behind a real HAProxy (Debian's), configured from deploy/haproxy.cfg as
 * docs/deploy.md installs it: layer 4, no persistence, the PROXY protocol, every front end checked through
 * its healthcheck.htm pages. The front ends share a session key file and a real redis-server; the lab's
 * servers are their next hops. What an admin relies on:
 * - an OWA logon through the balancer is a session on whichever front end the next connection lands on, and
 *   a logoff on one is honoured on the other;
 * - the front ends see the client's own address (the PROXY header), not the balancer's;
 * - a front end told to drain (SIGTERM) fails its health pages at once, HAProxy takes it out, its held
 *   ActiveSync Ping is answered early (Status 1), and the device's next Ping lands on the other one; the
 *   drained process exits 0;
 * - a front end killed outright (SIGKILL): requests carry on through the other, with no new OWA logon.
 *
 * The balancer's check interval is shortened for the test (the file's other lines are as shipped); every
 * wait is on an observable state (HAProxy's own server status on its stats socket, a log line, a metric),
 * with a deadline that only bounds a failure.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Dispatcher } from 'undici';
import { Agent, buildConnector, request } from 'undici';
import { decodeWbxml, encodeWbxml } from '../../src/codec/wbxml.ts';
import { parsePing, pingRequest } from '../../src/client/activesync/commands.ts';
import type { Lab } from '../../src/lab/index.ts';
import { freePort } from '../../src/lab/daemon.ts';
import type { RedisDaemon } from '../../src/lab/redis.ts';
import { startRedis } from '../../src/lab/redis.ts';
import { basic, demoPassword } from '../support/lab-client.ts';
import type { Served } from '../support/serve-in-lab.ts';
import { labForServe, serve, stopServed, until } from '../support/serve-in-lab.ts';

const mail = 'https://mail.o365info.com';
/** The balancer's address towards the front ends: the one they read PROXY headers from. */
const balancerAddress = '127.0.0.5';
const shipped = fileURLToPath(new URL('../../deploy/haproxy.cfg', import.meta.url));

/** deploy/haproxy.cfg for this machine: loopback addresses, the lab CA, a fast check, a stats socket. */
function renderHaproxy(
  text: string,
  o: { port: number; servers: readonly [string, number][]; ca: string; socket: string },
): string {
  // Not this machine's: the syslog socket, Debian's chroot and user, the system's stats socket (its own below).
  const lines = text
    .split('\n')
    .filter((l) => !/^\s*(server fe\d|log \/dev\/log|chroot |user |group |stats socket )/.test(l));
  let out = lines
    .join('\n')
    .replace('    maxconn 100000', `    maxconn 1000\n    stats socket ${o.socket} level admin`)
    .replace('bind :443', `bind 127.0.0.1:${o.port}`)
    .replaceAll('/etc/haproxy/coexist-ca.pem', o.ca)
    .replace('inter 5s fall 2 rise 2', `inter 100 fall 2 rise 1 source ${balancerAddress}`);
  out += o.servers.map(([name, port]) => `    server ${name} 127.0.0.1:${port}\n`).join('');
  return out;
}

/** One command on HAProxy's stats socket, its answer. */
async function haproxyCommand(socket: string, command: string): Promise<string> {
  const s = connect(socket);
  await once(s, 'connect');
  let answer = '';
  s.on('data', (d: Buffer) => (answer += d.toString()));
  s.end(`${command}\n`);
  await once(s, 'close');
  return answer;
}

/** HAProxy's status of each front end (`UP`, `DOWN`, ...), from `show stat`. */
async function statuses(socket: string): Promise<Map<string, string>> {
  const [head = '', ...rows] = (await haproxyCommand(socket, 'show stat')).split('\n');
  const columns = head.replace(/^# /, '').split(',');
  const name = columns.indexOf('svname');
  const status = columns.indexOf('status');
  const out = new Map<string, string>();
  for (const row of rows) {
    const f = row.split(',');
    if (f[0] === 'coexist' && /^fe\d$/.test(f[name] ?? '')) out.set(f[name] as string, f[status] as string);
  }
  return out;
}

describe('two front ends behind HAProxy (deploy/haproxy.cfg)', () => {
  let lab: Lab;
  let redis: RedisDaemon;
  let dir = '';
  let haproxy: ChildProcess | undefined;
  let haproxyOut = '';
  let socket = '';
  let port = 0;
  let extra: string[] = [];
  /** The front ends by HAProxy's name for them. */
  const fronts = new Map<string, Served>();
  /** A browser or a phone: a new connection for every request, through the balancer, as an external client. */
  let client: Agent;

  const startFront = async (): Promise<Served> => serve(lab, extra);
  const waitStatus = async (name: string, want: string): Promise<void> => {
    try {
      await until(`HAProxy to see ${name} ${want}`, async () => (await statuses(socket)).get(name) === want);
    } catch (error) {
      // What HAProxy's last check of it said, for the failure message.
      const stat = await haproxyCommand(socket, 'show stat').catch(() => '');
      const logs = [...fronts.values()].map((f) => f.out().slice(-3000)).join('\n');
      throw new Error(`${(error as Error).message}\n${stat}\n${haproxyOut}\n${logs}`, { cause: error });
    }
  };

  /** Which front end wrote the access line of request `id`. */
  const servedBy = async (id: string): Promise<string> => {
    let by: string | undefined;
    await until(`the access line of ${id}`, () => {
      for (const [name, s] of fronts)
        if (s.lines('access').some((l) => l['reqId'] === id && l['listener'] === 'front')) by = name;
      return by !== undefined;
    });
    return by as string;
  };

  const send = async (
    path: string,
    o: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {},
  ): Promise<Dispatcher.ResponseData & { id: string }> => {
    const r = await request(`${mail}${path}`, {
      dispatcher: client,
      method: (o.method ?? (o.body === undefined ? 'GET' : 'POST')) as Dispatcher.HttpMethod,
      headers: o.headers ?? {},
      ...(o.body === undefined ? {} : { body: o.body }),
      reset: true,
    });
    return Object.assign(r, { id: String(r.headers['request-id'] ?? '') });
  };

  const logon = async (): Promise<{ cookie: string; by: string }> => {
    const r = await send('/owa/auth.owa', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body:
        `destination=${encodeURIComponent(`${mail}/owa/`)}&flags=4&forcedownlevel=0` +
        `&username=alice%40o365info.com&password=${encodeURIComponent(demoPassword)}&isUtf8=1`,
    });
    await r.body.dump();
    assert.equal(r.statusCode, 302);
    assert.equal(r.headers['location'], `${mail}/owa/`);
    return { cookie: String(r.headers['set-cookie']).split(';')[0] as string, by: await servedBy(r.id) };
  };

  /** Alice's mailbox page with `cookie`, sent until it lands on front end `on`; the answer. */
  const mailboxOn = async (cookie: string, on: string): Promise<{ status: number; body: string }> => {
    for (let i = 0; i < 20; i++) {
      const r = await send('/owa/', { headers: { cookie } });
      const body = await r.body.text();
      if ((await servedBy(r.id)) === on) return { status: r.statusCode, body };
    }
    throw new Error(`no request landed on ${on} in 20 connections: the balancer has no affinity`);
  };

  const ping = (device: string): Promise<Dispatcher.ResponseData & { id: string }> =>
    send(`/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=${device}&DeviceType=iPhone`, {
      headers: {
        authorization: basic('alice@o365info.com'),
        'content-type': 'application/vnd.ms-sync.wbxml',
        'ms-asprotocolversion': '14.1',
      },
      body: encodeWbxml(pingRequest(900, [{ id: '1', class: 'Email' }])),
    });

  /** The front end holding a request in flight (its metrics), when one does. */
  const holding = async (): Promise<string | undefined> => {
    for (const [name, s] of fronts) {
      if (s.child.exitCode !== null) continue;
      const text = await (await request(`http://127.0.0.1:${s.adminPort}/metrics`)).body.text();
      if (/^coexist_inflight_requests\{[^}]*protocol="activesync"[^}]*\} 1$/m.test(text)) return name;
    }
    return undefined;
  };

  before(async () => {
    redis = await startRedis();
    dir = await mkdtemp(join(tmpdir(), 'coexist-haproxy-'));
    const keys = join(dir, 'session.keys');
    await writeFile(keys, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    lab = await labForServe();
    extra = [
      '--session-key-file',
      keys,
      '--redis',
      redis.url,
      '--proxy-protocol-from',
      balancerAddress,
      // Longer than HAProxy needs to see the pages fail (2 checks 100 ms apart); a second POST /drain ends it.
      '--drain-grace',
      '60',
      '--drain-timeout',
      '90',
    ];
    fronts.set('fe1', await startFront());
    fronts.set('fe2', await startFront());
    port = await freePort('127.0.0.1');
    socket = join(dir, 'haproxy.sock');
    const cfg = join(dir, 'haproxy.cfg');
    await writeFile(
      cfg,
      renderHaproxy(await readFile(shipped, 'utf8'), {
        port,
        servers: [...fronts].map(([name, s]) => [name, s.port]),
        ca: lab.caPath,
        socket,
      }),
    );
    haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout?.on('data', (d: Buffer) => (haproxyOut += d.toString()));
    haproxy.stderr?.on('data', (d: Buffer) => (haproxyOut += d.toString()));
    await until('HAProxy to start', async () => {
      if (haproxy?.exitCode !== null) throw new Error(`haproxy exited:\n${haproxyOut}`);
      return statuses(socket).then(
        (s) => s.size === 2,
        () => false,
      );
    });
    await waitStatus('fe1', 'UP');
    await waitStatus('fe2', 'UP');
    const base = buildConnector({ ca: lab.ca.certPem });
    client = new Agent({
      localAddress: '127.0.0.1',
      connect: (opts, cb) =>
        base({ ...opts, hostname: '127.0.0.1', port: String(port), servername: opts.hostname }, cb),
    });
  });

  after(async () => {
    await client?.close();
    haproxy?.kill('SIGKILL');
    for (const s of fronts.values()) await stopServed(s);
    await lab?.close();
    await redis?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('an OWA logon on one front end is a session on the other; a logoff on one is honoured on the other', async () => {
    const { cookie, by } = await logon();
    const other = by === 'fe1' ? 'fe2' : 'fe1';
    const page = await mailboxOn(cookie, other);
    assert.equal(page.status, 200);
    assert.match(page.body, /alice@o365info\.com/);

    // The front ends saw the client, not the balancer.
    const line = fronts
      .get(by)
      ?.lines('access')
      .find((l) => l['listener'] === 'front');
    assert.equal(line?.['clientAddress'], '127.0.0.1');

    const off = await send('/owa/auth/logoff.aspx', { headers: { cookie } });
    await off.body.dump();
    assert.equal(off.statusCode, 302);
    const offBy = await servedBy(off.id);
    const after = await mailboxOn(cookie, offBy === 'fe1' ? 'fe2' : 'fe1');
    assert.equal(after.status, 302, 'the logged-off cookie opens nothing on the other front end');
  });

  test('drain: the held Ping is answered early, HAProxy takes the front end out, the next Ping lands on the other', async () => {
    const held = ping('DRAIN1');
    await until('the Ping held at MBX2013-NY', () => lab.heldPings() === 1);
    let by: string | undefined;
    await until('the front end holding it', async () => (by = await holding()) !== undefined);
    const draining = fronts.get(by as string) as Served;
    const other = by === 'fe1' ? 'fe2' : 'fe1';

    draining.child.kill('SIGTERM');
    const early = await held;
    assert.equal(early.statusCode, 200);
    assert.equal(parsePing(decodeWbxml(new Uint8Array(await early.body.arrayBuffer()))).status, 1);
    assert.equal(early.headers['connection'], 'close');
    await waitStatus(by as string, 'DOWN');

    // The device re-issues its Ping at once: the balancer sends it to the other front end.
    const next = ping('DRAIN1');
    await until('the second Ping held', () => lab.heldPings() === 1);
    assert.equal(await holding(), other);
    assert.equal(lab.releasePings(), 1);
    const answer = await next;
    await answer.body.dump();
    assert.equal(answer.statusCode, 200);
    assert.equal(await servedBy(answer.id), other);

    // A second drain request ends the grace: the process exits 0.
    const r = await request(`http://127.0.0.1:${draining.adminPort}/drain`, {
      method: 'POST',
      headers: { 'x-coexist-admin': '1' },
    });
    await r.body.dump();
    assert.equal(await draining.exit, 0);

    // Back in service: a new process on a new port, put in the balancer's place for it.
    const again = await startFront();
    fronts.set(by as string, again);
    await haproxyCommand(socket, `set server coexist/${by} addr 127.0.0.1 port ${again.port}`);
    await waitStatus(by as string, 'UP');
  });

  test('a front end killed outright: requests carry on through the other, with no new OWA logon', async () => {
    const { cookie, by } = await logon();
    const survivor = by === 'fe1' ? 'fe2' : 'fe1';
    const killed = fronts.get(by) as Served;
    killed.child.kill('SIGKILL');
    await killed.exit;
    // Every request from now on lands on the survivor, before and after HAProxy marks the dead one down
    // (a refused connection is redispatched).
    for (let i = 0; i < 4; i++) {
      const r = await send('/owa/', { headers: { cookie } });
      const body = await r.body.text();
      assert.equal(r.statusCode, 200, 'the session made on the killed front end opens the mailbox');
      assert.match(body, /alice@o365info\.com/);
      assert.equal(await servedBy(r.id), survivor);
    }
    await waitStatus(by, 'DOWN');
  });
});
