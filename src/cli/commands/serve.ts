/** `coexist serve`: run one server of the estate (the front end, `--as CAS2013-NY`) on real sockets. */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { Command } from 'commander';
import { loadEstate } from '../../config/index.ts';
import { openLdapDirectory } from '../../directory/ldap-directory.ts';
import type { CertificateEntry, NodeListener } from '../../dataplane/index.ts';
import { startServerNode } from '../../dataplane/index.ts';
import { createLogger } from '../../observability/log.ts';
import { Metrics, startAdminServer } from '../../observability/metrics.ts';
import type { Io } from '../common.ts';
import { collect, defaultEstatePath, untilSignal, usage } from '../common.ts';
import { loadInternalPki } from '../internal-pki.ts';

interface ServeOptions {
  estate: string;
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
  serverAddress: string[];
  logLevel: string;
}

export function registerServe(program: Command, io: Io): void {
  program
    .command('serve')
    .description('Run one server of the estate: authenticate, look up, decide and proxy, redirect or answer.')
    .option('--estate <file>', 'estate file (YAML)', defaultEstatePath)
    .requiredOption('--as <server>', 'which server of the estate this process is, e.g. CAS2013-NY')
    .option('--listen <host:port>', 'client access listener', '127.0.0.1:443')
    .option(
      '--backend-listen <host:port>',
      'back-end (mailbox role, port 444) listener, for a 2013+ mailbox server',
    )
    .option(
      '--cert <hosts=cert.pem,key.pem>',
      'a certificate and the host names it is served for (chosen by SNI); repeatable',
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
    .option('--log-level <level>', 'log level', 'info')
    .action(async (o: ServeOptions) => {
      const { index, settings } = await loadEstate(o.estate);
      const server = index.server(o.as);
      if (!server) throw usage(`--as ${o.as}: no such server in ${o.estate}`);
      const certificates = await Promise.all(o.cert.map(readCertificate));
      if (certificates.length === 0 && !o.allowHttp) {
        throw usage('give --cert for TLS, or --allow-http to listen without it');
      }
      const tls = certificates.length > 0 ? { certificates } : {};
      const listeners: NodeListener[] = [];
      if (server.roles.includes('cas'))
        listeners.push({ name: 'front', role: 'cas', ...hostPort(o.listen), ...tls });
      if (server.roles.includes('mailbox')) {
        const at = o.backendListen ?? (server.roles.includes('cas') ? undefined : o.listen);
        if (at) listeners.push({ name: 'mailbox', role: 'mailbox', ...hostPort(at), ...tls });
      }
      const logger = createLogger({ level: o.logLevel });
      const metrics = new Metrics({ server: server.name, defaultMetrics: true });
      for (const cidr of o.internalNetwork) checkCidr(cidr);
      for (const a of [...o.trustedProxy, ...o.serverAddress]) checkAddress(a);
      // How servers authenticate each other (docs/security.md): checked now, each bad file named.
      const pki = await loadInternalPki({ caFile: o.internalCa, clientCert: o.clientCert }, server);
      // The estate file's directory.ldap section, when there is one; else its embedded users.
      const ldapOptions = settings.directory?.ldap;
      const ldap = ldapOptions ? await openLdapDirectory(index, ldapOptions) : undefined;
      const node = await startServerNode({
        index,
        server,
        listeners,
        logger,
        metrics,
        ...(ldap ? { directory: ldap } : {}),
        internalNetworks: o.internalNetwork,
        ...(o.trustedProxy.length > 0 ? { trustedProxies: new Set(o.trustedProxy) } : {}),
        ...(o.serverAddress.length > 0 ? { serverAddresses: o.serverAddress } : {}),
        ...(pki === undefined
          ? {}
          : {
              internalCa: pki.ca,
              // Next hops' server certificates: Node's bundle and the internal CA (an internal URL's
              // certificate is usually the internal CA's).
              upstreams: {
                ca: [...rootCertificates, ...pki.ca],
                ...(pki.clientCertificate ? { clientCertificate: pki.clientCertificate } : {}),
              },
            }),
        // The estate file's lockout section; on with its defaults when absent (docs/security.md).
        ...(settings.lockout ? { lockout: settings.lockout } : {}),
        // The estate file's limits section; the defaults for what it leaves out (docs/security.md).
        ...(settings.limits ? { limits: settings.limits } : {}),
        // The estate file's health section: the probes behind healthcheck.htm and /readyz (docs/operations.md).
        ...(settings.health ? { health: settings.health } : {}),
      });
      const admin = await startAdminServer({
        metrics,
        ...hostPort(o.admin),
        readiness: () => node.health.readiness(),
      });
      for (const l of node.listeners)
        io.out(`coexist serve: ${server.name} ${l.name} listening on ${l.scheme} port ${l.port}\n`);
      io.out(`coexist serve: metrics on http://${hostPort(o.admin).host}:${admin.port}/metrics\n`);
      await untilSignal();
      await node.close();
      await ldap?.close();
      await admin.close();
    });
}

function hostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw usage(`${s}: expected host:port`);
  return { host: m[1] ?? m[2] ?? '', port };
}

async function readCertificate(spec: string): Promise<CertificateEntry> {
  const m = /^([^=]+)=([^,]+),(.+)$/.exec(spec);
  if (!m) throw usage(`--cert ${spec}: expected hosts=cert.pem,key.pem`);
  const [, hosts, cert, key] = m as unknown as [string, string, string, string];
  return {
    hosts: hosts.split(',').map((h) => h.trim()),
    certPem: await readFile(cert, 'utf8'),
    keyPem: await readFile(key, 'utf8'),
  };
}

function checkAddress(address: string): void {
  if (isIP(address) === 0)
    throw usage(`${address}: expected an IP address (--trusted-proxy, --server-address)`);
}

function checkCidr(cidr: string): void {
  const [address = '', bits = ''] = cidr.split('/');
  const family = isIP(address);
  const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
  if (family === 0 || prefix < 0 || prefix > (family === 4 ? 32 : 128))
    throw usage(`--internal-network ${cidr}: expected address/prefix, e.g. 10.0.0.0/8`);
}
