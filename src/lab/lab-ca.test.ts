import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { Server } from 'node:https';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import forge from 'node-forge';
import type { LabCertificate } from './lab-ca.ts';
import { createLabCa } from './lab-ca.ts';

const hosts = ['mail.o365info.com', 'cas2007-la.o365info.local'] as const;

/** Issuer unknown to the client: OpenSSL's codes for a leaf whose CA is not in the trust store. */
const unknownCa = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']);

type Outcome =
  | { readonly ok: true; readonly body: string; readonly peer: TLSSocket }
  | { readonly ok: false; readonly code: string };

/** One HTTPS request to 127.0.0.1:`port`, the way a lab client makes it. */
async function fetchOver(port: number, tls: { servername?: string; ca?: string[] }): Promise<Outcome> {
  const req = request({ host: '127.0.0.1', port, path: '/', agent: false, ...tls });
  req.end();
  try {
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    res.setEncoding('utf8');
    let body = '';
    for await (const chunk of res) body += chunk as string;
    return { ok: true, body, peer: res.socket as TLSSocket };
  } catch (err) {
    return { ok: false, code: String((err as { code?: unknown }).code) };
  }
}

async function serve(cert: LabCertificate): Promise<{ server: Server; port: number }> {
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => {
    res.end('hello from the lab');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function extension(cert: forge.pki.Certificate, name: string): Record<string, unknown> {
  const e = cert.getExtension(name) as Record<string, unknown> | undefined;
  assert.ok(e, `${name} present`);
  return e;
}

describe('lab CA certificates', () => {
  const ca = createLabCa({ commonName: 'coexist lab CA (o365info)', validDays: 7 });
  const leaf = ca.issue(hosts);
  const caX509 = new X509Certificate(ca.certPem);
  const leafX509 = new X509Certificate(leaf.certPem);
  const caForge = forge.pki.certificateFromPem(ca.certPem);
  const leafForge = forge.pki.certificateFromPem(leaf.certPem);

  test('the CA is a self-signed CA that may sign certificates', () => {
    assert.equal(caX509.ca, true);
    assert.match(caX509.subject, /CN=coexist lab CA \(o365info\)/);
    assert.equal(caX509.subject, caX509.issuer);
    assert.ok(caX509.verify(caX509.publicKey));
    const bc = extension(caForge, 'basicConstraints');
    assert.equal(bc['cA'], true);
    assert.equal(bc['critical'], true);
    const ku = extension(caForge, 'keyUsage');
    assert.equal(ku['keyCertSign'], true);
    assert.equal(ku['cRLSign'], true);
    assert.equal(ku['critical'], true);
    assert.equal(typeof extension(caForge, 'subjectKeyIdentifier')['subjectKeyIdentifier'], 'string');
    assert.equal(caForge.siginfo.algorithmOid, forge.pki.oids['sha256WithRSAEncryption']);
    assert.equal(caX509.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  });

  test('a leaf names its hosts, is signed by the CA, and is for TLS servers only', () => {
    assert.equal(leafX509.subject, `CN=${hosts[0]}`);
    assert.equal(leafX509.subjectAltName, hosts.map((h) => `DNS:${h}`).join(', '));
    for (const h of hosts) assert.equal(leafX509.checkHost(h), h);
    assert.equal(leafX509.checkHost('owa.o365info.com'), undefined);
    assert.equal(leafX509.ca, false);
    assert.ok(leafX509.checkIssued(caX509));
    assert.ok(leafX509.verify(caX509.publicKey));
    // Node's `keyUsage` is the extended key usage: serverAuth.
    assert.deepEqual(leafX509.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    const ku = extension(leafForge, 'keyUsage');
    assert.equal(ku['digitalSignature'], true);
    assert.equal(ku['keyEncipherment'], true);
    assert.equal(ku['keyCertSign'], false);
    assert.equal(extension(leafForge, 'basicConstraints')['cA'], false);
    assert.equal(leafForge.siginfo.algorithmOid, forge.pki.oids['sha256WithRSAEncryption']);
  });

  test("a leaf's authority key id is the CA's subject key id", () => {
    const aki = forge.asn1.fromDer(extension(leafForge, 'authorityKeyIdentifier')['value'] as string);
    const keyId = (aki.value as forge.asn1.Asn1[])[0];
    assert.equal(keyId?.tagClass, forge.asn1.Class.CONTEXT_SPECIFIC);
    assert.equal(keyId?.type, 0);
    const ski = extension(caForge, 'subjectKeyIdentifier')['subjectKeyIdentifier'];
    assert.equal(forge.util.bytesToHex(keyId?.value as string), ski);
  });

  test('validity starts a little in the past and ends within the CA', () => {
    const now = Date.now();
    assert.ok(Date.parse(leafX509.validFrom) < now);
    assert.ok(Date.parse(caX509.validFrom) < now);
    assert.ok(Date.parse(leafX509.validTo) <= Date.parse(caX509.validTo));
    assert.ok(Date.parse(caX509.validTo) > now + 6 * 24 * 3600 * 1000);
  });

  test('serial numbers are random and positive; leaves of one CA share one key pair', () => {
    const other = ca.issue(['owa.o365info.com']);
    const serial = new X509Certificate(other.certPem).serialNumber;
    assert.notEqual(serial, leafX509.serialNumber);
    assert.notEqual(serial, caX509.serialNumber);
    for (const s of [serial, leafX509.serialNumber, caX509.serialNumber])
      assert.match(s, /^[0-7][0-9A-F]{31}$/);
    assert.equal(other.keyPem, leaf.keyPem);
    assert.match(leaf.keyPem, /^-----BEGIN PRIVATE KEY-----/);
  });

  test('IP addresses become iPAddress names', () => {
    const ip = new X509Certificate(ca.issue(['127.0.0.1', 'localhost']).certPem);
    assert.equal(ip.subjectAltName, 'IP Address:127.0.0.1, DNS:localhost');
    assert.equal(ip.checkIP('127.0.0.1'), '127.0.0.1');
  });

  test("a server's client certificate: clientAuth only, or both usages when asked", () => {
    // Node's `keyUsage` is the extended key usage (RFC 5280 §4.2.1.12): clientAuth, serverAuth.
    const client = new X509Certificate(
      ca.issue(['mbx2013-ny.o365info.local'], { serverAuth: false, clientAuth: true }).certPem,
    );
    assert.deepEqual(client.keyUsage, ['1.3.6.1.5.5.7.3.2']);
    assert.equal(client.subjectAltName, 'DNS:mbx2013-ny.o365info.local');
    assert.ok(client.verify(caX509.publicKey));
    const both = new X509Certificate(ca.issue(['cas2013-ny.o365info.local'], { clientAuth: true }).certPem);
    assert.deepEqual([...(both.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  test('bad input is refused', () => {
    assert.throws(() => ca.issue(['x.example'], { serverAuth: false }), /serverAuth or clientAuth/);
    assert.throws(() => ca.issue([]), /at least one host name/);
    assert.throws(() => ca.issue(['mail.o365info.com', 'not a host']), /not a DNS name/);
    assert.throws(() => createLabCa({ validDays: 0 }), /validDays/);
  });

  test('writeCaFile writes ca.pem into the directory, creating it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'coexist-lab-ca-'));
    try {
      const path = await ca.writeCaFile(join(dir, 'nested'));
      assert.equal(path, join(dir, 'nested', 'ca.pem'));
      assert.equal(await readFile(path, 'utf8'), ca.certPem);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('lab CA over TLS', () => {
  const ca = createLabCa();
  let server: Server;
  let port = 0;
  before(async () => {
    ({ server, port } = await serve(ca.issue(hosts)));
  });
  after(() => closeServer(server));

  for (const host of hosts) {
    test(`a client trusting only the lab CA connects to ${host} and the name is checked`, async () => {
      const r = await fetchOver(port, { servername: host, ca: [ca.certPem] });
      assert.ok(r.ok, r.ok ? '' : r.code);
      assert.equal(r.body, 'hello from the lab');
      assert.equal(r.peer.authorized, true);
      assert.match(
        r.peer.getPeerCertificate().subjectaltname ?? '',
        new RegExp(`DNS:${host.replace(/\./g, '\\.')}`),
      );
    });
  }

  test('a name the certificate does not carry fails the hostname check', async () => {
    const r = await fetchOver(port, { servername: 'owa.o365info.com', ca: [ca.certPem] });
    assert.deepEqual(r, { ok: false, code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  test('a client without the lab CA fails: the issuer is unknown', async () => {
    const r = await fetchOver(port, { servername: hosts[0] });
    assert.equal(r.ok, false);
    assert.ok(!r.ok && unknownCa.has(r.code), r.ok ? '' : r.code);
  });

  test('a client trusting another lab CA fails the same way', async () => {
    const r = await fetchOver(port, { servername: hosts[0], ca: [createLabCa().certPem] });
    assert.equal(r.ok, false);
    assert.ok(!r.ok && unknownCa.has(r.code), r.ok ? '' : r.code);
  });

  test('a certificate for an IP address passes the check without SNI', async () => {
    const ipServer = await serve(ca.issue(['127.0.0.1']));
    try {
      const r = await fetchOver(ipServer.port, { ca: [ca.certPem] });
      assert.ok(r.ok, r.ok ? '' : r.code);
    } finally {
      await closeServer(ipServer.server);
    }
  });
});
