/**
 * Semantic checks of an estate file, after the schema: duplicates, cross-references, and the rules that
 * tie sites, URLs and namespaces together. Every problem is collected (never stop at the first), each with
 * the path of the offending value, e.g. `['users', 3, 'mailbox', 'database']`, so that the loader can point
 * at its line and column.
 *
 * The checks also run on a file that failed the schema, so that one run reports everything: the loader
 * removes every value the schema rejected and says which (`CheckOptions`). A check whose answer depends
 * on a removed value is skipped rather than guessed, so a broken value never causes follow-up problems
 * (a server whose name is invalid does not make every reference to it "unknown").
 */
import type { ErrorCode } from '../core/errors.ts';
import { hostOfUrl } from '../core/host.ts';
import { protocols } from '../core/protocols/protocol.ts';
import type { EstateFile } from './estate-schema.ts';

export type PathSegment = string | number;
export type EstatePath = readonly PathSegment[];

export interface EstateProblem {
  readonly path: EstatePath;
  readonly code: ErrorCode;
  readonly message: string;
  /**
   * The other place of a duplicate or contradiction. The message ends with its path, and the loader adds
   * its line after it.
   */
  readonly related?: EstatePath;
}

/** Every field optional and every array element possibly missing: an estate file after invalid values were removed. */
export type Loose<T> = T extends readonly (infer E)[]
  ? readonly (Loose<E> | undefined)[]
  : T extends object
    ? { readonly [K in keyof T]?: Loose<T[K]> }
    : T;
export type LooseEstateFile = Loose<EstateFile>;

export interface CheckOptions {
  /** Paths whose values failed the schema and were removed from the file. */
  readonly invalid?: readonly EstatePath[];
  /** Paths of mappings with keys the schema does not know (a misspelt key may hide an optional field). */
  readonly unknownKeys?: readonly EstatePath[];
  /**
   * Filled with every user identity (address, alias, login, UPN; lower-cased) -> user index, so that the
   * index can reuse it instead of building the same 400 000-entry map again for a large estate.
   */
  readonly identities?: Map<string, number>;
}

/** `['sites', 2, 'servers', 0, 'name']` -> `sites[2].servers[0].name`; `[]` -> `''`. */
export function pathToString(path: EstatePath): string {
  let s = '';
  for (const seg of path) s = appendSegment(s, seg);
  return s;
}

/** One more segment on a path string: `.key`, `[3]`, or `["odd key"]`. */
export function appendSegment(path: string, seg: PathSegment): string {
  if (typeof seg === 'number') return `${path}[${seg}]`;
  if (/^[A-Za-z_$][\w$-]*$/.test(seg)) return path === '' ? seg : `${path}.${seg}`;
  return `${path}[${JSON.stringify(seg)}]`;
}

/** Levenshtein distance, case-insensitive. */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost));
    }
    prev = cur;
  }
  return prev[y.length] as number;
}

/** The candidate closest to `name`, if it is close enough to be a likely misspelling. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(2, Math.floor(name.length / 3));
  return bestDistance <= limit ? best : undefined;
}

/** `did you mean "X"?`, or the list of what exists when nothing is close. */
export function suggestion(name: string, candidates: readonly string[], what: string): string {
  const near = closest(name, candidates);
  if (near !== undefined) return `did you mean "${near}"?`;
  if (candidates.length === 0) return `the estate defines no ${what}`;
  const shown = candidates.slice(0, 8).join(', ');
  return `the estate defines ${candidates.length > 8 ? `${shown}, ... (${candidates.length})` : shown}`;
}

const lc = (s: string): string => s.toLowerCase();
/** Quote a value as an admin wrote it (no JSON escaping: `CONTOSO\\alice` stays readable). */
const q = (s: string): string => `"${s.replace(/\n/g, '\\n')}"`;

/** Protocol keys of `urls`, in the order they appear in a file. */
const urlEntries = (urls: object): [string, unknown][] => Object.entries(urls);

interface ServerEntry {
  readonly name: string | undefined;
  readonly path: EstatePath;
  readonly server: NonNullable<Loose<EstateFile['sites'][number]['servers'][number]>>;
  readonly site: NonNullable<Loose<EstateFile['sites'][number]>>;
}

interface Seen {
  readonly path: EstatePath;
  readonly value: string;
}

/** Run every semantic check; an empty list means the estate is consistent. */
export function checkEstate(file: LooseEstateFile, options: CheckOptions = {}): EstateProblem[] {
  const problems: EstateProblem[] = [];
  const add = (code: ErrorCode, path: EstatePath, message: string, related?: EstatePath): void => {
    problems.push(related ? { code, path, message, related } : { code, path, message });
  };

  // Paths (and every ancestor of them) whose values were removed, for "was this optional field really absent?".
  const removed = new Set<string>();
  for (const p of options.invalid ?? [])
    for (let n = p.length; n >= 0; n--) removed.add(pathToString(p.slice(0, n)));
  const unknownKeys = new Set((options.unknownKeys ?? []).map(pathToString));
  const touched = (path: EstatePath): boolean => removed.size > 0 && removed.has(pathToString(path));
  /** An optional field that is absent, but may have been there: removed as invalid, or hidden by a misspelt key. */
  const uncertain = (parent: EstatePath, field: string): boolean =>
    (removed.size > 0 && removed.has(pathToString([...parent, field]))) ||
    (unknownKeys.size > 0 && unknownKeys.has(pathToString(parent)));

  /** Report a duplicate, or remember the first occurrence. Keys are case-insensitive. */
  const unique = (seen: Map<string, Seen>, value: string, path: EstatePath, what: string): boolean => {
    const k = lc(value);
    const first = seen.get(k);
    if (!first) {
      seen.set(k, { path, value });
      return true;
    }
    const sameSpelling = first.value === value;
    add(
      'CX_CONFIG_DUPLICATE',
      path,
      `duplicate ${what} ${q(value)}${sameSpelling ? '' : ` (same as ${q(first.value)}: case does not matter)`}: rename or remove one of the two; the other is at ${pathToString(first.path)}`,
      first.path,
    );
    return false;
  };

  // --- Sites, servers, host names, databases -------------------------------------------------------------
  const siteNames = new Map<string, Seen>();
  const serverNames = new Map<string, Seen>();
  const serverByName = new Map<string, ServerEntry>();
  const fqdns = new Map<string, Seen>();
  const serverOfFqdn = new Map<string, ServerEntry>();
  const databases = new Map<string, Seen>();
  const servers: ServerEntry[] = [];
  let serverNamesComplete = file.sites !== undefined;
  let databasesComplete = file.sites !== undefined;

  (file.sites ?? []).forEach((site, i) => {
    const sitePath = ['sites', i];
    if (!site) {
      serverNamesComplete = databasesComplete = false;
      return;
    }
    if (site.name !== undefined) unique(siteNames, site.name, [...sitePath, 'name'], 'site name');
    if (!site.servers) {
      serverNamesComplete = databasesComplete = false;
      return;
    }
    site.servers.forEach((server, j) => {
      const path = [...sitePath, 'servers', j];
      if (!server) {
        serverNamesComplete = databasesComplete = false;
        return;
      }
      const entry: ServerEntry = { name: server.name, path, server, site };
      servers.push(entry);
      if (server.name === undefined) serverNamesComplete = false;
      else if (unique(serverNames, server.name, [...path, 'name'], 'server name'))
        serverByName.set(lc(server.name), entry);
      if (server.fqdn !== undefined && unique(fqdns, server.fqdn, [...path, 'fqdn'], 'server fqdn')) {
        serverOfFqdn.set(lc(server.fqdn), entry);
      }
      if (server.databases) {
        server.databases.forEach((db, k) => {
          if (db === undefined) databasesComplete = false;
          else unique(databases, db, [...path, 'databases', k], 'database name');
        });
        const roles = knownRoles(server.roles);
        if (server.databases.length > 0 && roles && !roles.includes('mailbox')) {
          add(
            'CX_CONFIG_INCONSISTENT',
            [...path, 'databases'],
            `${serverLabel(entry)} has databases but not the mailbox role: add mailbox to its roles, or move the databases to a mailbox server`,
          );
        }
      } else if (uncertain(path, 'databases')) {
        databasesComplete = false;
      }
    });
  });
  const serverList = [...serverNames.values()].map((s) => s.value);
  const databaseList = [...databases.values()].map((s) => s.value);

  // --- Namespaces -----------------------------------------------------------------------------------
  let namespacesComplete = file.namespaces !== undefined;
  const hosts = new Map<string, Seen>();
  /** Namespace host (lower case) -> the server name it resolves to (as written). */
  const namespaceServer = new Map<string, { server: string; path: EstatePath }>();
  const oneOfKind = new Map<string, Seen>();
  (file.namespaces ?? []).forEach((ns, i) => {
    const path = ['namespaces', i];
    if (!ns || ns.host === undefined || ns.kind === undefined || ns.server === undefined)
      namespacesComplete = false;
    if (!ns) return;
    if (
      ns.host !== undefined &&
      unique(hosts, ns.host, [...path, 'host'], 'namespace host') &&
      ns.server !== undefined
    ) {
      namespaceServer.set(lc(ns.host), { server: ns.server, path });
    }
    if (ns.kind === 'primary' || ns.kind === 'legacy' || ns.kind === 'autodiscover') {
      const first = oneOfKind.get(ns.kind);
      if (first) {
        add(
          'CX_CONFIG_INCONSISTENT',
          [...path, 'kind'],
          `a second namespace of kind ${ns.kind}: an estate has at most one; the first is ${pathToString(first.path)}`,
          first.path,
        );
      } else {
        oneOfKind.set(ns.kind, { path: [...path, 'kind'], value: ns.kind });
      }
    }
    if (ns.server === undefined) return;
    const target = serverByName.get(lc(ns.server));
    if (!target) {
      if (serverNamesComplete) {
        add(
          'CX_CONFIG_REFERENCE',
          [...path, 'server'],
          `unknown server ${q(ns.server)}: ${suggestion(ns.server, serverList, 'servers')}`,
        );
      }
      return;
    }
    if (ns.host !== undefined) {
      const owner = serverOfFqdn.get(lc(ns.host));
      if (owner && owner !== target) {
        add(
          'CX_CONFIG_INCONSISTENT',
          [...path, 'host'],
          `${ns.host} is the fqdn of ${serverLabel(owner)} but this namespace resolves to ${target.name}: a host name resolves to one server; the fqdn is at ${pathToString([...owner.path, 'fqdn'])}`,
          [...owner.path, 'fqdn'],
        );
      }
    }
    const roles = knownRoles(target.server.roles);
    const version = target.server.version;
    if (ns.kind === 'primary') {
      if ((version !== undefined && version < 2013) || (roles && !roles.includes('cas'))) {
        add(
          'CX_CONFIG_INCONSISTENT',
          [...path, 'server'],
          `the primary namespace must resolve to the front end, an Exchange 2013+ server with the cas role; ${serverLabel(target)} is not`,
        );
      }
    } else if (roles && !roles.includes('cas')) {
      add(
        'CX_CONFIG_INCONSISTENT',
        [...path, 'server'],
        `${serverLabel(target)} has no cas role: clients cannot connect to it; point the namespace at a Client Access server`,
      );
    } else if (ns.kind === 'legacy' && version !== undefined && version >= 2013) {
      add(
        'CX_CONFIG_INCONSISTENT',
        [...path, 'server'],
        `the legacy namespace must resolve to an Exchange 2007 or 2010 Client Access server; ${serverLabel(target)} is not`,
      );
    }
  });
  if (namespacesComplete && !oneOfKind.has('primary')) {
    add(
      'CX_CONFIG_INCONSISTENT',
      ['namespaces'],
      'no namespace of kind primary: add the public name of the front end, e.g. { host: mail.contoso.com, kind: primary, server: CAS2013-NY }',
    );
  }

  // --- URLs against sites and namespaces --------------------------------------------------------------
  const externalCount = new Map<object, number>();
  for (const entry of servers) {
    const { server, site, path } = entry;
    if (!server.urls) continue;
    for (const [protocol, urls] of urlEntries(server.urls)) {
      if (!urls || typeof urls !== 'object') continue;
      const { internal, external } = urls as { internal?: string; external?: string };
      const urlPath = [...path, 'urls', protocol];
      if (external !== undefined) {
        externalCount.set(site, (externalCount.get(site) ?? 0) + 1);
        const host = hostOfUrl(external);
        if (site.internetFacing === false) {
          add(
            'CX_CONFIG_INCONSISTENT',
            [...urlPath, 'external'],
            `site ${q(site.name ?? '')} is intranet-only (internetFacing: false), so ${serverLabel(entry)} cannot have an external URL: remove it, or set internetFacing: true on the site`,
          );
        } else if (host !== '' && namespacesComplete && entry.name !== undefined) {
          const ns = namespaceServer.get(host);
          if (!ns) {
            add(
              'CX_CONFIG_INCONSISTENT',
              [...urlPath, 'external'],
              `${host} is not a namespace: add { host: ${host}, kind: ..., server: ${entry.name} } to namespaces, or use a namespace that resolves to ${entry.name}`,
            );
          } else if (lc(ns.server) !== lc(entry.name)) {
            add(
              'CX_CONFIG_INCONSISTENT',
              [...urlPath, 'external'],
              `${host} resolves to ${ns.server}, not to ${entry.name}: use a namespace of ${entry.name} here, or point ${host} at ${entry.name}; the namespace is ${pathToString(ns.path)}`,
              ns.path,
            );
          }
        }
      }
      if (internal !== undefined && entry.name !== undefined && server.fqdn !== undefined) {
        const host = hostOfUrl(internal);
        if (host === '' || host === lc(server.fqdn)) continue;
        const ns = namespaceServer.get(host);
        if (ns && lc(ns.server) === lc(entry.name)) continue;
        if (!ns && !namespacesComplete) continue;
        add(
          'CX_CONFIG_INCONSISTENT',
          [...urlPath, 'internal'],
          ns
            ? `${host} resolves to ${ns.server}, not to ${entry.name}: an internal URL uses the server's own fqdn (${server.fqdn}) or a namespace that resolves to it`
            : `${host} is neither the fqdn of ${entry.name} (${server.fqdn}) nor a namespace: use ${server.fqdn}, or add a namespace for ${host} that resolves to ${entry.name}`,
        );
      }
    }
  }
  (file.sites ?? []).forEach((site, i) => {
    if (!site || site.internetFacing !== true || (externalCount.get(site) ?? 0) > 0) return;
    if (
      !site.servers ||
      touched(['sites', i, 'servers']) ||
      site.servers.some((_, j) => unknownKeysUnder(unknownKeys, ['sites', i, 'servers', j]))
    )
      return;
    add(
      'CX_CONFIG_INCONSISTENT',
      ['sites', i, 'internetFacing'],
      `site ${q(site.name ?? '')} is internet-facing but none of its servers has an external URL: add the external URLs of its Client Access servers, or set internetFacing: false`,
    );
  });

  // --- Authentication per virtual directory (docs/config.md "authentication") ------------------------
  for (const entry of servers) {
    const { server, path } = entry;
    if (!server.authentication || typeof server.authentication !== 'object') continue;
    // A 2013+ mailbox server's back-end site serves every protocol on port 444, with no URL in the file.
    const backEnd =
      server.version !== undefined && server.version >= 2013 && knownRoles(server.roles)?.includes('mailbox');
    if (backEnd || touched([...path, 'urls']) || unknownKeysUnder(unknownKeys, [...path, 'urls'])) continue;
    const withUrl = new Set(server.urls ? urlEntries(server.urls).map(([p]) => p) : []);
    for (const protocol of Object.keys(server.authentication)) {
      // An unknown protocol is the schema's problem already.
      if (withUrl.has(protocol) || !(protocols as readonly string[]).includes(protocol)) continue;
      add(
        'CX_CONFIG_INCONSISTENT',
        [...path, 'authentication', protocol],
        `${serverLabel(entry)} has no URL for ${protocol}, so no ${protocol} virtual directory whose authentication this could set: add urls.${protocol}, or remove ${protocol} here`,
      );
    }
  }

  // --- Users ----------------------------------------------------------------------------------------
  const domains = file.domains;
  const domainsComplete = domains !== undefined && domains.every((d) => d !== undefined);
  const domainSet = new Set(domainsComplete ? domains.map((d) => lc(d as string)) : []);
  (file.remoteDomains ?? []).forEach((remote, i) => {
    if (remote?.domain !== undefined && domainSet.has(lc(remote.domain)))
      add(
        'CX_CONFIG_INCONSISTENT',
        ['remoteDomains', i, 'domain'],
        `${remote.domain} is one of the estate's own domains: a domain is either served here (domains) or lives elsewhere (remoteDomains); remove it from one of the two`,
      );
  });
  // A 100 000-user estate has 400 000 identities: each is remembered as its user's index only; the path
  // of the first occurrence is looked for again when (rarely) a duplicate is found.
  const identities = options.identities ?? new Map<string, number>();
  const identityPath = (user: number, k: string): EstatePath => {
    const u = file.users?.[user];
    if (u?.address !== undefined && lc(u.address) === k) return ['users', user, 'address'];
    if (u?.login !== undefined && lc(u.login) === k) return ['users', user, 'login'];
    if (u?.upn !== undefined && lc(u.upn) === k) return ['users', user, 'upn'];
    const alias = u?.aliases?.findIndex((a) => a !== undefined && lc(a) === k) ?? -1;
    return alias >= 0 ? ['users', user, 'aliases', alias] : ['users', user];
  };
  const identity = (user: number, value: string | undefined, field: string, index = -1): void => {
    if (value === undefined) return;
    const k = lc(value);
    const first = identities.get(k);
    if (first === undefined) identities.set(k, user);
    else if (first !== user) {
      const firstPath = identityPath(first, k);
      add(
        'CX_CONFIG_DUPLICATE',
        index < 0 ? ['users', user, field] : ['users', user, field, index],
        `${q(value)} already identifies another user: addresses, aliases, logins and UPNs must be unique (case does not matter); the other is at ${pathToString(firstPath)}`,
        firstPath,
      );
    }
  };

  const users = file.users ?? [];
  for (let i = 0; i < users.length; i++) {
    const user = users[i];
    if (!user) continue;
    identity(i, user.address, 'address');
    if (user.aliases)
      for (let k = 0; k < user.aliases.length; k++) identity(i, user.aliases[k], 'aliases', k);
    identity(i, user.login, 'login');
    identity(i, user.upn, 'upn');

    if (user.address !== undefined && domainsComplete) {
      const domain = lc(user.address.slice(user.address.lastIndexOf('@') + 1));
      if (!domainSet.has(domain)) {
        const path = ['users', i];
        const near = closest(domain, domainSet);
        add(
          'CX_CONFIG_INCONSISTENT',
          [...path, 'address'],
          `${domain} is not one of the estate's domains (${[...domainSet].join(', ')}): correct the address${near ? ` (did you mean @${near}?)` : ''}, or add ${domain} to domains`,
        );
      }
    }

    const mailbox = user.mailbox;
    if (!mailbox) continue;
    const mp: EstatePath = ['users', i, 'mailbox'];
    if (mailbox.server !== undefined && mailbox.database !== undefined) {
      add(
        'CX_CONFIG_SCHEMA',
        mp,
        'give either server or database, not both: the database already says where the mailbox is',
      );
    } else if (
      mailbox.server === undefined &&
      mailbox.database === undefined &&
      !uncertain(mp, 'server') &&
      !uncertain(mp, 'database')
    ) {
      add('CX_CONFIG_SCHEMA', mp, 'the mailbox needs a location: add database: <name> (or server: <name>)');
    }
    if (mailbox.server !== undefined) {
      const target = serverByName.get(lc(mailbox.server));
      if (!target) {
        if (serverNamesComplete) {
          add(
            'CX_CONFIG_REFERENCE',
            [...mp, 'server'],
            `unknown server ${q(mailbox.server)}: ${suggestion(mailbox.server, serverList, 'servers')}`,
          );
        }
      } else {
        const roles = knownRoles(target.server.roles);
        if (roles && !roles.includes('mailbox')) {
          const inSite = servers
            .filter(
              (s) =>
                s.site === target.site &&
                s.name !== undefined &&
                knownRoles(s.server.roles)?.includes('mailbox'),
            )
            .map((s) => s.name as string);
          add(
            'CX_CONFIG_INCONSISTENT',
            [...mp, 'server'],
            `${serverLabel(target)} does not have the mailbox role, so it cannot hold a mailbox${inSite.length > 0 ? `: did you mean ${inSite.join(' or ')}?` : ''}`,
          );
        }
      }
    }
    if (mailbox.database !== undefined && !databases.has(lc(mailbox.database)) && databasesComplete) {
      add(
        'CX_CONFIG_REFERENCE',
        [...mp, 'database'],
        `unknown database ${q(mailbox.database)}: ${suggestion(mailbox.database, databaseList, 'databases')}`,
      );
    }
  }

  // Access grants (docs/security.md "Mailbox access") name other users of the estate, once the identity
  // map holds every user.
  for (let i = 0; i < users.length; i++) {
    const user = users[i];
    for (const field of ['fullAccess', 'delegates'] as const) {
      (user?.[field] ?? []).forEach((trustee, k) => {
        if (trustee === undefined) return;
        const who = identities.get(lc(trustee));
        if (who === undefined)
          add(
            'CX_CONFIG_REFERENCE',
            ['users', i, field, k],
            `${q(trustee)} is no user of this estate: grant access to a user by address, alias, UPN or DOMAIN\\user`,
          );
        else if (who === i)
          add(
            'CX_CONFIG_INCONSISTENT',
            ['users', i, field, k],
            `${q(trustee)} is the mailbox's own user, who always has access: remove it`,
          );
      });
    }
    // An ApplicationImpersonation scope names the users whose mailboxes the service account may act as.
    const scope = user?.applicationImpersonation;
    if (Array.isArray(scope)) {
      scope.forEach((target, k) => {
        if (identities.get(lc(target)) === undefined)
          add(
            'CX_CONFIG_REFERENCE',
            ['users', i, 'applicationImpersonation', k],
            `${q(target)} is no user of this estate: scope impersonation to users by address, alias, UPN or DOMAIN\\user`,
          );
      });
    }
  }

  return problems;
}

function unknownKeysUnder(unknownKeys: ReadonlySet<string>, path: EstatePath): boolean {
  if (unknownKeys.size === 0) return false;
  const prefix = pathToString(path);
  for (const k of unknownKeys)
    if (k === prefix || k.startsWith(`${prefix}.`) || k.startsWith(`${prefix}[`)) return true;
  return false;
}

/** The roles of a server, unless one of them was invalid (then nothing can be concluded). */
function knownRoles(roles: readonly (string | undefined)[] | undefined): readonly string[] | undefined {
  return roles && roles.every((r) => r !== undefined) ? (roles as readonly string[]) : undefined;
}

/** `CAS2007-LA (Exchange 2007, cas)`: a server as messages name it. */
function serverLabel(entry: ServerEntry): string {
  const { version, roles } = entry.server;
  const known = knownRoles(roles);
  const what = [version !== undefined ? `Exchange ${version}` : undefined, known?.join('+')].filter(
    (x) => x !== undefined,
  );
  return `${entry.name ?? pathToString(entry.path)}${what.length > 0 ? ` (${what.join(', ')})` : ''}`;
}
