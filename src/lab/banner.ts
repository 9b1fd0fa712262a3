/**
 * What `coexist lab` prints: the servers and their ports, the CA, the estate's namespaces and users, and
 * one curl line per kind of flow the estate has, with coexist's own check and ActiveSync client lines. It is
 * built from the estate: the engine's flows (core/routing/flow.ts) tell which kinds exist, each shown for
 * a user whose password the lab knows when there is one.
 */
import { escapeXml } from '../codec/xml-escape.ts';
import type { Mailbox } from '../core/estate/estate-index.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import { protocolPath, protocolTitle } from '../core/protocols/protocol.ts';
import type { Flow } from '../core/routing/flow.ts';
import { defaultHost, traceFlow } from '../core/routing/flow.ts';
import type { Lab } from './lab.ts';
import { hostsByServer, labAddresses } from './lab.ts';

/** How many users the banner names; `coexist trace --user` shows the flows of any other. */
const maxListedUsers = 12;
/** How many users of one mailbox server are tried for a password the lab knows. */
const maxPasswordTries = 3;

/** A request the banner shows by hand, for each kind of flow it takes in the estate. */
interface Probe {
  readonly protocol: Protocol;
  readonly client: 'internal' | 'external';
  /** The curl options after the credentials (method, headers, body), for a user's address. */
  readonly curl: (address: string) => string;
  /** Appended to the line's comment. */
  readonly note?: string;
}

const ewsGetFolder =
  '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Body><GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder></soap:Body></soap:Envelope>';

const autodiscoverRequest = (address: string): string =>
  `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${escapeXml(address)}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`;

const probes: readonly Probe[] = [
  { protocol: 'activesync', client: 'external', curl: () => '-X OPTIONS' },
  {
    protocol: 'ews',
    client: 'external',
    curl: () => `-H 'Content-Type: text/xml' -d '${ewsGetFolder}'`,
  },
  {
    protocol: 'autodiscover',
    client: 'internal',
    curl: (address) =>
      `--interface ${labAddresses.internalClient} -H 'Content-Type: text/xml' -d '${autodiscoverRequest(address)}'`,
    note: ' (internal client)',
  },
];

/** A shell word: single-quoted, a quote inside written as '\''. */
const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A kind of flow: the rules the servers applied, in order (the same for every mailbox it stands for). */
const kindOf = (flow: Flow): string =>
  [flow.outcome.kind, ...flow.steps.flatMap((s) => s.reasons.map((r) => r.rule))].join(' ');

/**
 * The docs/flows.md name of a flow (EAS-1, EWS-2...), from the sources of the rules of the first decision: the
 * entry server's is the one that tells the flows apart (later hops cite the steps they share).
 */
function flowName(flow: Flow): string | undefined {
  const first = flow.steps.find((s) => s.reasons.length > 0);
  for (const r of first?.reasons ?? []) {
    const m = /flows\.md (E[A-Z]+-[0-9A-Za-z]+)/.exec(r.source);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

/** A user standing for one mailbox server, with the password the lab accepts for them when it knows it. */
interface Representative {
  readonly mailbox: Mailbox;
  readonly password: string | undefined;
}

/** One curl line to print: who, the flow's kind and its name. */
interface FlowLine {
  readonly probe: Probe;
  readonly user: Representative;
  readonly flow: Flow;
  readonly label: string;
}

/** Options of `labBanner`. */
export interface LabBannerOptions {
  /** The estate file, for the printed `coexist check` line (which needs the estate); none: the default one. */
  readonly estateFile?: string;
}

/** What `coexist lab` prints, for this lab's estate. */
export async function labBanner(lab: Lab, o: LabBannerOptions = {}): Promise<string> {
  const index = lab.index;
  const lines: string[] = [`coexist lab: estate ${index.estate.name} on loopback`, ''];
  const hosts = hostsByServer(index);
  const connectTo: string[] = [];
  for (const [name, node] of lab.nodes) {
    const ports = node.listeners.map((l) => `${l.name} ${labAddresses.listen}:${l.port}`).join(', ');
    lines.push(`  ${name.padEnd(12)} ${lab.implementationOf(name).padEnd(36)} ${ports}`);
    for (const h of hosts.get(name) ?? []) {
      for (const port of [443, 444]) {
        const to = lab.resolve(h, port);
        if (to && (port === 443 || node.server.roles.includes('mailbox')))
          connectTo.push(`--connect-to ${h}:${port}:${to.address}:${to.port}`);
      }
    }
  }
  lines.push('', `CA certificate: ${lab.caPath}`);
  if (index.estate.namespaces.length > 0) {
    const namespaces = index.estate.namespaces.map((ns) => `${ns.host} (${ns.kind}, ${ns.server})`);
    lines.push(`Namespaces: ${namespaces.join(', ')}`);
  }
  lines.push(...(await userLines(lab)));

  const flowLines = await flowsOf(lab);
  const credentials = (u: Representative): string =>
    `-u ${sh(u.password === undefined ? u.mailbox.address : `${u.mailbox.address}:${u.password}`)}`;
  lines.push('', 'Try it (X-Coexist-Path in each answer lists the servers it came back through):');
  lines.push(`  LAB="--cacert ${lab.caPath} ${connectTo.join(' ')}"`);
  for (const f of flowLines) {
    const url = `https://${f.flow.host}${protocolPath[f.probe.protocol]}`;
    lines.push(
      `  curl $LAB -i ${credentials(f.user)} ${f.probe.curl(f.user.mailbox.address)} ${url}   # ${f.label}`,
    );
  }
  if (flowLines.some((f) => f.user.password === undefined)) {
    lines.push('  (curl asks for the password of a user whose password the lab does not know)');
  }

  // coexist check for the first mailbox behind the front end on an older version, the ActiveSync client
  // for the next kind of ActiveSync flow (EAS-1 and EAS-2 in the article's estate).
  const eas = flowLines.filter(
    (f) => f.probe.protocol === 'activesync' && f.flow.outcome.kind === 'answered',
  );
  const checkAt = Math.max(
    0,
    eas.findIndex((f) => f.user.mailbox.family !== 'modern'),
  );
  const checked = eas[checkAt];
  const synced = eas[checkAt + 1] ?? checked;
  const primary = defaultHost(index, 'activesync');
  if (checked && synced && primary) {
    const password = (u: Representative): string =>
      u.password === undefined ? '' : ` --password ${sh(u.password)}`;
    lines.push(
      '',
      "Or with coexist's own clients (each step with the servers it went through):",
      `  CX="--ca ${lab.caPath} ${connectTo.join(' ')}"`,
      `  npx coexist check${o.estateFile === undefined ? '' : ` --estate ${sh(o.estateFile)}`} --user ${checked.user.mailbox.address}${password(checked.user)} --protocol all $CX`,
      `  npx coexist activesync --user ${synced.user.mailbox.address}${password(synced.user)} --url https://${primary}${protocolPath.activesync} $CX   # ${synced.label}`,
    );
    if (checked.user.password === undefined || synced.user.password === undefined) {
      lines.push('  (without --password they read the password from COEXIST_PASSWORD)');
    }
  }
  lines.push(
    '',
    ...(lab.slapd
      ? [`Directory: OpenLDAP slapd at ${lab.slapd.url} (StartTLS, the lab CA), loaded with the estate.`]
      : []),
    ...(lab.samba
      ? [
          `Directory: Samba Active Directory at ${lab.samba.ldapsUrl} (${lab.samba.ad.domain.dnsName}; LDAPS, its CA in ${lab.samba.dir}/tls/ca.pem), loaded with the estate as Exchange writes it.`,
        ]
      : []),
    ...[...lab.sogo].map(
      ([server, stack]) =>
        `ActiveSync of ${server}: SOGo at ${stack.activeSyncUrl} (IMAP 127.0.0.1:${stack.imapPort}), a real ActiveSync server.`,
    ),
    `Internal clients connect from ${labAddresses.internalClient} (curl --interface); others are external. Ctrl-C stops the lab.`,
    '',
  );
  return lines.join('\n');
}

/** The users (the first few), each with its version and server, grouped by whether the lab knows the password. */
async function userLines(lab: Lab): Promise<string[]> {
  const mailboxes = lab.index.estate.users
    .slice(0, maxListedUsers)
    .map((u) => lab.index.mailbox(u.address))
    .filter((m): m is Mailbox => m !== undefined);
  const passwords = await Promise.all(mailboxes.map((m) => lab.knownPassword(m.address)));
  const describe = (m: Mailbox): string => `${m.address} (${m.server.version}, ${m.server.name})`;
  const byPassword = new Map<string | undefined, string[]>();
  mailboxes.forEach((m, i) => {
    const p = passwords[i];
    byPassword.set(p, [...(byPassword.get(p) ?? []), describe(m)]);
  });
  const lines: string[] = [];
  for (const [password, users] of byPassword) {
    if (password !== undefined) lines.push(`Users, password ${password}: ${users.join(', ')}`);
  }
  const others = byPassword.get(undefined);
  if (others) lines.push(`Users with a password of their own from the estate: ${others.join(', ')}`);
  const more = lab.index.estate.users.length - maxListedUsers;
  if (more > 0)
    lines.push(`... and ${more} more users (coexist trace --user USER shows the flows of any user)`);
  return lines;
}

/**
 * One line per kind of flow each probe takes in this estate: each mailbox server's users take the same
 * flow, so one user per server is traced, and a kind is shown for the first server that has it (and its
 * first user whose password the lab knows, when one of the first few does).
 */
async function flowsOf(lab: Lab): Promise<FlowLine[]> {
  const index = lab.index;
  const usersByServer = new Map<string, Mailbox[]>();
  for (const u of index.estate.users) {
    const m = index.mailbox(u.address);
    if (!m) continue;
    const list = usersByServer.get(m.server.name) ?? [];
    if (list.length < maxPasswordTries) list.push(m);
    usersByServer.set(m.server.name, list);
  }
  const representatives = new Map<string, Promise<Representative>>();
  const representativeOf = (server: string, users: readonly Mailbox[]): Promise<Representative> => {
    let r = representatives.get(server);
    if (!r) {
      r = (async () => {
        for (const m of users) {
          const password = await lab.knownPassword(m.address);
          if (password !== undefined) return { mailbox: m, password };
        }
        return { mailbox: users[0] as Mailbox, password: undefined };
      })();
      representatives.set(server, r);
    }
    return r;
  };

  const out: FlowLine[] = [];
  for (const probe of probes) {
    const seen = new Set<string>();
    for (const [server, users] of usersByServer) {
      const first = users[0];
      if (!first) continue;
      let flow: Flow;
      try {
        flow = traceFlow(index, { user: first.address, protocol: probe.protocol, client: probe.client });
      } catch {
        continue; // an estate that routes in a circle: `coexist trace` says so
      }
      const kind = kindOf(flow);
      if (flow.outcome.kind === 'refused' || seen.has(kind)) continue;
      seen.add(kind);
      const user = await representativeOf(server, users);
      const local = user.mailbox.address.slice(0, user.mailbox.address.indexOf('@'));
      const name =
        flowName(flow) ??
        `${local}: ${protocolTitle[probe.protocol]}, ${user.mailbox.server.version}, ${user.mailbox.server.name}`;
      out.push({ probe, user, flow, label: `${name}${probe.note ?? ''}` });
    }
  }
  return out;
}
