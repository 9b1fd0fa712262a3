/**
 * Turn a validated estate file into the core's Estate: resolve databases to servers, fill defaults.
 * Runs after `checkEstate` found no problem, so every reference resolves here.
 */
import type { Estate, Server, Site, User } from '../core/estate/estate.ts';
import { defaultPolicies } from '../core/estate/estate.ts';
import type { EstateFile } from './estate-schema.ts';

export function toEstate(file: EstateFile): Estate {
  // References are case-insensitive in the file; the Estate always carries the names as declared.
  const serverOfDatabase = new Map<string, string>();
  const declared = new Map<string, string>();
  const sites: Site[] = file.sites.map((site) => ({
    name: site.name,
    internetFacing: site.internetFacing,
    servers: site.servers.map((s): Server => {
      declared.set(s.name.toLowerCase(), s.name);
      for (const db of s.databases ?? []) serverOfDatabase.set(db.toLowerCase(), s.name);
      return {
        name: s.name,
        fqdn: s.fqdn.toLowerCase(),
        version: s.version,
        roles: s.roles,
        site: site.name,
        urls: s.urls ?? {},
        databases: s.databases ?? [],
        ...(s.authentication !== undefined && { authentication: s.authentication }),
      };
    }),
  }));
  // Grants (and impersonation scopes) name users by any of their identities; the Estate carries primary
  // addresses (checkEstate made sure each names a user).
  const primary = new Map<string, string>();
  for (const u of file.users) {
    for (const id of [u.address, ...(u.aliases ?? []), u.login, u.upn])
      if (id !== undefined) primary.set(id.toLowerCase(), u.address);
  }
  const trustees = (list: readonly string[] | undefined): string[] => [
    ...new Set((list ?? []).map((t) => primary.get(t.toLowerCase()) ?? t)),
  ];
  const users = file.users.map((u): User => {
    const server = u.mailbox.server
      ? (declared.get(u.mailbox.server.toLowerCase()) ?? u.mailbox.server)
      : (serverOfDatabase.get((u.mailbox.database ?? '').toLowerCase()) ?? '');
    return {
      address: u.address,
      displayName: u.displayName ?? u.address.slice(0, u.address.indexOf('@')),
      aliases: u.aliases ?? [],
      mailboxServer: server,
      ...(u.login !== undefined && { login: u.login }),
      ...(u.upn !== undefined && { upn: u.upn }),
      ...(u.mailbox.database !== undefined && { database: u.mailbox.database }),
      ...(u.password !== undefined && { passwordHash: u.password }),
      ...(u.fullAccess !== undefined && { fullAccess: trustees(u.fullAccess) }),
      ...(u.delegates !== undefined && { delegates: trustees(u.delegates) }),
      ...(u.applicationImpersonation !== undefined && {
        impersonation: u.applicationImpersonation === 'all' ? 'all' : trustees(u.applicationImpersonation),
      }),
    };
  });
  return {
    name: file.name,
    organization: file.organization,
    domains: file.domains,
    namespaces: file.namespaces.map((n) => ({
      host: n.host.toLowerCase(),
      kind: n.kind,
      server: declared.get(n.server.toLowerCase()) ?? n.server,
    })),
    sites,
    users,
    policies: { ...defaultPolicies, ...file.policies },
    internalNetworks: file.internalNetworks ?? [],
    remoteDomains: (file.remoteDomains ?? []).map((d) => ({
      domain: d.domain.toLowerCase(),
      redirect:
        d.autodiscoverUrl !== undefined
          ? { kind: 'url' as const, url: d.autodiscoverUrl }
          : { kind: 'address' as const, domain: (d.addressDomain ?? '').toLowerCase() },
    })),
  };
}
