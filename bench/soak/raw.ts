/**
 * One HTTP/1.1 exchange on a TLS connection of its own, from a chosen loopback source, read by hand: what the
 * soak's held Pings and brute-force client send (a connection per request keeps 5 000 devices cheap and
 * lets each one come from its own source address). The answer is read to the end of its Content-Length.
 */
import { connect as netConnect } from 'node:net';
import { connect } from 'node:tls';
import type { LabEndpoint } from './ipc.ts';

export interface RawAnswer {
  readonly status?: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Why there is no status: the socket error's code, `closed` or `timeout`. */
  readonly error?: string;
}

export interface RawRequest {
  readonly host: string;
  readonly method: string;
  readonly target: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Local address to connect from. */
  readonly source: string;
  readonly timeoutMs: number;
}

/** Split a response head into its status and lower-case headers; undefined while incomplete. */
function parseHead(
  buf: Buffer,
): { status: number; headers: Record<string, string>; bodyAt: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0]?.slice(9, 12));
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, bodyAt: end + 4 };
}

/** Send `r` on a new TLS connection and read the answer; never throws. */
export function rawExchange(lab: LabEndpoint, r: RawRequest): Promise<RawAnswer> {
  const port = lab.ports[r.host];
  if (port === undefined) return Promise.resolve({ headers: {}, body: Buffer.alloc(0), error: 'no port' });
  return new Promise((resolve) => {
    // tls.connect takes no local address: the TCP connection is made first, from the source.
    const tcp = netConnect({ host: '127.0.0.1', port, localAddress: r.source });
    tcp.on('error', (e: NodeJS.ErrnoException) =>
      finish({ headers: {}, body: Buffer.alloc(0), error: e.code ?? e.message }),
    );
    const socket = connect({ socket: tcp, servername: r.host, ca: lab.caPem });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (a: RawAnswer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      tcp.destroy();
      resolve(a);
    };
    const timer = setTimeout(
      () => finish({ headers: {}, body: Buffer.alloc(0), error: 'timeout' }),
      r.timeoutMs,
    );
    const body = r.body ?? new Uint8Array(0);
    const head =
      `${r.method} ${r.target} HTTP/1.1\r\nHost: ${r.host}\r\nConnection: close\r\n` +
      Object.entries(r.headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      `Content-Length: ${body.length}\r\n\r\n`;
    socket.once('secureConnect', () => {
      socket.write(head);
      if (body.length > 0) socket.write(body);
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const h = parseHead(buf);
      if (!h) return;
      const length = Number(h.headers['content-length'] ?? 0);
      if (buf.length - h.bodyAt >= length)
        finish({ status: h.status, headers: h.headers, body: buf.subarray(h.bodyAt, h.bodyAt + length) });
    });
    socket.on('error', (e: NodeJS.ErrnoException) =>
      finish({ headers: {}, body: Buffer.alloc(0), error: e.code ?? e.message }),
    );
    socket.on('close', () => {
      const h = parseHead(buf);
      // Closed before the whole answer: a cut, whatever part of the head came.
      finish({ headers: {}, body: Buffer.alloc(0), error: h ? `closed after ${h.status} head` : 'closed' });
    });
  });
}

/** The servers an answer came back through (`X-Coexist-Path`). */
export const pathOf = (headers: Readonly<Record<string, string | string[] | undefined>>): string[] =>
  String(headers['x-coexist-path'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
