/**
 * Kerberos in the lab on Active Directory (docs/lab.md §5.6): the front ends' alternate service account (ASA)
 * on the lab's DC, as Exchange 2013+ has it. Exchange's front ends behind one namespace share one computer
 * account holding the namespace's service principal names (`HTTP/mail.<domain>`, `HTTP/autodiscover.<domain>`),
 * and every front end has its keys (Exchange: `RollAlternateServiceAccountPassword.ps1`); here the account is
 * written over LDAPS as the administrator and its keys exported into a keytab with Samba's own `samba-tool
 * domain exportkeytab`, the file `coexist serve --keytab` takes (docs/operations.md "Kerberos").
 */
import { randomBytes } from 'node:crypto';
import { appendFile, chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Attribute } from 'ldapts';
import { run } from '../daemon.ts';
import type { SambaAd } from './samba.ts';
import { adminClient, unicodePwd } from './samba.ts';

/** The ASA as written: its account, its SPNs and the keytab holding their keys. */
export interface AlternateServiceAccount {
  /** `EXCH-ASA$`, a computer account as Exchange's documentation creates it. */
  readonly sAMAccountName: string;
  readonly dn: string;
  /** `HTTP/<host>` for every host given. */
  readonly spns: readonly string[];
  /** The keytab (mode 0600) with the keys of every SPN, in the DC's temp dir. */
  readonly keytab: string;
  /** The realm the SPNs are in (`<SPN>@<realm>`). */
  readonly realm: string;
}

/** AES128 and AES256 (msDS-SupportedEncryptionTypes 0x18): no RC4 tickets for the front ends. */
const aesOnly = '24';

/**
 * Create the ASA on `dc` for the namespace's `hosts` (lower case, no port) and export its keys. Also maps the
 * hosts to the realm in the DC's krb5.conf (`[domain_realm]`), so that a client's `HTTP@<host>` is found
 * in it without DNS. The DC must run with `kerberos`.
 */
export async function createAlternateServiceAccount(
  dc: SambaAd,
  hosts: readonly string[],
  o: { readonly sambaToolPath?: string; readonly name?: string } = {},
): Promise<AlternateServiceAccount> {
  if (!dc.kerberos) throw new Error('createAlternateServiceAccount: the DC was started without its KDC');
  const unique = [...new Set(hosts.map((h) => h.toLowerCase()))];
  if (unique.length === 0) throw new Error('createAlternateServiceAccount: no host names');
  const name = o.name ?? 'EXCH-ASA';
  const sAMAccountName = `${name}$`;
  const dn = `CN=${name},CN=Computers,${dc.ad.domain.dn}`;
  const spns = unique.map((h) => `HTTP/${h}`);
  // Nobody logs on with it: a long random password nobody keeps, the keys are what the front ends hold.
  const password = randomBytes(32).toString('base64url');
  const client = await adminClient(
    dc.ldapsUrl,
    dc.caPem,
    dc.administrator.upn,
    dc.administrator.password,
    30_000,
  );
  try {
    await client.add(dn, [
      new Attribute({ type: 'objectClass', values: ['computer'] }),
      new Attribute({ type: 'sAMAccountName', values: [sAMAccountName] }),
      // WORKSTATION_TRUST_ACCOUNT: a computer account, enabled.
      new Attribute({ type: 'userAccountControl', values: ['4096'] }),
      new Attribute({ type: 'servicePrincipalName', values: spns }),
      new Attribute({ type: 'msDS-SupportedEncryptionTypes', values: [aesOnly] }),
      new Attribute({ type: 'description', values: ['alternate service account of the front ends'] }),
      new Attribute({ type: 'unicodePwd', values: [unicodePwd(password)] }),
    ]);
  } catch (error) {
    throw new Error(
      `Samba AD: adding the alternate service account ${dn} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  } finally {
    await client.unbind().catch(() => undefined);
  }
  const keytab = join(dc.dir, 'private', 'front-ends.keytab');
  await rm(keytab, { force: true });
  for (const spn of spns) {
    const exported = await run(o.sambaToolPath ?? '/usr/bin/samba-tool', [
      'domain',
      'exportkeytab',
      keytab,
      `--principal=${spn}`,
      '-s',
      dc.confFile,
    ]);
    if (exported.code !== 0) {
      throw new Error(
        `samba-tool domain exportkeytab ${spn} failed (exit ${String(exported.code)}): ${exported.output.trim().slice(-1000)}`,
      );
    }
  }
  await chmod(keytab, 0o600);
  await appendFile(
    dc.krb5ConfFile,
    ['[domain_realm]', ...unique.map((h) => `  ${h} = ${dc.realm}`), ''].join('\n'),
  );
  return { sAMAccountName, dn, spns, keytab, realm: dc.realm };
}

/**
 * `kinit <principal>` against the DC, the password on stdin, into the credential cache `ccache` (a file): what
 * a domain-joined client has after logon. Rejects with kinit's own words when the KDC refuses.
 */
export async function kinit(
  dc: SambaAd,
  principal: string,
  password: string,
  ccache: string,
  o: { readonly kinitPath?: string } = {},
): Promise<void> {
  const done = await run(o.kinitPath ?? '/usr/bin/kinit', [principal], {
    env: { ...process.env, KRB5_CONFIG: dc.krb5ConfFile, KRB5CCNAME: `FILE:${ccache}` },
    input: `${password}\n`,
  });
  if (done.code !== 0)
    throw new Error(`kinit ${principal} failed (exit ${String(done.code)}): ${done.output.trim()}`);
}
