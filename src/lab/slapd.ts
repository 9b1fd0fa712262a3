/**
 * A throwaway OpenLDAP slapd on loopback, for tests and `coexist lab --directory ldap`: a temp dir with a
 * generated slapd.conf (core, cosine, inetorgperson and coexist-exchange.schema), the LDIF loaded offline
 * with slapadd, then slapd in the foreground as a child of this process (`-d 0`), on a random free port.
 * Recipe and timings: docs/lab.md §1 (Debian's slapd 2.5, back_mdb as a
 * module in /usr/lib/ldap, `slapd/no_configuration` so the package leaves no service running).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sshaPassword } from '../directory/estate-ldif.ts';
import { accepts, delay, freePort, isExecutable, run, runForeground } from './daemon.ts';
import { whenStopped } from './stopped.ts';

/** The schema shipped with coexist (examples/ldap, also in the npm package). */
export const coexistSchemaFile = fileURLToPath(
  new URL('../../examples/ldap/coexist-exchange.schema', import.meta.url),
);

/** TLS for slapd: PEM files, or PEM text written into the server's directory. */
export type SlapdTls =
  | { readonly certFile: string; readonly keyFile: string }
  | { readonly certPem: string; readonly keyPem: string };

/** Options of `startSlapd`. */
export interface SlapdOptions {
  /** The entries to load (LDIF text, e.g. from `estateLdif`). */
  readonly ldif: string;
  /** The database suffix, e.g. `dc=o365info,dc=com`; the LDIF's entries must be under it. */
  readonly suffix: string;
  /** Schema files included after core, cosine and inetorgperson; `[coexistSchemaFile]` by default. */
  readonly schemaFiles?: readonly string[];
  /** Certificate and key: slapd then offers StartTLS on ldap://, or serves ldaps:// (`scheme`). */
  readonly tls?: SlapdTls;
  /** `ldap` (default) or `ldaps` (needs `tls`). */
  readonly scheme?: 'ldap' | 'ldaps';
  /** A loopback address; 127.0.0.1 by default. */
  readonly host?: string;
  /** A fixed port; by default a free one is picked (and another one when slapd cannot bind it). */
  readonly port?: number;
  /** A password for `cn=admin,<suffix>` (the rootdn, which may write); none by default. */
  readonly rootPassword?: string;
  /**
   * The most entries a paged search of a bound user returns in all (each page stays within slapd's size
   * limit, 500); `unlimited` by default, as Active Directory pages through any number of entries.
   */
  readonly pagedSearchLimit?: number | 'unlimited';
  /** Attributes indexed for equality; the ones `LdapDirectory` searches by default. */
  readonly indexAttributes?: readonly string[];
  /** How long to wait for slapd to answer; 10 s by default. */
  readonly readyTimeoutMs?: number;
  /** Where the temp dir is made; the OS temp dir by default. */
  readonly parentDir?: string;
  /** Debian's paths by default: /usr/sbin/slapd, /usr/sbin/slapadd, /usr/lib/ldap, /etc/ldap/schema. */
  readonly slapdPath?: string;
  readonly slapaddPath?: string;
  readonly modulePath?: string;
  readonly systemSchemaDir?: string;
}

/** A running (or stopped) throwaway slapd. */
export interface Slapd {
  /** `ldap://127.0.0.1:<port>` or `ldaps://...`. */
  readonly url: string;
  readonly port: number;
  /** The temp dir: slapd.conf, the database, the TLS files. */
  readonly dir: string;
  /** The process id while running. */
  readonly pid: number | undefined;
  /** Start again after `stop()`, on the same port with the same data. */
  start(): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s), keeping the data; resolves when the process has exited. */
  stop(): Promise<void>;
  /**
   * SIGSTOP, resolved once every thread of slapd has stopped (src/lab/stopped.ts): from then on the port
   * still accepts connections (the kernel does that) but nothing answers (for timeout tests).
   */
  pause(): Promise<void>;
  /** SIGCONT after `pause()`. */
  resume(): void;
  /** Stop and remove the temp dir. */
  close(): Promise<void>;
}

const defaultIndexes = ['mail', 'proxyAddresses', 'userPrincipalName', 'sAMAccountName'];

/** Thrown when slapd or slapadd is not installed, with what to install. */
export class SlapdNotInstalledError extends Error {
  override readonly name = 'SlapdNotInstalledError';
}

function executable(path: string): void {
  if (!isExecutable(path)) {
    throw new SlapdNotInstalledError(
      `OpenLDAP is not installed: ${path} is missing. On Debian: echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections; apt-get install -y --no-install-recommends slapd ldap-utils (.ci/run does this).`,
    );
  }
}

/** slapd.conf quotes a value with spaces; backslashes and quotes are escaped. */
const quote = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** slapd exited before it answered (the port was taken, or its configuration is wrong). */
class SlapdExitedError extends Error {}

/** Start a throwaway slapd with `o.ldif` loaded. */
export async function startSlapd(o: SlapdOptions): Promise<Slapd> {
  const slapdPath = o.slapdPath ?? '/usr/sbin/slapd';
  const slapaddPath = o.slapaddPath ?? '/usr/sbin/slapadd';
  executable(slapdPath);
  executable(slapaddPath);
  const host = o.host ?? '127.0.0.1';
  if (!(isIP(host) === 4 ? host.startsWith('127.') : host === '::1')) {
    throw new Error(`startSlapd: host must be a loopback address, not ${host}`);
  }
  const scheme = o.scheme ?? 'ldap';
  if (scheme === 'ldaps' && !o.tls) throw new Error('startSlapd: ldaps needs tls (certificate and key)');
  const readyTimeoutMs = o.readyTimeoutMs ?? 10_000;

  const dir = await mkdtemp(join(o.parentDir ?? tmpdir(), 'coexist-slapd-'));
  try {
    await mkdir(join(dir, 'db'));
    let tlsLines: string[] = [];
    if (o.tls) {
      let certFile: string;
      let keyFile: string;
      if ('certFile' in o.tls) {
        ({ certFile, keyFile } = o.tls);
      } else {
        certFile = join(dir, 'server.crt');
        keyFile = join(dir, 'server.key');
        await writeFile(certFile, o.tls.certPem);
        await writeFile(keyFile, o.tls.keyPem, { mode: 0o600 });
      }
      tlsLines = [
        `TLSCertificateFile ${quote(certFile)}`,
        `TLSCertificateKeyFile ${quote(keyFile)}`,
        'TLSProtocolMin 3.3',
      ];
    }
    const systemSchemaDir = o.systemSchemaDir ?? '/etc/ldap/schema';
    const schemas = [
      ...['core', 'cosine', 'inetorgperson'].map((s) => join(systemSchemaDir, `${s}.schema`)),
      ...(o.schemaFiles ?? [coexistSchemaFile]),
    ];
    const conf = [
      ...schemas.map((s) => `include ${quote(s)}`),
      `modulepath ${quote(o.modulePath ?? '/usr/lib/ldap')}`,
      'moduleload back_mdb',
      `pidfile ${quote(join(dir, 'slapd.pid'))}`,
      `argsfile ${quote(join(dir, 'slapd.args'))}`,
      'loglevel none',
      ...tlsLines,
      'database mdb',
      'maxsize 268435456',
      `suffix ${quote(o.suffix)}`,
      ...(o.rootPassword === undefined
        ? []
        : [`rootdn ${quote(`cn=admin,${o.suffix}`)}`, `rootpw ${sshaPassword(o.rootPassword)}`]),
      `directory ${quote(join(dir, 'db'))}`,
      // Without it slapd cuts a paged search at its size limit too (`coexist trace --all` lists every mailbox).
      `limits users size.prtotal=${o.pagedSearchLimit ?? 'unlimited'}`,
      'index objectClass eq',
      `index ${(o.indexAttributes ?? defaultIndexes).join(',')} eq`,
      // Passwords: only usable to bind with. Everything else: readable by any bound user (AD's
      // Authenticated Users), nothing for anonymous.
      'access to attrs=userPassword',
      '  by anonymous auth',
      '  by * none',
      'access to *',
      '  by users read',
      '  by * none',
      '',
    ].join('\n');
    const confFile = join(dir, 'slapd.conf');
    await writeFile(confFile, conf);
    const ldifFile = join(dir, 'data.ldif');
    await writeFile(ldifFile, o.ldif);
    const added = await run(slapaddPath, ['-q', '-f', confFile, '-l', ldifFile]);
    if (added.code !== 0) {
      throw new Error(`slapadd failed (exit ${String(added.code)}): ${added.output.trim().slice(-2000)}`);
    }
    return await new RunningSlapd(dir, confFile, slapdPath, host, scheme, o.port, readyTimeoutMs).boot();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

class RunningSlapd implements Slapd {
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #paused = false;
  /** Settles when the last `pause()` has taken effect. */
  #pausing: Promise<void> = Promise.resolve();
  #port = 0;

  constructor(
    readonly dir: string,
    readonly confFile: string,
    readonly slapdPath: string,
    readonly host: string,
    readonly scheme: 'ldap' | 'ldaps',
    readonly fixedPort: number | undefined,
    readonly readyTimeoutMs: number,
  ) {}

  get port(): number {
    return this.#port;
  }

  get url(): string {
    const host = isIP(this.host) === 6 ? `[${this.host}]` : this.host;
    return `${this.scheme}://${host}:${this.#port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** First start: a free port, another one when slapd could not bind it (someone took it meanwhile). */
  async boot(): Promise<this> {
    const attempts = this.fixedPort === undefined ? 5 : 1;
    let last: Error | undefined;
    for (let i = 0; i < attempts; i++) {
      this.#port = this.fixedPort ?? (await freePort(this.host));
      try {
        await this.#spawn();
        return this;
      } catch (error) {
        // Only an early exit can be a lost port; a slapd that never answers is not retried.
        if (!(error instanceof SlapdExitedError)) throw error;
        last = error;
      }
    }
    throw last ?? new Error('slapd did not start');
  }

  async start(): Promise<void> {
    if (this.#child) return;
    // The same port again: slapd binds with SO_REUSEADDR, so a port just released by the previous
    // process is fine; retry while the deadline allows in case it is not free yet.
    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      try {
        await this.#spawn();
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await delay(50);
      }
    }
  }

  /** Spawn slapd and wait until it is ours that answers: pidfile written (after the listeners are bound) and the port accepting. */
  async #spawn(): Promise<void> {
    const pidFile = join(this.dir, 'slapd.pid');
    await rm(pidFile, { force: true });
    const daemon = runForeground(this.slapdPath, ['-f', this.confFile, '-h', `${this.url}/`, '-d', '0'], {
      stdout: false,
      onExit: () => {
        if (this.#child === child) this.#child = undefined;
      },
    });
    const child = daemon.child;
    this.#exited = daemon.exited;
    this.#child = child;
    this.#paused = false;

    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      const exitCode = daemon.exitCode();
      if (exitCode !== undefined) {
        const stderr = daemon.output();
        throw new SlapdExitedError(
          `slapd exited (${String(exitCode)}) before answering on ${this.url} (port in use, or a bad slapd.conf in ${this.dir})${stderr ? `: ${stderr.trim()}` : ''}`,
        );
      }
      const pid = await readFile(pidFile, 'utf8').then(
        (t) => Number(t.trim()),
        () => undefined,
      );
      if (pid === child.pid && (await accepts({ host: this.host, port: this.#port }))) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`slapd did not answer on ${this.url} within ${this.readyTimeoutMs} ms`);
      }
      await delay(10);
    }
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    if (this.#paused) this.resume();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  pause(): Promise<void> {
    const child = this.#child;
    if (!child?.pid) return Promise.resolve();
    if (!this.#paused) {
      child.kill('SIGSTOP');
      this.#paused = true;
      // kill() returns before slapd's threads stop: wait for them, or it may still answer (docs/lab.md §1.2).
      this.#pausing = whenStopped(
        child.pid,
        this.readyTimeoutMs,
        () => this.#child !== child || !this.#paused,
      );
    }
    return this.#pausing;
  }

  resume(): void {
    if (this.#child && this.#paused) {
      this.#child.kill('SIGCONT');
      this.#paused = false;
    }
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A random password for a throwaway account (base64url, 24 characters). */
export function randomLabPassword(): string {
  return randomBytes(18).toString('base64url');
}
