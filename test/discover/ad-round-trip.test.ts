/**
 * `coexist discover --ldap` against the lab's real Samba AD domain controller (src/lab/samba, docs/lab.md
 * §5) loaded with examples/o365info.yaml as Exchange would have written it: the round trip of
 * docs/discover.md (estate -> AD objects -> discover -> an estate whose `trace --all`, every user x protocol
 * x client location, is identical to the demo's), the same organisation and the same estate as from the
 * shell exports of test/fixtures/shell/o365info where both carry the fact, --report for the demo, and the
 * failures an admin meets: a wrong service password, an unreachable DC, a forest without an Exchange
 * organisation. Read as the service account over LDAPS and StartTLS. Samba must be installed (npm run
 * setup): without it these tests fail, they never skip.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, Control } from 'ldapts';
import { allFlows } from '../../src/cli/commands/trace.ts';
import { loadEstate, parseEstate } from '../../src/config/index.ts';
import { organisationFromActiveDirectory } from '../../src/discover/ad/read-ad.ts';
import type { Organisation } from '../../src/discover/organisation.ts';
import { writeEstate } from '../../src/discover/write-estate.ts';
import { randomLabPassword } from '../../src/lab/slapd.ts';
import { startSambaAd, type SambaAd } from '../../src/lab/samba/samba.ts';
import { contractEstateIndex, demoPassword } from '../support/directory.contract.ts';
import { runCli } from '../support/run-cli.ts';
import { discover, exportsOf, withoutSources } from './support.ts';

const demoPath = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const servicePassword = `Svc-${randomLabPassword()}-9`;

const noUpn = new Set(contractEstateIndex().estate.users.flatMap((u) => (u.upn ? [] : [u.address])));

/** The UPN line of a user the demo gives none (see `comparable`). */
const noUpnLine = new RegExp(
  `^ {4}upn: (${[...noUpn].map((a) => a.slice(0, a.indexOf('@')).replace(/[.-]/g, '\\$&')).join('|')})@.*\n`,
  'gm',
);

/**
 * The organisation where both lab sources carry the same fact. Each was made from the demo estate its own
 * way, and they differ where Exchange itself leaves a choice, none of which changes the estate (the test
 * compares the written estates too): the Autodiscover virtual directory's InternalUrl (the exports $null,
 * AD the service connection point's URL again), the 2007 servers' Outlook Anywhere host names (the exports
 * the front end's namespace, as Microsoft's coexistence guidance sets it; AD the server's own name), the
 * roles coexist does not route (a 2013 Mailbox server's msExchCurrentServerRoles 54 also says Hub Transport
 * and Unified Messaging), the order of objects (AD's creation order, the cmdlets' own), and the type of the
 * hybrid routing domain (written as a remote domain either way).
 */
function comparable(org: Organisation): unknown {
  const o = withoutSources(org) as Organisation;
  const byName = <T extends { name: string }>(xs: readonly T[]): T[] =>
    [...xs].sort((a, b) => a.name.localeCompare(b.name));
  return {
    name: o.name,
    adDomain: o.adDomain,
    sites: o.sites,
    servers: byName(o.servers).map((s) => ({
      ...s,
      roles: s.roles.filter((r) => r === 'ClientAccess' || r === 'Mailbox'),
      virtualDirectories: [...s.virtualDirectories]
        .sort((a, b) => a.protocol.localeCompare(b.protocol))
        .map((v) => ({
          protocol: v.protocol,
          identity: v.identity,
          internalUrl: v.protocol === 'autodiscover' ? undefined : v.internalUrl,
          externalUrl: v.externalUrl,
          // Outlook Anywhere's authentication methods and OWA's CrossSiteRedirectType are not in the lab's AD.
          outlookAnywhere:
            v.outlookAnywhere && s.build.major >= 15
              ? {
                  externalHostname: v.outlookAnywhere.externalHostname,
                  internalHostname: v.outlookAnywhere.internalHostname,
                }
              : undefined,
        })),
    })),
    databases: byName(o.databases),
    // The lab's AD marks no accepted domain as the default (msExchAcceptedDomainFlags 0).
    acceptedDomains: o.acceptedDomains.map((d) => ({
      domain: d.domain,
      type: d.domain.endsWith('.mail.onmicrosoft.com') ? undefined : d.type,
    })),
    // Get-Mailbox's ServerName is in lower case; AD's owning server keeps the server's own spelling.
    mailboxes: o.mailboxes?.map((m) => ({
      ...m,
      samAccountName: undefined,
      server: m.server?.toLowerCase(),
      // The demo gives its service accounts no UPN: the exports' generator writes the AD domain's, the AD
      // loader their address (AD users always have one).
      upn: noUpn.has(m.address) ? undefined : m.upn,
    })),
  };
}

describe('coexist discover --ldap against Samba AD (o365info)', () => {
  let dc: SambaAd;
  let dir: string;
  let passwordFile: string;
  let caFile: string;
  let connection: () => Parameters<typeof organisationFromActiveDirectory>[0];

  before(async () => {
    const estate = contractEstateIndex().estate;
    dc = await startSambaAd({ estate, password: demoPassword, servicePassword, maxRuntimeSeconds: 1800 });
    dir = await mkdtemp(join(tmpdir(), 'coexist-discover-ad-'));
    passwordFile = join(dir, 'service-password');
    caFile = join(dir, 'dc-ca.pem');
    await writeFile(passwordFile, `${servicePassword}\n`, { mode: 0o600 });
    await writeFile(caFile, dc.caPem);
    connection = () => ({
      url: dc.ldapsUrl,
      bindDn: dc.serviceAccount.upn,
      bindPassword: servicePassword,
      ca: dc.caPem,
    });
  });
  after(async () => {
    await dc?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const ldapArgs = (url = dc.ldapsUrl): string[] => [
    'discover',
    '--ldap',
    url,
    '--bind-dn',
    dc.serviceAccount.upn,
    '--password-file',
    passwordFile,
    '--ca',
    caFile,
  ];

  it('the round trip: trace --all of the discovered estate is identical to examples/o365info.yaml', async () => {
    const out = join(dir, 'discovered.yaml');
    const r = await runCli([...ldapArgs(), '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /wrote .*discovered\.yaml: 3 sites, 8 servers, 4 namespaces, 6 users; 3 things to decide/,
    );
    const text = await readFile(out, 'utf8');
    assert.match(text, /^# Written by coexist discover from Active Directory: ldaps:\/\/127\./m);
    assert.match(text, /^# TO DECIDE \(discover could not tell from the directory\):$/m);
    // The directory it was read from, to uncomment: the service account's password stays outside.
    assert.match(text, new RegExp(`^# {5}bindDn: ${dc.serviceAccount.upn.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(text, /^# {5}tls: \{ caFile: "?[^"]*dc-ca\.pem"? \}$/m);
    assert.doesNotMatch(text, new RegExp(servicePassword));
    // AD's site subnets (the lab writes the demo's internal networks as such) are offered for internalNetworks.
    assert.match(text, /^# internalNetworks: \[10\.0\.0\.0\/8\] # the subnets of AD's sites/m);

    const demo = await loadEstate(demoPath);
    const loaded = await loadEstate(out);
    assert.deepEqual(
      loaded.estate.users.map((u) => u.address),
      demo.estate.users.map((u) => u.address),
    );
    const expected = allFlows(demo.index, demo.estate.policies);
    const actual = allFlows(loaded.index, loaded.estate.policies);
    assert.ok(expected.length >= 6 * 8, `a flow per user, protocol and client (${expected.length})`);
    assert.equal(JSON.stringify(actual, null, 1), JSON.stringify(expected, null, 1));
  });

  it('the same organisation and the same estate as from the shell exports (StartTLS this time)', async () => {
    const fromAd = await organisationFromActiveDirectory({ ...connection(), url: dc.ldapUrl });
    const fromShell = (await discover(exportsOf('o365info', 'json'))).org;
    assert.deepEqual(comparable(fromAd), comparable(fromShell));
    // What AD holds as Exchange wrote it: the build without serialNumber's 30000, roles from the bits.
    const byName = (n: string) => fromAd.servers.find((s) => s.name === n);
    assert.deepEqual(byName('CAS2007-NY')?.build, { major: 8, minor: 3, build: 83, revision: 6 });
    assert.deepEqual(byName('MBX2013-NY')?.roles, ['Mailbox', 'UnifiedMessaging', 'HubTransport']);
    assert.deepEqual(byName('CAS2013-NY')?.roles, ['ClientAccess']);
    assert.equal(
      byName('CAS2013-NY')?.autodiscoverServiceInternalUri,
      'https://cas2013-ny.o365info.local/Autodiscover/Autodiscover.xml',
    );
    assert.ok(
      fromAd.notes.some((n) =>
        /AD sites without an Exchange server.*Default-First-Site-Name/.test(n.message),
      ),
    );
    // Both sources write the same estate: only the comments differ.
    const yamlOf = (org: Organisation): string =>
      writeEstate(org, ['x'])
        .yaml.replace(/^\s*#.*\n/gm, '')
        .replace(/ #.*$/gm, '')
        .replace(noUpnLine, '');
    assert.equal(yamlOf(fromAd), yamlOf(fromShell));
    assert.ok(parseEstate(writeEstate(fromAd, ['x']).yaml, 'from-ad.yaml').estate.users.length === 6);
  });

  it('--report for the demo: sites, versions, namespaces, mailboxes and the coexistence problems', async () => {
    const r = await runCli([...ldapArgs(), '--report']);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout;
    assert.match(text, /^Exchange organisation O365info \(o365info\.local\): 8 servers in 3 sites\.$/m);
    assert.match(text, /Site New York \(internet-facing; the front end's site\)/);
    assert.match(text, /CAS2013-NY +15\.0 \(Build 1497\.2\) +ClientAccess/);
    assert.match(text, /CAS2007-NY +8\.3 \(Build 83\.6\) +ClientAccess/);
    assert.match(
      text,
      /namespaces: mail\.o365info\.com \(primary\), autodiscover\.o365info\.com \(autodiscover\)\n {4}mailboxes: 3\n/,
    );
    assert.match(text, /legacy\.mail\.o365info\.com \(legacy\)/);
    assert.match(text, /europe\.mail\.o365info\.com \(regional\)/);
    // The demo's 2007 CAS in New York keeps its ActiveSync ExternalUrl on the legacy name: the report says so.
    assert.match(
      text,
      /CAS2007-NY \(Exchange 2007, New York\): the ActiveSync ExternalUrl is\s+https:\/\/legacy\.mail\.o365info\.com\/Microsoft-Server-ActiveSync, in the site the 2013\+ front end serves/,
    );
    assert.match(text, /Could not check:\n {2}- Certificates: [^]*cannot be checked/);
  });

  it('a wrong service password: the URL, the account, invalid credentials (exit 1), the password nowhere', async () => {
    const wrong = join(dir, 'wrong-password');
    await writeFile(wrong, 'not-the-password');
    const args = ldapArgs();
    args[args.indexOf('--password-file') + 1] = wrong;
    const r = await runCli(args);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^coexist: Active Directory at ${dc.ldapsUrl.replace(/\./g, '\\.')}: the service account ${dc.serviceAccount.upn.replace(/\./g, '\\.')} was refused \\(invalid credentials\\).*\\[CX_DIRECTORY_UNAVAILABLE\\]$`,
        'm',
      ),
    );
    assert.doesNotMatch(r.stderr + r.stdout, /not-the-password/);
  });

  it('an unreachable DC: the URL and the refused connection (exit 1)', async () => {
    // A port that was just free: nothing listens there.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const url = `ldaps://127.0.0.1:${port}`;
    const r = await runCli(ldapArgs(url));
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^coexist: Active Directory at ldaps://127\\.0\\.0\\.1:${port}: cannot be reached: the connection was refused.*\\[CX_DIRECTORY_UNAVAILABLE\\]$`,
        'm',
      ),
    );
  });

  it('a DC whose certificate is not trusted: says to give its CA (exit 1)', async () => {
    const args = ldapArgs().filter((a, i, all) => a !== '--ca' && all[i - 1] !== '--ca');
    const r = await runCli(args);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /its TLS certificate is not trusted .*--ca.*\[CX_DIRECTORY_UNAVAILABLE\]$/m);
  });

  it('usage: one source, the service account and one password source are required (exit 2)', async () => {
    const both = await runCli([...ldapArgs(), '--from-shell', ...exportsOf('o365info', 'csv')]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give one source, not both: --ldap URL or --from-shell FILE/);
    const noBind = await runCli(['discover', '--ldap', dc.ldapsUrl, '--password-file', passwordFile]);
    assert.equal(noBind.code, 2);
    assert.match(noBind.stderr, /--ldap needs --bind-dn/);
    const noPassword = await runCli(['discover', '--ldap', dc.ldapsUrl, '--bind-dn', dc.serviceAccount.upn]);
    assert.equal(noPassword.code, 2);
    assert.match(noPassword.stderr, /exactly one of --password-file FILE and --password-env VARIABLE/);
    const unset = await runCli([
      'discover',
      '--ldap',
      dc.ldapsUrl,
      '--bind-dn',
      dc.serviceAccount.upn,
      '--password-env',
      'COEXIST_TEST_UNSET_VARIABLE_FOR_DISCOVER',
    ]);
    assert.equal(unset.code, 2);
    assert.match(
      unset.stderr,
      /--password-env COEXIST_TEST_UNSET_VARIABLE_FOR_DISCOVER: the environment variable is not set/,
    );
  });

  // Last: it deletes the organisation from this DC.
  it('a forest without an Exchange organisation: says so, naming the URL and where it looked (exit 2)', async () => {
    const admin = new Client({ url: dc.ldapsUrl, timeout: 10_000, tlsOptions: { ca: dc.caPem } });
    await admin.bind(dc.administrator.upn, dc.administrator.password);
    try {
      // Samba refuses to move or rename in the configuration partition: the organisation is deleted, with
      // its tree (the tree delete control of AD).
      await admin.del(dc.ad.organizationDn, new Control('1.2.840.113556.1.4.805', { critical: true }));
    } finally {
      await admin.unbind();
    }
    const r = await runCli(ldapArgs());
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^coexist: Active Directory at ldaps:\/\/127\.[\d.]+: no Exchange organisation found: CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=o365info,DC=local holds no msExchOrganizationContainer .*\[CX_DISCOVER_INPUT\]$/m,
    );
  });
});
