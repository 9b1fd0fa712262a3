/**
 * A throwaway Samba Active Directory domain controller on loopback, for tests and `coexist lab --directory ad`
 * (lab-ad.ts): the estate's domain provisioned into a temp dir, Exchange's schema subset
 * (exchange-schema.ts) and the estate's objects (ad-estate.ts) written over LDAPS as an administrator, then
 * `samba -M single` with only its LDAP service, in the foreground as a child of this process. Recipe,
 * timings and pitfalls: docs/lab.md §5.
 *
 * Provisioning and loading take about 10 s, so the loaded domain is kept as a template (a directory copied
 * for each instance, about 0.1 s) in the OS temp dir, keyed by everything that goes into it (Samba's
 * version, the schema, the entries, the passwords' hash): the first test file of a run builds it, under a
 * lock, and the others copy it. Each instance has its own loopback address (Samba's LDAP ports are fixed,
 * 389/636/3268/3269) and its own certificate, issued for the DC's name and that address by a CA the caller
 * trusts.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Attribute, Change, Client } from 'ldapts';
import type { Estate } from '../../core/estate/estate.ts';
import type { LdapDirectoryOptions } from '../../directory/ldap-settings.ts';
import { accepts, delay, errorText, isExecutable, run, runForeground } from '../daemon.ts';
import { createLabCa } from '../lab-ca.ts';
import { adEstate, type AdEstate } from './ad-estate.ts';
import type { LdapAddition } from './exchange-schema.ts';
import {
  attributeEntry,
  classEntry,
  classExtensions,
  classGroups,
  exchangeAttributes,
  exchangeClasses,
} from './exchange-schema.ts';

/** Thrown when Samba's AD DC is not installed, with what to install. */
export class SambaNotInstalledError extends Error {
  override readonly name = 'SambaNotInstalledError';
}

/** TLS of the DC: its certificate and key, and the CA certificate clients trust. */
export interface SambaTls {
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
}

/** Options of `startSambaAd`. */
export interface SambaAdOptions {
  /** The estate whose domain, organization and users the DC holds. */
  readonly estate: Estate;
  /** The clear lab password of every mailbox user (never read from the estate file). */
  readonly password: string;
  /** The service account's password; a random one when absent (see `SambaAd.serviceAccount`). */
  readonly servicePassword?: string;
  /** The AD domain's DNS name and NetBIOS name; by default the estate's (ad-estate.ts `adDomainOf`). */
  readonly dnsName?: string;
  readonly netbios?: string;
  /** A loopback address of its own (127.x.y.z, not 127.0.0.1); a random free one by default. */
  readonly host?: string;
  /** The DC's certificate; by default one issued by a new lab CA for the DC's name and address. */
  readonly tls?: SambaTls;
  /** Where the instance's temp dir is made; the OS temp dir by default. */
  readonly parentDir?: string;
  /** Where templates are kept; `<tmpdir>/coexist-samba-templates` by default. */
  readonly cacheDir?: string;
  /** How long to wait for the DC (and for another process building the template); 120 s by default. */
  readonly readyTimeoutMs?: number;
  /** Samba ends itself after this many seconds (`--maximum-runtime`): a guard for tests; none by default. */
  readonly maxRuntimeSeconds?: number;
  /**
   * Serve NTLM: winbindd runs beside LDAP, its socket in `winbindSocketDir`, and the DC is ready once that
   * accepts; `ntlm_auth` on `confFile` verifies against it, each helper in a mount namespace of its own
   * (ntlm-verifier.ts, docs/lab.md §5.5). Any number of DCs may serve NTLM at once. Off by default.
   */
  readonly ntlm?: boolean;
  /**
   * Serve Kerberos: the DC's KDC runs beside LDAP on `host`:88 and `krb5ConfFile` names it (kinit, a keytab's
   * acceptor; kerberos.ts, docs/lab.md §5.6). Off by default.
   */
  readonly kerberos?: boolean;
  /** Debian's paths by default. */
  readonly sambaPath?: string;
  readonly sambaToolPath?: string;
}

/** How long the steps took, in ms. */
export interface SambaTimings {
  /** Provisioning and loading the template; 0 when a template was there already. */
  readonly templateMs: number;
  /** Copying the template, starting Samba and its first LDAPS answer. */
  readonly startMs: number;
}

/** A running (or stopped) throwaway domain controller. */
export interface SambaAd {
  /** The loopback address it listens on. */
  readonly host: string;
  /** `ldaps://<host>` (636) and `ldap://<host>` (389, StartTLS). */
  readonly ldapsUrl: string;
  readonly ldapUrl: string;
  /** The DC's DNS name, dc1.<domain>: its certificate carries it and the address. */
  readonly dcName: string;
  /** The CA certificate that issued the DC's certificate. */
  readonly caPem: string;
  /** The domain, the entries and where they are. */
  readonly ad: AdEstate;
  /** The domain administrator (may write). */
  readonly administrator: { readonly upn: string; readonly password: string };
  /** The account coexist searches with (reads only). */
  readonly serviceAccount: { readonly dn: string; readonly upn: string; readonly password: string };
  /** The instance's temp dir. */
  readonly dir: string;
  /** Its smb.conf (`ntlm_auth --configfile`). */
  readonly confFile: string;
  /** Whether it serves NTLM (`SambaAdOptions.ntlm`): winbindd runs. */
  readonly ntlm: boolean;
  /** Its `winbindd socket directory` (holds `pipe` when it serves NTLM; `NtlmVerifierOptions`). */
  readonly winbindSocketDir: string;
  /** Whether its KDC runs (`SambaAdOptions.kerberos`). */
  readonly kerberos: boolean;
  /** The Kerberos realm: the domain's DNS name in capitals. */
  readonly realm: string;
  /** A krb5.conf naming the realm and this DC's KDC by address, nothing looked up in DNS (`KRB5_CONFIG`). */
  readonly krb5ConfFile: string;
  readonly pid: number | undefined;
  readonly timings: SambaTimings;
  /** Start again after `stop()`, with the same data. */
  start(): Promise<void>;
  /** SIGTERM (SIGKILL after 10 s), keeping the data; resolves when the process has exited. */
  stop(): Promise<void>;
  /** Stop and remove the temp dir. */
  close(): Promise<void>;
}

/** Bumped whenever the template's recipe changes in a way its key does not show. */
const recipeVersion = 'coexist-samba-1';

const dcHostName = 'dc1';

/** The domain's password policy: none, so that lab passwords need not be complex and may be changed at once. */
const passwordPolicy: readonly [string, string][] = [
  ['pwdProperties', '0'],
  ['minPwdLength', '0'],
  ['minPwdAge', '0'],
  ['pwdHistoryLength', '0'],
];

function executable(path: string): void {
  if (!isExecutable(path)) {
    throw new SambaNotInstalledError(
      `Samba's AD domain controller is not installed: ${path} is missing. On Debian: apt-get install -y --no-install-recommends samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldb-tools (npm run setup does this).`,
    );
  }
}

/** A random loopback address in 127.88.0.0/16 (never 127.0.0.x, where the lab and other daemons are). */
const randomLoopback = (): string => `127.88.${randomInt(0, 256)}.${randomInt(2, 255)}`;

/** Nothing accepts on the DC's fixed LDAP ports of `host`. */
async function addressFree(host: string): Promise<boolean> {
  const taken = await Promise.all([389, 636, 3268, 3269].map((port) => accepts({ host, port })));
  return !taken.some(Boolean);
}

/**
 * smb.conf of one instance: only the LDAP service (and winbindd for NTLM), everything under `dir`, bound to
 * `host` only.
 */
function smbConf(dir: string, host: string, ad: AdEstate, ntlm: boolean, kerberos: boolean): string {
  const services = ['ldap', ...(ntlm ? ['winbindd'] : []), ...(kerberos ? ['kdc'] : [])];
  const lines = [
    '[global]',
    `netbios name = ${dcHostName.toUpperCase()}`,
    `realm = ${ad.domain.dnsName.toUpperCase()}`,
    `workgroup = ${ad.domain.netbios}`,
    'server role = active directory domain controller',
    // LDAP alone: no smbd, winbindd, KDC, DNS or RPC (docs/lab.md §5.1); winbindd for NTLM (§5.5), the KDC
    // for Kerberos (§5.6).
    `server services = ${services.join(', ')}`,
    // An address not configured on lo binds nothing without its netmask (docs/lab.md §5.1).
    `interfaces = ${host}/8`,
    'bind interfaces only = yes',
    'disable netbios = yes',
    `private dir = ${join(dir, 'private')}`,
    `state directory = ${join(dir, 'state')}`,
    `cache directory = ${join(dir, 'cache')}`,
    `lock directory = ${dir}`,
    `binddns dir = ${join(dir, 'bind-dns')}`,
    `pid directory = ${join(dir, 'run')}`,
    `ncalrpc dir = ${join(dir, 'run', 'ncalrpc')}`,
    `winbindd socket directory = ${join(dir, 'run', 'winbindd')}`,
    `ntp signd socket directory = ${join(dir, 'run', 'ntp_signd')}`,
    `log file = ${join(dir, 'log', 'log.%m')}`,
    'dsdb:schema update allowed = true',
    'idmap_ldb:use rfc2307 = yes',
    'tls enabled = yes',
    `tls keyfile = ${join(dir, 'tls', 'key.pem')}`,
    `tls certfile = ${join(dir, 'tls', 'cert.pem')}`,
    `tls cafile = ${join(dir, 'tls', 'ca.pem')}`,
    '',
  ];
  return lines.join('\n');
}

/** ldapts attributes of an entry to add (binary values as Buffers). */
function toAttributes(attributes: LdapAddition['attributes']): Attribute[] {
  return Object.entries(attributes).map(([type, value]) => {
    const list = Array.isArray(value) ? value : [value];
    const values = list.some((v) => Buffer.isBuffer(v))
      ? list.map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(v as string, 'utf8')))
      : (list as string[]);
    return new Attribute({ type, values });
  });
}

/** AD's unicodePwd: the password in double quotes, UTF-16LE (set only over an encrypted connection). */
export const unicodePwd = (password: string): Buffer => Buffer.from(`"${password}"`, 'utf16le');

const change = (operation: 'add' | 'replace' | 'delete', type: string, values: string[] | Buffer[]): Change =>
  new Change({ operation, modification: new Attribute({ type, values }) });

/** A client bound as the administrator over LDAPS. */
export async function adminClient(
  url: string,
  caPem: string,
  upn: string,
  password: string,
  timeoutMs: number,
): Promise<Client> {
  const client = new Client({
    url,
    timeout: timeoutMs,
    connectTimeout: timeoutMs,
    tlsOptions: { ca: caPem, minVersion: 'TLSv1.2' },
  });
  try {
    await client.bind(upn, password);
    return client;
  } catch (error) {
    await client.unbind().catch(() => undefined);
    throw error;
  }
}

/** Exchange's schema subset, then the estate's entries, passwords and links (docs/lab.md §5.3, §5.4). */
async function load(
  client: Client,
  ad: AdEstate,
  passwords: { user: string; service: string },
): Promise<void> {
  const schemaDn = `CN=Schema,${ad.configurationDn}`;
  const refresh = (): Promise<void> => client.modify('', change('add', 'schemaUpdateNow', ['1']));
  const addEntry = async (e: LdapAddition): Promise<void> => {
    try {
      await client.add(e.dn, toAttributes(e.attributes));
    } catch (error) {
      throw new Error(`Samba AD: adding ${e.dn} failed: ${errorText(error)}`, { cause: error });
    }
  };
  for (const [name, value] of passwordPolicy)
    await client.modify(ad.domain.dn, change('replace', name, [value]));
  for (const a of exchangeAttributes) await addEntry(attributeEntry(a, schemaDn));
  // New attributes must be in the loaded schema before a class names them, and each class before a class
  // that has it as superior (docs/lab.md §5.3).
  await refresh();
  for (const group of classGroups(exchangeClasses)) {
    for (const c of group) await addEntry(classEntry(c, schemaDn));
    await refresh();
  }
  for (const x of classExtensions) {
    await client.modify(`CN=${x.cn},${schemaDn}`, change('add', 'mayContain', [...x.mayContain]));
  }
  await refresh();
  const accounts = new Map(ad.accounts.map((a) => [a.dn.toLowerCase(), a]));
  for (const e of ad.entries) {
    const account = accounts.get(e.dn.toLowerCase());
    if (account === undefined) {
      await addEntry(e);
      continue;
    }
    // A user with its password and enabled (NORMAL_ACCOUNT) in the same add, as AD allows over LDAPS.
    const password = account.dn === ad.serviceAccount.dn ? passwords.service : passwords.user;
    await addEntry({
      dn: e.dn,
      attributes: { ...e.attributes, unicodePwd: unicodePwd(password), userAccountControl: '512' },
    });
  }
  for (const link of ad.links) await client.modify(link.dn, change('add', link.attribute, [...link.values]));
}

/** The running instance. */
class RunningSamba implements SambaAd {
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #startMs = 0;

  constructor(
    readonly dir: string,
    readonly host: string,
    readonly ad: AdEstate,
    readonly caPem: string,
    readonly administrator: { readonly upn: string; readonly password: string },
    readonly serviceAccount: { readonly dn: string; readonly upn: string; readonly password: string },
    readonly templateMs: number,
    readonly o: {
      sambaPath: string;
      readyTimeoutMs: number;
      maxRuntimeSeconds: number | undefined;
      ntlm?: boolean;
      kerberos?: boolean;
    },
  ) {}

  get ntlm(): boolean {
    return this.o.ntlm === true;
  }

  get kerberos(): boolean {
    return this.o.kerberos === true;
  }

  get realm(): string {
    return this.ad.domain.dnsName.toUpperCase();
  }

  get krb5ConfFile(): string {
    return join(this.dir, 'etc', 'krb5.conf');
  }

  get winbindSocketDir(): string {
    return join(this.dir, 'run', 'winbindd');
  }

  get ldapsUrl(): string {
    return `ldaps://${this.host}`;
  }

  get ldapUrl(): string {
    return `ldap://${this.host}`;
  }

  get dcName(): string {
    return `${dcHostName}.${this.ad.domain.dnsName}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get timings(): SambaTimings {
    return { templateMs: this.templateMs, startMs: this.#startMs };
  }

  get confFile(): string {
    return join(this.dir, 'etc', 'smb.conf');
  }

  async start(): Promise<void> {
    if (this.#child) return;
    const t0 = performance.now();
    const args = [
      '-F',
      '--no-process-group',
      '-M',
      'single',
      '--debug-stdout',
      '-d',
      '1',
      '-s',
      this.confFile,
    ];
    if (this.o.maxRuntimeSeconds !== undefined) args.push(`--maximum-runtime=${this.o.maxRuntimeSeconds}`);
    const daemon = runForeground(this.o.sambaPath, args, {
      stdout: true,
      onExit: () => {
        if (this.#child === child) this.#child = undefined;
      },
    });
    const child = daemon.child;
    this.#exited = daemon.exited;
    this.#child = child;
    const deadline = Date.now() + this.o.readyTimeoutMs;
    let last: unknown;
    for (;;) {
      const exitCode = daemon.exitCode();
      if (exitCode !== undefined) {
        throw new Error(
          `samba exited (${String(exitCode)}) before answering on ${this.ldapsUrl} (address in use, or see ${this.dir}): ${daemon.output().trim()}`,
        );
      }
      try {
        const client = await adminClient(
          this.ldapsUrl,
          this.caPem,
          this.administrator.upn,
          this.administrator.password,
          2000,
        );
        await client.unbind().catch(() => undefined);
        break;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(
          `samba did not answer on ${this.ldapsUrl} within ${this.o.readyTimeoutMs} ms (last: ${errorText(last)}): ${daemon.output().trim()}`,
        );
      }
      await delay(50);
    }
    if (this.kerberos) {
      try {
        await this.#waitForKdc(deadline, daemon.output);
      } catch (error) {
        await this.stop();
        throw error;
      }
    }
    if (this.ntlm) {
      try {
        await this.#waitForWinbind(deadline, daemon.output);
      } catch (error) {
        await this.stop();
        throw error;
      }
    }
    this.#startMs = performance.now() - t0;
  }

  /** Wait for the KDC on the DC's address (docs/lab.md §5.6). */
  async #waitForKdc(deadline: number, output: () => string): Promise<void> {
    while (!(await accepts({ host: this.host, port: 88 }))) {
      if (this.#child === undefined || Date.now() > deadline) {
        throw new Error(
          `samba's KDC did not listen on ${this.host}:88 within ${this.o.readyTimeoutMs} ms: ${output().trim()}`,
        );
      }
      await delay(50);
    }
  }

  /** Wait for winbindd's socket in the DC's own directory (docs/lab.md §5.5). */
  async #waitForWinbind(deadline: number, output: () => string): Promise<void> {
    const pipe = join(this.winbindSocketDir, 'pipe');
    while (!(await accepts({ path: pipe }))) {
      if (this.#child === undefined || Date.now() > deadline) {
        throw new Error(
          `samba's winbindd did not open ${pipe} within ${this.o.readyTimeoutMs} ms: ${output().trim()}`,
        );
      }
      await delay(50);
    }
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await this.#exited;
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** For startSambaAd: the start time includes copying the template. */
  addStartMs(ms: number): void {
    this.#startMs += ms;
  }
}

/** Write an instance's configuration and TLS files into `dir`. */
async function prepare(
  dir: string,
  host: string,
  ad: AdEstate,
  tls: SambaTls,
  ntlm = false,
  kerberos = false,
): Promise<void> {
  for (const sub of ['etc', 'tls', 'run', 'log', 'cache']) await mkdir(join(dir, sub), { recursive: true });
  await writeFile(join(dir, 'etc', 'smb.conf'), smbConf(dir, host, ad, ntlm, kerberos));
  await writeFile(join(dir, 'etc', 'krb5.conf'), krb5Conf(host, ad));
  await writeFile(join(dir, 'tls', 'cert.pem'), tls.certPem);
  // Samba refuses a key that others may read.
  await writeFile(join(dir, 'tls', 'key.pem'), tls.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'tls', 'ca.pem'), tls.caPem);
}

/**
 * krb5.conf for this DC's realm: its KDC by address, nothing looked up in DNS (the provision's own
 * private/krb5.conf relies on DNS), and the namespaces' host names mapped to the realm (docs/lab.md §5.6).
 */
function krb5Conf(host: string, ad: AdEstate): string {
  const realm = ad.domain.dnsName.toUpperCase();
  return [
    '[libdefaults]',
    `  default_realm = ${realm}`,
    '  dns_lookup_realm = false',
    '  dns_lookup_kdc = false',
    '  rdns = false',
    '[realms]',
    `  ${realm} = {`,
    `    kdc = ${host}`,
    '  }',
    '',
  ].join('\n');
}

/** A certificate for the DC's name and address from a new lab CA. */
function ownTls(dcName: string, host: string): SambaTls {
  const ca = createLabCa({ commonName: 'coexist lab Samba AD CA' });
  const leaf = ca.issue([dcName, host]);
  return { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: ca.certPem };
}

/** `host` when it is a loopback address of its own (127.x.y.z, not 127.0.0.1, where everything else is). */
function checkedHost(host: string): string {
  if (isIP(host) !== 4 || !host.startsWith('127.') || host === '127.0.0.1') {
    throw new Error(
      `startSambaAd: host must be a loopback address of its own (127.x.y.z, not 127.0.0.1), not ${host}`,
    );
  }
  return host;
}

/** Pick a free address (the caller's, or random ones) and start `make(host)`, trying another when it is taken. */
async function onFreeAddress<T>(wanted: string | undefined, make: (host: string) => Promise<T>): Promise<T> {
  if (wanted !== undefined) return make(checkedHost(wanted));
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const host = randomLoopback();
    if (!(await addressFree(host))) continue;
    try {
      return await make(host);
    } catch (error) {
      last = error;
      if (!/samba exited/.test(errorText(error))) throw error;
    }
  }
  throw last instanceof Error ? last : new Error('startSambaAd: no free loopback address found');
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

/** The template for `key`: there already, built by another process meanwhile, or built here under a lock. */
async function template(
  cacheDir: string,
  key: string,
  readyTimeoutMs: number,
  build: (dir: string) => Promise<void>,
): Promise<{ dir: string; builtMs: number }> {
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const dir = join(cacheDir, `template-${key}`);
  const lock = `${dir}.lock`;
  const deadline = Date.now() + readyTimeoutMs + 60_000;
  for (;;) {
    if (await exists(join(dir, 'ready'))) return { dir, builtMs: 0 };
    try {
      await mkdir(lock);
    } catch {
      // Someone builds it: wait for them, or take over when they died (the lock names their pid).
      const owner = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => 'NaN'));
      if (Number.isInteger(owner) && !pidAlive(owner)) await rm(lock, { recursive: true, force: true });
      if (Date.now() > deadline)
        throw new Error(`Samba AD: the template ${dir} was not built within the deadline (lock ${lock})`);
      await delay(100);
      continue;
    }
    try {
      await writeFile(join(lock, 'pid'), String(process.pid));
      const t0 = performance.now();
      const building = await mkdtemp(join(cacheDir, 'build-'));
      try {
        await build(building);
        await writeFile(join(building, 'ready'), new Date().toISOString());
        await rm(dir, { recursive: true, force: true });
        await rename(building, dir);
      } catch (error) {
        await rm(building, { recursive: true, force: true });
        throw error;
      }
      await prune(cacheDir, dir);
      return { dir, builtMs: performance.now() - t0 };
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

/** Remove other templates not used for a day, and builds left behind by a process that died. */
async function prune(cacheDir: string, keep: string): Promise<void> {
  const dayMs = 24 * 60 * 60 * 1000;
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    const path = join(cacheDir, name);
    if (path === keep || name.endsWith('.lock')) continue;
    const s = await stat(path).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > dayMs) await rm(path, { recursive: true, force: true });
  }
}

/** Copy a template into a new instance dir (`cp -a`: the sysvol ACLs are extended attributes). */
async function copyTemplate(from: string, to: string): Promise<void> {
  const copied = await run('cp', ['-a', `${from}/.`, to]);
  if (copied.code !== 0) throw new Error(`Samba AD: copying the template failed: ${copied.output.trim()}`);
}

/** Start a throwaway Samba AD domain controller holding `o.estate`. */
export async function startSambaAd(o: SambaAdOptions): Promise<SambaAd> {
  const sambaPath = o.sambaPath ?? '/usr/sbin/samba';
  const sambaToolPath = o.sambaToolPath ?? '/usr/bin/samba-tool';
  executable(sambaPath);
  executable(sambaToolPath);
  if (o.password === '') throw new Error('startSambaAd: the lab password must not be empty');
  if (o.host !== undefined) checkedHost(o.host);
  const readyTimeoutMs = o.readyTimeoutMs ?? 120_000;
  const ad = adEstate(o.estate, {
    ...(o.dnsName === undefined ? {} : { dnsName: o.dnsName }),
    ...(o.netbios === undefined ? {} : { netbios: o.netbios }),
  });
  const version = await run(sambaPath, ['-V']);
  const administrator = { upn: `Administrator@${ad.domain.dnsName}` };
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        recipeVersion,
        samba: version.output.trim(),
        schema: [exchangeAttributes, exchangeClasses, classExtensions],
        ad: { ...ad, entries: ad.entries.map((e) => ({ ...e, attributes: Object.entries(e.attributes) })) },
        password: createHash('sha256').update(o.password).digest('hex'),
      }),
    )
    .digest('hex')
    .slice(0, 24);
  const cacheDir = o.cacheDir ?? join(tmpdir(), 'coexist-samba-templates');
  const common = { sambaPath, readyTimeoutMs, maxRuntimeSeconds: o.maxRuntimeSeconds };
  const ntlm = o.ntlm === true;
  const kerberos = o.kerberos === true;

  const { dir: templateDir, builtMs } = await template(cacheDir, key, readyTimeoutMs, async (building) => {
    const adminPassword = `Adm1n-${randomBytes(12).toString('base64url')}`;
    const servicePassword = `Svc1-${randomBytes(12).toString('base64url')}`;
    await onFreeAddress(undefined, async (host) => {
      // A clean dir for each attempt: a domain provisioned for an address that was taken is not reused.
      await rm(building, { recursive: true, force: true });
      await mkdir(building, { mode: 0o700 });
      const provisioned = await run(
        sambaToolPath,
        [
          'domain',
          'provision',
          `--realm=${ad.domain.dnsName.toUpperCase()}`,
          `--domain=${ad.domain.netbios}`,
          '--server-role=dc',
          '--dns-backend=SAMBA_INTERNAL',
          `--adminpass=${adminPassword}`,
          `--targetdir=${building}`,
          '--use-rfc2307',
          `--host-name=${dcHostName}`,
          `--host-ip=${host}`,
          // Everything under the target dir, nothing forwarded off the machine (docs/lab.md §5.1).
          `--option=interfaces=${host}/8`,
          '--option=bind interfaces only=yes',
          '--option=disable netbios=yes',
          `--option=pid directory=${join(building, 'run')}`,
          `--option=winbindd socket directory=${join(building, 'run', 'winbindd')}`,
          `--option=ncalrpc dir=${join(building, 'run', 'ncalrpc')}`,
          `--option=ntp signd socket directory=${join(building, 'run', 'ntp_signd')}`,
          `--option=log file=${join(building, 'log', 'log.%m')}`,
          `--option=dns forwarder=${host}`,
          '--option=server services=ldap',
        ],
        { timeoutMs: readyTimeoutMs },
      );
      if (provisioned.code !== 0) {
        throw new Error(
          `samba-tool domain provision failed (exit ${String(provisioned.code)}): ${provisioned.output.trim().slice(-2000)}`,
        );
      }
      const tls = ownTls(`${dcHostName}.${ad.domain.dnsName}`, host);
      await prepare(building, host, ad, tls);
      const dc = new RunningSamba(
        building,
        host,
        ad,
        tls.caPem,
        { ...administrator, password: adminPassword },
        { ...ad.serviceAccount, password: servicePassword },
        0,
        common,
      );
      try {
        await dc.start();
        const client = await adminClient(dc.ldapsUrl, tls.caPem, administrator.upn, adminPassword, 30_000);
        try {
          await load(client, ad, { user: o.password, service: servicePassword });
        } finally {
          await client.unbind().catch(() => undefined);
        }
      } finally {
        await dc.stop();
      }
    });
    // What belongs to the build's address and run goes; the rest is the template.
    for (const sub of ['tls', 'run', 'log', 'etc'])
      await rm(join(building, sub), { recursive: true, force: true });
    await writeFile(join(building, 'administrator'), adminPassword, { mode: 0o600 });
    await writeFile(join(building, 'service-account'), servicePassword, { mode: 0o600 });
  });

  const adminPassword = await readFile(join(templateDir, 'administrator'), 'utf8');
  const templateServicePassword = await readFile(join(templateDir, 'service-account'), 'utf8');
  return onFreeAddress(o.host, async (host) => {
    const t0 = performance.now();
    const dir = await mkdtemp(join(o.parentDir ?? tmpdir(), 'coexist-samba-'));
    try {
      await copyTemplate(templateDir, dir);
      const dcName = `${dcHostName}.${ad.domain.dnsName}`;
      const tls = o.tls ?? ownTls(dcName, host);
      await prepare(dir, host, ad, tls, ntlm, kerberos);
      const servicePassword = o.servicePassword ?? templateServicePassword;
      const dc = new RunningSamba(
        dir,
        host,
        ad,
        tls.caPem,
        { ...administrator, password: adminPassword },
        { dn: ad.serviceAccount.dn, upn: ad.serviceAccount.upn, password: servicePassword },
        builtMs,
        { ...common, ntlm, kerberos },
      );
      const copyMs = performance.now() - t0;
      await dc.start();
      dc.addStartMs(copyMs);
      if (servicePassword !== templateServicePassword) {
        try {
          const client = await adminClient(dc.ldapsUrl, tls.caPem, administrator.upn, adminPassword, 30_000);
          try {
            await client.modify(
              ad.serviceAccount.dn,
              change('replace', 'unicodePwd', [unicodePwd(servicePassword)]),
            );
          } finally {
            await client.unbind().catch(() => undefined);
          }
        } catch (error) {
          await dc.stop();
          throw error;
        }
      }
      return dc;
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  });
}

/**
 * The `directory.ldap` settings (ldap-settings.ts) of an LDAP directory on `dc`: LDAPS (or StartTLS on
 * ldap://), its CA, the domain root as `baseDn`, its service account with the password in the environment
 * variable `passwordEnv`, and the estate's ApplicationImpersonation groups.
 */
export function sambaDirectorySettings(
  dc: SambaAd,
  o: { readonly transport?: 'ldaps' | 'starttls'; readonly passwordEnv?: string } = {},
): LdapDirectoryOptions {
  return {
    url: o.transport === 'starttls' ? dc.ldapUrl : dc.ldapsUrl,
    baseDn: dc.ad.domain.dn,
    bindDn: dc.serviceAccount.dn,
    bindPasswordEnv: o.passwordEnv ?? 'COEXIST_AD_PASSWORD',
    impersonation: dc.ad.layout.impersonation,
    tls: { ca: dc.caPem },
  };
}
