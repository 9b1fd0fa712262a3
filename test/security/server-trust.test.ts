/**
 * Attack: passing for a server of the estate. A server believes another's `X-Forwarded-For`, `X-Coexist-Hops`
 * and request id only when that peer presented a client certificate from the estate's internal CA with the
 * clientAuth usage and a server's FQDN (docs/security.md "How servers authenticate each other"); the address
 * it sends from proves nothing. Each attack comes from the servers' own address (127.0.0.2), claims an
 * internal client (10.1.2.3, inside the estate's internal network), a hop chain and a request id, and must be
 * served as a client: location external, the hop chain starting at the front end, a fresh request id, the
 * access lines saying so. A real server's certificate is believed, and an X-Forwarded-For list it sends with
 * a spoofed left-most entry is read by the one rule (the right-most entry no trusted peer added).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import forge from 'node-forge';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses } from '../../src/lab/index.ts';
import type { LabCertificate } from '../../src/lab/lab-ca.ts';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import type { LineSink } from '../support/lab-client.ts';
import { basic } from '../support/lab-client.ts';
import { accessLines, answerId, assertEasOptionsWorks, loggedLab } from '../support/logged-lab.ts';
import { exchange, statuses } from '../support/raw-tls.ts';

const primary = 'mail.o365info.com';
const front = 'CAS2013-NY';
const mailbox = 'MBX2013-NY';
/** A server FQDN of the demo estate, as an impostor would name it. */
const serverFqdn = 'cas2007-ny.o365info.local';
/** Inside the demo estate's internal network (10.0.0.0/8). */
const internalClient = '10.1.2.3';

/** A certificate signed by its own key, naming `host`, with clientAuth: what anyone can make. */
function selfSigned(host: string): LabCertificate {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: host }]);
  cert.setIssuer([{ name: 'commonName', value: host }]);
  cert.setExtensions([
    { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: host }] },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privateKey };
}

/**
 * An EWS request for alice at the front end, claiming what a server would say about it. Proxied to her
 * mailbox server, whose simulator answers a GET with 405 (EWS takes POST): the request went the whole way.
 */
const ews = (extra: string): string =>
  `GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: ${primary}\r\n${extra}` +
  `Authorization: ${basic('alice@o365info.com')}\r\nConnection: close\r\n\r\n`;

describe('attack: passing for a server of the estate', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab());
  });
  after(() => lab.close());

  /** Send `bytes` to the front end from 127.0.0.2 over TLS, presenting `cert` when given. */
  async function fromServerAddress(bytes: string, cert?: LabCertificate): Promise<string> {
    const to = lab.resolve(primary, 443);
    assert.ok(to, 'the lab resolves the primary namespace');
    const tcp = netConnect({ host: to.address, port: to.port, localAddress: labAddresses.servers });
    const socket = tlsConnect({
      socket: tcp,
      servername: primary,
      ca: lab.ca.certPem,
      ...(cert === undefined ? {} : { cert: cert.certPem, key: cert.keyPem }),
    });
    await once(socket, 'secureConnect');
    return exchange(socket, bytes);
  }

  /** The access lines of the answer's request at the front end and at alice's mailbox server. */
  function linesOf(answer: string): {
    id: string;
    atFront: Record<string, unknown>;
    atMailbox: Record<string, unknown>;
  } {
    const id = answerId(answer);
    const lines = accessLines(sink, id);
    const atFront = lines.find((l) => l['server'] === front);
    const atMailbox = lines.find((l) => l['server'] === mailbox);
    assert.ok(atFront && atMailbox, `both servers logged request ${id}: ${JSON.stringify(lines)}`);
    return { id, atFront, atMailbox };
  }

  const claims =
    `X-Forwarded-For: ${internalClient}\r\nX-Coexist-Hops: ${mailbox}\r\n` +
    'X-Coexist-Request-Id: chosen-by-the-attacker\r\n';

  /** The request was served as a client's: nothing it claimed was believed, and the access lines say so. */
  function assertServedAsClient(answer: string): void {
    assert.equal(statuses(answer)[0], 405, answer.slice(0, 400));
    const { id, atFront, atMailbox } = linesOf(answer);
    assert.notEqual(id, 'chosen-by-the-attacker', 'the request id is the front end’s own');
    assert.equal(atFront['peerServer'], undefined, 'no server proven');
    assert.equal(atFront['clientAddress'], labAddresses.servers);
    assert.equal(atFront['forwardedClient'], undefined, 'X-Forwarded-For not read');
    assert.equal(atFront['location'], 'external', 'the claimed internal address is not believed');
    assert.equal(atFront['via'], undefined, 'the claimed hops are not believed');
    // The front end's own hop to the mailbox server is a real server's: the chain starts at the front end.
    assert.equal(atMailbox['peerServer'], front);
    assert.deepEqual(atMailbox['via'], [front]);
    assert.equal(atMailbox['location'], 'external');
    assert.deepEqual(lab.recorder.path(id), [front, mailbox]);
  }

  test('from 127.0.0.2 without a certificate: a client', async () => {
    assertServedAsClient(await fromServerAddress(ews(claims)));
  });

  test('a self-signed certificate naming a server FQDN with clientAuth: a client', async () => {
    assertServedAsClient(await fromServerAddress(ews(claims), selfSigned(serverFqdn)));
  });

  test('a certificate from another CA of the same name as the lab CA: a client', async () => {
    const impostor = createLabCa({ commonName: `coexist lab CA (${lab.index.estate.name})` });
    const cert = impostor.issue([serverFqdn], { serverAuth: false, clientAuth: true });
    assertServedAsClient(await fromServerAddress(ews(claims), cert));
  });

  test('a lab CA certificate for a server FQDN without clientAuth (a server certificate): a client', async () => {
    assertServedAsClient(await fromServerAddress(ews(claims), lab.ca.issue([serverFqdn])));
  });

  test('a lab CA certificate with clientAuth for a host that is no server (a namespace): a client', async () => {
    const cert = lab.ca.issue([primary, 'evil.o365info.com'], { serverAuth: false, clientAuth: true });
    assertServedAsClient(await fromServerAddress(ews(claims), cert));
  });

  test('a real server’s certificate is believed: its hop chain, request id and client', async () => {
    const cert = lab.ca.issue([`mbx2013-ny.o365info.local`], { serverAuth: false, clientAuth: true });
    const answer = await fromServerAddress(
      ews(
        `X-Forwarded-For: ${internalClient}\r\nX-Coexist-Hops: ${front}\r\nX-Coexist-Request-Id: from-a-server-1\r\n`,
      ),
      cert,
    );
    assert.equal(statuses(answer)[0], 405, answer.slice(0, 400));
    const { id, atFront, atMailbox } = linesOf(answer);
    assert.equal(id, 'from-a-server-1');
    assert.equal(atFront['peerServer'], mailbox);
    assert.deepEqual(atFront['via'], [front]);
    assert.equal(atFront['forwardedClient'], internalClient);
    assert.equal(atFront['location'], 'internal');
    assert.deepEqual(atMailbox['via'], [front, front]);
  });

  test('X-Forwarded-For with a spoofed left-most internal entry: the right-most one no server added', async () => {
    const cert = lab.ca.issue([`mbx2013-ny.o365info.local`], { serverAuth: false, clientAuth: true });
    // Two servers before this one: the right-most entry is the first server's address, added by the second,
    // and is skipped; the next is the client as the first server saw it; the left-most is the client's own.
    const answer = await fromServerAddress(
      ews(
        `X-Forwarded-For: ${internalClient}, 198.51.100.7, 10.0.0.20\r\n` +
          `X-Coexist-Hops: ${front}, ${mailbox}\r\n`,
      ),
      cert,
    );
    assert.equal(statuses(answer)[0], 405, answer.slice(0, 400));
    const { atFront } = linesOf(answer);
    assert.equal(atFront['forwardedClient'], '198.51.100.7');
    assert.equal(atFront['location'], 'external', 'not the left-most entry the client wrote');
  });

  test('the lab’s own hops are proven servers, new and resumed TLS sessions alike', async () => {
    // One request, then several at once: the front end opens more connections to the mailbox server, which
    // resume the first one's TLS session; each must still be proven by its certificate.
    await assertEasOptionsWorks(lab);
    await Promise.all(Array.from({ length: 6 }, () => assertEasOptionsWorks(lab)));
    // Every request the attacks and these made reached a server other than the front end from a server.
    const behind = sink.records().filter((l) => l['msg'] === 'access' && l['server'] !== front);
    assert.ok(
      behind.filter((l) => l['method'] === 'OPTIONS').length >= 7,
      'the OPTIONS reached the mailbox server',
    );
    for (const l of behind) {
      assert.equal(l['peerServer'], front, JSON.stringify(l));
      assert.equal(l['clientAddress'], labAddresses.servers);
    }
  });
});
