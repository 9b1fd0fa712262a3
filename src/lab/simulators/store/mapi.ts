/** MAPI over HTTP at the mailbox (docs/protocols.md §4.8, MS-OXCMAPIHTTP): emsmdb and nspi, 2013 and later. */
import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { StoreContext } from './common.ts';
import { drain, firstHeader, refuse, requestHead } from './common.ts';
import { profiles } from './versions.ts';

/** Answer one MAPI/HTTP request: meta-tags, then the binary answer for its X-RequestType. */
export async function mapiHttp(req: IncomingMessage, res: ServerResponse, ctx: StoreContext): Promise<void> {
  const p = profiles[ctx.version];
  const path = requestHead(req).path.toLowerCase().replace(/\/$/, '');
  if (!p.mapiHttp) return refuse(req, res, 404, `${p.product} has no MAPI/HTTP endpoint`);
  if (path !== '/mapi/emsmdb' && path !== '/mapi/nspi')
    return refuse(req, res, 404, 'not a MAPI/HTTP endpoint');
  if (req.method !== 'POST') return refuse(req, res, 405, 'MAPI/HTTP takes POST', { Allow: 'POST' });
  const requestType = firstHeader(req, 'x-requesttype');
  if (!requestType) return refuse(req, res, 400, 'X-RequestType is required');
  const started = new Date();
  await drain(req);
  const [major, minor, build, revision] = p.build;
  const pad = (v: number, n: number): string => String(v).padStart(n, '0');
  const headers: OutgoingHttpHeaders = {
    'Content-Type': 'application/mapi-http',
    'Cache-Control': 'private',
    'X-RequestType': requestType,
    'X-ResponseCode': '0',
    'X-ServerApplication': `Exchange/${pad(major, 2)}.${pad(minor, 2)}.${pad(build, 4)}.${pad(revision, 3)}`,
    'X-PendingPeriod': '30000',
  };
  // Exchange echoes the client's correlation headers (§4.8 [15]).
  for (const name of ['X-RequestId', 'X-ClientInfo']) {
    const v = firstHeader(req, name.toLowerCase());
    if (v !== undefined) headers[name] = v;
  }
  if (requestType.toLowerCase() === 'connect') {
    // Session context and sequence cookies (§4.8): opaque to clients, passed through by proxies.
    const context = createHash('sha256').update(
      `${ctx.serverName}\n${ctx.mailbox.address}\n${started.getTime()}`,
    );
    headers['Set-Cookie'] = [
      `MapiContext=${context.digest('hex').slice(0, 32)}; path=/mapi/emsmdb/; secure; HttpOnly`,
      'MapiSequence=1; path=/mapi/emsmdb/; secure; HttpOnly',
    ];
  }
  // No Content-Length: the answer is chunked, meta-tags first (MS-OXCMAPIHTTP response format [40c]).
  res.writeHead(200, headers);
  res.write('PROCESSING\r\n');
  res.write('DONE\r\n');
  res.write(
    `X-ResponseCode: 0\r\nX-ElapsedTime: ${Date.now() - started.getTime()}\r\nX-StartTime: ${started.toUTCString()}\r\n\r\n`,
  );
  res.end(mapiBody(requestType, ctx));
}

/** The binary answer after the meta-tags: success status and error codes, empty buffers. */
function mapiBody(requestType: string, ctx: StoreContext): Buffer {
  const u32 = (...values: number[]): Buffer => {
    const b = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
    return b;
  };
  switch (requestType.toLowerCase()) {
    case 'connect':
      // StatusCode, ErrorCode, PollsMax, RetryCount, RetryDelay, DnPrefix, DisplayName, AuxiliaryBufferSize.
      return Buffer.concat([
        u32(0, 0, 60_000, 6, 10_000),
        Buffer.from('/o=coexist lab/ou=Exchange Administrative Group/cn=Recipients\0', 'latin1'),
        Buffer.from(`${ctx.mailbox.displayName}\0`, 'utf16le'),
        u32(0),
      ]);
    case 'execute':
      // StatusCode, ErrorCode, Flags, RopBufferSize 0, AuxiliaryBufferSize 0.
      return u32(0, 0, 0, 0, 0);
    default:
      // StatusCode, ErrorCode, AuxiliaryBufferSize 0.
      return u32(0, 0, 0);
  }
}
