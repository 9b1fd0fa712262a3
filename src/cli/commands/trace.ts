/** `coexist trace`: print the hop-by-hop flow of a request, or every flow of the estate (`--all`). */
import type { Command } from 'commander';
import { Option } from 'commander';
import { loadEstate, policiesSchema } from '../../config/index.ts';
import type { Policies } from '../../core/estate/estate.ts';
import type { EstateIndex } from '../../core/estate/estate-index.ts';
import { CoexistError } from '../../core/errors.ts';
import type { Protocol } from '../../core/protocols/protocol.ts';
import { alwaysExternal, parseProtocol, protocols } from '../../core/protocols/protocol.ts';
import type { Flow } from '../../core/routing/flow.ts';
import { traceFlow } from '../../core/routing/flow.ts';
import type { FlowFormat } from '../../core/routing/render-flow.ts';
import { flowSummary, renderFlow } from '../../core/routing/render-flow.ts';
import type { Io } from '../common.ts';
import { collect, defaultEstatePath, usage } from '../common.ts';

interface TraceOptions {
  estate: string;
  user?: string;
  protocol?: string;
  namespace?: string;
  client: 'internal' | 'external';
  format: FlowFormat;
  all?: boolean;
  policy: string[];
}

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
    .option('--all', 'print every flow for every user of the estate')
    .action(async (opts: TraceOptions) => {
      const { index } = await loadEstate(opts.estate);
      const estate = index.estate;
      const policies = withOverrides(estate.policies, opts.policy);
      if (opts.all) {
        const flows = allFlows(index, policies);
        if (opts.format === 'json') io.out(JSON.stringify(flows, null, 2) + '\n');
        else if (opts.format === 'summary') io.out(flowSummary(flows));
        else io.out(flows.map((f) => renderFlow(f, opts.format)).join('\n'));
        return;
      }
      if (!opts.user) throw usage('--user is required (or use --all)');
      if (!opts.protocol) throw usage(`--protocol is required: one of ${protocols.join(', ')}`);
      const protocol = parseProtocol(opts.protocol);
      if (!protocol) throw usage(`unknown protocol "${opts.protocol}": use one of ${protocols.join(', ')}`);
      if (!index.user(opts.user)) {
        throw new CoexistError(
          'CX_CLI_UNKNOWN_USER',
          `unknown user "${opts.user}": the estate ${estate.name} has ${estate.users.length} users (${sample(estate.users.map((u) => u.address))})`,
          {
            user: opts.user,
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
        index,
        {
          user: opts.user,
          protocol,
          client: opts.client,
          ...(opts.namespace !== undefined && { host: opts.namespace }),
        },
        policies,
      );
      io.out(renderFlow(flow, opts.format));
    });
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

const sample = (xs: readonly string[]): string =>
  xs.length <= 5 ? xs.join(', ') : `${xs.slice(0, 5).join(', ')}, ...`;
