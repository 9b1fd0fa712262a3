/**
 * OAB (`/OAB/<OAB GUID>/oab.xml` and its files): the path names an address book, not a user; it is routed
 * to a server holding that OAB's organization mailbox (docs/protocols.md §2.2 OAB row, §3 OAB row).
 */
import { basicUser } from './basic-auth.ts';
import type { ProtocolModule } from './request-head.ts';
import { invalid, isInvalid, parseGuid, underPath } from './request-head.ts';

/** OAB: the GUID of the first path segment under `/OAB/`, plus the Basic user. */
export const oab: ProtocolModule = {
  protocol: 'oab',
  matches: (head) => underPath(head.path, '/oab'),
  identify(head) {
    const basic = basicUser(head);
    if (isInvalid(basic)) return basic;
    const guid = parseGuid(head.path.split('/')[2] ?? '');
    if (!guid) return invalid('CX_IDENTITY_PATH_MALFORMED', 'the OAB path does not start with /OAB/<guid>/');
    return { kind: 'oab', guid, ...(basic === undefined ? {} : { basicUser: basic }) };
  },
};
