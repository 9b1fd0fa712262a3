/**
 * The lab: every server of an estate on loopback, with real HTTPS between them. The 2013+ servers are
 * coexist itself; 2007/2010 servers are named simulators that run the same pipeline and engine for their
 * own hop (a legacy CAS passes to its mailbox server, answers 451 or proxies CAS-to-CAS as Exchange did),
 * and every mailbox server answers from the lab's mailbox store simulator. Host names reach loopback
 * through the lab's own DNS (a port per server listener); clients outside the lab use `curl --connect-to`.
 *
 * Addresses: listeners on 127.0.0.1; servers call each other from 127.0.0.2; internal clients come from
 * 127.0.0.3; anything else is external. No address is trusted: a server believes another's forwarding
 * headers only when it presents its client certificate from the lab CA (clientAuth, its FQDN), which the lab
 * issues each server (docs/security.md "How servers authenticate each other"); anyone else, 127.0.0.2
 * included, is a client. 127.0.0.2 is only exempt from the per-source connection cap (servers carry many
 * clients' connections).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Server } from '../core/estate/estate.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import type {
  CertificateEntry,
  HealthSettings,
  HealthTimers,
  LockoutOptions,
  NodeListener,
  ServerNode,
  StoreEndpoint,
} from '../dataplane/index.ts';
import { startServerNode } from '../dataplane/index.ts';
import type { EdgeLimits } from '../dataplane/index.ts';
import type { Logger } from '../observability/log.ts';
import { Metrics } from '../observability/metrics.ts';
import { HopRecorder } from './hop-recorder.ts';
import type { LabCa } from './lab-ca.ts';
import { createLabCa } from './lab-ca.ts';
import { MailboxStore } from './simulators/mailbox-store.ts';
import type { SogoMessage, SogoStack } from './sogo/index.ts';
import { startSogoStack } from './sogo/index.ts';
import type { Slapd } from './slapd.ts';
import { randomLabPassword, startSlapd } from './slapd.ts';
import { labAuthentication, offersWindowsAuth, startLabAd } from './samba/lab-ad.ts';
import type { NtlmVerifier } from './samba/ntlm-verifier.ts';
import type { LabAd } from './samba/lab-ad.ts';
import type { AlternateServiceAccount } from './samba/kerberos.ts';
import type { SambaAd } from './samba/samba.ts';
import { LdapDirectory } from '../directory/ldap-directory.ts';
import { estateLdapLayout, estateLdif } from '../directory/estate-ldif.ts';
import { verifyPassword } from '../directory/password-hash.ts';

/** Where the lab's clients and servers sit on loopback. */
export const labAddresses = {
  listen: '127.0.0.1',
  servers: '127.0.0.2',
  internalClient: '127.0.0.3',
  externalClient: '127.0.0.1',
} as const;

export interface LabOptions {
  readonly index: EstateIndex;
  readonly logger: Logger;
  /** First port; each listener takes the next one. 0 (the default): ephemeral ports. */
  readonly portBase?: number;
  /** Where to write the CA certificate; default a new temporary directory. */
  readonly caDir?: string;
  /** Longest an ActiveSync Ping is held by the mailbox simulators (tests use a short one). */
  readonly maxPingHoldMs?: number;
  /** How many requests the hop recorder keeps, the last ones (10 000 by default; the soak reads none). */
  readonly recordedRequests?: number;
  readonly retryAfterSeconds?: number;
  readonly idleTimeoutsMs?: Readonly<Partial<Record<Protocol, number>>>;
  /** Every server's edge limits, as the estate file's `limits` section gives them (tests use short ones). */
  readonly limits?: Partial<EdgeLimits>;
  /** Every server's extranet smart lockout (docs/security.md): the estate file's settings, a test's clock. */
  readonly lockout?: LockoutOptions;
  /**
   * Every server's health probes (docs/operations.md "Health pages"): the estate file's settings, a test's
   * timers. Absent: the pages answer from the state at start (everything up) and no server probes, so a test
   * reading every access line sees only its own requests; `coexist lab` always passes one.
   */
  readonly health?: HealthSettings & { readonly timers?: HealthTimers };
  /**
   * Where users live: the estate file's embedded directory (default), or a throwaway OpenLDAP slapd on
   * loopback loaded with the estate (AD-style entries, StartTLS with the lab CA) that every server asks, or
   * a throwaway Samba Active Directory domain controller loaded with it as Exchange would have (`ad`,
   * docs/lab.md §5; LDAPS).
   */
  readonly directory?: 'file' | 'ldap' | 'ad';
  /** The users' clear password for the LDAP directory (the estate file holds only hashes); the demo one by default. */
  readonly ldapUserPassword?: string;
  /**
   * Who answers ActiveSync for the 2007 mailbox servers: the lab's mailbox simulator (default), or a real
   * ActiveSync server, a SOGo stack per 2007 mailbox server with that server's users (Debian's sogo,
   * Dovecot, PostgreSQL, memcached on loopback; src/lab/sogo/). The 2007 CAS simulators hand ActiveSync
   * on to it as to their mailbox server; every other protocol stays with the simulator.
   */
  readonly activeSync?: 'simulator' | 'sogo';
  /** SOGo stacks only: their longest Ping/Sync wait (SOGoMaximumPingInterval), seconds; 20 by default. */
  readonly sogoMaxPingSeconds?: number;
  /**
   * Layer-4 load balancers in front of every client listener (`front`), by address: they open each
   * connection with a PROXY protocol header (src/net/proxy-protocol.ts, docs/deploy.md "The load balancer").
   */
  readonly proxyProtocolFrom?: ReadonlySet<string>;
}

/** A running lab. */
export interface Lab {
  readonly index: EstateIndex;
  readonly ca: LabCa;
  readonly caPath: string;
  readonly recorder: HopRecorder;
  readonly nodes: ReadonlyMap<string, ServerNode>;
  /** Each server's metrics. */
  readonly metrics: ReadonlyMap<string, Metrics>;
  /** Where a host name and port of the estate really are (the lab's DNS). */
  resolve(hostname: string, port: number): { address: string; port: number } | undefined;
  /** What each server is (coexist or which simulator). */
  implementationOf(server: string): string;
  /** The lab's slapd when it runs on LDAP (tests stop and start it). */
  readonly slapd?: Slapd;
  /** The lab's Samba AD domain controller when it runs on Active Directory (`directory: 'ad'`). */
  readonly samba?: SambaAd;
  /**
   * On Active Directory, NTLM verified by the DC (one pool of helpers) for every server that offers Windows
   * authentication (docs/lab.md §5.5).
   */
  readonly windowsAuth?: NtlmVerifier;
  /**
   * On Active Directory, the front ends' alternate service account: its SPNs and keytab, which the 2013+ front
   * ends serving the namespaces accept Kerberos with (docs/lab.md §5.6).
   */
  readonly asa?: AlternateServiceAccount;
  /** The SOGo stack answering ActiveSync for each 2007 mailbox server, by server name (`activeSync: 'sogo'`). */
  readonly sogo: ReadonlyMap<string, SogoStack>;
  /**
   * The password the lab accepts for a user when the lab knows it: on LDAP every user's (the lab set it);
   * with the estate file's directory the demo password, for a user whose hash is of it.
   */
  knownPassword(address: string): Promise<string | undefined>;
  /** How many ActiveSync Pings the mailbox simulators hold right now. */
  heldPings(): number;
  /** Answer every held Ping now (heartbeat expired), as at the end of its hold; how many were answered. */
  releasePings(): number;
  /** Stop one server (to test failures) and start it again on the same ports. */
  stopServer(name: string): Promise<void>;
  startServer(name: string): Promise<void>;
  close(): Promise<void>;
}

/** A port the lab was to listen on is taken by someone else (EADDRINUSE), with what it was for. */
export class LabPortInUseError extends Error {
  override readonly name = 'LabPortInUseError';
  constructor(
    readonly port: number,
    /** e.g. `CAS2013-NY front`. */
    readonly purpose: string,
    options?: ErrorOptions,
  ) {
    super(`port ${port} (${purpose}) is in use`, options);
  }
}

/** The port of a listen() that failed because the port is taken, if that is what `error` is. */
export function portInUse(error: unknown): number | undefined {
  const e = error as { code?: unknown; port?: unknown } | undefined;
  return e?.code === 'EADDRINUSE' && typeof e.port === 'number' ? e.port : undefined;
}

/** How many ports the lab listens on for an estate: one per server role (a CAS front, a mailbox back end). */
export function labPortCount(index: EstateIndex): number {
  return index.estate.sites.flatMap((s) => s.servers).reduce((n, s) => n + s.roles.length, 0);
}

/** The demo password of every user of the example estates (examples/o365info.yaml says so). */
export const demoPassword = 'Coexist-Lab-2026!';

/**
 * slapd on loopback with the estate as AD-style entries (estate-ldif.ts), StartTLS with a lab certificate
 * for 127.0.0.1, a random service password, and one LDAP directory on it that every server shares (each
 * server keeps its own cache in front of it).
 */
async function startLabLdap(
  index: EstateIndex,
  ca: LabCa,
  userPassword: string,
): Promise<{ slapd: Slapd; directory: LdapDirectory }> {
  const layout = estateLdapLayout(index.estate);
  const servicePassword = randomLabPassword();
  const cert = ca.issue(['127.0.0.1']);
  const slapd = await startSlapd({
    ldif: estateLdif(index.estate, { password: userPassword, servicePassword }),
    suffix: layout.suffix,
    tls: { certPem: cert.certPem, keyPem: cert.keyPem },
  });
  const options = {
    url: slapd.url,
    startTls: true,
    tls: { ca: ca.certPem },
    baseDn: layout.usersDn,
    bindDn: layout.serviceAccountDn,
    // The groups estate-ldif.ts wrote for the estate's ApplicationImpersonation role holders.
    impersonation: layout.impersonation,
    // Only a name: the password itself is handed over below, never written anywhere.
    bindPasswordEnv: 'COEXIST_LAB_LDAP_PASSWORD',
  };
  return {
    slapd,
    directory: new LdapDirectory(index, options, { bindPassword: servicePassword, ca: ca.certPem }),
  };
}

/**
 * A SOGo stack for each 2007 mailbox server that holds mailboxes, started side by side: the server's users
 * (their primary address as the login, `password`), and the same two Inbox messages the simulator would
 * show, so a client sees one lab whichever answers.
 */
async function startLabSogo(o: LabOptions, password: string): Promise<Map<string, SogoStack>> {
  const servers = o.index.estate.sites
    .flatMap((s) => s.servers)
    .filter((s) => s.version === 2007 && s.roles.includes('mailbox'));
  const plans = servers
    .map((server) => ({ server, users: o.index.estate.users.filter((u) => u.mailboxServer === server.name) }))
    .filter((p) => p.users.length > 0);
  const started = await Promise.allSettled(
    plans.map(({ server, users }) =>
      startSogoStack({
        name: server.name,
        users: users.map((u) => ({
          login: u.address,
          password,
          displayName: u.displayName,
          email: u.address,
        })),
        seed: Object.fromEntries(
          users.map((u) => [u.address, sogoSeed(u.address, u.displayName, server.name)]),
        ),
        ...(o.sogoMaxPingSeconds === undefined ? {} : { maxPingSeconds: o.sogoMaxPingSeconds }),
      }),
    ),
  );
  const stacks = new Map<string, SogoStack>();
  let failure: unknown;
  started.forEach((r, i) => {
    if (r.status === 'fulfilled') stacks.set(plans[i]?.server.name ?? '', r.value);
    else failure ??= r.reason;
  });
  if (failure !== undefined) {
    await Promise.all([...stacks.values()].map((s) => s.stop()));
    throw failure;
  }
  return stacks;
}

/** The Inbox a SOGo stack starts with for one user. */
function sogoSeed(address: string, displayName: string, server: string): SogoMessage[] {
  const domain = address.slice(address.indexOf('@') + 1);
  const from = `coexist lab <postmaster@${domain}>`;
  return [
    {
      from,
      to: `${displayName} <${address}>`,
      subject: `Welcome to ${server}, ${displayName}`,
      body: `Hello ${displayName}, this is your mailbox ${address} on ${server} (a real ActiveSync server, SOGo, standing in for Exchange 2007).`,
    },
  ];
}

/** The implementation a server runs as in the lab. */
export function labImplementation(server: Server): string {
  if (server.version >= 2013) return 'coexist';
  return `simulator: Exchange ${server.version} ${server.roles.map((r) => (r === 'cas' ? 'CAS' : 'Mailbox')).join('+')}`;
}

/** Every host name that reaches each server: its FQDN, its namespaces and the hosts of its own URLs. */
export function hostsByServer(index: EstateIndex): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const claimed = new Map<string, string>();
  const claim = (host: string, server: string, strong: boolean): void => {
    const h = host.toLowerCase();
    const owner = claimed.get(h);
    if (owner !== undefined && (owner === server || !strong)) return;
    if (owner !== undefined) out.get(owner)?.delete(h);
    claimed.set(h, server);
    let set = out.get(server);
    if (!set) out.set(server, (set = new Set()));
    set.add(h);
  };
  for (const site of index.estate.sites) {
    for (const s of site.servers) {
      claim(s.fqdn, s.name, true);
      for (const urls of Object.values(s.urls)) {
        for (const u of [urls?.internal, urls?.external]) if (u) claim(new URL(u).hostname, s.name, false);
      }
    }
  }
  // A namespace is the estate's DNS: it decides whom a shared host reaches.
  for (const ns of index.estate.namespaces) claim(ns.host, ns.server, true);
  return out;
}

/** Start every server of the estate. */
export async function startLab(options: LabOptions): Promise<Lab> {
  // On Active Directory the servers offer Windows authentication as Exchange does (lab-ad.ts, docs/lab.md §5.5).
  const o = options.directory === 'ad' ? { ...options, index: labAuthentication(options.index) } : options;
  const ca = createLabCa({ commonName: `coexist lab CA (${o.index.estate.name})` });
  const caDir = o.caDir ?? (await mkdtemp(join(tmpdir(), 'coexist-lab-')));
  const caPath = await ca.writeCaFile(caDir);
  const recorder = new HopRecorder(o.recordedRequests);
  const ldap:
    | (Partial<Pick<LabAd, 'asa' | 'kerberos' | 'kerberosFrontEnds'>> & {
        directory: LdapDirectory;
        slapd?: Slapd;
        samba?: SambaAd;
        windowsAuth?: NtlmVerifier;
      })
    | undefined =
    o.directory === 'ldap'
      ? await startLabLdap(o.index, ca, o.ldapUserPassword ?? demoPassword)
      : o.directory === 'ad'
        ? await startLabAd(o.index, o.ldapUserPassword ?? demoPassword, { logger: o.logger })
        : undefined;
  const store = new MailboxStore(o.maxPingHoldMs === undefined ? {} : { maxPingHoldMs: o.maxPingHoldMs });
  let sogo: Map<string, SogoStack>;
  try {
    sogo = o.activeSync === 'sogo' ? await startLabSogo(o, o.ldapUserPassword ?? demoPassword) : new Map();
  } catch (err) {
    await ldap?.directory.close();
    await ldap?.slapd?.close();
    await ldap?.windowsAuth?.close();
    await ldap?.kerberos?.close();
    await ldap?.samba?.close();
    throw err;
  }
  const storeEndpoints = (server: string, protocol: Protocol): StoreEndpoint | undefined => {
    const stack = protocol === 'activesync' ? sogo.get(server) : undefined;
    // SOGo closes the connection after every answer without `Connection: close` (docs/lab.md §3.4).
    return stack ? { url: stack.activeSyncUrl, keepAlive: false } : undefined;
  };
  const hosts = hostsByServer(o.index);
  const servers = o.index.estate.sites.flatMap((s) => s.servers);

  // The internal clients' address (127.0.0.3), besides the estate's networks. Not the servers' (127.0.0.2): a
  // server is known by its certificate, and whoever else sends from there is a client like any other.
  const internal = [`${labAddresses.internalClient}/32`];

  // Ports are fixed per listener at first start so a restarted server comes back where it was.
  const ports = new Map<string, number>();
  let next = o.portBase ?? 0;
  const listenerKey = (server: string, name: string): string => `${server}/${name}`;
  const nodes = new Map<string, ServerNode>();
  const metrics = new Map(servers.map((s) => [s.name, new Metrics({ server: s.name })]));

  const resolve = (hostname: string, port: number): { address: string; port: number } | undefined => {
    const h = hostname.toLowerCase();
    const server = servers.find((s) => hosts.get(s.name)?.has(h));
    if (!server) return undefined;
    // Port 444 is a 2013+ mailbox server's back-end site (docs/protocols.md §2.1 rule 3); a server without
    // the CAS role takes everything on its mailbox listener (the legacy store hop).
    const name = port === 444 || !server.roles.includes('cas') ? 'mailbox' : 'front';
    const p = ports.get(listenerKey(server.name, name));
    return p === undefined ? undefined : { address: labAddresses.listen, port: p };
  };

  const certificates = (server: Server): CertificateEntry[] =>
    [...(hosts.get(server.name) ?? [])].map((h) => ({ hosts: [h], ...ca.issue([h]) }));

  const start = async (server: Server): Promise<void> => {
    const listeners: NodeListener[] = [];
    const certs = certificates(server);
    for (const role of server.roles) {
      const name = role === 'cas' ? 'front' : 'mailbox';
      const key = listenerKey(server.name, name);
      let port = ports.get(key);
      if (port === undefined) port = next === 0 ? 0 : next++;
      const proxied =
        role === 'cas' && o.proxyProtocolFrom !== undefined ? { proxyProtocolFrom: o.proxyProtocolFrom } : {};
      listeners.push({ name, role, host: labAddresses.listen, port, certificates: certs, ...proxied });
    }
    const node = await startServerNode({
      index: o.index,
      server,
      listeners,
      logger: o.logger,
      upstreams: {
        ca: ca.certPem,
        localAddress: labAddresses.servers,
        resolve,
        // The server's proof on its hops: clientAuth, its FQDN, from the lab CA.
        clientCertificate: ca.issue([server.fqdn], { serverAuth: false, clientAuth: true }),
      },
      internalCa: ca.certPem,
      serverAddresses: [labAddresses.servers],
      observer: recorder,
      responder: store,
      ...(ldap ? { directory: ldap.directory } : {}),
      ...(ldap?.windowsAuth && offersWindowsAuth(server) ? { windowsAuth: ldap.windowsAuth } : {}),
      // The ASA's keytab: the front ends serving the namespaces accept Kerberos (docs/lab.md §5.6).
      ...(ldap?.kerberos && ldap.kerberosFrontEnds?.has(server.name) ? { kerberos: ldap.kerberos } : {}),
      ...(metrics.get(server.name) ? { metrics: metrics.get(server.name) as Metrics } : {}),
      internalNetworks: internal,
      implementation: labImplementation(server),
      ...(o.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: o.retryAfterSeconds }),
      ...(o.idleTimeoutsMs === undefined ? {} : { idleTimeoutsMs: o.idleTimeoutsMs }),
      ...(sogo.size > 0 ? { storeEndpoints } : {}),
      ...(o.limits === undefined ? {} : { limits: o.limits }),
      ...(o.lockout === undefined ? {} : { lockout: o.lockout }),
      health: o.health ?? { probe: false },
    }).catch((error: unknown) => {
      const port = portInUse(error);
      const listener = listeners.find((l) => l.port === port);
      throw port !== undefined && listener
        ? new LabPortInUseError(port, `${server.name} ${listener.name}`, { cause: error })
        : error;
    });
    for (const l of node.listeners) ports.set(listenerKey(server.name, l.name), l.port);
    nodes.set(server.name, node);
  };

  try {
    for (const s of servers) await start(s);
  } catch (err) {
    store.close();
    await Promise.all([...nodes.values()].map((n) => n.close(0)));
    await Promise.all([...sogo.values()].map((s) => s.stop()));
    await ldap?.directory.close();
    await ldap?.slapd?.close();
    await ldap?.windowsAuth?.close();
    await ldap?.kerberos?.close();
    await ldap?.samba?.close();
    if (o.caDir === undefined) await rm(caDir, { recursive: true, force: true });
    throw err;
  }

  const known = new Map<string, Promise<string | undefined>>();
  const knownPassword = (address: string): Promise<string | undefined> => {
    const mailbox = o.index.mailbox(address);
    if (!mailbox) return Promise.resolve(undefined);
    if (ldap) return Promise.resolve(o.ldapUserPassword ?? demoPassword);
    let p = known.get(mailbox.address);
    if (!p) {
      const hash = mailbox.user.passwordHash;
      p = hash
        ? verifyPassword(demoPassword, hash).then((ok) => (ok ? demoPassword : undefined))
        : Promise.resolve(undefined);
      known.set(mailbox.address, p);
    }
    return p;
  };

  const byName = (name: string): Server => {
    const s = o.index.server(name);
    if (!s) throw new Error(`no server ${name} in the estate`);
    return s;
  };

  return {
    index: o.index,
    ca,
    caPath,
    recorder,
    nodes,
    metrics,
    ...(ldap?.slapd ? { slapd: ldap.slapd } : {}),
    ...(ldap?.samba ? { samba: ldap.samba } : {}),
    ...(ldap?.windowsAuth ? { windowsAuth: ldap.windowsAuth } : {}),
    ...(ldap?.asa ? { asa: ldap.asa } : {}),
    sogo,
    resolve,
    implementationOf: (name) => labImplementation(byName(name)),
    knownPassword,
    heldPings: () => store.pendingPings,
    releasePings: () => store.releasePings(),
    async stopServer(name) {
      const node = nodes.get(byName(name).name);
      nodes.delete(byName(name).name);
      await node?.close(0);
    },
    async startServer(name) {
      const s = byName(name);
      if (!nodes.has(s.name)) await start(s);
    },
    async close() {
      store.close();
      await Promise.all([...nodes.values()].map((n) => n.close(1_000)));
      nodes.clear();
      await Promise.all([...sogo.values()].map((s) => s.stop()));
      await ldap?.directory.close();
      await ldap?.slapd?.close();
      await ldap?.windowsAuth?.close();
      await ldap?.kerberos?.close();
      await ldap?.samba?.close();
      // The CA directory is the lab's own unless the caller named one.
      if (o.caDir === undefined) await rm(caDir, { recursive: true, force: true });
    },
  };
}
