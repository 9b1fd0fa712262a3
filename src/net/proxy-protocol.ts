/**
 * The PROXY protocol (HAProxy's "The PROXY protocol", versions 1 and 2) on connections from a layer-4
 * load balancer: the balancer opens each connection with a header naming the client's address, so the
 * per-source limits, the smart lockout and the access log see clients rather than the balancer
 * (docs/deploy.md "The load balancer", docs/security.md "Trust per request").
 *
 * Only connections from the addresses given as PROXY senders are read this way, and each of them must start
 * with a header: a connection from such an address without one is refused, never guessed at (the
 * protocol's own rule), and a header from any other address is not looked for (it fails as a bad TLS
 * handshake or HTTP request). Parsing is proxy-protocol-js's; finding where the header ends, bounding it and
 * handing the rest of the bytes on are here.
 */
import { Buffer } from 'node:buffer';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import {
  Command,
  IPv4ProxyAddress,
  IPv6ProxyAddress,
  V1ProxyProtocol,
  V2ProxyProtocol,
} from 'proxy-protocol-js';

/** The twelve bytes a version 2 header starts with. */
const v2Signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const v1Prefix = Buffer.from('PROXY ', 'latin1');
/** A version 1 header is at most 107 bytes, CRLF included. */
const v1MaxBytes = 107;
/** Fixed part (16) and address block of a version 2 header; TLVs beyond this are refused as unreasonable. */
const v2MaxBytes = 16 + 216 + 1024;

/** What a header said: the client's address, or none (a LOCAL connection: the balancer's own health check). */
export interface ProxiedPeer {
  readonly address?: string;
  readonly port?: number;
}

export class ProxyHeaderError extends Error {
  override readonly name = 'ProxyHeaderError';
}

/**
 * How many bytes of `data` the header takes: 0 while more bytes are needed; throws when `data` cannot be
 * the start of a header.
 */
export function proxyHeaderLength(data: Buffer): number {
  const probe = Math.min(data.length, v2Signature.length);
  if (data.subarray(0, probe).equals(v2Signature.subarray(0, probe))) {
    if (data.length < 16) return 0;
    const length = 16 + data.readUInt16BE(14);
    if (length > v2MaxBytes) throw new ProxyHeaderError(`a PROXY v2 header of ${length} bytes`);
    return data.length >= length ? length : 0;
  }
  const v1Probe = Math.min(data.length, v1Prefix.length);
  if (data.subarray(0, v1Probe).equals(v1Prefix.subarray(0, v1Probe))) {
    const end = data.subarray(0, v1MaxBytes).indexOf('\r\n', 0, 'latin1');
    if (end >= 0) return end + 2;
    if (data.length >= v1MaxBytes) throw new ProxyHeaderError('a PROXY v1 header without CRLF in 107 bytes');
    return 0;
  }
  throw new ProxyHeaderError('the connection does not start with a PROXY protocol header');
}

/** The client named by a complete header (`proxyHeaderLength` bytes). */
export function parseProxyHeader(header: Buffer): ProxiedPeer {
  try {
    if (header[0] === 0x0d) {
      const h = V2ProxyProtocol.parse(header);
      if (h.command === Command.LOCAL) return {};
      const a = h.proxyAddress;
      if (a instanceof IPv4ProxyAddress) {
        return { address: a.sourceAddress.address.join('.'), port: a.sourcePort };
      }
      if (a instanceof IPv6ProxyAddress)
        return { address: ipv6(a.sourceAddress.address), port: a.sourcePort };
      return {}; // UNSPEC or a UNIX socket: no address to believe
    }
    const text = header.toString('latin1');
    // "UNKNOWN" (the balancer could not tell, or its own connection): whatever follows is ignored.
    if (/^PROXY UNKNOWN[ \r]/.test(text)) return {};
    const h = V1ProxyProtocol.parse(text);
    if (isIP(h.source.ipAddress) === 0) throw new ProxyHeaderError('a PROXY v1 header with a bad address');
    return { address: h.source.ipAddress, port: h.source.port };
  } catch (error) {
    if (error instanceof ProxyHeaderError) throw error;
    throw new ProxyHeaderError(`a malformed PROXY header (${(error as Error).message})`);
  }
}

/** Sixteen bytes as an IPv6 address in its canonical short form. */
function ipv6(bytes: readonly number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/**
 * Read the header at the start of `socket`, then give the bytes after it back to the socket (`unshift`)
 * so TLS or HTTP reads them as if nothing came before. Rejects on a bad header, on the socket closing first,
 * and after `timeoutMs` (the same absolute deadline as a TLS handshake: a header sent a byte at a time
 * cannot hold the socket).
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedPeer> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (error?: Error, peer?: ProxiedPeer, rest?: Buffer): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      socket.pause();
      if (error) {
        reject(error);
        return;
      }
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(peer ?? {});
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      try {
        const length = proxyHeaderLength(buffered);
        if (length === 0) return;
        finish(undefined, parseProxyHeader(buffered.subarray(0, length)), buffered.subarray(length));
      } catch (error) {
        finish(error as Error);
      }
    };
    const onClose = (): void => finish(new ProxyHeaderError('closed before a complete PROXY header'));
    const timer = setTimeout(
      () => finish(new ProxyHeaderError(`no complete PROXY header within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
  });
}

/** The client a PROXY header named, by the socket it came on (and the TLS socket over it). */
const declared = new WeakMap<object, string>();

/** Record the client a PROXY header named for `socket`. */
export function declareClientAddress(socket: object, address: string): void {
  declared.set(socket, address);
}

/**
 * The address a connection comes from, for every decision and log line: the client a trusted balancer's
 * PROXY header named, else the TCP peer.
 */
export function clientAddressOf(socket: { readonly remoteAddress?: string | undefined }): string | undefined {
  return declared.get(socket) ?? socket.remoteAddress;
}
