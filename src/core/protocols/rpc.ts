/**
 * Outlook Anywhere (`/rpc/rpcproxy.dll?<RPC server>:<port>`, docs/protocols.md §3, §4.7): 2013+ names the
 * mailbox as `<mailbox GUID>@<domain>`; 2007/2010 name the mailbox server FQDN or CAS array. Ports 6001
 * (store), 6002 (directory referral) and 6004 (NSPI/DSProxy) only.
 */
import { basicUser } from './basic-auth.ts';
import type { Identity, ProtocolModule } from './request-head.ts';
import {
  invalid,
  isHostName,
  isInvalid,
  parseGuidAtDomain,
  percentDecode,
  underPath,
} from './request-head.ts';

/** The RPC endpoints Exchange exposes through the RPC proxy (§4.7). */
export const rpcPorts: readonly number[] = [6001, 6002, 6004];

/** Outlook Anywhere: the RPC target of the query, plus the Basic user. */
export const rpc: ProtocolModule = {
  protocol: 'rpc',
  matches: (head) => underPath(head.path, '/rpc/rpcproxy.dll'),
  identify(head): Identity {
    const basic = basicUser(head);
    if (isInvalid(basic)) return basic;
    const withBasic = basic === undefined ? {} : { basicUser: basic };
    if (head.query === '') {
      // No target: a probe of the proxy itself; the credentials are all there is.
      return basic === undefined
        ? { kind: 'anonymous' }
        : { kind: 'user', user: basic, source: 'basic-auth', ...withBasic };
    }
    const target = percentDecode(head.query, false);
    const colon = target?.lastIndexOf(':') ?? -1;
    if (target === undefined || colon < 0 || !/^\d{1,5}$/.test(target.slice(colon + 1)))
      return invalid('CX_IDENTITY_QUERY_MALFORMED', 'the RPC proxy query is not <server>:<port>');
    const port = Number(target.slice(colon + 1));
    if (!rpcPorts.includes(port))
      return invalid('CX_IDENTITY_RPC_PORT', `port ${port} is not 6001, 6002 or 6004`);
    const server = target.slice(0, colon);
    if (server.includes('@')) {
      const m = parseGuidAtDomain(server);
      if (!m) return invalid('CX_IDENTITY_QUERY_MALFORMED', 'the RPC server is not <mailbox guid>@<domain>');
      return { kind: 'mailbox-guid', ...m, source: 'rpc-server', port, ...withBasic };
    }
    if (!isHostName(server))
      return invalid('CX_IDENTITY_QUERY_MALFORMED', 'the RPC server is not a host name');
    return { kind: 'server', server: server.toLowerCase(), port, ...withBasic };
  },
};
