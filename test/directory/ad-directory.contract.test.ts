/**
 * LdapDirectory against a real Active Directory: the lab's Samba AD domain controller (src/lab/samba,
 * docs/lab.md §5) holding the o365info estate with Exchange's schema subset. The Directory contract over
 * LDAPS and StartTLS, then what only AD shows: UPN and DOMAIN\user binds, proxyAddresses matching,
 * homeMDB -> database -> owning server, a mailbox moved to another database, a wrong service password,
 * an unreachable DC and a DC stopped mid-run. Samba must be installed (npm run setup): without it these
 * tests fail, they never skip. One DC serves the whole file.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { Attribute, Change, Client, InvalidCredentialsError } from 'ldapts';
import { CachedDirectory } from '../../src/directory/directory-cache.ts';
import { DirectoryUnavailableError, LdapDirectory } from '../../src/directory/ldap-directory.ts';
import type { LdapDirectoryOptions } from '../../src/directory/ldap-settings.ts';
import { randomLabPassword } from '../../src/lab/slapd.ts';
import { sambaDirectorySettings, startSambaAd, type SambaAd } from '../../src/lab/samba/samba.ts';
import { contractEstateIndex, demoPassword, directoryContract } from '../support/directory.contract.ts';

const index = contractEstateIndex();
// Mixed classes of characters: AD's password policy is off in the lab, but a real one would want them.
const servicePassword = `Svc-${randomLabPassword()}-9`;

let started: Promise<SambaAd> | undefined;
/** The file's one DC, started by the first test that needs it. */
const dc = (): Promise<SambaAd> =>
  (started ??= startSambaAd({
    estate: index.estate,
    password: demoPassword,
    servicePassword,
    maxRuntimeSeconds: 1800,
  }));
after(async () => {
  await (await started)?.close();
});

/** Options for a directory on the DC (its service account, CA, domain root, impersonation groups). */
function options(d: SambaAd, url: string, extra: Partial<LdapDirectoryOptions> = {}): LdapDirectoryOptions {
  return {
    ...sambaDirectorySettings(d, { passwordEnv: 'COEXIST_TEST_AD_PASSWORD' }),
    url,
    timeoutMs: 5000,
    ...extra,
  };
}

/** A raw LDAPS client bound as `who` (UPN, DOMAIN\user or DN). */
async function bound(d: SambaAd, who: string, password: string): Promise<Client> {
  const client = new Client({ url: d.ldapsUrl, timeout: 5000, tlsOptions: { ca: d.caPem } });
  try {
    await client.bind(who, password);
    return client;
  } catch (error) {
    await client.unbind().catch(() => undefined);
    throw error;
  }
}

const first = (value: unknown): string =>
  String(Array.isArray(value) ? (value[0] as unknown) : (value as string | undefined));

// Searched from the domain root: AD answers with continuation references to the other partitions too.
directoryContract('LdapDirectory on Samba AD, LDAPS, from the domain root', async () => {
  const d = await dc();
  const directory = new LdapDirectory(index, options(d, d.ldapsUrl), { bindPassword: servicePassword });
  return { directory, close: () => directory.close() };
});

directoryContract('LdapDirectory on Samba AD, StartTLS by name, CN=Users, msExchHomeServerName', async () => {
  const d = await dc();
  const directory = new LdapDirectory(
    index,
    options(d, d.ldapUrl, {
      baseDn: d.ad.layout.usersDn,
      tls: { ca: d.caPem, servername: d.dcName },
      mapping: { mailboxLocation: 'homeServer' },
      poolSize: 2,
    }),
    { bindPassword: servicePassword },
  );
  return { directory, close: () => directory.close() };
});

describe('Samba AD: what only Active Directory shows', () => {
  test("simple binds as the UPN, as DOMAIN\\user and as the DN; a wrong password is AD's 49 / data 52e", async () => {
    const d = await dc();
    const alice = d.ad.layout.userDn('alice@o365info.com') as string;
    for (const who of ['alice@o365info.local', 'O365INFO\\alice', 'o365info\\ALICE', alice]) {
      const client = await bound(d, who, demoPassword);
      const { searchEntries } = await client.search(alice, { scope: 'base', attributes: ['sAMAccountName'] });
      assert.equal(first(searchEntries[0]?.sAMAccountName), 'alice', who);
      await client.unbind();
    }
    await assert.rejects(bound(d, 'O365INFO\\alice', 'wrong'), (e: unknown) => {
      assert.ok(e instanceof InvalidCredentialsError, inspect(e));
      assert.match(e.message, /data 52e/);
      return true;
    });
  });

  test('proxyAddresses: smtp: finds the user whatever the case, SMTP: is the primary address', async () => {
    const d = await dc();
    const directory = new LdapDirectory(index, options(d, d.ldapsUrl), { bindPassword: servicePassword });
    const client = await bound(d, d.serviceAccount.upn, servicePassword);
    try {
      const { searchEntries } = await client.search(d.ad.domain.dn, {
        scope: 'sub',
        filter: '(proxyAddresses=smtp:BOB.JONES@O365INFO.COM)',
        attributes: ['proxyAddresses', 'mail'],
      });
      assert.equal(searchEntries.length, 1);
      assert.deepEqual([searchEntries[0]?.proxyAddresses].flat().map(String).sort(), [
        'SMTP:bob@o365info.com',
        'smtp:bob.jones@o365info.com',
      ]);
      const bob = await directory.findMailbox('Bob.Jones@o365info.com');
      assert.equal(bob?.address, 'bob@o365info.com');
      assert.deepEqual(bob.user.aliases, ['bob.jones@o365info.com']);
    } finally {
      await client.unbind();
      await directory.close();
    }
  });

  test('homeMDB -> database -> owning server -> site, as the service account reads them', async () => {
    const d = await dc();
    const client = await bound(d, d.serviceAccount.upn, servicePassword);
    try {
      for (const [address, server, site, databaseParent] of [
        ['alice@o365info.com', 'MBX2013-NY', 'New York', 'CN=Databases,'],
        [
          'carol@o365info.com',
          'MBX2007-LA',
          'Los Angeles',
          'CN=First Storage Group,CN=InformationStore,CN=MBX2007-LA,',
        ],
      ] as const) {
        const user = d.ad.layout.userDn(address) as string;
        const [entry] = (await client.search(user, { scope: 'base', attributes: ['homeMDB'] })).searchEntries;
        const homeMdb = first(entry?.homeMDB);
        assert.ok(homeMdb.toLowerCase().includes(databaseParent.toLowerCase()), homeMdb);
        const [db] = (await client.search(homeMdb, { scope: 'base', attributes: ['msExchOwningServer'] }))
          .searchEntries;
        const owner = first(db?.msExchOwningServer);
        assert.match(owner, new RegExp(`^CN=${server},CN=Servers,CN=Exchange Administrative Group`, 'i'));
        const [srv] = (
          await client.search(owner, { scope: 'base', attributes: ['msExchServerSite', 'objectClass'] })
        ).searchEntries;
        assert.match(first(srv?.msExchServerSite), new RegExp(`^CN=${site},CN=Sites,CN=Configuration,`, 'i'));
        assert.ok([srv?.objectClass].flat().includes('msExchExchangeServer'));
      }
    } finally {
      await client.unbind();
    }
  });

  test('a mailbox moved to another database routes to the new server once the cache TTL has passed', async () => {
    const d = await dc();
    let now = 0;
    const ldap = new LdapDirectory(index, options(d, d.ldapsUrl), { bindPassword: servicePassword });
    const cached = new CachedDirectory(ldap, { lookupTtlMs: 60_000, now: () => now });
    const admin = await bound(d, d.administrator.upn, d.administrator.password);
    const bob = d.ad.layout.userDn('bob@o365info.com') as string;
    const moveTo = (database: string): Promise<void> =>
      admin.modify(
        bob,
        new Change({
          operation: 'replace',
          modification: new Attribute({
            type: 'homeMDB',
            values: [d.ad.layout.databaseDn(database) as string],
          }),
        }),
      );
    try {
      assert.equal((await cached.findMailbox('bob@o365info.com'))?.server.name, 'MBX2007-NY');
      await moveTo('DB2013-NY');
      now = 59_000;
      assert.equal(
        (await cached.findMailbox('bob@o365info.com'))?.server.name,
        'MBX2007-NY',
        'within the TTL',
      );
      now = 61_000;
      const moved = await cached.findMailbox('bob@o365info.com');
      assert.equal(moved?.server.name, 'MBX2013-NY');
      assert.equal(moved.site.name, 'New York');
      assert.equal(moved.family, 'modern');
    } finally {
      await moveTo('DB2007-NY');
      await admin.unbind();
      await ldap.close();
    }
  });

  test('a wrong service password: unavailable, naming the account, never the password', async () => {
    const d = await dc();
    const wrong = 'Wrong-Service-Password-1';
    const directory = new LdapDirectory(index, options(d, d.ldapsUrl), { bindPassword: wrong });
    try {
      await assert.rejects(directory.findMailbox('alice@o365info.com'), (e: unknown) => {
        assert.ok(e instanceof DirectoryUnavailableError, inspect(e));
        assert.match(e.message, /refused the service account CN=coexist-svc,CN=Users,DC=o365info,DC=local/i);
        const text = inspect(e, { depth: 10 });
        for (const secret of [wrong, servicePassword, demoPassword]) assert.ok(!text.includes(secret), text);
        return true;
      });
    } finally {
      await directory.close();
    }
  });

  test('an unreachable DC: unavailable at once, naming its URL', async () => {
    const d = await dc();
    // The DC's own address on a port nothing listens on: the connection is refused.
    const url = `ldaps://${d.host}:1636`;
    const directory = new LdapDirectory(index, options(d, url, { connectTimeoutMs: 2000 }), {
      bindPassword: servicePassword,
    });
    try {
      await assert.rejects(directory.findMailbox('alice@o365info.com'), (e: unknown) => {
        assert.ok(e instanceof DirectoryUnavailableError, inspect(e));
        assert.ok(e.message.includes(url), e.message);
        return true;
      });
      await assert.rejects(
        directory.authenticate('O365INFO\\alice', demoPassword),
        DirectoryUnavailableError,
      );
    } finally {
      await directory.close();
    }
  });

  test(
    'a DC stopped mid-run: unavailable, never "not found"; started again, it answers',
    { timeout: 120_000 },
    async () => {
      const d = await dc();
      const directory = new LdapDirectory(index, options(d, d.ldapsUrl, { connectTimeoutMs: 2000 }), {
        bindPassword: servicePassword,
      });
      try {
        assert.equal((await directory.findMailbox('diego@o365info.com'))?.server.name, 'MBX2007-MAD');
        await d.stop();
        await assert.rejects(directory.findMailbox('diego@o365info.com'), DirectoryUnavailableError);
        await assert.rejects(
          directory.authenticate('O365INFO\\diego', demoPassword),
          DirectoryUnavailableError,
        );
        await d.start();
        assert.equal((await directory.findMailbox('diego@o365info.com'))?.server.name, 'MBX2007-MAD');
        assert.equal(
          (await directory.authenticate('O365INFO\\diego', demoPassword))?.address,
          'diego@o365info.com',
        );
      } finally {
        await directory.close();
      }
    },
  );
});
