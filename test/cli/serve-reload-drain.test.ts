/**
 * `coexist serve` reloaded and drained as an operator does it (docs/operations.md "Reload", "Drain"): a
 * separate process in front of the lab's servers (its next hops, reached through the lab's DNS), signals
 * and the admin listener's POST /reload and /drain. Every wait is on an event: a log line, an answer, a
 * held Ping counted by the lab, an in-flight request counted by the metrics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Dispatcher } from 'undici';
import { buildConnector, request } from 'undici';
import { decodeWbxml, encodeWbxml } from '../../src/codec/wbxml.ts';
import { parsePing, pingRequest } from '../../src/client/activesync/commands.ts';
import type { Lab } from '../../src/lab/index.ts';
import { basic } from '../support/lab-client.ts';
import type { Served } from '../support/serve-in-lab.ts';
import { labForServe, serve, stopServed, until } from '../support/serve-in-lab.ts';

const easPath = (cmd: string, device: string): string =>
  `https://mail.o365info.com/Microsoft-Server-ActiveSync?Cmd=${cmd}&User=alice&DeviceId=${device}&DeviceType=iPhone`;

/** Alice's Ping through the served front end, held by MBX2013-NY's mailbox (the lab). */
function ping(s: Served, device: string): Promise<Dispatcher.ResponseData> {
  return request(easPath('Ping', device), {
    dispatcher: s.agent,
    method: 'POST',
    headers: {
      authorization: basic('alice@o365info.com'),
      'content-type': 'application/vnd.ms-sync.wbxml',
      'ms-asprotocolversion': '14.1',
    },
    body: encodeWbxml(pingRequest(900, [{ id: '1', class: 'Email' }])),
  });
}

/** Bob's OWA through the served front end: where the front end redirects him (his mailbox's site). */
async function bobsOwa(s: Served): Promise<string> {
  const r = await request('https://mail.o365info.com/owa/', {
    dispatcher: s.agent,
    headers: { authorization: basic('bob@o365info.com') },
  });
  await r.body.dump();
  assert.equal(r.statusCode, 302);
  // The site's OWA host: where the front end redirects a mailbox of another site (docs/flows.md).
  return new URL(String(r.headers['location'])).host;
}

async function admin(
  s: Served,
  path: string,
  init: { method?: string } = {},
): Promise<Dispatcher.ResponseData> {
  return request(`http://127.0.0.1:${s.adminPort}${path}`, {
    method: (init.method ?? 'POST') as Dispatcher.HttpMethod,
    headers: { 'x-coexist-admin': '1' },
  });
}

async function metricsText(s: Served): Promise<string> {
  const r = await request(`http://127.0.0.1:${s.adminPort}/metrics`);
  return r.body.text();
}

describe('coexist serve: reload (SIGHUP, POST /reload)', () => {
  let lab: Lab;
  let s: Served;

  before(async () => {
    lab = await labForServe();
    s = await serve(lab);
  });
  after(async () => {
    await stopServed(s);
    await lab?.close();
  });

  test('a user moved to another site: new requests follow the new estate, a Ping held before keeps its route', async () => {
    assert.equal(await bobsOwa(s), 'legacy.mail.o365info.com');
    const held = ping(s, 'RELOAD1');
    await until('the Ping held at MBX2013-NY', () => lab.heldPings() === 1);

    // Bob's mailbox moves to Madrid; the server's certificate is renewed at the same time.
    const text = await readFile(s.estate, 'utf8');
    await writeFile(
      s.estate,
      text.replace('mailbox: { database: DB2007-NY }', 'mailbox: { database: DB2007-MAD }'),
    );
    const renewed = lab.ca.issue(['mail.o365info.com', 'autodiscover.o365info.com']);
    await writeFile(join(s.dir, 'mail.crt'), renewed.certPem);
    await writeFile(join(s.dir, 'mail.key'), renewed.keyPem);
    s.child.kill('SIGHUP');
    await until('the reload line', () => s.lines('estate reloaded').length === 1);
    assert.equal(s.lines('estate reloaded')[0]?.['generation'], 2);

    assert.equal(await bobsOwa(s), 'europe.mail.o365info.com');
    // A new handshake gets the renewed certificate; the held Ping's connection was not dropped.
    const serial = await new Promise<string>((resolve, reject) => {
      const base = buildConnector({ ca: lab.ca.certPem });
      base(
        {
          hostname: '127.0.0.1',
          host: '127.0.0.1',
          port: String(s.port),
          servername: 'mail.o365info.com',
          protocol: 'https:',
        },
        (err, socket) => {
          if (err || !socket) return reject(err ?? new Error('no socket'));
          const cert = (socket as TLSSocket).getPeerCertificate();
          socket.destroy();
          resolve(cert.serialNumber);
        },
      );
    });
    assert.equal(serial.toLowerCase(), new X509Certificate(renewed.certPem).serialNumber.toLowerCase());
    assert.equal(lab.heldPings(), 1, 'the Ping is still held');

    // Its heartbeat ends: answered through the route it started on, Status 1.
    assert.equal(lab.releasePings(), 1);
    const r = await held;
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['x-coexist-path'], 'CAS2013-NY, MBX2013-NY');
    assert.equal(parsePing(decodeWbxml(new Uint8Array(await r.body.arrayBuffer()))).status, 1);

    const text2 = await metricsText(s);
    assert.match(text2, /coexist_reloads_total\{[^}]*result="ok"[^}]*\} 1/);
    assert.match(text2, /coexist_estate_generation\{[^}]*\} 2/);
  });

  test('a broken estate (YAML error, schema error) is refused with every problem; the one in use keeps serving', async () => {
    const good = await readFile(s.estate, 'utf8');
    await writeFile(s.estate, good.replace('namespaces:\n', 'namespaces:\n  - { host: [unclosed\n'));
    s.child.kill('SIGHUP');
    await until(
      'the refusal line',
      () => s.lines('reload refused: the estate has problems; the one in use keeps serving').length === 1,
    );
    const [line] = s.lines('reload refused: the estate has problems; the one in use keeps serving');
    const problems = line?.['problems'] as { file: string; line?: number; code: string }[];
    assert.ok(problems.length >= 1);
    assert.equal(problems[0]?.file, s.estate);
    assert.equal(typeof problems[0]?.line, 'number');

    // A schema error, through the admin listener: 422 with the problems as JSON.
    await writeFile(
      s.estate,
      good
        .replace('version: 2013', 'version: 2012')
        .replace(
          'roles: [mailbox]\n        databases: [DB2013-NY]',
          'roles: [mailbox]\n        databases: [DB2013-NY]\n        color: blue',
        ),
    );
    const r = await admin(s, '/reload');
    assert.equal(r.statusCode, 422);
    const body = (await r.body.json()) as {
      reloaded: boolean;
      generation: number;
      problems: { path: string; line: number }[];
    };
    assert.equal(body.reloaded, false);
    assert.equal(body.generation, 2);
    assert.ok(body.problems.length >= 2, JSON.stringify(body.problems));
    assert.ok(body.problems.some((p) => p.path.endsWith('.version') && typeof p.line === 'number'));

    // Still generation 2: bob is in Madrid.
    assert.equal(await bobsOwa(s), 'europe.mail.o365info.com');
    assert.match(await metricsText(s), /coexist_reloads_total\{[^}]*result="refused"[^}]*\} 2/);

    // What only a restart can change: this server gone from the estate.
    await writeFile(s.estate, good.replaceAll('CAS2013-NY', 'CAS2016-NY'));
    const gone = await admin(s, '/reload');
    assert.equal(gone.statusCode, 409);
    const why = (await gone.body.json()) as { problems: { message: string }[] };
    assert.match(why.problems[0]?.message ?? '', /CAS2013-NY is no longer a server of the estate/);
    // ... and the edge's limits, which the listeners were made with.
    await writeFile(s.estate, `${good}\nlimits:\n  maxConnections: 5\n`);
    const limits = await admin(s, '/reload');
    assert.equal(limits.statusCode, 409);
    const limitsWhy = (await limits.body.json()) as { problems: { message: string }[] };
    assert.match(limitsWhy.problems[0]?.message ?? '', /limits\.maxConnections changed/);
    await writeFile(s.estate, good);
    // A good estate again: swapped in (generation 3), the refused ones left no trace.
    const ok = await admin(s, '/reload');
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(await ok.body.json(), { reloaded: true, generation: 3 });
  });
});

describe('coexist serve: drain (SIGTERM, POST /drain)', () => {
  let lab: Lab;
  let s: Served;

  before(async () => {
    lab = await labForServe();
    // A long grace, ended by POST /drain once the test has seen what happens during it.
    s = await serve(lab, ['--drain-grace', '600', '--drain-timeout', '900']);
  });
  after(async () => {
    await stopServed(s);
    await lab?.close();
  });

  test('pages 503 at once, a held Ping answered early, a request in flight completes, Connection: close, exit 0', async () => {
    const page = await request('https://mail.o365info.com/Microsoft-Server-ActiveSync/healthcheck.htm', {
      dispatcher: s.agent,
    });
    await page.body.dump();
    assert.equal(page.statusCode, 200);

    const held = ping(s, 'DRAIN1');
    await until('the Ping held at MBX2013-NY', () => lab.heldPings() === 1);
    // An ordinary request in flight: an EWS POST whose body is still coming.
    const body = new PassThrough();
    body.write(
      '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">',
    );
    const ews = request('https://mail.o365info.com/EWS/Exchange.asmx', {
      dispatcher: s.agent,
      method: 'POST',
      headers: { authorization: basic('alice@o365info.com'), 'content-type': 'text/xml; charset=utf-8' },
      body,
    });
    await until('the EWS request in flight', async () =>
      /coexist_inflight_requests\{[^}]*protocol="ews"[^}]*\} 1/.test(await metricsText(s)),
    );

    s.child.kill('SIGTERM');
    await until('the draining line', () => s.lines('draining').length === 1);

    // The held Ping: answered at once by the front end, 200, WBXML Ping Status 1, and the connection ends.
    const answered = await held;
    assert.equal(answered.statusCode, 200);
    assert.equal(answered.headers['content-type'], 'application/vnd.ms-sync.wbxml');
    assert.equal(answered.headers['connection'], 'close');
    assert.equal(parsePing(decodeWbxml(new Uint8Array(await answered.body.arrayBuffer()))).status, 1);
    // Its request upstream was cancelled: the lab holds nothing.
    await until('the upstream Ping cancelled', () => lab.heldPings() === 0);

    // The pages and /readyz: 503 at once; the listener still accepts (the grace), each answer closes.
    for (const vdir of ['Microsoft-Server-ActiveSync', 'owa', 'EWS']) {
      const p = await request(`https://mail.o365info.com/${vdir}/healthcheck.htm`, { dispatcher: s.agent });
      await p.body.dump();
      assert.equal(p.statusCode, 503, vdir);
      assert.equal(p.headers['connection'], 'close');
    }
    const ready = await request(`http://127.0.0.1:${s.adminPort}/readyz`);
    assert.equal(ready.statusCode, 503);
    assert.equal(((await ready.body.json()) as { draining?: boolean }).draining, true);

    // The request in flight completes, answered by its next hop, with Connection: close.
    body.end('<soap:Body/></soap:Envelope>');
    const done = await ews;
    await done.body.dump();
    assert.notEqual(done.statusCode, 502);
    assert.notEqual(done.statusCode, 503);
    assert.equal(done.headers['x-coexist-path'], 'CAS2013-NY, MBX2013-NY');
    assert.equal(done.headers['connection'], 'close');

    // The grace ended by the operator: nothing is left, so the process exits 0 at once.
    const end = await admin(s, '/drain');
    assert.equal(end.statusCode, 202);
    assert.deepEqual(await end.body.json(), { draining: true, graceEnded: true });
    assert.equal(await s.exit, 0);
    const [drained] = s.lines('drained');
    assert.equal(drained?.['pingsAnswered'], 1);
    assert.equal(drained?.['cut'], 0);
    const pingLine = s.lines('access').find((l) => l['protocol'] === 'activesync' && l['status'] === 200);
    assert.equal(pingLine?.['outcome'], 'answered');
  });
});

describe('coexist serve: a second SIGTERM during a drain stops at once', () => {
  let lab: Lab;
  let s: Served;

  before(async () => {
    lab = await labForServe();
    s = await serve(lab, ['--drain-grace', '600', '--drain-timeout', '900']);
  });
  after(async () => {
    await stopServed(s);
    await lab?.close();
  });

  test('a Ping that comes during the grace is held; the second signal cuts it at once and the process exits 0', async () => {
    s.child.kill('SIGTERM');
    await until('the draining line', () => s.lines('draining').length === 1);
    // During the grace a device sent here again is held as usual (answered at once, it would only come back).
    const held = ping(s, 'DRAIN2').then(
      (r) => r.statusCode,
      (e: Error) => e,
    );
    await until('the Ping held at MBX2013-NY', () => lab.heldPings() === 1);
    s.child.kill('SIGTERM');
    assert.equal(await s.exit, 0);
    const [drained] = s.lines('drained');
    assert.equal(drained?.['cutShort'], true);
    assert.ok(Number(drained?.['cut']) >= 1, "the held Ping's connection was cut");
    assert.equal(s.lines('drain cut short: what is left is cut now').length, 1);
    // Cut, not answered: its connection closed under it, and its request upstream was cancelled.
    assert.ok((await held) instanceof Error);
    await until('the upstream Ping cancelled', () => lab.heldPings() === 0);
  });
});
