/**
 * What every protocol of the mailbox store simulator shares: whom a request is answered for, the request
 * as the core's parsers read it, reading and draining bodies, and writing answers and refusals.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ProductVersion } from '../../../core/estate/estate.ts';
import type { Protocol } from '../../../core/protocols/protocol.ts';
import type { RequestHead } from '../../../core/protocols/request-head.ts';

/** The mailbox a request is answered for. */
export interface StoreMailbox {
  readonly address: string;
  readonly displayName: string;
}

/** Who answers and for whom: the mailbox server's name and version, the protocol, the mailbox. */
export interface StoreContext {
  /** The mailbox server, e.g. `MBX2007-NY`; it appears in `X-BEServer`, `X-DiagInfo` and the bodies. */
  readonly serverName: string;
  readonly version: ProductVersion;
  readonly protocol: Protocol;
  readonly mailbox: StoreMailbox;
}

/** 1 KiB, in bytes. */
export const KiB = 1024;
/** 1 MiB, in bytes. */
export const MiB = 1024 * KiB;

/** The Content-Type of the XML answers (EWS, OAB). */
export const xmlType = { 'Content-Type': 'text/xml; charset=utf-8' };

/** Thrown when the client went away while its request was being read. */
export class ClientGone extends Error {}

/** The request line and headers as the core's parsers expect them. */
export function requestHead(req: IncomingMessage): RequestHead {
  let target = req.url ?? '/';
  if (!target.startsWith('/')) {
    // Absolute form (RFC 9112 §3.2.2): keep only path and query.
    const slash = target.indexOf('/', target.indexOf('//') + 2);
    target = slash < 0 ? '/' : target.slice(slash);
  }
  const q = target.indexOf('?');
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return {
    method: req.method ?? 'GET',
    host: req.headers.host ?? '',
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? '' : target.slice(q + 1),
    headers,
  };
}

/** The first value of request header `name` (lower case). */
export function firstHeader(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Read the body, keeping at most `max` bytes; undefined when it is larger (the rest is discarded). */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    drain(req, (chunk) => {
      size += chunk.length;
      if (size > max) {
        chunks.length = 0;
        resolve(undefined); // answered now; the remaining bytes are dropped with the connection
      } else chunks.push(chunk);
    }).then((total) => resolve(total > max ? undefined : Buffer.concat(chunks, total)), reject);
  });
}

/** Consume the body without keeping it, passing each chunk to `each`; resolves with the byte count. */
export function drain(req: IncomingMessage, each?: (chunk: Buffer) => void): Promise<number> {
  if (req.readableEnded) return Promise.resolve(0); // already read upstream of the store
  if (req.destroyed) return Promise.reject(new ClientGone());
  return new Promise((resolve, reject) => {
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      each?.(chunk);
    });
    req.once('end', () => resolve(size));
    req.once('error', () => reject(new ClientGone()));
    req.once('close', () => {
      if (!req.complete) reject(new ClientGone());
    });
  });
}

/** Write a whole answer with its Content-Length. */
export function send(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  body?: string | Uint8Array,
): void {
  const bytes = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, 'Content-Length': bytes?.length ?? 0 });
  res.end(bytes);
}

/**
 * An error answer with an empty body, as Exchange sends them; `X-Lab-Reason` (simulator only) says why,
 * so a failing lab test shows the cause. A body too large to read closes the connection.
 */
export async function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  reason: string,
  headers: OutgoingHttpHeaders = {},
): Promise<void> {
  const extra: OutgoingHttpHeaders = status === 413 ? { Connection: 'close' } : {};
  if (status !== 413) await drain(req);
  send(res, status, { ...headers, ...extra, 'X-Lab-Reason': reason.replace(/[^\x20-\x7e]/g, '?') });
}

/** Text made safe for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Text made safe for HTML (the same escapes as XML). */
export const escapeHtml = escapeXml;
