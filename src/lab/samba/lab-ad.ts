/**
 * `coexist lab --directory ad`: the lab's users in a throwaway Samba Active Directory domain controller
 * (samba.ts, docs/lab.md §5) loaded with the estate as Exchange would have written it, and one LDAP
 * directory on it (LDAPS with the DC's lab CA, the service account, the domain root as the base) that every
 * server of the lab shares, as with slapd (`--directory ldap`).
 *
 * With a domain to verify it, the lab's servers also offer Windows authentication as Exchange's virtual
 * directories do by default (`labAuthentication`), and those that offer it verify NTLM on the DC through one
 * pool of `ntlm_auth` helpers (ntlm-verifier.ts, docs/lab.md §5.5).
 */
import type { Estate, Server } from '../../core/estate/estate.ts';
import type { EstateIndex } from '../../core/estate/estate-index.ts';
import { indexEstate } from '../../core/estate/estate-index.ts';
import type { Protocol } from '../../core/protocols/protocol.ts';
import { LdapDirectory } from '../../directory/ldap-directory.ts';
import type { Logger } from '../../observability/log.ts';
import { KerberosAcceptor } from '../../dataplane/kerberos-acceptor.ts';
import type { AlternateServiceAccount } from './kerberos.ts';
import { createAlternateServiceAccount } from './kerberos.ts';
import { NtlmVerifier } from './ntlm-verifier.ts';
import type { SambaAd } from './samba.ts';
import { sambaDirectorySettings, startSambaAd } from './samba.ts';

type Authentication = NonNullable<Server['authentication']>;

/**
 * What a virtual directory offers when the estate file says nothing, in the lab on Active Directory:
 * Exchange's defaults for Windows authentication (on for Autodiscover, EWS, OAB and MAPI/HTTP; NTLM for
 * Outlook Anywhere, Negotiate too from 2013), with Basic kept on everywhere so that every Basic client and
 * test works as on the other directories. ActiveSync, OWA and ECP stay Basic (forms) only, as in Exchange.
 */
function defaultMethods(server: Server, protocol: Protocol): Authentication[Protocol] {
  switch (protocol) {
    case 'autodiscover':
    case 'ews':
    case 'oab':
    case 'mapi':
      return ['basic', 'ntlm', 'negotiate'];
    case 'rpc':
      return server.version >= 2013 ? ['basic', 'ntlm', 'negotiate'] : ['basic', 'ntlm'];
    default:
      return undefined;
  }
}

/** The protocols a server has a virtual directory for: its URLs; every one on a 2013+ mailbox server (444). */
function virtualDirectories(server: Server): Protocol[] {
  const all: Protocol[] = ['autodiscover', 'activesync', 'ews', 'owa', 'ecp', 'rpc', 'mapi', 'oab'];
  if (server.version >= 2013 && server.roles.includes('mailbox')) return all;
  return all.filter((p) => server.urls[p] !== undefined);
}

/** A server's authentication in the lab on AD: the estate file's when it says, else Exchange's defaults. */
export function labServerAuthentication(server: Server): Authentication | undefined {
  if (server.authentication !== undefined) return server.authentication;
  const out: Partial<Record<Protocol, readonly ('basic' | 'ntlm' | 'negotiate')[]>> = {};
  for (const p of virtualDirectories(server)) {
    const methods = defaultMethods(server, p);
    if (methods !== undefined) out[p] = methods;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Whether `server` offers Windows authentication (NTLM or Negotiate) on some virtual directory. */
export function offersWindowsAuth(server: Server): boolean {
  return Object.values(server.authentication ?? {}).some(
    (methods) => methods?.includes('ntlm') === true || methods?.includes('negotiate') === true,
  );
}

/**
 * The lab's estate on Active Directory: every server with its authentication (`labServerAuthentication`).
 * Routing does not read authentication, so every flow and trace is the same as the file's.
 */
export function labAuthentication(index: EstateIndex): EstateIndex {
  const estate: Estate = {
    ...index.estate,
    sites: index.estate.sites.map((site) => ({
      ...site,
      servers: site.servers.map((s) => {
        const authentication = labServerAuthentication(s);
        return authentication === undefined ? s : { ...s, authentication };
      }),
    })),
  };
  return indexEstate(estate);
}

/** What `startLabAd` starts. */
export interface LabAd {
  readonly samba: SambaAd;
  readonly directory: LdapDirectory;
  /** NTLM verified on the DC, when some server offers Windows authentication. */
  readonly windowsAuth?: NtlmVerifier;
  /**
   * The front ends' alternate service account and the acceptor of its keytab (docs/lab.md §5.6), when a
   * namespace is served by a 2013+ front end that offers Negotiate; `kerberosFrontEnds` names those servers.
   */
  readonly asa?: AlternateServiceAccount;
  readonly kerberos?: KerberosAcceptor;
  readonly kerberosFrontEnds?: ReadonlySet<string>;
}

/**
 * The namespaces' host names the ASA holds and the servers that get its keytab: those served by a 2013+ front
 * end that offers Negotiate (Exchange's ASA is the 2013+ front ends'; a legacy CAS has its own SPNs).
 */
export function kerberosNamespaces(index: EstateIndex): { hosts: string[]; frontEnds: Set<string> } {
  const hosts: string[] = [];
  const frontEnds = new Set<string>();
  for (const ns of index.estate.namespaces) {
    const server = index.server(ns.server);
    const negotiate = Object.values(server?.authentication ?? {}).some(
      (m) => m?.includes('negotiate') === true,
    );
    if (!server || server.version < 2013 || !negotiate) continue;
    hosts.push(ns.host.toLowerCase());
    frontEnds.add(server.name);
  }
  return { hosts, frontEnds };
}

/**
 * Start the DC for `index`'s estate (every user with `userPassword`) and the directory that asks it; when a
 * server of `index` offers Windows authentication, the DC serves NTLM and one pool of helpers verifies for
 * every server (each helper in a mount namespace of its own, so other labs' DCs serve NTLM at the same time:
 * docs/lab.md §5.5).
 */
export async function startLabAd(
  index: EstateIndex,
  userPassword: string,
  o: { readonly logger?: Logger } = {},
): Promise<LabAd> {
  const ntlm = index.estate.sites.some((site) => site.servers.some(offersWindowsAuth));
  const { hosts, frontEnds } = kerberosNamespaces(index);
  const samba = await startSambaAd({
    estate: index.estate,
    password: userPassword,
    ntlm,
    kerberos: hosts.length > 0,
  });
  let kerberos: KerberosAcceptor | undefined;
  try {
    // Only a name: the password itself is handed over below, never written anywhere.
    const options = sambaDirectorySettings(samba, { passwordEnv: 'COEXIST_LAB_AD_PASSWORD' });
    const directory = new LdapDirectory(index, options, {
      bindPassword: samba.serviceAccount.password,
      ca: samba.caPem,
    });
    const windowsAuth = ntlm
      ? new NtlmVerifier({
          confFile: samba.confFile,
          winbindSocketDir: samba.winbindSocketDir,
          ...(o.logger ? { logger: o.logger } : {}),
        })
      : undefined;
    const asa = hosts.length > 0 ? await createAlternateServiceAccount(samba, hosts) : undefined;
    kerberos = asa
      ? new KerberosAcceptor({
          keytab: asa.keytab,
          krb5Config: samba.krb5ConfFile,
          ...(o.logger ? { logger: o.logger } : {}),
        })
      : undefined;
    return {
      samba,
      directory,
      ...(windowsAuth ? { windowsAuth } : {}),
      ...(asa && kerberos ? { asa, kerberos, kerberosFrontEnds: frontEnds } : {}),
    };
  } catch (error) {
    await kerberos?.close();
    await samba.close();
    throw error;
  }
}
