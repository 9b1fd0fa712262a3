/**
 * `LdapDirectory.mailboxAddresses`, the sample `coexist trace --all` takes of a directory, against a real
 * slapd holding more mailbox users than one page: the first N by primary SMTP address whatever order the
 * entries come in, every mailbox user counted, entries without a mailbox (no homeMDB, the service account)
 * left out, and the same answer every time. slapd must be installed (npm run setup).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { User } from '../../src/core/estate/estate.ts';
import { estateLdapLayout, estateLdif } from '../../src/directory/estate-ldif.ts';
import { compareAddresses } from '../../src/directory/first-addresses.ts';
import { DirectoryUnavailableError, LdapDirectory } from '../../src/directory/ldap-directory.ts';
import type { LdapDirectoryOptions } from '../../src/directory/ldap-settings.ts';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import { randomLabPassword, startSlapd, type Slapd } from '../../src/lab/slapd.ts';
import { contractEstateIndex, demoPassword } from '../support/directory.contract.ts';

const index = contractEstateIndex();
const layout = estateLdapLayout(index.estate);
const servicePassword = randomLabPassword();
const ca = createLabCa();
const leaf = ca.issue(['127.0.0.1']);

/** 1 200 more mailboxes than the demo's six, written in an order that is not the address order. */
const extra: User[] = Array.from({ length: 1200 }, (_, i) => {
  const n = (i * 7919) % 1200; // a permutation of 0..1199
  const name = `${n % 2 === 0 ? 'Mover' : 'mover'}${String(n).padStart(4, '0')}`;
  return {
    address: `${name}@o365info.com`,
    displayName: name,
    aliases: [],
    mailboxServer: 'MBX2007-NY',
    database: 'DB2007-NY',
  };
});

/** A mail-enabled user without a mailbox (no homeMDB): a directory has many; none is a mailbox to trace. */
const noMailbox = [
  `dn: cn=Mail User,${layout.usersDn}`,
  'objectClass: user',
  'cn: Mail User',
  'mail: aaa-mail-user@o365info.com',
  'proxyAddresses: SMTP:aaa-mail-user@o365info.com',
  '',
].join('\n');

/** A directory on `url` with the layout's service account (its password is handed over, never read). */
const options = (url: string): LdapDirectoryOptions => ({
  url,
  tls: { ca: ca.certPem },
  baseDn: layout.usersDn,
  bindDn: layout.serviceAccountDn,
  bindPasswordEnv: 'COEXIST_TEST_LDAP_PASSWORD',
});

describe('LdapDirectory.mailboxAddresses (slapd, more users than a page)', () => {
  let slapd: Slapd;
  let directory: LdapDirectory;
  const all = [...index.estate.users, ...extra].map((u) => u.address).sort(compareAddresses);

  before(async () => {
    const estate = {
      ...index.estate,
      users: [...extra.slice(0, 600), ...index.estate.users, ...extra.slice(600)],
    };
    slapd = await startSlapd({
      ldif: `${estateLdif(estate, { password: demoPassword, servicePassword })}\n${noMailbox}`,
      suffix: layout.suffix,
      tls: { certPem: leaf.certPem, keyPem: leaf.keyPem },
    });
    directory = new LdapDirectory(index, options(slapd.url), {
      bindPassword: servicePassword,
      ca: ca.certPem,
    });
  });
  after(async () => {
    await directory?.close();
    await slapd?.close();
  });

  test('the first N by primary SMTP address, and how many mailbox users there are', async () => {
    const first = await directory.mailboxAddresses(10);
    assert.deepEqual(first, { first: all.slice(0, 10), total: 1206 });
    assert.equal(first.first[0], 'alice@o365info.com');
    assert.deepEqual(await directory.mailboxAddresses(10), first, 'the same sample every time');
  });

  test('a directory whose size limit cuts the listing: unavailable, saying where the limit is, never a wrong sample', async () => {
    const limited = await startSlapd({
      ldif: estateLdif(
        { ...index.estate, users: [...index.estate.users, ...extra] },
        { password: demoPassword, servicePassword },
      ),
      suffix: layout.suffix,
      tls: { certPem: leaf.certPem, keyPem: leaf.keyPem },
      pagedSearchLimit: 500,
    });
    const cut = new LdapDirectory(index, options(limited.url), {
      bindPassword: servicePassword,
      ca: ca.certPem,
    });
    try {
      await assert.rejects(cut.mailboxAddresses(10), (e: unknown) => {
        assert.ok(e instanceof DirectoryUnavailableError, String(e));
        assert.match(
          e.message,
          /^LDAP listing at ldap:\/\/127\.0\.0\.1:\d+ was stopped by the directory's size limit after 500 entries: let cn=coexist-svc,cn=Users,dc=o365info,dc=com page through every user \(OpenLDAP: limits dn\.exact="cn=coexist-svc,cn=Users,dc=o365info,dc=com" size\.prtotal=unlimited\)$/,
        );
        return true;
      });
      // Lookups are single entries: the limit does not touch them.
      assert.equal((await cut.findMailbox('carol@o365info.com'))?.server.name, 'MBX2007-LA');
    } finally {
      await cut.close();
      await limited.close();
    }
  });

  test('a limit above the count gives every mailbox user, in address order', async () => {
    const { first, total } = await directory.mailboxAddresses(5000);
    assert.equal(total, 1206);
    assert.deepEqual(first, all);
    assert.ok(!first.includes('aaa-mail-user@o365info.com'));
  });
});
