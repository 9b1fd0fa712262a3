/**
 * The estate: sites, servers, namespaces, users and policies of a mail organization in coexistence.
 * A readonly snapshot, produced once by the config loader (src/config) and compiled by `indexEstate`.
 */
import type { Protocol } from '../protocols/protocol.ts';

/** Exchange product generations the engine distinguishes. 2013, 2016 and 2019 share the 2013 front-end model. */
export type ProductVersion = 2007 | 2010 | 2013 | 2016 | 2019;

/** The routing family of a version: what matters for proxy-vs-redirect decisions. */
export type VersionFamily = 2007 | 2010 | 'modern';

export const familyOf = (v: ProductVersion): VersionFamily =>
  v === 2007 ? 2007 : v === 2010 ? 2010 : 'modern';

/** `2013+` for the modern family, the year otherwise. */
export const familyLabel = (f: VersionFamily): string => (f === 'modern' ? '2013+' : String(f));

export type ServerRole = 'cas' | 'mailbox';

/** A virtual directory's URLs (Exchange's InternalUrl / ExternalUrl). A missing external URL means "not internet-facing for this protocol". */
export interface ProtocolUrls {
  readonly internal?: string;
  readonly external?: string;
}

export interface Server {
  /** Display name, unique in the estate, e.g. `CAS2013-NY`. */
  readonly name: string;
  /** Internal host name, e.g. `cas2013-ny.o365info.local`. */
  readonly fqdn: string;
  readonly version: ProductVersion;
  readonly roles: readonly ServerRole[];
  /** Name of the site the server is in. */
  readonly site: string;
  readonly urls: Readonly<Partial<Record<Protocol, ProtocolUrls>>>;
  /** Mailbox databases mounted on this server (mailbox role). */
  readonly databases: readonly string[];
  /**
   * What each virtual directory lets clients authenticate with, as Exchange's
   * `Set-*VirtualDirectory -BasicAuthentication/-WindowsAuthentication` set it. A protocol not listed
   * offers Basic only (docs/config.md "sites[].servers[].authentication").
   */
  readonly authentication?: Readonly<Partial<Record<Protocol, readonly AuthMethod[]>>>;
}

/**
 * A way a client proves who it is on a virtual directory: `basic` (RFC 7617), `ntlm` (MS-NLMP over HTTP,
 * `Authorization: NTLM`), `negotiate` (RFC 4559 SPNEGO: Kerberos, or NTLM inside).
 */
export type AuthMethod = 'basic' | 'ntlm' | 'negotiate';

export interface Site {
  readonly name: string;
  /** Declared exposure; the loader checks it against the servers' external URLs. */
  readonly internetFacing: boolean;
  readonly servers: readonly Server[];
}

export type NamespaceKind = 'primary' | 'autodiscover' | 'legacy' | 'regional' | 'other';

/** A public or internal host name and the server it resolves to (the estate's DNS). */
export interface Namespace {
  readonly host: string;
  readonly kind: NamespaceKind;
  readonly server: string;
}

export interface User {
  /** Primary SMTP address. */
  readonly address: string;
  readonly displayName: string;
  /** Secondary SMTP addresses. */
  readonly aliases: readonly string[];
  /** Down-level logon name, e.g. `O365INFO\\bob`. */
  readonly login?: string;
  readonly upn?: string;
  /** Server holding the mailbox (resolved from the database when the file names a database). */
  readonly mailboxServer: string;
  readonly database?: string;
  /** Password hash for the embedded directory (never a clear password). */
  readonly passwordHash?: string;
  /**
   * Primary SMTP addresses of the users granted full access to this mailbox (Exchange's FullAccess
   * mailbox permission; AD's msExchDelegateListLink): they may open it in every protocol
   * (docs/security.md "Mailbox access").
   */
  readonly fullAccess?: readonly string[];
  /** Primary SMTP addresses of this mailbox's delegates (AD's publicDelegates): they may open it over EWS. */
  readonly delegates?: readonly string[];
  /**
   * The ApplicationImpersonation role held by this user (a service account): over every mailbox (`all`) or
   * over the mailboxes listed, by primary SMTP address. With it, the user may act as one of those mailboxes'
   * owners over EWS (the `ExchangeImpersonation` SOAP header; docs/security.md "Mailbox access"). None when
   * absent.
   */
  readonly impersonation?: 'all' | readonly string[];
}

/** ActiveSync for a mailbox in another internet-facing site: proxy (2013 behaviour, docs/flows.md EAS-3A) or answer 451 (EAS-legacy). */
export type ActiveSyncCrossSite = 'proxy' | 'redirect-451';
/** How the front end presents an OWA redirect (docs/protocols.md §2.5): a plain 302, or the silent FBA replay of 2010 SP2+. */
export type OwaRedirectStyle = 'http-302' | 'silent-fba';
/** Autodiscover for a 2007 mailbox: answered by the front end from the directory, or proxied to a local 2013 mailbox server that builds it (docs/protocols.md §2.8). */
export type AutodiscoverLegacy = 'answer-at-front-end' | 'proxy-to-mailbox';

/** The ActiveSync URL Autodiscover gives a legacy mailbox in another internet-facing site: that site's own (regional) namespace (docs/flows.md EAS-3B), or the primary namespace, where the front end proxies it (EAS-3A). */
export type MobileAutodiscover = 'site-namespace' | 'primary-namespace';

export interface Policies {
  readonly activesyncCrossSite: ActiveSyncCrossSite;
  readonly owaRedirectStyle: OwaRedirectStyle;
  readonly autodiscoverLegacy: AutodiscoverLegacy;
  readonly mobileAutodiscover: MobileAutodiscover;
}

export const defaultPolicies: Policies = {
  activesyncCrossSite: 'proxy',
  owaRedirectStyle: 'http-302',
  autodiscoverLegacy: 'answer-at-front-end',
  mobileAutodiscover: 'site-namespace',
};

/** A domain whose mailboxes live elsewhere, and where Autodiscover sends its users (MS-OXDSCLI redirects). */
export interface RemoteDomain {
  readonly domain: string;
  readonly redirect:
    { readonly kind: 'url'; readonly url: string } | { readonly kind: 'address'; readonly domain: string };
}

export interface Estate {
  readonly name: string;
  /** Exchange organization name, used in legacy DNs. */
  readonly organization: string;
  /** SMTP domains the estate serves (accepted domains). */
  readonly domains: readonly string[];
  readonly namespaces: readonly Namespace[];
  readonly sites: readonly Site[];
  readonly users: readonly User[];
  readonly policies: Policies;
  /** Source networks of internal clients, in CIDR form (docs/protocols.md §2.4). */
  readonly internalNetworks: readonly string[];
  readonly remoteDomains: readonly RemoteDomain[];
}
