/**
 * The admin listener's actions, `POST /reload` and `POST /drain` (docs/operations.md "Reload", "Drain"), and
 * what keeps them from being a way in (docs/security.md "The admin listener"): only on the admin listener,
 * `POST` only, and never from a web page. A browser on the admin host could otherwise be made to send them:
 * a cross-site form POST carries an `Origin` (refused), DNS rebinding carries the attacker's name as `Host`
 * (only the listener's own address is accepted), and the required `X-Coexist-Admin` header is one no
 * form or simple cross-site request can send (a script's needs a CORS preflight, which is never allowed).
 */
import type { IncomingMessage } from 'node:http';

/** An action's answer: its status and a JSON body. */
export interface AdminAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

/** The actions the admin listener runs; absent ones answer 404 like any unknown path. */
export interface AdminActions {
  readonly reload?: () => Promise<AdminAnswer>;
  readonly drain?: () => Promise<AdminAnswer>;
}

/** The header every action request must carry (any value): no HTML form can send it. */
export const adminHeader = 'x-coexist-admin';

/** The action a path names, if it is one. */
export function actionOf(path: string): keyof AdminActions | undefined {
  if (path === '/reload') return 'reload';
  if (path === '/drain') return 'drain';
  return undefined;
}

/**
 * Why this request may not run an action, as its answer; undefined when it may. `own` is what `Host` must
 * be: the listener's own address and port as a client writes them (`127.0.0.1:9464`, `[::1]:9464`).
 */
export function refusal(req: IncomingMessage, own: readonly string[]): AdminAnswer | undefined {
  if (req.method !== 'POST')
    return { status: 405, body: { error: 'method not allowed: POST only', reason: 'method' } };
  if (req.headers.origin !== undefined)
    return {
      status: 403,
      body: { error: 'a request from a web page (Origin) is refused', reason: 'origin' },
    };
  const host = (req.headers.host ?? '').toLowerCase();
  if (!own.includes(host))
    return {
      status: 403,
      body: { error: "Host is not this listener's own address", reason: 'host' },
    };
  if (req.headers[adminHeader] === undefined)
    return {
      status: 403,
      body: { error: `the ${adminHeader} header is required`, reason: 'header' },
    };
  return undefined;
}

/**
 * Why this request may not read `/metrics`, `/status` or `/readyz`, as its answer; undefined when it may. They
 * name the next hops, their URLs and errors, the certificates and every counter: a page on a name rebound to
 * 127.0.0.1 would read them with the browser's own request, which carries that name as `Host`. So `Host` must
 * be the listener's own address, as for the actions (`own`). A request with no `Host` at all passes: no browser
 * sends one, while an HTTP/1.0 health checker (HAProxy's `option httpchk` default) may not. `/healthz` says only
 * "ok" and is not checked.
 */
export function readRefusal(req: IncomingMessage, own: readonly string[]): AdminAnswer | undefined {
  const host = req.headers.host;
  if (host === undefined || own.includes(host.toLowerCase())) return undefined;
  return { status: 403, body: { error: "Host is not this listener's own address", reason: 'host' } };
}

/**
 * The `Host` values of a listener on `host`:`port`, as clients write them. A listener on every address
 * (`0.0.0.0`, `::`) is reached at any of this machine's addresses: each of them, loopback included, is its
 * own (`addresses`: os.networkInterfaces()'s, given by the caller). A name is never one: a name is what DNS
 * rebinding brings.
 */
export function ownHosts(host: string, port: number, addresses: readonly string[] = []): string[] {
  const h = host.toLowerCase();
  const hostOf = (a: string): string => (a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
  if (h !== '0.0.0.0' && h !== '::') return [hostOf(h)];
  const all = new Set(['127.0.0.1', '::1', ...addresses.map((a) => a.toLowerCase())]);
  return [...all].map(hostOf);
}
