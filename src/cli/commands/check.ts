/**
 * `coexist check`: a connectivity analyzer in the manner of Microsoft's Remote Connectivity Analyzer, run
 * from inside the network. Real requests for a user (Autodiscover, ActiveSync, EWS, OWA), printed as a
 * tree of steps with their timing, the servers each answer came back through beside the ones `coexist
 * trace` computes from the estate, and what to fix when a step fails. Exit 0 when everything passed
 * (warnings allowed), 1 when a step failed or could not run, 2 for bad usage. The password comes from
 * --password or COEXIST_PASSWORD and is never printed. With `directory.ldap`, the user (and so the hops to
 * expect) is found in that directory with the estate's service account (estate-users.ts).
 */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { CheckProtocol, CheckReport, CheckStep } from '../../check/index.ts';
import {
  checkProtocols,
  firstFailure,
  passed,
  progressLine,
  renderReport,
  reportJson,
  runCheck,
} from '../../check/index.ts';
import type { LoadedEstate } from '../../config/index.ts';
import { loadEstate } from '../../config/index.ts';
import type { EstateIndex } from '../../core/estate/estate-index.ts';
import { CoexistError } from '../../core/errors.ts';
import type { Io } from '../common.ts';
import { collect, connectTarget, defaultEstatePath, parseConnectTo, readCa, usage } from '../common.ts';
import { indexWithMailboxes, openEstateUsers } from '../estate-users.ts';

interface CheckCliOptions {
  user?: string;
  login?: string;
  password?: string;
  protocol: string;
  from: 'internal' | 'external';
  estate: string;
  ca?: string;
  connectTo: string[];
  localAddress?: string;
  autodiscoverUrl?: string;
  heartbeat: string;
  certWarnDays: string;
  timeoutMs: string;
  json?: boolean;
  auth?: 'basic' | 'ntlm' | 'negotiate';
}

export function registerCheck(program: Command, io: Io): void {
  program
    .command('check')
    .description(
      "Walk a user's client flows with real requests (Autodiscover, ActiveSync, EWS, OWA) and print each step: DNS, TLS certificate, status, time, the servers it went through against the ones the estate says, and what to fix.",
    )
    .argument('[address]', 'the user (same as --user)')
    .option('--user <address>', "the user's SMTP address")
    .option('--login <name>', 'the user name to log on with, when it is not the address (DOMAIN\\user, UPN)')
    .option('--password <password>', 'the password (better: the COEXIST_PASSWORD environment variable)')
    .option(
      '--protocol <protocol>',
      `${checkProtocols.join(', ')} or all; several with commas (ews,owa)`,
      'all',
    )
    .addOption(
      new Option('--from <where>', 'where this client is: the hops expected depend on it')
        .choices(['external', 'internal'])
        .default('external'),
    )
    .option('--estate <file>', 'the estate file the expected hops are computed from', defaultEstatePath)
    .option('--ca <file>', 'trust only this CA certificate (PEM), e.g. the lab CA')
    .option(
      '--connect-to <HOST:PORT:ADDR:PORT>',
      'connect to ADDR:PORT for HOST:PORT, like curl (repeatable; `coexist lab` prints them)',
      collect,
      [],
    )
    .option('--local-address <addr>', 'connect from this address (lab internal clients: 127.0.0.3)')
    .option(
      '--autodiscover-url <url>',
      'where to POST Autodiscover (default https://autodiscover.<domain>/Autodiscover/Autodiscover.xml)',
    )
    .option('--heartbeat <seconds>', 'the HeartbeatInterval of the ActiveSync Ping', '10')
    .option('--cert-warn-days <days>', 'warn when a certificate has fewer days left', '30')
    .addOption(
      new Option(
        '--auth <method>',
        'how Autodiscover and EWS authenticate: basic, ntlm (the handshake), negotiate (NTLM under Negotiate); docs/auth.md',
      ).choices(['basic', 'ntlm', 'negotiate']),
    )
    .option('--timeout-ms <ms>', 'for each connection and each answer', '15000')
    .option('--json', 'print the whole tree as JSON')
    .action(async (address: string | undefined, o: CheckCliOptions) => {
      const password = o.password ?? process.env['COEXIST_PASSWORD'];
      // Nothing this command prints may carry the password or the Basic header made from it.
      const secrets =
        password && password.length >= 4 ? secretForms(o.login ?? o.user ?? address, password) : [];
      const redact = (t: string): string => secrets.reduce((acc, s) => acc.split(s).join('********'), t);
      const out = (t: string): void => io.out(redact(t));
      const err = (t: string): void => io.err(redact(t));

      const user = o.user ?? address;
      if (!user) throw usage('--user is required');
      if (o.user && address && o.user.toLowerCase() !== address.toLowerCase())
        throw usage(`two users given: ${address} and --user ${o.user}`);
      if (!user.includes('@')) throw usage(`--user takes an SMTP address, not "${user}"`);
      if (!password)
        throw usage('give the password with --password or the COEXIST_PASSWORD environment variable');
      const protocols = parseProtocols(o.protocol);
      const timeoutMs = positiveInt('--timeout-ms', o.timeoutMs);
      const heartbeatSeconds = positiveInt('--heartbeat', o.heartbeat);
      const certWarnDays = nonNegativeInt('--cert-warn-days', o.certWarnDays);
      if (o.localAddress !== undefined && isIP(o.localAddress) === 0)
        throw usage(`--local-address takes an IP address, not "${o.localAddress}"`);
      if (o.autodiscoverUrl !== undefined && !/^https:\/\/[^/]+/i.test(o.autodiscoverUrl))
        throw usage(`--autodiscover-url takes an https URL, not "${o.autodiscoverUrl}"`);
      const rules = o.connectTo.map(parseConnectTo);
      const ca = o.ca === undefined ? undefined : await readCa(o.ca);
      const index = await indexForUser(await loadEstate(o.estate), o.estate, user, (m) =>
        err(`coexist check: ${m}\n`),
      );

      const progress = process.stderr.isTTY === true;
      const report: CheckReport = await runCheck({
        user,
        ...(o.login ? { login: o.login } : {}),
        password,
        ...(o.auth === undefined ? {} : { auth: o.auth }),
        protocols,
        from: o.from,
        index,
        ...(rules.length > 0 ? { route: (h: string, p: number) => connectTarget(rules, h, p) } : {}),
        ...(ca === undefined ? {} : { ca }),
        ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
        ...(o.autodiscoverUrl === undefined ? {} : { autodiscoverUrl: o.autodiscoverUrl }),
        timeoutMs,
        heartbeatSeconds,
        certWarnDays,
        ...(progress ? { onStep: (g: string, s: CheckStep) => err(progressLine(g, s)) } : {}),
      });
      out(o.json ? reportJson(report) : renderReport(report));
      if (passed(report.verdict)) return;
      const failed = firstFailure(report);
      const what = failed
        ? `${failed.group.title}: ${failed.step.title}${failed.step.status === undefined ? '' : ` (HTTP ${failed.step.status})`}`
        : 'some steps could not run';
      // main() prints this one line and exits 1 (a code that is not CX_CLI_* or CX_CONFIG_*).
      throw new CoexistError(
        failed?.step.code ?? 'CX_UPSTREAM_ERROR',
        redact(`check ${report.verdict === 'fail' ? 'failed' : 'incomplete'} for ${user}: ${what}`),
      );
    });
}

/**
 * The estate's index with the user's mailbox in it, for the hops to expect: from the estate file's users, or
 * with `directory.ldap` from that directory, asked with the estate's service account (docs/config.md
 * "directory"); the user's own password is only for the probes.
 */
async function indexForUser(
  loaded: LoadedEstate,
  file: string,
  user: string,
  warn: (message: string) => void,
): Promise<EstateIndex> {
  const unknown = (where: string): CoexistError =>
    new CoexistError(
      'CX_CLI_UNKNOWN_USER',
      `unknown user "${user}": ${where} has no such user, so the hops to expect are unknown (give the estate with --estate)`,
      { user },
    );
  if (loaded.settings.directory?.ldap === undefined) {
    if (!loaded.index.user(user)) throw unknown(`the estate ${loaded.index.estate.name} (${file})`);
    return loaded.index;
  }
  const users = await openEstateUsers(loaded, file, warn);
  try {
    const mailbox = await users.find(user);
    if (mailbox === undefined)
      throw unknown(
        `the directory ${users.directoryUrl ?? ''} of the estate ${loaded.index.estate.name} (${file})`,
      );
    return indexWithMailboxes(loaded.index, [mailbox], new Map([[user.toLowerCase(), mailbox]]));
  } finally {
    await users.close();
  }
}

/** The password, and the base64 of `login:password` a Basic header carries. */
function secretForms(login: string | undefined, password: string): string[] {
  const forms = [password];
  if (login) forms.push(Buffer.from(`${login}:${password}`, 'utf8').toString('base64'));
  return forms;
}

function parseProtocols(spec: string): CheckProtocol[] {
  const names = spec
    .toLowerCase()
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0 || names.includes('all')) return [...checkProtocols];
  const aliases: Readonly<Record<string, CheckProtocol>> = { eas: 'activesync' };
  const out: CheckProtocol[] = [];
  for (const n of names) {
    const p = (checkProtocols as readonly string[]).includes(n) ? (n as CheckProtocol) : aliases[n];
    if (!p) throw usage(`unknown protocol "${n}": use ${checkProtocols.join(', ')} or all`);
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw usage(`${name} takes a whole number above 0, not "${value}"`);
  return n;
}

function nonNegativeInt(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
    throw usage(`${name} takes a whole number, not "${value}"`);
  return n;
}
