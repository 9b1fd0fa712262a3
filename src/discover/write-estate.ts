/**
 * An estate plan (plan.ts) as a commented estate YAML file: at the top what discovery could not decide,
 * then the estate in the order of docs/config.md, with a comment wherever a value was inferred or left out.
 * The result loads with coexist's own loader when the plan has a primary namespace (the tests load every
 * estate they write).
 */
import type { Organisation } from './organisation.ts';
import { buildLabel, vdirProtocols } from './organisation.ts';
import type { EstatePlan } from './plan.ts';
import { planEstate } from './plan.ts';

export interface WrittenEstate {
  readonly yaml: string;
  readonly plan: EstatePlan;
}

/**
 * Where the organisation was read, for the header: Exchange Management Shell exports (the default), or
 * Active Directory, with the directory.ldap section to fill in (commented: its password stays outside).
 */
export interface EstateOrigin {
  /** `Exchange Management Shell exports` or `Active Directory (ldaps://...)`. */
  readonly from: string;
  /** Where the users came from, for the comment above them. */
  readonly usersFrom: string;
  /** directory.ldap's settings as read, written commented below the users. */
  readonly directory?: {
    readonly url: string;
    readonly baseDn: string;
    readonly bindDn: string;
    readonly caFile?: string;
  };
}

const shellOrigin: EstateOrigin = {
  from: 'Exchange Management Shell exports',
  usersFrom: 'From the Get-Mailbox export.',
};

/** Organisation -> plan -> YAML. `sources` are the files (or the directory) read, named in the header. */
export function writeEstate(
  org: Organisation,
  sources: readonly string[],
  origin: EstateOrigin = shellOrigin,
): WrittenEstate {
  const plan = planEstate(org);
  return { yaml: estateYaml(plan, org, sources, origin), plan };
}

/** A YAML scalar: plain when that reads back as the same text, else double-quoted (JSON's escaping is YAML's). */
export function scalar(v: string | number | boolean): string {
  if (typeof v !== 'string') return String(v);
  const plain =
    /^[A-Za-z0-9][A-Za-z0-9 ._@/:\\+()-]*$/.test(v) &&
    !/: | #|[ :]$/.test(v) &&
    !/^(true|false|null|yes|no|on|off|~|[-+]?[0-9][0-9_.eE+-]*|0x[0-9a-f]+|\.inf|\.nan)$/i.test(v);
  return plain ? v : JSON.stringify(v);
}

const list = (xs: readonly string[]): string => `[${xs.map(scalar).join(', ')}]`;

function estateYaml(
  plan: EstatePlan,
  org: Organisation,
  sources: readonly string[],
  origin: EstateOrigin,
): string {
  const out: string[] = [];
  const line = (indent: number, text: string): void => void out.push(' '.repeat(indent) + text);
  const comment = (indent: number, text: string): void => {
    for (const l of wrap(text, 110 - indent)) line(indent, `# ${l}`);
  };

  comment(
    0,
    `Written by coexist discover from ${origin.from}: ${sources.join(', ')}. How each value was found: docs/discover.md.`,
  );
  line(0, '#');
  line(
    0,
    `# TO DECIDE (discover could not tell from the ${origin === shellOrigin ? 'exports' : 'directory'}):`,
  );
  for (const u of plan.undecided) {
    const [first, ...rest] = wrap(u, 104);
    line(0, `#  - ${first ?? ''}`);
    for (const r of rest) line(0, `#    ${r}`);
  }
  if (org.notes.length > 0) {
    line(0, '#');
    line(0, '# Read but not used:');
    for (const n of org.notes) {
      const [first, ...rest] = wrap(`${n.source}: ${n.message}`, 104);
      line(0, `#  - ${first ?? ''}`);
      for (const r of rest) line(0, `#    ${r}`);
    }
  }
  line(0, `name: ${scalar(plan.name)}`);
  line(0, `organization: ${scalar(plan.organization)}`);
  line(0, `domains: ${list(plan.domains)} # the accepted domains`);
  out.push('');
  comment(0, 'coexist\'s routing choices (docs/config.md "policies"): not Exchange settings.');
  line(0, 'policies:');
  line(2, 'activesyncCrossSite: proxy');
  line(
    2,
    `owaRedirectStyle: ${plan.owaRedirectStyle}` +
      (plan.owaRedirectStyle === 'silent-fba'
        ? ' # an OWA virtual directory has CrossSiteRedirectType Silent'
        : ''),
  );
  line(2, 'autodiscoverLegacy: answer-at-front-end');
  line(2, 'mobileAutodiscover: site-namespace');
  out.push('');
  comment(0, 'The networks of internal clients are not in Exchange: write them.');
  if (org.subnets !== undefined && org.subnets.length > 0)
    line(
      0,
      `# internalNetworks: ${list(org.subnets)} # the subnets of AD's sites: keep those of internal clients`,
    );
  else line(0, '# internalNetworks: [10.0.0.0/8]');
  if (plan.remoteDomains.length > 0) {
    out.push('');
    comment(
      0,
      'The hybrid routing domain: mailboxes moved to Exchange Online; Autodiscover sends their users there.',
    );
    line(0, 'remoteDomains:');
    for (const r of plan.remoteDomains) {
      line(2, `- domain: ${scalar(r.domain)}`);
      line(4, `autodiscoverUrl: ${scalar(r.autodiscoverUrl)}`);
    }
  }
  out.push('');
  comment(0, 'Inferred from the external URLs (docs/discover.md "Namespaces").');
  line(0, plan.namespaces.length === 0 ? 'namespaces: []' : 'namespaces:');
  for (const n of plan.namespaces) {
    line(2, `- { host: ${scalar(n.host)}, kind: ${n.kind}, server: ${scalar(n.server)} } # ${n.why}`);
  }
  out.push('');
  line(0, 'sites:');
  for (const site of plan.sites) {
    line(2, `- name: ${scalar(site.name)}`);
    line(
      4,
      `internetFacing: ${site.internetFacing} # ${site.internetFacing ? 'a server here has an external URL' : 'no external URL on any server here'}`,
    );
    line(4, 'servers:');
    for (const s of site.servers) {
      const b = s.source.build;
      line(6, `- name: ${scalar(s.name)}`);
      line(8, `fqdn: ${scalar(s.fqdn)}`);
      line(8, `version: ${s.version} # ${buildLabel(b)}`);
      line(8, `roles: ${list(s.roles)}`);
      const protocols = vdirProtocols.filter((p) => s.urls[p] || s.urlComments[p]);
      if (protocols.length > 0) {
        const anyUrl = protocols.some((p) => s.urls[p]);
        if (anyUrl) line(8, 'urls:');
        for (const p of protocols) {
          for (const c of s.urlComments[p] ?? []) comment(anyUrl ? 10 : 8, c);
          const u = s.urls[p];
          if (!u) continue;
          line(10, `${p}:`);
          if (u.internal) line(12, `internal: ${scalar(u.internal)}`);
          if (u.external) line(12, `external: ${scalar(u.external)}`);
        }
      }
      if (s.databases.length > 0) line(8, `databases: ${list(s.databases)}`);
    }
  }
  out.push('');
  if (plan.users === undefined) {
    comment(
      0,
      'Users are not in these exports: look them up in Active Directory (docs/config.md "directory"), or add a Get-Mailbox export (docs/discover.md) and run discover again.',
    );
    line(0, '# directory:');
    line(0, '#   ldap:');
    line(0, `#     url: ldaps://dc1.${org.adDomain ?? 'example.local'}`);
    line(0, `#     baseDn: CN=Users,${dn(org.adDomain)}`);
    line(0, `#     bindDn: CN=svc-coexist,CN=Users,${dn(org.adDomain)}`);
    line(0, '#     bindPasswordFile: /etc/coexist/ldap-password');
    line(0, 'users: []');
  } else {
    comment(
      0,
      `${origin.usersFrom} No password hashes: passwords are checked by the directory, or add hashes (coexist hash-password).`,
    );
    if (origin.directory) {
      line(0, '# directory:');
      line(0, '#   ldap:');
      line(0, `#     url: ${scalar(origin.directory.url)}`);
      line(0, `#     baseDn: ${scalar(origin.directory.baseDn)}`);
      line(0, `#     bindDn: ${scalar(origin.directory.bindDn)}`);
      line(0, '#     bindPasswordFile: /etc/coexist/ldap-password');
      if (origin.directory.caFile !== undefined)
        line(0, `#     tls: { caFile: ${scalar(origin.directory.caFile)} }`);
    }
    line(0, plan.users.length === 0 ? 'users: []' : 'users:');
    for (const u of plan.users) {
      line(2, `- address: ${scalar(u.address)}`);
      if (u.displayName !== undefined) line(4, `displayName: ${scalar(u.displayName)}`);
      if (u.aliases.length > 0) line(4, `aliases: ${list(u.aliases)}`);
      if (u.upn !== undefined) line(4, `upn: ${scalar(u.upn)}`);
      const m = u.mailbox;
      line(
        4,
        'database' in m
          ? `mailbox: { database: ${scalar(m.database)} }`
          : `mailbox: { server: ${scalar(m.server)} }`,
      );
    }
  }
  return out.join('\n') + '\n';
}

const dn = (domain: string | undefined): string =>
  (domain ?? 'example.local')
    .split('.')
    .map((p) => `DC=${p}`)
    .join(',');

/** Words into lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/)) {
    if (current !== '' && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else current = current === '' ? word : `${current} ${word}`;
  }
  if (current !== '') lines.push(current);
  return lines;
}
