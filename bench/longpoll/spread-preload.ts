/**
 * Preload for the `coexist serve --workers` row of the long-poll bench (`node --import tsx --import <this file>`,
 * inherited by every worker): TLS connections to the next hop's name and port go, one after the other, to
 * the holding back ends on loopback (round robin per connection), so N held Pings are spread over several
 * back-end processes, each under its own file-descriptor limit. The TLS server name stays the estate's, so the
 * back end's certificate is checked against it. Only `tls.connect` is routed; other names are left alone.
 * (test/support/serve-dns-preload.ts does the same for one lab port per name.)
 *
 * Environment: COEXIST_BENCH_BACKENDS, JSON `{"host:port": [back-end port, ...]}`.
 */
import tls from 'node:tls';

const routes = new Map<string, { readonly ports: readonly number[]; next: number }>(
  Object.entries(JSON.parse(process.env['COEXIST_BENCH_BACKENDS'] ?? '{}') as Record<string, number[]>).map(
    ([k, ports]) => [k.toLowerCase(), { ports: ports.map(Number), next: 0 }],
  ),
);
const tlsConnect = tls.connect;

tls.connect = ((...args: unknown[]) => {
  const [first, ...rest] = args;
  if (typeof first !== 'object' || first === null)
    return (tlsConnect as (...a: unknown[]) => tls.TLSSocket)(...args);
  const o = first as tls.ConnectionOptions;
  const host = (o.host ?? '').toLowerCase().replace(/\.$/, '');
  const route = routes.get(`${host}:${Number(o.port)}`);
  if (route === undefined || route.ports.length === 0)
    return (tlsConnect as (...a: unknown[]) => tls.TLSSocket)(...args);
  const port = route.ports[route.next % route.ports.length] as number;
  route.next++;
  return (tlsConnect as (...a: unknown[]) => tls.TLSSocket)(
    { ...o, host: '127.0.0.1', port, servername: o.servername ?? host },
    ...rest,
  );
}) as typeof tls.connect;
