/**
 * `coexist trace`: print the hop-by-hop flow of a request, or every flow of the estate's users (`--all`, a
 * directory's first N by address) or of the users a file lists (`--users FILE`). Users are the estate file's
 * or its directory's (estate-users.ts): the same user gives the same flows from either.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { loadEstate, policiesSchema } from '../../config/index.ts';
import type { Policies } from '../../core/estate/estate.ts';
import type { EstateIndex, Mailbox } from '../../core/estate/estate-index.ts';
import { CoexistError } from '../../core/errors.ts';
import type { Protocol } from '../../core/protocols/protocol.ts';
import { alwaysExternal, parseProtocol, protocols } from '../../core/protocols/protocol.ts';
import type { Flow } from '../../core/routing/flow.ts';
import { traceFlow } from '../../core/routing/flow.ts';
import type { FlowFormat } from '../../core/routing/render-flow.ts';
import { flowSummary, renderFlow } from '../../core/routing/render-flow.ts';
import type { Io } from '../common.ts';
import { collect, defaultEstatePath, usage } from '../common.ts';
import type { EstateUsers } from '../estate-users.ts';
import { indexWithMailboxes, openEstateUsers, readUserList } from '../estate-users.ts';

interface TraceOptions {
  estate: string;
  user?: string;
  protocol?: string;
  namespace?: string;
  client: 'internal' | 'external';
  format: FlowFormat;
  all?: boolean;
  users?: string;
  sample?: string;
  policy: string[];
}

/** How many mailboxes `--all` traces from a directory when `--sample` does not say. */
const defaultSample = 100;

export function registerTrace(program: Command, io: Io): void {
  program
    .command('trace')
    .description(
      'Print the numbered hop-by-hop flow of a request through the estate, and why each server decides what it does.',
    )
    .option('--estate <file>', 'estate file (YAML)', defaultEstatePath)
    .option('--user <address>', 'the user: SMTP address, alias, UPN or DOMAIN\\login')
    .option('--protocol <protocol>', `one of ${protocols.join(', ')} (also eas, outlook-anywhere)`)
    .option(
      '--namespace <host>',
      'the host the client connects to (default: the primary namespace; autodiscover namespace for Autodiscover)',
    )
    .addOption(
      new Option('--client <where>', 'where the client is')
        .choices(['internal', 'external'])
        .default('external'),
    )
    .addOption(
      new Option('--format <format>', 'output format')
        .choices(['text', 'json', 'mermaid', 'summary'])
        .default('text'),
    )
    .option(
      '--policy <name=value>',
      'override an estate policy, e.g. activesyncCrossSite=redirect-451 (repeatable)',
      collect,
      [],
    )
    .option(
      '--all',
      `print every flow for every user of the estate; with directory.ldap, of the first ${defaultSample} mailboxes by primary SMTP address`,
    )
    .option(
      '--sample <n>',
      "with --all: trace the first N users (the estate file's order; a directory's by primary SMTP address)",
    )
    .option('--users <file>', 'print every flow for the users listed in FILE, one address per line')
    .action(async (opts: TraceOptions) => {
      const loaded = await loadEstate(opts.estate);
      const index = loaded.index;
      const estate = index.estate;
      const policies = withOverrides(estate.policies, opts.policy);
      if (opts.users !== undefined && opts.user !== undefined)
        throw usage('give --user or --users FILE, not both');
      const sample = opts.sample === undefined ? undefined : sampleSize(opts.sample);
      if (sample !== undefined && (!opts.all || opts.users !== undefined))
        throw usage('--sample goes with --all (and not with --users)');
      if (!opts.all && opts.users === undefined) {
        if (!opts.user) throw usage('--user is required (or use --all or --users FILE)');
        if (!opts.protocol) throw usage(`--protocol is required: one of ${protocols.join(', ')}`);
        if (!parseProtocol(opts.protocol))
          throw usage(`unknown protocol "${opts.protocol}": use one of ${protocols.join(', ')}`);
      }
      // The users are the estate file's, or its directory's (docs/config.md "directory").
      const users = await openEstateUsers(loaded, opts.estate, (m) => io.err(`coexist trace: ${m}\n`));
      try {
        if (opts.all || opts.users !== undefined) {
          const traced = await indexOfUsersToTrace(users, loaded.index, opts, sample, io);
          const flows = allFlows(traced, policies);
          if (opts.format === 'json') io.out(JSON.stringify(flows, null, 2) + '\n');
          else if (opts.format === 'summary') io.out(flowSummary(flows));
          else io.out(flows.map((f) => renderFlow(f, opts.format)).join('\n'));
          return;
        }
        await traceOne(users, index, opts, policies, io);
      } finally {
        await users.close();
      }
    });
}

/** The index whose users `--all` or `--users FILE` trace. */
async function indexOfUsersToTrace(
  users: EstateUsers,
  index: EstateIndex,
  opts: TraceOptions,
  sample: number | undefined,
  io: Io,
): Promise<EstateIndex> {
  if (opts.users !== undefined) {
    const listed = await readUserList(opts.users);
    const found: Mailbox[] = [];
    const askedAs = new Map<string, Mailbox>();
    const unknown: string[] = [];
    for (const { identity, line } of listed) {
      const mailbox = await users.find(identity);
      if (mailbox === undefined) unknown.push(`${opts.users}:${line} ${identity}`);
      else {
        found.push(mailbox);
        askedAs.set(identity.toLowerCase(), mailbox);
      }
    }
    if (unknown.length > 0) {
      const where = users.directoryUrl
        ? `the directory ${users.directoryUrl}`
        : `the estate ${index.estate.name}`;
      throw new CoexistError(
        'CX_CLI_UNKNOWN_USER',
        `${unknown.length} of the users listed in ${opts.users} ${unknown.length === 1 ? 'has' : 'have'} no mailbox in ${where}: ${sample5(unknown)}`,
        { file: opts.users, unknown: unknown.length },
      );
    }
    return indexWithMailboxes(index, found, askedAs);
  }
  if (users.directoryUrl === undefined) {
    // The estate file's users, in its order: the whole index, or its first `sample` users.
    if (sample === undefined) return index;
    const { mailboxes } = await users.all(sample);
    return indexWithMailboxes(index, mailboxes.slice(0, sample));
  }
  const limit = sample ?? defaultSample;
  const { mailboxes, total } = await users.all(limit);
  const taken = Math.min(limit, total);
  const left = taken - mailboxes.length;
  // On standard error, so that standard output is exactly what the same users of an estate file give.
  io.err(
    `coexist trace: the directory ${users.directoryUrl} has ${total} mailbox user${total === 1 ? '' : 's'}; tracing ${taken === total ? 'every one' : `the first ${taken}`} by primary SMTP address${left > 0 ? `, less ${left} that ${left === 1 ? 'is' : 'are'} no mailbox of the estate (above)` : ''}${total > limit ? ' (--sample N for more, --users FILE to choose)' : ''}\n`,
  );
  return indexWithMailboxes(index, mailboxes);
}

/** `--user` and `--protocol`: one flow. */
async function traceOne(
  users: EstateUsers,
  index: EstateIndex,
  opts: TraceOptions,
  policies: Policies,
  io: Io,
): Promise<void> {
  const estate = index.estate;
  const user = opts.user as string;
  const protocol = parseProtocol(opts.protocol as string) as Protocol;
  let routed = index;
  if (users.directoryUrl !== undefined) {
    const mailbox = await users.find(user);
    if (mailbox === undefined) {
      throw new CoexistError(
        'CX_CLI_UNKNOWN_USER',
        `unknown user "${user}": the directory ${users.directoryUrl} has no mailbox of the estate ${estate.name} for it (docs/config.md "directory")`,
        { user },
      );
    }
    routed = indexWithMailboxes(index, [mailbox], new Map([[user.toLowerCase(), mailbox]]));
  } else if (!index.user(user)) {
    throw new CoexistError(
      'CX_CLI_UNKNOWN_USER',
      `unknown user "${user}": the estate ${estate.name} has ${estate.users.length} users (${sample5(estate.users.map((u) => u.address))})`,
      {
        user,
      },
    );
  }
  if (opts.namespace !== undefined && !index.serverForHost(opts.namespace)) {
    const hosts = estate.namespaces.map((n) => n.host);
    throw new CoexistError(
      'CX_CLI_UNKNOWN_NAMESPACE',
      `unknown namespace "${opts.namespace}": use one of ${hosts.join(', ')} or a server FQDN`,
      {
        host: opts.namespace,
      },
    );
  }
  const flow = traceFlow(
    routed,
    {
      user,
      protocol,
      client: opts.client,
      ...(opts.namespace !== undefined && { host: opts.namespace }),
    },
    policies,
  );
  io.out(renderFlow(flow, opts.format));
}

function sampleSize(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw usage(`--sample takes a whole number above 0, not "${value}"`);
  return n;
}

/** Every user x protocol x client location (ActiveSync only external), in estate order. */
export function allFlows(index: EstateIndex, policies: Policies): Flow[] {
  const flows: Flow[] = [];
  for (const user of index.estate.users) {
    for (const protocol of protocols as readonly Protocol[]) {
      for (const client of alwaysExternal(protocol)
        ? (['external'] as const)
        : (['external', 'internal'] as const)) {
        flows.push(traceFlow(index, { user: user.address, protocol, client }, policies));
      }
    }
  }
  return flows;
}

function withOverrides(base: Policies, pairs: readonly string[]): Policies {
  const raw: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw usage(`--policy takes name=value, got "${pair}"`);
    raw[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const parsed = policiesSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const allowed = Object.keys(policiesSchema.shape).join(', ');
    throw usage(
      `--policy ${issue?.path.join('.') || ''}: ${issue?.message ?? 'invalid'} (policies: ${allowed})`,
    );
  }
  return { ...base, ...parsed.data };
}

const sample5 = (xs: readonly string[]): string =>
  xs.length <= 5 ? xs.join(', ') : `${xs.slice(0, 5).join(', ')}, ...`;
