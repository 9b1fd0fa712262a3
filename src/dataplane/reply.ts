/**
 * Answers this server writes itself (not streamed from a next hop): the diagnostics headers every one
 * carries, refusals in the protocol's dialect, the Basic challenge, and a rendered Autodiscover reply.
 */
import type { ErrorCode } from '../core/errors.ts';
import { catalogue, statusOf } from '../core/errors.ts';
import { hostOfHeader } from '../core/host.ts';
import type { AutodiscoverReply } from './autodiscover/context.ts';
import { autodiscoverHeaders } from './autodiscover/context.ts';
import type { OutgoingHeaders } from './headers.ts';
import { headerNames } from './headers.ts';
import type { InFlight } from './in-flight.ts';

/** A locally produced answer: diagnostics headers, status, record. */
export function send(
  flight: InFlight,
  status: number,
  headers: OutgoingHeaders,
  body?: Uint8Array | string,
): void {
  const { res, record } = flight;
  // Every Autodiscover answer, 401s included, says SOAP is served (ews-javascript-api needs it).
  if (flight.protocol === 'autodiscover') Object.assign(headers, autodiscoverHeaders);
  headers[headerNames.requestId] = record.reqId;
  headers[headerNames.path] = record.server;
  headers[headerNames.feServer] = record.server;
  res.writeHead(status, headers);
  res.end(body);
  record.status = status;
}

/** Refuse with a catalogue code, in the protocol's dialect (ActiveSync: empty bodies, §4.1). */
export function refuse(flight: InFlight, code: ErrorCode, extra: OutgoingHeaders = {}): void {
  const status = statusOf(code);
  flight.record.code = code;
  flight.record.outcome = 'refused';
  if (flight.res.headersSent || flight.res.destroyed) {
    flight.res.destroy();
    return;
  }
  const headers: OutgoingHeaders = { 'cache-control': 'no-store', ...extra };
  // An unread request body is not drained to keep the connection.
  if (!flight.req.complete && flight.body === undefined) headers['connection'] = 'close';
  if (flight.protocol === 'activesync') {
    headers['content-length'] = '0';
    send(flight, status, headers);
    return;
  }
  const body = `${catalogue[code].summary} (${code})\n`;
  headers['content-type'] = 'text/plain; charset=utf-8';
  headers['content-length'] = String(Buffer.byteLength(body));
  send(flight, status, headers, body);
}

/** 401 with the Basic challenge every protocol here accepts (docs/protocols.md §5.1). */
export function challenge(flight: InFlight, code: 'CX_AUTH_REQUIRED' | 'CX_AUTH_FAILED'): void {
  const realm = hostOfHeader(flight.head.host) || flight.record.server;
  refuse(flight, code, { 'www-authenticate': `Basic realm="${realm.replace(/["\\]/g, '')}"` });
}

/** A rendered Autodiscover answer (settings, redirect or the schema's error) with its length. */
export function sendReply(flight: InFlight, reply: AutodiscoverReply): void {
  const body = Buffer.from(reply.body);
  const headers: OutgoingHeaders = {
    'content-type': reply.contentType,
    'content-length': String(body.length),
  };
  if (reply.location !== undefined) headers['location'] = reply.location;
  send(flight, reply.status, headers, body);
}
