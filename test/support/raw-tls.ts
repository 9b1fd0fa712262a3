/**
 * Raw TLS to the lab, for attack tests that must control every byte (duplicate headers, a Host the TLS
 * server name does not name, several requests on one connection): connect from the external client
 * address to where the lab's DNS puts a host name, with the SNI the test chooses.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connect } from 'node:tls';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses } from '../../src/lab/index.ts';

/** A TLS connection to the server `host` resolves to; `servername` is the SNI sent (default `host`). */
export async function openTls(lab: Lab, host: string, servername = host): Promise<TLSSocket> {
  const to = lab.resolve(host, 443);
  assert.ok(to, `the lab resolves ${host}`);
  const tcp = netConnect({ host: to.address, port: to.port, localAddress: labAddresses.externalClient });
  // The chain is checked (the lab CA), the name is not: an attacker sends whatever SNI it likes and takes
  // whichever certificate comes back.
  const socket = connect({
    socket: tcp,
    servername,
    ca: lab.ca.certPem,
    checkServerIdentity: () => undefined,
  });
  await once(socket, 'secureConnect');
  return socket;
}

/** Write `bytes` and read everything the server sends until the connection closes. */
export async function exchange(socket: TLSSocket, bytes: string): Promise<string> {
  let answer = '';
  socket.setEncoding('latin1');
  socket.on('data', (s: string) => (answer += s));
  socket.on('error', () => undefined); // a reset after the answer is the server's right
  const closed = once(socket, 'close');
  socket.write(bytes);
  await closed;
  return answer;
}

/** Send raw requests on one new connection to `host` (the last should say `Connection: close`). */
export async function rawRequest(lab: Lab, host: string, bytes: string, servername = host): Promise<string> {
  return exchange(await openTls(lab, host, servername), bytes);
}

/** The status of each response in a raw answer, in order. */
export const statuses = (answer: string): number[] =>
  [...answer.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

/** The `request-id` of each response in a raw answer, in order. */
export const requestIds = (answer: string): string[] =>
  [...answer.matchAll(/\r\nrequest-id: ([^\r]+)\r\n/gi)].map((m) => m[1] as string);

/**
 * Poll `condition` (an observable state of the lab: a log line, a gauge) until it holds, within `ms`;
 * `refresh` reads the state first when reading it is asynchronous. The deadline only bounds a failure.
 */
export async function until(
  condition: () => boolean,
  what: string,
  ms = 10_000,
  refresh?: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    await refresh?.();
    if (condition()) return;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
