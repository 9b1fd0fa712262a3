/**
 * EWS (`/EWS/Exchange.asmx` and the other files of the vdir): `X-AnchorMailbox` first, else the Basic user
 * (docs/protocols.md §3, §4.6). The body-borne anchors (`ExchangeImpersonation/ConnectingSID`, an explicit
 * `Mailbox`) are not read: clients using impersonation must send `X-AnchorMailbox` (§3 EWS row).
 */
import { basicUser } from './basic-auth.ts';
import type { Identity, ProtocolModule, RequestHead } from './request-head.ts';
import { invalid, isInvalid, isSmtpAddress, underPath } from './request-head.ts';

/** The EWS identity of a request (also used by clients that send `X-AnchorMailbox` elsewhere). */
export function anchoredIdentity(head: RequestHead): Identity {
  const basic = basicUser(head);
  if (isInvalid(basic)) return basic;
  const withBasic = basic === undefined ? {} : { basicUser: basic };
  const anchor = head.headers['x-anchormailbox']?.trim();
  if (anchor) {
    if (!isSmtpAddress(anchor))
      return invalid('CX_IDENTITY_ADDRESS', 'X-AnchorMailbox is not an SMTP address');
    return { kind: 'user', user: anchor, source: 'anchor-header', ...withBasic };
  }
  if (basic !== undefined) return { kind: 'user', user: basic, source: 'basic-auth', ...withBasic };
  return { kind: 'anonymous' };
}

/** EWS: anchor header, else the Basic user. */
export const ews: ProtocolModule = {
  protocol: 'ews',
  matches: (head) => underPath(head.path, '/ews'),
  identify: (head) => anchoredIdentity(head),
};
