/**
 * `coexist discover --ldap`: read the Exchange organisation from Active Directory, as a service account, and
 * only read: one connection (LDAPS, or StartTLS on ldap://), a bind, the rootDSE, then paged subtree
 * searches of the organization container, the AD sites and the mailbox users, each within the timeout.
 * from-ad.ts turns what was read into the organisation. Nothing is ever written to AD.
 *
 * Failures name the URL and what failed: the connection (refused, timed out, the DC's certificate not
 * trusted), the service account's bind, a search past its deadline (CX_DIRECTORY_UNAVAILABLE, as `trace`
 * says of the estate's directory); no Exchange organisation in the forest (CX_DISCOVER_INPUT).
 * The password appears in no message.
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Entry } from 'ldapts';
import { Client, InvalidCredentialsError, NoSuchObjectError } from 'ldapts';
import { CoexistError } from '../../core/errors.ts';
import type { Organisation } from '../organisation.ts';
import type { AdEntry, AdSnapshot } from './from-ad.ts';
import { organisationFromAd } from './from-ad.ts';

/** How to reach AD: the names of the estate file's directory.ldap (docs/config.md "directory"). */
export interface AdConnection {
  /** `ldaps://host[:port]`, or `ldap://host[:port]` with StartTLS. */
  readonly url: string;
  /** The service account: its DN, UPN (`svc@domain.local`) or `DOMAIN\user`. */
  readonly bindDn: string;
  readonly bindPassword: string;
  /** PEM of the CA that issued the DC's certificate (else the system's CAs). */
  readonly ca?: string;
  /** The name the DC's certificate carries, when the URL gives an address that it does not. */
  readonly servername?: string;
  /** Where the mailbox users are searched; the domain root (defaultNamingContext) by default. */
  readonly baseDn?: string;
  /** Each LDAP operation's deadline (default 10 s), and the connection's (default 5 s). */
  readonly timeoutMs?: number;
  readonly connectTimeoutMs?: number;
}

/** The attributes read, and no others. */
const objectAttributes = [
  'objectClass',
  'cn',
  'uSNCreated',
  'serialNumber',
  'msExchVersion',
  'msExchCurrentServerRoles',
  'msExchServerRole',
  'msExchServerSite',
  'dNSHostName',
  'networkAddress',
  'msExchOwningServer',
  'msExchInternalHostName',
  'msExchExternalHostName',
  'serviceBindingInformation',
  'keywords',
  'msExchAcceptedDomainName',
  'msExchAcceptedDomainFlags',
];
const mailboxAttributes = [
  'mail',
  'proxyAddresses',
  'displayName',
  'userPrincipalName',
  'sAMAccountName',
  'homeMDB',
];

const unavailable = (url: string, what: string, cause?: unknown): CoexistError =>
  new CoexistError('CX_DIRECTORY_UNAVAILABLE', `Active Directory at ${url}: ${what}`, { url }, { cause });

/** Why a connection or TLS failed, in the admin's terms (never the password). */
function connectReason(error: unknown): string {
  const e = error as NodeJS.ErrnoException & { reason?: string };
  const code = e.code ?? '';
  if (code === 'ECONNREFUSED')
    return 'the connection was refused (is the domain controller up, and the port right?)';
  if (code === 'ETIMEDOUT' || /timeout/i.test(e.message ?? ''))
    return 'the connection timed out (no answer from the domain controller)';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'no route to the domain controller';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'its host name does not resolve';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code))
    return `its TLS certificate is not trusted (${code}): give the CA that issued it with --ca, and the name it carries with --servername when the URL gives an address`;
  if (code === 'ECONNRESET')
    return 'the connection was reset (is it an LDAP port, and TLS on it as the URL says?)';
  return `${code ? `${code}: ` : ''}${e.message ?? String(error)}`;
}

/** An ldapts entry as text values. */
function adEntry(entry: Entry): AdEntry {
  const attributes: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(entry)) {
    if (k === 'dn') continue;
    attributes[k] = [v]
      .flat()
      .map((x: string | Buffer) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
  }
  return { dn: entry.dn, attributes };
}

/** Read the organisation from AD (read-ad.ts + from-ad.ts). */
export async function organisationFromActiveDirectory(o: AdConnection): Promise<Organisation> {
  return organisationFromAd(await readActiveDirectory(o));
}

/** Connect, bind as the service account, and read what from-ad.ts needs. Always unbinds. */
export async function readActiveDirectory(o: AdConnection): Promise<AdSnapshot> {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new CoexistError('CX_CLI_USAGE', `--ldap ${o.url} is not a URL (ldaps://dc.example.local)`);
  }
  if (url.protocol !== 'ldaps:' && url.protocol !== 'ldap:')
    throw new CoexistError('CX_CLI_USAGE', `--ldap ${o.url}: the URL must be ldaps:// or ldap:// (StartTLS)`);
  if (o.bindPassword === '')
    throw new CoexistError('CX_CLI_USAGE', "the service account's password is empty");
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const servername = o.servername ?? (isIP(host) === 0 ? host : undefined);
  const tls: ConnectionOptions = {
    host,
    ...(servername !== undefined && { servername }),
    ...(o.ca !== undefined && { ca: o.ca }),
    minVersion: 'TLSv1.2',
  };
  const timeoutMs = o.timeoutMs ?? 10_000;
  const client = new Client({
    url: o.url,
    timeout: timeoutMs,
    connectTimeout: o.connectTimeoutMs ?? 5_000,
    ...(url.protocol === 'ldaps:' && { tlsOptions: tls }),
  });
  const timeLimit = Math.max(1, Math.ceil(timeoutMs / 1000));
  try {
    try {
      if (url.protocol === 'ldap:') await client.startTLS(tls);
    } catch (error) {
      throw unavailable(o.url, `StartTLS failed: ${connectReason(error)}`, error);
    }
    try {
      await client.bind(o.bindDn, o.bindPassword);
    } catch (error) {
      if (error instanceof InvalidCredentialsError) {
        throw unavailable(
          o.url,
          `the service account ${o.bindDn} was refused (invalid credentials): check --bind-dn and its password`,
          error,
        );
      }
      if (error instanceof CoexistError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      throw unavailable(
        o.url,
        code === undefined && !/timeout/i.test((error as Error).message)
          ? `binding as ${o.bindDn} failed: ${(error as Error).message}`
          : `cannot be reached: ${connectReason(error)}`,
        error,
      );
    }
    const search = async (
      base: string,
      scope: 'base' | 'one' | 'sub',
      filter: string,
      attributes: string[],
      what: string,
    ): Promise<Entry[]> => {
      try {
        const { searchEntries } = await client.search(base, {
          scope,
          filter,
          attributes,
          derefAliases: 'never',
          timeLimit,
          ...(scope === 'base' ? {} : { paged: { pageSize: 500 } }),
        });
        return searchEntries;
      } catch (error) {
        if (error instanceof NoSuchObjectError) return [];
        throw unavailable(o.url, `reading ${what} (${base}) failed: ${connectReason(error)}`, error);
      }
    };

    const [root] = await search(
      '',
      'base',
      '(objectClass=*)',
      ['defaultNamingContext', 'configurationNamingContext'],
      'the rootDSE',
    );
    const rootEntry = root ? adEntry(root) : undefined;
    const first = (name: string): string | undefined =>
      rootEntry &&
      Object.entries(rootEntry.attributes).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1][0];
    const domainDn = first('defaultNamingContext');
    const configurationDn = first('configurationNamingContext');
    if (domainDn === undefined || configurationDn === undefined) {
      throw new CoexistError(
        'CX_DISCOVER_INPUT',
        `Active Directory at ${o.url}: its rootDSE names no defaultNamingContext and configurationNamingContext: is it an Active Directory domain controller?`,
        { url: o.url },
      );
    }
    const exchangeDn = `CN=Microsoft Exchange,CN=Services,${configurationDn}`;
    const organizations = await search(
      exchangeDn,
      'one',
      '(objectClass=msExchOrganizationContainer)',
      ['cn', 'objectClass'],
      'the Exchange organisation',
    );
    const [organization, ...others] = organizations;
    if (!organization) {
      throw new CoexistError(
        'CX_DISCOVER_INPUT',
        `Active Directory at ${o.url}: no Exchange organisation found: ${exchangeDn} holds no msExchOrganizationContainer as ${o.bindDn} sees it (Exchange's schema and organisation are not in this forest, or the service account may not read the configuration partition)`,
        { url: o.url },
      );
    }
    if (others.length > 0) {
      throw new CoexistError(
        'CX_DISCOVER_INPUT',
        `Active Directory at ${o.url}: ${organizations.length} Exchange organisations under ${exchangeDn}, a forest has one: ${organizations.map((e) => e.dn).join('; ')}`,
        { url: o.url },
      );
    }
    const objects = await search(
      organization.dn,
      'sub',
      '(|(objectClass=msExchExchangeServer)(objectClass=msExchPrivateMDB)(objectClass=msExchAcceptedDomain)(objectClass=serviceConnectionPoint)' +
        '(objectClass=msExchMobileVirtualDirectory)(objectClass=msExchWebServicesVirtualDirectory)(objectClass=msExchOWAVirtualDirectory)' +
        '(objectClass=msExchECPVirtualDirectory)(objectClass=msExchOABVirtualDirectory)(objectClass=msExchAutoDiscoverVirtualDirectory)' +
        '(objectClass=msExchRpcHttpVirtualDirectory)(objectClass=msExchMapiVirtualDirectory))',
      objectAttributes,
      'the Exchange organisation',
    );
    const sites = await search(
      `CN=Sites,${configurationDn}`,
      'one',
      '(objectClass=site)',
      ['cn', 'uSNCreated'],
      'the AD sites',
    );
    const subnets = await search(
      `CN=Subnets,CN=Sites,${configurationDn}`,
      'one',
      '(objectClass=subnet)',
      ['cn', 'uSNCreated'],
      'the AD subnets',
    );
    const mailboxes = await search(
      o.baseDn ?? domainDn,
      'sub',
      '(&(objectClass=user)(homeMDB=*))',
      mailboxAttributes,
      'the mailbox users',
    );
    return {
      url: o.url,
      domainDn,
      organization: adEntry(organization),
      objects: objects.map(adEntry),
      sites: sites.map(adEntry),
      mailboxes: mailboxes.map(adEntry),
      subnets: subnets.map(adEntry),
    };
  } finally {
    await client.unbind().catch(() => undefined);
  }
}
