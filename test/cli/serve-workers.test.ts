/**
 * `coexist serve --workers 2` in front of the lab (docs/operations.md "Workers"): a primary and two worker
 * processes on one port, connections spread by the kernel. Which worker served a request is read from its
 * access line (`worker`, found by the answer's `request-id`); a connection is steered to a worker by opening
 * connections until one lands there (a harmless GET first), then using it for the request that matters.
 * The workers share the OWA session key and the shared store (held by the primary, over IPC), so a logon on
 * one is a session on the other, a logoff on one is honoured on the other, failed sign-ins on both add up;
 * SIGHUP reloads every worker, a worker killed is replaced, SIGTERM drains both and the primary exits 0.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { Agent, buildConnector, request } from 'undici';
import { decodeWbxml, encodeWbxml } from '../../src/codec/wbxml.ts';
import { parsePing, pingRequest } from '../../src/client/activesync/commands.ts';
import type { Lab } from '../../src/lab/index.ts';
import { basic, demoPassword } from '../support/lab-client.ts';
import { hasReusePort } from '../../src/cli/serve-cluster.ts';
import { runCli } from '../support/run-cli.ts';
import { demoEstate } from '../support/serve-process.ts';
import type { Served } from '../support/serve-in-lab.ts';
import { labForServe, serve, stopServed, until } from '../support/serve-in-lab.ts';

const mail = 'https://mail.o365info.com';
const formType = { 'content-type': 'application/x-www-form-urlencoded' };
const logonBody = (user: string, password: string): string =>
  `destination=${encodeURIComponent(`${mail}/owa/`)}&flags=4&forcedownlevel=0` +
  `&username=${encodeURIComponent(user)}&password=${encodeURIComponent(password)}&isUtf8=1`;
const cookieOf = (setCookie: unknown): string => String(setCookie).split(';')[0] as string;

interface Answer {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly body: string;
  /** The worker whose access line has this answer's request-id. */
  readonly worker: number;
}

/** A connection of its own to a worker: one undici connection, kept alive between the requests made on it. */
interface OnWorker {
  readonly worker: number;
  send(
    path: string,
    init?: { method?: string; headers?: Record<string, string>; body?: string },
  ): Promise<Answer>;
  raw(
    path: string,
    init: Dispatcher.RequestOptions['headers'] & object,
    body: Uint8Array,
  ): Promise<Dispatcher.ResponseData>;
  close(): Promise<void>;
}

describe('coexist serve --workers 2', () => {
  let lab: Lab;
  let s: Served;
  const opened: OnWorker[] = [];

  before(async () => {
    lab = await labForServe();
    s = await serve(lab, ['--workers', '2', '--drain-grace', '600', '--drain-timeout', '900']);
    await until('both workers ready', () => s.lines('worker ready').length === 2);
  });
  after(async () => {
    await Promise.all(opened.map((c) => c.close()));
    await stopServed(s);
    await lab?.close();
  });

  /** The access line of the answer with `requestId`, once its worker has written it. */
  async function accessOf(requestId: string): Promise<Record<string, unknown>> {
    let line: Record<string, unknown> | undefined;
    await until(`the access line of ${requestId}`, () => {
      line = s.lines('access').find((l) => l['reqId'] === requestId);
      return line !== undefined;
    });
    return line as Record<string, unknown>;
  }

  /** A new connection; `send` reads which worker answered from the access line. */
  function connection(): Omit<OnWorker, 'worker'> {
    const base = buildConnector({ ca: lab.ca.certPem });
    const agent = new Agent({
      connections: 1,
      pipelining: 1,
      connect: (opts, cb) =>
        base({ ...opts, hostname: '127.0.0.1', port: String(s.port), servername: opts.hostname }, cb),
    });
    return {
      async send(path, init = {}) {
        const r = await request(`${mail}${path}`, {
          dispatcher: agent,
          method: (init.method ?? 'GET') as Dispatcher.HttpMethod,
          ...(init.headers ? { headers: init.headers } : {}),
          ...(init.body === undefined ? {} : { body: init.body }),
        });
        const body = await r.body.text();
        const line = await accessOf(String(r.headers['request-id']));
        return { status: r.statusCode, headers: r.headers, body, worker: Number(line['worker']) };
      },
      raw: (path, headers, body) =>
        request(`${mail}${path}`, { dispatcher: agent, method: 'POST', headers, body }),
      close: () => agent.close(),
    };
  }

  /** A connection the kernel gave to `worker`: connections are opened until one lands there. */
  async function onWorker(worker: number): Promise<OnWorker> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const c = connection();
      // A harmless request on the new connection: the logon page's redirect, logged at info.
      const r = await c.send('/owa/');
      if (r.worker === worker) {
        const on = { ...c, worker };
        opened.push(on);
        return on;
      }
      await c.close();
    }
    throw new Error(`200 connections and none landed on worker ${worker}`);
  }

  const metric = async (series: RegExp): Promise<number> => {
    const text = await (await request(`http://127.0.0.1:${s.adminPort}/metrics`)).body.text();
    const line = text.split('\n').find((l) => series.test(l));
    assert.ok(line, `${String(series)} in\n${text}`);
    return Number(line.split(' ').at(-1));
  };

  test('both workers take connections, on the one port; the metrics count each and the total', async () => {
    const one = await onWorker(1);
    const two = await onWorker(2);
    assert.equal((await one.send('/owa/')).worker, 1);
    assert.equal((await two.send('/owa/')).worker, 2);
    assert.ok((await metric(/^coexist_worker_client_connections\{worker="1"/)) >= 1);
    assert.ok((await metric(/^coexist_worker_client_connections\{worker="2"/)) >= 1);
    assert.ok((await metric(/^coexist_client_connections\{/)) >= 2);
    assert.equal(await metric(/^coexist_workers\{/), 2);
    // Each worker its own SO_REUSEPORT socket where this runtime has it, else one shared socket: found by trying.
    const mode = (await hasReusePort()) ? 'SO_REUSEPORT' : 'one shared listening socket';
    assert.ok(s.out().includes(`2 workers (${mode})`), s.out());
    const pids = new Set(s.lines('worker ready').map((l) => l['workerPid']));
    assert.equal(pids.size, 2, 'two processes');
    assert.ok(!pids.has(s.child.pid), 'neither is the primary');
  });

  test('OWA: a logon on worker 1 is a session on worker 2; a logoff on worker 2 is honoured on worker 1', async () => {
    const one = await onWorker(1);
    const two = await onWorker(2);
    const logon = await one.send('/owa/auth.owa', {
      method: 'POST',
      headers: formType,
      body: logonBody('alice@o365info.com', demoPassword),
    });
    assert.equal(logon.status, 302, logon.body);
    assert.equal(logon.worker, 1);
    const cookie = cookieOf(logon.headers['set-cookie']);
    const page = await two.send('/owa/', { headers: { cookie } });
    assert.equal(page.worker, 2);
    assert.equal(page.status, 200);
    assert.match(page.body, /alice@o365info\.com/);

    const off = await two.send('/owa/auth/logoff.aspx', { headers: { cookie } });
    assert.equal(off.status, 302);
    const after = await one.send('/owa/', { headers: { cookie } });
    assert.equal(after.worker, 1);
    assert.equal(after.status, 302);
    assert.match(String(after.headers['location']), /^\/owa\/auth\/logon\.aspx\?/);
    const refused = s
      .lines('owa session refused')
      .find((l) => l['reason'] === 'revoked' && l['worker'] === 1);
    assert.ok(refused, 'worker 1 refused the cookie worker 2 logged off');
  });

  test('wrong passwords on both workers add up to one lockout', async () => {
    const one = await onWorker(1);
    const two = await onWorker(2);
    // The unfamiliar-source threshold is 5 (docs/security.md "Extranet smart lockout"): 3 + 2.
    for (const c of [one, two, one, two, one]) {
      const r = await c.send('/owa/auth.owa', {
        method: 'POST',
        headers: formType,
        body: logonBody('diego@o365info.com', 'wrong-password'),
      });
      assert.equal(r.worker, c.worker);
      assert.match(String(r.headers['location']), /reason=2/);
    }
    for (const c of [one, two]) {
      const r = await c.send('/owa/auth.owa', {
        method: 'POST',
        headers: formType,
        body: logonBody('diego@o365info.com', demoPassword),
      });
      assert.match(String(r.headers['location']), /reason=2/, `refused while locked, on worker ${c.worker}`);
    }
    const locked = s.lines('sign-in locked');
    assert.equal(locked.length, 1, 'locked once');
    assert.equal(locked[0]?.['failures'], 5, 'five failures counted across both workers');
    assert.equal(locked[0]?.['worker'], 1);
  });

  test('SIGHUP: the primary checks the estate once, every worker reloads; a broken one reaches no worker', async () => {
    const bobsOwa = async (c: OnWorker): Promise<string> => {
      const r = await c.send('/owa/', { headers: { authorization: basic('bob@o365info.com') } });
      assert.equal(r.status, 302);
      return new URL(String(r.headers['location'])).host;
    };
    const one = await onWorker(1);
    const two = await onWorker(2);
    assert.equal(await bobsOwa(one), 'legacy.mail.o365info.com');
    const good = await readFile(s.estate, 'utf8');
    await writeFile(
      s.estate,
      good.replace('mailbox: { database: DB2007-NY }', 'mailbox: { database: DB2007-MAD }'),
    );
    s.child.kill('SIGHUP');
    await until('the primary reloaded', () =>
      s.lines('estate reloaded').some((l) => l['worker'] === undefined),
    );
    assert.equal(
      s.lines('estate reloaded').filter((l) => l['worker'] !== undefined).length,
      2,
      'each worker',
    );
    assert.equal(await bobsOwa(one), 'europe.mail.o365info.com');
    assert.equal(await bobsOwa(two), 'europe.mail.o365info.com');
    assert.equal(await metric(/^coexist_reloads_total\{result="ok"/), 1, 'one reload, not one per worker');
    assert.equal(await metric(/^coexist_estate_generation\{/), 2);

    await writeFile(s.estate, good.replace('version: 2013', 'version: 2012'));
    const bad = await request(`http://127.0.0.1:${s.adminPort}/reload`, {
      method: 'POST',
      headers: { 'x-coexist-admin': '1' },
    });
    assert.equal(bad.statusCode, 422);
    await bad.body.dump();
    const refusedLine = 'reload refused: the estate has problems; the one in use keeps serving';
    await until('the refusal line', () => s.lines(refusedLine).length > 0);
    assert.deepEqual(
      s.lines(refusedLine).map((l) => l['worker']),
      [undefined],
      'refused by the primary; no worker was asked',
    );
    assert.equal(await bobsOwa(two), 'europe.mail.o365info.com');
    await writeFile(s.estate, good);
  });

  test('coexist status asks the primary: every next hop once, both workers ready', async () => {
    const r = await runCli(['status', '--admin', `127.0.0.1:${s.adminPort}`, '--json']);
    const doc = JSON.parse(r.stdout) as {
      server: string;
      hops: { server: string; url: string }[];
      workers: { worker: number; ready: boolean }[];
    };
    assert.equal(doc.server, 'CAS2013-NY');
    const keys = doc.hops.map((h) => `${h.server} ${h.url}`);
    assert.ok(keys.length > 0);
    assert.equal(new Set(keys).size, keys.length, 'each hop once');
    assert.deepEqual(
      doc.workers.map((w) => w.worker),
      [1, 2],
    );
  });

  test("the primary's store not answering (the primary stopped): a worker signs in from its own memory, one line, and comes back", async () => {
    const downLine =
      "shared store: the primary process does not answer, degraded to this worker's memory (lockout per worker, revocations known here)";
    const upLine = "shared store: the primary process's store in use";
    // Lines of worker 1 so far (a machine loaded enough may have degraded it before, for a moment).
    const of1 = (msg: string): number => s.lines(msg).filter((l) => l['worker'] === 1).length;
    const [downBefore, upBefore] = [of1(downLine), of1(upLine)];
    const one = await onWorker(1);
    process.kill(s.child.pid as number, 'SIGSTOP');
    try {
      // A sign-in asks the lockout's counters in the primary's store: no answer within 2 s, this worker's memory.
      const r = await one.send('/owa/auth.owa', {
        method: 'POST',
        headers: formType,
        body: logonBody('bob@o365info.com', demoPassword),
      });
      assert.equal(r.status, 302, 'signed in, degraded');
      assert.equal(r.headers['location'], `${mail}/owa/`);
      // Written before its access line, on the same pipe.
      assert.equal(of1(downLine), downBefore + 1, 'one line');
    } finally {
      process.kill(s.child.pid as number, 'SIGCONT');
    }
    await until('worker 1 back on the primary store', () => of1(upLine) === upBefore + 1);
    assert.equal(await metric(/^coexist_shared_store_up\{/), 1);
  });

  test('a worker killed (SIGKILL) is replaced: one line, the metric, and the service goes on with the same sessions', async () => {
    const one = await onWorker(1);
    const logon = await one.send('/owa/auth.owa', {
      method: 'POST',
      headers: formType,
      body: logonBody('alice@o365info.com', demoPassword),
    });
    const cookie = cookieOf(logon.headers['set-cookie']);
    const victim = Number(s.lines('worker ready').find((l) => l['worker'] === 1)?.['workerPid']);
    process.kill(victim, 'SIGKILL');
    await until('the replacement ready', () => s.lines('worker ready').length === 3).catch((e: unknown) => {
      throw new Error(
        `${String(e)}\n${s
          .out()
          .split('\n')
          .filter((l) => !l.includes('"access"'))
          .join('\n')}`,
      );
    });
    const line = s.lines('worker exited unexpectedly: starting another')[0];
    assert.equal(line?.['worker'], 1);
    assert.equal(line?.['signal'], 'SIGKILL');
    assert.equal(await metric(/^coexist_worker_restarts_total\{/), 1);
    const replacement = await onWorker(1);
    const page = await replacement.send('/owa/', { headers: { cookie } });
    assert.equal(page.status, 200, 'the session key is the primary’s: the new worker opens the cookie');
    assert.match(page.body, /alice@o365info\.com/);
  });

  test('SIGTERM: both workers drain (held Pings answered early), the primary exits 0', async () => {
    const ping = (c: OnWorker, device: string) =>
      c.raw(
        `/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=${device}&DeviceType=iPhone`,
        {
          authorization: basic('alice@o365info.com'),
          'content-type': 'application/vnd.ms-sync.wbxml',
          'ms-asprotocolversion': '14.1',
        },
        encodeWbxml(pingRequest(900, [{ id: '1', class: 'Email' }])),
      );
    const held = [ping(await onWorker(1), 'WORKERS1'), ping(await onWorker(2), 'WORKERS2')];
    await until('both Pings held at MBX2013-NY', () => lab.heldPings() === 2);
    s.child.kill('SIGTERM');
    for (const p of held) {
      const r = await p;
      assert.equal(r.statusCode, 200);
      assert.equal(parsePing(decodeWbxml(new Uint8Array(await r.body.arrayBuffer()))).status, 1);
    }
    // The grace is long: a second POST /drain ends it, for both workers.
    await until(
      'both workers draining',
      () => s.lines('draining').filter((l) => l['worker'] !== undefined).length === 2,
    );
    const again = await request(`http://127.0.0.1:${s.adminPort}/drain`, {
      method: 'POST',
      headers: { 'x-coexist-admin': '1' },
    });
    await again.body.dump();
    assert.equal(await s.exit, 0);
    const drained = s.lines('drained');
    assert.deepEqual(drained.map((l) => l['worker'] ?? 'primary').sort(), [1, 2, 'primary'].sort());
    const primary = drained.find((l) => l['worker'] === undefined);
    assert.equal(primary?.['pingsAnswered'], 2);
  });
});

describe('coexist serve --workers: a bad count', () => {
  test('0 or not a number is a usage error (exit 2) naming the option, before anything starts', async () => {
    for (const bad of ['0', 'two', '-1']) {
      const r = await runCli([
        'serve',
        '--estate',
        demoEstate,
        '--as',
        'CAS2013-NY',
        '--allow-http',
        '--workers',
        bad,
      ]);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /--workers .*: expected a number of processes, 1 or more/);
    }
  });
});
