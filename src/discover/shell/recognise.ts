/**
 * Which cmdlet an export came from, by its columns (property names), never by its file name: admins name
 * files as they like, and one file may hold several virtual directory cmdlets' output piped together. The
 * signatures are properties only that cmdlet's objects have (docs/discover.md "Which file is which"); a
 * virtual directory's protocol comes from its own name (`SERVER\EWS (Default Web Site)`, or the
 * MetabasePath `IIS://SERVER/W3SVC/1/ROOT/EWS`) when the columns do not say.
 */
import type { VdirProtocol } from '../organisation.ts';
import { parseVdirIdentity, prop, text } from './values.ts';

export type ExportKind =
  | 'Get-ExchangeServer'
  | 'Get-ClientAccessServer'
  | 'Get-MailboxDatabase'
  | 'virtual-directory'
  | 'Get-OutlookAnywhere'
  | 'Get-AcceptedDomain'
  | 'Get-Mailbox'
  | 'Get-ExchangeCertificate';

const has = (columns: ReadonlySet<string>, ...names: string[]): boolean =>
  names.every((n) => columns.has(n.toLowerCase()));
const any = (columns: ReadonlySet<string>, ...names: string[]): boolean =>
  names.some((n) => columns.has(n.toLowerCase()));

/** The cmdlet whose output has these columns, or undefined. Checked from the most specific signature. */
export function recogniseColumns(names: readonly string[]): ExportKind | undefined {
  const c = new Set(names.map((n) => n.toLowerCase()));
  if (has(c, 'Thumbprint') && any(c, 'CertificateDomains', 'Services')) return 'Get-ExchangeCertificate';
  if (has(c, 'PrimarySmtpAddress') && any(c, 'Database', 'ServerName', 'EmailAddresses'))
    return 'Get-Mailbox';
  if (has(c, 'DomainName') && any(c, 'DomainType', 'Default')) return 'Get-AcceptedDomain';
  if (has(c, 'AdminDisplayVersion') && any(c, 'ServerRole', 'IsClientAccessServer', 'IsMailboxServer'))
    return 'Get-ExchangeServer';
  if (any(c, 'AutoDiscoverServiceInternalUri', 'AutoDiscoverSiteScope')) return 'Get-ClientAccessServer';
  if (
    has(c, 'Server') &&
    any(c, 'EdbFilePath', 'StorageGroup', 'MasterServerOrAvailabilityGroup', 'LogFolderPath')
  )
    return 'Get-MailboxDatabase';
  if (
    any(c, 'ExternalHostname', 'InternalHostname') &&
    any(
      c,
      'IISAuthenticationMethods',
      'SSLOffloading',
      'ClientAuthenticationMethod',
      'ExternalClientAuthenticationMethod',
    )
  )
    return 'Get-OutlookAnywhere';
  if (any(c, 'InternalUrl', 'ExternalUrl') && any(c, 'Server', 'Identity', 'MetabasePath'))
    return 'virtual-directory';
  return undefined;
}

/** Columns only one virtual directory cmdlet has (when the record's name does not say). */
const protocolColumns: readonly [VdirProtocol, readonly string[]][] = [
  [
    'activesync',
    [
      'MobileClientCertificateProvisioningEnabled',
      'BadItemReportingEnabled',
      'RemoteDocumentsAllowedServers',
    ],
  ],
  ['ews', ['InternalNLBBypassUrl', 'MRSProxyEnabled']],
  ['owa', ['LogonFormat', 'Exchange2003Url', 'CrossSiteRedirectType', 'DefaultDomain']],
  ['ecp', ['AdminEnabled', 'OwaOptionsEnabled']],
  ['oab', ['OfflineAddressBooks', 'PollInterval']],
];

/** Virtual directory names as IIS and Exchange give them. */
const vdirNames: Record<string, VdirProtocol> = {
  'microsoft-server-activesync': 'activesync',
  ews: 'ews',
  owa: 'owa',
  ecp: 'ecp',
  oab: 'oab',
  autodiscover: 'autodiscover',
  rpc: 'rpc',
  mapi: 'mapi',
};

/** The protocol of one virtual directory record: its name first (Identity, Name, MetabasePath), then its columns. */
export function vdirProtocol(values: Readonly<Record<string, unknown>>): VdirProtocol | undefined {
  const fromIdentity = parseVdirIdentity(prop(values, 'Identity')).vdir;
  const name = fromIdentity ?? text(prop(values, 'Name'))?.replace(/\s*\(.*\)$/, '');
  // A name that is not one of these is another virtual directory: Exchange 2007's Get-OwaVirtualDirectory
  // also lists the Exchange 2003 ones (Exchange, Public, Exchweb, Exadmin), with OWA's columns.
  if (name !== undefined) return vdirNames[name.trim().toLowerCase()];
  const metabase = text(prop(values, 'MetabasePath'));
  const last = metabase?.split('/').pop()?.toLowerCase();
  if (last) return vdirNames[last];
  const present = (col: string): boolean => prop(values, col) !== undefined;
  for (const [protocol, cols] of protocolColumns) if (cols.some(present)) return protocol;
  return undefined;
}
