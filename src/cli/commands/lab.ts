/** `coexist lab`: run every server of an estate on loopback and print how to try each flow by hand. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { loadEstateIndex } from '../../config/index.ts';
import type { EstateIndex } from '../../core/estate/estate-index.ts';
import type { Lab } from '../../lab/index.ts';
import { demoPassword, hostsByServer, labAddresses, startLab } from '../../lab/index.ts';
import { createLogger } from '../../observability/log.ts';
import { startAdminServer } from '../../observability/metrics.ts';
import type { Io } from '../main.ts';
import { defaultEstatePath } from './trace.ts';
import { untilSignal } from './until-signal.ts';

interface LabCliOptions {
  estate: string;
  portBase: string;
  caDir?: string;
  logLevel: string;
  admin: string;
  directory: 'file' | 'ldap';
  activesync: 'simulator' | 'sogo';
}

export function registerLab(program: Command, io: Io): void {
  program
    .command('lab')
    .description(
      'Run every server of the estate on loopback: the 2013+ servers as coexist, 2007/2010 servers as named simulators, with a lab CA.',
    )
    .option('--estate <file>', 'estate file (YAML)', defaultEstatePath)
    .option('--port-base <port>', 'first loopback port; each listener takes the next (0: ephemeral)', '8443')
    .option('--ca-dir <dir>', 'where to write the lab CA certificate (default: a new temporary directory)')
    .option('--log-level <level>', 'access log level (info shows one line per request)', 'info')
    .addOption(
      new Option(
        '--directory <kind>',
        'where users live: the estate file, or a throwaway OpenLDAP slapd loaded with it',
      )
        .choices(['file', 'ldap'])
        .default('file'),
    )
    .addOption(
      new Option(
        '--activesync <server>',
        "who answers ActiveSync for the 2007 mailbox servers: the lab's simulator, or a real ActiveSync server (SOGo with Dovecot and PostgreSQL, one per 2007 mailbox server; Debian packages sogo sogo-activesync dovecot-imapd memcached postgresql)",
      )
        .choices(['simulator', 'sogo'])
        .default('simulator'),
    )
    .option(
      '--admin <port>',
      "port of the front end's metrics and health listener on 127.0.0.1 (0: ephemeral)",
      '9464',
    )
    .action(async (o: LabCliOptions) => {
      const index = await loadEstateIndex(o.estate);
      const portBase = Number(o.portBase);
      if (!Number.isInteger(portBase) || portBase < 0 || portBase > 65000) {
        throw new Error(`--port-base must be a port number, not ${o.portBase}`);
      }
      // The access log goes to stderr so the instructions on stdout stay readable.
      const logger = createLogger({ level: o.logLevel, destination: process.stderr });
      const lab = await startLab({
        index,
        logger,
        portBase,
        directory: o.directory,
        activeSync: o.activesync,
        ...(o.caDir ? { caDir: o.caDir } : {}),
      });
      const front = index.namespaceOfKind('primary')?.server ?? [...lab.nodes.keys()][0] ?? '';
      const frontMetrics = lab.metrics.get(front);
      const admin = frontMetrics
        ? await startAdminServer({ metrics: frontMetrics, port: Number(o.admin), ready: () => true })
        : undefined;
      io.out(labInstructions(lab, index));
      if (admin) io.out(`Metrics of ${front}: http://127.0.0.1:${admin.port}/metrics\n`);
      await untilSignal();
      io.out('coexist lab: stopping\n');
      await admin?.close();
      await lab.close();
    });
}

/** What `coexist lab` prints: the servers, the CA, the credentials and curl lines for the flows. */
export function labInstructions(lab: Lab, index: EstateIndex): string {
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
  const user = (u: string): string =>
    `-u '${u}@${index.estate.domains[0] ?? 'o365info.com'}:${demoPassword}'`;
  const primary = index.namespaceOfKind('primary')?.host ?? 'mail.o365info.com';
  lines.push(
    '',
    `CA certificate: ${lab.caPath}`,
    `Users: alice (2013), bob, carol, diego (2007) @${index.estate.domains[0] ?? ''}; password ${demoPassword}`,
    '',
    'Try it (X-Coexist-Path in each answer lists the servers it came back through):',
    `  LAB="--cacert ${lab.caPath} ${connectTo.join(' ')}"`,
    `  curl $LAB -i ${user('bob')} -X OPTIONS https://${primary}/Microsoft-Server-ActiveSync            # EAS-1`,
    `  curl $LAB -i ${user('carol')} -X OPTIONS https://${primary}/Microsoft-Server-ActiveSync          # EAS-2`,
    `  curl $LAB -i ${user('diego')} -X OPTIONS https://${primary}/Microsoft-Server-ActiveSync          # EAS-3A`,
    `  curl $LAB -i ${user('bob')} -H 'Content-Type: text/xml' -d '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Body><GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder></soap:Body></soap:Envelope>' https://${primary}/EWS/Exchange.asmx   # EWS-2`,
    `  curl $LAB -i ${user('alice')} -X OPTIONS https://${primary}/Microsoft-Server-ActiveSync          # alice: 2013, MBX2013-NY`,
    `  curl $LAB -i --interface ${labAddresses.internalClient} ${user('bob')} -H 'Content-Type: text/xml' -d '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>bob@o365info.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>' https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml   # EWS-1 (internal client)`,
    '',
    "Or with coexist's own clients (each step with the servers it went through):",
    `  CX="--ca ${lab.caPath} ${connectTo.join(' ')}"`,
    `  npx coexist check --user bob@${index.estate.domains[0] ?? 'o365info.com'} --password '${demoPassword}' --protocol all $CX`,
    `  npx coexist activesync --user carol@${index.estate.domains[0] ?? 'o365info.com'} --password '${demoPassword}' --url https://${primary}/Microsoft-Server-ActiveSync $CX   # EAS-2`,
    '',
    ...(lab.slapd
      ? [`Directory: OpenLDAP slapd at ${lab.slapd.url} (StartTLS, the lab CA), loaded with the estate.`]
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
