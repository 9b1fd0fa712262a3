/**
 * An estate as the Active Directory objects Exchange 2007/2010/2013 would have written for it
 * (docs/lab.md §5.4 maps each estate fact to its place): the organization in the configuration
 * partition with its administrative group, servers (version, roles, AD site), databases (2007 inside the
 * server's storage group, 2010+ under CN=Databases), each CAS's virtual directories with internal and
 * external URLs and its Autodiscover service connection point; the AD sites, the internal networks as
 * subnets, the accepted domains; users with mailboxes, the service account coexist searches with, and the
 * ApplicationImpersonation groups. The DNs below the domain are those of `estateLdapLayout`, so the
 * OpenLDAP lab and this one differ only in their suffix.
 *
 * Pure: it builds the entries, src/lab/samba/samba.ts writes them. Passwords are set by the writer, never
 * kept here.
 */
import { createHash } from 'node:crypto';
import type { Estate, ProductVersion, Server, User } from '../../core/estate/estate.ts';
import type { Protocol } from '../../core/protocols/protocol.ts';
import { escapeDnValue, estateLdapLayout, type EstateLdapLayout } from '../../directory/estate-ldif.ts';
import type { LdapAddition } from './exchange-schema.ts';
import { virtualDirectoryClasses } from './exchange-schema.ts';

/** Exchange 2007+'s one administrative group (the name every 2007-2019 organization has). */
export const adminGroupName = 'Exchange Administrative Group (FYDIBOHF23SPDLT)';

/** The AD domain of an estate: its DNS name (the Kerberos realm in upper case) and NetBIOS name. */
export interface AdDomain {
  /** e.g. o365info.local */
  readonly dnsName: string;
  /** e.g. O365INFO */
  readonly netbios: string;
  /** e.g. DC=o365info,DC=local */
  readonly dn: string;
}

const lower = (s: string): string => s.toLowerCase();
const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1);
const mostCommon = (values: readonly string[]): string | undefined => {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
};

/**
 * The estate's AD domain: the DNS name its users' UPNs use (the UPNs that differ from the addresses),
 * else the domain of its servers' FQDNs; the NetBIOS name of its DOMAIN\login names, else the first label
 * of the DNS name in upper case.
 */
export function adDomainOf(estate: Estate, override: { dnsName?: string; netbios?: string } = {}): AdDomain {
  const upnDomains = estate.users
    .filter((u) => u.upn !== undefined && lower(u.upn) !== lower(u.address))
    .map((u) => lower(domainOf(u.upn as string)));
  const fqdnDomains = estate.sites
    .flatMap((s) => s.servers)
    .map((s) => lower(s.fqdn))
    .filter((f) => f.includes('.'))
    .map((f) => f.slice(f.indexOf('.') + 1));
  const dnsName =
    override.dnsName ??
    mostCommon(upnDomains) ??
    mostCommon(fqdnDomains) ??
    `${(estate.domains[0] ?? 'example.com').split('.')[0] ?? 'example'}.local`;
  const logins = estate.users.flatMap((u) =>
    u.login?.includes('\\') ? [u.login.split('\\')[0] as string] : [],
  );
  const netbios = (override.netbios ?? mostCommon(logins) ?? dnsName.split('.')[0] ?? 'EXAMPLE')
    .toUpperCase()
    .slice(0, 15);
  const dn = dnsName
    .split('.')
    .map((label) => `DC=${escapeDnValue(label)}`)
    .join(',');
  return { dnsName, netbios, dn };
}

/** What `adEstate` gives back: the entries in creation order, and where things are. */
export interface AdEstate {
  readonly domain: AdDomain;
  readonly layout: EstateLdapLayout;
  readonly configurationDn: string;
  readonly organizationDn: string;
  /** Added in order (parents first); users carry no password here. */
  readonly entries: readonly LdapAddition[];
  /** The mailbox users and the service account: DN, sAMAccountName and UPN (passwords are set on these). */
  readonly accounts: readonly {
    readonly dn: string;
    readonly sAMAccountName: string;
    readonly upn: string;
  }[];
  /** The service account's DN, sAMAccountName and UPN. */
  readonly serviceAccount: { readonly dn: string; readonly sAMAccountName: string; readonly upn: string };
  /** Changes made once every entry exists: access grants and group members (DN-valued links). */
  readonly links: readonly {
    readonly dn: string;
    readonly attribute: string;
    readonly values: readonly string[];
  }[];
}

/** Options of `adEstate`. */
export interface AdEstateOptions {
  readonly dnsName?: string;
  readonly netbios?: string;
  /** The service account's sAMAccountName (and CN); `coexist-svc` by default. */
  readonly serviceAccount?: string;
}

/**
 * msExchVersion, the ExchangeObjectVersion of the objects a version's setup writes: Exchange 2007
 * (0.1, 8.0.535.0), 2010 (0.10, 14.0.100.0), 2013 and later (0.20, 15.0.0.0).
 */
export const msExchVersionOf = (v: ProductVersion): string =>
  v === 2007 ? '4535486012416' : v === 2010 ? '44220983382016' : '88218628259840';

/** A build of each version, as the server object's serialNumber writes it ("Version 8.3 (Build 30083.6)"). */
const builds: Readonly<Record<ProductVersion, { readonly version: string; readonly build: string }>> = {
  2007: { version: '8.3', build: '83.6' },
  2010: { version: '14.3', build: '123.4' },
  2013: { version: '15.0', build: '1497.2' },
  2016: { version: '15.1', build: '2507.6' },
  2019: { version: '15.2', build: '1118.7' },
};

/**
 * The server object's serialNumber: Exchange writes the build with 30000 added ("Version 8.3 (Build
 * 30083.6)"); Get-ExchangeServer's AdminDisplayVersion shows it without ("Version 8.3 (Build 83.6)").
 */
export function serialNumberOf(v: ProductVersion): string {
  const { version, build } = builds[v];
  const [major, minor] = build.split('.');
  return `Version ${version} (Build ${30000 + Number(major)}.${minor ?? '0'})`;
}

/**
 * msExchCurrentServerRoles: Mailbox 2, ClientAccess 4 for 2007 and 2010; Exchange 2013's Mailbox role
 * (which holds the back-end client access services) 54 and its Client Access front end 16385, both 16439;
 * 2016 and 2019 have one role, 16439 with or without an edge.
 */
export function serverRolesOf(server: Pick<Server, 'version' | 'roles'>): number {
  const cas = server.roles.includes('cas');
  const mailbox = server.roles.includes('mailbox');
  if (server.version === 2007 || server.version === 2010) return (mailbox ? 2 : 0) | (cas ? 4 : 0);
  if (server.version === 2013) return cas && mailbox ? 16439 : cas ? 16385 : 54;
  return 16439;
}

/** The name of each protocol's virtual directory in the Default Web Site, as Exchange names it. */
export const virtualDirectoryNames: Readonly<Record<Protocol, string>> = {
  activesync: 'Microsoft-Server-ActiveSync (Default Web Site)',
  ews: 'EWS (Default Web Site)',
  owa: 'owa (Default Web Site)',
  ecp: 'ecp (Default Web Site)',
  oab: 'OAB (Default Web Site)',
  autodiscover: 'Autodiscover (Default Web Site)',
  rpc: 'Rpc (Default Web Site)',
  mapi: 'mapi (Default Web Site)',
};

/** The keywords of an Autodiscover service connection point (Exchange's SCP GUIDs, then the site). */
const scpKeywords = ['77378F46-2C66-4aa9-A6A6-3E7A48B19596', '67661d7F-8FC4-4fa7-BFAC-E1D7794C1F68'];

/** msExchRecipientTypeDetails of a user mailbox (UserMailbox). */
const userMailbox = '1';

/** A mailbox GUID derived from the address, so the same estate always gives the same directory. */
const mailboxGuid = (address: string): Buffer =>
  createHash('sha256')
    .update(`coexist mailbox guid\0${lower(address)}`)
    .digest()
    .subarray(0, 16);

/** The host of a URL (a virtual directory's Outlook Anywhere host names are hosts, not URLs). */
const hostOf = (url: string): string => new URL(url).hostname;

/** sAMAccountName: the login's user part, else the address's local part; at most 20 characters. */
const samOf = (u: User): string =>
  (u.login?.includes('\\')
    ? u.login.slice(u.login.indexOf('\\') + 1)
    : u.address.slice(0, u.address.lastIndexOf('@'))
  )
    .replace(/["/\\[\]:;|=,+*?<>@]/g, '-')
    .slice(0, 20);

/** The estate as Active Directory entries (docs/lab.md §5.4). */
export function adEstate(estate: Estate, options: AdEstateOptions = {}): AdEstate {
  const domain = adDomainOf(estate, options);
  const service = options.serviceAccount ?? 'coexist-svc';
  const layout = estateLdapLayout(estate, { suffix: domain.dn, serviceAccount: service });
  const configurationDn = `CN=Configuration,${domain.dn}`;
  const exchangeDn = `CN=Microsoft Exchange,CN=Services,${configurationDn}`;
  const organizationDn = `CN=${escapeDnValue(estate.organization)},${exchangeDn}`;
  const adminGroupsDn = `CN=Administrative Groups,${organizationDn}`;
  const adminGroupDn = `CN=${escapeDnValue(adminGroupName)},${adminGroupsDn}`;
  const legacyOrg = `/o=${estate.organization}/ou=${adminGroupName}`;
  const legacyServer = (name: string): string => `${legacyOrg}/cn=Configuration/cn=Servers/cn=${name}`;

  const entries: LdapAddition[] = [];
  const add = (dn: string, attributes: LdapAddition['attributes']): void => {
    entries.push({ dn, attributes });
  };
  const container = (dn: string, objectClass = 'container'): void => add(dn, { objectClass });

  // Sites (with the children AD gives every site) and the internal networks as subnets.
  for (const site of estate.sites) {
    const dn = layout.siteDn(site.name);
    add(dn, { objectClass: 'site' });
    add(`CN=NTDS Site Settings,${dn}`, { objectClass: 'nTDSSiteSettings' });
    add(`CN=Servers,${dn}`, { objectClass: 'serversContainer' });
  }
  for (const network of estate.internalNetworks) {
    add(`CN=${escapeDnValue(network)},CN=Subnets,CN=Sites,${configurationDn}`, {
      objectClass: 'subnet',
      description: 'An internal network of the estate (its clients are internal)',
    });
  }

  // The organization.
  add(exchangeDn, { objectClass: 'msExchConfigurationContainer' });
  add(organizationDn, { objectClass: 'msExchOrganizationContainer', msExchVersion: msExchVersionOf(2007) });
  add(adminGroupsDn, { objectClass: 'msExchAdminGroupContainer' });
  add(adminGroupDn, { objectClass: 'msExchAdminGroup', legacyExchangeDN: legacyOrg });
  add(`CN=Servers,${adminGroupDn}`, { objectClass: 'msExchServersContainer' });

  // Accepted domains: the estate's own domains (the first is the default), then the remote domains,
  // which a hybrid organization accepts and relays (InternalRelay).
  const transportDn = `CN=Transport Settings,${organizationDn}`;
  container(transportDn);
  container(`CN=Accepted Domains,${transportDn}`);
  const accepted = [
    ...estate.domains.map((d) => ({ name: d, flags: '0' })),
    ...estate.remoteDomains.map((r) => ({ name: r.domain, flags: '2' })),
  ];
  for (const { name, flags } of accepted) {
    add(`CN=${escapeDnValue(name)},CN=Accepted Domains,${transportDn}`, {
      objectClass: 'msExchAcceptedDomain',
      msExchAcceptedDomainName: name,
      msExchAcceptedDomainFlags: flags,
    });
  }

  // Servers, their databases and virtual directories.
  const mailboxServers = new Set(estate.users.map((u) => lower(u.mailboxServer)));
  const defaultDatabase = (server: Server): string => `Mailbox Database ${server.name}`;
  const databasesOf = (server: Server): readonly string[] =>
    server.databases.length > 0
      ? server.databases
      : mailboxServers.has(lower(server.name))
        ? [defaultDatabase(server)]
        : [];
  const modern: { name: string; server: Server }[] = [];
  const database = (name: string, server: Server): void =>
    add(layout.databaseDn(name) as string, {
      objectClass: 'msExchPrivateMDB',
      msExchOwningServer: layout.serverDn(server.name),
      legacyExchangeDN: `${legacyServer(server.name)}/cn=Microsoft Private MDB`,
      msExchVersion: msExchVersionOf(server.version),
    });
  for (const site of estate.sites) {
    for (const server of site.servers) {
      const serverDn = layout.serverDn(server.name);
      add(serverDn, {
        objectClass: 'msExchExchangeServer',
        serialNumber: serialNumberOf(server.version),
        msExchCurrentServerRoles: String(serverRolesOf(server)),
        msExchServerSite: layout.siteDn(site.name),
        msExchVersion: msExchVersionOf(server.version),
        networkAddress: [`ncacn_ip_tcp:${server.fqdn}`, `netbios:${server.name}`],
        dNSHostName: server.fqdn,
        legacyExchangeDN: legacyServer(server.name),
      });
      const dbs = databasesOf(server);
      if (server.version === 2007 && dbs.length > 0) {
        add(`CN=InformationStore,${serverDn}`, { objectClass: 'msExchInformationStore' });
        add(`CN=First Storage Group,CN=InformationStore,${serverDn}`, { objectClass: 'msExchStorageGroup' });
      }
      for (const name of dbs) {
        if (server.version === 2007) database(name, server);
        else modern.push({ name, server });
      }
      const protocols = Object.entries(server.urls) as [Protocol, { internal?: string; external?: string }][];
      if (protocols.length > 0) {
        container(`CN=Protocols,${serverDn}`);
        container(`CN=HTTP,CN=Protocols,${serverDn}`);
      }
      for (const [protocol, urls] of protocols) {
        // Outlook Anywhere keeps host names (its ExternalHostname / InternalHostname), the others URLs.
        const value = (url: string | undefined): string | undefined =>
          url === undefined ? undefined : protocol === 'rpc' ? hostOf(url) : url;
        const internal = value(urls.internal);
        const external = value(urls.external);
        add(`CN=${escapeDnValue(virtualDirectoryNames[protocol])},CN=HTTP,CN=Protocols,${serverDn}`, {
          objectClass: virtualDirectoryClasses[protocol],
          msExchVersion: msExchVersionOf(server.version),
          ...(internal === undefined ? {} : { msExchInternalHostName: internal }),
          ...(external === undefined ? {} : { msExchExternalHostName: external }),
        });
      }
      // What Outlook finds in AD: the Autodiscover service connection point (AutoDiscoverServiceInternalUri).
      const scpUrl = server.urls.autodiscover?.internal;
      if (scpUrl !== undefined) {
        container(`CN=Autodiscover,CN=Protocols,${serverDn}`);
        add(`CN=${escapeDnValue(server.name)},CN=Autodiscover,CN=Protocols,${serverDn}`, {
          objectClass: 'serviceConnectionPoint',
          serviceBindingInformation: scpUrl,
          keywords: [...scpKeywords, `Site=${site.name}`],
        });
      }
    }
  }
  if (modern.length > 0) add(`CN=Databases,${adminGroupDn}`, { objectClass: 'msExchMDBContainer' });
  for (const { name, server } of modern) database(name, server);

  // Users.
  const servers = new Map(estate.sites.flatMap((s) => s.servers).map((s) => [lower(s.name), s]));
  const accounts: { dn: string; sAMAccountName: string; upn: string }[] = [];
  const serviceAccount = {
    dn: layout.serviceAccountDn,
    sAMAccountName: service.slice(0, 20),
    upn: `${service}@${domain.dnsName}`,
  };
  add(serviceAccount.dn, {
    objectClass: 'user',
    sAMAccountName: serviceAccount.sAMAccountName,
    userPrincipalName: serviceAccount.upn,
    description: 'coexist looks mailboxes up as this account (read only)',
  });
  accounts.push(serviceAccount);
  for (const user of estate.users) {
    const dn = layout.userDn(user.address) as string;
    const server = servers.get(lower(user.mailboxServer));
    const db = user.database ?? (server && (server.databases[0] ?? defaultDatabase(server)));
    const homeMdb = db === undefined ? undefined : layout.databaseDn(db);
    const alias = user.address.slice(0, user.address.lastIndexOf('@'));
    const sam = samOf(user);
    const upn = user.upn ?? user.address;
    add(dn, {
      objectClass: 'user',
      sAMAccountName: sam,
      // The estate file's upn is "when it differs from the address": AD users always have one.
      userPrincipalName: upn,
      displayName: user.displayName,
      mail: user.address,
      proxyAddresses: [`SMTP:${user.address}`, ...user.aliases.map((a) => `smtp:${a}`)],
      mailNickname: alias,
      legacyExchangeDN: `${legacyOrg}/cn=Recipients/cn=${alias}`,
      ...(homeMdb === undefined ? {} : { homeMDB: homeMdb }),
      msExchHomeServerName: legacyServer(server?.name ?? user.mailboxServer),
      msExchMailboxGuid: mailboxGuid(user.address),
      msExchRecipientTypeDetails: userMailbox,
      ...(server ? { msExchVersion: msExchVersionOf(server.version) } : {}),
    });
    accounts.push({ dn, sAMAccountName: sam, upn });
  }

  // Access grants and the ApplicationImpersonation groups, once every user exists.
  const links: { dn: string; attribute: string; values: string[] }[] = [];
  const dnsOf = (addresses: readonly string[] | undefined): string[] =>
    (addresses ?? []).flatMap((a) => layout.userDn(a) ?? []);
  for (const user of estate.users) {
    const dn = layout.userDn(user.address) as string;
    const full = dnsOf(user.fullAccess);
    const delegates = dnsOf(user.delegates);
    if (full.length > 0) links.push({ dn, attribute: 'msExchDelegateListLink', values: full });
    if (delegates.length > 0) links.push({ dn, attribute: 'publicDelegates', values: delegates });
  }
  const [everyMailbox, ...scoped] = layout.impersonation;
  let groupNumber = 0;
  const group = (dn: string, description: string, members: readonly string[]): void => {
    groupNumber += 1;
    add(dn, {
      objectClass: 'group',
      sAMAccountName: `coexist-grp-${groupNumber}`,
      description,
    });
    if (members.length > 0) links.push({ dn, attribute: 'member', values: [...members] });
  };
  const allHolders = estate.users.filter((u) => u.impersonation === 'all');
  if (everyMailbox && allHolders.length > 0) {
    group(
      everyMailbox.group,
      'ApplicationImpersonation role over every mailbox',
      dnsOf(allHolders.map((u) => u.address)),
    );
  }
  estate.users
    .filter((u) => Array.isArray(u.impersonation))
    .forEach((u, i) => {
      const assignment = scoped[i];
      if (assignment?.scope === undefined) return;
      group(assignment.group, `ApplicationImpersonation role of ${u.address}, scoped`, dnsOf([u.address]));
      group(
        assignment.scope,
        `The mailboxes ${u.address} may impersonate`,
        dnsOf(u.impersonation === 'all' ? [] : u.impersonation),
      );
    });

  return { domain, layout, configurationDn, organizationDn, entries, accounts, serviceAccount, links };
}
