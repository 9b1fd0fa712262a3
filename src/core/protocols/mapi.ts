/**
 * MAPI over HTTP (`/mapi/emsmdb/` mailbox endpoint, `/mapi/nspi/` address book): the mailbox is the
 * `MailboxId=<mailbox GUID>@<domain>` of the query that Autodiscover handed out (docs/protocols.md §3, §4.8).
 * Session cookies (`MapiContext`, `MapiSequence`) pin later requests in the data plane, not here.
 */
import { basicUser } from './basic-auth.ts';
import type { ProtocolModule } from './request-head.ts';
import { invalid, isInvalid, parseGuidAtDomain, parseQuery, single, underPath } from './request-head.ts';

/** MAPI/HTTP: `MailboxId`, else the Basic user. */
export const mapi: ProtocolModule = {
  protocol: 'mapi',
  matches: (head) => underPath(head.path, '/mapi/emsmdb') || underPath(head.path, '/mapi/nspi'),
  identify(head) {
    const basic = basicUser(head);
    if (isInvalid(basic)) return basic;
    const withBasic = basic === undefined ? {} : { basicUser: basic };
    const q = parseQuery(head.query);
    if (!q) return invalid('CX_IDENTITY_MAILBOX_ID', 'query has a malformed percent escape');
    const id = single(q, 'MailboxId', 'CX_IDENTITY_MAILBOX_ID');
    if (isInvalid(id)) return id;
    if (id !== undefined) {
      const m = parseGuidAtDomain(id);
      if (!m) return invalid('CX_IDENTITY_MAILBOX_ID', 'MailboxId is not <guid>@<domain>');
      return { kind: 'mailbox-guid', ...m, source: 'mailbox-id', ...withBasic };
    }
    if (basic !== undefined) return { kind: 'user', user: basic, source: 'basic-auth', basicUser: basic };
    return { kind: 'anonymous' };
  },
};
