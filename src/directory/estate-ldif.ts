/**
 * An estate as LDIF (RFC 2849) for OpenLDAP with examples/ldap/coexist-exchange.schema, laid out as Active
 * Directory lays out an Exchange organization: users under CN=Users, sites under
 * CN=Sites,CN=Configuration, Exchange servers and databases under the organization's administrative group
 * in CN=Services,CN=Configuration (2007 databases inside their server's first storage group, 2010+ ones
 * under CN=Databases). Each user points at its database (homeMDB), each database at its server
 * (msExchOwningServer), so `LdapDirectory` follows the same chain as against a real AD.
 *
 * Lab only: every user and the service account get `userPassword` = {SSHA} of ONE clear lab password
 * passed in by the caller (slapd cannot check the estate file's scrypt hashes; the estate file never
 * holds a clear password).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Estate, Server, User } from '../core/estate/estate.ts';
import type { ImpersonationAssignment } from './ldap-settings.ts';

/** Exchange 2007+'s one administrative group (the name every 2007-2019 organization has). */
const adminGroup = 'Exchange Administrative Group (FYDIBOHF23SPDLT)';

/** The DNs of an estate's entries in its directory. */
export interface EstateLdapLayout {
  /** The directory's root, from the estate's first SMTP domain: `dc=o365info,dc=com`. */
  readonly suffix: string;
  /** Where users are (AD's CN=Users): the `baseDn` of an `LdapDirectory` for this layout. */
  readonly usersDn: string;
  /** The service account coexist searches with: the `bindDn` of an `LdapDirectory` for this layout. */
  readonly serviceAccountDn: string;
  /** A site's entry. */
  siteDn(site: string): string;
  /** An Exchange server's entry. */
  serverDn(server: string): string;
  /** A mailbox database's entry; undefined for a database no server of the estate holds. */
  databaseDn(database: string): string | undefined;
  /** A user's entry; undefined for an address not in the estate. */
  userDn(address: string): string | undefined;
  /**
   * The ApplicationImpersonation role assignments the directory holds (the `impersonation` setting of an
   * `LdapDirectory` for this layout): the group `ApplicationImpersonation` under `usersDn` for the users
   * holding the role over every mailbox, then per user holding it over a list, a group of that user and a
   * scope group of the mailboxes (docs/security.md "Mailbox access").
   */
  readonly impersonation: readonly ImpersonationAssignment[];
}

/** Options of `estateLdapLayout`. */
export interface EstateLdapLayoutOptions {
  /** The root DN; by default `dc=` per label of the estate's first domain. */
  readonly suffix?: string;
  /** The service account's common name; `coexist-svc` by default. */
  readonly serviceAccount?: string;
}

/** Options of `estateLdif`. */
export interface EstateLdifOptions extends EstateLdapLayoutOptions {
  /** The clear lab password of every user, stored as {SSHA}. Never read from the estate file. */
  readonly password: string;
  /** The service account's clear password; `password` when absent. */
  readonly servicePassword?: string;
  /** Comment lines for the head of the file. */
  readonly comment?: readonly string[];
  /**
   * Random salts. By default each salt is derived from its entry's DN, so the same estate and password
   * always give the same file (the committed example is checked against the generator); the lab
   * password is public anyway.
   */
  readonly randomSalt?: boolean;
}

/** `{SSHA}` of a password (OpenLDAP's salted SHA-1: base64 of SHA1(password + salt) + salt, 8-byte salt). */
export function sshaPassword(password: string, salt: Buffer = randomBytes(8)): string {
  const digest = createHash('sha1').update(password, 'utf8').update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** An attribute value escaped for a DN (RFC 4514 §2.4). */
export function escapeDnValue(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (c === '\0') out += '\\00';
    else if ('"+,;<>\\'.includes(c)) out += `\\${c}`;
    else if ((i === 0 && (c === ' ' || c === '#')) || (i === value.length - 1 && c === ' ')) out += `\\${c}`;
    else out += c;
  }
  return out;
}

const rdn = (value: string): string => `cn=${escapeDnValue(value)}`;
const lower = (s: string): string => s.toLowerCase();
const localPart = (address: string): string => address.slice(0, address.lastIndexOf('@'));

interface Layout extends EstateLdapLayout {
  readonly configurationDn: string;
  readonly organizationDn: string;
  readonly adminGroupDn: string;
  readonly serversDn: string;
  readonly databasesDn: string;
  /** A server without a database gets one of this name, so that its users have a homeMDB. */
  defaultDatabase(server: Server): string;
  /** 2007: the server's storage group, which holds its databases. */
  storageGroupDn(server: Server): string;
  userCn(user: User): string;
}

function layoutOf(estate: Estate, options: EstateLdapLayoutOptions): Layout {
  const domain = estate.domains[0] ?? 'example.com';
  const suffix =
    options.suffix ??
    domain
      .split('.')
      .map((label) => `dc=${escapeDnValue(label)}`)
      .join(',');
  const usersDn = `cn=Users,${suffix}`;
  const configurationDn = `cn=Configuration,${suffix}`;
  const organizationDn = `${rdn(estate.organization)},cn=Microsoft Exchange,cn=Services,${configurationDn}`;
  const adminGroupDn = `${rdn(adminGroup)},cn=Administrative Groups,${organizationDn}`;
  const serversDn = `cn=Servers,${adminGroupDn}`;
  const databasesDn = `cn=Databases,${adminGroupDn}`;
  const servers = new Map<string, Server>();
  const databases = new Map<string, { name: string; server: Server }>();
  for (const site of estate.sites) {
    for (const server of site.servers) {
      servers.set(lower(server.name), server);
      for (const db of server.databases) databases.set(lower(db), { name: db, server });
    }
  }
  // AD names a user's entry by its full name; the estate's display names need not be unique, so a
  // display name shared by two users gives way to the address.
  const names = new Map<string, number>();
  for (const u of estate.users) names.set(lower(u.displayName), (names.get(lower(u.displayName)) ?? 0) + 1);
  const userCn = (u: User): string => (names.get(lower(u.displayName)) === 1 ? u.displayName : u.address);
  const byAddress = new Map(estate.users.map((u) => [lower(u.address), u]));
  const serverDn = (name: string): string => `${rdn(servers.get(lower(name))?.name ?? name)},${serversDn}`;
  const storageGroupDn = (server: Server): string =>
    `cn=First Storage Group,cn=InformationStore,${serverDn(server.name)}`;
  const defaultDatabase = (server: Server): string => `Mailbox Database ${server.name}`;
  const databaseDn = (name: string): string | undefined => {
    const db =
      databases.get(lower(name)) ??
      [...servers.values()]
        .filter((s) => lower(defaultDatabase(s)) === lower(name))
        .map((server) => ({ name: defaultDatabase(server), server }))[0];
    if (db === undefined) return undefined;
    return db.server.version === 2007
      ? `${rdn(db.name)},${storageGroupDn(db.server)}`
      : `${rdn(db.name)},${databasesDn}`;
  };
  const impersonation: ImpersonationAssignment[] = [
    { group: `${rdn('ApplicationImpersonation')},${usersDn}` },
    ...estate.users
      .filter((u) => Array.isArray(u.impersonation))
      .map((u) => ({
        group: `${rdn(`ApplicationImpersonation ${userCn(u)}`)},${usersDn}`,
        scope: `${rdn(`Impersonation scope ${userCn(u)}`)},${usersDn}`,
      })),
  ];
  return {
    suffix,
    usersDn,
    impersonation,
    serviceAccountDn: `${rdn(options.serviceAccount ?? 'coexist-svc')},${usersDn}`,
    configurationDn,
    organizationDn,
    adminGroupDn,
    serversDn,
    databasesDn,
    defaultDatabase,
    storageGroupDn,
    userCn,
    siteDn: (site) => `${rdn(site)},cn=Sites,${configurationDn}`,
    serverDn,
    databaseDn,
    userDn: (address) => {
      const user = byAddress.get(lower(address));
      return user && `${rdn(userCn(user))},${usersDn}`;
    },
  };
}

/** Where an estate's entries are in the directory `estateLdif` writes. */
export function estateLdapLayout(estate: Estate, options: EstateLdapLayoutOptions = {}): EstateLdapLayout {
  const { suffix, usersDn, serviceAccountDn, siteDn, serverDn, databaseDn, userDn, impersonation } = layoutOf(
    estate,
    options,
  );
  return { suffix, usersDn, serviceAccountDn, siteDn, serverDn, databaseDn, userDn, impersonation };
}

/**
 * RFC 2849 SAFE-STRING: ASCII without NUL, LF and CR, not starting with space, `:` or `<`; and (a
 * SHOULD of the RFC's notes) not ending with a space.
 */
function isSafeString(value: string): boolean {
  if (/^[ :<]/.test(value) || value.endsWith(' ')) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13 || c > 127) return false;
  }
  return true;
}

/** One `name: value` line, base64 (`name:: ...`) when the value is not a safe string (RFC 2849). */
function line(name: string, value: string): string {
  return isSafeString(value)
    ? `${name}: ${value}`
    : `${name}:: ${Buffer.from(value, 'utf8').toString('base64')}`;
}

type Entry = readonly (readonly [string, string])[];

/** The directory of an estate as LDIF text (RFC 2849): parents before children, one entry per block. */
export function estateLdif(estate: Estate, options: EstateLdifOptions): string {
  if (options.password === '') throw new Error('estateLdif: the lab password must not be empty');
  const layout = layoutOf(estate, options);
  const salt = (dn: string): Buffer =>
    options.randomSalt
      ? randomBytes(8)
      : createHash('sha256')
          .update(`coexist estate-ldif salt\0${lower(dn)}`)
          .digest()
          .subarray(0, 8);
  const legacyServerDn = (server: string): string =>
    `/o=${estate.organization}/ou=${adminGroup}/cn=Configuration/cn=Servers/cn=${server}`;

  const entries: { dn: string; attributes: Entry }[] = [];
  const add = (dn: string, ...attributes: (readonly [string, string])[]): void => {
    entries.push({ dn, attributes });
  };
  const container = (dn: string, cn: string): void => add(dn, ['objectClass', 'container'], ['cn', cn]);

  const firstLabel = /^dc=([^,]+)/i.exec(layout.suffix)?.[1];
  add(
    layout.suffix,
    ['objectClass', 'dcObject'],
    ['objectClass', 'organization'],
    ...(firstLabel ? [['dc', firstLabel] as const] : []),
    ['o', estate.organization],
  );
  container(layout.usersDn, 'Users');
  container(layout.configurationDn, 'Configuration');
  container(`cn=Sites,${layout.configurationDn}`, 'Sites');
  for (const site of estate.sites) {
    add(layout.siteDn(site.name), ['objectClass', 'site'], ['cn', site.name]);
  }
  container(`cn=Services,${layout.configurationDn}`, 'Services');
  container(`cn=Microsoft Exchange,cn=Services,${layout.configurationDn}`, 'Microsoft Exchange');
  container(layout.organizationDn, estate.organization);
  container(`cn=Administrative Groups,${layout.organizationDn}`, 'Administrative Groups');
  container(layout.adminGroupDn, adminGroup);
  container(layout.serversDn, 'Servers');

  // Databases of the estate, plus one per mailbox server that has none but holds users' mailboxes.
  const mailboxServers = new Set(estate.users.map((u) => lower(u.mailboxServer)));
  const databasesOf = (server: Server): readonly string[] =>
    server.databases.length > 0
      ? server.databases
      : mailboxServers.has(lower(server.name))
        ? [layout.defaultDatabase(server)]
        : [];
  const modern: { name: string; server: Server }[] = [];
  for (const site of estate.sites) {
    for (const server of site.servers) {
      add(
        layout.serverDn(server.name),
        ['objectClass', 'msExchExchangeServer'],
        ['cn', server.name],
        ['legacyExchangeDN', legacyServerDn(server.name)],
        ['msExchServerSite', layout.siteDn(site.name)],
        ['networkAddress', `ncacn_ip_tcp:${server.fqdn}`],
        ['description', `Exchange ${server.version}, roles: ${server.roles.join(', ')}`],
      );
      const dbs = databasesOf(server);
      if (server.version === 2007 && dbs.length > 0) {
        container(`cn=InformationStore,${layout.serverDn(server.name)}`, 'InformationStore');
        container(layout.storageGroupDn(server), 'First Storage Group');
      }
      for (const name of dbs) {
        if (server.version === 2007) addDatabase(name, server);
        else modern.push({ name, server });
      }
    }
  }
  if (modern.length > 0) container(layout.databasesDn, 'Databases');
  for (const { name, server } of modern) addDatabase(name, server);

  function addDatabase(name: string, server: Server): void {
    add(
      layout.databaseDn(name) as string,
      ['objectClass', 'msExchPrivateMDB'],
      ['cn', name],
      ['msExchOwningServer', layout.serverDn(server.name)],
    );
  }

  const password = (dn: string, clear: string): readonly [string, string] => [
    'userPassword',
    sshaPassword(clear, salt(dn)),
  ];
  add(
    layout.serviceAccountDn,
    ['objectClass', 'user'],
    ['cn', options.serviceAccount ?? 'coexist-svc'],
    ['description', 'coexist looks mailboxes up as this account (read only)'],
    password(layout.serviceAccountDn, options.servicePassword ?? options.password),
  );

  const servers = new Map(estate.sites.flatMap((s) => s.servers).map((s) => [lower(s.name), s]));
  const trustees = (addresses: readonly string[] | undefined): string[] =>
    (addresses ?? []).flatMap((a) => layout.userDn(a) ?? []);
  for (const user of estate.users) {
    const dn = layout.userDn(user.address) as string;
    const server = servers.get(lower(user.mailboxServer));
    const database = user.database ?? (server && (server.databases[0] ?? layout.defaultDatabase(server)));
    const homeMdb = database === undefined ? undefined : layout.databaseDn(database);
    const login = user.login?.slice(user.login.indexOf('\\') + 1);
    const alias = localPart(user.address);
    add(
      dn,
      ['objectClass', 'user'],
      ['cn', layout.userCn(user)],
      ['displayName', user.displayName],
      ['mail', user.address],
      ['proxyAddresses', `SMTP:${user.address}`],
      ...user.aliases.map((a) => ['proxyAddresses', `smtp:${a}`] as const),
      // The estate file's upn is "when it differs from the address": AD users always have one.
      ['userPrincipalName', user.upn ?? user.address],
      ...(login ? [['sAMAccountName', login] as const] : []),
      ['mailNickname', alias],
      ['legacyExchangeDN', `/o=${estate.organization}/ou=${adminGroup}/cn=Recipients/cn=${alias}`],
      ...(homeMdb ? [['homeMDB', homeMdb] as const] : []),
      ['msExchHomeServerName', legacyServerDn(server?.name ?? user.mailboxServer)],
      // Access grants on this mailbox, as AD holds them: DNs of the trustees (docs/security.md "Mailbox access").
      ...trustees(user.fullAccess).map((t) => ['msExchDelegateListLink', t] as const),
      ...trustees(user.delegates).map((t) => ['publicDelegates', t] as const),
      password(dn, options.password),
    );
  }

  // The ApplicationImpersonation role, as `New-ManagementRoleAssignment -SecurityGroup` assigns it: the
  // members of the first group hold it over every mailbox; a scoped holder has a group of its own and a
  // scope group listing the mailboxes (layout.impersonation, docs/security.md "Mailbox access").
  const holders = (all: boolean): User[] =>
    estate.users.filter((u) => (all ? u.impersonation === 'all' : Array.isArray(u.impersonation)));
  const group = (dn: string, cn: string, description: string, members: readonly string[]): void =>
    add(
      dn,
      ['objectClass', 'group'],
      ['cn', cn],
      ['description', description],
      ...members.map((m) => ['member', m] as const),
    );
  const [everyMailbox, ...scoped] = layout.impersonation;
  if (everyMailbox && holders(true).length > 0)
    group(
      everyMailbox.group,
      'ApplicationImpersonation',
      'ApplicationImpersonation role over every mailbox',
      holders(true).flatMap((u) => layout.userDn(u.address) ?? []),
    );
  holders(false).forEach((u, i) => {
    const assignment = scoped[i] as ImpersonationAssignment;
    const cn = layout.userCn(u);
    group(
      assignment.group,
      `ApplicationImpersonation ${cn}`,
      `ApplicationImpersonation role of ${u.address}, scoped`,
      trustees([u.address]),
    );
    group(
      assignment.scope as string,
      `Impersonation scope ${cn}`,
      `The mailboxes ${u.address} may impersonate`,
      trustees(u.impersonation === 'all' ? [] : u.impersonation),
    );
  });

  const head = [
    ...(options.comment ?? [
      `The directory of the estate ${estate.name}, written by coexist (src/directory/estate-ldif.ts).`,
      'Load with slapadd into a slapd that includes core, cosine, inetorgperson and coexist-exchange.schema.',
    ]),
  ].map((c) => (c === '' ? '#' : `# ${c}`));
  const blocks = entries.map(({ dn, attributes }) =>
    [line('dn', dn), ...attributes.map(([name, value]) => line(name, value))].join('\n'),
  );
  // No `version: 1` line: slapadd of OpenLDAP 2.5 rejects it ("entry -1 has no dn"); RFC 2849 makes it optional.
  return `${head.join('\n')}\n\n${blocks.join('\n\n')}\n`;
}
