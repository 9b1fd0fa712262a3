/**
 * `coexist serve` as an admin runs it: a separate process with a certificate chosen by SNI, an admin
 * listener with metrics, a structured access log on stdout, and a graceful stop on SIGTERM.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, buildConnector, request } from 'undici';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import { basic } from '../support/lab-client.ts';
import { runCli } from '../support/run-cli.ts';
import { spawnServe } from '../support/serve-process.ts';

const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
const estate = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

describe('coexist serve --as CAS2013-NY', () => {
  const ca = createLabCa();
  let child: ChildProcessWithoutNullStreams;
  let out = '';
  let port = 0;
  let adminPort = 0;
  let agent: Agent;
  let exit: Promise<number | null>;

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'coexist-serve-'));
    const mail = ca.issue(['mail.o365info.com']);
    const auto = ca.issue(['autodiscover.o365info.com']);
    const self = ca.issue(['cas2013-ny.o365info.local'], { serverAuth: false, clientAuth: true });
    for (const [name, pem] of [
      ['mail.crt', mail.certPem],
      ['mail.key', mail.keyPem],
      ['auto.crt', auto.certPem],
      ['auto.key', auto.keyPem],
      ['ca.pem', ca.certPem],
      ['client.crt', self.certPem],
      ['client.key', self.keyPem],
    ] as const)
      await writeFile(join(dir, name), pem);
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        entry,
        'serve',
        '--estate',
        estate,
        '--as',
        'CAS2013-NY',
        '--listen',
        '127.0.0.1:0',
        '--admin',
        '127.0.0.1:0',
        '--workers',
        '1',
        '--cert',
        `mail.o365info.com=${join(dir, 'mail.crt')},${join(dir, 'mail.key')}`,
        '--cert',
        `autodiscover.o365info.com=${join(dir, 'auto.crt')},${join(dir, 'auto.key')}`,
        '--internal-ca',
        join(dir, 'ca.pem'),
        '--client-cert',
        `${join(dir, 'client.crt')},${join(dir, 'client.key')}`,
      ],
      { stdio: 'pipe' },
    );
    exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const end = Date.now() + 20_000;
    while (!/metrics on http:\/\/127\.0\.0\.1:(\d+)/.test(out)) {
      if (Date.now() > end) throw new Error(`serve did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    port = Number(/front listening on https port (\d+)/.exec(out)?.[1]);
    adminPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    const base = buildConnector({ ca: ca.certPem });
    agent = new Agent({
      connect: (opts, cb) =>
        base({ ...opts, hostname: '127.0.0.1', port: String(port), servername: opts.hostname }, cb),
    });
  });
  after(async () => {
    await agent.close();
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  test('answers over TLS with the certificate of the name asked for (SNI)', async () => {
    for (const host of ['mail.o365info.com', 'autodiscover.o365info.com']) {
      const r = await request(`https://${host}/Microsoft-Server-ActiveSync`, {
        dispatcher: agent,
        method: 'OPTIONS',
      });
      await r.body.dump();
      assert.equal(r.statusCode, 401, host);
      assert.equal(r.headers['www-authenticate'], `Basic realm="${host}"`);
      assert.equal(r.headers['x-feserver'], 'CAS2013-NY');
    }
  });

  test('a next hop that does not resolve: ActiveSync gets 503 with Retry-After, EWS 502', async () => {
    const eas = await request(
      'https://mail.o365info.com/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=bob&DeviceId=SERVE1&DeviceType=T',
      {
        dispatcher: agent,
        method: 'POST',
        headers: {
          authorization: basic('bob@o365info.com'),
          'content-type': 'application/vnd.ms-sync.wbxml',
        },
        body: Uint8Array.from([0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01]),
      },
    );
    await eas.body.dump();
    assert.equal(eas.statusCode, 503);
    assert.equal(eas.headers['retry-after'], '30');
    const ews = await request('https://mail.o365info.com/EWS/Exchange.asmx', {
      dispatcher: agent,
      method: 'POST',
      headers: { authorization: basic('bob@o365info.com'), 'content-type': 'text/xml' },
      body: '<x/>',
    });
    assert.equal(ews.statusCode, 502);
    assert.match(await ews.body.text(), /CX_UPSTREAM_DNS/);
  });

  test('--internal-ca: a peer with a server certificate from it is that server; without one, a client', async () => {
    // MBX2013-NY's client certificate, as the estate's CA issues it, and a peer that has none.
    const server = ca.issue(['mbx2013-ny.o365info.local'], { serverAuth: false, clientAuth: true });
    const asServer = buildConnector({ ca: ca.certPem, cert: server.certPem, key: server.keyPem });
    const fromServer = new Agent({
      connect: (opts, cb) =>
        asServer({ ...opts, hostname: '127.0.0.1', port: String(port), servername: opts.hostname }, cb),
    });
    try {
      for (const [dispatcher, id] of [
        [fromServer, 'serve-peer-server'],
        [agent, 'serve-peer-client'],
      ] as const) {
        const r = await request('https://mail.o365info.com/Microsoft-Server-ActiveSync', {
          dispatcher,
          method: 'OPTIONS',
          headers: { 'x-coexist-request-id': id, 'x-forwarded-for': '10.1.2.3' },
        });
        await r.body.dump();
        assert.equal(r.statusCode, 401);
      }
    } finally {
      await fromServer.close();
    }
    const lines = (): Record<string, unknown>[] =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l['msg'] === 'access');
    const end = Date.now() + 10_000;
    while (!lines().some((l) => l['reqId'] === 'serve-peer-server')) {
      assert.ok(Date.now() < end, `no access line for the server's request:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const line = lines().find((l) => l['reqId'] === 'serve-peer-server');
    assert.equal(line?.['peerServer'], 'MBX2013-NY');
    assert.equal(line?.['forwardedClient'], '10.1.2.3');
    // The client's request id and X-Forwarded-For were not believed: no line has its id.
    assert.ok(!lines().some((l) => l['reqId'] === 'serve-peer-client'));
    assert.ok(lines().every((l) => l['reqId'] === 'serve-peer-server' || l['peerServer'] === undefined));
  });

  test('metrics on the admin listener count what happened', async () => {
    const r = await request(`http://127.0.0.1:${adminPort}/metrics`);
    const text = await r.body.text();
    assert.equal(r.statusCode, 200);
    assert.match(
      text,
      /coexist_requests_total\{[^}]*protocol="activesync"[^}]*outcome="upstream_unreachable"[^}]*\} 1/,
    );
    assert.match(text, /coexist_auth_total\{[^}]*result="ok"[^}]*\} [1-9]/);
  });

  test('the access log is JSON lines without credentials; SIGTERM stops it cleanly', async () => {
    child.kill('SIGTERM');
    assert.equal(await exit, 0);
    const access = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['msg'] === 'access');
    assert.ok(access.length >= 4);
    assert.ok(access.every((l) => l['server'] === 'CAS2013-NY' && typeof l['reqId'] === 'string'));
    assert.ok(!out.includes(basic('bob@o365info.com').slice(6)), 'no Basic token');
    assert.ok(!out.includes('Coexist-Lab-2026!'), 'no password');
  });
});

describe('coexist serve: bad options', () => {
  test('an unknown server, and TLS neither configured nor waived, are usage errors (exit 2)', async () => {
    const unknown = await runCli(['serve', '--estate', estate, '--as', 'NOPE-1']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--as NOPE-1: no such server/);
    const noTls = await runCli([
      'serve',
      '--estate',
      estate,
      '--as',
      'CAS2013-NY',
      '--listen',
      '127.0.0.1:0',
    ]);
    assert.equal(noTls.code, 2);
    assert.match(noTls.stderr, /--cert/);
  });
});

describe('coexist serve: bad internal CA and client certificate files', () => {
  const ca = createLabCa();
  const other = createLabCa({ commonName: 'another CA' });
  let dir = '';
  const file = (name: string): string => join(dir, name);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-serve-pki-'));
    const good = ca.issue(['cas2013-ny.o365info.local'], { serverAuth: false, clientAuth: true });
    const files: [string, string][] = [
      ['ca.pem', ca.certPem],
      ['leaf-as-ca.pem', ca.issue(['mail.o365info.com']).certPem],
      ['junk.pem', 'not a certificate'],
      ['client.crt', good.certPem],
      ['client.key', good.keyPem],
      ['no-client-auth.crt', ca.issue(['cas2013-ny.o365info.local']).certPem],
      [
        'other-server.crt',
        ca.issue(['mbx2013-ny.o365info.local'], { serverAuth: false, clientAuth: true }).certPem,
      ],
      [
        'other-ca.crt',
        other.issue(['cas2013-ny.o365info.local'], { serverAuth: false, clientAuth: true }).certPem,
      ],
      ['other-ca.key', other.issue(['x.example']).keyPem],
    ];
    for (const [name, text] of files) await writeFile(file(name), text);
  });

  const serve = (...extra: string[]) =>
    runCli([
      'serve',
      '--estate',
      estate,
      '--as',
      'CAS2013-NY',
      '--listen',
      '127.0.0.1:0',
      '--allow-http',
      ...extra,
    ]);

  const cases: readonly [string, () => string[], RegExp][] = [
    ['a missing CA file', () => ['--internal-ca', file('none.pem')], /--internal-ca .*none\.pem: ENOENT/],
    [
      'a CA file without a certificate',
      () => ['--internal-ca', file('junk.pem')],
      /junk\.pem: no PEM certificate/,
    ],
    [
      'a leaf certificate as the CA',
      () => ['--internal-ca', file('leaf-as-ca.pem')],
      /leaf-as-ca\.pem: certificate 1 .* is not a CA certificate/,
    ],
    [
      'a client certificate without the CA',
      () => ['--client-cert', `${file('client.crt')},${file('client.key')}`],
      /--client-cert needs --internal-ca/,
    ],
    [
      'a client certificate without clientAuth',
      () => [
        '--internal-ca',
        file('ca.pem'),
        '--client-cert',
        `${file('no-client-auth.crt')},${file('client.key')}`,
      ],
      /no-client-auth\.crt: the certificate has no clientAuth extended key usage/,
    ],
    [
      "a client certificate naming another server's FQDN",
      () => [
        '--internal-ca',
        file('ca.pem'),
        '--client-cert',
        `${file('other-server.crt')},${file('client.key')}`,
      ],
      /other-server\.crt: the certificate does not name this server's FQDN cas2013-ny\.o365info\.local/,
    ],
    [
      'a client certificate from another CA',
      () => [
        '--internal-ca',
        file('ca.pem'),
        '--client-cert',
        `${file('other-ca.crt')},${file('other-ca.key')}`,
      ],
      /other-ca\.crt: the certificate is not issued by the --internal-ca/,
    ],
    [
      'a key that is not the certificate’s',
      () => [
        '--internal-ca',
        file('ca.pem'),
        '--client-cert',
        `${file('client.crt')},${file('other-ca.key')}`,
      ],
      /other-ca\.key: the key does not belong to the certificate/,
    ],
    [
      'a key file that is no key',
      () => ['--internal-ca', file('ca.pem'), '--client-cert', `${file('client.crt')},${file('junk.pem')}`],
      /junk\.pem: not a PEM private key/,
    ],
  ];
  for (const [title, args, message] of cases) {
    test(`${title}: a usage error naming the file (exit 2)`, async () => {
      const r = await serve(...args());
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    });
  }

  test('a trusted proxy that is not an address: a usage error', async () => {
    const r = await serve('--trusted-proxy', 'lb.example');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /lb\.example: expected an IP address/);
  });
});

describe('coexist serve: a step that fails after the listeners opened', () => {
  // A process that went on serving would never exit: the test's timeout is that failure, far beyond the few
  // seconds a start takes on a loaded machine.
  test(
    'its admin address taken: the process says why and exits 1, it does not go on serving half set up',
    { timeout: 120_000 },
    async () => {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const address = taken.address();
      assert.ok(address !== null && typeof address === 'object');
      try {
        for (const workers of ['1', '2']) {
          const child = spawnServe([
            '--estate',
            estate,
            '--as',
            'CAS2013-NY',
            '--allow-http',
            '--listen',
            '127.0.0.1:0',
            '--admin',
            `127.0.0.1:${address.port}`,
            '--workers',
            workers,
          ]);
          let err = '';
          child.stderr.on('data', (d: Buffer) => (err += d.toString()));
          child.stdout.resume();
          const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
          assert.equal(code, 1, `--workers ${workers}: ${err}`);
          assert.match(err, /EADDRINUSE|address already in use/i, `--workers ${workers}`);
        }
      } finally {
        await new Promise((resolve) => taken.close(resolve));
      }
    },
  );
});
