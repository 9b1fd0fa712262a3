/**
 * What a request may claim about where it is going, checked per request (docs/security.md "Trust per
 * request"): the host names this server answers for come from the estate, never from the request; the
 * Host header must be one of them, agree with the TLS server name, and appear once; a state-changing OWA
 * or ECP request must come from this origin (login CSRF). OWA's redirect targets come from the estate too.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Server } from '../core/estate/estate.ts';
import type { ErrorCode } from '../core/errors.ts';
import { hostOfHeader, hostOfUrl } from '../core/host.ts';
import type { RequestHead } from '../core/protocols/request-head.ts';

/**
 * The host names `server` answers for: its FQDN, the hosts of its own internal and external URLs, and the
 * namespaces that resolve to it (the estate's DNS). Lower case, no port, as `hostOfHeader` gives them.
 */
export function servedHosts(index: EstateIndex, server: Server): ReadonlySet<string> {
  const hosts = new Set<string>([server.fqdn.toLowerCase()]);
  for (const urls of Object.values(server.urls)) {
    for (const u of [urls?.internal, urls?.external]) {
      const h = u === undefined ? '' : hostOfUrl(u);
      if (h !== '') hosts.add(h);
    }
  }
  for (const ns of index.estate.namespaces)
    if (ns.server.toLowerCase() === server.name.toLowerCase()) hosts.add(ns.host.toLowerCase());
  return hosts;
}

/**
 * Where an OWA logon may send the browser (the `destination` of the logon POST, `url` of the logon page):
 * the estate's namespaces and the hosts of every server's OWA URLs, as `new URL().host` writes them (the
 * port kept unless 443), which is what `safeDestination` compares. Never the request's own Host.
 */
export function owaRedirectHosts(index: EstateIndex): ReadonlySet<string> {
  const hosts = new Set<string>();
  for (const ns of index.estate.namespaces) hosts.add(ns.host.toLowerCase());
  for (const site of index.estate.sites)
    for (const s of site.servers)
      for (const u of [s.urls.owa?.internal, s.urls.owa?.external])
        if (u !== undefined && URL.canParse(u)) hosts.add(new URL(u).host);
  return hosts;
}

/** The sets above, computed once per estate and server (the index is a readonly snapshot). */
const memo = new WeakMap<
  Server,
  { index: EstateIndex; served: ReadonlySet<string>; owa: ReadonlySet<string> }
>();

function hostSets(
  index: EstateIndex,
  server: Server,
): { served: ReadonlySet<string>; owa: ReadonlySet<string> } {
  let sets = memo.get(server);
  if (sets === undefined || sets.index !== index) {
    sets = { index, served: servedHosts(index, server), owa: owaRedirectHosts(index) };
    memo.set(server, sets);
  }
  return sets;
}

/** `owaRedirectHosts` of the estate, memoised per server. */
export function allowedOwaTargets(index: EstateIndex, server: Server): ReadonlySet<string> {
  return hostSets(index, server).owa;
}

/**
 * Whether this server may answer `req` for the host it names; undefined when it may, else the refusal:
 * `CX_HTTP_MALFORMED` (400) for a second Host header (RFC 9112 §3.2: a server MUST answer 400), and
 * `CX_HTTP_MISDIRECTED` (421, RFC 9110 §15.5.20) for a host this server does not answer for, or one the
 * TLS server name (SNI) does not name: a connection opened for one host serves that host only.
 */
export function hostRefusal(req: IncomingMessage, index: EstateIndex, server: Server): ErrorCode | undefined {
  // Node keeps the first Host and drops the others from `headers`; only the raw list shows them all.
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]?.length === 4 && raw[i]?.toLowerCase() === 'host') seen++;
  if (seen > 1) return 'CX_HTTP_MALFORMED';
  const host = hostOfHeader(req.headers.host ?? '');
  if (host === '' || !hostSets(index, server).served.has(host)) return 'CX_HTTP_MISDIRECTED';
  const sni = (req.socket as Partial<TLSSocket>).servername;
  if (typeof sni === 'string' && sni !== '' && sni.toLowerCase() !== host) return 'CX_HTTP_MISDIRECTED';
  return undefined;
}

/** Methods that change nothing (RFC 9110 §9.2.1): no origin check. */
const safeMethods: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a state-changing request comes from another site (login CSRF and its kin): `Sec-Fetch-Site:
 * cross-site`, or an `Origin` that is not this request's own (`null` included: an opaque origin is
 * another one). Absent headers pass: non-browser clients send neither, and browsers send `Origin` on
 * every POST (docs/security.md "Trust per request").
 */
export function crossSiteRequest(head: RequestHead): boolean {
  if (safeMethods.has(head.method)) return false;
  const site = head.headers['sec-fetch-site'];
  if (site !== undefined && site.trim().toLowerCase() === 'cross-site') return true;
  const origin = head.headers['origin'];
  if (origin === undefined) return false;
  if (!URL.canParse(origin)) return true;
  const o = new URL(origin);
  if (o.protocol !== 'https:' && o.protocol !== 'http:') return true;
  // The same origin: the host and port the browser used for this request (its Host header). URL drops a
  // default port, so a Host naming the default port explicitly is the same origin.
  const port = portOfHeader(head.host);
  const samePort = port === o.port || (o.port === '' && port === (o.protocol === 'https:' ? '443' : '80'));
  return !(samePort && hostOfUrl(origin) === hostOfHeader(head.host));
}

/** The port of a Host header ('' when it names none). */
function portOfHeader(host: string): string {
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : 0;
  const colon = host.indexOf(':', end);
  if (colon < 0 || (end === 0 && host.indexOf(':', colon + 1) >= 0)) return '';
  return host.slice(colon + 1);
}
