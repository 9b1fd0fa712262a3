/**
 * Preload for a client process (`node --import tsx --import <this file> <client>`): the lab is the process's
 * DNS. Every TCP or TLS connection to a host name goes where the lab says that name and port are; the TLS
 * server name stays the real host name, so certificates are still checked against it. A name or port the
 * lab does not know does not resolve (ENOTFOUND), and the lab publishes no SRV records, so nothing leaves
 * loopback. The machine's DNS and /etc/hosts are never read.
 *
 * Environment: COEXIST_LAB_HOSTS, JSON `{"host:port": lab port}`; COEXIST_LAB_LISTEN, the address the lab
 * listens on; COEXIST_LAB_SOURCE, optionally the address to connect from (the lab's internal clients).
 */
import dns from 'node:dns';
import net from 'node:net';
import tls from 'node:tls';

const hosts = new Map<string, number>(
  Object.entries(JSON.parse(process.env['COEXIST_LAB_HOSTS'] ?? '{}') as Record<string, number>).map(
    ([k, v]) => [k.toLowerCase(), Number(v)],
  ),
);
const names = new Set([...hosts.keys()].map((k) => k.slice(0, k.lastIndexOf(':'))));
const listen = process.env['COEXIST_LAB_LISTEN'] ?? '127.0.0.1';
const source = process.env['COEXIST_LAB_SOURCE'] || undefined;

/** What the process asked the lab's DNS, in order (a client driver adds its HTTP exchanges here). */
export const labEvents: Record<string, unknown>[] = [];

type Callback = (...args: unknown[]) => void;
type LookupCallback = (err: NodeJS.ErrnoException | null, address?: string, family?: number) => void;

function notFound(syscall: string, host: string, detail = ''): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${syscall} ENOTFOUND ${host}${detail}`);
  err.code = 'ENOTFOUND';
  err.syscall = syscall;
  (err as { hostname?: string }).hostname = host;
  return err;
}

/** Used for a name or port the lab has no listener for: the connection fails as an unknown name does. */
const refuseLookup =
  (port: number) =>
  (host: string, _options: unknown, cb: LookupCallback): void => {
    process.nextTick(() => cb(notFound('getaddrinfo', host, ` (no lab listener for port ${port})`)));
  };

interface ConnectOptions {
  host?: string;
  port?: number | string;
  path?: string | null;
  servername?: string;
  localAddress?: string;
  lookup?: unknown;
}

/** The options with host and port replaced by where the lab listens for them. */
function route<T extends ConnectOptions>(o: T): T {
  if (o.path) return o; // a Unix socket or pipe
  const host = (o.host ?? 'localhost').toLowerCase().replace(/\.$/, '');
  if (net.isIP(host) !== 0) return o;
  const port = Number(o.port);
  const labPort = hosts.get(`${host}:${port}`);
  labEvents.push({ kind: 'dns', query: `${host}:${port}`, found: labPort !== undefined });
  if (labPort === undefined) return { ...o, lookup: refuseLookup(port) };
  return {
    ...o,
    host: listen,
    port: labPort,
    servername: o.servername ?? host,
    ...(source !== undefined && o.localAddress === undefined ? { localAddress: source } : {}),
  };
}

/** `connect(options[, cb])` or `connect(port[, host][, options][, cb])` as one options object. */
function normalize(args: unknown[]): { options: ConnectOptions; cb?: Callback } | undefined {
  const cb = typeof args.at(-1) === 'function' ? (args.at(-1) as Callback) : undefined;
  const rest = cb ? args.slice(0, -1) : args;
  const [first, second, third] = rest;
  if (typeof first === 'object' && first !== null)
    return { options: first as ConnectOptions, ...(cb ? { cb } : {}) };
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    const extra = [second, third].find((a): a is object => typeof a === 'object' && a !== null) ?? {};
    const host = typeof second === 'string' ? second : undefined;
    return {
      options: { ...extra, port: first, ...(host === undefined ? {} : { host }) },
      ...(cb ? { cb } : {}),
    };
  }
  return undefined; // a Unix socket path: not the lab's business
}

const netConnect = net.connect;
const tlsConnect = tls.connect;

function labNetConnect(...args: unknown[]): net.Socket {
  const n = normalize(args);
  if (!n) return (netConnect as (...a: unknown[]) => net.Socket)(...args);
  return n.cb
    ? netConnect(route(n.options) as net.NetConnectOpts, n.cb)
    : netConnect(route(n.options) as net.NetConnectOpts);
}

function labTlsConnect(...args: unknown[]): tls.TLSSocket {
  const n = normalize(args);
  if (!n) return (tlsConnect as (...a: unknown[]) => tls.TLSSocket)(...args);
  return n.cb
    ? tlsConnect(route(n.options) as tls.ConnectionOptions, n.cb)
    : tlsConnect(route(n.options) as tls.ConnectionOptions);
}

// http.Agent calls net.createConnection and https.Agent calls tls.connect, both looked up at call time.
net.connect = labNetConnect as typeof net.connect;
net.createConnection = labNetConnect as typeof net.createConnection;
tls.connect = labTlsConnect as typeof tls.connect;

// Anything that resolves names itself gets the lab's answers too.
const lookup = (host: string, options: unknown, cb?: LookupCallback): void => {
  const done = (typeof options === 'function' ? options : cb) as LookupCallback;
  const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
  const h = host.toLowerCase().replace(/\.$/, '');
  labEvents.push({ kind: 'dns', query: `${h} A`, found: names.has(h) });
  process.nextTick(() => {
    if (!names.has(h)) done(notFound('getaddrinfo', host));
    else if (all)
      (done as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address: listen, family: 4 },
      ]);
    else done(null, listen, 4);
  });
};
dns.lookup = lookup as typeof dns.lookup;
dns.promises.lookup = ((host: string) =>
  names.has(host.toLowerCase().replace(/\.$/, ''))
    ? Promise.resolve({ address: listen, family: 4 })
    : Promise.reject(notFound('getaddrinfo', host))) as typeof dns.promises.lookup;
// The lab publishes no SRV records (ews-javascript-api's last Autodiscover step asks for one).
dns.resolveSrv = ((name: string, cb: (err: NodeJS.ErrnoException | null, r: dns.SrvRecord[]) => void) => {
  labEvents.push({ kind: 'dns', query: `${name} SRV`, found: false });
  process.nextTick(() => cb(notFound('querySrv', name), []));
}) as typeof dns.resolveSrv;
dns.promises.resolveSrv = ((name: string) => {
  labEvents.push({ kind: 'dns', query: `${name} SRV`, found: false });
  return Promise.reject(notFound('querySrv', name));
}) as typeof dns.promises.resolveSrv;
