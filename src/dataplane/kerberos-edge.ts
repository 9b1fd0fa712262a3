/**
 * Kerberos at the edge (docs/security.md "Windows authentication", Kerberos). A Kerberos ticket is for the
 * service principal of the name the client called (`HTTP/mail.<domain>`) and is sealed with that principal's
 * key: it cannot be replayed to a next hop under another name. Exchange 2013+ answers with an alternate service
 * account shared by the front ends, which accept the ticket themselves and talk to the mailbox server under their
 * own identity; coexist does the same with the ASA's keytab (`ServerContext.kerberos`, `coexist serve --keytab`):
 *
 * - where the request's next hop is coexist itself (its 2013+ mailbox role, reached `via: backend`, or this
 *   server answering), the ticket is accepted here, the connection is the caller's from then on, and the caller
 *   goes to the mailbox role in `X-Coexist-Caller`, believed only from a proven server of the estate;
 * - where the next hop is a 2007/2010 CAS, nothing verified here can be handed over (a legacy CAS knows no
 *   `X-Coexist-Caller`, and has its own SPNs in Exchange's design): 401 offering NTLM and Basic but not
 *   Negotiate, so a Windows client falls back to NTLM, which is passed through as ever
 *   (CX_AUTH_KERBEROS_NOT_FORWARDABLE).
 *
 * Without a keytab a Kerberos token is passed through unchanged (windows-auth.ts), which works only where the
 * next hop holds the same service principal.
 */
import type { Mailbox } from '../core/estate/estate-index.ts';
import type { Decision } from '../core/routing/decision.ts';
import { clientAddressOf } from '../net/proxy-protocol.ts';
import type { ServerContext } from './contracts.ts';
import type { InFlight } from './in-flight.ts';
import { sourceAddress } from './sign-in.ts';
import {
  authUnavailable,
  connectionAccount,
  offerChallenges,
  offeredMethods,
  setKerberosAccount,
  windowsRequestOf,
} from './windows-auth.ts';

/**
 * Does this server take the request's Kerberos itself: it has a keytab, and the request carries a Kerberos
 * token or rides a connection this server verified from one.
 */
export function kerberosAtEdge(ctx: ServerContext, flight: InFlight): boolean {
  if (ctx.kerberos === undefined) return false;
  const w = windowsRequestOf(flight);
  if (w === undefined) return false;
  if (w.token !== undefined) return w.token.mechanism === 'kerberos';
  return connectionAccount(flight)?.kerberos === true;
}

/**
 * The mailbox of a Kerberos client principal `name@REALM`: AD names a user's principal by its sAMAccountName in
 * the domain's realm, which is also its UPN by default; so the principal is looked up as a UPN, then as
 * `<REALM's first label>\<name>` (AD's default NetBIOS name: `alice@O365INFO.LOCAL` is `O365INFO\alice`).
 */
async function findPrincipal(ctx: ServerContext, principal: string): Promise<Mailbox | undefined> {
  const byUpn = await ctx.directory.findMailbox(principal);
  if (byUpn) return byUpn;
  const at = principal.lastIndexOf('@');
  const netbios = principal.slice(at + 1).split('.')[0] ?? '';
  return at > 0 && netbios !== ''
    ? ctx.directory.findMailbox(`${netbios}\\${principal.slice(0, at)}`)
    : undefined;
}

/** Whether the decision's next hop is coexist itself: a 2013+ mailbox role, or this server. */
const nextHopIsCoexist = (d: Decision): boolean => d.kind !== 'proxy' || d.via === 'backend';

/**
 * Accept the ticket (or take the connection's verified caller), decide with the caller known (`decideFor`), and
 * go on (`go`) where the next hop is coexist; else 401 offering NTLM and Basic. A refused ticket gets 401 with
 * every method offered (CX_AUTH_FAILED); an acceptor that cannot be asked, 503.
 */
export async function terminateKerberos(
  ctx: ServerContext,
  flight: InFlight,
  decideFor: (caller: Mailbox) => { readonly decision: Decision; readonly mailbox: Mailbox | undefined },
  go: (decision: Decision, mailbox: Mailbox | undefined, caller: Mailbox) => Promise<void>,
): Promise<void> {
  const record = flight.record as { auth?: string; user?: string; decision?: string };
  const acceptor = ctx.kerberos;
  const w = windowsRequestOf(flight);
  if (!acceptor || !w) {
    offerChallenges(flight, ctx, 'CX_AUTH_REQUIRED');
    return;
  }
  const known = connectionAccount(flight);
  let caller: Mailbox;
  let login: string;
  let reply: Buffer | undefined;
  if (w.token === undefined && known?.kerberos === true) {
    caller = known.mailbox;
    login = known.mailbox.address;
  } else {
    const header = flight.req.headers.authorization ?? '';
    const token = Buffer.from(header.trim().replace(/^negotiate\s+/i, ''), 'base64');
    const handshake = acceptor.begin();
    let step: Awaited<ReturnType<ReturnType<typeof acceptor.begin>['step']>>;
    try {
      step = await handshake.step(token);
    } catch (err) {
      authUnavailable(ctx, flight, err, 'kerberos acceptor unavailable');
      return;
    } finally {
      handshake.close();
    }
    if (step.kind !== 'done') {
      // What was wrong in the acceptor's words is not logged (it may quote the token): a refusal, no reason.
      record.auth = 'bad_credentials';
      offerChallenges(flight, ctx, 'CX_AUTH_FAILED');
      return;
    }
    let found: Mailbox | undefined;
    try {
      found = await findPrincipal(ctx, step.account);
    } catch (err) {
      authUnavailable(ctx, flight, err, 'directory unavailable');
      return;
    }
    // The lockout (docs/security.md "Windows authentication", Kerberos): only a ticket the acceptor opened names
    // its client (an AP-REQ carries the client's name inside its encrypted parts), so only such a ticket counts;
    // keyed as a password logon of the account is, so every method shares one counter.
    const attempt = await ctx.lockout?.check(found?.address ?? step.account, sourceAddress(flight));
    if (attempt?.refused !== undefined) {
      record.auth = 'locked';
      record.user = found?.address ?? step.account;
      offerChallenges(flight, ctx, 'CX_AUTH_FAILED');
      return;
    }
    if (!found) {
      record.auth = 'bad_credentials';
      record.user = step.account;
      if (attempt) await ctx.lockout?.failed(attempt);
      offerChallenges(flight, ctx, 'CX_AUTH_FAILED');
      return;
    }
    if (attempt) await ctx.lockout?.succeeded(attempt);
    caller = found;
    login = step.account;
    reply = step.token;
  }
  record.user = caller.address;
  const { decision, mailbox } = decideFor(caller);
  record.decision = decision.kind;
  if (!nextHopIsCoexist(decision)) {
    // Nothing verified here can be handed to a legacy CAS: NTLM, passed through, instead.
    ctx.logger.info(
      {
        reqId: flight.record.reqId,
        server: ctx.server.name,
        code: 'CX_AUTH_KERBEROS_NOT_FORWARDABLE',
        to: decision.kind === 'proxy' ? decision.to.name : undefined,
      },
      'a Kerberos ticket of the front ends routes to a next hop that is not coexist: NTLM offered instead',
    );
    const fallback = offeredMethods(ctx.server, flight.protocol).filter((m) => m !== 'negotiate');
    offerChallenges(flight, ctx, 'CX_AUTH_KERBEROS_NOT_FORWARDABLE', {}, fallback);
    return;
  }
  record.auth = 'ok';
  if (known?.kerberos !== true || w.token !== undefined) {
    setKerberosAccount(flight, caller, login);
    // As after a Basic sign-in (sign-in.ts): the TCP peer becomes a known source of the edge.
    ctx.knownSources?.add(clientAddressOf(flight.req.socket));
  }
  // RFC 4559 §5: the acceptor's last token (the AP-REP: mutual authentication) goes back with the answer.
  if (reply !== undefined) flight.res.setHeader('www-authenticate', `Negotiate ${reply.toString('base64')}`);
  return go(decision, mailbox, caller);
}
