/**
 * The estate file format (YAML), as a zod schema. Every field is documented here; the same text ends up in
 * the published JSON Schema (`schema/estate.schema.json`, `npm run schema`) that editors use.
 * Cross-references (a user's server, a namespace's server, duplicates) are checked after the schema,
 * in `check-estate.ts`, so that every problem of a file is reported at once.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { protocols } from '../core/protocols/protocol.ts';
import { ldapDirectorySchema } from '../directory/ldap-settings.ts';

const hostName = z
  .string()
  .regex(
    /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/,
    {
      message:
        'must be a DNS host name such as mail.contoso.com (letters, digits, hyphens and dots; no scheme, port or path)',
    },
  );

const absoluteUrl = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (
        (u.protocol === 'https:' || u.protocol === 'http:') && u.hostname !== '' && !u.username && !u.password
      );
    } catch {
      return false;
    }
  },
  {
    message:
      'must be an absolute http(s) URL without credentials, such as https://cas2007-la.contoso.local/Microsoft-Server-ActiveSync',
  },
);

/** `10.0.0.0/8`, `fd00::/8`: an IPv4 or IPv6 address (Node's own parser) and a prefix length that fits it. */
const network = z.string().refine(
  (s) => {
    const slash = s.indexOf('/');
    const family = slash > 0 ? isIP(s.slice(0, slash)) : 0;
    const bits = slash > 0 && /^\d{1,3}$/.test(s.slice(slash + 1)) ? Number(s.slice(slash + 1)) : -1;
    return family !== 0 && bits >= 0 && bits <= (family === 4 ? 32 : 128);
  },
  { message: 'must be a network in CIDR form, such as 10.0.0.0/8 or fd00::/8' },
);

const httpsUrl = absoluteUrl.refine((s) => s.startsWith('https://'), {
  message: 'must be an https URL (clients follow Autodiscover redirects only to https)',
});

const remoteDomainSchema = z
  .object({
    domain: hostName.describe('An SMTP domain whose mailboxes this estate does not hold.'),
    autodiscoverUrl: httpsUrl
      .optional()
      .describe(
        'Send Autodiscover clients to this Autodiscover URL (POX Action=redirectUrl, SOAP RedirectUrl).',
      ),
    addressDomain: hostName
      .optional()
      .describe(
        'Send Autodiscover clients to the same user at this domain (POX Action=redirectAddr, SOAP RedirectAddress), e.g. a tenant domain after a move.',
      ),
  })
  .strict()
  .refine((d) => (d.autodiscoverUrl === undefined) !== (d.addressDomain === undefined), {
    message: 'give exactly one of autodiscoverUrl or addressDomain',
  });

const smtpAddress = z.string().regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, {
  message: 'must be an SMTP address such as bob@contoso.com',
});

const urls = z
  .object({
    internal: absoluteUrl
      .optional()
      .describe("The virtual directory's InternalUrl: what clients and servers inside the network use."),
    external: absoluteUrl
      .optional()
      .describe(
        "The virtual directory's ExternalUrl. Leave it out when the server is not internet-facing for this protocol.",
      ),
  })
  .strict();

const protocolUrls = z
  .object(
    Object.fromEntries(protocols.map((p) => [p, urls.optional()])) as Record<
      (typeof protocols)[number],
      z.ZodOptional<typeof urls>
    >,
  )
  .strict()
  .describe(
    `URLs per protocol (${protocols.join(', ')}): Exchange's InternalUrl and ExternalUrl of each virtual directory.`,
  );

const authMethods = z
  .array(z.enum(['basic', 'ntlm', 'negotiate']))
  .min(1, { message: 'list at least one method (basic, ntlm, negotiate)' })
  .refine((list) => new Set(list).size === list.length, { message: 'lists a method twice' });

const protocolAuthentication = z
  .object(
    Object.fromEntries(protocols.map((p) => [p, authMethods.optional()])) as Record<
      (typeof protocols)[number],
      z.ZodOptional<typeof authMethods>
    >,
  )
  .strict()
  .describe(
    'What clients may authenticate with on each virtual directory, as Exchange\'s Set-*VirtualDirectory -BasicAuthentication/-WindowsAuthentication set it: basic, ntlm (Windows authentication, NTLM), negotiate (Windows authentication, Kerberos or NTLM inside SPNEGO). A protocol not listed offers basic only. Only protocols the server has a virtual directory for: a URL in urls, or any protocol on a 2013+ mailbox server (its back-end site). docs/config.md "authentication".',
  );

export const serverSchema = z
  .object({
    name: z.string().min(1).describe('Server name, unique in the estate, e.g. CAS2013-NY.'),
    fqdn: hostName.describe('Internal host name of the server, e.g. cas2013-ny.contoso.local.'),
    version: z
      .literal([2007, 2010, 2013, 2016, 2019])
      .describe('Exchange product version: 2007, 2010, or 2013/2016/2019 (the 2013 front-end model).'),
    roles: z
      .array(z.enum(['cas', 'mailbox']))
      .min(1)
      .describe('Roles the server holds: cas (Client Access), mailbox, or both.'),
    urls: protocolUrls.optional(),
    databases: z
      .array(z.string().min(1))
      .optional()
      .describe(
        'Mailbox databases mounted on this server (mailbox role only). Users may name a database instead of a server.',
      ),
    authentication: protocolAuthentication.optional(),
  })
  .strict();

export const siteSchema = z
  .object({
    name: z.string().min(1).describe('Active Directory site name, unique in the estate, e.g. New York.'),
    internetFacing: z
      .boolean()
      .describe(
        'Whether the site is reachable from the internet. An intranet-only site must have no external URLs.',
      ),
    servers: z.array(serverSchema).describe('The Exchange servers of the site.'),
  })
  .strict();

export const namespaceSchema = z
  .object({
    host: hostName.describe('The host name clients use, e.g. mail.contoso.com.'),
    kind: z
      .enum(['primary', 'autodiscover', 'legacy', 'regional', 'other'])
      .describe(
        "primary: the one public name of the front end; autodiscover: autodiscover.<domain>; legacy: the name bound to the 2007 CAS (2007 coexistence); regional: another site's public name.",
      ),
    server: z
      .string()
      .min(1)
      .describe('The server this name resolves to (by name, as in sites[].servers[].name).'),
  })
  .strict();

export const userSchema = z
  .object({
    address: smtpAddress.describe('Primary SMTP address.'),
    displayName: z
      .string()
      .min(1)
      .optional()
      .describe('Display name; defaults to the local part of the address.'),
    aliases: z.array(smtpAddress).optional().describe('Secondary SMTP addresses (proxyAddresses smtp:).'),
    login: z
      .string()
      .regex(/^[^\\\s]+\\[^\\\s]+$/, { message: 'must be a down-level logon name such as CONTOSO\\bob' })
      .optional()
      .describe('Down-level logon name, DOMAIN\\user.'),
    upn: smtpAddress.optional().describe('userPrincipalName, when it differs from the address.'),
    mailbox: z
      .object({
        server: z.string().min(1).optional().describe('The mailbox server holding the mailbox.'),
        database: z
          .string()
          .min(1)
          .optional()
          .describe('The mailbox database holding the mailbox; its server is looked up.'),
      })
      .strict()
      .describe('Where the mailbox lives: a server, or a database (exactly one).'),
    password: z
      .string()
      .regex(/^\$(scrypt|argon2id|argon2i|argon2d)\$/, {
        message:
          'must be a password hash ($scrypt$... or $argon2id$...), never a clear-text password; make one with `coexist hash-password`',
      })
      .optional()
      .describe('Password hash for the embedded directory (PHC string format).'),
    fullAccess: z
      .array(z.string().min(1))
      .optional()
      .describe(
        "Users granted full access to this mailbox (Exchange's Add-MailboxPermission -AccessRights FullAccess; in AD msExchDelegateListLink), by address, alias, UPN or DOMAIN\\user: they may open it in every protocol. None by default: only the owner.",
      ),
    delegates: z
      .array(z.string().min(1))
      .optional()
      .describe(
        "This mailbox's delegates (in AD publicDelegates), by address, alias, UPN or DOMAIN\\user: they may open it over EWS (delegate access). None by default.",
      ),
    applicationImpersonation: z
      .union([z.literal('all'), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe(
        "The ApplicationImpersonation role for this user, a service account (Exchange's New-ManagementRoleAssignment -Role ApplicationImpersonation; in LDAP, membership of the role group): all, over every mailbox, or a list of the users whose mailboxes it may impersonate (a scope), by address, alias, UPN or DOMAIN\\user. It may then act as those mailboxes' owners over EWS with the ExchangeImpersonation SOAP header. None by default.",
      ),
  })
  .strict();

export const policiesSchema = z
  .object({
    activesyncCrossSite: z
      .enum(['proxy', 'redirect-451'])
      .optional()
      .describe(
        'ActiveSync for a mailbox in another internet-facing site: proxy (Exchange 2013 behaviour, default) or redirect-451 (the pre-2013 HTTP 451 with X-MS-Location).',
      ),
    owaRedirectStyle: z
      .enum(['http-302', 'silent-fba'])
      .optional()
      .describe(
        'How OWA redirects are presented: a plain 302 (default) or the silent forms-based replay of Exchange 2010 SP2+.',
      ),
    autodiscoverLegacy: z
      .enum(['answer-at-front-end', 'proxy-to-mailbox'])
      .optional()
      .describe(
        'Autodiscover for 2007 mailboxes: answered by the front end (default) or proxied to a local 2013 mailbox server that builds the answer.',
      ),
    mobileAutodiscover: z
      .enum(['site-namespace', 'primary-namespace'])
      .optional()
      .describe(
        "The ActiveSync URL Autodiscover gives a 2007/2010 mailbox whose site has its own external URL: that site's (regional) namespace (default, docs/flows.md EAS-3B), or the primary namespace, through which the front end proxies (EAS-3A).",
      ),
  })
  .strict()
  .describe(
    'Routing policies where Exchange versions behave differently; each has a default, so the section is optional.',
  );

const count = z.number().int().positive();

/** docs/security.md "Extranet smart lockout"; the defaults are dataplane/lockout.ts's `lockoutDefaults`. */
export const lockoutSchema = z
  .object({
    enabled: z
      .boolean()
      .optional()
      .describe(
        'false turns the extranet smart lockout off: every sign-in is asked to the directory. Default true.',
      ),
    windowSeconds: count
      .optional()
      .describe(
        'The observation window: failed sign-ins count for this long from the first, and a lock lasts this long from when it starts. Default 1800 (30 min); keep it at least the domain\'s "reset account lockout counter after".',
      ),
    unfamiliarThreshold: count
      .optional()
      .describe(
        'Wrong passwords for one account from sources that never signed it in, within the window, after which such sources are answered at once with the failure, without asking the directory. Default 5.',
      ),
    familiarThreshold: count
      .optional()
      .describe(
        "Wrong passwords for one account from its familiar sources (where it signed in before) after which those are refused too. Default 4; keep unfamiliarThreshold + familiarThreshold below the domain's account lockout threshold.",
      ),
    sourceThreshold: count
      .optional()
      .describe(
        'Wrong passwords from one source address (IPv6: its /64) across accounts it never signed in, within the window, after which it is refused for every such account (password spraying). Default 20.',
      ),
    familiarDays: count
      .optional()
      .describe(
        'A source stays familiar to an account this many days after its last successful sign-in from it. Default 30.',
      ),
    freeFailures: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe('Failed sign-ins answered without delay before the progressive delay starts. Default 2.'),
    firstDelayMs: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(
        'The first delay before a failure is answered; each further failure doubles it. Default 250.',
      ),
    maxDelayMs: z
      .number()
      .int()
      .nonnegative()
      .max(60_000)
      .optional()
      .describe('The longest delay before a failure is answered. Default 2000.'),
    maxKeys: count
      .optional()
      .describe(
        'The most counters kept in memory (accounts, sources, familiar pairs); the least recently written go first. Default 200000.',
      ),
  })
  .strict()
  .describe(
    "Extranet smart lockout (docs/security.md): failed sign-ins counted per account, apart for familiar and unfamiliar sources, and per source; past a threshold the protocol's failure is answered without asking the directory, so an attacker cannot lock the account in Active Directory. On by default.",
  );

const milliseconds = z.number().int().positive();

/** docs/operations.md "Health pages"; the defaults are dataplane/health.ts's `healthDefaults`. */
export const healthSchema = z
  .object({
    intervalSeconds: count
      .optional()
      .describe('Seconds between two probe rounds of the next hops and the directory. Default 10.'),
    timeoutSeconds: count
      .optional()
      .describe(
        "Longest a probe may take: a next hop's answer to GET <vdir>/healthcheck.htm, a directory lookup. Default 3.",
      ),
    downAfter: count
      .optional()
      .describe(
        'Consecutive failed probes after which a next hop (or the directory) is down; one success brings it back. Default 3.',
      ),
    rule: z
      .enum(['any', 'every'])
      .optional()
      .describe(
        "When a protocol's healthcheck.htm answers 200: any (default), while the protocol can serve some mailboxes here (an answer this server gives itself, or one healthy next hop); every, only while every mailbox server's users it routes have a healthy next hop.",
      ),
    ejectAfter: count
      .optional()
      .describe(
        'Consecutive requests to a next hop that fail without an answer (no connection, TLS failure, reset or timeout before its answer) after which it is ejected: requests go to an equivalent server until its next probe answers (docs/operations.md "Next hops"). Default 3.',
      ),
  })
  .strict()
  .describe(
    'Health pages for load balancers (docs/operations.md): /<vdir>/healthcheck.htm per protocol and the admin /readyz, from probes of the next hops this server uses and of the directory.',
  );

/**
 * docs/security.md "Limits and timeouts at the edge"; the defaults are dataplane/edge-limits.ts's
 * `defaultEdgeLimits`.
 */
export const limitsSchema = z
  .object({
    tlsHandshakeTimeoutMs: milliseconds
      .optional()
      .describe(
        'Longest time from accepting a connection to the end of its TLS handshake, absolute (a handshake trickled a byte at a time is cut too). Default 10000.',
      ),
    headTimeoutMs: milliseconds
      .optional()
      .describe(
        "Longest time to receive a request head (request line and headers): a new connection's first from the end of its handshake, a kept-alive connection's next from its first byte. Over it: 408, connection closed (slowloris). Default 20000.",
      ),
    bodyIdleTimeoutMs: milliseconds
      .optional()
      .describe(
        "Longest silence while a declared request body is still arriving; Outlook Anywhere channels excepted (their idle limit is the protocol's). Over it: 408, connection closed. Default 60000.",
      ),
    keepAliveTimeoutMs: milliseconds
      .optional()
      .describe('How long a kept-alive connection may sit idle between two requests. Default 5000.'),
    maxHeaderBytes: z
      .number()
      .int()
      .min(1024)
      .optional()
      .describe('Largest request head (request line and headers), bytes. Over it: 431. Default 16384.'),
    maxHeaderCount: count.optional().describe('Most header fields in a request. Over it: 431. Default 100.'),
    maxConnections: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(
        "Most client connections this server holds open, all its listeners together; past it a new one is closed at accept, before TLS. 0: no cap. Default 10000; keep it under half the process's file-descriptor limit (a proxied connection holds one to the next hop too).",
      ),
    maxConnectionsPerSource: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(
        'Most client connections one source (an IPv4 address, an IPv6 /64) holds open; past it a new one is closed at accept. Trusted proxies are exempt. 0: no cap. Default 1000; raise it for many clients behind one NAT address.',
      ),
    reservedPercent: z
      .number()
      .int()
      .min(0)
      .max(50)
      .optional()
      .describe(
        'The last places of maxConnections, in percent, kept for known sources (where someone signed in successfully on this server in the last 7 days): a flood from unknown sources stops short of them, so regular clients still connect. 0: no reserve. Default 10.',
      ),
    logIntervalMs: milliseconds
      .optional()
      .describe(
        'Refused and cut connections are counted at once (coexist_edge_events_total) and logged at most once this often per kind, with the count since the last line. Default 10000.',
      ),
  })
  .strict()
  .describe(
    'Limits and timeouts at the edge (docs/security.md): deadlines for the TLS handshake and the request head, a stalled body cut, head size and field count, and connection caps in total and per source. Each has a safe default, so the section is optional.',
  );

export const estateFileSchema = z
  .object({
    $schema: z.string().optional().describe('Path or URL of this JSON Schema, for editors.'),
    name: z.string().min(1).describe('A short name for the estate.'),
    organization: z.string().min(1).describe('Exchange organization name (used in legacy DNs).'),
    domains: z.array(hostName).min(1).describe('SMTP domains the estate serves (accepted domains).'),
    policies: policiesSchema.optional(),
    internalNetworks: z
      .array(network)
      .optional()
      .describe(
        'Source networks of internal clients (docs/protocols.md §2.4): Autodiscover and OWA answer them with internal URLs. Everyone else is external; ActiveSync is always external.',
      ),
    directory: z
      .object({
        ldap: ldapDirectorySchema
          .optional()
          .describe(
            'Users and mailbox locations from LDAP (Active Directory with Exchange attributes, or OpenLDAP with examples/ldap/coexist-exchange.schema); the users section then only documents.',
          ),
      })
      .strict()
      .optional()
      .describe('Where users live: the embedded users section of this file (default), or an LDAP directory.'),
    lockout: lockoutSchema.optional(),
    limits: limitsSchema.optional(),
    health: healthSchema.optional(),
    remoteDomains: z
      .array(remoteDomainSchema)
      .optional()
      .describe(
        'SMTP domains that live elsewhere: Autodiscover redirects their users (MS-OXDSCLI redirectUrl / redirectAddr).',
      ),
    namespaces: z.array(namespaceSchema).describe('Host names and the servers they resolve to.'),
    sites: z.array(siteSchema).min(1).describe('Active Directory sites and their servers.'),
    users: z.array(userSchema).describe('Mailbox users (the embedded directory).'),
  })
  .strict()
  .describe(
    'A coexist estate: the sites, servers, namespaces, users and policies of an Exchange organization in coexistence.',
  );

export type EstateFile = z.infer<typeof estateFileSchema>;
