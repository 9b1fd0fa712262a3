/**
 * An Estate compiled once into lookup maps, so that routing never scans lists.
 * Keys are lower-cased: host names and addresses are case-insensitive.
 */
import type { Estate, Namespace, NamespaceKind, Server, Site, User, VersionFamily } from './estate.ts';
import { familyOf } from './estate.ts';
import type { Protocol } from '../protocols/protocol.ts';

/** Where a mailbox lives: what the directory answers and what the engine routes on. */
export interface Mailbox {
  readonly address: string;
  readonly displayName: string;
  readonly server: Server;
  readonly site: Site;
  readonly family: VersionFamily;
  readonly user: User;
}

export interface EstateIndex {
  readonly estate: Estate;
  server(name: string): Server | undefined;
  site(name: string): Site | undefined;
  /** The server a host name reaches: a namespace, or a server's own FQDN. */
  serverForHost(host: string): Server | undefined;
  namespace(host: string): Namespace | undefined;
  namespaceOfKind(kind: NamespaceKind): Namespace | undefined;
  /** Client Access servers of one version family in one site, in file order. */
  casIn(site: string, family: VersionFamily): readonly Server[];
  /**
   * The CAS that serves a protocol for a site and version family: one with an external URL for it if any
   * (a site is internet-facing for a protocol when any of its CAS has one, protocol-facts §1), else one
   * with an internal URL, else the first CAS.
   */
  casFor(site: string, family: VersionFamily, protocol: Protocol): Server | undefined;
  /** Mailbox-role servers of one version family in one site, in file order. */
  mailboxServersIn(site: string, family: VersionFamily): readonly Server[];
  /** A user by primary or secondary SMTP address, UPN or down-level login. */
  user(identity: string): User | undefined;
  /** The mailbox of a user, with its server and site resolved. */
  mailbox(identity: string): Mailbox | undefined;
}

const key = (s: string): string => s.toLowerCase();

/** Compile an estate into an index. The estate must have passed the loader's checks (references resolve). */
export function indexEstate(estate: Estate): EstateIndex {
  const servers = new Map<string, Server>();
  const sites = new Map<string, Site>();
  const hosts = new Map<string, Server>();
  const namespaces = new Map<string, Namespace>();
  const byKind = new Map<NamespaceKind, Namespace>();
  const cas = new Map<string, Server[]>();
  const mbx = new Map<string, Server[]>();
  const users = new Map<string, User>();
  const mailboxes = new Map<User, Mailbox>();

  const push = (m: Map<string, Server[]>, k: string, s: Server): void => {
    const list = m.get(k);
    if (list) list.push(s);
    else m.set(k, [s]);
  };

  for (const site of estate.sites) {
    sites.set(key(site.name), site);
    for (const server of site.servers) {
      servers.set(key(server.name), server);
      hosts.set(key(server.fqdn), server);
      const k = `${key(site.name)}|${familyOf(server.version)}`;
      if (server.roles.includes('cas')) push(cas, k, server);
      if (server.roles.includes('mailbox')) push(mbx, k, server);
    }
  }
  for (const ns of estate.namespaces) {
    namespaces.set(key(ns.host), ns);
    if (!byKind.has(ns.kind)) byKind.set(ns.kind, ns);
    const target = servers.get(key(ns.server));
    if (target) hosts.set(key(ns.host), target);
  }
  for (const user of estate.users) {
    for (const id of [user.address, ...user.aliases, user.upn, user.login]) {
      if (id !== undefined) users.set(key(id), user);
    }
  }

  const none: readonly Server[] = [];
  const serving = new Map<string, Server | undefined>();
  const casFor = (site: string, family: VersionFamily, p: Protocol): Server | undefined => {
    const k = `${key(site)}|${family}|${p}`;
    if (serving.has(k)) return serving.get(k);
    const list = cas.get(`${key(site)}|${family}`) ?? none;
    const pick = list.find((s) => s.urls[p]?.external) ?? list.find((s) => s.urls[p]?.internal) ?? list[0];
    serving.set(k, pick);
    return pick;
  };
  const mailboxOf = (user: User): Mailbox | undefined => {
    let m = mailboxes.get(user);
    if (m) return m;
    const server = servers.get(key(user.mailboxServer));
    const site = server && sites.get(key(server.site));
    if (!server || !site) return undefined;
    m = {
      address: user.address,
      displayName: user.displayName,
      server,
      site,
      family: familyOf(server.version),
      user,
    };
    mailboxes.set(user, m);
    return m;
  };

  return {
    estate,
    server: (name) => servers.get(key(name)),
    site: (name) => sites.get(key(name)),
    serverForHost: (host) => hosts.get(key(host)),
    namespace: (host) => namespaces.get(key(host)),
    namespaceOfKind: (kind) => byKind.get(kind),
    casIn: (site, family) => cas.get(`${key(site)}|${family}`) ?? none,
    casFor,
    mailboxServersIn: (site, family) => mbx.get(`${key(site)}|${family}`) ?? none,
    user: (identity) => users.get(key(identity)),
    mailbox: (identity) => {
      const user = users.get(key(identity));
      return user && mailboxOf(user);
    },
  };
}
