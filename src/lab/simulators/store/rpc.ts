/**
 * Outlook Anywhere at the mailbox (docs/protocols.md §4.7, MS-RPCH): two long-lived channels, never
 * buffered. RPC_IN_DATA is counted and hashed as it arrives; RPC_OUT_DATA streams a byte pattern.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { drain, firstHeader, KiB, MiB, refuse } from './common.ts';

/** The byte at `offset` of every RPC_OUT_DATA body (a prime period, so chunk seams show). */
export const rpcOutDataByte = (offset: number): number => offset % 251;

/** The simulator-only request header that sets the RPC_OUT_DATA body length. */
export const rpcOutBytesHeader = 'x-lab-out-bytes';

// The OUT channel answer's Content-Length lies between 128 KiB and 2 GiB (docs/protocols.md §4.7 [41d]).
const defaultOutBytes = 128 * KiB;
const maxOutBytes = 2 * 1024 * MiB;

/** Answer one RPC_IN_DATA or RPC_OUT_DATA channel request. */
export async function outlookAnywhere(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const channelHeaders = { 'Content-Type': 'application/rpc', 'Cache-Control': 'no-cache' };
  if (req.method === 'RPC_IN_DATA') {
    // Count and hash as the bytes arrive: the IN channel reserves 1 GiB (§4.7) and is never held in memory.
    const hash = createHash('sha256');
    const bytes = await drain(req, (chunk) => hash.update(chunk));
    const body = `RPC_IN_DATA bytes=${bytes} sha256=${hash.digest('hex')}\r\n`;
    res.writeHead(200, 'Success', { ...channelHeaders, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  if (req.method === 'RPC_OUT_DATA') {
    const value = firstHeader(req, rpcOutBytesHeader);
    if (value !== undefined && !/^\d{1,12}$/.test(value.trim()))
      return refuse(req, res, 400, `${rpcOutBytesHeader} is not a byte count`);
    const length = Math.min(value === undefined ? defaultOutBytes : Number(value), maxOutBytes);
    req.resume(); // the 76-byte OUT channel request body (§4.7) carries nothing the simulator needs
    // "200 Success" with the Content-Length of the whole channel (MS-RPCH OUT channel response [41d]).
    res.writeHead(200, 'Success', { ...channelHeaders, 'Content-Length': length });
    await streamPattern(res, length);
    return;
  }
  return refuse(req, res, 405, 'the RPC proxy takes RPC_IN_DATA and RPC_OUT_DATA', {
    Allow: 'RPC_IN_DATA, RPC_OUT_DATA',
  });
}

const patternChunk = Buffer.alloc(251 * 256, 0).map((_, i) => rpcOutDataByte(i));

/** Write `length` pattern bytes, waiting for 'drain' whenever the socket is full; stop if the client goes. */
async function streamPattern(res: ServerResponse, length: number): Promise<void> {
  let sent = 0;
  while (sent < length) {
    if (res.destroyed) return;
    // The chunk length is a multiple of the period, so every chunk starts at pattern offset 0.
    const n = Math.min(patternChunk.length, length - sent);
    const more = res.write(n === patternChunk.length ? patternChunk : patternChunk.subarray(0, n));
    sent += n;
    if (!more && !(await drained(res))) return;
  }
  res.end();
}

function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}
