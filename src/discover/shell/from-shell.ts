/**
 * Exchange Management Shell exports -> the organisation (src/discover/organisation.ts). Each file is
 * recognised by its columns (recognise.ts), its values read in either export's formats (values.ts), and the
 * pieces joined by server name: virtual directories and Outlook Anywhere to their server, databases to their
 * server, the Autodiscover service connection point to its Client Access server. What cannot be used is
 * kept as a note (a virtual directory of a server that Get-ExchangeServer did not list, a multi-valued
 * column Export-Csv emptied) rather than dropped silently (docs/discover.md).
 */
import { CoexistError } from '../../core/errors.ts';
import type {
  AcceptedDomain,
  AdSite,
  DiscoveryNote,
  ExchangeRole,
  ExchangeServer,
  Mailbox,
  MailboxDatabase,
  Organisation,
  OutlookAnywhere,
  ServerCertificate,
  VirtualDirectory,
} from '../organisation.ts';
import type { ExportKind } from './recognise.ts';
import { recogniseColumns, vdirProtocol } from './recognise.ts';
import type { ExportRecord, ShellExport } from './read-export.ts';
import { exportError, readShellExport } from './read-export.ts';
import {
  acceptedDomainType,
  bool,
  build,
  canonicalDomain,
  isLostCollection,
  list,
  objectName,
  organisationOf,
  parseVdirIdentity,
  prop,
  roles,
  siteName,
  text,
  url,
} from './values.ts';

/** Read every file and build the organisation. Throws a CoexistError naming the file (and line) on bad input. */
export async function organisationFromShellFiles(files: readonly string[]): Promise<Organisation> {
  if (files.length === 0)
    throw new CoexistError('CX_CLI_USAGE', '--from-shell needs at least one export file');
  const exports: ShellExport[] = [];
  for (const file of files) exports.push(await readShellExport(file));
  return organisationFromShellExports(exports);
}

interface Classified {
  readonly kind: ExportKind;
  readonly records: readonly ExportRecord[];
  readonly file: string;
}

export function organisationFromShellExports(exports: readonly ShellExport[]): Organisation {
  const notes: DiscoveryNote[] = [];
  const byKind = new Map<ExportKind, Classified[]>();
  for (const ex of exports) {
    if (ex.columns.length === 0) {
      notes.push({ source: ex.file, message: 'empty: the cmdlet found nothing' });
      continue;
    }
    const kind = recogniseColumns(ex.columns);
    if (!kind) {
      throw exportError(
        ex.file,
        `not an export coexist reads: its columns (${ex.columns.slice(0, 8).join(', ')}${ex.columns.length > 8 ? ', ...' : ''}) match none of the cmdlets of docs/discover.md`,
      );
    }
    byKind.set(kind, [...(byKind.get(kind) ?? []), { kind, records: ex.records, file: ex.file }]);
  }
  const records = (kind: ExportKind): ExportRecord[] => (byKind.get(kind) ?? []).flatMap((c) => c.records);
  if (!byKind.has('Get-ExchangeServer')) {
    throw new CoexistError(
      'CX_DISCOVER_INPUT',
      `no Get-ExchangeServer export among ${exports.map((e) => e.file).join(', ')}: discovery starts from the servers (docs/discover.md)`,
    );
  }

  // --- servers ------------------------------------------------------------------------------------------
  let orgName: string | undefined;
  let adDomain: string | undefined;
  const servers = new Map<string, ServerDraft>();
  const siteNames: string[] = [];
  for (const r of records('Get-ExchangeServer')) {
    const v = r.values;
    const name = need(r, 'Name', text(prop(v, 'Name')));
    const version = build(prop(v, 'AdminDisplayVersion'));
    if (!version) {
      throw recordError(
        r,
        'AdminDisplayVersion',
        `"${text(prop(v, 'AdminDisplayVersion')) ?? ''}" is not a version such as "Version 15.0 (Build 1497.2)"`,
      );
    }
    const site = siteName(prop(v, 'Site'));
    orgName ??= organisationOf(prop(v, 'ExchangeLegacyDN'));
    adDomain ??= canonicalDomain(prop(v, 'Site')) ?? text(prop(v, 'Domain'));
    if (site !== undefined && !siteNames.some((s) => s.toLowerCase() === site.toLowerCase()))
      siteNames.push(site);
    if (servers.has(name.toLowerCase())) throw recordError(r, 'Name', `server ${name} is listed twice`);
    servers.set(name.toLowerCase(), {
      name,
      fqdn: text(prop(v, 'Fqdn')) ?? name,
      build: version,
      roles: serverRoles(r),
      ...(site !== undefined && { site }),
      virtualDirectories: [],
      vdirs: [],
      source: r.source,
    });
  }
  const serverOf = (r: ExportRecord, name: string | undefined, what: string): ServerDraft | undefined => {
    if (name === undefined)
      throw recordError(r, 'Server', `no server named: expected a Server column or an Identity SERVER\\name`);
    const s = servers.get(name.toLowerCase());
    if (!s)
      notes.push({
        source: r.source,
        message: `${what} of server ${name}, which the Get-ExchangeServer export does not list: left out`,
      });
    return s;
  };

  // --- Client Access servers: the Autodiscover service connection point ---------------------------------
  for (const r of records('Get-ClientAccessServer')) {
    const name = text(prop(r.values, 'Name')) ?? objectName(prop(r.values, 'Identity'));
    const s = serverOf(r, name, 'an Autodiscover service connection point');
    const uri = readUrl(r, 'AutoDiscoverServiceInternalUri');
    if (s && uri !== undefined) s.autodiscoverServiceInternalUri = uri;
  }

  // --- virtual directories ------------------------------------------------------------------------------
  for (const r of records('virtual-directory')) {
    const protocol = vdirProtocol(r.values);
    if (!protocol) {
      notes.push({
        source: r.source,
        message: `a virtual directory coexist does not route (${text(prop(r.values, 'Identity')) ?? '?'}): left out`,
      });
      continue;
    }
    const s = serverOf(r, vdirServer(r), `the ${protocol} virtual directory`);
    if (!s) continue;
    const internalUrl = readUrl(r, 'InternalUrl');
    const externalUrl = readUrl(r, 'ExternalUrl');
    const redirect = protocol === 'owa' ? redirectType(prop(r.values, 'CrossSiteRedirectType')) : undefined;
    s.vdirs.push({
      protocol,
      identity: text(prop(r.values, 'Identity')) ?? `${s.name}\\${protocol}`,
      ...(internalUrl !== undefined && { internalUrl }),
      ...(externalUrl !== undefined && { externalUrl }),
      ...(redirect !== undefined && { crossSiteRedirectType: redirect }),
      source: r.source,
    });
  }
  for (const r of records('Get-OutlookAnywhere')) {
    const s = serverOf(r, vdirServer(r), 'Outlook Anywhere');
    if (!s) continue;
    const v = r.values;
    const externalHostname = text(prop(v, 'ExternalHostname'));
    const internalHostname = text(prop(v, 'InternalHostname'));
    const externalAuth =
      authMethod(prop(v, 'ExternalClientAuthenticationMethod')) ??
      authMethod(prop(v, 'ClientAuthenticationMethod'));
    const internalAuth = authMethod(prop(v, 'InternalClientAuthenticationMethod'));
    const iis = list(prop(v, 'IISAuthenticationMethods'));
    if (iis === undefined) lost(notes, r, 'IISAuthenticationMethods');
    const oa: OutlookAnywhere = {
      ...(externalHostname !== undefined && { externalHostname: externalHostname.toLowerCase() }),
      ...(internalHostname !== undefined && { internalHostname: internalHostname.toLowerCase() }),
      ...(externalAuth !== undefined && { externalAuth }),
      ...(internalAuth !== undefined && { internalAuth }),
      ...(iis !== undefined && iis.length > 0 && { iisAuth: iis }),
    };
    s.vdirs.push({
      protocol: 'rpc',
      identity: text(prop(v, 'Identity')) ?? `${s.name}\\Rpc (Default Web Site)`,
      outlookAnywhere: oa,
      source: r.source,
    });
  }

  // --- databases ------------------------------------------------------------------------------------------
  const databases: MailboxDatabase[] = [];
  for (const r of records('Get-MailboxDatabase')) {
    const v = r.values;
    const name = need(r, 'Name', text(prop(v, 'Name')));
    const serverName = objectName(prop(v, 'Server')) ?? text(prop(v, 'ServerName'));
    const s = serverOf(r, serverName, `database ${name}`);
    if (s) databases.push({ name, server: s.name, source: r.source });
  }

  // --- accepted domains ---------------------------------------------------------------------------------
  const acceptedDomains: AcceptedDomain[] = [];
  for (const r of records('Get-AcceptedDomain')) {
    const domain = need(r, 'DomainName', text(prop(r.values, 'DomainName')))?.toLowerCase();
    const type = acceptedDomainType(prop(r.values, 'DomainType'));
    acceptedDomains.push({
      domain,
      ...(type && { type }),
      isDefault: bool(prop(r.values, 'Default')) === true,
    });
  }

  // --- mailboxes and certificates (optional exports) -----------------------------------------------------
  const mailboxes = byKind.has('Get-Mailbox')
    ? records('Get-Mailbox').map((r) => mailbox(r, notes))
    : undefined;
  const certificates = byKind.has('Get-ExchangeCertificate')
    ? records('Get-ExchangeCertificate').flatMap((r) => certificate(r, notes))
    : undefined;

  const sites: AdSite[] = siteNames.map((name) => ({ name }));
  return {
    ...(orgName !== undefined && { name: orgName }),
    ...(adDomain !== undefined && { adDomain: adDomain.toLowerCase() }),
    servers: [...servers.values()].map(({ vdirs, ...s }) => ({ ...s, virtualDirectories: vdirs })),
    databases,
    sites,
    acceptedDomains,
    ...(mailboxes && { mailboxes }),
    ...(certificates && { certificates }),
    notes,
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** A server while its virtual directories are being joined to it. */
type ServerDraft = Mutable<ExchangeServer> & { vdirs: VirtualDirectory[] };

function recordError(r: ExportRecord, column: string, message: string): CoexistError {
  const m = /^(.*):(\d+)$/.exec(r.source);
  return m
    ? exportError(m[1] ?? r.source, `${column}: ${message}`, Number(m[2]))
    : exportError(r.source, `${column}: ${message}`);
}

function need(r: ExportRecord, column: string, value: string | undefined): string {
  if (value === undefined) throw recordError(r, column, 'empty, but every object has one');
  return value;
}

function readUrl(r: ExportRecord, column: string): string | undefined {
  try {
    return url(prop(r.values, column));
  } catch (e) {
    throw recordError(r, column, (e as Error).message);
  }
}

/**
 * An AuthenticationMethod: the name, or the enum's number as ConvertTo-Json writes it (the order the cmdlets'
 * help lists the values: Basic 0, Digest 1, Ntlm 2, Fba 3, WindowsIntegrated 4, LiveIdFba 5, LiveIdBasic 6,
 * WSSecurity 7, Certificate 8, NegoEx 9); any other number is kept as such.
 */
function authMethod(v: unknown): string | undefined {
  const names = [
    'Basic',
    'Digest',
    'Ntlm',
    'Fba',
    'WindowsIntegrated',
    'LiveIdFba',
    'LiveIdBasic',
    'WSSecurity',
    'Certificate',
    'NegoEx',
  ];
  if (typeof v === 'number') return names[v] ?? `AuthenticationMethod ${v}`;
  return text(v);
}

/** OWA's CrossSiteRedirectType: the name, or the enum's number (LegacyRedirectTypeOptions: Silent 0, Manual 1). */
function redirectType(v: unknown): string | undefined {
  if (typeof v === 'number') return ['Silent', 'Manual'][v];
  return text(v);
}

/** A multi-valued column Export-Csv emptied: one note per file and column, naming its first line. */
function lost(notes: DiscoveryNote[], r: ExportRecord, column: string): void {
  const file = r.source.replace(/(:\d+|\[\d+\])$/, '');
  if (notes.some((n) => n.source.startsWith(file) && n.message.startsWith(`${column} `))) return;
  notes.push({
    source: r.source,
    message: `${column} holds only a type name in this file: Export-Csv does not write a multi-valued property's values (docs/discover.md gives the Select-Object that keeps them)`,
  });
}

/** A virtual directory's server: the Server column, else the SERVER of its Identity. */
function vdirServer(r: ExportRecord): string | undefined {
  return objectName(prop(r.values, 'Server')) ?? parseVdirIdentity(prop(r.values, 'Identity')).server;
}

/** Roles: the IsClientAccessServer / IsMailboxServer flags when exported (unambiguous), else ServerRole. */
function serverRoles(r: ExportRecord): ExchangeRole[] {
  const v = r.values;
  const fromRole = roles(prop(v, 'ServerRole')) ?? [];
  const cas = bool(prop(v, 'IsClientAccessServer'));
  const mbx = bool(prop(v, 'IsMailboxServer'));
  const out = new Set(fromRole);
  if (cas !== undefined) {
    if (cas) out.add('ClientAccess');
    else out.delete('ClientAccess');
  }
  if (mbx !== undefined) {
    if (mbx) out.add('Mailbox');
    else out.delete('Mailbox');
  }
  if (bool(prop(v, 'IsEdgeServer')) === true) out.add('Edge');
  return [...out];
}

function mailbox(r: ExportRecord, notes: DiscoveryNote[]): Mailbox {
  const v = r.values;
  const address = need(r, 'PrimarySmtpAddress', text(prop(v, 'PrimarySmtpAddress')))?.toLowerCase();
  const proxies = list(prop(v, 'EmailAddresses'));
  if (proxies === undefined) lost(notes, r, 'EmailAddresses');
  // smtp: (lower case) marks a secondary SMTP address; SMTP: the primary; x500:, sip: ... are not addresses.
  const aliases = (proxies ?? [])
    .filter((p) => p.startsWith('smtp:'))
    .map((p) => p.slice(5).toLowerCase())
    .filter((a) => a !== address);
  const displayName = text(prop(v, 'DisplayName'));
  const upn = text(prop(v, 'UserPrincipalName'));
  const sam = text(prop(v, 'SamAccountName'));
  const database = objectName(prop(v, 'Database'));
  const server = text(prop(v, 'ServerName'));
  return {
    address,
    aliases,
    ...(displayName !== undefined && { displayName }),
    ...(upn !== undefined && { upn }),
    ...(sam !== undefined && { samAccountName: sam }),
    ...(database !== undefined && { database }),
    ...(server !== undefined && { server }),
  };
}

function certificate(r: ExportRecord, notes: DiscoveryNote[]): ServerCertificate[] {
  const v = r.values;
  const thumbprint = need(r, 'Thumbprint', text(prop(v, 'Thumbprint')));
  // Exchange 2013 and later name a certificate SERVER\THUMBPRINT; the block of docs/discover.md adds Server.
  const server = text(prop(v, 'Server')) ?? parseVdirIdentity(prop(v, 'Identity')).server;
  if (server === undefined) {
    notes.push({ source: r.source, message: `certificate ${thumbprint} names no server: left out` });
    return [];
  }
  const domains = list(prop(v, 'CertificateDomains'));
  if (domains === undefined) {
    lost(notes, r, 'CertificateDomains');
    return [];
  }
  const subject = text(prop(v, 'Subject'));
  const cn = subject === undefined ? undefined : /CN=([^,]+)/i.exec(subject)?.[1];
  const services = servicesOf(prop(v, 'Services'));
  return [
    {
      server,
      thumbprint,
      domains: [...new Set([...(cn ? [cn] : []), ...domains].map((d) => d.toLowerCase()))],
      services,
    },
  ];
}

/** Services: `IMAP, POP, IIS, SMTP` or the AllowedServices flags number (IMAP 1, POP 2, UM 4, IIS 8, SMTP 16). */
function servicesOf(v: unknown): string[] {
  if (typeof v === 'number') {
    return (
      [
        [1, 'IMAP'],
        [2, 'POP'],
        [4, 'UM'],
        [8, 'IIS'],
        [16, 'SMTP'],
      ] as const
    ).flatMap(([bit, name]) => ((v & bit) !== 0 ? [name] : []));
  }
  if (isLostCollection(v)) return [];
  return (list(v) ?? []).map((s) => s.toUpperCase());
}
