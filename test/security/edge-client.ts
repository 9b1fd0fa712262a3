/**
 * What the edge attacks share (slowloris, stalls, floods) besides `loggedLab` (test/support/logged-lab.ts):
 * raw TCP and TLS connections from a chosen loopback source, an ActiveSync FolderSync as the normal request that must
 * still work, and the edge's counters and log lines. Waits are on socket events or on an observable
 * condition with a deadline that only bounds a failure.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connect as tlsConnect } from 'node:tls';
import type { EdgeEvent } from '../../src/dataplane/index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses } from '../../src/lab/index.ts';
import type { LabClient, LineSink } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';

export const host = 'mail.o365info.com';
export const front = 'CAS2013-NY';

/** Flood tests' limits besides the cap: long head and handshake deadlines, so that only the cap refuses. */
export const onlyTheCapLimits = {
  headTimeoutMs: 120_000,
  tlsHandshakeTimeoutMs: 120_000,
  logIntervalMs: 60_000,
} as const;

/** Where the primary namespace's front end listens. */
export function frontDoor(lab: Lab): { address: string; port: number } {
  const to = lab.resolve(host, 443);
  assert.ok(to, 'the lab resolves the primary namespace');
  return to;
}

/** A TCP connection to the front door from `from` (an external client by default), once connected. */
export async function tcp(lab: Lab, from: string = labAddresses.externalClient): Promise<Socket> {
  const to = frontDoor(lab);
  const socket = netConnect({ host: to.address, port: to.port, localAddress: from });
  socket.on('error', () => undefined); // a refusal may come as a reset
  await once(socket, 'connect');
  return socket;
}

/** A TLS connection to the front door from `from`, once its handshake is done. */
export async function tls(lab: Lab, from: string = labAddresses.externalClient): Promise<TLSSocket> {
  const raw = await tcp(lab, from);
  const socket = tlsConnect({ socket: raw, servername: host, ca: lab.ca.certPem });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  return socket;
}

/** `count` TLS connections to the front door, spread evenly over `sources`, once every handshake is done. */
export async function tlsFlood(lab: Lab, sources: readonly string[], count: number): Promise<TLSSocket[]> {
  const flood: TLSSocket[] = [];
  const each = Math.ceil(count / sources.length);
  for (const from of sources) {
    const n = Math.min(each, count - flood.length);
    flood.push(...(await Promise.all(Array.from({ length: n }, () => tls(lab, from)))));
  }
  return flood;
}

/** What a socket received until it closed, and how long after `since` it closed. */
export async function untilClosed(
  socket: Socket,
  since: number,
): Promise<{ received: string; afterMs: number }> {
  let received = '';
  socket.on('data', (b: Buffer) => (received += b.toString('latin1')));
  // Not events.once: it rejects on 'error', and a server that cuts a connection mid-write resets it
  // (ECONNRESET on Node 24); the close that follows is what is waited for.
  if (!socket.closed) await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { received, afterMs: performance.now() - since };
}

/** `untilClosed`, failing when the socket is still open after `deadlineMs`. */
export async function closedWithin(
  socket: Socket,
  deadlineMs: number,
): Promise<{ received: string; afterMs: number }> {
  const since = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still open after ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    return await Promise.race([untilClosed(socket, since), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Wait until `condition` holds; `deadlineMs` only bounds a failure. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  deadlineMs = 20_000,
): Promise<void> {
  const end = performance.now() + deadlineMs;
  while (!(await condition())) {
    assert.ok(performance.now() < end, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** How many edge events of `kind` a server counted. */
export function edgeCount(lab: Lab, kind: EdgeEvent, server = front): Promise<number> {
  const metrics = lab.metrics.get(server);
  assert.ok(metrics, `the lab has metrics for ${server}`);
  return metrics.edgeCount(kind);
}

/** The client connections a server holds open now. */
export async function openConnections(lab: Lab, server = front): Promise<number> {
  const text = (await lab.metrics.get(server)?.text()) ?? '';
  const m = /^coexist_client_connections\{[^}]*\} (\d+)$/m.exec(text);
  return Number(m?.[1] ?? NaN);
}

/** The edge's warning lines of `kind`. */
export function edgeLines(sink: LineSink, kind: EdgeEvent): Record<string, unknown>[] {
  return sink.records().filter((l) => l['edge'] === kind);
}

export const easHeaders = {
  'ms-asprotocolversion': '12.1',
  'content-type': 'application/vnd.ms-sync.wbxml',
};
/** A FolderSync with SyncKey 0 (MS-ASCMD 2.2.1.5), WBXML. */
export const folderSync = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01,
]);

/** The normal request that must still work: bob's FolderSync through the front door, 200 on his path. */
export async function assertFolderSyncWorks(client: LabClient): Promise<void> {
  const r = await client.fetch(
    `https://${host}/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=bob&DeviceId=EDGE1&DeviceType=TestDevice`,
    { headers: easHeaders, body: folderSync, user: 'bob@o365info.com' },
  );
  assert.equal(r.status, 200);
  assert.deepEqual(r.path, ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
}

/** Once a flood has let go (the server holds `baseline` connections again), the FolderSync works again. */
export async function assertServedAfterFlood(lab: Lab, baseline: number): Promise<void> {
  await waitFor('the server to see the flood close', async () => (await openConnections(lab)) <= baseline);
  const client = labClient(lab);
  try {
    await assertFolderSyncWorks(client);
  } finally {
    await client.close();
  }
}
