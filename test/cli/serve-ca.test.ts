/**
 * `coexist serve --ca`: the next hops' CA bundle (docs/operations.md "Certificates"). A next hop whose
 * certificate comes from a private CA (an Exchange 2007 CAS simulator, on loopback, with a certificate from
 * a CA Node's bundle does not hold) is reached when `--ca` names that CA, and refused as an untrusted TLS peer
 * (`502`, `CX_UPSTREAM_TLS`) when it does not; `NODE_EXTRA_CA_CERTS` plays no part.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:https';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, buildConnector, request } from 'undici';
import { basic } from '../support/lab-client.ts';
import type { ServeProcess } from '../support/serve-process.ts';
import { demoEstate, startServe } from '../support/serve-process.ts';
import { rootCa, serverCertificate } from '../support/test-pki.ts';

/** The 2007 CAS of the Los Angeles site, which the front end proxies carol's EWS to (docs/flows.md EWS-2). */
const user = 'carol@o365info.com';

describe('coexist serve --ca: a next hop with a certificate from a private CA', () => {
  const hopCa = rootCa('Contoso Legacy Servers CA');
  const frontCa = rootCa('Front End Test CA');
  const front = serverCertificate(frontCa, ['mail.o365info.com']);
  let dir = '';
  let simulator: Server;
  const seen: string[] = [];
  const served: ServeProcess[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-serve-ca-'));
    // An Exchange 2007 CAS simulator: answers an EWS POST, records what reached it.
    const hop = serverCertificate(hopCa, ['localhost']);
    simulator = createServer({ cert: hop.certPem, key: hop.keyPem }, (req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' });
        res.end('<simulated-cas2007-la/>');
      });
    });
    simulator.listen(0, '127.0.0.1');
    await once(simulator, 'listening');
    const port = (simulator.address() as AddressInfo).port;
    // The demo estate with CAS2007-LA at localhost:<the simulator's port>.
    const estate = (await readFile(demoEstate, 'utf8'))
      .replace('fqdn: cas2007-la.o365info.local', 'fqdn: localhost')
      .replaceAll('https://cas2007-la.o365info.local/', `https://localhost:${port}/`);
    assert.ok(estate.includes(`https://localhost:${port}/EWS/Exchange.asmx`));
    for (const [name, content] of [
      ['estate.yaml', estate],
      ['front.crt', front.certPem],
      ['front.key', front.keyPem],
      ['legacy-ca.pem', hopCa.certPem],
    ] as const)
      await writeFile(join(dir, name), content);
  });
  after(async () => {
    for (const s of served) await s.stop();
    simulator?.close();
    simulator?.closeAllConnections();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (...extra: string[]): Promise<ServeProcess> => {
    // The child's environment without NODE_EXTRA_CA_CERTS: --ca alone decides.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS'));
    const s = await startServe(
      [
        '--estate',
        join(dir, 'estate.yaml'),
        '--as',
        'CAS2013-NY',
        '--cert',
        `mail.o365info.com=${join(dir, 'front.crt')},${join(dir, 'front.key')}`,
        ...extra,
      ],
      { env },
    );
    served.push(s);
    return s;
  };

  /** carol's EWS request at the front end at `port`, as an external client. */
  const ews = async (port: number): Promise<{ status: number; body: string }> => {
    const connector = buildConnector({ ca: frontCa.certPem });
    const agent = new Agent({
      connect: (opts, cb) =>
        connector({ ...opts, hostname: '127.0.0.1', port: String(port), servername: opts.hostname }, cb),
    });
    try {
      const r = await request('https://mail.o365info.com/EWS/Exchange.asmx', {
        dispatcher: agent,
        method: 'POST',
        headers: { authorization: basic(user), 'content-type': 'text/xml; charset=utf-8' },
        body: '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>',
      });
      return { status: r.statusCode, body: await r.body.text() };
    } finally {
      await agent.close();
    }
  };

  test('without --ca: the hop is refused as an untrusted TLS peer (502 CX_UPSTREAM_TLS), never reached', async () => {
    const s = await start();
    const before = seen.length;
    const r = await ews(s.port);
    assert.equal(r.status, 502);
    assert.match(r.body, /CX_UPSTREAM_TLS/);
    assert.equal(seen.length, before, 'no request reached the simulator');
    const line = await s.waitForLog((l) => l['msg'] === 'access' && l['protocol'] === 'ews');
    assert.equal(line['code'], 'CX_UPSTREAM_TLS');
    assert.equal(await s.stop(), 0);
  });

  test('with --ca naming the private CA: proxied to the hop, its answer returned', async () => {
    const s = await start('--ca', join(dir, 'legacy-ca.pem'));
    const r = await ews(s.port);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, '<simulated-cas2007-la/>');
    assert.ok(seen.includes('POST /EWS/Exchange.asmx'), seen.join(', '));
    // And the bundle's CA is in the expiry gauge.
    const metrics = await (await request(`http://127.0.0.1:${s.adminPort}/metrics`)).body.text();
    const notAfter = Math.floor(new Date(new X509Certificate(hopCa.certPem).validTo).getTime() / 1000);
    assert.match(
      metrics,
      new RegExp(
        `coexist_certificate_expiry_timestamp_seconds\\{[^}]*use="ca"[^}]*subject="Contoso Legacy Servers CA"[^}]*\\} ${notAfter}`,
      ),
    );
    assert.equal(await s.stop(), 0);
  });
});
