/**
 * OWA's own forms logon at this server (docs/protocols.md §4.9): the logon page, the logon POST that starts a
 * session (a sealed cookie carrying the credential), logoff, and a session cookie turned back into the
 * user's credentials for the next hop. The sessions, cookies and the page itself are owa-session.ts's; which
 * hosts the page's CSP allows and which a logoff passes through are owa-targets.ts's (docs/security.md "OWA
 * in the browser").
 */
import { hostOfHeader } from '../core/host.ts';
import type { Identity } from '../core/protocols/request-head.ts';
import { logonPaths } from '../core/protocols/owa.ts';
import { cookieValue } from '../core/protocols/request-head.ts';
import type { ServerContext } from './contracts.ts';
import type { InFlight } from './in-flight.ts';
import type { OwaSession, SessionRefusal } from './owa-session.ts';
import {
  logonPage,
  logonPageHeaders,
  logonPagePath,
  logonReason,
  logonReasons,
  logonUrl,
  owaLogon as logonWith,
  safeDestination,
} from './owa-session.ts';
import type { ClientLocation } from './owa-targets.ts';
import { nextLogoffHop, owaRedirectTargets } from './owa-targets.ts';
import { refuse, send } from './reply.ts';
import { signIn } from './sign-in.ts';
import { allowedOwaTargets } from './request-trust.ts';

/** The path of OWA's logoff, on every version (docs/protocols.md §4.9). */
export const logoffPath = '/owa/auth/logoff.aspx';

/**
 * Answer the logon page, a logon POST or logoff; false when the request is none of them. `client` is where
 * the browser is (the pipeline's clientLocation): a logoff goes only through hosts a browser there reaches.
 */
export async function answerOwaLogon(
  ctx: ServerContext,
  flight: InFlight,
  client: ClientLocation,
): Promise<boolean> {
  const { method } = flight.head;
  const path = flight.head.path.toLowerCase();
  if (method === 'GET' && path === '/owa/auth/logon.aspx') {
    answerLogonPage(ctx, flight);
    return true;
  }
  if (method === 'POST' && logonPaths.includes(path)) {
    await logon(ctx, flight);
    return true;
  }
  if (method === 'GET' && path === logoffPath) {
    await logoff(ctx, flight, client);
    return true;
  }
  return false;
}

/**
 * The session a cookie carries, if its seal checks and it is live (owa-session.ts); then the request carries
 * the user's credentials to the next hop instead of coexist's cookie (docs/protocols.md §5.3), and a cookie
 * due for re-sealing (sliding idle expiry) goes back with the answer. A refused cookie gets one log line with
 * the reason, never the cookie's value.
 */
export async function presentSession(
  ctx: ServerContext,
  flight: InFlight,
  id: Extract<Identity, { kind: 'session-cookie' }>,
): Promise<OwaSession | undefined> {
  const check = await ctx.sessions.verify(id.value);
  if (!check.ok) {
    const fields = {
      reqId: flight.record.reqId,
      server: ctx.server.name,
      cookieName: id.cookie,
      reason: check.reason,
    };
    // Expired and logged-off sessions are the normal end of a session; the others are not made by coexist.
    if (ordinaryEnds.has(check.reason)) ctx.logger.info(fields, 'owa session refused');
    else ctx.logger.warn(fields, 'owa session refused');
    return undefined;
  }
  flight.req.headers.authorization = check.session.authorization;
  flight.req.headers.cookie = withoutCookie(flight.req.headers.cookie, id.cookie);
  // Merged into whatever answer this request gets (reply.ts and the proxy's writeHead keep it).
  if (check.setCookie !== undefined) flight.res.setHeader('set-cookie', check.setCookie);
  return check.session;
}

const ordinaryEnds: ReadonlySet<SessionRefusal> = new Set(['expired', 'idle-expired', 'revoked']);

/**
 * 302 to the logon page, coming back to the URL asked for. A URL another server of the estate redirected the
 * browser to (`owaRedirectLocation`'s marker) leads to the logon page that says why it asks again.
 */
export function redirectToLogon(flight: InFlight): void {
  const { head } = flight;
  let query = head.query;
  let reason: number | undefined;
  if (query !== '') {
    const params = new URLSearchParams(query);
    if (logonReason(params.get('reason')) === logonReasons.mailboxHere) {
      reason = logonReasons.mailboxHere;
      params.delete('reason');
      query = params.toString();
    }
  }
  const destination = `https://${head.host}${head.path}${query === '' ? '' : `?${query}`}`;
  const location = logonUrl(destination, reason);
  send(flight, 302, { location, 'cache-control': 'no-store', 'content-length': '0' });
  flight.record.outcome = 'redirected';
}

/**
 * Where an OWA redirect of the estate sends the browser: the decision's URL with the marker that makes the
 * logon page there say why it asks again (`reason=` one of the fixed `logonReasons`; docs/security.md "OWA
 * in the browser"). A server that ignores the parameter shows its usual page.
 */
export function owaRedirectLocation(location: string): string {
  if (!URL.canParse(location)) return location;
  const url = new URL(location);
  url.searchParams.set('reason', String(logonReasons.mailboxHere));
  return url.href;
}

function answerLogonPage(ctx: ServerContext, flight: InFlight): void {
  const params = new URLSearchParams(flight.head.query);
  // The pipeline has checked that the Host is one this server answers for (request-trust.ts); the page's
  // own destination stays on it ('self' in the CSP below).
  const fallback = `https://${flight.head.host}/owa/`;
  const allowed = new Set([flight.head.host.toLowerCase()]);
  const destination = safeDestination(params.get('url') ?? undefined, allowed, fallback);
  // Each version posts its form where its own OWA expects it (docs/protocols.md §4.9).
  const action = ctx.server.version === 2007 ? '/owa/auth/owaauth.dll' : '/owa/auth.owa';
  const html = logonPage({
    action,
    destination,
    // Only a reason of the fixed set shows a message; the host it names is one the estate gives this server.
    reason: logonReason(params.get('reason')),
    server: { host: hostOfHeader(flight.head.host), version: ctx.server.version },
  });
  const body = Buffer.from(html);
  // form-action: this origin and exactly the hosts the estate can redirect a browser to from this server.
  const targets = owaRedirectTargets(ctx.index, ctx.server);
  send(flight, 200, { ...logonPageHeaders(targets), 'content-length': String(body.length) }, body);
  flight.record.outcome = 'answered';
}

/** The logon POST: check the password, start a session holding the credential, go to the destination. */
async function logon(ctx: ServerContext, flight: InFlight): Promise<void> {
  let outcome: Awaited<ReturnType<typeof runLogon>>;
  try {
    outcome = await runLogon(ctx, flight);
  } catch {
    refuse(flight, 'CX_DIRECTORY_UNAVAILABLE', { 'retry-after': String(ctx.retryAfterSeconds ?? 30) });
    return;
  }
  switch (outcome.kind) {
    case 'malformed':
      refuse(flight, 'CX_IDENTITY_BODY_MALFORMED');
      return;
    case 'refused':
      // docs/protocols.md §4.9: a failed logon goes back to the logon page with a reason.
      flight.record.code = 'CX_AUTH_FAILED';
      send(flight, 302, { location: outcome.location, 'cache-control': 'no-store', 'content-length': '0' });
      flight.record.outcome = 'refused';
      return;
    case 'accepted':
      flight.record.user = outcome.user;
      send(flight, 302, {
        location: outcome.location,
        'set-cookie': outcome.setCookie,
        'cache-control': 'no-store',
        'content-length': '0',
      });
      flight.record.outcome = 'answered';
      return;
  }
}

function runLogon(ctx: ServerContext, flight: InFlight): ReturnType<typeof logonWith> {
  return logonWith(flight.body ?? new Uint8Array(), {
    sessions: ctx.sessions,
    // Through the extranet smart lockout (docs/security.md): a locked attempt is a failed logon, unasked.
    authenticate: (login, password) => signIn(ctx, flight, login, password),
    // The estate's OWA hosts, never the request's own Host (docs/security.md "Trust per request").
    allowedHosts: allowedOwaTargets(ctx.index, ctx.server),
    fallback: '/owa/',
    ...previous(cookieValue(flight.head, ctx.sessions.cookieName)),
  });
}

const previous = (cookie: string | undefined): { previousCookie?: string } =>
  cookie === undefined ? {} : { previousCookie: cookie };

/**
 * Logoff revokes the session (the cookie that carries its credential opens nothing any more, on any front
 * end sharing the store) and clears the cookie, then sends the browser on through the logoff of the next
 * host of the estate it may hold a session on, and at the end
 * back to the logon page where it began (owa-targets.ts `nextLogoffHop`; docs/security.md "OWA in the
 * browser"). The `chain` parameter only says where the chain began, and is believed only when it names a
 * host of the estate's group: no host of the request is ever a target.
 */
async function logoff(ctx: ServerContext, flight: InFlight, client: ClientLocation): Promise<void> {
  // Revoked on every front end sharing the store, until the session's absolute expiry (docs/security.md).
  await ctx.sessions.revoke(cookieValue(flight.head, ctx.sessions.cookieName));
  // The Host was checked against the estate (request-trust.ts); URL.host keeps a port other than 443.
  const asked = `https://${flight.head.host}`;
  const here = URL.canParse(asked) ? new URL(asked).host : hostOfHeader(flight.head.host);
  const started = new URLSearchParams(flight.head.query).get('chain') ?? undefined;
  const hop = nextLogoffHop(ctx.index, here, started, client);
  const location =
    'next' in hop
      ? `https://${hop.next}${logoffPath}?chain=${encodeURIComponent(hop.started)}`
      : logonUrl(
          `https://${hop.done}/owa/`,
          logonReasons.signedOut,
          hop.done === here ? logonPagePath : `https://${hop.done}${logonPagePath}`,
        );
  send(flight, 302, {
    location,
    'set-cookie': ctx.sessions.clearCookie(),
    'cache-control': 'no-store',
    'content-length': '0',
  });
  flight.record.outcome = 'answered';
}

/** The Cookie header without one cookie; undefined when nothing is left. */
function withoutCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '' && p.slice(0, p.indexOf('=')).trim() !== name);
  return kept.length === 0 ? undefined : kept.join('; ');
}
