/**
 * A password check as the front door makes it: the extranet smart lockout first (lockout.ts; docs/security.md
 * "Extranet smart lockout"), then the directory, then the outcome counted. Used by the Basic path of the
 * pipeline and by OWA's logon POST, so both brake guessing the same way.
 */
import type { Mailbox } from '../core/estate/estate-index.ts';
import type { ServerContext } from './contracts.ts';
import type { InFlight } from './in-flight.ts';

/**
 * The mailbox whose password this is, or undefined for a wrong password, an unknown user, or an attempt the
 * lockout refused without asking the directory (then `record.auth` is `locked`). A directory failure
 * rejects, and is not counted as a failed sign-in: the password may well be right.
 */
export async function signIn(
  ctx: ServerContext,
  flight: InFlight,
  login: string,
  password: string,
): Promise<Mailbox | undefined> {
  const { record } = flight;
  // The account as the estate knows it when it does (a map lookup, no directory question), so the address,
  // UPN and DOMAIN\user of one user share a counter; else the login as typed, lower-cased (lockout.ts).
  const attempt = await ctx.lockout?.check(
    ctx.index.mailbox(login)?.address ?? login,
    sourceAddress(ctx, flight),
  );
  if (attempt?.refused !== undefined) {
    record.auth = 'locked';
    return undefined;
  }
  let caller: Mailbox | undefined;
  try {
    caller = await ctx.directory.authenticate(login, password);
  } catch (err) {
    record.auth = 'error';
    throw err;
  }
  if (!caller) {
    record.auth = 'bad_credentials';
    if (attempt) await ctx.lockout?.failed(attempt);
    return undefined;
  }
  record.auth = 'ok';
  if (attempt) await ctx.lockout?.succeeded(attempt);
  return caller;
}

/**
 * The client's address as this server sees it: the TCP peer, or behind trusted peers (another server of
 * the estate, a load balancer) the right-most `X-Forwarded-For` entry that is not one of them, since every
 * entry left of the first untrusted one could have been written by the client.
 */
export function sourceAddress(ctx: ServerContext, flight: InFlight): string {
  const peer = flight.req.socket.remoteAddress ?? 'unknown';
  const xff = flight.req.headers['x-forwarded-for'];
  if (!flight.trustedPeer || typeof xff !== 'string') return peer;
  const entries = xff.split(',');
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = (entries[i] as string).trim();
    if (entry === '') continue;
    if (i === 0 || ctx.trustedProxies?.has(entry) !== true) return entry;
  }
  return peer;
}
