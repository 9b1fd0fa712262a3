/**
 * `coexist serve`: run one server of the estate (the front end, `--as CAS2013-NY`) on real sockets, in this
 * process or in `--workers` processes (serve-cluster.ts, serve-worker.ts; docs/operations.md "Workers").
 */
import cluster from 'node:cluster';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { rootCertificates } from 'node:tls';
import type { Command } from 'commander';
import { loadEstate } from '../../config/index.ts';
import { openLdapDirectory } from '../../directory/ldap-directory.ts';
import type { NodeListener } from '../../dataplane/index.ts';
import { nodeStatus, startServerNode } from '../../dataplane/index.ts';
import { KerberosAcceptor, KerberosAcceptorError } from '../../dataplane/kerberos-acceptor.ts';
import type { Logger } from '../../observability/log.ts';
import { createLogger } from '../../observability/log.ts';
import { Metrics, startAdminServer } from '../../observability/metrics.ts';
import type { Io } from '../common.ts';
import { collect, usage } from '../common.ts';
import { Lifecycle } from '../reload.ts';
import type { EdgeLimits } from '../../dataplane/edge-limits.ts';
import { runPrimary } from '../serve-cluster.ts';
import type { CheckedServe } from '../serve-cluster.ts';
import type { WorkerSetup } from '../serve-worker.ts';
import { joinPrimary, shareLimits, workerLogger } from '../serve-worker.ts';
import { lifecycleMetrics } from '../../observability/lifecycle-metrics.ts';
import { loadInternalPki } from '../internal-pki.ts';
import { sessionOptions } from '../session-options.ts';
import type { CertificateInUse } from '../../observability/certificates.ts';
import {
  CertificatesInUse,
  internalPkiInUse,
  loadCaBundle,
  loadListenerCertificates,
} from '../certificates.ts';

interface ServeOptions {
  estate?: string;
  as: string;
  listen: string;
  backendListen?: string;
  cert: string[];
  allowHttp?: boolean;
  admin: string;
  internalNetwork: string[];
  trustedProxy: string[];
  internalCa?: string;
  clientCert?: string;
  ca?: string;
  certPasswordFile?: string;
  serverAddress: string[];
  proxyProtocolFrom: string[];
  logLevel: string;
  drainGrace: string;
  drainTimeout: string;
  sessionKeyFile?: string;
  redis?: string;
  redisPasswordFile?: string;
  keytab?: string;
  workers: string;
}

export function registerServe(program: Command, io: Io): void {
  program
    .command('serve')
    .description('Run one server of the estate: authenticate, look up, decide and proxy, redirect or answer.')
    .option('--estate <file>', 'the estate file (YAML) this server is part of (required; docs/config.md)')
    .requiredOption('--as <server>', 'which server of the estate this process is, e.g. CAS2013-NY')
    .option('--listen <host:port>', 'client access listener', '127.0.0.1:443')
    .option(
      '--backend-listen <host:port>',
      'back-end (mailbox role, port 444) listener, for a 2013+ mailbox server',
    )
    .option(
      '--cert <hosts=file[,file]>',
      'a certificate and the host names it is served for (chosen by SNI): hosts=cert.pem,key.pem (PEM, the ' +
        'chain after the certificate) or hosts=site.pfx,password.txt (PKCS#12 as Exchange exports it, its ' +
        'password in a file); repeatable',
      collect,
      [],
    )
    .option('--allow-http', 'listen without TLS (only for a TLS-terminating load balancer in front)')
    .option(
      '--admin <host:port>',
      'metrics and health listener (loopback unless you mean otherwise)',
      '127.0.0.1:9464',
    )
    .option('--internal-network <cidr>', 'source network of internal clients; repeatable', collect, [])
    .option(
      '--internal-ca <ca.pem>',
      "the estate's internal CA (e.g. AD CS): a peer is a server of the estate only with a client certificate " +
        "it issued, with clientAuth and a server's FQDN; also trusted for the next hops' certificates",
    )
    .option(
      '--client-cert <cert.pem,key.pem>',
      "this server's client certificate from the internal CA (clientAuth, its FQDN as a DNS SAN), presented " +
        'on every hop so the next server believes its X-Forwarded-For and X-Coexist-Hops',
    )
    .option(
      '--cert-password-file <file>',
      'the password of every --cert PFX given without a password file of its own (one line)',
    )
    .option(
      '--ca <bundle.pem>',
      "CA certificates (PEM) the next hops' certificates may chain to, besides Node's bundle: a private CA, a " +
        "2007 CAS's self-signed certificate",
    )
    .option(
      '--trusted-proxy <address>',
      'a load balancer in front whose X-Forwarded-* headers are believed, by address (anything that can send ' +
        'from it is believed: list only a balancer on a network clients cannot reach); repeatable',
      collect,
      [],
    )
    .option(
      '--server-address <address>',
      'an address other servers of the estate connect from: exempt from the per-source connection cap, ' +
        'trusted for nothing else; repeatable',
      collect,
      [],
    )
    .option(
      '--proxy-protocol-from <address>',
      'a layer-4 load balancer that opens every connection with a PROXY protocol header (v1 or v2): the client ' +
        'it names stands for the connection (limits, lockout, internal network, logs); a connection from it ' +
        'without one is refused; repeatable (docs/deploy.md)',
      collect,
      [],
    )
    .option('--log-level <level>', 'log level', 'info')
    .option(
      '--drain-grace <seconds>',
      'draining (SIGTERM, POST /drain): how long the listeners keep accepting once the health pages say 503, ' +
        'so a load balancer that has not checked yet is not refused: its check interval times its fall count',
      '10',
    )
    .option(
      '--drain-timeout <seconds>',
      'draining: the longest requests in flight are waited for, from the start of the drain; then they are cut',
      '30',
    )
    .option('--session-key-file <file>', 'OWA session keys shared by the front ends (docs/operations.md)')
    .option('--redis <url>', 'shared store of several front ends: redis:// or rediss:// (docs/operations.md)')
    .option('--redis-password-file <file>', "the shared store's password, on one line")
    .option(
      '--keytab <file>',
      "the front ends' alternate service account's keytab: Negotiate with Kerberos is accepted here where the " +
        'next hop is coexist (docs/operations.md "Kerberos")',
    )
    .option(
      '--workers <n>',
      'worker processes, each a full front end on the same ports, connections spread by the kernel; 1 runs ' +
        'in this process alone (docs/operations.md "Workers")',
      String(availableParallelism()),
    )
    .action(async (o: ServeOptions) => {
      const workers = workerCount(o.workers);
      // Every file read and checked before anything starts, in the primary as in each worker.
      const checked = await checkServe(o);
      if (workers > 1 && cluster.isPrimary) {
        await runPrimary({ o, io, checked, workers, hostPort, pkiInUse: internalPkiInUse(checked.pki, o) });
        return;
      }
      const worker = workers > 1 ? await joinPrimary(workers) : undefined;
      await runServer(o, io, checked, worker);
    });
}

/** The Kerberos acceptor of `--keytab` (no helper runs until the first ticket); a usage error naming what is wrong. */
function kerberosAcceptor(keytab: string, logger?: Logger): KerberosAcceptor {
  try {
    return new KerberosAcceptor({ keytab, ...(logger ? { logger } : {}) });
  } catch (error) {
    if (error instanceof KerberosAcceptorError) throw usage(`--keytab ${keytab}: ${error.message}`);
    throw error;
  }
}

async function checkServe(o: ServeOptions): Promise<CheckedServe> {
  if (o.estate === undefined)
    throw usage(
      'give --estate FILE: the estate file (YAML) this server is part of, e.g. --estate examples/o365info.yaml (docs/config.md)',
    );
  const estateFile = o.estate;
  let lastLoaded: readonly CertificateInUse[] = [];
  const load = async () => {
    const loaded = await loadEstate(estateFile);
    const listenerCertificates = await loadListenerCertificates(o.cert, o.certPasswordFile);
    lastLoaded = listenerCertificates.inUse;
    return { ...loaded, certificates: listenerCertificates.entries, inUse: listenerCertificates.inUse };
  };
  const drainGraceMs = seconds('--drain-grace', o.drainGrace);
  const drainTimeoutMs = seconds('--drain-timeout', o.drainTimeout);
  const first = await load();
  const server = first.index.server(o.as);
  if (!server) throw usage(`--as ${o.as}: no such server in ${o.estate}`);
  if (first.certificates.length === 0 && !o.allowHttp) {
    throw usage('give --cert for TLS, or --allow-http to listen without it');
  }
  const tls = first.certificates.length > 0 ? { certificates: first.certificates } : {};
  const listeners: NodeListener[] = [];
  for (const a of o.proxyProtocolFrom) checkAddress(a);
  const proxied = o.proxyProtocolFrom.length > 0 ? { proxyProtocolFrom: new Set(o.proxyProtocolFrom) } : {};
  if (server.roles.includes('cas'))
    listeners.push({ name: 'front', role: 'cas', ...hostPort(o.listen), ...tls, ...proxied });
  if (server.roles.includes('mailbox')) {
    const at = o.backendListen ?? (server.roles.includes('cas') ? undefined : o.listen);
    if (at) listeners.push({ name: 'mailbox', role: 'mailbox', ...hostPort(at), ...tls });
  }
  hostPort(o.admin);
  for (const cidr of o.internalNetwork) checkCidr(cidr);
  for (const a of [...o.trustedProxy, ...o.serverAddress]) checkAddress(a);
  // How servers authenticate each other (docs/security.md): checked now, each bad file named.
  const pki = await loadInternalPki({ caFile: o.internalCa, clientCert: o.clientCert }, server);
  // --cert (in load) and --ca: read and checked, each bad file named (docs/operations.md "Certificates").
  const caBundle = o.ca === undefined ? undefined : await loadCaBundle(o.ca);
  // Several front ends: the OWA session keys and the shared store (docs/operations.md).
  const session = sessionOptions(o);
  // Kerberos at the edge (docs/operations.md "Kerberos"): the acceptor and the keytab checked now.
  if (o.keytab !== undefined) kerberosAcceptor(o.keytab);
  return {
    estateFile,
    load,
    lastLoaded: () => lastLoaded,
    first,
    server,
    listeners,
    drainGraceMs,
    drainTimeoutMs,
    pki,
    caBundle,
    session,
  };
}

/** One front end in this process: alone (`--workers 1`), or as one worker of a primary (`worker`). */
async function runServer(
  o: ServeOptions,
  io: Io,
  checked: CheckedServe,
  worker: WorkerSetup | undefined,
): Promise<void> {
  const { server, pki, caBundle, load, estateFile } = checked;
  const { index, settings, inUse } = checked.first;
  const logger = worker ? workerLogger(o.logLevel, worker) : createLogger({ level: o.logLevel });
  const metrics = new Metrics({ server: server.name, defaultMetrics: true });
  const upstreamCa = [...(pki?.ca ?? []), ...(caBundle?.pems ?? [])];
  // Their expiry in the metrics, the log and /status, kept current by reloads (docs/operations.md "Certificates").
  const inUseNow = new CertificatesInUse(metrics, logger, [
    ...internalPkiInUse(pki, o),
    ...(caBundle?.inUse ?? []),
  ]);
  inUseNow.use(inUse);
  // A worker's share of the edge's caps (docs/security.md "Limits and timeouts at the edge").
  const limitsOf = (l: Partial<EdgeLimits> | undefined) => (worker ? shareLimits(l, worker.workers) : l);
  const limits = limitsOf(settings.limits);
  // The estate file's directory.ldap section, when there is one; else its embedded users.
  const ldapOptions = settings.directory?.ldap;
  const ldap = ldapOptions ? await openLdapDirectory(index, ldapOptions) : undefined;
  const node = await startServerNode({
    index,
    server,
    listeners: worker ? worker.listeners(checked.listeners) : checked.listeners,
    logger,
    metrics,
    ...(ldap ? { directory: ldap } : {}),
    internalNetworks: o.internalNetwork,
    ...(o.trustedProxy.length > 0 ? { trustedProxies: new Set(o.trustedProxy) } : {}),
    ...(o.serverAddress.length > 0 ? { serverAddresses: o.serverAddress } : {}),
    ...(pki === undefined ? {} : { internalCa: pki.ca }),
    ...(upstreamCa.length === 0
      ? {}
      : {
          // Next hops' server certificates: Node's bundle, the internal CA (an internal URL's certificate
          // is usually the internal CA's) and --ca.
          upstreams: {
            ca: [...rootCertificates, ...upstreamCa],
            ...(pki?.clientCertificate ? { clientCertificate: pki.clientCertificate } : {}),
          },
        }),
    // Several front ends (and workers): the OWA session keys and the shared store (docs/operations.md).
    ...checked.session,
    ...(worker?.sessionKeys ? { sessionKeys: worker.sessionKeys } : {}),
    ...(worker ? await worker.sharedStore(logger, metrics) : {}),
    // The estate file's lockout section; on with its defaults when absent (docs/security.md).
    ...(settings.lockout ? { lockout: settings.lockout } : {}),
    // The estate file's limits section; the defaults for what it leaves out (docs/security.md).
    ...(limits ? { limits } : {}),
    // The estate file's health section: the probes behind healthcheck.htm and /readyz (docs/operations.md).
    ...(settings.health ? { health: settings.health } : {}),
    // Kerberos at the edge with the ASA's keytab (docs/operations.md "Kerberos").
    ...(o.keytab === undefined ? {} : { kerberos: kerberosAcceptor(o.keytab, logger) }),
  });
  // SIGHUP and POST /reload, SIGTERM and POST /drain (docs/operations.md "Reload", "Drain").
  const life = new Lifecycle({
    node,
    load: worker
      ? async () => {
          const l = await load();
          return { ...l, settings: { ...l.settings, limits: limitsOf(l.settings.limits) } };
        }
      : load,
    openDirectory: async (i, s) => (s.directory?.ldap ? openLdapDirectory(i, s.directory.ldap) : undefined),
    directory: ldap,
    logger,
    observer: inUseNow.following(lifecycleMetrics(metrics), checked.lastLoaded),
    drainGraceMs: checked.drainGraceMs,
    drainTimeoutMs: checked.drainTimeoutMs,
    estateFile,
    // A worker's reloads come from its primary, which checks the estate once (serve-cluster.ts).
    ...(worker ? { hangup: false } : {}),
  });
  if (worker) {
    // No admin listener of its own: the primary's asks it over IPC (serve-worker.ts).
    worker.serve({ node, life, metrics });
    worker.done(await life.run());
    return;
  }
  const admin = await startAdminServer({
    actions: life.actions,
    metrics,
    ...hostPort(o.admin),
    readiness: () => node.health.readiness(),
    // Every next hop's state, for `coexist status` (docs/operations.md "Next hops").
    status: () => ({ ...nodeStatus(node), certificates: inUseNow.status() }),
  });
  for (const l of node.listeners)
    io.out(`coexist serve: ${server.name} ${l.name} listening on ${l.scheme} port ${l.port}\n`);
  io.out(`coexist serve: metrics on http://${hostPort(o.admin).host}:${admin.port}/metrics\n`);
  await life.run();
  await admin.close();
}

/** `--workers`: a whole number from 1. */
function workerCount(value: string): number {
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1)
    throw usage(`--workers ${value}: expected a number of processes, 1 or more`);
  return Number(value);
}

/** A number of seconds from an option, in milliseconds. */
function seconds(option: string, value: string): number {
  if (!/^\d{1,6}(\.\d+)?$/.test(value)) throw usage(`${option} ${value}: expected a number of seconds`);
  return Math.round(Number(value) * 1000);
}

function hostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw usage(`${s}: expected host:port`);
  return { host: m[1] ?? m[2] ?? '', port };
}

function checkAddress(address: string): void {
  if (isIP(address) === 0)
    throw usage(
      `${address}: expected an IP address (--trusted-proxy, --server-address, --proxy-protocol-from)`,
    );
}

function checkCidr(cidr: string): void {
  const [address = '', bits = ''] = cidr.split('/');
  const family = isIP(address);
  const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
  if (family === 0 || prefix < 0 || prefix > (family === 4 ? 32 : 128))
    throw usage(`--internal-network ${cidr}: expected address/prefix, e.g. 10.0.0.0/8`);
}
