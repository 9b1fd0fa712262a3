/**
 * src/discover/ad/from-ad.ts on entries as an LDAP server hands them over, for what the lab's AD does not
 * hold: builds without serialNumber (msExchVersion only), Exchange 2016's one role, an Edge server, accepted
 * domain flags (relays, the default), a virtual directory of no server read, an unusable URL, and values
 * with a line break (left out, so they cannot add lines to the written estate). The real reads against
 * Samba AD are ad-round-trip*.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AdEntry, AdSnapshot } from '../../src/discover/ad/from-ad.ts';
import { organisationFromAd, serverRoles } from '../../src/discover/ad/from-ad.ts';
import { parseEstate } from '../../src/config/index.ts';
import { writeEstate } from '../../src/discover/write-estate.ts';

const config = 'CN=Configuration,DC=contoso,DC=local';
const org = `CN=Contoso,CN=Microsoft Exchange,CN=Services,${config}`;
const servers = `CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,${org}`;
const site = (name: string): string => `CN=${name},CN=Sites,${config}`;
let usn = 100;
const entry = (dn: string, attributes: Record<string, string | string[]>): AdEntry => ({
  dn,
  attributes: Object.fromEntries(
    Object.entries({ ...attributes, uSNCreated: String(usn++) }).map(([k, v]) => [k, [v].flat()]),
  ),
});
const server = (name: string, a: Record<string, string | string[]>): AdEntry =>
  entry(`CN=${name},${servers}`, { objectClass: ['top', 'server', 'msExchExchangeServer'], cn: name, ...a });
const vdir = (srv: string, cn: string, cls: string, a: Record<string, string>): AdEntry =>
  entry(`CN=${cn},CN=HTTP,CN=Protocols,CN=${srv},${servers}`, { objectClass: ['top', cls], cn, ...a });
const accepted = (name: string, flags: string): AdEntry =>
  entry(`CN=${name},CN=Accepted Domains,CN=Transport Settings,${org}`, {
    objectClass: 'msExchAcceptedDomain',
    msExchAcceptedDomainName: name,
    msExchAcceptedDomainFlags: flags,
  });

function snapshot(): AdSnapshot {
  return {
    url: 'ldaps://dc1.contoso.local',
    domainDn: 'DC=contoso,DC=local',
    organization: entry(org, { objectClass: 'msExchOrganizationContainer', cn: 'Contoso' }),
    sites: [
      entry(site('Default-First-Site-Name'), { objectClass: 'site', cn: 'Default-First-Site-Name' }),
      entry(site('London'), { objectClass: 'site', cn: 'London' }),
    ],
    objects: [
      server('EX2016-LON1', {
        serialNumber: 'Version 15.1 (Build 32507.6)',
        msExchCurrentServerRoles: '16439',
        msExchServerSite: site('London'),
        dNSHostName: 'EX2016-LON1.contoso.local',
      }),
      // No serialNumber: the release from msExchVersion (2010's), the fqdn from networkAddress.
      server('CAS2010-LON1', {
        msExchVersion: '44220983382016',
        msExchCurrentServerRoles: '4',
        msExchServerSite: site('London'),
        networkAddress: ['netbios:CAS2010-LON1', 'ncacn_ip_tcp:cas2010-lon1.contoso.local'],
      }),
      server('EDGE2016', { serialNumber: 'Version 15.1 (Build 32507.6)', msExchCurrentServerRoles: '64' }),
      server('EVIL\nsites:', {
        serialNumber: 'Version 15.1 (Build 32507.6)',
        msExchCurrentServerRoles: '16439',
      }),
      vdir('EX2016-LON1', 'owa (Default Web Site)', 'msExchOWAVirtualDirectory', {
        msExchInternalHostName: 'https://ex2016-lon1.contoso.local/owa',
        msExchExternalHostName: 'https://mail.contoso.com/owa',
      }),
      vdir('EX2016-LON1', 'Rpc (Default Web Site)', 'msExchRpcHttpVirtualDirectory', {
        msExchExternalHostName: 'mail.contoso.com',
        msExchInternalHostName: 'ex2016-lon1.contoso.local',
      }),
      vdir('EX2016-LON1', 'EWS (Default Web Site)', 'msExchWebServicesVirtualDirectory', {
        msExchInternalHostName: 'ex2016-lon1/EWS/Exchange.asmx',
        msExchExternalHostName: 'https://mail.contoso.com/EWS/Exchange.asmx',
      }),
      vdir('GONE', 'owa (Default Web Site)', 'msExchOWAVirtualDirectory', {
        msExchInternalHostName: 'https://gone.contoso.local/owa',
      }),
      entry(
        `CN=DB1,CN=Databases,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,${org}`,
        {
          objectClass: 'msExchPrivateMDB',
          cn: 'DB1',
          msExchOwningServer: `CN=EX2016-LON1,${servers}`,
        },
      ),
      accepted('contoso.com', '4'),
      accepted('partner.example', '1'),
      accepted('contoso.mail.onmicrosoft.com', '2'),
    ],
    mailboxes: [
      entry('CN=Zoe,CN=Users,DC=contoso,DC=local', {
        proxyAddresses: ['smtp:zoe.z@contoso.com', 'SMTP:Zoe@Contoso.com', 'X500:/o=Contoso/cn=zoe'],
        displayName: 'Zoe',
        userPrincipalName: 'zoe@contoso.local',
        homeMDB: `CN=DB1,CN=Databases,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,${org}`,
      }),
      entry('CN=Adam,CN=Users,DC=contoso,DC=local', {
        mail: 'adam@contoso.com',
        displayName: 'Adam\r\nsites: []',
        homeMDB: `CN=DB1,CN=Databases,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,${org}`,
      }),
    ],
  };
}

describe('from-ad: AD entries -> the organisation', () => {
  it('servers: build from serialNumber (less 30000) or msExchVersion, roles, site, fqdn in lower case', () => {
    const o = organisationFromAd(snapshot());
    assert.deepEqual(
      o.servers.map((s) => [s.name, s.build, s.roles, s.site, s.fqdn]),
      [
        ['CAS2010-LON1', { major: 14, minor: 0 }, ['ClientAccess'], 'London', 'cas2010-lon1.contoso.local'],
        ['EDGE2016', { major: 15, minor: 1, build: 2507, revision: 6 }, ['Edge'], undefined, 'edge2016'],
        [
          'EX2016-LON1',
          { major: 15, minor: 1, build: 2507, revision: 6 },
          ['ClientAccess', 'Mailbox', 'UnifiedMessaging', 'HubTransport'],
          'London',
          'ex2016-lon1.contoso.local',
        ],
      ],
    );
    // Sites without a server are noted, not kept.
    assert.deepEqual(o.sites, [{ name: 'London' }]);
    assert.ok(o.notes.some((n) => /without an Exchange server.*Default-First-Site-Name/.test(n.message)));
  });

  it('roles: 2007/2010 ClientAccess is bit 4; from 2013 it is Cafe (1), bit 4 being the Mailbox back end', () => {
    assert.deepEqual(serverRoles(6, { major: 8, minor: 3 }), ['ClientAccess', 'Mailbox']);
    assert.deepEqual(serverRoles(54, { major: 15, minor: 0 }), [
      'Mailbox',
      'UnifiedMessaging',
      'HubTransport',
    ]);
    assert.deepEqual(serverRoles(16385, { major: 15, minor: 0 }), ['ClientAccess']);
  });

  it('virtual directories, Outlook Anywhere host names, unusable URLs and orphans noted', () => {
    const o = organisationFromAd(snapshot());
    const ex = o.servers.find((s) => s.name === 'EX2016-LON1');
    assert.deepEqual(
      ex?.virtualDirectories.map((v) => [
        v.protocol,
        v.identity,
        v.internalUrl,
        v.externalUrl,
        v.outlookAnywhere,
      ]),
      [
        [
          'owa',
          'EX2016-LON1\\owa (Default Web Site)',
          'https://ex2016-lon1.contoso.local/owa',
          'https://mail.contoso.com/owa',
          undefined,
        ],
        [
          'rpc',
          'EX2016-LON1\\Rpc (Default Web Site)',
          undefined,
          undefined,
          { externalHostname: 'mail.contoso.com', internalHostname: 'ex2016-lon1.contoso.local' },
        ],
        [
          'ews',
          'EX2016-LON1\\EWS (Default Web Site)',
          undefined,
          'https://mail.contoso.com/EWS/Exchange.asmx',
          undefined,
        ],
      ],
    );
    assert.ok(
      o.notes.some((n) =>
        /msExchInternalHostName "ex2016-lon1\/EWS\/Exchange\.asmx" is not an http\(s\) URL/.test(n.message),
      ),
    );
    assert.ok(
      o.notes.some((n) => n.source.includes('CN=GONE') && /not under an Exchange server/.test(n.message)),
    );
    assert.deepEqual(
      o.databases.map((d) => [d.name, d.server]),
      [['DB1', 'EX2016-LON1']],
    );
  });

  it('accepted domains: the type from the flags, and the default', () => {
    assert.deepEqual(organisationFromAd(snapshot()).acceptedDomains, [
      { domain: 'contoso.com', type: 'Authoritative', isDefault: true },
      { domain: 'partner.example', type: 'ExternalRelay', isDefault: false },
      { domain: 'contoso.mail.onmicrosoft.com', type: 'InternalRelay', isDefault: false },
    ]);
  });

  it('mailboxes: the SMTP: address, smtp: aliases, database and server; by address', () => {
    const o = organisationFromAd(snapshot());
    assert.deepEqual(o.mailboxes, [
      {
        address: 'zoe@contoso.com',
        aliases: ['zoe.z@contoso.com'],
        displayName: 'Zoe',
        upn: 'zoe@contoso.local',
        database: 'DB1',
        server: 'EX2016-LON1',
      },
    ]);
  });

  it('a line break in a value leaves its object out: the written estate has no line the directory wrote', () => {
    const o = organisationFromAd(snapshot());
    assert.equal(
      o.servers.some((s) => s.name.includes('EVIL')),
      false,
    );
    assert.equal(
      o.mailboxes?.some((m) => m.address === 'adam@contoso.com'),
      false,
    );
    assert.equal(o.notes.filter((n) => /control character: left out/.test(n.message)).length, 2);
    assert.ok(o.notes.every((n) => !/[\r\n]/.test(n.source + n.message)));
    const { yaml } = writeEstate(o, ['ldaps://dc1.contoso.local']);
    assert.doesNotMatch(yaml, /^sites: \[\]$/m);
    const { estate } = parseEstate(yaml, 'contoso.yaml');
    assert.deepEqual(
      estate.users.map((u) => u.address),
      ['zoe@contoso.com'],
    );
    assert.deepEqual(
      estate.sites.map((s) => s.name),
      ['London'],
    );
  });
});
