/**
 * `coexist discover --report`: a migration view of what was discovered, per site and Exchange version (the
 * servers, the namespaces, how many mailboxes when a Get-Mailbox export was read), then the configuration
 * problems Microsoft's coexistence guidance warns about that the exports show (docs/discover.md "What
 * --report checks"), what could not be checked and why, and what discovery could not decide.
 */
import type { ExchangeServer, Organisation } from './organisation.ts';
import { buildLabel, isCas, productOf } from './organisation.ts';
import type { EstatePlan } from './plan.ts';

export interface Finding {
  /** A stable id, for tests and scripts: `eas-external-2007`, `no-legacy-namespace`, `certificate`. */
  readonly id: string;
  readonly message: string;
}

export interface DiscoveryReport {
  readonly problems: readonly Finding[];
  readonly unchecked: readonly string[];
  readonly text: string;
}

const lc = (s: string): string => s.toLowerCase();

export function discoveryReport(org: Organisation, plan: EstatePlan): DiscoveryReport {
  const out: string[] = [];
  const serverSite = (s: ExchangeServer): string => s.site ?? 'Unknown site';
  const mailboxCount = mailboxesPerServer(org);
  const frontEndSites = new Set(
    org.servers
      .filter(
        (s) =>
          (productOf(s.build) ?? 0) >= 2013 &&
          isCas(s) &&
          s.virtualDirectories.some((v) => v.externalUrl || v.outlookAnywhere?.externalHostname),
      )
      .map(serverSite),
  );

  const servers = org.servers.length;
  out.push(
    `Exchange organisation ${org.name ?? '(name not exported)'}${org.adDomain ? ` (${org.adDomain})` : ''}: ${servers} server${servers === 1 ? '' : 's'} in ${org.sites.length} site${org.sites.length === 1 ? '' : 's'}.`,
  );
  const siteNames = [...new Set(org.servers.map(serverSite))];
  for (const site of siteNames) {
    const planned = plan.sites.find((s) => lc(s.name) === lc(site));
    const facing = planned
      ? planned.internetFacing
        ? 'internet-facing'
        : 'intranet only'
      : 'not in the estate';
    out.push('', `Site ${site} (${facing}${frontEndSites.has(site) ? "; the front end's site" : ''})`);
    const inSite = org.servers.filter((s) => serverSite(s) === site);
    const versions = [...new Set(inSite.map((s) => productOf(s.build) ?? 0))].sort((a, b) => b - a);
    for (const version of versions) {
      const group = inSite.filter((s) => (productOf(s.build) ?? 0) === version);
      out.push(`  Exchange ${version === 0 ? 'other' : version}`);
      for (const s of group) {
        const dbs = org.databases.filter((d) => lc(d.server) === lc(s.name)).map((d) => d.name);
        out.push(
          `    ${s.name.padEnd(16)} ${buildLabel(s.build).padEnd(22)} ${(s.roles.join(', ') || 'no role').padEnd(28)} ${dbs.length > 0 ? `databases: ${dbs.join(', ')}` : ''}`.trimEnd(),
        );
      }
      const names = new Set(group.map((s) => lc(s.name)));
      const ns = plan.namespaces.filter((n) => names.has(lc(n.server)));
      out.push(
        `    namespaces: ${ns.length > 0 ? ns.map((n) => `${n.host} (${n.kind})`).join(', ') : 'none'}`,
      );
      if (mailboxCount) {
        const count = group.reduce((n, s) => n + (mailboxCount.get(lc(s.name)) ?? 0), 0);
        out.push(`    mailboxes: ${count}`);
      } else out.push('    mailboxes: unknown (no Get-Mailbox export)');
    }
  }

  const problems = [
    ...easExternal2007(org, frontEndSites),
    ...noLegacyNamespace(org, plan, mailboxCount),
    ...certificateProblems(org),
  ];
  const unchecked: string[] = [];
  if (org.certificates === undefined) {
    unchecked.push(
      'Certificates: no Get-ExchangeCertificate export was read, so whether each internal URL is in the certificate of the server that serves it cannot be checked (docs/discover.md gives the export).',
    );
  } else {
    for (const s of org.servers) {
      if (!isCas(s) || !s.virtualDirectories.some((v) => v.internalUrl)) continue;
      if (!org.certificates.some((c) => lc(c.server) === lc(s.name) && c.services.includes('IIS'))) {
        unchecked.push(
          `Certificates: the export has no certificate of ${s.name} enabled for IIS, so its internal URLs cannot be checked.`,
        );
      }
    }
  }

  out.push('', "Problems Microsoft's coexistence guidance warns about:");
  if (problems.length === 0) out.push('  none found');
  for (const p of problems) out.push(...bullet(p.message));
  if (unchecked.length > 0) {
    out.push('', 'Could not check:');
    for (const u of unchecked) out.push(...bullet(u));
  }
  out.push('', 'To decide (also at the top of the written estate):');
  for (const u of plan.undecided) out.push(...bullet(u));
  return { problems, unchecked, text: out.join('\n') + '\n' };
}

function bullet(text: string): string[] {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur !== '' && cur.length + w.length + 1 > 106) {
      lines.push(cur);
      cur = w;
    } else cur = cur === '' ? w : `${cur} ${w}`;
  }
  if (cur !== '') lines.push(cur);
  return lines.map((l, i) => (i === 0 ? `  - ${l}` : `    ${l}`));
}

/** Server name (lower case) -> mailboxes on it, or undefined without a Get-Mailbox export. */
function mailboxesPerServer(org: Organisation): Map<string, number> | undefined {
  if (!org.mailboxes) return undefined;
  const counts = new Map<string, number>();
  for (const m of org.mailboxes) {
    const db =
      m.database === undefined ? undefined : org.databases.filter((d) => lc(d.name) === lc(m.database ?? ''));
    // A database name may repeat (Exchange 2007's "Mailbox Database"): the mailbox's ServerName decides.
    const server =
      db?.length === 1
        ? db[0]?.server
        : (db?.find((d) => m.server !== undefined && lc(d.server) === lc(m.server))?.server ?? m.server);
    if (server === undefined) continue;
    counts.set(lc(server), (counts.get(lc(server)) ?? 0) + 1);
  }
  return counts;
}

/** A 2007 ActiveSync ExternalUrl in a site the 2013+ front end serves: devices that follow it bypass the front end. */
function easExternal2007(org: Organisation, frontEndSites: ReadonlySet<string>): Finding[] {
  return org.servers.flatMap((s) => {
    if (productOf(s.build) !== 2007 || !isCas(s) || s.site === undefined || !frontEndSites.has(s.site))
      return [];
    return s.virtualDirectories
      .filter((v) => v.protocol === 'activesync' && v.externalUrl)
      .map((v) => ({
        id: 'eas-external-2007',
        message: `${s.name} (Exchange 2007, ${s.site}): the ActiveSync ExternalUrl is ${v.externalUrl}, in the site the 2013+ front end serves. The front end proxies ActiveSync for 2007 mailboxes; with this URL set, devices that are handed it go to the 2007 CAS directly and bypass the front end. Clear it: Set-ActiveSyncVirtualDirectory -Identity "${v.identity}" -ExternalUrl $null (docs/discover.md "What --report checks").`,
      }));
  });
}

/** 2007 mailboxes (or, without a mailbox export, 2007 mailbox databases) and no legacy namespace. */
function noLegacyNamespace(
  org: Organisation,
  plan: EstatePlan,
  counts: Map<string, number> | undefined,
): Finding[] {
  if (plan.namespaces.some((n) => n.kind === 'legacy')) return [];
  const servers2007 = org.servers.filter((s) => productOf(s.build) === 2007 && s.roles.includes('Mailbox'));
  if (servers2007.length === 0) return [];
  const sites = [...new Set(servers2007.map((s) => s.site ?? 'Unknown site'))].join(', ');
  if (counts) {
    const n = servers2007.reduce((sum, s) => sum + (counts.get(lc(s.name)) ?? 0), 0);
    if (n === 0) return [];
    return [
      {
        id: 'no-legacy-namespace',
        message: `No legacy namespace, but ${n} mailbox${n === 1 ? ' is' : 'es are'} on Exchange 2007 (${sites}). A 2013+ front end does not proxy OWA to 2007 and gives 2007 mailboxes EWS and OAB URLs of their own: create a legacy host name (legacy.<primary namespace>) on a 2007 Client Access server of the front end's site and set the 2007 external URLs to it (docs/discover.md "What --report checks").`,
      },
    ];
  }
  const dbs = org.databases.filter((d) => servers2007.some((s) => lc(s.name) === lc(d.server)));
  if (dbs.length === 0) return [];
  return [
    {
      id: 'no-legacy-namespace',
      message: `No legacy namespace, but Exchange 2007 holds mailbox databases (${dbs.map((d) => d.name).join(', ')} in ${sites}): if they hold mailboxes, create a legacy host name on a 2007 Client Access server of the front end's site (docs/discover.md "What --report checks").`,
    },
  ];
}

/** Each internal URL's host against the names of the IIS certificate(s) of the server that serves it. */
function certificateProblems(org: Organisation): Finding[] {
  const certs = org.certificates;
  if (!certs) return [];
  const findings: Finding[] = [];
  for (const s of org.servers) {
    if (!isCas(s)) continue;
    const names = certs
      .filter((c) => lc(c.server) === lc(s.name) && c.services.includes('IIS'))
      .flatMap((c) => c.domains);
    if (names.length === 0) continue;
    // One finding per server and host, naming the protocols whose internal URL uses it.
    const missing = new Map<string, string[]>();
    for (const v of s.virtualDirectories) {
      const host = v.internalUrl ? lc(new URL(v.internalUrl).hostname) : v.outlookAnywhere?.internalHostname;
      if (!host || names.some((n) => matches(n, host))) continue;
      missing.set(host, [...(missing.get(host) ?? []), v.protocol]);
    }
    const scp = s.autodiscoverServiceInternalUri
      ? lc(new URL(s.autodiscoverServiceInternalUri).hostname)
      : undefined;
    if (scp && !names.some((n) => matches(n, scp))) {
      missing.set(scp, [...(missing.get(scp) ?? []), 'the Autodiscover service connection point']);
    }
    for (const [host, protocols] of missing) {
      findings.push({
        id: 'certificate',
        message: `${s.name}: the internal URLs on ${host} (${protocols.join(', ')}) are not covered by ${s.name}'s IIS certificate (${names.join(', ')}): clients, and a front end proxying to them, get a name mismatch. Add ${host} to the certificate, or set the InternalUrl to a name it has (docs/discover.md "What --report checks").`,
      });
    }
  }
  return findings;
}

/** A certificate name against a host: exact, or a `*.` wildcard for one label (RFC 6125). */
function matches(name: string, host: string): boolean {
  const n = lc(name);
  if (n === host) return true;
  if (!n.startsWith('*.')) return false;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === n.slice(2);
}
