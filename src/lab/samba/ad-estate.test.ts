/**
 * The estate as AD entries (ad-estate.ts), without a DC: the domain each demo estate gets, parents before
 * children, every server, database and virtual directory where docs/lab.md §5.4 puts it, and the schema's
 * class order (the DC itself is tested in test/directory/samba-ad.test.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../config/index.ts';
import type { Estate } from '../../core/estate/estate.ts';
import { adDomainOf, adEstate, serialNumberOf, serverRolesOf } from './ad-estate.ts';
import { classGroups, exchangeAttributes, exchangeClasses } from './exchange-schema.ts';

const load = (name: string): Estate =>
  parseEstate(
    readFileSync(fileURLToPath(new URL(`../../../examples/${name}`, import.meta.url)), 'utf8'),
    `examples/${name}`,
  ).index.estate;

/** What a provisioned domain already has, under which the entries go. */
const provisioned = (domainDn: string): string[] =>
  [
    domainDn,
    `CN=Users,${domainDn}`,
    `CN=Configuration,${domainDn}`,
    `CN=Sites,CN=Configuration,${domainDn}`,
    `CN=Subnets,CN=Sites,CN=Configuration,${domainDn}`,
    `CN=Services,CN=Configuration,${domainDn}`,
  ].map((dn) => dn.toLowerCase());

const parentOf = (dn: string): string => dn.slice(dn.search(/(?<!\\),/) + 1);

describe('adEstate', () => {
  for (const name of ['o365info.yaml', 'o365info-2010.yaml']) {
    test(`${name}: every entry's parent exists before it, and no DN twice`, () => {
      const estate = load(name);
      const ad = adEstate(estate);
      const seen = new Set(provisioned(ad.domain.dn));
      for (const e of ad.entries) {
        const dn = e.dn.toLowerCase();
        assert.ok(seen.has(parentOf(dn)), `the parent of ${e.dn} comes first`);
        assert.ok(!seen.has(dn), `${e.dn} once`);
        seen.add(dn);
      }
      for (const link of ad.links) {
        assert.ok(seen.has(link.dn.toLowerCase()), link.dn);
        for (const v of link.values) assert.ok(seen.has(v.toLowerCase()), v);
      }
      const servers = estate.sites.flatMap((s) => s.servers);
      const byClass = (c: string): number => ad.entries.filter((e) => e.attributes.objectClass === c).length;
      assert.equal(byClass('msExchExchangeServer'), servers.length);
      assert.equal(
        byClass('msExchPrivateMDB'),
        servers.reduce((n, s) => n + s.databases.length, 0),
      );
      const vdirs = servers.reduce((n, s) => n + Object.keys(s.urls).length, 0);
      assert.equal(
        ad.entries.filter((e) => String(e.attributes.objectClass).endsWith('VirtualDirectory')).length,
        vdirs,
      );
      assert.equal(byClass('user'), estate.users.length + 1, 'the users and the service account');
    });
  }

  test("the domain: the users' UPN domain, else the servers'; the logins' NetBIOS name", () => {
    assert.deepEqual(adDomainOf(load('o365info.yaml')), {
      dnsName: 'o365info.local',
      netbios: 'O365INFO',
      dn: 'DC=o365info,DC=local',
    });
    const noUpns = { ...load('o365info.yaml'), users: [] };
    assert.equal(adDomainOf(noUpns).dnsName, 'o365info.local', "from the servers' FQDNs");
    assert.equal(adDomainOf(noUpns).netbios, 'O365INFO');
    assert.deepEqual(adDomainOf(noUpns, { dnsName: 'corp.example', netbios: 'corp' }), {
      dnsName: 'corp.example',
      netbios: 'CORP',
      dn: 'DC=corp,DC=example',
    });
  });

  test('versions and roles as Exchange writes them', () => {
    assert.equal(serialNumberOf(2007), 'Version 8.3 (Build 30083.6)');
    assert.equal(serialNumberOf(2010), 'Version 14.3 (Build 30123.4)');
    assert.equal(serialNumberOf(2013), 'Version 15.0 (Build 31497.2)');
    assert.equal(serverRolesOf({ version: 2007, roles: ['cas'] }), 4);
    assert.equal(serverRolesOf({ version: 2010, roles: ['cas', 'mailbox'] }), 6);
    assert.equal(serverRolesOf({ version: 2013, roles: ['cas'] }), 16385);
    assert.equal(serverRolesOf({ version: 2013, roles: ['mailbox'] }), 54);
    assert.equal(serverRolesOf({ version: 2016, roles: ['mailbox'] }), 16439);
  });
});

describe('the Exchange schema subset', () => {
  test('names and OIDs are unique; placeholders only under the documentation arc; classes in a workable order', () => {
    const all = [...exchangeAttributes, ...exchangeClasses];
    assert.equal(new Set(all.map((x) => x.name)).size, all.length);
    assert.equal(new Set(all.map((x) => x.oid)).size, all.length);
    for (const x of all) {
      if (x.source === 'placeholder') assert.match(x.oid, /^1\.3\.6\.1\.4\.1\.32473\./, x.name);
      else assert.match(x.oid, /^1\.2\.840\.113556\./, x.name);
    }
    const groups = classGroups();
    assert.equal(groups.flat().length, exchangeClasses.length);
    const before = new Set<string>();
    for (const group of groups) {
      for (const c of group) {
        for (const s of [c.subClassOf, ...c.possSuperiors]) {
          if (exchangeClasses.some((x) => x.name === s)) assert.ok(before.has(s), `${s} before ${c.name}`);
        }
      }
      for (const c of group) before.add(c.name);
    }
  });
});
