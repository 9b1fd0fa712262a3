/**
 * The lab's Samba AD domain controller itself (src/lab/samba, docs/lab.md §5): Exchange's schema subset
 * with its OIDs, every fact of the o365info estate where docs/lab.md §5.4 says it is (read back as the
 * service account, as `coexist discover` will), loopback only, TLS by name and by address, two DCs at
 * once from one template, and nothing left running after close. Samba must be installed (npm run setup):
 * without it these tests fail, they never skip.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { Client, type Entry } from 'ldapts';
import { protocols } from '../../src/core/protocols/protocol.ts';
import { randomLabPassword } from '../../src/lab/slapd.ts';
import {
  adDomainOf,
  msExchVersionOf,
  serialNumberOf,
  serverRolesOf,
  virtualDirectoryNames,
} from '../../src/lab/samba/ad-estate.ts';
import {
  exchangeAttributes,
  exchangeClasses,
  virtualDirectoryClasses,
} from '../../src/lab/samba/exchange-schema.ts';
import { SambaNotInstalledError, startSambaAd, type SambaAd } from '../../src/lab/samba/samba.ts';
import { contractEstateIndex, demoPassword } from '../support/directory.contract.ts';

const index = contractEstateIndex();
const estate = index.estate;
const servicePassword = `Svc-${randomLabPassword()}-9`;

const values = (entry: Entry | undefined, attribute: string): string[] => {
  const key = Object.keys(entry ?? {}).find((k) => k.toLowerCase() === attribute.toLowerCase());
  const v = key === undefined ? [] : (entry as Entry)[key];
  return [v ?? []].flat().map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
};
const one = (entry: Entry | undefined, attribute: string): string | undefined => values(entry, attribute)[0];

/**
 * The local addresses of the TCP sockets `pid` listens on and of its UDP sockets, from /proc (the
 * process's socket inodes matched in /proc/net/tcp and udp; IPv6 ones named as such).
 */
function boundAddresses(pid: number): string[] {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return [/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? []].flat();
      } catch {
        return [];
      }
    }),
  );
  const ipv4 = (hex: string): string =>
    (hex.match(/../g) ?? [])
      .map((b) => parseInt(b, 16))
      .reverse()
      .join('.');
  const found: string[] = [];
  for (const table of ['tcp', 'udp', 'tcp6', 'udp6']) {
    for (const line of readFileSync(`/proc/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9] as string)) continue;
      if (table.startsWith('tcp') && f[3] !== '0A') continue; // TCP: listening sockets only
      const [addr, port] = (f[1] as string).split(':');
      found.push(
        table.endsWith('6')
          ? `ipv6 ${addr}:${parseInt(port ?? '0', 16)}`
          : `${ipv4(addr ?? '')}:${parseInt(port ?? '0', 16)}`,
      );
    }
  }
  return found;
}

describe('Samba AD domain controller (src/lab/samba)', () => {
  let dc: SambaAd;
  let reader: Client;

  before(async () => {
    dc = await startSambaAd({ estate, password: demoPassword, servicePassword, maxRuntimeSeconds: 1800 });
    reader = new Client({ url: dc.ldapsUrl, timeout: 10_000, tlsOptions: { ca: dc.caPem } });
    // Everything below is read as the service account, not the administrator (docs/lab.md §5.3: without
    // the classes' defaultSecurityDescriptor it would see nothing of the configuration).
    await reader.bind(dc.serviceAccount.upn, servicePassword);
  });
  after(async () => {
    await reader?.unbind().catch(() => undefined);
    await dc?.close();
  });

  const search = async (base: string, filter: string, attributes: string[] = ['*']): Promise<Entry[]> =>
    (await reader.search(base, { scope: 'sub', filter, attributes })).searchEntries;

  test("the domain is the estate's: o365info.local, NetBIOS O365INFO; provisioning and start times (printed)", (t) => {
    assert.deepEqual(adDomainOf(estate), {
      dnsName: 'o365info.local',
      netbios: 'O365INFO',
      dn: 'DC=o365info,DC=local',
    });
    assert.equal(dc.ad.domain.dn, 'DC=o365info,DC=local');
    assert.equal(dc.dcName, 'dc1.o365info.local');
    t.diagnostic(
      `template ${dc.timings.templateMs === 0 ? 'reused' : `built in ${Math.round(dc.timings.templateMs)} ms`}; start to first LDAPS answer ${Math.round(dc.timings.startMs)} ms`,
    );
  });

  test("Exchange's attributes and classes are in the schema with their names and OIDs", async () => {
    const schemaDn = `CN=Schema,${dc.ad.configurationDn}`;
    for (const a of exchangeAttributes) {
      const [entry] = await search(schemaDn, `(lDAPDisplayName=${a.name})`, ['attributeID', 'cn']);
      assert.equal(one(entry, 'attributeID'), a.oid, a.name);
      assert.equal(one(entry, 'cn'), a.cn, a.name);
    }
    for (const c of exchangeClasses) {
      const [entry] = await search(schemaDn, `(lDAPDisplayName=${c.name})`, ['governsID', 'subClassOf']);
      assert.equal(one(entry, 'governsID'), c.oid, c.name);
      assert.equal(one(entry, 'subClassOf'), c.subClassOf, c.name);
    }
  });

  test('servers: version (serialNumber, msExchVersion), roles, AD site, FQDN, as Exchange writes them', async () => {
    const found = await search(dc.ad.configurationDn, '(objectCategory=msExchExchangeServer)');
    assert.equal(found.length, estate.sites.flatMap((s) => s.servers).length);
    for (const site of estate.sites) {
      for (const server of site.servers) {
        const entry = found.find((e) => one(e, 'cn') === server.name);
        assert.ok(entry, server.name);
        assert.equal(entry.dn.toLowerCase(), dc.ad.layout.serverDn(server.name).toLowerCase());
        assert.equal(one(entry, 'serialNumber'), serialNumberOf(server.version));
        assert.match(one(entry, 'serialNumber') ?? '', /^Version \d+\.\d+ \(Build 3\d+\.\d+\)$/);
        assert.equal(one(entry, 'msExchVersion'), msExchVersionOf(server.version));
        assert.equal(Number(one(entry, 'msExchCurrentServerRoles')), serverRolesOf(server));
        assert.equal(
          one(entry, 'msExchServerSite')?.toLowerCase(),
          dc.ad.layout.siteDn(site.name).toLowerCase(),
        );
        assert.ok(values(entry, 'networkAddress').includes(`ncacn_ip_tcp:${server.fqdn}`));
        assert.equal(one(entry, 'dNSHostName'), server.fqdn);
      }
    }
    assert.equal(serialNumberOf(2007), 'Version 8.3 (Build 30083.6)');
  });

  test("databases: each with its owning server; 2007 in the server's storage group, 2010+ under CN=Databases", async () => {
    const found = await search(dc.ad.configurationDn, '(objectCategory=msExchPrivateMDB)');
    const expected = estate.sites
      .flatMap((s) => s.servers)
      .flatMap((s) => s.databases.map((db) => [db, s] as const));
    assert.equal(found.length, expected.length);
    for (const [db, server] of expected) {
      const entry = found.find((e) => one(e, 'cn') === db);
      assert.ok(entry, db);
      assert.equal(
        one(entry, 'msExchOwningServer')?.toLowerCase(),
        dc.ad.layout.serverDn(server.name).toLowerCase(),
      );
      const parent =
        server.version === 2007
          ? `CN=First Storage Group,CN=InformationStore,CN=${server.name},`
          : 'CN=Databases,';
      assert.ok(entry.dn.toLowerCase().includes(parent.toLowerCase()), entry.dn);
    }
  });

  test('virtual directories: every URL of every CAS, internal and external (Outlook Anywhere: host names)', async () => {
    for (const server of estate.sites.flatMap((s) => s.servers)) {
      for (const protocol of protocols) {
        const urls = server.urls[protocol];
        const dn = `CN=${virtualDirectoryNames[protocol]},CN=HTTP,CN=Protocols,${dc.ad.layout.serverDn(server.name)}`;
        const [entry] = (
          await reader
            .search(dn, {
              scope: 'base',
              attributes: ['objectClass', 'msExchInternalHostName', 'msExchExternalHostName'],
            })
            .catch(() => ({ searchEntries: [] as Entry[] }))
        ).searchEntries;
        if (urls === undefined) {
          assert.equal(entry, undefined, `${server.name} ${protocol}`);
          continue;
        }
        assert.ok(entry, `${server.name} ${protocol}`);
        assert.ok(values(entry, 'objectClass').includes(virtualDirectoryClasses[protocol]));
        const form = (url: string | undefined): string | undefined =>
          url === undefined ? undefined : protocol === 'rpc' ? new URL(url).hostname : url;
        assert.equal(
          one(entry, 'msExchInternalHostName'),
          form(urls.internal),
          `${server.name} ${protocol} internal`,
        );
        assert.equal(
          one(entry, 'msExchExternalHostName'),
          form(urls.external),
          `${server.name} ${protocol} external`,
        );
      }
    }
    const scps = await search(
      dc.ad.configurationDn,
      '(&(objectClass=serviceConnectionPoint)(keywords=77378F46-2C66-4aa9-A6A6-3E7A48B19596))',
    );
    const withAutodiscover = estate.sites.flatMap((s) =>
      s.servers.filter((x) => x.urls.autodiscover?.internal).map((x) => [x, s.name] as const),
    );
    assert.equal(scps.length, withAutodiscover.length);
    for (const [server, site] of withAutodiscover) {
      const scp = scps.find((e) => one(e, 'cn') === server.name);
      assert.equal(one(scp, 'serviceBindingInformation'), server.urls.autodiscover?.internal);
      assert.ok(values(scp, 'keywords').includes(`Site=${site}`));
    }
  });

  test('sites, the internal networks as subnets, and the accepted domains', async () => {
    const sites = await search(`CN=Sites,${dc.ad.configurationDn}`, '(objectClass=site)', ['cn']);
    for (const s of estate.sites)
      assert.ok(
        sites.some((e) => one(e, 'cn') === s.name),
        s.name,
      );
    const subnets = await search(`CN=Subnets,CN=Sites,${dc.ad.configurationDn}`, '(objectClass=subnet)', [
      'cn',
    ]);
    assert.deepEqual(subnets.map((e) => one(e, 'cn')).sort(), [...estate.internalNetworks].sort());
    const accepted = await search(dc.ad.organizationDn, '(objectClass=msExchAcceptedDomain)');
    assert.deepEqual(
      accepted.map((e) => [one(e, 'msExchAcceptedDomainName'), one(e, 'msExchAcceptedDomainFlags')]).sort(),
      [...estate.domains.map((d) => [d, '0']), ...estate.remoteDomains.map((r) => [r.domain, '2'])].sort(),
    );
  });

  test('users as Exchange mails them: UPN, sAMAccountName, addresses, legacyExchangeDN, mailbox GUID, enabled', async () => {
    for (const u of estate.users) {
      const [entry] = await search(dc.ad.layout.usersDn, `(mail=${u.address})`);
      assert.ok(entry, u.address);
      assert.equal(one(entry, 'userPrincipalName'), u.upn ?? u.address);
      assert.equal(`O365INFO\\${one(entry, 'sAMAccountName') ?? ''}`.toLowerCase(), u.login?.toLowerCase());
      assert.match(
        one(entry, 'legacyExchangeDN') ?? '',
        /^\/o=O365info\/ou=Exchange Administrative Group \(FYDIBOHF23SPDLT\)\/cn=Recipients\/cn=/,
      );
      assert.match(
        one(entry, 'msExchHomeServerName') ?? '',
        new RegExp(`/cn=Servers/cn=${u.mailboxServer}$`),
      );
      const guid = (entry as Entry).msExchMailboxGuid;
      assert.equal(Buffer.isBuffer(guid) ? guid.length : 0, 16);
      // NORMAL_ACCOUNT, not disabled.
      assert.equal(Number(one(entry, 'userAccountControl')) & 0x2, 0);
    }
  });

  test('loopback only: every socket of the DC is on its own 127.x address; TLS verifies by name and by address', async () => {
    const pid = dc.pid as number;
    const addresses = boundAddresses(pid);
    assert.ok(addresses.length >= 4, addresses.join(' '));
    for (const a of addresses) assert.ok(a.startsWith(`${dc.host}:`), `${a} is not on ${dc.host}`);
    for (const servername of [dc.dcName, undefined]) {
      const socket = connect({
        host: dc.host,
        port: 636,
        ca: dc.caPem,
        ...(servername ? { servername } : {}),
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve).once('error', reject);
      });
      assert.equal(socket.authorized, true);
      socket.destroy();
    }
  });

  test('two DCs at once from one template, each on its own address; closed, nothing is left', async () => {
    const other = await startSambaAd({ estate, password: demoPassword, maxRuntimeSeconds: 1800 });
    const pid = other.pid as number;
    try {
      assert.notEqual(other.host, dc.host);
      assert.equal(other.timings.templateMs, 0, 'the template was reused');
      const client = new Client({ url: other.ldapsUrl, timeout: 10_000, tlsOptions: { ca: other.caPem } });
      await client.bind('O365INFO\\carol', demoPassword);
      await client.unbind();
    } finally {
      await other.close();
    }
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.equal(existsSync(other.dir), false);
  });

  test('missing Samba, or an address that is not a loopback of its own: clear errors', async () => {
    await assert.rejects(
      startSambaAd({ estate, password: demoPassword, sambaPath: '/nonexistent/samba' }),
      (e: unknown) => e instanceof SambaNotInstalledError && /apt-get install .*samba/.test(e.message),
    );
    for (const host of ['127.0.0.1', '10.0.0.5', 'localhost']) {
      await assert.rejects(
        startSambaAd({ estate, password: demoPassword, host }),
        /loopback address of its own/,
      );
    }
  });
});
