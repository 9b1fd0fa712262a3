/**
 * Preload for a `coexist serve` process in front of the lab (`node --import tsx --import <this file>`): its
 * TLS connections to the estate's names go where the lab listens for them; the TLS server name stays the
 * estate's, so certificates are checked against it. Only `tls.connect` is routed (the front end's next hops);
 * its own listeners, on IP addresses, are untouched. A name the lab does not know is left to the system.
 *
 * Environment: COEXIST_LAB_HOSTS, JSON `{"host:port": lab port}`; COEXIST_LAB_LISTEN, the lab's address.
 */
import tls from 'node:tls';

const hosts = new Map<string, number>(
  Object.entries(JSON.parse(process.env['COEXIST_LAB_HOSTS'] ?? '{}') as Record<string, number>).map(
    ([k, v]) => [k.toLowerCase(), Number(v)],
  ),
);
const listen = process.env['COEXIST_LAB_LISTEN'] ?? '127.0.0.1';
const tlsConnect = tls.connect;

tls.connect = ((...args: unknown[]) => {
  const [first, ...rest] = args;
  if (typeof first !== 'object' || first === null)
    return (tlsConnect as (...a: unknown[]) => tls.TLSSocket)(...args);
  const o = first as tls.ConnectionOptions;
  const host = (o.host ?? '').toLowerCase().replace(/\.$/, '');
  const labPort = hosts.get(`${host}:${Number(o.port)}`);
  const routed =
    labPort === undefined ? o : { ...o, host: listen, port: labPort, servername: o.servername ?? host };
  return (tlsConnect as (...a: unknown[]) => tls.TLSSocket)(routed, ...rest);
}) as typeof tls.connect;
