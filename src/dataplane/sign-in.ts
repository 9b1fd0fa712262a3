/**
 * A password check as the front door makes it: the extranet smart lockout first (lockout.ts; docs/security.md
 * "Extranet smart lockout"), then the directory, then the outcome counted. Used by the Basic path of the
 * pipeline and by OWA's logon POST, so both brake guessing the same way.
 */
import type { Mailbox } from '../core/estate/estate-index.ts';
import { clientAddressOf } from '../net/proxy-protocol.ts';
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
  const attempt = await ctx.lockout?.check(ctx.index.mailbox(login)?.address ?? login, sourceAddress(flight));
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
  // The TCP peer (not X-Forwarded-For): the edge admits connections by it (edge-limits.ts KnownSources).
  ctx.knownSources?.add(clientAddressOf(flight.req.socket));
  if (attempt) await ctx.lockout?.succeeded(attempt);
  return caller;
}

/**
 * The lockout's source: the client's address by the one rule the client's location uses too (peer-trust.ts
 * `clientAddress`): the TCP peer, or behind a proven server or a listed load balancer the right-most
 * `X-Forwarded-For` entry that no trusted peer added about another; a client's own entries are never believed.
 */
export function sourceAddress(flight: InFlight): string {
  return flight.clientAddress ?? 'unknown';
}
