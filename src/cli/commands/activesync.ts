/**
 * `coexist activesync`: be a phone. Runs an ActiveSync first session (Autodiscover unless --url, OPTIONS,
 * Provision, FolderSync, Sync of the Inbox) and optionally a Ping, and prints each HTTP exchange with the
 * servers it came back through (X-Coexist-Path). `--ca` and `--connect-to` (as curl's) reach the lab.
 * The password comes from --password or COEXIST_PASSWORD and is never printed.
 */
import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import { CommanderError, Option } from 'commander';
import type {
  ActiveSyncStep,
  FirstSession,
  PingResult,
  ProtocolVersion,
} from '../../client/activesync/index.ts';
import { ActiveSyncClient, ActiveSyncClientError, clientVersions } from '../../client/activesync/index.ts';
import { routedAgent } from '../../net/connector.ts';
import type { Io } from '../common.ts';
import { collect, connectTarget, parseConnectTo, readCa, usage } from '../common.ts';

interface ActiveSyncCliOptions {
  user?: string;
  login?: string;
  password?: string;
  url?: string;
  deviceId?: string;
  deviceType: string;
  query: 'plain' | 'base64';
  protocolVersion: ProtocolVersion;
  ca?: string;
  connectTo: string[];
  ping?: string;
  json?: boolean;
}

export function registerActiveSync(program: Command, io: Io): void {
  program
    .command('activesync')
    .description(
      'Act as a phone: an ActiveSync first session (Autodiscover, OPTIONS, Provision, FolderSync, Sync of the Inbox) and optionally a Ping, printing each exchange and the servers it went through.',
    )
    .option('--user <address>', "the user's SMTP address")
    .option('--login <name>', 'the Basic user name, when it is not the address (DOMAIN\\user, UPN)')
    .option('--password <password>', 'the password (better: the COEXIST_PASSWORD environment variable)')
    .option('--url <url>', 'the ActiveSync URL (default: ask Autodiscover)')
    .option('--device-id <id>', 'DeviceId, 1-32 letters or digits (default: one derived from --user)')
    .option('--device-type <type>', 'DeviceType', 'CoexistEAS')
    .addOption(new Option('--query <form>', 'query form').choices(['plain', 'base64']).default('plain'))
    .addOption(
      new Option('--protocol-version <version>', 'newest ActiveSync version to speak')
        .choices([...clientVersions])
        .default('14.1'),
    )
    .option('--ca <file>', 'trust only this CA certificate (PEM), e.g. the lab CA')
    .option(
      '--connect-to <HOST:PORT:ADDR:PORT>',
      'connect to ADDR:PORT for HOST:PORT, like curl (repeatable; `coexist lab` prints them)',
      collect,
      [],
    )
    .option('--ping <seconds>', 'after the session, Ping the Inbox with this heartbeat')
    .option('--json', 'print the session as JSON')
    .action(async (o: ActiveSyncCliOptions) => {
      const password = o.password ?? process.env['COEXIST_PASSWORD'];
      // Nothing this command prints may carry the password, whatever a server or library puts in a message.
      const redact = (t: string): string =>
        password && password.length >= 4 ? t.split(password).join('********') : t;
      const out = (t: string): void => io.out(redact(t));
      const err = (t: string): void => io.err(redact(t));
      if (!o.user) throw usage('--user is required');
      if (!password)
        throw usage('give the password with --password or the COEXIST_PASSWORD environment variable');
      const heartbeat = o.ping === undefined ? undefined : Number(o.ping);
      if (heartbeat !== undefined && !(Number.isInteger(heartbeat) && heartbeat > 0))
        throw usage(`--ping takes a whole number of seconds, not "${o.ping}"`);
      const rules = o.connectTo.map(parseConnectTo);
      const ca = o.ca === undefined ? undefined : await readCa(o.ca);
      const agent = routedAgent({ ca, route: (host, port) => connectTarget(rules, host, port) });
      let n = 0;
      let client: ActiveSyncClient | undefined;
      try {
        client = new ActiveSyncClient({
          email: o.user,
          ...(o.login ? { user: o.login } : {}),
          password,
          deviceId: o.deviceId ?? defaultDeviceId(o.user),
          deviceType: o.deviceType,
          protocolVersion: o.protocolVersion,
          queryForm: o.query,
          dispatcher: agent,
          ...(o.url ? { url: o.url } : {}),
          onStep: (s) => {
            if (!o.json) out(stepLine(++n, s));
          },
        });
        if (!o.json)
          out(
            `coexist activesync: ${o.user}, device ${client.deviceId} (${client.deviceType}), ${o.query} query\n`,
          );
        const session = await client.firstSession();
        const ping = heartbeat === undefined ? undefined : await client.ping([session.inbox], heartbeat);
        out(
          o.json
            ? JSON.stringify(jsonOf(session, ping, heartbeat), null, 2) + '\n'
            : summary(session, ping, heartbeat),
        );
      } catch (e) {
        if (!(e instanceof ActiveSyncClientError)) throw e;
        err(`coexist activesync: ${e.message}\n`);
        // The reason is printed; Commander's error only carries the exit code through main().
        throw new CommanderError(1, 'coexist.activesync.failed', e.message);
      } finally {
        await client?.close();
        await agent.close();
      }
    });
}

/** A stable DeviceId per user, as a phone keeps its own: `COEXIST` and 16 hex digits. */
export function defaultDeviceId(user: string): string {
  return `COEXIST${createHash('sha256').update(user.toLowerCase()).digest('hex').slice(0, 16).toUpperCase()}`;
}

/** One exchange: number, step, status, time, the servers it came back through, the URL and any redirect. */
export function stepLine(n: number, s: ActiveSyncStep): string {
  const hops = s.path.length > 0 ? s.path.join(' -> ') : '-';
  const [path, query] = s.url.split('?', 2);
  const url = query === undefined ? path : `${path}?<${s.queryForm ?? 'query'} query>`;
  const redirect = s.redirect ? `  => ${s.status === 451 ? 'X-MS-Location' : 'Location'} ${s.redirect}` : '';
  return (
    `  ${String(n).padStart(2)}  ${s.command.padEnd(12)} ${s.status} ${`${s.ms} ms`.padStart(8)}  ` +
    `hops: ${hops}  (${s.method} ${url})${redirect}\n`
  );
}

function summary(s: FirstSession, ping: PingResult | undefined, heartbeat: number | undefined): string {
  const lines = [
    '',
    `ActiveSync URL: ${s.url}`,
    `Protocol: ${s.protocolVersion} (server offers ${s.options.versions.join(', ')}${s.options.server ? `; MS-Server-ActiveSync ${s.options.server}` : ''})`,
    `Policy: ${s.provision.policyKey === undefined ? 'none (the server sent no policy key)' : `key ${s.provision.policyKey} after ${s.provision.phases} phases`}`,
    `Folders (${s.folders.length}): ${s.folders.map((f) => `${f.displayName} [${f.serverId}]`).join(', ')}`,
    `Inbox [${s.inbox.serverId}]: ${s.items.length} item${s.items.length === 1 ? '' : 's'}, sync key ${s.inboxSyncKey}`,
    ...s.items.map(
      (i) =>
        `  ${i.serverId}  ${i.dateReceived ?? ''}  ${i.from ?? ''}  ${i.subject ?? (i.change === 'add' ? '' : i.change)}`,
    ),
  ];
  if (ping)
    lines.push(
      `Ping (${heartbeat} s): Status ${ping.status}, ${ping.outcome}` +
        (ping.changedFolders.length ? `: ${ping.changedFolders.join(', ')}` : '') +
        (ping.heartbeatInterval === undefined ? '' : ` (server limit ${ping.heartbeatInterval} s)`),
    );
  return lines.join('\n') + '\n';
}

function jsonOf(s: FirstSession, ping: PingResult | undefined, heartbeat: number | undefined): unknown {
  return { ...s, ...(ping ? { ping: { heartbeat, ...ping } } : {}) };
}
