/**
 * Attack: claiming another client's address through the PROXY protocol. A layer-4 balancer listed as a
 * PROXY sender (`--proxy-protocol-from`) names each connection's client, and that client then stands for the
 * connection everywhere (limits, lockout, internal or external, logs; docs/deploy.md "The load balancer").
 * So: a header from anyone else is never read (it is junk before TLS, and the connection fails); a
 * connection from the balancer without a valid header is refused, never guessed at; a header sent a byte at
 * a time cannot hold the connection past the handshake deadline; and the per-source cap counts the clients
 * the balancer names, not the balancer.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { connect as tlsConnect } from 'node:tls';
import {
  Command,
  IPv4Address,
  IPv4ProxyAddress,
  TransportProtocol,
  V2ProxyProtocol,
} from 'proxy-protocol-js';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';
import {
  closedWithin,
  easHeaders,
  edgeCount,
  edgeLines,
  host,
  openConnections,
  tcp,
  waitFor,
} from './edge-client.ts';

/** The balancer's address: the only one whose headers are read. */
const balancer = '127.0.0.5';
const perSource = 2;

function header(client: string, port = 40000): Buffer {
  const [a = 0, b = 0, c = 0, d = 0] = client.split('.').map(Number);
  return Buffer.from(
    new V2ProxyProtocol(
      Command.PROXY,
      TransportProtocol.STREAM,
      new IPv4ProxyAddress(
        IPv4Address.createFrom([a, b, c, d]),
        port,
        IPv4Address.createFrom([10, 0, 0, 11]),
        443,
      ),
    ).build(),
  );
}

/** A TLS connection through the "balancer": its PROXY header for `client`, then the client's handshake. */
async function viaBalancer(lab: Lab, client: string): Promise<TLSSocket> {
  const raw = await tcp(lab, balancer);
  raw.write(header(client));
  const socket = tlsConnect({ socket: raw, servername: host, ca: lab.ca.certPem });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  return socket;
}

/** One HTTP/1.1 request on `socket`, its answer's head. */
async function optionsRequest(socket: TLSSocket): Promise<string> {
  let answer = '';
  socket.on('data', (b: Buffer) => (answer += b.toString('latin1')));
  socket.write(
    `OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: ${host}\r\n` +
      Object.entries(easHeaders)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      'Authorization: Basic ' +
      Buffer.from('alice@o365info.com:wrong-on-purpose').toString('base64') +
      '\r\nContent-Length: 0\r\n\r\n',
  );
  await waitFor('an answer', () => answer.includes('\r\n\r\n'));
  return answer;
}

describe('attack: claiming an address through the PROXY protocol', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab({
      proxyProtocolFrom: new Set([balancer]),
      limits: { maxConnectionsPerSource: perSource, tlsHandshakeTimeoutMs: 1_000, logIntervalMs: 0 },
    }));
  });
  after(() => lab.close());

  test('the client the balancer names is the client: in the access line and for the per-source cap', async () => {
    const a = await viaBalancer(lab, '192.0.2.10');
    const answer = await optionsRequest(a);
    assert.match(answer, /^HTTP\/1\.1 401 /);
    const line = sink.records().find((l) => l['msg'] === 'access' && l['clientAddress'] === '192.0.2.10');
    assert.ok(line, 'the access line names the client the header gave');
    assert.ok(
      !sink.records().some((l) => l['msg'] === 'access' && l['clientAddress'] === balancer),
      'never the balancer',
    );

    // The cap is per client: a second connection for 192.0.2.10 fits, a third is closed at accept; another
    // client through the same balancer is admitted (the balancer itself holds all of them).
    const held: Socket[] = [a, await viaBalancer(lab, '192.0.2.10')];
    const before = await edgeCount(lab, 'refused_per_source');
    const raw = await tcp(lab, balancer);
    raw.write(header('192.0.2.10'));
    const end = await closedWithin(raw, 10_000);
    assert.equal(end.received, '', 'closed before any TLS');
    assert.equal((await edgeCount(lab, 'refused_per_source')) - before, 1);
    assert.equal(edgeLines(sink, 'refused_per_source').at(-1)?.['lastSource'], '192.0.2.10');
    held.push(await viaBalancer(lab, '192.0.2.11'));
    for (const s of held) s.destroy();
    await waitFor('the connections closed', async () => (await openConnections(lab)) === 0);
  });

  test('a PROXY header from anyone but the balancer is never read: the connection fails, the claim is nowhere', async () => {
    const raw = await tcp(lab, '127.0.0.6');
    raw.write(header('10.9.9.9'));
    const socket = tlsConnect({ socket: raw, servername: host, ca: lab.ca.certPem });
    let failed = false;
    socket.on('error', () => (failed = true));
    await closedWithin(raw, 10_000);
    assert.ok(failed, 'no TLS session after a header from a client');
    assert.ok(!JSON.stringify(sink.records()).includes('10.9.9.9'), 'the claimed address is in no log line');
  });

  test('from the balancer: no header, a bad header, or one a byte at a time past the deadline: refused', async () => {
    const before = await edgeCount(lab, 'proxy_header_invalid');
    // A TLS handshake straight away (a client that reached the front end's address directly).
    const direct = await tcp(lab, balancer);
    const handshake = tlsConnect({ socket: direct, servername: host, ca: lab.ca.certPem });
    handshake.on('error', () => undefined);
    assert.equal((await closedWithin(direct, 10_000)).received, '');
    // A v1 header with an address that is no address.
    const bad = await tcp(lab, balancer);
    bad.write('PROXY TCP4 999.1.1.1 10.0.0.11 1 443\r\n');
    assert.equal((await closedWithin(bad, 10_000)).received, '');
    // The start of a header, then nothing: cut at the handshake deadline (1 s here).
    const slow = await tcp(lab, balancer);
    slow.write(header('192.0.2.12').subarray(0, 10));
    assert.equal((await closedWithin(slow, 30_000)).received, '');
    await waitFor(
      'three refusals counted',
      async () => (await edgeCount(lab, 'proxy_header_invalid')) - before === 3,
    );
    const lines = edgeLines(sink, 'proxy_header_invalid');
    assert.equal(lines.at(-1)?.['code'], 'CX_HTTP_MALFORMED');
  });
});
