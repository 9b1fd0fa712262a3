/**
 * `coexist discover --from-shell FILE...`: the estate from Exchange Management Shell exports, written as a
 * commented estate YAML (`--out FILE`, else standard output), checked with coexist's own loader; `--report`
 * prints the migration view per site and version with the coexistence problems the exports show
 * (docs/discover.md).
 */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { EstateConfigError, formatConfigProblems, parseEstate } from '../../config/index.ts';
import { discoveryReport } from '../../discover/report.ts';
import { organisationFromShellFiles } from '../../discover/shell/from-shell.ts';
import { writeEstate } from '../../discover/write-estate.ts';
import type { Io } from '../common.ts';
import { usage } from '../common.ts';

interface DiscoverOptions {
  fromShell?: string[];
  out?: string;
  report?: boolean;
}

export function registerDiscover(program: Command, io: Io): void {
  program
    .command('discover')
    .description(
      'Write an estate file from what Exchange knows: Exchange Management Shell exports (Export-Csv or ConvertTo-Json; docs/discover.md gives the block to run).',
    )
    .option('--from-shell <files...>', 'the export files, in any order (each is recognised by its columns)')
    .option('--out <file>', 'write the estate here (default: standard output, unless --report)')
    .option(
      '--report',
      'print per site and version the servers, namespaces, mailboxes and coexistence problems',
    )
    .action(async (opts: DiscoverOptions) => {
      if (!opts.fromShell || opts.fromShell.length === 0) {
        throw usage(
          '--from-shell FILE... is required: the Exchange Management Shell exports (docs/discover.md)',
        );
      }
      const org = await organisationFromShellFiles(opts.fromShell);
      const { yaml, plan } = writeEstate(
        org,
        opts.fromShell.map((f) => basename(f)),
      );
      if (opts.report) io.out(discoveryReport(org, plan).text);
      if (opts.out !== undefined) {
        try {
          await writeFile(opts.out, yaml);
        } catch (e) {
          throw usage(`--out ${opts.out}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
        }
      } else if (!opts.report) io.out(yaml);
      // The written estate must load as it is; when it cannot (no primary namespace), say what to fill in.
      try {
        const { estate } = parseEstate(yaml, opts.out ?? 'the written estate');
        if (opts.out !== undefined) {
          const servers = estate.sites.reduce((n, s) => n + s.servers.length, 0);
          io.err(
            `coexist discover: wrote ${opts.out}: ${estate.sites.length} sites, ${servers} servers, ${estate.namespaces.length} namespaces, ${estate.users.length} users; ${plan.undecided.length} things to decide are listed at its top\n`,
          );
        }
      } catch (e) {
        if (!(e instanceof EstateConfigError)) throw e;
        io.err(
          `coexist discover: the estate${opts.out ? ` in ${opts.out}` : ''} does not load yet: fill in what is listed at its top, then check it with coexist trace --all --estate FILE\n`,
        );
        io.err(formatConfigProblems(e));
        throw usage('the discovered estate needs the decisions listed at its top');
      }
    });
}
