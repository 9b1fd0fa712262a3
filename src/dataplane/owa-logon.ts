/**
 * OWA's own forms logon at this server (docs/protocols.md §4.9): the logon page, the logon POST that starts a
 * session holding the credential, logoff, and a session cookie turned back into the user's credentials for
 * the next hop. The session store, cookies and the page itself are owa-session.ts's.
 */
import type { Identity } from '../core/protocols/request-head.ts';
import { logonPaths } from '../core/protocols/owa.ts';
import { cookieValue } from '../core/protocols/request-head.ts';
import type { ServerContext } from './contracts.ts';
import type { InFlight } from './in-flight.ts';
import type { OwaSession } from './owa-session.ts';
import {
  logonPage,
  logonPageHeaders,
  logonUrl,
  owaLogon as logonWith,
  safeDestination,
} from './owa-session.ts';
import { refuse, send } from './reply.ts';
import { signIn } from './sign-in.ts';
import { allowedOwaTargets } from './request-trust.ts';

/** Answer the logon page, a logon POST or logoff; false when the request is none of them. */
export async function answerOwaLogon(ctx: ServerContext, flight: InFlight): Promise<boolean> {
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
  if (method === 'GET' && path === '/owa/auth/logoff.aspx') {
    logoff(ctx, flight);
    return true;
  }
  return false;
}

/**
 * The session a cookie names, if it is valid; then the request carries the user's credentials to the next
 * hop instead of coexist's cookie (docs/protocols.md §5.3).
 */
export function presentSession(
  ctx: ServerContext,
  flight: InFlight,
  id: Extract<Identity, { kind: 'session-cookie' }>,
): OwaSession | undefined {
  const session = ctx.sessions.verify(id.value);
  if (!session) return undefined;
  flight.req.headers.authorization = session.authorization;
  flight.req.headers.cookie = withoutCookie(flight.req.headers.cookie, id.cookie);
  return session;
}

/** 302 to the logon page, coming back to the URL asked for. */
export function redirectToLogon(flight: InFlight): void {
  const { head } = flight;
  const destination = `https://${head.host}${head.path}${head.query === '' ? '' : `?${head.query}`}`;
  const location = logonUrl(destination);
  send(flight, 302, { location, 'cache-control': 'no-store', 'content-length': '0' });
  flight.record.outcome = 'redirected';
}

function answerLogonPage(ctx: ServerContext, flight: InFlight): void {
  const params = new URLSearchParams(flight.head.query);
  // The pipeline has checked that the Host is one this server answers for (request-trust.ts); the page's
  // own destination stays on it, so the CSP below (its own host) holds.
  const fallback = `https://${flight.head.host}/owa/`;
  const allowed = new Set([flight.head.host.toLowerCase()]);
  const destination = safeDestination(params.get('url') ?? undefined, allowed, fallback);
  const reason = Number(params.get('reason') ?? '0');
  // Each version posts its form where its own OWA expects it (docs/protocols.md §4.9).
  const action = ctx.server.version === 2007 ? '/owa/auth/owaauth.dll' : '/owa/auth.owa';
  const html = logonPage({ action, destination, reason: Number.isFinite(reason) ? reason : 0 });
  const body = Buffer.from(html);
  send(flight, 200, { ...logonPageHeaders(allowed), 'content-length': String(body.length) }, body);
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

/** Logoff ends the session here (the credential it held is dropped) and clears the cookie. */
function logoff(ctx: ServerContext, flight: InFlight): void {
  ctx.sessions.destroy(cookieValue(flight.head, ctx.sessions.cookieName));
  send(flight, 302, {
    location: logonUrl(`https://${flight.head.host}/owa/`),
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
