/**
 * `coexist serve --cert` with the certificates an Exchange administrator has (docs/operations.md
 * "Certificates"): PFX files as `Export-ExchangeCertificate` writes them (the legacy RC2-40/3DES one that
 * Node's OpenSSL 3 refuses, and an AES-256 one), protected by a password in a file, and a PEM chain; served by
 * a real `coexist serve` process and seen by a TLS client that trusts only the root, so the intermediate must
 * come from the server. The expiry gauge on /metrics, the start-up warnings, and every bad file refused with
 * its name and what is wrong (exit 2, as other usage errors). Also `coexist --version` and `serve` without
 * `--estate`.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { connect, createSecureContext } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import type { Issued } from '../support/test-pki.ts';
import { exchangePfx, intermediateCa, rootCa, serverCertificate } from '../support/test-pki.ts';
import { runCli } from '../support/run-cli.ts';
import type { ServeProcess } from '../support/serve-process.ts';
import { demoEstate, startServe } from '../support/serve-process.ts';

const dayMs = 24 * 60 * 60 * 1000;
/** A password as an administrator types it into Export-ExchangeCertificate: spaces and a non-ASCII letter. */
const password = 'Exchange Export 2026 contraseña!';

/** What a TLS client that trusts only `root` sees at `port` asking for `servername`. */
async function handshake(
  port: number,
  servername: string,
  root: string,
): Promise<{ authorized: boolean; error?: string; chain: PeerCertificate[] }> {
  const socket = connect({ host: '127.0.0.1', port, servername, ca: root, rejectUnauthorized: false });
  try {
    await once(socket, 'secureConnect');
    const chain: PeerCertificate[] = [];
    let c = socket.getPeerCertificate(true);
    while (c && Object.keys(c).length > 0 && !chain.some((x) => x.fingerprint256 === c.fingerprint256)) {
      chain.push(c);
      c = c.issuerCertificate;
    }
    return {
      authorized: socket.authorized,
      ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}),
      chain,
    };
  } finally {
    socket.destroy();
  }
}

const fingerprint = (i: Issued): string => new X509Certificate(i.certPem).fingerprint256;

describe('coexist serve --cert: Exchange PFX exports and a PEM chain, served to a real TLS client', () => {
  const root = rootCa('Contoso Root CA');
  const issuing = intermediateCa(root, 'Contoso Issuing CA');
  const mail = serverCertificate(issuing, ['mail.o365info.com']);
  const auto = serverCertificate(issuing, ['autodiscover.o365info.com']);
  /** Expires in 10 days: warned about at start. */
  const fqdn = serverCertificate(issuing, ['cas2013-ny.o365info.local'], {
    notAfter: new Date(Date.now() + 10 * dayMs),
  });
  /** An expired CA in the --ca bundle: an error line, and kept (it verifies nothing). */
  const oldCa = rootCa('Contoso Old Root', {
    notBefore: new Date(Date.now() - 400 * dayMs),
    notAfter: new Date(Date.now() - 5 * dayMs),
  });
  let dir = '';
  let legacyPfx: Buffer;
  let serve: ServeProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-certs-'));
    legacyPfx = exchangePfx(mail.key, [mail.cert, issuing.cert, root.cert], password, 'legacy');
    const files: [string, string | Buffer][] = [
      ['mail.pfx', legacyPfx],
      ['auto.pfx', exchangePfx(auto.key, [auto.cert, issuing.cert, root.cert], password, 'aes256')],
      // As Notepad or `echo` leave it: a trailing newline, which is not part of the password.
      ['password.txt', `${password}\n`],
      ['fqdn-chain.pem', fqdn.certPem + issuing.certPem],
      ['fqdn.key', fqdn.keyPem],
      ['bundle.pem', root.certPem + oldCa.certPem],
    ];
    for (const [name, content] of files) await writeFile(join(dir, name), content);
    serve = await startServe([
      '--estate',
      demoEstate,
      '--as',
      'CAS2013-NY',
      '--cert',
      `mail.o365info.com=${join(dir, 'mail.pfx')},${join(dir, 'password.txt')}`,
      '--cert',
      `autodiscover.o365info.com=${join(dir, 'auto.pfx')},${join(dir, 'password.txt')}`,
      '--cert',
      `cas2013-ny.o365info.local=${join(dir, 'fqdn-chain.pem')},${join(dir, 'fqdn.key')}`,
      '--ca',
      join(dir, 'bundle.pem'),
    ]);
  });
  after(async () => {
    assert.equal(await serve?.stop(), 0);
    await rm(dir, { recursive: true, force: true });
  });

  test("the legacy PFX is one Node's own OpenSSL 3 refuses (RC2-40 needs its legacy provider)", () => {
    assert.throws(() => createSecureContext({ pfx: legacyPfx, passphrase: password }), /Unsupported PKCS12/i);
  });

  for (const [title, host, leaf] of [
    ['the legacy (RC2-40, 3DES, SHA-1 MAC) PFX', 'mail.o365info.com', mail],
    ['the AES-256 PFX', 'autodiscover.o365info.com', auto],
    ['the PEM chain', 'cas2013-ny.o365info.local', fqdn],
  ] as const) {
    test(`${title}: served for ${host} with its intermediate, verified against the root alone`, async () => {
      const seen = await handshake(serve.port, host, root.certPem);
      assert.equal(seen.error, undefined);
      assert.equal(seen.authorized, true);
      assert.equal(seen.chain[0]?.fingerprint256, fingerprint(leaf));
      assert.equal(seen.chain[1]?.fingerprint256, fingerprint(issuing));
      assert.equal(seen.chain[1]?.subject.CN, 'Contoso Issuing CA');
    });
  }

  test('an answer over it: the front end serves HTTP on the PFX certificate', async () => {
    const socket = connect({
      host: '127.0.0.1',
      port: serve.port,
      servername: 'mail.o365info.com',
      ca: root.certPem,
    });
    await once(socket, 'secureConnect');
    socket.end('GET /owa/healthcheck.htm HTTP/1.1\r\nHost: mail.o365info.com\r\nConnection: close\r\n\r\n');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    await once(socket, 'close');
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /200 OK<br\/>cas2013-ny\.o365info\.local/);
  });

  test('/metrics: the expiry of every certificate in use, by use, subject and hosts', async () => {
    const r = await request(`http://127.0.0.1:${serve.adminPort}/metrics`);
    const text = await r.body.text();
    const at = (i: Issued): number => Math.floor(i.cert.validity.notAfter.getTime() / 1000);
    const series = (use: string, subject: string, hosts: string): RegExp =>
      new RegExp(
        `^coexist_certificate_expiry_timestamp_seconds\\{(?=[^}]*use="${use}")(?=[^}]*subject="${subject}")(?=[^}]*hosts="${hosts.replace(/\./g, '\\.')}")[^}]*\\} (\\d+)$`,
        'm',
      );
    for (const [use, subject, hosts, cert] of [
      ['listener', 'mail.o365info.com', 'mail.o365info.com', mail],
      ['listener', 'autodiscover.o365info.com', 'autodiscover.o365info.com', auto],
      ['listener', 'cas2013-ny.o365info.local', 'cas2013-ny.o365info.local', fqdn],
      ['chain', 'Contoso Issuing CA', 'mail.o365info.com', issuing],
      ['ca', 'Contoso Root CA', '', root],
      ['ca', 'Contoso Old Root', '', oldCa],
    ] as const) {
      const m = series(use, subject, hosts).exec(text);
      assert.ok(m, `no ${use} series for ${subject}:\n${text}`);
      assert.equal(Number(m[1]), at(cert));
    }
  });

  test('GET /status lists them, soonest first; coexist status marks the expiring (!) and the expired (!!)', async () => {
    const doc = (await (await request(`http://127.0.0.1:${serve.adminPort}/status`)).body.json()) as {
      certificates: { use: string; subject: string; state: string; daysLeft: number }[];
    };
    assert.deepEqual(
      doc.certificates.slice(0, 2).map((c) => [c.use, c.subject, c.state, c.daysLeft]),
      [
        ['ca', 'Contoso Old Root', 'expired', -6],
        ['listener', 'cas2013-ny.o365info.local', 'expiring', 9],
      ],
    );
    assert.ok(doc.certificates.slice(2).every((c) => c.state === 'ok'));
    // Three listeners, the intermediate after each, the two CAs of the bundle.
    assert.equal(doc.certificates.length, 8);
    const r = await runCli(['status', '--admin', `127.0.0.1:${serve.adminPort}`]);
    assert.match(r.stdout, /^Certificates: 1 expired \(!!\), 1 expiring within 30 days \(!\)$/m);
    assert.match(r.stdout, /^!!\s+ca\s+Contoso Old Root\s+-\s+\S+\s+-6\s+\S+bundle\.pem$/m);
    assert.match(
      r.stdout,
      /^!\s+listener\s+cas2013-ny\.o365info\.local\s+cas2013-ny\.o365info\.local\s+\S+\s+9\s/m,
    );
    assert.match(r.stdout, /^\s+listener\s+mail\.o365info\.com\s+mail\.o365info\.com\s/m);
  });

  test('at start: a warning for the certificate expiring within 30 days, an error line for the expired CA', () => {
    const lines = serve.logLines();
    const warn = lines.filter((l) => l['msg'] === 'certificate: expires within 30 days');
    assert.deepEqual(
      warn.map((l) => [l['level'], l['use'], l['subject'], l['daysLeft']]),
      [[40, 'listener', 'cas2013-ny.o365info.local', 9]],
    );
    const expired = lines.filter((l) => l['msg'] === 'certificate: expired');
    assert.deepEqual(
      expired.map((l) => [l['level'], l['use'], l['subject']]),
      [[50, 'ca', 'Contoso Old Root']],
    );
  });
});

describe('coexist serve --cert: bad files are usage errors naming the file and what is wrong', () => {
  const root = rootCa('Contoso Root CA');
  const good = serverCertificate(root, ['mail.o365info.com']);
  const other = serverCertificate(root, ['mail.o365info.com']);
  const expired = serverCertificate(root, ['mail.o365info.com'], {
    notBefore: new Date(Date.now() - 400 * dayMs),
    notAfter: new Date(Date.now() - dayMs),
  });
  const clientOnly = serverCertificate(root, ['mail.o365info.com'], { serverAuth: false, clientAuth: true });
  let dir = '';
  const file = (name: string): string => join(dir, name);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-certs-bad-'));
    const pfx = exchangePfx(good.key, [good.cert, root.cert], password, 'legacy');
    const files: [string, string | Buffer][] = [
      ['good.pfx', pfx],
      ['password.txt', `${password}\n`],
      ['wrong.txt', 'Exchange Export 2025 contraseña!\n'],
      // The first 600 bytes of a good file: a copy cut short.
      ['cut.pfx', pfx.subarray(0, 600)],
      ['mismatched.pfx', exchangePfx(other.key, [good.cert, root.cert], password, 'legacy')],
      ['expired.pfx', exchangePfx(expired.key, [expired.cert, root.cert], password, 'aes256')],
      ['client-only.pfx', exchangePfx(clientOnly.key, [clientOnly.cert], password, 'aes256')],
      ['good.pem', good.certPem],
      ['good.key', good.keyPem],
      ['other.key', other.keyPem],
      ['root-first.pem', root.certPem + good.certPem],
      ['junk.pem', 'not a certificate\n'],
    ];
    for (const [name, content] of files) await writeFile(file(name), content);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const serve = (cert: string, ...extra: string[]) =>
    runCli([
      'serve',
      '--estate',
      demoEstate,
      '--as',
      'CAS2013-NY',
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--cert',
      cert,
      ...extra,
    ]);

  const cases: readonly [string, () => string[], RegExp][] = [
    [
      'a wrong password',
      () => [`mail.o365info.com=${file('good.pfx')},${file('wrong.txt')}`],
      /good\.pfx: wrong password in .*wrong\.txt/,
    ],
    [
      'a PFX without its password file',
      () => [`mail.o365info.com=${file('good.pfx')}`],
      /good\.pfx: the PKCS#12 file is protected by a password: give hosts=.*,password\.txt/,
    ],
    [
      'a wrong --cert-password-file',
      () => [`mail.o365info.com=${file('good.pfx')}`, '--cert-password-file', file('wrong.txt')],
      /good\.pfx: wrong password in .*wrong\.txt/,
    ],
    [
      'a missing password file',
      () => [`mail.o365info.com=${file('good.pfx')},${file('none.txt')}`],
      /--cert .*none\.txt: ENOENT/,
    ],
    [
      'a PFX cut short',
      () => [`mail.o365info.com=${file('cut.pfx')},${file('password.txt')}`],
      /cut\.pfx: neither PEM nor a readable PKCS#12 \(PFX\) file/,
    ],
    [
      "a PFX whose key is another certificate's",
      () => [`mail.o365info.com=${file('mismatched.pfx')},${file('password.txt')}`],
      /mismatched\.pfx: the private key in it belongs to none of its certificates/,
    ],
    [
      'an expired certificate',
      () => [`mail.o365info.com=${file('expired.pfx')},${file('password.txt')}`],
      /expired\.pfx: the certificate expired on /,
    ],
    [
      'a certificate for other names',
      () => [`mail.o365info.com,autodiscover.o365info.com=${file('good.pfx')},${file('password.txt')}`],
      /good\.pfx: the certificate does not cover autodiscover\.o365info\.com \(it names: DNS:mail\.o365info\.com\)/,
    ],
    [
      'a client certificate',
      () => [`mail.o365info.com=${file('client-only.pfx')},${file('password.txt')}`],
      /client-only\.pfx: the certificate has no serverAuth extended key usage/,
    ],
    [
      "a PEM key that is not the certificate's",
      () => [`mail.o365info.com=${file('good.pem')},${file('other.key')}`],
      /other\.key: the private key does not belong to the certificate in .*good\.pem/,
    ],
    [
      'a PEM chain with the root first',
      () => [`mail.o365info.com=${file('root-first.pem')},${file('good.key')}`],
      /root-first\.pem: the private key belongs to certificate 2, not the first/,
    ],
    [
      'a PEM certificate without its key',
      () => [`mail.o365info.com=${file('good.pem')}`],
      /good\.pem: no private key in it: give hosts=cert\.pem,key\.pem/,
    ],
    [
      'a key file with no key',
      () => [`mail.o365info.com=${file('good.pem')},${file('junk.pem')}`],
      /junk\.pem: no PEM private key/,
    ],
    [
      'a --ca bundle with no certificate',
      () => [`mail.o365info.com=${file('good.pem')},${file('good.key')}`, '--ca', file('junk.pem')],
      /--ca .*junk\.pem: no PEM certificate in it/,
    ],
    [
      'a missing --ca bundle',
      () => [`mail.o365info.com=${file('good.pem')},${file('good.key')}`, '--ca', file('none.pem')],
      /--ca .*none\.pem: ENOENT/,
    ],
  ];
  for (const [title, args, message] of cases) {
    test(`${title}: exit 2 and the message`, async () => {
      const [cert, ...extra] = args();
      const r = await serve(cert as string, ...extra);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.split('\n').filter((l) => l !== '').length, 1, r.stderr);
    });
  }
});

describe('coexist --version and serve without --estate', () => {
  test('--version prints the version of package.json', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const r = await runCli(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${pkg.version}\n`);
  });

  test('serve without --estate: a usage error that says what to give (exit 2), no demo estate', async () => {
    const r = await runCli(['serve', '--as', 'CAS2013-NY', '--listen', '127.0.0.1:0', '--allow-http']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /give --estate FILE: the estate file \(YAML\) this server is part of/);
    assert.equal(r.stdout, '');
  });
});

describe('coexist serve: the certificates in use follow a reload (SIGHUP)', () => {
  const root = rootCa('Contoso Root CA');
  const first = serverCertificate(root, ['mail.o365info.com']);
  /** The renewal that went wrong: expires in 5 days. */
  const renewed = serverCertificate(root, ['mail.o365info.com'], {
    notAfter: new Date(Date.now() + 5 * dayMs),
  });
  const expired = serverCertificate(root, ['mail.o365info.com'], {
    notBefore: new Date(Date.now() - 400 * dayMs),
    notAfter: new Date(Date.now() - dayMs),
  });
  let dir = '';
  let serve: ServeProcess;
  const gauge = async (): Promise<number> => {
    const text = await (await request(`http://127.0.0.1:${serve.adminPort}/metrics`)).body.text();
    const m = /^coexist_certificate_expiry_timestamp_seconds\{[^}]*use="listener"[^}]*\} (\d+)$/m.exec(text);
    assert.ok(m, text);
    return Number(m[1]);
  };
  const at = (i: Issued): number => Math.floor(i.cert.validity.notAfter.getTime() / 1000);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-certs-reload-'));
    await writeFile(join(dir, 'mail.crt'), first.certPem);
    await writeFile(join(dir, 'mail.key'), first.keyPem);
    serve = await startServe([
      '--estate',
      demoEstate,
      '--as',
      'CAS2013-NY',
      '--cert',
      `mail.o365info.com=${join(dir, 'mail.crt')},${join(dir, 'mail.key')}`,
    ]);
  });
  after(async () => {
    assert.equal(await serve?.stop(), 0);
    await rm(dir, { recursive: true, force: true });
  });

  test('a renewed certificate: the gauge and /status show it, and it is warned about', async () => {
    assert.equal(await gauge(), at(first));
    await writeFile(join(dir, 'mail.crt'), renewed.certPem);
    await writeFile(join(dir, 'mail.key'), renewed.keyPem);
    process.kill(serve.pid, 'SIGHUP');
    await serve.waitForLog((l) => l['msg'] === 'estate reloaded');
    assert.equal(await gauge(), at(renewed));
    const warn = await serve.waitForLog((l) => l['msg'] === 'certificate: expires within 30 days');
    assert.equal(warn['daysLeft'], 4);
    const doc = (await (await request(`http://127.0.0.1:${serve.adminPort}/status`)).body.json()) as {
      certificates: { notAfter: string }[];
    };
    assert.deepEqual(
      doc.certificates.map((c) => c.notAfter),
      [new Date(at(renewed) * 1000).toISOString()],
    );
  });

  test('an expired one: the reload is refused, naming the file, and the gauge keeps the one in use', async () => {
    await writeFile(join(dir, 'mail.crt'), expired.certPem);
    await writeFile(join(dir, 'mail.key'), expired.keyPem);
    process.kill(serve.pid, 'SIGHUP');
    const refused = await serve.waitForLog((l) => String(l['msg']).startsWith('reload refused'));
    assert.match(JSON.stringify(refused), /mail\.crt: the certificate expired on /);
    assert.equal(await gauge(), at(renewed));
  });
});
