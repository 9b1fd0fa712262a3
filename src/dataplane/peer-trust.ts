/**
 * Who sent a request, as far as this server can prove it (docs/security.md "How servers authenticate each
 * other"), and the client's address that follows from it. A server of the estate is recognised by the
 * client certificate it presented on the connection, verified against the estate's internal CA only, never by
 * the address it connects from; a load balancer, which presents none, is trusted by address because it was
 * listed (`coexist serve --trusted-proxy`); everyone else is a client, whatever its headers say.
 */
import type { Socket } from 'node:net';
import { clientAddressOf } from '../net/proxy-protocol.ts';
import type { TLSSocket } from 'node:tls';
import type { EstateIndex } from '../core/estate/estate-index.ts';

/** Load balancers whose forwarding headers are believed, by address; a `Set<string>` fits, so does a CIDR matcher. */
export interface TrustedProxies {
  has(address: string): boolean;
}

/** The peer of one request: a proven estate server (its name), a listed load balancer, or a client. */
export type PeerTrust =
  | { readonly kind: 'server'; readonly server: string }
  | { readonly kind: 'proxy' }
  | { readonly kind: 'client' };

/** The peer that proved nothing. */
export const clientPeer: PeerTrust = Object.freeze({ kind: 'client' });
const proxyPeer: PeerTrust = Object.freeze({ kind: 'proxy' });

/** id-kp-clientAuth (RFC 5280 §4.2.1.12): the certificate may authenticate a TLS client. */
export const clientAuthOid = '1.3.6.1.5.5.7.3.2';

/** The estate's servers by FQDN (lower case): the names a server's client certificate may carry. */
export function estateServers(index: EstateIndex): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const site of index.estate.sites) for (const s of site.servers) out.set(s.fqdn.toLowerCase(), s.name);
  return out;
}

/**
 * The proven server of each connection ('' for none). A connection's peer certificate cannot change: the
 * listener refuses TLS renegotiation (listener.ts), and TLS 1.3 has none.
 */
const provenBySocket = new WeakMap<object, string>();

/**
 * The estate server the TLS peer of `socket` proved it is: its certificate verified against the internal CA
 * (the listener's only `ca`, so `authorized`), carries the clientAuth extended key usage, and names a server
 * FQDN of the estate as a SAN dNSName (the first that does). Undefined for plain TCP, no certificate, or any
 * of these missing.
 */
export function provenServer(socket: Socket, servers: ReadonlyMap<string, string>): string | undefined {
  const cached = provenBySocket.get(socket);
  if (cached !== undefined) return cached === '' ? undefined : cached;
  const proven = checkPeer(socket as Partial<TLSSocket>, servers) ?? '';
  provenBySocket.set(socket, proven);
  return proven === '' ? undefined : proven;
}

function checkPeer(socket: Partial<TLSSocket>, servers: ReadonlyMap<string, string>): string | undefined {
  if (socket.encrypted !== true || socket.authorized !== true) return undefined;
  const cert = socket.getPeerX509Certificate?.();
  if (cert === undefined) return undefined;
  if (!(cert.keyUsage ?? []).includes(clientAuthOid)) return undefined;
  return serverNamed(cert.subjectAltName, servers);
}

/**
 * The first estate server a SAN list names as a dNSName (`DNS:cas2013-ny.o365info.local, DNS:...`, as
 * `X509Certificate.subjectAltName` gives it). Node quotes a value holding a comma or quote (`DNS:"a, DNS:b"`);
 * such an entry names no host and is skipped whole, so a crafted value cannot pass for two names. The subject
 * CN is never read (RFC 6125 §6.4.4: not when there are SANs, and a server's certificate must have them).
 */
export function serverNamed(
  subjectAltName: string | undefined,
  servers: ReadonlyMap<string, string>,
): string | undefined {
  if (subjectAltName === undefined) return undefined;
  for (const part of subjectAltName.split(', ')) {
    const m = /^DNS:([A-Za-z0-9._-]+)$/.exec(part);
    const server = m ? servers.get((m[1] as string).toLowerCase()) : undefined;
    if (server !== undefined) return server;
  }
  return undefined;
}

/**
 * The peer of a request on `socket`: the estate server its certificate proves, else a trusted proxy when its
 * address is listed, else a client.
 */
export function peerTrust(
  socket: Socket,
  servers: ReadonlyMap<string, string> | undefined,
  proxies: TrustedProxies | undefined,
): PeerTrust {
  const server = servers === undefined ? undefined : provenServer(socket, servers);
  if (server !== undefined) return { kind: 'server', server };
  const address = clientAddressOf(socket);
  return address !== undefined && isTrustedAddress(proxies, address) ? proxyPeer : clientPeer;
}

/** `address` (or its IPv4 form when it is IPv4-mapped IPv6) is one of `trusted`. */
export function isTrustedAddress(trusted: TrustedProxies | undefined, address: string): boolean {
  if (trusted === undefined) return false;
  if (trusted.has(address)) return true;
  const unmapped = unmapIPv4(address);
  return unmapped !== address && trusted.has(unmapped);
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) as `10.0.0.1`. */
export function unmapIPv4(address: string): string {
  return address.length > 7 && address.startsWith('::ffff:') && address.includes('.')
    ? address.slice(7)
    : address;
}

/** What `clientAddress` reads about one request. */
export interface ClientAddressInput {
  readonly peer: PeerTrust;
  /** The TCP peer's address. */
  readonly peerAddress: string | undefined;
  /** The request's `X-Forwarded-For` (believed only from a trusted peer). */
  readonly forwardedFor: string | readonly string[] | undefined;
  /** How many servers the request's `X-Coexist-Hops` lists (believed only from a server). */
  readonly hops: number;
  /** Load balancers listed by address. */
  readonly proxies?: TrustedProxies | undefined;
}

/**
 * The client's address, the one rule for both the client's location (internal or external) and the
 * lockout's source (docs/security.md "How servers authenticate each other"): the TCP peer; behind a trusted
 * peer, the right-most `X-Forwarded-For` entry that a trusted peer did not add about another trusted peer.
 * Each coexist server appends its own TCP peer, so when a server sent the request, the right-most
 * `hops - 1` entries are the addresses of the servers before it and are skipped; then, walking left, the
 * addresses of listed load balancers are skipped. The first other entry is the client: everything left of it
 * could have been written by the client. With nothing left, the left-most entry.
 */
export function clientAddress(o: ClientAddressInput): string | undefined {
  if (o.peer.kind === 'client' || o.forwardedFor === undefined) return o.peerAddress;
  const joined = typeof o.forwardedFor === 'string' ? o.forwardedFor : o.forwardedFor.join(',');
  const entries = joined
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) return o.peerAddress;
  let skipServers = o.peer.kind === 'server' ? Math.max(0, o.hops - 1) : 0;
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i] as string;
    if (i === 0) return entry;
    if (skipServers > 0) {
      skipServers--;
      continue;
    }
    if (!isTrustedAddress(o.proxies, entry)) return entry;
  }
  return entries[0];
}
