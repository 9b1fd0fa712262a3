/**
 * The `directory.ldap` section of an estate file: its schema and types, apart from the LDAP client
 * (ldap-directory.ts) so that reading an estate file does not load ldapts. The schema checks everything
 * the file alone can tell: the URL and transport rules (plain LDAP only to a loopback address), where the
 * service password comes from, the attribute names and the extra user filter (RFC 4515 syntax).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { hostOfUrl } from '../core/host.ts';

const attributeName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9-]*$/, { message: 'must be an LDAP attribute name such as proxyAddresses' });

/** 127.0.0.0/8 or ::1, as literals: a name such as localhost is resolved at connect time, so it does not count. */
function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('127.');
  return isIP(host) === 6 && host === '::1';
}

/** Why this transport is refused, or undefined when it is acceptable. */
function transportProblem(o: {
  url: string;
  startTls?: boolean;
  allowPlainOnLoopback?: boolean;
}): string | undefined {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    return `${o.url} is not a URL`;
  }
  if (url.protocol === 'ldaps:') {
    return o.startTls === true
      ? 'startTls is for ldap:// URLs; an ldaps:// connection is TLS from the start'
      : undefined;
  }
  if (o.startTls !== false) return undefined;
  if (o.allowPlainOnLoopback === true && isLoopback(hostOfUrl(url.href))) return undefined;
  return o.allowPlainOnLoopback === true
    ? `plain LDAP (ldap:// without StartTLS) is allowed only to a loopback address (127.0.0.1, ::1), not ${hostOfUrl(url.href)}: passwords would cross the network in clear`
    : 'plain LDAP (ldap:// without StartTLS) sends passwords in clear: use ldaps:// or StartTLS, or set allowPlainOnLoopback for a server on 127.0.0.1 / ::1';
}

/**
 * Whether `text` is a search filter ldapts's `FilterParser.parseString` accepts (RFC 4515 as ldapts reads
 * it), checked here without loading ldapts: the same walk, building nothing. A test holds the two to the
 * same answers.
 */
export function isLdapFilter(text: string): boolean {
  if (text === '') return false;
  const s = text.startsWith('(') ? text : `(${text})`;
  try {
    const end = filterEnd(s, 0);
    return end !== undefined && end >= s.length - 1;
  } catch {
    return false; // nested too deep for the stack, as it would be for ldapts
  }
}

/** The index of the `)` closing the filter that starts at `start`, or undefined when it is not one. */
function filterEnd(s: string, start: number): number | undefined {
  if (s[start] !== '(') return undefined;
  let cursor = start + 1;
  const op = s[cursor];
  if (op === '&' || op === '|') {
    cursor += 1;
    do {
      const end = filterEnd(s, cursor);
      if (end === undefined) return undefined;
      cursor = end + 1;
    } while (cursor < s.length && s[cursor] !== ')');
    return cursor;
  }
  if (op === '!') {
    const end = filterEnd(s, cursor + 1);
    return end === undefined ? undefined : end + 1;
  }
  const end = s.indexOf(')', cursor);
  return end !== -1 && isItem(s.slice(cursor, end)) ? end : undefined;
}

/** attr=*, attr=value (with * for substrings), attr>=, attr<=, attr~= value, or an extensible match. */
function isItem(item: string): boolean {
  const attribute = item.startsWith(':') ? '' : /^[\w-]+/.exec(item)?.[0];
  if (attribute === undefined) return false;
  const rest = item.slice(attribute.length);
  if (rest === '=*') return true;
  if (rest.startsWith('=')) return rest.slice(1).split('*').every(isValue);
  if (/^[<>~]=/.test(rest)) return isValue(rest.slice(2));
  if (rest.startsWith(':')) {
    const fields = rest.split(':').slice(1);
    if (fields[0]?.toLowerCase() === 'dn') fields.shift();
    if (fields.length > 0 && !fields[0]?.startsWith('=')) fields.shift();
    if (fields.length > 0 && !fields[0]?.startsWith('=')) return false;
    return isValue(fields.join(':').slice(1));
  }
  return false;
}

/** A value: no unescaped `(`, and every `\` followed by two hex digits. */
function isValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '(') return false;
    if (value[i] === '\\') {
      if (!/^[\dA-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) return false;
      i += 2;
    }
  }
  return true;
}

const mappingSchema = z
  .object({
    userObjectClass: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]*$/)
      .default('user')
      .describe(
        "Object class of user entries: (objectClass=<this>) is part of every user search. Default: AD's user.",
      ),
    userFilter: z
      .string()
      .refine(
        (f) => {
          return f.startsWith('(') && isLdapFilter(f);
        },
        { message: 'must be an LDAP filter in parentheses (RFC 4515)' },
      )
      .optional()
      .describe(
        'An extra filter ANDed into every user search, e.g. (!(userAccountControl:1.2.840.113556.1.4.803:=2)) to skip disabled AD accounts. None by default.',
      ),
    mail: attributeName.default('mail').describe('The primary SMTP address. Default: mail.'),
    proxyAddresses: attributeName
      .default('proxyAddresses')
      .describe(
        'All addresses with their type: SMTP:<primary>, smtp:<secondary>; a user is found by smtp:<address> (matching is case-insensitive). Default: proxyAddresses.',
      ),
    userPrincipalName: attributeName
      .default('userPrincipalName')
      .describe('The UPN, user@domain. Default: userPrincipalName.'),
    sAMAccountName: attributeName
      .default('sAMAccountName')
      .describe('The down-level logon name, the user of DOMAIN\\user. Default: sAMAccountName.'),
    displayName: attributeName.default('displayName').describe('The display name. Default: displayName.'),
    mailboxLocation: z
      .enum(['homeMDB', 'homeServer'])
      .default('homeMDB')
      .describe(
        "How the mailbox's server is found: homeMDB (default): the user's database entry, then its server attribute (databaseServer); homeServer: the user's own server attribute (homeServer), one search fewer.",
      ),
    homeMDB: attributeName
      .default('homeMDB')
      .describe("The DN of the user's mailbox database. Default: homeMDB."),
    databaseServer: attributeName
      .default('msExchOwningServer')
      .describe(
        "On the database entry: the DN of its server, whose first RDN value is the server's name in the estate. Default: msExchOwningServer.",
      ),
    homeServer: attributeName
      .default('msExchHomeServerName')
      .describe(
        "On the user: the mailbox's server as a legacy DN (/o=.../cn=Servers/cn=<name>), a DN (cn=<name>,...) or a plain name. Default: msExchHomeServerName.",
      ),
    fullAccess: attributeName
      .default('msExchDelegateListLink')
      .describe(
        "On the mailbox's user: DNs of the users granted full access to it, who may open it in every protocol. Default: msExchDelegateListLink, the link AD keeps for FullAccess with automapping (the permission itself is in the mailbox's security descriptor, which LDAP does not read simply).",
      ),
    delegates: attributeName
      .default('publicDelegates')
      .describe(
        "On the mailbox's user: DNs of its delegates, who may open it over EWS. Default: publicDelegates.",
      ),
  })
  .strict();

const distinguishedName = z.string().regex(/^[A-Za-z][A-Za-z0-9-]*=[^,]/, {
  message: 'must be a DN such as CN=ApplicationImpersonation,CN=Users,DC=contoso,DC=local',
});

/**
 * One assignment of the ApplicationImpersonation role (docs/security.md "Mailbox access"), as Exchange's
 * `New-ManagementRoleAssignment -Role ApplicationImpersonation -SecurityGroup <group>` makes it, optionally
 * with a custom recipient write scope `{MemberOfGroup -eq <scope>}`.
 */
export const impersonationAssignmentSchema = z
  .object({
    group: distinguishedName.describe(
      "The security group the role is assigned to: its members (the group's member attribute, DNs of users; nested groups are not followed) hold the role.",
    ),
    scope: distinguishedName
      .optional()
      .describe(
        'A group whose members are the only mailboxes the role holders may impersonate (at most 100 are read); absent: every mailbox.',
      ),
  })
  .strict();

/** The ApplicationImpersonation group when none is configured: `CN=ApplicationImpersonation` right under `baseDn`. */
export const defaultImpersonationGroup = (baseDn: string): string => `CN=ApplicationImpersonation,${baseDn}`;

const tlsSchema = z
  .object({
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "A PEM file of the CA(s) that issued the directory's certificate; Node's CA list when absent.",
      ),
    ca: z
      .string()
      .includes('-----BEGIN CERTIFICATE-----', { message: 'must be PEM certificate text' })
      .optional()
      .describe('The same as PEM text in the estate file (a certificate is public; never a key).'),
    rejectUnauthorized: z
      .boolean()
      .default(true)
      .describe("Check the directory's certificate (default true). false is for throwaway labs only."),
    servername: z
      .string()
      .min(1)
      .optional()
      .describe("The name the certificate must carry, when it differs from the URL's host."),
  })
  .strict()
  .refine((t) => t.caFile === undefined || t.ca === undefined, { message: 'give caFile or ca, not both' });

/** The `directory.ldap` section of an estate file. */
export const ldapDirectorySchema = z
  .object({
    url: z
      .string()
      .refine(
        (s) => {
          try {
            const u = new URL(s);
            return (
              (u.protocol === 'ldap:' || u.protocol === 'ldaps:') &&
              u.hostname !== '' &&
              !u.username &&
              !u.password &&
              (u.pathname === '' || u.pathname === '/') &&
              !u.search &&
              !u.hash
            );
          } catch {
            return false;
          }
        },
        { message: 'must be ldap://host[:port] or ldaps://host[:port], without credentials, path or query' },
      )
      .describe(
        'The directory server: ldaps://dc1.contoso.local (port 636) or ldap://dc1.contoso.local (389).',
      ),
    startTls: z
      .boolean()
      .optional()
      .describe(
        'StartTLS on an ldap:// URL before anything else is sent; default true for ldap:// (false means plain LDAP, see allowPlainOnLoopback). Not for ldaps://.',
      ),
    allowPlainOnLoopback: z
      .boolean()
      .default(false)
      .describe(
        'Allow plain LDAP (ldap:// with startTls: false), and only to a loopback address (127.0.0.1, ::1). Default false.',
      ),
    tls: tlsSchema.prefault({}).describe('TLS for ldaps:// and StartTLS.'),
    baseDn: z
      .string()
      .min(1)
      .describe(
        'Where users are searched (subtree), e.g. DC=contoso,DC=local or CN=Users,DC=contoso,DC=local.',
      ),
    bindDn: z
      .string()
      .min(1)
      .describe('The service account lookups run as, e.g. CN=svc-coexist,CN=Users,DC=contoso,DC=local.'),
    bindPasswordFile: z
      .string()
      .min(1)
      .optional()
      .describe("A file holding the service account's password (one line); never the password itself here."),
    bindPasswordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name' })
      .optional()
      .describe("An environment variable holding the service account's password."),
    netbiosDomain: z
      .string()
      .regex(/^[^\\/:*?"<>|\s]{1,15}$/, { message: 'must be a NetBIOS domain name such as CONTOSO' })
      .optional()
      .describe(
        "The domain of DOMAIN\\user logins (case-insensitive); by default the one domain of the estate's users' logins.",
      ),
    mapping: mappingSchema.prefault({}).describe('Object class and attribute names; AD defaults.'),
    impersonation: z
      .array(impersonationAssignmentSchema)
      .readonly()
      .optional()
      .describe(
        'Who holds the ApplicationImpersonation role (EWS impersonation): the members of these security groups, each over every mailbox or over the members of its scope group. Default: the members of CN=ApplicationImpersonation,<baseDn>, over every mailbox; [] turns impersonation off.',
      ),
    poolSize: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(4)
      .describe(
        'Service connections kept open for lookups, at most (default 4); lookups beyond wait for one.',
      ),
    maxConcurrentBinds: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(8)
      .describe(
        'Password checks in flight at once, each on a short-lived connection of its own (default 8); more wait.',
      ),
    timeoutMs: z
      .number()
      .int()
      .min(50)
      .max(120_000)
      .default(5000)
      .describe(
        'The longest a lookup or a password check may take, waiting for a connection included (default 5000); then the directory counts as unavailable.',
      ),
    idleTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(3_600_000)
      .default(60_000)
      .describe(
        'A pooled connection idle longer than this is closed and replaced when next needed (default 60000): firewalls drop idle connections without a word, and AD closes them after its MaxConnIdleTime.',
      ),
    connectTimeoutMs: z
      .number()
      .int()
      .min(50)
      .max(60_000)
      .default(3000)
      .describe('The longest a TCP (and, for ldaps://, TLS) connect may take (default 3000).'),
  })
  .strict()
  .superRefine((o, ctx) => {
    const problem = transportProblem(o);
    if (problem) ctx.addIssue({ code: 'custom', path: ['url'], message: problem });
    if ((o.bindPasswordFile === undefined) === (o.bindPasswordEnv === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['bindPasswordFile'],
        message: 'give exactly one of bindPasswordFile or bindPasswordEnv (never the password itself)',
      });
    }
  })
  .describe('The directory in LDAP: Active Directory, or OpenLDAP with coexist-exchange.schema.');

/** One ApplicationImpersonation role assignment of the directory. */
export type ImpersonationAssignment = z.output<typeof impersonationAssignmentSchema>;

/** Options of `LdapDirectory`, as written (defaults may be left out). */
export type LdapDirectoryOptions = z.input<typeof ldapDirectorySchema>;
/** Options of `LdapDirectory` with the defaults filled in. */
export type ResolvedLdapDirectoryOptions = z.output<typeof ldapDirectorySchema>;
