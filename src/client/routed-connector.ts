/**
 * An undici connector that sends a host's connections elsewhere while keeping the name for TLS (SNI and the
 * certificate check): curl's `--connect-to`, or the lab's DNS. Shared by the clients coexist ships
 * (`coexist activesync`, `coexist check`).
 */
import { isIP } from 'node:net';
import type { buildConnector } from 'undici';

/** Where `host:port` really is; undefined: connect as asked (DNS). */
export type ConnectRoute = (
  host: string,
  port: number,
) => { readonly host: string; readonly port: number } | undefined;

/** `base` with `route` applied to every connection it opens. */
export function routedConnector(
  base: buildConnector.connector,
  route: ConnectRoute | undefined,
): buildConnector.connector {
  if (!route) return base;
  return (opts, cb) => {
    const port = Number(opts.port) || (opts.protocol === 'http:' ? 80 : 443);
    const to = route(opts.hostname, port);
    if (!to) return base(opts, cb);
    return base(
      {
        ...opts,
        hostname: to.host,
        port: String(to.port),
        ...(isIP(opts.hostname) ? {} : { servername: opts.hostname }),
      },
      cb,
    );
  };
}
