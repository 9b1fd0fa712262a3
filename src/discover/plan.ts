/**
 * From what discovery found to an estate coexist can load: which servers it keeps, the URLs per protocol,
 * the namespaces inferred from the external URLs, databases and users, and everything it could not decide
 * (for the admin to fill in). Pure: write-estate.ts prints the plan as commented YAML and report.ts reads it
 * for `--report`. The rules are in docs/discover.md "From exports to an estate"; the estate's own rules
 * (one server per namespace, internal URLs on the server's fqdn or its namespaces) in docs/config.md.
 */
import type { NamespaceKind, ProductVersion } from '../core/estate/estate.ts';
import type { ExchangeServer, Organisation, VdirProtocol } from './organisation.ts';
import { isCas, isMailbox, productOf, vdirProtocols } from './organisation.ts';

/** The Autodiscover URL Exchange Online answers for mailboxes moved to it (the hybrid routing domain). */
export const exchangeOnlineAutodiscover = 'https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml';

export interface PlannedUrls {
  internal?: string;
  external?: string;
}

export interface PlannedServer {
  readonly name: string;
  readonly fqdn: string;
  readonly version: ProductVersion;
  readonly roles: ('cas' | 'mailbox')[];
  readonly site: string;
  readonly urls: Partial<Record<VdirProtocol, PlannedUrls>>;
  readonly databases: string[];
  /** Comments to print before a protocol's URLs (why a URL was left out or changed). */
  readonly urlComments: Partial<Record<VdirProtocol, string[]>>;
  readonly source: ExchangeServer;
}

export interface PlannedNamespace {
  readonly host: string;
  kind: NamespaceKind;
  readonly server: string;
  /** Why this kind, for the comment. */
  why: string;
}

export interface PlannedUser {
  readonly address: string;
  readonly displayName?: string;
  readonly aliases: string[];
  readonly upn?: string;
  readonly mailbox: { database: string } | { server: string };
}

export interface EstatePlan {
  readonly name: string;
  readonly organization: string;
  readonly domains: string[];
  readonly remoteDomains: { domain: string; autodiscoverUrl: string }[];
  readonly owaRedirectStyle: 'http-302' | 'silent-fba';
  readonly namespaces: PlannedNamespace[];
  readonly sites: { name: string; internetFacing: boolean; servers: PlannedServer[] }[];
  /** `undefined` when no mailbox export was read: users then come from the directory. */
  readonly users?: PlannedUser[];
  /** What the admin must decide, one sentence each. */
  readonly undecided: string[];
}

const lc = (s: string): string => s.toLowerCase();
const hostOf = (u: string): string => lc(new URL(u).hostname);
const familyRank = (v: ProductVersion): number => (v >= 2013 ? 0 : v === 2010 ? 1 : 2);

/** The URL of a protocol's virtual directory with another host (same scheme, path and query). */
const withHost = (u: string, host: string): string => {
  const parsed = new URL(u);
  parsed.hostname = host;
  return parsed.toString();
};

export function planEstate(org: Organisation): EstatePlan {
  const undecided: string[] = [];

  // --- servers coexist routes through --------------------------------------------------------------------
  const kept: {
    server: ExchangeServer;
    version: ProductVersion;
    roles: ('cas' | 'mailbox')[];
    site: string;
  }[] = [];
  for (const s of org.servers) {
    const version = productOf(s.build);
    const roles: ('cas' | 'mailbox')[] = [
      ...(isCas(s) ? (['cas'] as const) : []),
      ...(isMailbox(s) ? (['mailbox'] as const) : []),
    ];
    if (!version) {
      undecided.push(
        `${s.name} (version ${s.build.major}.${s.build.minor}) is left out: coexist routes Exchange 2007 to 2019 only.`,
      );
      continue;
    }
    if (s.roles.includes('Edge') || roles.length === 0) {
      undecided.push(
        `${s.name} is left out: it has neither the Client Access nor the Mailbox role (${s.roles.join(', ') || 'no role'}).`,
      );
      continue;
    }
    let site = s.site;
    if (site === undefined) {
      site = 'Unknown site';
      undecided.push(`${s.name} has no AD site in the export: it is put in "${site}"; move it to its site.`);
    }
    kept.push({ server: s, version, roles, site });
  }

  // --- raw URLs per CAS and protocol ------------------------------------------------------------------------
  const raw = new Map<ExchangeServer, Partial<Record<VdirProtocol, PlannedUrls>>>();
  const comments = new Map<ExchangeServer, Partial<Record<VdirProtocol, string[]>>>();
  const comment = (s: ExchangeServer, p: VdirProtocol, text: string): void => {
    const c = comments.get(s) ?? {};
    (c[p] ??= []).push(text);
    comments.set(s, c);
  };
  for (const k of kept) {
    if (!k.roles.includes('cas')) continue;
    const urls: Partial<Record<VdirProtocol, PlannedUrls>> = {};
    for (const vd of k.server.virtualDirectories) {
      if (urls[vd.protocol]) {
        comment(
          k.server,
          vd.protocol,
          `${vd.identity} (${vd.source}) is a second ${vd.protocol} virtual directory: only the first is used.`,
        );
        continue;
      }
      if (vd.protocol === 'rpc') {
        const oa = vd.outlookAnywhere ?? {};
        const u: PlannedUrls = {};
        // Before 2013 Outlook Anywhere has only an external host name; inside, Outlook reaches the CAS itself.
        const internalHost = k.version >= 2013 ? oa.internalHostname : lc(k.server.fqdn);
        if (internalHost) u.internal = `https://${internalHost}/rpc/rpcproxy.dll`;
        if (oa.externalHostname) u.external = `https://${oa.externalHostname}/rpc/rpcproxy.dll`;
        urls.rpc = u;
        continue;
      }
      urls[vd.protocol] = {
        ...(vd.internalUrl !== undefined && { internal: vd.internalUrl }),
        ...(vd.externalUrl !== undefined && { external: vd.externalUrl }),
      };
    }
    // Outlook and devices find Autodiscover inside through the service connection point.
    const scp = k.server.autodiscoverServiceInternalUri;
    if (scp !== undefined) urls.autodiscover = { ...urls.autodiscover, internal: scp };
    raw.set(k.server, urls);
  }

  // --- namespaces from the external URLs -------------------------------------------------------------------
  const uses = new Map<string, { k: (typeof kept)[number]; protocol: VdirProtocol }[]>();
  for (const k of kept) {
    for (const [protocol, u] of Object.entries(raw.get(k.server) ?? {}) as [VdirProtocol, PlannedUrls][]) {
      if (!u.external) continue;
      const host = hostOf(u.external);
      uses.set(host, [...(uses.get(host) ?? []), { k, protocol }]);
    }
  }
  const modernUse = (host: string): number =>
    (uses.get(host) ?? []).filter((x) => x.k.version >= 2013).length;
  const primaryHost = [...uses.keys()]
    .filter((h) => !h.startsWith('autodiscover.') && modernUse(h) > 0)
    .sort((a, b) => modernUse(b) - modernUse(a))[0];
  const primaryOwner = primaryHost ? owner(primaryHost, undefined) : undefined;
  const mainSite = primaryOwner?.site;
  /** The server a host resolves to: of those using it, the newest version, then in the front end's site, then the most used. */
  function owner(host: string, mainSite: string | undefined): (typeof kept)[number] {
    const list = uses.get(host) ?? [];
    const count = (k: (typeof kept)[number]): number => list.filter((x) => x.k === k).length;
    const candidates = [...new Set(list.map((x) => x.k))];
    candidates.sort(
      (a, b) =>
        familyRank(a.version) - familyRank(b.version) ||
        (mainSite === undefined ? 0 : Number(b.site === mainSite) - Number(a.site === mainSite)) ||
        count(b) - count(a),
    );
    return candidates[0] as (typeof kept)[number];
  }
  const namespaces: PlannedNamespace[] = [];
  if (primaryHost && primaryOwner) {
    namespaces.push({
      host: primaryHost,
      kind: 'primary',
      server: primaryOwner.server.name,
      why: `the external host most used by the Exchange ${primaryOwner.version} Client Access servers`,
    });
  } else {
    undecided.push(
      'No primary namespace: no Exchange 2013 or later Client Access server has an external URL. The front end (coexist) needs one: add the 2013+ server and its namespace { host: mail.example.com, kind: primary, server: ... }.',
    );
  }
  let autodiscoverSeen = false;
  let legacySeen = false;
  for (const host of uses.keys()) {
    if (host === primaryHost) continue;
    const o = owner(host, mainSite);
    let kind: NamespaceKind = 'other';
    let why = `an external host of ${o.server.name}`;
    if (host.startsWith('autodiscover.') && !autodiscoverSeen) {
      kind = 'autodiscover';
      why = 'the Autodiscover name of an external URL';
      autodiscoverSeen = true;
    } else if (o.version === 2007 && o.site === mainSite && !legacySeen) {
      kind = 'legacy';
      why = `the external host of the Exchange 2007 Client Access server in the front end's site (${o.site})`;
      legacySeen = true;
    } else if (mainSite !== undefined && o.site !== mainSite) {
      kind = 'regional';
      why = `the external host of ${o.site}`;
    }
    namespaces.push({ host, kind, server: o.server.name, why });
  }
  const nsByHost = new Map(namespaces.map((n) => [n.host, n]));

  // --- URLs each server keeps --------------------------------------------------------------------------------
  /** Is `name` of the same site, version and role as `k` (an equivalent server: docs/config.md)? */
  const sameSet = (name: string, k: (typeof kept)[number]): boolean => {
    const o = kept.find((x) => lc(x.server.name) === lc(name));
    return (
      o !== undefined && o !== k && o.site === k.site && o.version === k.version && o.roles.includes('cas')
    );
  };
  const sharing = new Map<
    string,
    { server: string; host: string; owner: string; protocols: VdirProtocol[] }
  >();
  const shared = (server: string, host: string, ownerName: string, protocol: VdirProtocol): void => {
    const key = `${server}|${host}`;
    const e = sharing.get(key) ?? { server, host, owner: ownerName, protocols: [] };
    if (!e.protocols.includes(protocol)) e.protocols.push(protocol);
    sharing.set(key, e);
  };
  const planned = new Map<ExchangeServer, PlannedServer>();
  for (const k of kept) {
    const s = k.server;
    const fqdn = lc(s.fqdn);
    const urls: Partial<Record<VdirProtocol, PlannedUrls>> = {};
    for (const protocol of vdirProtocols) {
      const u = raw.get(s)?.[protocol];
      if (!u) continue;
      const out: PlannedUrls = {};
      const changes: string[] = [];
      if (u.external) {
        const host = hostOf(u.external);
        const ns = nsByHost.get(host);
        if (ns && lc(ns.server) === lc(s.name)) out.external = u.external;
        else if (ns && sameSet(ns.server, k)) {
          changes.push(`external ${u.external} left out`);
          shared(s.name, host, ns.server, protocol);
        } else {
          changes.push(
            ns?.kind === 'primary'
              ? `external ${u.external} left out: that is the front end's namespace, through which these clients come in`
              : `external ${u.external} left out: ${host} resolves to ${ns?.server ?? '?'}`,
          );
        }
      }
      if (u.internal) {
        const host = hostOf(u.internal);
        const ns = nsByHost.get(host);
        if (host === fqdn || (ns && lc(ns.server) === lc(s.name))) out.internal = u.internal;
        else if (!ns && !kept.some((o) => lc(o.server.fqdn) === host)) {
          // A name of its own inside (an internal load-balanced name, a CAS array): a namespace of this server.
          const added: PlannedNamespace = {
            host,
            kind: 'other',
            server: s.name,
            why: `the internal host of ${s.name}'s ${protocol} URL`,
          };
          namespaces.push(added);
          nsByHost.set(host, added);
          out.internal = u.internal;
        } else {
          out.internal = withHost(u.internal, fqdn);
          changes.push(`internal ${u.internal} written with the server's own name`);
          if (ns && sameSet(ns.server, k)) shared(s.name, host, ns.server, protocol);
          else
            undecided.push(
              `${s.name}: the ${protocol} internal URL ${u.internal} uses ${host}, another server's name; the estate uses ${out.internal}.`,
            );
        }
      }
      if (changes.length > 0) {
        const host = [u.external, u.internal].flatMap((x) => (x ? [hostOf(x)] : []))[0] ?? '';
        const owner = nsByHost.get(host);
        const why =
          owner && sameSet(owner.server, k)
            ? `: ${host} resolves to ${owner.server}, an equivalent server (docs/config.md "Equivalent servers")`
            : '';
        comment(s, protocol, `${changes.join('; ')}${why}.`);
      }
      if (out.internal || out.external) urls[protocol] = out;
    }
    planned.set(s, {
      name: s.name,
      fqdn,
      version: k.version,
      roles: k.roles,
      site: k.site,
      urls,
      databases: [],
      urlComments: comments.get(s) ?? {},
      source: s,
    });
  }

  for (const e of sharing.values()) {
    undecided.push(
      `${e.server} shares ${e.host} with ${e.owner} (a load-balanced name): in the estate a host name resolves to one server, so ${e.server}'s URLs on it (${e.protocols.join(', ')}) are left out or written with its own name; coexist balances over equivalent servers itself (docs/config.md "Equivalent servers").`,
    );
  }
  const kindOrder: NamespaceKind[] = ['primary', 'autodiscover', 'legacy', 'regional', 'other'];
  namespaces.sort((a, b) => kindOrder.indexOf(a.kind) - kindOrder.indexOf(b.kind));

  // --- databases -----------------------------------------------------------------------------------------------
  const dbCount = new Map<string, number>();
  for (const d of org.databases) dbCount.set(lc(d.name), (dbCount.get(lc(d.name)) ?? 0) + 1);
  const dbName = new Map<string, string>();
  for (const d of org.databases) {
    const p = [...planned.values()].find((x) => lc(x.name) === lc(d.server));
    if (!p || !p.roles.includes('mailbox')) continue;
    // Exchange 2007 names every first database "Mailbox Database": qualified by its server when names repeat.
    const name = (dbCount.get(lc(d.name)) ?? 0) > 1 ? `${p.name}\\${d.name}` : d.name;
    p.databases.push(name);
    dbName.set(lc(d.name) + '@' + lc(p.name), name);
    if (!dbName.has(lc(d.name))) dbName.set(lc(d.name), name);
  }

  // --- sites -----------------------------------------------------------------------------------------------------
  const siteOrder = [...org.sites.map((s) => s.name), ...kept.map((k) => k.site)];
  const sites: EstatePlan['sites'] = [];
  for (const name of siteOrder) {
    if (sites.some((s) => lc(s.name) === lc(name))) continue;
    const servers = kept
      .filter((k) => lc(k.site) === lc(name))
      .map((k) => planned.get(k.server) as PlannedServer);
    if (servers.length === 0) continue;
    const internetFacing = servers.some((s) => Object.values(s.urls).some((u) => u?.external !== undefined));
    sites.push({ name, internetFacing, servers });
  }

  // --- domains -------------------------------------------------------------------------------------------------
  const domains: string[] = [];
  const remoteDomains: EstatePlan['remoteDomains'] = [];
  for (const d of org.acceptedDomains) {
    if (d.domain.startsWith('*.')) {
      undecided.push(
        `Accepted domain ${d.domain} includes subdomains: list the subdomains that hold mailboxes in domains.`,
      );
      continue;
    }
    if (d.domain.endsWith('.mail.onmicrosoft.com')) {
      remoteDomains.push({ domain: d.domain, autodiscoverUrl: exchangeOnlineAutodiscover });
      undecided.push(
        `${d.domain} is the hybrid routing domain of an Exchange Online tenant: written as a remote domain whose Autodiscover is Exchange Online's; check it.`,
      );
      continue;
    }
    if (d.type === 'ExternalRelay') {
      undecided.push(
        `Accepted domain ${d.domain} is an external relay (its mailboxes are elsewhere): left out of domains; add it to remoteDomains if Autodiscover should send its users somewhere.`,
      );
      continue;
    }
    domains.push(d.domain);
  }
  if (domains.length === 0) {
    const fallback = org.adDomain ?? 'example.com';
    domains.push(fallback);
    undecided.push(
      `No accepted domain in the exports: domains holds ${fallback} until you write the SMTP domains of the organisation.`,
    );
  }

  // --- users ---------------------------------------------------------------------------------------------------
  let users: PlannedUser[] | undefined;
  if (org.mailboxes) {
    users = [];
    for (const m of org.mailboxes) {
      const domain = m.address.split('@')[1] ?? '';
      if (!domains.includes(domain)) {
        undecided.push(`Mailbox ${m.address} is left out: ${domain} is not one of the estate's domains.`);
        continue;
      }
      const serverName =
        m.server === undefined
          ? undefined
          : [...planned.values()].find((p) => lc(p.name) === lc(m.server ?? ''))?.name;
      const db =
        m.database === undefined
          ? undefined
          : ((serverName && dbName.get(lc(m.database) + '@' + lc(serverName))) ?? dbName.get(lc(m.database)));
      const mailbox =
        db !== undefined ? { database: db } : serverName !== undefined ? { server: serverName } : undefined;
      if (!mailbox) {
        undecided.push(
          `Mailbox ${m.address} is left out: its database ${m.database ?? '(none)'} is on no server of the exports.`,
        );
        continue;
      }
      users.push({
        address: m.address,
        ...(m.displayName !== undefined && { displayName: m.displayName }),
        aliases: [...m.aliases],
        ...(m.upn !== undefined && lc(m.upn) !== m.address && { upn: m.upn }),
        mailbox,
      });
    }
  } else {
    undecided.push(
      'Users: no Get-Mailbox export was read, so users is empty; point directory.ldap at the domain (commented below) or add a Get-Mailbox export (docs/discover.md).',
    );
  }

  const owaSilent = org.servers.some((s) =>
    s.virtualDirectories.some((v) => v.protocol === 'owa' && lc(v.crossSiteRedirectType ?? '') === 'silent'),
  );
  if (org.name === undefined)
    undecided.push(
      'The Exchange organisation name was not in the exports (ExchangeLegacyDN): organization is a guess.',
    );
  undecided.push(
    'internalNetworks: the networks of internal clients are not in Exchange; write them (docs/config.md "internalNetworks and remoteDomains").',
  );
  undecided.push(
    'policies: coexist\'s own choices, not Exchange settings; the defaults are written (docs/config.md "policies").',
  );

  const name = org.adDomain?.split('.')[0] ?? org.name ?? 'discovered';
  return {
    name,
    organization: org.name ?? name,
    domains,
    remoteDomains,
    owaRedirectStyle: owaSilent ? 'silent-fba' : 'http-302',
    namespaces,
    sites,
    ...(users && { users }),
    undecided,
  };
}
