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
import { organisationFromActiveDirectory } from '../../discover/ad/read-ad.ts';
import { organisationFromShellFiles } from '../../discover/shell/from-shell.ts';
import { writeEstate } from '../../discover/write-estate.ts';
import type { Io } from '../common.ts';
import { usage } from '../common.ts';
import type { DiscoverLdapOptions } from '../discover-ldap.ts';
import { adConnectionOf } from '../discover-ldap.ts';

interface DiscoverOptions extends Partial<DiscoverLdapOptions> {
  fromShell?: string[];
  out?: string;
  report?: boolean;
}

export function registerDiscover(program: Command, io: Io): void {
  program
    .command('discover')
    .description(
      'Write an estate file from what Exchange knows: Active Directory (--ldap, read only) or Exchange Management Shell exports (Export-Csv or ConvertTo-Json; docs/discover.md gives the block to run).',
    )
    .option('--from-shell <files...>', 'the export files, in any order (each is recognised by its columns)')
    .option(
      '--ldap <url>',
      'read Active Directory instead: ldaps://dc.example.local, or ldap:// with StartTLS',
    )
    .option('--bind-dn <dn>', 'with --ldap: the service account (DN, UPN or DOMAIN\\user); it only reads')
    .option('--password-file <file>', "with --ldap: the file holding the service account's password")
    .option('--password-env <variable>', 'with --ldap: the environment variable holding it instead')
    .option('--ca <file>', "with --ldap: the CA certificate (PEM) of the domain controller's certificate")
    .option(
      '--servername <name>',
      "with --ldap: the name in the DC's certificate, when the URL gives an address",
    )
    .option('--base <dn>', 'with --ldap: where mailbox users are searched (default: the domain root)')
    .option('--timeout-ms <ms>', 'with --ldap: the deadline of each LDAP operation (default 10000)')
    .option('--out <file>', 'write the estate here (default: standard output, unless --report)')
    .option(
      '--report',
      'print per site and version the servers, namespaces, mailboxes and coexistence problems',
    )
    .action(async (opts: DiscoverOptions) => {
      const shell = opts.fromShell !== undefined && opts.fromShell.length > 0;
      if (!shell && opts.ldap === undefined) {
        throw usage(
          '--ldap URL or --from-shell FILE... is required: Active Directory, or the Exchange Management Shell exports (docs/discover.md)',
        );
      }
      if (shell && opts.ldap !== undefined)
        throw usage('give one source, not both: --ldap URL or --from-shell FILE...');
      let written: ReturnType<typeof writeEstate>;
      let org: Awaited<ReturnType<typeof organisationFromShellFiles>>;
      if (opts.ldap !== undefined) {
        const connection = await adConnectionOf({ ...opts, ldap: opts.ldap });
        org = await organisationFromActiveDirectory(connection);
        written = writeEstate(org, [connection.url], {
          from: 'Active Directory',
          usersFrom: 'The mailbox users of Active Directory (users with a homeMDB).',
          directory: {
            url: connection.url,
            baseDn: connection.baseDn ?? adDomainDn(org.adDomain),
            bindDn: connection.bindDn,
            ...(opts.ca !== undefined && { caFile: opts.ca }),
          },
        });
      } else {
        const files = opts.fromShell ?? [];
        org = await organisationFromShellFiles(files);
        written = writeEstate(
          org,
          files.map((f) => basename(f)),
        );
      }
      const { yaml, plan } = written;
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

/** `o365info.local` -> `DC=o365info,DC=local`. */
const adDomainDn = (domain: string | undefined): string =>
  (domain ?? 'example.local')
    .split('.')
    .map((p) => `DC=${p}`)
    .join(',');
