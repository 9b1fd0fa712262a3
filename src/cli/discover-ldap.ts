/**
 * `coexist discover --ldap URL ...`: the command line's options -> how to reach Active Directory
 * (src/discover/ad/read-ad.ts). The names follow the estate file's directory.ldap (docs/config.md
 * "directory"): the service account's password from a file (`--password-file`, as bindPasswordFile) or an
 * environment variable (`--password-env`, as bindPasswordEnv), never the command line; the DC's CA from a
 * file (`--ca`, as tls.caFile).
 */
import { readFile } from 'node:fs/promises';
import type { AdConnection } from '../discover/ad/read-ad.ts';
import { usage } from './common.ts';

export interface DiscoverLdapOptions {
  ldap: string;
  bindDn?: string;
  passwordFile?: string;
  passwordEnv?: string;
  ca?: string;
  servername?: string;
  base?: string;
  timeoutMs?: string;
}

/** Read the password and the CA the options name; every problem is a usage error naming the option. */
export async function adConnectionOf(
  o: DiscoverLdapOptions,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<AdConnection> {
  if (o.bindDn === undefined)
    throw usage('--ldap needs --bind-dn: the service account (its DN, its UPN or DOMAIN\\user)');
  if ((o.passwordFile === undefined) === (o.passwordEnv === undefined))
    throw usage(
      "--ldap needs the service account's password from exactly one of --password-file FILE and --password-env VARIABLE",
    );
  let bindPassword: string;
  if (o.passwordFile !== undefined) {
    try {
      bindPassword = (await readFile(o.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (e) {
      throw usage(`--password-file ${o.passwordFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  } else {
    const name = o.passwordEnv as string;
    const v = env[name];
    if (v === undefined) throw usage(`--password-env ${name}: the environment variable is not set`);
    bindPassword = v;
  }
  if (bindPassword === '') throw usage("the service account's password is empty");
  let ca: string | undefined;
  if (o.ca !== undefined) {
    try {
      ca = await readFile(o.ca, 'utf8');
    } catch (e) {
      throw usage(`--ca ${o.ca}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----'))
      throw usage(`--ca ${o.ca}: not a PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  let timeoutMs: number | undefined;
  if (o.timeoutMs !== undefined) {
    timeoutMs = Number(o.timeoutMs);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 600_000)
      throw usage(`--timeout-ms ${o.timeoutMs}: a whole number of milliseconds from 100 to 600000`);
  }
  return {
    url: o.ldap,
    bindDn: o.bindDn,
    bindPassword,
    ...(ca !== undefined && { ca }),
    ...(o.servername !== undefined && { servername: o.servername }),
    ...(o.base !== undefined && { baseDn: o.base }),
    ...(timeoutMs !== undefined && { timeoutMs, connectTimeoutMs: Math.min(timeoutMs, 5_000) }),
  };
}
