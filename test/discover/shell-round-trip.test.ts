/**
 * The round trip of docs/discover.md: the o365info estate (examples/o365info.yaml) as Exchange Management
 * Shell exports, in both formats, discovered back into an estate whose `trace --all` (every user x protocol
 * x client location, the engine's flows) is identical to the demo estate's. The users come from the
 * Get-Mailbox export of the fixtures, made from the demo's users (address, display name, secondary
 * addresses, UPN, database): the one place users enter a discovered estate besides the directory.
 * And the larger estate of our own (fabrikam: 2016, 2010 and 2007 sites, several CAS per site) loads, passes
 * coexist's checks and routes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadEstate } from '../../src/config/index.ts';
import { allFlows } from '../../src/cli/commands/trace.ts';
import { discover, exportsOf, withoutSources } from './support.ts';

const demoPath = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

describe('discover --from-shell: the o365info round trip', () => {
  for (const format of ['csv', 'json'] as const) {
    it(`${format}: trace --all of the discovered estate is identical to examples/o365info.yaml's`, async () => {
      const demo = await loadEstate(demoPath);
      const { loaded } = await discover(exportsOf('o365info', format));
      // The comparison covers every user of the demo, and only them.
      assert.deepEqual(
        loaded.estate.users.map((u) => u.address),
        demo.estate.users.map((u) => u.address),
      );
      const expected = allFlows(demo.index, demo.estate.policies);
      const actual = allFlows(loaded.index, loaded.estate.policies);
      assert.ok(
        expected.length >= 6 * 8,
        `the demo has a flow per user, protocol and client (${expected.length})`,
      );
      assert.equal(JSON.stringify(actual, null, 1), JSON.stringify(expected, null, 1));
    });
  }

  it('csv and json give the same organisation', async () => {
    const csv = await discover(exportsOf('o365info', 'csv'));
    const json = await discover(exportsOf('o365info', 'json'));
    // Export-Csv writes a multi-valued property as its type name: the CSV side lost Outlook Anywhere's IIS
    // authentication methods, and says so; JSON kept them.
    const iis = (d: typeof csv, server?: string): unknown[] =>
      d.org.servers
        .filter((s) => server === undefined || s.name === server)
        .flatMap((s) => s.virtualDirectories.flatMap((v) => v.outlookAnywhere?.iisAuth ?? []));
    assert.deepEqual(iis(csv), []);
    assert.deepEqual(iis(json, 'CAS2013-NY'), ['Basic', 'Ntlm', 'Negotiate']);
    assert.ok(csv.org.notes.some((n) => /IISAuthenticationMethods holds only a type name/.test(n.message)));
    const strip = (d: typeof csv): unknown =>
      withoutSources({
        ...d.org,
        servers: d.org.servers.map((s) => ({
          ...s,
          virtualDirectories: s.virtualDirectories.map((v) =>
            v.outlookAnywhere ? { ...v, outlookAnywhere: { ...v.outlookAnywhere, iisAuth: undefined } } : v,
          ),
        })),
      });
    assert.deepEqual(strip(csv), strip(json));
    assert.equal(csv.written.yaml.replace(/^#.*\n/gm, ''), json.written.yaml.replace(/^#.*\n/gm, ''));
  });

  it('reads what Exchange writes: versions, roles, sites, the Autodiscover SCP, 2003 virtual directories left out', async () => {
    const { org, loaded } = await discover(exportsOf('o365info', 'json'));
    const cas2007 = org.servers.find((s) => s.name === 'CAS2007-NY');
    assert.deepEqual(cas2007?.build, { major: 8, minor: 3, build: 83, revision: 6 });
    assert.deepEqual(cas2007?.roles, ['ClientAccess']);
    assert.equal(cas2007?.site, 'New York');
    assert.equal(org.name, 'O365info');
    assert.equal(org.adDomain, 'o365info.local');
    // Exchange 2007's Get-OwaVirtualDirectory also lists Exchange, Public, Exchweb and Exadmin.
    assert.deepEqual(
      cas2007?.virtualDirectories.filter((v) => v.protocol === 'owa').map((v) => v.identity),
      ['CAS2007-NY\\owa (Default Web Site)'],
    );
    assert.equal(org.notes.filter((n) => /does not route/.test(n.message)).length, 4);
    // The Autodiscover virtual directory's InternalUrl is $null: the internal URL is the SCP's.
    const fe = loaded.estate.sites.flatMap((s) => s.servers).find((s) => s.name === 'CAS2013-NY');
    assert.equal(
      fe?.urls.autodiscover?.internal,
      'https://cas2013-ny.o365info.local/Autodiscover/Autodiscover.xml',
    );
    // Outlook Anywhere on the 2007 CAS names the front end's namespace: no external URL of its own.
    const ny2007 = loaded.estate.sites.flatMap((s) => s.servers).find((s) => s.name === 'CAS2007-NY');
    assert.deepEqual(ny2007?.urls.rpc, { internal: 'https://cas2007-ny.o365info.local/rpc/rpcproxy.dll' });
    assert.deepEqual(loaded.estate.remoteDomains, [
      {
        domain: 'o365info.mail.onmicrosoft.com',
        redirect: { kind: 'url', url: 'https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml' },
      },
    ]);
  });
});

describe('discover --from-shell: a larger estate (fabrikam)', () => {
  for (const format of ['csv', 'json'] as const) {
    it(`${format}: loads, passes coexist's checks, and every user routes`, async () => {
      const { loaded, written } = await discover(exportsOf('fabrikam', format));
      const { estate } = loaded;
      assert.deepEqual(
        estate.namespaces.map((n) => [n.host, n.kind, n.server]),
        [
          ['mail.fabrikam.com', 'primary', 'EX2016-LON1'],
          ['autodiscover.fabrikam.com', 'autodiscover', 'EX2016-LON1'],
          ['asia.mail.fabrikam.com', 'regional', 'CAS2007-TKY1'],
          ['france.mail.fabrikam.com', 'regional', 'CAS2010-PAR1'],
        ],
      );
      assert.deepEqual(
        estate.sites.map((s) => [s.name, s.internetFacing, s.servers.length]),
        [
          ['Denver', false, 3],
          ['Tokyo', true, 3],
          ['London', true, 5],
          ['Paris', true, 3],
        ],
      );
      const servers = estate.sites.flatMap((s) => s.servers);
      assert.equal(
        servers.some((s) => s.name === 'EDGE2016' || s.name === 'HUB2007-DEN'),
        false,
      );
      assert.match(written.yaml, /EDGE2016 is left out/);
      const byName = (n: string): (typeof servers)[number] | undefined => servers.find((s) => s.name === n);
      // A 2016 server holds both roles; the second one behind the load-balanced name keeps its own URLs only.
      assert.deepEqual(byName('EX2016-LON2')?.roles, ['cas', 'mailbox']);
      assert.deepEqual(byName('EX2016-LON2')?.urls.owa, {
        internal: 'https://ex2016-lon2.fabrikam.local/owa',
      });
      assert.match(written.yaml, /EX2016-LON2 shares mail\.fabrikam\.com with EX2016-LON1/);
      // $null (JSON) and empty (CSV) external URLs: none.
      assert.equal(byName('CAS2010-LON1')?.urls.owa?.external, undefined);
      assert.equal(byName('CAS2007-TKY2')?.urls.activesync?.external, undefined);
      // Exchange 2007 names every first database "Mailbox Database": qualified by server.
      assert.deepEqual(byName('MBX2007-TKY')?.databases, ['MBX2007-TKY\\Mailbox Database']);
      assert.equal(
        estate.users.find((u) => u.address === 'fumiko@fabrikam.com')?.mailboxServer,
        'MBX2007-TKY',
      );
      assert.equal(estate.policies.owaRedirectStyle, 'silent-fba');
      assert.deepEqual(estate.domains, ['fabrikam.com', 'fabrikam.de']);
      assert.equal(estate.users.length, 8);
      const flows = allFlows(loaded.index, estate.policies);
      assert.equal(flows.length, 8 * 15);
      // Greg's 2007 mailbox in intranet-only Denver: with no legacy namespace there is no OWA redirect
      // target for an external browser (the report warns about it).
      const gregOwa = flows.find(
        (f) => f.user === 'greg@fabrikam.com' && f.protocol === 'owa' && f.client === 'external',
      );
      assert.match(JSON.stringify(gregOwa), /CX_ROUTE_NO_REDIRECT_TARGET/);
      // Elise's 2010 mailbox in Paris, ActiveSync from outside: proxied to a 2010 CAS of Paris.
      const eliseEas = flows.find((f) => f.user === 'elise@fabrikam.com' && f.protocol === 'activesync');
      assert.match(JSON.stringify(eliseEas), /CAS2010-PAR1/);
    });
  }

  it('csv and json give the same organisation and the same estate', async () => {
    const csv = await discover(exportsOf('fabrikam', 'csv'));
    const json = await discover(exportsOf('fabrikam', 'json'));
    const strip = (d: typeof csv): unknown =>
      withoutSources({
        ...d.org,
        servers: d.org.servers.map((s) => ({
          ...s,
          virtualDirectories: s.virtualDirectories.map((v) =>
            v.outlookAnywhere ? { ...v, outlookAnywhere: { ...v.outlookAnywhere, iisAuth: undefined } } : v,
          ),
        })),
      });
    assert.deepEqual(strip(csv), strip(json));
    assert.equal(csv.written.yaml.replace(/^#.*\n/gm, ''), json.written.yaml.replace(/^#.*\n/gm, ''));
  });
});
