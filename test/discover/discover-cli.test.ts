/**
 * `coexist discover --from-shell` as a user runs it (the CLI in-process): the estate written with --out and
 * loaded back, --report's content for both estates, the malformed CSV named by file, line and column, a file
 * that is no known export, and an organisation without a 2013+ front end (written, then refused with what to
 * fill in).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadEstate } from '../../src/config/index.ts';
import { runCli } from '../support/run-cli.ts';
import { exportsOf, fixtures } from './support.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coexist-discover-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('coexist discover --from-shell', () => {
  it('--out writes a commented estate that coexist loads', async () => {
    const out = join(dir, 'o365info.yaml');
    const r = await runCli(['discover', '--from-shell', ...exportsOf('o365info', 'csv'), '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /wrote .*o365info\.yaml: 3 sites, 8 servers, 4 namespaces, 6 users; 3 things to decide/,
    );
    const text = await readFile(out, 'utf8');
    assert.match(text, /^# TO DECIDE \(discover could not tell from the exports\):$/m);
    assert.match(text, /internalNetworks: the networks of internal clients are not in Exchange/);
    const { estate } = await loadEstate(out);
    assert.equal(estate.namespaces.find((n) => n.kind === 'legacy')?.host, 'legacy.mail.o365info.com');
  });

  it('without --out or --report, prints the estate', async () => {
    const r = await runCli(['discover', '--from-shell', ...exportsOf('fabrikam', 'json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^namespaces:\n {2}- \{ host: mail\.fabrikam\.com, kind: primary, server: EX2016-LON1 \}/m,
    );
  });

  it('--report for o365info: sites, versions, namespaces, mailboxes, the 2007 ActiveSync ExternalUrl, no certificate data', async () => {
    const r = await runCli(['discover', '--from-shell', ...exportsOf('o365info', 'json'), '--report']);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout;
    assert.match(text, /^Exchange organisation O365info \(o365info\.local\): 8 servers in 3 sites\.$/m);
    const ny = section(text, "Site New York (internet-facing; the front end's site)");
    assert.match(ny, /Exchange 2013\n {4}CAS2013-NY +15\.0 \(Build 1497\.2\) +ClientAccess\n/);
    assert.match(
      ny,
      /namespaces: mail\.o365info\.com \(primary\), autodiscover\.o365info\.com \(autodiscover\)\n {4}mailboxes: 3\n/,
    );
    assert.match(
      ny,
      /Exchange 2007\n[\s\S]*namespaces: legacy\.mail\.o365info\.com \(legacy\)\n {4}mailboxes: 1\n/,
    );
    assert.match(section(text, 'Site Los Angeles (intranet only)'), /namespaces: none\n {4}mailboxes: 1\n/);
    assert.match(
      section(text, 'Site Madrid (internet-facing)'),
      /europe\.mail\.o365info\.com \(regional\)\n {4}mailboxes: 1\n/,
    );
    const problems = section(text, "Problems Microsoft's coexistence guidance warns about:");
    assert.match(
      problems,
      /CAS2007-NY \(Exchange 2007, New York\): the ActiveSync ExternalUrl is\s+https:\/\/legacy\.mail\.o365info\.com\/Microsoft-Server-ActiveSync/,
    );
    assert.doesNotMatch(problems, /No legacy namespace/);
    assert.match(section(text, 'Could not check:'), /no Get-ExchangeCertificate export was read/);
  });

  it('--report for fabrikam: no legacy namespace for its 2007 mailboxes, an internal URL missing from a certificate', async () => {
    const r = await runCli(['discover', '--from-shell', ...exportsOf('fabrikam', 'csv'), '--report']);
    assert.equal(r.code, 0, r.stderr);
    const flat = r.stdout.replace(/\n {4}/g, ' ');
    const problems = section(flat, "Problems Microsoft's coexistence guidance warns about:");
    assert.match(problems, /No legacy namespace, but 2 mailboxes are on Exchange 2007 \(Denver, Tokyo\)/);
    assert.match(
      problems,
      /CAS2010-PAR2: the internal URLs on cas2010-par2\.fabrikam\.local \(activesync, [^)]*the Autodiscover service connection point\) are not covered by CAS2010-PAR2's IIS certificate \(cas2010-par2\)/,
    );
    assert.doesNotMatch(problems, /CAS2010-LON1|CAS2010-PAR1/);
    assert.doesNotMatch(problems, /ActiveSync ExternalUrl/);
    assert.match(section(flat, 'Could not check:'), /no certificate of CAS2007-TKY1 enabled for IIS/);
    const london = section(r.stdout, "Site London (internet-facing; the front end's site)");
    assert.match(london, /Exchange 2016\n[\s\S]*mailboxes: 2\n {2}Exchange 2010\n[\s\S]*mailboxes: 2\n/);
    assert.match(
      section(r.stdout, 'Site Paris (internet-facing)'),
      /france\.mail\.fabrikam\.com \(regional\)\n {4}mailboxes: 2\n/,
    );
  });

  it('a malformed CSV: the file, line and column', async () => {
    const stray = `${fixtures}malformed/stray-quote.csv`;
    const r = await runCli(['discover', '--from-shell', stray]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `coexist: ${stray}:3:249: not valid CSV: a quoted field is followed by text before the next comma [CX_DISCOVER_INPUT]\n`,
    );
    const short = `${fixtures}malformed/short-row.csv`;
    const s = await runCli(['discover', '--from-shell', ...exportsOf('o365info', 'csv'), short]);
    assert.equal(s.code, 2);
    assert.equal(
      s.stderr,
      `coexist: ${short}:4:283: not valid CSV: this line has a different number of fields than the header (5 fields; the header has 17) [CX_DISCOVER_INPUT]\n`,
    );
  });

  it('a file that is no known export, and malformed JSON, are named', async () => {
    const other = join(dir, 'Get-Process.csv');
    await writeFile(other, '"Name","Id","CPU"\r\n"pwsh","4242","1.5"\r\n');
    const r = await runCli(['discover', '--from-shell', ...exportsOf('o365info', 'csv'), other]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /Get-Process\.csv: not an export coexist reads: its columns \(Name, Id, CPU\) match none of the cmdlets.* \[CX_DISCOVER_INPUT\]\n$/,
    );
    const json = join(dir, 'servers.json');
    await writeFile(
      json,
      '[\n    {\n        "Name":  "CAS2013-NY",\n        "Fqdn":  "cas2013-ny.o365info.local"\n    },\n    {\n        "Name":  \n]\n',
    );
    const j = await runCli(['discover', '--from-shell', json]);
    assert.equal(j.code, 2);
    assert.match(
      j.stderr,
      /servers\.json:8:1: not valid JSON: expected a value, found "\]" \[CX_DISCOVER_INPUT\]/,
    );
  });

  it('without a 2013+ Client Access server: the estate is written, and discover says what to fill in', async () => {
    const src = await readFile(
      exportsOf('o365info', 'csv').find((f) => f.endsWith('ExchangeServer.csv')) ?? '',
      'utf8',
    );
    const only2007 = src
      .split('\r\n')
      .filter((l) => !/"(CAS|MBX)2013-NY"/.test(l))
      .join('\r\n');
    const servers = join(dir, 'ExchangeServer-2007.csv');
    await writeFile(servers, only2007);
    const vdirs = exportsOf('o365info', 'csv').filter((f) =>
      /VirtualDirectory|OutlookAnywhere|AcceptedDomain/.test(f),
    );
    const out = join(dir, 'no-front-end.yaml');
    const r = await runCli(['discover', '--from-shell', servers, ...vdirs, '--out', out]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /the estate in .*no-front-end\.yaml does not load yet: fill in what is listed at its top/,
    );
    assert.match(r.stderr, /no-front-end\.yaml:\d+:\d+ {2}namespaces {2}no namespace of kind primary/);
    const text = await readFile(out, 'utf8');
    assert.match(
      text,
      /No primary namespace: no Exchange 2013 or later Client Access server has an external URL/,
    );
    assert.match(text, /Users: no Get-Mailbox export was read, so users is empty/);
    assert.match(text, /^# directory:\n# {3}ldap:\n# {5}url: ldaps:\/\/dc1\.o365info\.local$/m);
    // The virtual directories of the servers it left out are noted, not dropped silently.
    assert.match(text, /of server CAS2013-NY, which the Get-ExchangeServer export does not list: left out/);
  });

  it('--from-shell is required', async () => {
    const r = await runCli(['discover']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--from-shell FILE\.\.\. is required/);
  });
});

/** The block of the report that starts with `heading`, up to the next blank line. */
function section(text: string, heading: string): string {
  const start = text.indexOf(heading + '\n');
  assert.ok(start >= 0, `no "${heading}" in:\n${text}`);
  const end = text.indexOf('\n\n', start);
  return text.slice(start, end < 0 ? undefined : end + 1);
}
