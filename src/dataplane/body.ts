/**
 * The one bounded body reader, for the pipeline (the bodies identify needs: Autodiscover, the OWA logon
 * form) and the lab's mailbox simulators. A body is kept only up to a cap; past it the answer is a refusal,
 * which must still reach the client, so the rest is read and dropped rather than left on the socket.
 */
import type { IncomingMessage } from 'node:http';

/** Thrown when the client went away while its request was being read. */
export class ClientGone extends Error {}

/**
 * Read the body, keeping at most `max` bytes; undefined when it is larger. A declared Content-Length over
 * `max` is refused before anything is read; a body that grows past `max` resolves at once and its remaining
 * bytes are dropped with the connection (the caller answers with `Connection: close`). A body already read
 * upstream of the caller is empty.
 */
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
  if (req.readableEnded) return Promise.resolve(0); // already read upstream of the caller
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
