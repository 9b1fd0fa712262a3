/**
 * `coexist lab --directory ad`: the lab's users in a throwaway Samba Active Directory domain controller
 * (samba.ts, docs/lab.md §5) loaded with the estate as Exchange would have written it, and one LDAP
 * directory on it (LDAPS with the DC's lab CA, the service account, the domain root as the base) that every
 * server of the lab shares, as with slapd (`--directory ldap`).
 */
import type { EstateIndex } from '../../core/estate/estate-index.ts';
import { LdapDirectory } from '../../directory/ldap-directory.ts';
import type { SambaAd } from './samba.ts';
import { sambaDirectorySettings, startSambaAd } from './samba.ts';

/** Start the DC for `index`'s estate (every user with `userPassword`) and the directory that asks it. */
export async function startLabAd(
  index: EstateIndex,
  userPassword: string,
): Promise<{ samba: SambaAd; directory: LdapDirectory }> {
  const samba = await startSambaAd({ estate: index.estate, password: userPassword });
  try {
    // Only a name: the password itself is handed over below, never written anywhere.
    const options = sambaDirectorySettings(samba, { passwordEnv: 'COEXIST_LAB_AD_PASSWORD' });
    const directory = new LdapDirectory(index, options, {
      bindPassword: samba.serviceAccount.password,
      ca: samba.caPem,
    });
    return { samba, directory };
  } catch (error) {
    await samba.close();
    throw error;
  }
}
