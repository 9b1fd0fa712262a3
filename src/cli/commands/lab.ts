/** `coexist lab`: run every server of an estate on loopback and print how to try each flow by hand. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CommanderError, Option } from 'commander';
import { loadEstate } from '../../config/index.ts';
import type { Lab } from '../../lab/index.ts';
import { labBanner, labPortCount, LabPortInUseError, portInUse, startLab } from '../../lab/index.ts';
import { createLogger } from '../../observability/log.ts';
import type { AdminServer } from '../../observability/metrics.ts';
import { startAdminServer } from '../../observability/metrics.ts';
import { nodeStatus } from '../../dataplane/index.ts';
import type { Io } from '../common.ts';
import { defaultEstatePath, untilSignal } from '../common.ts';

interface LabCliOptions {
  estate: string;
  portBase: string;
  caDir?: string;
  logLevel: string;
  admin?: string;
  directory: 'file' | 'ldap' | 'ad';
  activesync: 'simulator' | 'sogo';
}

export function registerLab(program: Command, io: Io): void {
  program
    .command('lab')
    .description(
      'Run every server of the estate on loopback: the 2013+ servers as coexist, 2007/2010 servers as named simulators, with a lab CA.',
    )
    .option('--estate <file>', 'estate file (YAML)', defaultEstatePath)
    .option(
      '--port-base <port>',
      'first loopback port; each listener takes the next, then the admin listener (0: ephemeral)',
      '8443',
    )
    .option('--ca-dir <dir>', 'where to write the lab CA certificate (default: a new temporary directory)')
    .option('--log-level <level>', 'access log level (info shows one line per request)', 'info')
    .addOption(
      new Option(
        '--directory <kind>',
        'where users live: the estate file, a throwaway OpenLDAP slapd loaded with it, or a throwaway Samba Active Directory domain controller (Debian samba; docs/lab.md §5)',
      )
        .choices(['file', 'ldap', 'ad'])
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
      "port of the front end's metrics and health listener on 127.0.0.1 (default: the one after the servers' listeners; 0: ephemeral)",
    )
    .action(async (o: LabCliOptions) => {
      const { index, settings } = await loadEstate(o.estate);
      const portBase = Number(o.portBase);
      if (!Number.isInteger(portBase) || portBase < 0 || portBase > 65000) {
        throw new Error(`--port-base must be a port number, not ${o.portBase}`);
      }
      // Every port the lab opens moves with --port-base: the servers' listeners from it on, then the admin
      // listener, unless --admin names its own. The throwaway daemons (slapd, SOGo) take ports the OS gives.
      const ports = labPortCount(index);
      if (portBase > 0 && portBase + ports > 65535) {
        throw new Error(`--port-base ${portBase} leaves too few ports for the lab's ${ports + 1} listeners`);
      }
      const adminPort = o.admin === undefined ? (portBase === 0 ? 0 : portBase + ports) : Number(o.admin);
      // A port someone else holds ends the command at once, with what was started stopped again.
      const inUse = (port: number, purpose: string): CommanderError => {
        const option = purpose === 'admin' && o.admin !== undefined ? '--admin' : '--port-base';
        const message = `coexist lab: port ${port} (${purpose}) is in use; choose other ports with ${option}`;
        io.err(`${message}\n`);
        return new CommanderError(1, 'coexist.lab.port-in-use', message);
      };
      // The access log goes to stderr so the instructions on stdout stay readable.
      const logger = createLogger({ level: o.logLevel, destination: process.stderr });
      let lab: Lab;
      try {
        lab = await startLab({
          index,
          logger,
          portBase,
          directory: o.directory,
          activeSync: o.activesync,
          ...(o.caDir ? { caDir: o.caDir } : {}),
          ...(settings.lockout ? { lockout: settings.lockout } : {}),
          ...(settings.limits ? { limits: settings.limits } : {}),
          // The health probes always run here (the estate file's settings, else the defaults).
          health: settings.health ?? {},
        });
      } catch (e) {
        if (e instanceof LabPortInUseError) throw inUse(e.port, e.purpose);
        throw e;
      }
      const front = index.namespaceOfKind('primary')?.server ?? [...lab.nodes.keys()][0] ?? '';
      const frontMetrics = lab.metrics.get(front);
      let admin: AdminServer | undefined;
      try {
        admin = frontMetrics
          ? await startAdminServer({
              metrics: frontMetrics,
              port: adminPort,
              // The front end's node as it is now (a stopped server is not ready).
              readiness: () => lab.nodes.get(front)?.health.readiness() ?? { ready: false },
              status: () => {
                const node = lab.nodes.get(front);
                return node ? nodeStatus(node) : { server: front, ready: false, hops: [] };
              },
            })
          : undefined;
      } catch (e) {
        await lab.close();
        const port = portInUse(e);
        throw port === undefined ? e : inUse(port, 'admin');
      }
      // The printed `coexist check` line names the estate unless it is the default one.
      const estateFile = o.estate === defaultEstatePath ? undefined : resolve(o.estate);
      io.out(await labBanner(lab, estateFile === undefined ? {} : { estateFile }));
      if (admin) io.out(`Metrics of ${front}: http://127.0.0.1:${admin.port}/metrics\n`);
      await untilSignal();
      io.out('coexist lab: stopping\n');
      await admin?.close();
      await lab.close();
    });
}
