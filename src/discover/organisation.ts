/**
 * What discovery finds in an Exchange organisation, whatever it was read from: Exchange Management Shell
 * exports (src/discover/shell) today, Active Directory's configuration partition later. A plain model of
 * Exchange's own objects (servers, databases, sites, virtual directories, accepted domains), kept close to
 * Exchange's terms; turning it into an estate (namespaces, internet-facing sites, URLs coexist can use) is
 * write-estate.ts's job, so each source only has to say what it saw (docs/discover.md).
 *
 * Every field that a source may not know is optional; `undefined` means "not in what was read", never a
 * guess. `mailboxes` and `certificates` are `undefined` when no such export was read at all, and an empty
 * list when one was read and held none.
 */

/** The virtual directories discovery reads, by coexist's protocol names (docs/config.md "urls"). */
export type VdirProtocol = 'autodiscover' | 'activesync' | 'ews' | 'owa' | 'ecp' | 'rpc' | 'mapi' | 'oab';

export const vdirProtocols: readonly VdirProtocol[] = [
  'autodiscover',
  'activesync',
  'ews',
  'owa',
  'ecp',
  'rpc',
  'mapi',
  'oab',
];

/** An Exchange build as AdminDisplayVersion gives it (`Version 15.0 (Build 1497.2)`: major 15, minor 0, build 1497, revision 2). */
export interface ExchangeBuild {
  readonly major: number;
  readonly minor: number;
  readonly build?: number;
  readonly revision?: number;
}

/** The product a build belongs to: 8.x 2007, 14.x 2010, 15.0 2013, 15.1 2016, 15.2 2019; `undefined` for anything else (2003 and older). */
export function productOf(build: ExchangeBuild): 2007 | 2010 | 2013 | 2016 | 2019 | undefined {
  if (build.major === 8) return 2007;
  if (build.major === 14) return 2010;
  if (build.major === 15)
    return build.minor === 0 ? 2013 : build.minor === 1 ? 2016 : build.minor === 2 ? 2019 : undefined;
  return undefined;
}

/** `15.0 (Build 1497.2)`: how the report prints a build. */
export const buildLabel = (b: ExchangeBuild): string =>
  `${b.major}.${b.minor}` +
  (b.build === undefined ? '' : ` (Build ${b.build}${b.revision === undefined ? '' : `.${b.revision}`})`);

/** Exchange server roles as Exchange names them; coexist routes through `ClientAccess` and `Mailbox` only. */
export type ExchangeRole = 'ClientAccess' | 'Mailbox' | 'HubTransport' | 'UnifiedMessaging' | 'Edge';

/** Outlook Anywhere's settings (Get-OutlookAnywhere): host names rather than URLs. */
export interface OutlookAnywhere {
  readonly externalHostname?: string;
  /** Exchange 2013 and later only. */
  readonly internalHostname?: string;
  /** Client authentication (ExternalClientAuthenticationMethod, or ClientAuthenticationMethod before 2013). */
  readonly externalAuth?: string;
  readonly internalAuth?: string;
  readonly iisAuth?: readonly string[];
}

/** One virtual directory of a Client Access server: its InternalUrl and ExternalUrl (each absent when empty). */
export interface VirtualDirectory {
  readonly protocol: VdirProtocol;
  /** Exchange's identity, `SERVER\owa (Default Web Site)`. */
  readonly identity: string;
  readonly internalUrl?: string;
  readonly externalUrl?: string;
  /** Set for `rpc` only. */
  readonly outlookAnywhere?: OutlookAnywhere;
  /** OWA's CrossSiteRedirectType (`Silent` or `Manual`, Exchange 2010 SP2 and later). */
  readonly crossSiteRedirectType?: string;
  /** Where this was read: `file:line` (CSV) or `file` (JSON), for messages. */
  readonly source: string;
}

export interface ExchangeServer {
  readonly name: string;
  readonly fqdn: string;
  readonly build: ExchangeBuild;
  readonly roles: readonly ExchangeRole[];
  /** The AD site's name (`New York`), when known. */
  readonly site?: string;
  readonly virtualDirectories: readonly VirtualDirectory[];
  /** The Autodiscover service connection point's URL (Get-ClientAccessServer AutoDiscoverServiceInternalUri). */
  readonly autodiscoverServiceInternalUri?: string;
  readonly source: string;
}

export interface MailboxDatabase {
  readonly name: string;
  /** The server the database is mounted on (for a DAG: the active copy's). */
  readonly server: string;
  readonly source: string;
}

export interface AdSite {
  readonly name: string;
}

export type AcceptedDomainType = 'Authoritative' | 'InternalRelay' | 'ExternalRelay';

export interface AcceptedDomain {
  readonly domain: string;
  readonly type?: AcceptedDomainType;
  readonly isDefault: boolean;
}

/** A mailbox, when mailboxes were exported too (otherwise users come from the directory). */
export interface Mailbox {
  readonly address: string;
  readonly displayName?: string;
  /** Secondary SMTP addresses (`smtp:` proxy addresses). */
  readonly aliases: readonly string[];
  readonly upn?: string;
  readonly samAccountName?: string;
  readonly database?: string;
  readonly server?: string;
}

/** A certificate of a server (Get-ExchangeCertificate), as far as discovery uses it. */
export interface ServerCertificate {
  readonly server: string;
  readonly thumbprint: string;
  /** Subject and subject alternative names (CertificateDomains). */
  readonly domains: readonly string[];
  /** Services it is enabled for (`IIS`, `SMTP`, ...). */
  readonly services: readonly string[];
}

/** Something a source noticed but could not use: shown with the report and in the estate's header. */
export interface DiscoveryNote {
  readonly source: string;
  readonly message: string;
}

export interface Organisation {
  /** The Exchange organisation's name (`/o=` of ExchangeLegacyDN), when known. */
  readonly name?: string;
  /** The Active Directory forest root domain (`o365info.local`), when known. */
  readonly adDomain?: string;
  readonly servers: readonly ExchangeServer[];
  readonly databases: readonly MailboxDatabase[];
  readonly sites: readonly AdSite[];
  readonly acceptedDomains: readonly AcceptedDomain[];
  readonly mailboxes?: readonly Mailbox[];
  readonly certificates?: readonly ServerCertificate[];
  /** AD's site subnets (CIDR), when read from AD: candidates for the estate's internalNetworks. */
  readonly subnets?: readonly string[];
  readonly notes: readonly DiscoveryNote[];
}

/** A server in a role coexist routes: Client Access (CAS) or Mailbox. */
export const isCas = (s: ExchangeServer): boolean => s.roles.includes('ClientAccess');
export const isMailbox = (s: ExchangeServer): boolean => s.roles.includes('Mailbox');
