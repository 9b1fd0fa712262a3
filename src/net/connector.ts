/**
 * The one routed connector: an undici connector that sends a host's connections elsewhere while keeping
 * the name for TLS (SNI and the certificate check). The data plane's upstreams use it with the estate's
 * DNS (the lab maps every name to a loopback port); the clients coexist ships (`coexist activesync`,
 * `coexist check`) with curl's `--connect-to` rules.
 */
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { Agent, buildConnector } from 'undici';

/** Where `host:port` really is; undefined: connect as asked (DNS). */
export type ConnectRoute = (
  host: string,
  port: number,
) => { readonly host: string; readonly port: number } | undefined;

export interface ConnectorOptions {
  /** Where each connection really goes; absent: every one as asked. */
  readonly route?: ConnectRoute | undefined;
  /** Certificate authorities to trust instead of Node's bundle (the lab's own CA). */
  readonly ca?: string | readonly string[] | undefined;
  /** Verify TLS certificates (default true). */
  readonly rejectUnauthorized?: boolean | undefined;
  /**
   * A client certificate and its key (PEM) presented on every connection when the server asks for one: how a
   * coexist server proves to the next hop that it is a server of the estate (docs/security.md "How servers
   * authenticate each other").
   */
  readonly clientCertificate?: { readonly certPem: string; readonly keyPem: string } | undefined;
  /** Give up connecting after this long (undici `connect.timeout`); default undici's, 10 s. */
  readonly connectTimeoutMs?: number | undefined;
}

/**
 * The key exchange groups offered to the servers this connector reaches, in order: the classic elliptic
 * curves, which Exchange's TLS stack (Schannel) negotiates. Node 24's OpenSSL default puts the hybrid
 * post-quantum X25519MLKEM768 first, and a client connection keeps its ML-KEM key share for as long as it
 * is open: about 13 KB more per connection, which every held long poll pays (docs/operations.md "Memory per
 * held long poll"). The listeners, which clients reach, keep OpenSSL's defaults.
 */
export const nextHopGroups = 'X25519:P-256:P-384:P-521';

/** A connector with `o.route` applied to every connection it opens, all sharing one TLS context. */
export function routedConnector(o: ConnectorOptions = {}): buildConnector.connector {
  // One TLS context for every connection. Without it, tls.connect builds a context (and parses the CA
  // bundle into a certificate store of its own) per connection: about 22 KB of memory per open upstream
  // socket, which every held long poll keeps (measured with 2 000 sockets), and CPU per handshake.
  // The client certificate goes into the same one context: every connection presents it, none builds its own.
  const secureContext = createSecureContext({
    ecdhCurve: nextHopGroups,
    ...(o.ca === undefined ? {} : { ca: typeof o.ca === 'string' ? o.ca : [...o.ca] }),
    ...(o.clientCertificate === undefined
      ? {}
      : { cert: o.clientCertificate.certPem, key: o.clientCertificate.keyPem }),
  });
  const base = buildConnector({
    // HTTP/1.1 only: undici 8 offers h2 in ALPN by default, and an Exchange next hop on IIS would take it;
    // Outlook Anywhere's channels and the hop-by-hop rules of the data plane are HTTP/1.1 (docs/protocols.md).
    allowH2: false,
    ...(o.connectTimeoutMs === undefined ? {} : { timeout: o.connectTimeoutMs }),
    ...(o.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: o.rejectUnauthorized }),
    // undici passes options it does not know on to tls.connect.
    ...({ secureContext } as object),
  });
  const route = o.route;
  if (!route) return base;
  return (opts, callback) => {
    const port = Number(opts.port) || (opts.protocol === 'http:' ? 80 : 443);
    const to = route(opts.hostname, port);
    if (!to) return base(opts, callback);
    // SNI and the certificate check stay on the logical name: the one undici was given (from the request's
    // Host), else the host name asked for. An IP address is never a server name (RFC 6066 §3).
    const servername = opts.servername || (isIP(opts.hostname) ? undefined : opts.hostname);
    return base(
      {
        ...opts,
        hostname: to.host,
        port: String(to.port),
        ...(servername ? { servername } : {}),
      },
      callback,
    );
  };
}

export interface RoutedAgentOptions extends ConnectorOptions {
  /** The local address to connect from (the lab's internal clients use 127.0.0.3). */
  readonly localAddress?: string | undefined;
  /** For each answer's headers and body (undici `headersTimeout`, `bodyTimeout`); default undici's. */
  readonly answerTimeoutMs?: number | undefined;
}

/** An undici Agent for a client: its own CA, connect-to routing, local address and timeouts. */
export function routedAgent(o: RoutedAgentOptions = {}): Agent {
  return new Agent({
    allowH2: false,
    ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
    ...(o.answerTimeoutMs === undefined
      ? {}
      : { headersTimeout: o.answerTimeoutMs, bodyTimeout: o.answerTimeoutMs }),
    connect: routedConnector(o),
  });
}
