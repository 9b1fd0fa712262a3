/**
 * What was read from Active Directory -> the organisation (src/discover/organisation.ts). Pure: read-ad.ts
 * does the LDAP searches and hands the entries over as they came. Exchange keeps its organisation in the
 * configuration partition (`CN=<org>,CN=Microsoft Exchange,CN=Services,CN=Configuration,...`): servers
 * (`msExchExchangeServer`: the build in serialNumber, roles in msExchCurrentServerRoles, the AD site in
 * msExchServerSite), databases (`msExchPrivateMDB` with msExchOwningServer), each Client Access server's
 * virtual directories under `CN=HTTP,CN=Protocols,<server>` (InternalUrl and ExternalUrl in
 * msExchInternalHostName and msExchExternalHostName; Outlook Anywhere keeps host names there), its
 * Autodiscover service connection point, and the accepted domains; the mailboxes are the domain's users
 * with a homeMDB. docs/lab.md §5.4 maps each fact to its place, docs/discover.md says how it is read.
 */
import { firstRdnValue } from '../../core/dn.ts';
import type {
  AcceptedDomain,
  AcceptedDomainType,
  AdSite,
  DiscoveryNote,
  ExchangeBuild,
  ExchangeRole,
  ExchangeServer,
  Mailbox,
  MailboxDatabase,
  Organisation,
  VdirProtocol,
  VirtualDirectory,
} from '../organisation.ts';
import { build as parseBuild } from '../shell/values.ts';

/** One LDAP entry as read: its DN and attributes (names as the server gave them, values as text). */
export interface AdEntry {
  readonly dn: string;
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}

/** Everything read-ad.ts found, before interpretation. */
export interface AdSnapshot {
  /** The URL read, for notes and messages. */
  readonly url: string;
  /** The rootDSE's defaultNamingContext (`DC=o365info,DC=local`). */
  readonly domainDn: string;
  /** The msExchOrganizationContainer. */
  readonly organization: AdEntry;
  /** Every object below the organization container (servers, databases, virtual directories, SCPs, accepted domains). */
  readonly objects: readonly AdEntry[];
  /** The AD sites (`CN=Sites,CN=Configuration,...`, objectClass site). */
  readonly sites: readonly AdEntry[];
  /** Users with a homeMDB. */
  readonly mailboxes: readonly AdEntry[];
  /** The site subnets (`CN=Subnets,CN=Sites,CN=Configuration,...`, objectClass subnet). */
  readonly subnets?: readonly AdEntry[];
}

/** The virtual directory classes of Exchange's schema and the protocol each serves. */
const vdirClasses: Readonly<Record<string, VdirProtocol>> = {
  msexchmobilevirtualdirectory: 'activesync',
  msexchwebservicesvirtualdirectory: 'ews',
  msexchowavirtualdirectory: 'owa',
  msexchecpvirtualdirectory: 'ecp',
  msexchoabvirtualdirectory: 'oab',
  msexchautodiscovervirtualdirectory: 'autodiscover',
  msexchrpchttpvirtualdirectory: 'rpc',
  msexchmapivirtualdirectory: 'mapi',
};

/** The keyword that marks an Exchange Autodiscover service connection point (Exchange's SCP GUID). */
const autodiscoverScpKeyword = '77378f46-2c66-4aa9-a6a6-3e7a48b19596';

const lc = (s: string): string => s.toLowerCase();
// eslint-disable-next-line no-control-regex -- exactly what it looks for
const controlCharacter = /[\u0000-\u001f\u007f]/;

/** All values of an attribute, its name matched case-insensitively (LDAP attribute names are). */
export function values(entry: AdEntry, name: string): readonly string[] {
  const direct = entry.attributes[name];
  if (direct) return direct;
  const lower = lc(name);
  for (const [k, v] of Object.entries(entry.attributes)) if (lc(k) === lower) return v;
  return [];
}

/** The first non-empty value of an attribute, or undefined. */
export function value(entry: AdEntry, name: string): string | undefined {
  return values(entry, name).find((v) => v.trim() !== '');
}

/** The value of a DN's first RDN (`CAS2007-NY` of `CN=CAS2007-NY,CN=Servers,...`), RFC 4514 escapes undone. */
export const rdnValue = (dn: string): string => firstRdnValue(dn) ?? '';

/** The DN's parent (everything after the first unescaped comma). */
export function parentDn(dn: string): string {
  for (let i = 0; i < dn.length; i++) {
    if (dn[i] === '\\') i++;
    else if (dn[i] === ',') return dn.slice(i + 1);
  }
  return '';
}

/** `DC=o365info,DC=local` -> `o365info.local`. */
export const dnsNameOf = (domainDn: string): string =>
  domainDn
    .split(',')
    .filter((p) => /^\s*dc=/i.test(p))
    .map((p) => p.slice(p.indexOf('=') + 1).trim())
    .join('.')
    .toLowerCase();

const classesOf = (e: AdEntry): string[] => values(e, 'objectClass').map(lc);
const isA = (e: AdEntry, cls: string): boolean => classesOf(e).includes(lc(cls));
/** Servers and databases in name order, as Get-ExchangeServer and Get-MailboxDatabase list them. */
const byName = (a: string, b: string): number => (lc(a) < lc(b) ? -1 : lc(a) > lc(b) ? 1 : 0);
/** Creation order (uSNCreated): the order Exchange setup wrote the objects in, stable from read to read. */
const created = (e: AdEntry): number => Number(value(e, 'uSNCreated') ?? Number.MAX_SAFE_INTEGER);
const byCreation = (a: AdEntry, b: AdEntry): number => created(a) - created(b) || a.dn.localeCompare(b.dn);

/**
 * The server's build: serialNumber holds `Version 8.3 (Build 30083.6)`, Exchange's build with 30000 added
 * (Get-ExchangeServer's AdminDisplayVersion shows `Version 8.3 (Build 83.6)`). Without it, msExchVersion,
 * the version of the objects a release's setup writes, gives the release only (2007, 2010, 2013 or later).
 */
export function serverBuild(e: AdEntry): ExchangeBuild | undefined {
  const serial = value(e, 'serialNumber');
  const parsed = serial === undefined ? undefined : parseBuild(serial);
  if (parsed) {
    return parsed.build !== undefined && parsed.build >= 30000
      ? { ...parsed, build: parsed.build - 30000 }
      : parsed;
  }
  const objectVersion = value(e, 'msExchVersion');
  if (objectVersion === undefined || !/^\d+$/.test(objectVersion)) return undefined;
  const v = BigInt(objectVersion);
  // ExchangeObjectVersion of 2007 (0.1, 8.0.535.0), 2010 (0.10, 14.0.100.0), 2013 and later (0.20, 15.0.0.0).
  if (v < 44220983382016n) return { major: 8, minor: 0 };
  if (v < 88218628259840n) return { major: 14, minor: 0 };
  return { major: 15, minor: 0 };
}

/**
 * msExchCurrentServerRoles: 2007 and 2010 Mailbox 2, ClientAccess 4, UnifiedMessaging 16, HubTransport 32,
 * Edge 64. From 2013 the Mailbox role also carries the back-end client access services (bit 4), and the
 * Client Access front end is Cafe (1): a 2013 Mailbox server is 54, a Client Access server 16385, both
 * 16439, as every 2016 and 2019 server.
 */
export function serverRoles(bits: number, build: ExchangeBuild): ExchangeRole[] {
  const modern = build.major >= 15;
  const roles: ExchangeRole[] = [];
  if (modern ? (bits & 1) !== 0 : (bits & 4) !== 0) roles.push('ClientAccess');
  if ((bits & 2) !== 0) roles.push('Mailbox');
  if ((bits & 16) !== 0) roles.push('UnifiedMessaging');
  if ((bits & 32) !== 0) roles.push('HubTransport');
  if ((bits & 64) !== 0) roles.push('Edge');
  return roles;
}

/** msExchAcceptedDomainFlags: the type in the low bits (Authoritative 0, ExternalRelay 1, InternalRelay 2), the default domain bit 4. */
export function acceptedDomainOf(e: AdEntry): AcceptedDomain | undefined {
  const name = value(e, 'msExchAcceptedDomainName') ?? value(e, 'cn');
  if (name === undefined) return undefined;
  const flags = Number(value(e, 'msExchAcceptedDomainFlags') ?? '0');
  const types: AcceptedDomainType[] = ['Authoritative', 'ExternalRelay', 'InternalRelay'];
  const type = Number.isInteger(flags) ? types[flags & 3] : undefined;
  return {
    domain: lc(name),
    ...(type !== undefined && { type }),
    isDefault: Number.isInteger(flags) && (flags & 4) !== 0,
  };
}

/** A URL as stored: absolute http(s), else a note and nothing. */
function urlValue(e: AdEntry, attribute: string, source: string, notes: DiscoveryNote[]): string | undefined {
  const v = value(e, attribute);
  if (v === undefined) return undefined;
  try {
    const u = new URL(v);
    if (u.protocol === 'https:' || u.protocol === 'http:') return v.trim();
  } catch {
    // reported below
  }
  notes.push({ source, message: `${attribute} "${v}" is not an http(s) URL: left out` });
  return undefined;
}

/** A host name as Outlook Anywhere stores it (a bare host; a URL's host is taken if one was written). */
function hostValue(e: AdEntry, attribute: string): string | undefined {
  const v = value(e, attribute);
  if (v === undefined) return undefined;
  try {
    return lc(new URL(v).hostname);
  } catch {
    return lc(v.trim());
  }
}

interface ServerDraft {
  readonly entry: AdEntry;
  readonly server: {
    name: string;
    fqdn: string;
    build: ExchangeBuild;
    roles: ExchangeRole[];
    site?: string;
    virtualDirectories: VirtualDirectory[];
    autodiscoverServiceInternalUri?: string;
    source: string;
  };
}

/** The organisation Exchange wrote into AD. */
export function organisationFromAd(read: AdSnapshot): Organisation {
  const notes: DiscoveryNote[] = [];
  const source = (e: AdEntry): string => `${read.url} ${JSON.stringify(e.dn).slice(1, -1)}`;
  // A value with a control character (a line break in a name) is no name Exchange writes, and would break
  // the lines of the written estate and its comments: such an object is noted and left out.
  const clean = (entries: readonly AdEntry[]): AdEntry[] =>
    entries.filter((e) => {
      const bad = [e.dn, ...Object.values(e.attributes).flat()].some((v) => controlCharacter.test(v));
      if (bad) notes.push({ source: source(e), message: 'a value holds a control character: left out' });
      return !bad;
    });
  const snapshot: AdSnapshot = {
    ...read,
    objects: clean(read.objects),
    sites: clean(read.sites),
    mailboxes: clean(read.mailboxes),
    subnets: clean(read.subnets ?? []),
  };
  const objects = [...snapshot.objects].sort(byCreation);

  // --- sites ------------------------------------------------------------------------------------------------
  const siteNameByDn = new Map<string, string>();
  const sites: AdSite[] = [];
  for (const e of [...snapshot.sites].sort(byCreation)) {
    const name = value(e, 'cn') ?? rdnValue(e.dn);
    siteNameByDn.set(lc(e.dn), name);
    sites.push({ name });
  }

  // --- servers ----------------------------------------------------------------------------------------------
  const servers = new Map<string, ServerDraft>(); // by lower-case DN
  for (const e of objects.filter((o) => isA(o, 'msExchExchangeServer'))) {
    const name = value(e, 'cn') ?? rdnValue(e.dn);
    const build = serverBuild(e);
    if (!build) {
      notes.push({
        source: source(e),
        message: `server ${name} has neither a serialNumber version nor an msExchVersion: left out`,
      });
      continue;
    }
    const ncacn = values(e, 'networkAddress')
      .find((a) => /^ncacn_ip_tcp:/i.test(a))
      ?.slice('ncacn_ip_tcp:'.length);
    const fqdn = lc(value(e, 'dNSHostName') ?? ncacn ?? name);
    const siteDn = value(e, 'msExchServerSite');
    const site = siteDn === undefined ? undefined : (siteNameByDn.get(lc(siteDn)) ?? rdnValue(siteDn));
    const bits = Number(value(e, 'msExchCurrentServerRoles') ?? value(e, 'msExchServerRole') ?? '0');
    servers.set(lc(e.dn), {
      entry: e,
      server: {
        name,
        fqdn,
        build,
        roles: serverRoles(Number.isInteger(bits) ? bits : 0, build),
        ...(site !== undefined && { site }),
        virtualDirectories: [],
        source: source(e),
      },
    });
  }
  /** The server an object sits under (its DN ends with the server's). */
  const serverAbove = (e: AdEntry): ServerDraft | undefined => {
    const dn = lc(e.dn);
    for (const [serverDn, s] of servers) if (dn.endsWith(`,${serverDn}`)) return s;
    return undefined;
  };

  // --- virtual directories and the Autodiscover service connection points ------------------------------------
  for (const e of objects) {
    const protocol = classesOf(e)
      .map((c) => vdirClasses[c])
      .find((p) => p !== undefined);
    const isScp =
      isA(e, 'serviceConnectionPoint') && values(e, 'keywords').some((k) => lc(k) === autodiscoverScpKeyword);
    if (protocol === undefined && !isScp) continue;
    const s = serverAbove(e);
    if (!s) {
      notes.push({ source: source(e), message: 'not under an Exchange server this read found: left out' });
      continue;
    }
    if (isScp) {
      const uri = urlValue(e, 'serviceBindingInformation', source(e), notes);
      if (uri !== undefined) s.server.autodiscoverServiceInternalUri = uri;
      continue;
    }
    const identity = `${s.server.name}\\${value(e, 'cn') ?? rdnValue(e.dn)}`;
    if (protocol === 'rpc') {
      const externalHostname = hostValue(e, 'msExchExternalHostName');
      const internalHostname = hostValue(e, 'msExchInternalHostName');
      s.server.virtualDirectories.push({
        protocol,
        identity,
        outlookAnywhere: {
          ...(externalHostname !== undefined && { externalHostname }),
          ...(internalHostname !== undefined && { internalHostname }),
        },
        source: source(e),
      });
      continue;
    }
    const internalUrl = urlValue(e, 'msExchInternalHostName', source(e), notes);
    const externalUrl = urlValue(e, 'msExchExternalHostName', source(e), notes);
    s.server.virtualDirectories.push({
      protocol: protocol as VdirProtocol,
      identity,
      ...(internalUrl !== undefined && { internalUrl }),
      ...(externalUrl !== undefined && { externalUrl }),
      source: source(e),
    });
  }

  // --- databases ---------------------------------------------------------------------------------------------
  const databases: MailboxDatabase[] = [];
  const databaseByDn = new Map<string, MailboxDatabase>();
  for (const e of objects.filter((o) => isA(o, 'msExchPrivateMDB'))) {
    const name = value(e, 'cn') ?? rdnValue(e.dn);
    const owner = value(e, 'msExchOwningServer');
    const s = owner === undefined ? serverAbove(e) : servers.get(lc(owner));
    if (!s) {
      notes.push({
        source: source(e),
        message: `database ${name}: its owning server ${owner ?? '(none)'} is no Exchange server this read found: left out`,
      });
      continue;
    }
    const db: MailboxDatabase = { name, server: s.server.name, source: source(e) };
    databases.push(db);
    databaseByDn.set(lc(e.dn), db);
  }

  // --- accepted domains ----------------------------------------------------------------------------------------
  const acceptedDomains = objects
    .filter((o) => isA(o, 'msExchAcceptedDomain'))
    .flatMap((e) => acceptedDomainOf(e) ?? []);

  // --- mailboxes ---------------------------------------------------------------------------------------------------
  const mailboxes: Mailbox[] = [];
  for (const e of snapshot.mailboxes) {
    const proxies = values(e, 'proxyAddresses');
    const primary = proxies.find((p) => p.startsWith('SMTP:'))?.slice(5) ?? value(e, 'mail');
    if (primary === undefined) {
      notes.push({ source: source(e), message: 'a mailbox user with no primary SMTP address: left out' });
      continue;
    }
    const address = lc(primary);
    const aliases = [
      ...new Set(
        proxies
          .filter((p) => p.startsWith('smtp:'))
          .map((p) => lc(p.slice(5)))
          .filter((a) => a !== address),
      ),
    ];
    const homeMdb = value(e, 'homeMDB');
    const db = homeMdb === undefined ? undefined : databaseByDn.get(lc(homeMdb));
    if (homeMdb !== undefined && !db)
      notes.push({
        source: source(e),
        message: `mailbox ${address}: its homeMDB ${homeMdb} is no database this read found`,
      });
    const displayName = value(e, 'displayName');
    const upn = value(e, 'userPrincipalName');
    const sam = value(e, 'sAMAccountName');
    mailboxes.push({
      address,
      aliases,
      ...(displayName !== undefined && { displayName }),
      ...(upn !== undefined && { upn }),
      ...(sam !== undefined && { samAccountName: sam }),
      ...(db !== undefined && { database: db.name, server: db.server }),
    });
  }
  // By primary SMTP address, as trace --all lists a directory's users: the order AD returns is no order.
  mailboxes.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));

  // The sites that hold an Exchange server, in the order of their first server (as the exports list them).
  const serverList = [...servers.values()]
    .map((s): ExchangeServer => s.server)
    .sort((a, b) => byName(a.name, b.name));
  const siteOrder = [...new Set(serverList.flatMap((s) => (s.site ? [lc(s.site)] : [])))];
  const withServers = new Set(siteOrder);
  const others = sites.filter((s) => !withServers.has(lc(s.name))).map((s) => s.name);
  if (others.length > 0)
    notes.push({
      source: `${snapshot.url} CN=Sites`,
      message: `AD sites without an Exchange server, not in the estate: ${others.join(', ')}`,
    });
  const orgName = value(snapshot.organization, 'cn') ?? rdnValue(snapshot.organization.dn);
  const name = controlCharacter.test(orgName) ? undefined : orgName;
  const adDomain = dnsNameOf(snapshot.domainDn);
  // A subnet's name is its prefix (10.1.0.0/16, 2001:db8::/32).
  const subnets = [...(snapshot.subnets ?? [])]
    .sort(byCreation)
    .map((e) => value(e, 'cn') ?? rdnValue(e.dn))
    .filter((cidr) => /^[0-9A-Fa-f.:]+\/\d{1,3}$/.test(cidr));
  return {
    ...(name !== undefined && { name }),
    ...(adDomain !== '' && { adDomain }),
    servers: serverList,
    databases: databases.sort((a, b) => byName(a.name, b.name)),
    sites: siteOrder.map((site) => sites.find((s) => lc(s.name) === site) ?? { name: site }),
    acceptedDomains,
    mailboxes,
    ...(subnets.length > 0 && { subnets }),
    notes,
  };
}
