/**
 * An Estate compiled once into lookup maps, so that routing never scans lists.
 * Keys are lower-cased: host names and addresses are case-insensitive.
 */
import type { Estate, Namespace, NamespaceKind, Server, Site, User, VersionFamily } from './estate.ts';
import { familyOf } from './estate.ts';
import type { Protocol } from '../protocols/protocol.ts';
import { protocols } from '../protocols/protocol.ts';

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
   * (a site is internet-facing for a protocol when any of its CAS has one, docs/protocols.md §1), else one
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

const families: readonly VersionFamily[] = [2007, 2010, 'modern'];

/** Per site and version family: its CAS and mailbox servers, and the CAS serving each protocol. */
interface SiteServers {
  readonly cas: Server[];
  readonly mbx: Server[];
  readonly serving: Partial<Record<Protocol, Server>>;
}

/** Work the loader has already done and the index may reuse. */
export interface IndexHints {
  /** Every user identity, lower-cased, -> the user's position in `estate.users` (unique: the loader checked). */
  readonly identities?: ReadonlyMap<string, number>;
}

/** Compile an estate into an index. The estate must have passed the loader's checks (references resolve). */
export function indexEstate(estate: Estate, hints: IndexHints = {}): EstateIndex {
  const servers = new Map<string, Server>();
  const sites = new Map<string, Site>();
  const hosts = new Map<string, Server>();
  const namespaces = new Map<string, Namespace>();
  const byKind = new Map<NamespaceKind, Namespace>();
  // Keyed by the exact site name and by its lower-case form, so the usual lookup (a Site's own name) needs one get.
  const bySite = new Map<string, Map<VersionFamily, SiteServers>>();
  const mailboxes: (Mailbox | undefined)[] = new Array<Mailbox | undefined>(estate.users.length);

  for (const site of estate.sites) {
    sites.set(key(site.name), site);
    const perFamily = new Map<VersionFamily, SiteServers>(
      families.map((f) => [f, { cas: [], mbx: [], serving: {} }]),
    );
    bySite.set(site.name, perFamily);
    bySite.set(key(site.name), perFamily);
    for (const server of site.servers) {
      servers.set(key(server.name), server);
      hosts.set(key(server.fqdn), server);
      const group = perFamily.get(familyOf(server.version)) as SiteServers;
      if (server.roles.includes('cas')) group.cas.push(server);
      if (server.roles.includes('mailbox')) group.mbx.push(server);
    }
    // docs/protocols.md §1: a site is internet-facing for a protocol when any of its CAS has an external URL.
    for (const group of perFamily.values()) {
      for (const p of protocols) {
        const pick =
          group.cas.find((s) => s.urls[p]?.external) ??
          group.cas.find((s) => s.urls[p]?.internal) ??
          group.cas[0];
        if (pick) group.serving[p] = pick;
      }
    }
  }
  for (const ns of estate.namespaces) {
    namespaces.set(key(ns.host), ns);
    if (!byKind.has(ns.kind)) byKind.set(ns.kind, ns);
    const target = servers.get(key(ns.server));
    if (target) hosts.set(key(ns.host), target);
  }
  const users = estate.users;
  for (let i = 0; i < users.length; i++) {
    const user = users[i] as User;
    const server = servers.get(key(user.mailboxServer));
    const site = server && sites.get(key(server.site));
    if (server && site) {
      mailboxes[i] = {
        address: user.address,
        displayName: user.displayName,
        server,
        site,
        family: familyOf(server.version),
        user,
      };
    }
  }
  const byIdentity = hints.identities ?? identitiesOf(users);

  const none: readonly Server[] = [];
  const group = (site: string, family: VersionFamily): SiteServers | undefined =>
    (bySite.get(site) ?? bySite.get(key(site)))?.get(family);
  const mailbox = (identity: string): Mailbox | undefined => {
    const i = byIdentity.get(identity) ?? byIdentity.get(key(identity));
    return i === undefined ? undefined : mailboxes[i];
  };

  return {
    estate,
    server: (name) => servers.get(key(name)),
    site: (name) => sites.get(key(name)),
    serverForHost: (host) => hosts.get(key(host)),
    namespace: (host) => namespaces.get(key(host)),
    namespaceOfKind: (kind) => byKind.get(kind),
    casIn: (site, family) => group(site, family)?.cas ?? none,
    casFor: (site, family, p) => group(site, family)?.serving[p],
    mailboxServersIn: (site, family) => group(site, family)?.mbx ?? none,
    user: (identity) => mailbox(identity)?.user,
    mailbox,
  };
}

/** Address, aliases, UPN and login of every user, lower-cased, -> the user's position. */
function identitiesOf(users: readonly User[]): Map<string, number> {
  const ids = new Map<string, number>();
  for (let i = 0; i < users.length; i++) {
    const user = users[i] as User;
    ids.set(key(user.address), i);
    for (const alias of user.aliases) ids.set(key(alias), i);
    if (user.upn !== undefined) ids.set(key(user.upn), i);
    if (user.login !== undefined) ids.set(key(user.login), i);
  }
  return ids;
}
