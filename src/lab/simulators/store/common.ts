/**
 * What every protocol of the mailbox store simulator shares: whom a request is answered for, the request
 * as the core's parsers read it, reading and draining bodies, and writing answers and refusals.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { escapeXml } from '../../../codec/xml-escape.ts';
import type { ProductVersion } from '../../../core/estate/estate.ts';
import type { Protocol } from '../../../core/protocols/protocol.ts';
import type { RequestHead } from '../../../core/protocols/request-head.ts';
import type { ConnectingSid, ImpersonationVerdict } from '../../../dataplane/contracts.ts';
import { drain } from '../../../dataplane/index.ts';

// The one bounded body reader (and the drain it is built on) is the data plane's.
export { ClientGone, drain, readBody } from '../../../dataplane/index.ts';

/** The mailbox a request is answered for. */
export interface StoreMailbox {
  readonly address: string;
  readonly displayName: string;
}

/**
 * Who answers and for whom: the mailbox server's name and version, the protocol, the mailbox, who is
 * asking and what the directory grants them on it (the data plane's MailboxResponder contract).
 */
export interface StoreContext {
  /** The mailbox server, e.g. `MBX2007-NY`; it appears in `X-BEServer`, `X-DiagInfo` and the bodies. */
  readonly serverName: string;
  readonly version: ProductVersion;
  readonly protocol: Protocol;
  readonly mailbox: StoreMailbox;
  /** The caller the mailbox server authenticated. */
  readonly caller: StoreMailbox;
  /** `denied`: answer the protocol's access-denied answer and nothing of the mailbox (docs/security.md "Mailbox access"). */
  readonly access: 'owner' | 'full-access' | 'delegate' | 'denied';
  /** EWS: the data plane's decision on an `ExchangeImpersonation` header (the MailboxResponder contract). */
  readonly impersonate?: (target: ConnectingSid) => Promise<ImpersonationVerdict>;
}

/** 1 KiB, in bytes. */
export const KiB = 1024;
/** 1 MiB, in bytes. */
export const MiB = 1024 * KiB;

/** The Content-Type of the XML answers (EWS, OAB). */
export const xmlType = { 'Content-Type': 'text/xml; charset=utf-8' };

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

/** Text made safe for HTML (the same escapes as XML). */
export const escapeHtml = escapeXml;

/**
 * The caller may not open this mailbox (docs/security.md "Mailbox access"): 403 in the protocol's manner,
 * nothing of the mailbox. ActiveSync's is empty (docs/protocols.md §4.1: 403, the user may not use it), OWA
 * and ECP get a page saying so; Outlook Anywhere and MAPI an empty 403, as IIS answers a request it refuses.
 */
export async function accessDenied(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: StoreContext,
): Promise<void> {
  if (ctx.protocol !== 'owa' && ctx.protocol !== 'ecp')
    return refuse(req, res, 403, `${ctx.caller.address} may not open this mailbox`);
  await drain(req);
  const html =
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Access denied</title></head><body>\n' +
    `<h1>Access denied</h1>\n<p id="reason">${escapeHtml(ctx.caller.address)} does not have permission to open this mailbox.</p>\n` +
    '</body></html>\n';
  send(res, 403, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }, html);
}
