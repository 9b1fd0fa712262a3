/**
 * EWS impersonation at the mailbox role (docs/security.md "Mailbox access"): whether the authenticated
 * caller may act as the mailbox an `ExchangeImpersonation` header names. The mailbox store reads the
 * header (it parses the SOAP body); this decides, in the data plane, and the pipeline records the verdict
 * on the access line. Exchange's rules: the caller must hold the ApplicationImpersonation role (else
 * ErrorImpersonationDenied, whoever is named, so a caller without the role learns nothing of the
 * directory); the mailbox named must exist (ErrorNonExistentMailbox) and be in the role's scope
 * (ErrorImpersonateUserDenied). Exchange 2013 routes on `X-AnchorMailbox` (docs/protocols.md §3), so the
 * mailbox named must also be the one the request was routed to: it is the only mailbox this server was
 * asked to serve.
 */
import type { Mailbox } from '../core/estate/estate-index.ts';
import type { Directory } from '../directory/directory.ts';
import { DirectoryUnavailableError, holdsImpersonationRole, mayImpersonate } from '../directory/directory.ts';
import type { ConnectingSid, ImpersonationVerdict } from './contracts.ts';

/**
 * The verdict on `caller` impersonating `target` on a request routed to `routed`. A `SID` names no one:
 * the directories here hold no security identifiers, so it is answered as an unknown mailbox.
 */
export async function decideImpersonation(
  directory: Directory,
  caller: Mailbox,
  routed: Mailbox,
  target: ConnectingSid,
): Promise<ImpersonationVerdict> {
  if (!holdsImpersonationRole(caller)) return { kind: 'no-role' };
  const identity = target.value.trim();
  if (target.kind === 'SID' || identity === '') return { kind: 'unknown' };
  let found: Mailbox | undefined;
  try {
    found = await directory.findMailbox(identity);
  } catch (err) {
    if (err instanceof DirectoryUnavailableError) return { kind: 'unavailable' };
    throw err;
  }
  if (found === undefined) return { kind: 'unknown' };
  if (!mayImpersonate(caller, found)) return { kind: 'out-of-scope' };
  if (found.address.toLowerCase() !== routed.address.toLowerCase()) return { kind: 'not-anchor' };
  return { kind: 'allowed', mailbox: { address: found.address, displayName: found.displayName } };
}
