/**
 * The directory in LDAP (issue 5): Active Directory with its Exchange attributes, or OpenLDAP with
 * examples/ldap/coexist-exchange.schema. A user is found by a service account on a bounded pool of bound
 * connections, with one filter ORing the identity forms (mail, proxyAddresses smtp:, userPrincipalName; or
 * sAMAccountName for DOMAIN\user). The mailbox's server is where the user's homeMDB database lives
 * (msExchOwningServer), or the server named by msExchHomeServerName; its version and site are the estate's
 * server of that name. A password is checked by a simple bind as the user's DN on a short-lived connection
 * of its own (search, then bind: OpenLDAP accepts only DN binds, AD both; docs/lab.md
 * §1.3).
 *
 * Transport: LDAPS or StartTLS; plain LDAP only when explicitly allowed and the server is a loopback
 * address. A directory that is down, refuses the service account or does not answer within `timeoutMs`
 * is a `DirectoryUnavailableError`, never "not found". Passwords never appear in errors or logs. The
 * options and their checks are ldap-settings.ts (the estate file's `directory.ldap` section).
 */
import { readFile } from 'node:fs/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import {
  Client,
  InvalidCredentialsError,
  NoSuchObjectError,
  ResultCodeError,
  SizeLimitExceededError,
} from 'ldapts';
import type { Entry } from 'ldapts';
import type { EstateIndex, Mailbox } from '../core/estate/estate-index.ts';
import type { Server, User } from '../core/estate/estate.ts';
import { familyOf } from '../core/estate/estate.ts';
import { firstRdnValue } from '../core/dn.ts';
import { hostOfUrl } from '../core/host.ts';
import type { Directory } from './directory.ts';
import { DirectoryUnavailableError } from './directory.ts';
import { FirstAddresses } from './first-addresses.ts';
import type {
  ImpersonationAssignment,
  LdapDirectoryOptions,
  ResolvedLdapDirectoryOptions,
} from './ldap-settings.ts';
import { defaultImpersonationGroup, ldapDirectorySchema } from './ldap-settings.ts';

export { DirectoryUnavailableError, firstRdnValue };

/** What the estate file only points to: the service account's password and the CA certificate text. */
export interface LdapSecrets {
  readonly bindPassword: string;
  readonly ca?: string;
}

/** Read the service password (file or environment variable) and the CA file named by the options. */
export async function readLdapSecrets(
  options: LdapDirectoryOptions,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<LdapSecrets> {
  const o = ldapDirectorySchema.parse(options);
  let bindPassword: string | undefined;
  if (o.bindPasswordFile !== undefined) {
    try {
      bindPassword = (await readFile(o.bindPasswordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (error) {
      throw new Error(`LDAP: cannot read bindPasswordFile ${o.bindPasswordFile}`, { cause: error });
    }
  } else if (o.bindPasswordEnv !== undefined) {
    bindPassword = env[o.bindPasswordEnv];
    if (bindPassword === undefined)
      throw new Error(`LDAP: environment variable ${o.bindPasswordEnv} is not set`);
  }
  if (!bindPassword) throw new Error('LDAP: the service account password is empty');
  let ca = o.tls.ca;
  if (o.tls.caFile !== undefined) {
    try {
      ca = await readFile(o.tls.caFile, 'utf8');
    } catch (error) {
      throw new Error(`LDAP: cannot read tls.caFile ${o.tls.caFile}`, { cause: error });
    }
  }
  return ca === undefined ? { bindPassword } : { bindPassword, ca };
}

/** Read the secrets the options point to, then make the directory. */
export async function openLdapDirectory(
  index: EstateIndex,
  options: LdapDirectoryOptions,
  env?: Readonly<Record<string, string | undefined>>,
): Promise<LdapDirectory> {
  return new LdapDirectory(index, options, await readLdapSecrets(options, env));
}

// --- filters and DNs ---------------------------------------------------------------------------

/**
 * A value escaped for an LDAP filter string (RFC 4515 §3): `*`, `(`, `)`, `\`, NUL and the other ASCII
 * control characters as `\XX`. Non-ASCII characters stay as they are (UTF-8 is valid in a filter).
 */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const c of value) {
    const code = c.charCodeAt(0);
    out +=
      '*()\\'.includes(c) || code < 0x20 || code === 0x7f ? `\\${code.toString(16).padStart(2, '0')}` : c;
  }
  return out;
}

/** True when `s` has whitespace or an ASCII control character. */
const hasSpaceOrControl = (s: string): boolean =>
  /\s/.test(s) || [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/** The server name in msExchHomeServerName: the last cn= of a legacy DN, the first RDN of a DN, or the value. */
function serverNameOf(value: string): string | undefined {
  if (value.startsWith('/')) {
    const i = value.toLowerCase().lastIndexOf('/cn=');
    return i < 0 ? undefined : value.slice(i + 4) || undefined;
  }
  return /^[A-Za-z][A-Za-z0-9-]*=/.test(value) ? firstRdnValue(value) : value || undefined;
}

/** Attribute values of an entry, looked up case-insensitively (servers return names in their own case). */
function valuesOf(entry: Entry, attribute: string): string[] {
  const want = attribute.toLowerCase();
  for (const [key, value] of Object.entries(entry)) {
    if (key.toLowerCase() !== want || key === 'dn') continue;
    const list = Array.isArray(value) ? value : [value];
    return list.map((v) => (typeof v === 'string' ? v : v.toString('utf8')));
  }
  return [];
}

const firstOf = (entry: Entry, attribute: string): string | undefined => valuesOf(entry, attribute)[0];

// --- a semaphore and the pool ------------------------------------------------------------------

/** Counting semaphore whose waits end when the caller's signal aborts. */
class Semaphore {
  #free: number;
  readonly #waiters: { grant: () => void }[] = [];

  constructor(permits: number) {
    this.#free = permits;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next.grant();
    else this.#free++;
  }
}

/** Connection counts of the service pool. */
export interface LdapPoolStats {
  /** The bound (`poolSize`). */
  readonly size: number;
  /** Connections open or being opened now. */
  readonly open: number;
  readonly idle: number;
  /** Lookups waiting for a connection. */
  readonly waiting: number;
  /** The most connections ever open at once. */
  readonly maxOpen: number;
}

/**
 * An ldapts client and what its sockets say. ldapts 8 does not notice when a StartTLS connection closes
 * (its close handler compares the plain socket with the TLS one that replaced it, so `isConnected`
 * stays true and a request written to the dead socket waits for its timeout): the sockets are watched
 * here instead, through the client's own createConnection / createSecureConnection hooks.
 */
interface Connection {
  readonly client: Client;
  /** A socket of this connection has closed. */
  closed: boolean;
  /** When it last went back to the pool (ms since the epoch). */
  idleSince: number;
}

/** The most users of one access grant attribute read per mailbox (each is one base search). */
const maxTrustees = 100;

/** Keep-alive probes on directory connections, so a peer that vanished is noticed while idle (ms). */
const keepAliveMs = 30_000;

function connection(options: ConstructorParameters<typeof Client>[0]): Connection {
  const conn: { client?: Client; closed: boolean; idleSince: number } = { closed: false, idleSince: 0 };
  const watch = <S extends Socket>(socket: S): S => {
    socket.setKeepAlive(true, keepAliveMs);
    // One request, one write, then wait for the answer: Nagle's algorithm with delayed ACKs would add ~40 ms.
    socket.setNoDelay(true);
    socket.once('close', () => {
      conn.closed = true;
    });
    return socket;
  };
  const plain = (...args: unknown[]): Socket => watch((netConnect as (...a: unknown[]) => Socket)(...args));
  const secure = (...args: unknown[]): TLSSocket =>
    watch((tlsConnect as (...a: unknown[]) => TLSSocket)(...args));
  const client = new Client({
    ...options,
    createConnection: plain as typeof netConnect,
    createSecureConnection: secure as typeof tlsConnect,
  });
  return Object.assign(conn, { client });
}

/**
 * At most `size` bound service connections. A permit is held while a connection is in use, and a new
 * connection is made only when none is idle, so open connections never exceed `size`.
 */
class ServicePool {
  readonly #idle: Connection[] = [];
  readonly #permits: Semaphore;
  #open = 0;
  #maxOpen = 0;
  #closed = false;

  constructor(
    readonly size: number,
    readonly idleTimeoutMs: number,
    readonly connect: () => Promise<Connection>,
  ) {
    this.#permits = new Semaphore(size);
  }

  /** A bound connection; `reused` when it was idle in the pool (it may have died unnoticed meanwhile). */
  async acquire(signal: AbortSignal): Promise<{ conn: Connection; reused: boolean }> {
    await this.#permits.acquire(signal);
    try {
      const now = Date.now();
      for (let c = this.#idle.pop(); c !== undefined; c = this.#idle.pop()) {
        // Checked in the same tick as the request is written. A closed connection must not be used:
        // ldapts would reconnect by itself, unbound and without StartTLS.
        if (this.#usable(c) && now - c.idleSince < this.idleTimeoutMs) return { conn: c, reused: true };
        this.#drop(c);
      }
      if (this.#closed) throw new DirectoryUnavailableError('LDAP directory closed');
      this.#open++;
      this.#maxOpen = Math.max(this.#maxOpen, this.#open);
      try {
        return { conn: await this.connect(), reused: false };
      } catch (error) {
        this.#open--;
        throw error;
      }
    } catch (error) {
      this.#permits.release();
      throw error;
    }
  }

  /** Back to the pool after a request that left the connection usable. */
  release(conn: Connection): void {
    if (this.#closed || !this.#usable(conn)) {
      this.#drop(conn);
    } else {
      conn.idleSince = Date.now();
      this.#idle.push(conn);
    }
    this.#permits.release();
  }

  /** Close a connection that failed or timed out. */
  discard(conn: Connection): void {
    this.#drop(conn);
    this.#permits.release();
  }

  stats(): LdapPoolStats {
    return {
      size: this.size,
      open: this.#open,
      idle: this.#idle.length,
      waiting: this.#permits.waiting,
      maxOpen: this.#maxOpen,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    this.#open -= idle.length;
    await Promise.all(idle.map((c) => c.client.unbind().catch(() => undefined)));
  }

  #usable(conn: Connection): boolean {
    return !conn.closed && conn.client.isBound;
  }

  #drop(conn: Connection): void {
    this.#open--;
    void conn.client.unbind().catch(() => undefined);
  }
}

// --- the directory -----------------------------------------------------------------------------

/** Optional hooks of `LdapDirectory`. */
export interface LdapDirectoryHooks {
  /** Called with a sentence when an entry cannot be a mailbox (ambiguous, unknown server, dangling homeMDB). */
  readonly warn?: (message: string) => void;
}

interface Found {
  readonly dn: string;
  readonly mailbox: Mailbox | undefined;
}

/** The directory in LDAP; `close()` when done (open connections keep the process alive). */
export class LdapDirectory implements Directory {
  readonly #index: EstateIndex;
  readonly #o: ResolvedLdapDirectoryOptions;
  readonly #secrets: LdapSecrets;
  readonly #warn: (message: string) => void;
  readonly #url: URL;
  readonly #startTls: boolean;
  readonly #netbios: string | undefined;
  readonly #pool: ServicePool;
  readonly #binds: Semaphore;
  readonly #attributes: string[];
  readonly #dummyDn: string;
  /** The ApplicationImpersonation role assignments (ldap-settings.ts `impersonation`, defaults filled in). */
  readonly #impersonation: readonly ImpersonationAssignment[];
  #closed = false;

  /**
   * `options` as in the estate file (validated here; the transport rules throw); `secrets` as read by
   * `readLdapSecrets`. Server names from the directory are resolved against `index`.
   */
  constructor(
    index: EstateIndex,
    options: LdapDirectoryOptions,
    secrets: LdapSecrets,
    hooks: LdapDirectoryHooks = {},
  ) {
    const parsed = ldapDirectorySchema.safeParse(options);
    if (!parsed.success) {
      throw new Error(
        `LDAP directory options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`,
      );
    }
    if (secrets.bindPassword === '') throw new Error('LDAP directory: the service account password is empty');
    this.#index = index;
    this.#o = parsed.data;
    this.#secrets = secrets;
    this.#warn = hooks.warn ?? (() => undefined);
    this.#url = new URL(this.#o.url);
    this.#startTls = this.#url.protocol === 'ldap:' && this.#o.startTls !== false;
    this.#netbios = this.#o.netbiosDomain ?? netbiosOfEstate(index);
    this.#pool = new ServicePool(this.#o.poolSize, this.#o.idleTimeoutMs, () =>
      this.#connect(this.#o.bindDn, secrets.bindPassword, true),
    );
    this.#binds = new Semaphore(this.#o.maxConcurrentBinds);
    const m = this.#o.mapping;
    this.#attributes = [
      m.mail,
      m.proxyAddresses,
      m.userPrincipalName,
      m.sAMAccountName,
      m.displayName,
      'cn',
      m.mailboxLocation === 'homeMDB' ? m.homeMDB : m.homeServer,
      m.fullAccess,
      m.delegates,
    ];
    this.#dummyDn = `cn=coexist-no-such-user,${this.#o.baseDn}`;
    this.#impersonation = this.#o.impersonation ?? [{ group: defaultImpersonationGroup(this.#o.baseDn) }];
  }

  /** The URL of the directory server (it carries no credentials). */
  get url(): string {
    return this.#o.url;
  }

  /** Connection counts of the lookup pool. */
  poolStats(): LdapPoolStats {
    return this.#pool.stats();
  }

  findMailbox(identity: string): Promise<Mailbox | undefined> {
    return this.#withDeadline('lookup', async (signal) => (await this.#find(identity, signal))?.mailbox);
  }

  authenticate(login: string, password: string): Promise<Mailbox | undefined> {
    // An empty password would be an "unauthenticated" simple bind, which servers may accept as
    // anonymous (RFC 4513 §5.1.2): never a successful check.
    if (password === '') return Promise.resolve(undefined);
    return this.#withDeadline('password check', async (signal) => {
      const found = await this.#find(login, signal);
      // Unknown users bind as a DN that does not exist, so they take about as long as a wrong password.
      const ok = await this.#bindAs(found?.mailbox ? found.dn : this.#dummyDn, password, signal);
      return ok && found?.mailbox ? found.mailbox : undefined;
    });
  }

  /**
   * The primary SMTP addresses of the mailbox users under baseDn (user entries with the mailbox location
   * attribute, through `userFilter`), the first `limit` by address (first-addresses.ts), and how many there
   * are: the sample `coexist trace --all` traces. One paged search of two attributes; each page within
   * timeoutMs, the whole within ten times that (a minute at least).
   */
  mailboxAddresses(limit: number): Promise<{ readonly first: string[]; readonly total: number }> {
    const m = this.#o.mapping;
    const located = m.mailboxLocation === 'homeMDB' ? m.homeMDB : m.homeServer;
    const filter = `(&(objectClass=${m.userObjectClass})${m.userFilter ?? ''}(${located}=*))`;
    const deadline = Math.max(60_000, 10 * this.#o.timeoutMs);
    return this.#withDeadline(
      'listing',
      async (signal) => {
        const { conn } = await this.#pool.acquire(signal);
        const first = new FirstAddresses(limit);
        try {
          const pages = conn.client.searchPaginated(this.#o.baseDn, {
            scope: 'sub',
            filter,
            attributes: [m.mail, m.proxyAddresses],
            derefAliases: 'never',
            paged: { pageSize: 500 },
            timeLimit: Math.max(1, Math.ceil(this.#o.timeoutMs / 1000)),
          });
          for await (const page of pages) {
            if (signal.aborted) throw signal.reason as Error;
            for (const entry of page.searchEntries) {
              const primary =
                valuesOf(entry, m.proxyAddresses)
                  .find((p) => p.startsWith('SMTP:'))
                  ?.slice(5) ?? firstOf(entry, m.mail);
              if (primary !== undefined) first.add(primary);
            }
          }
          this.#pool.release(conn);
          return { first: first.values(), total: first.seen };
        } catch (error) {
          this.#pool.discard(conn);
          if (error instanceof SizeLimitExceededError) {
            // A sample from a cut listing would not be the first N: say where the limit is instead.
            throw new DirectoryUnavailableError(
              `LDAP listing at ${this.#o.url} was stopped by the directory's size limit after ${first.seen} entries: let ${this.#o.bindDn} page through every user (OpenLDAP: limits dn.exact="${this.#o.bindDn}" size.prtotal=unlimited)`,
              { cause: error },
            );
          }
          throw error;
        }
      },
      deadline,
    );
  }

  /** Close the pooled connections; later calls fail with DirectoryUnavailableError. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#pool.close();
  }

  /** Run `work` within `ms` (timeoutMs); past it the caller gets DirectoryUnavailableError and the work is abandoned. */
  #withDeadline<T>(
    what: string,
    work: (signal: AbortSignal) => Promise<T>,
    ms: number = this.#o.timeoutMs,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(new DirectoryUnavailableError('LDAP directory closed'));
    const controller = new AbortController();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const error = new DirectoryUnavailableError(
          `LDAP ${what} at ${this.#o.url} did not complete within ${ms} ms`,
        );
        controller.abort(error);
        reject(error);
      }, ms);
      work(controller.signal).then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(this.#unavailable(what, error));
        },
      );
    });
  }

  #unavailable(what: string, error: unknown): DirectoryUnavailableError {
    if (error instanceof DirectoryUnavailableError) return error;
    const reason =
      error instanceof ResultCodeError
        ? `${error.name} (LDAP result ${error.code})`
        : error instanceof Error
          ? error.message
          : String(error);
    return new DirectoryUnavailableError(`LDAP ${what} at ${this.#o.url} failed: ${reason}`, {
      cause: error,
    });
  }

  #tlsOptions(): ConnectionOptions {
    const host = hostOfUrl(this.#url.href);
    const servername = this.#o.tls.servername ?? (isIP(host) === 0 ? host : undefined);
    // The CA as read from tls.caFile, else the PEM given inline.
    const ca = this.#secrets.ca ?? this.#o.tls.ca;
    return {
      host,
      ...(servername === undefined ? {} : { servername }),
      ...(ca === undefined ? {} : { ca }),
      rejectUnauthorized: this.#o.tls.rejectUnauthorized,
      minVersion: 'TLSv1.2',
    };
  }

  /** A new connection, TLS first (LDAPS or StartTLS), then bound as `dn`. Closed again on any failure. */
  async #connect(dn: string, password: string, service: boolean): Promise<Connection> {
    const conn = connection({
      url: this.#o.url,
      timeout: this.#o.timeoutMs,
      connectTimeout: this.#o.connectTimeoutMs,
      ...(this.#url.protocol === 'ldaps:' ? { tlsOptions: this.#tlsOptions() } : {}),
    });
    try {
      if (this.#startTls) await conn.client.startTLS(this.#tlsOptions());
      await conn.client.bind(dn, password);
      return conn;
    } catch (error) {
      await conn.client.unbind().catch(() => undefined);
      if (service && error instanceof InvalidCredentialsError) {
        throw new DirectoryUnavailableError(
          `LDAP at ${this.#o.url} refused the service account ${dn} (invalid credentials): check bindDn and its password`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /**
   * A search on a pooled connection. A connection that was idle may have been dropped by the server
   * (restart, idle timeout): such a failure is retried once on a new connection. `missingOk`: a base
   * that does not exist gives no entries instead of an error.
   */
  async #search(
    base: string,
    options: { scope: 'base' | 'sub'; filter: string; attributes: string[]; sizeLimit?: number },
    signal: AbortSignal,
    missingOk = false,
  ): Promise<Entry[]> {
    for (let attempt = 0; ; attempt++) {
      const { conn, reused } = await this.#pool.acquire(signal);
      try {
        const { searchEntries } = await conn.client.search(base, {
          ...options,
          derefAliases: 'never',
          timeLimit: Math.max(1, Math.ceil(this.#o.timeoutMs / 1000)),
        });
        this.#pool.release(conn);
        return searchEntries;
      } catch (error) {
        if (error instanceof NoSuchObjectError) {
          this.#pool.release(conn);
          if (missingOk) return [];
          throw error;
        }
        this.#pool.discard(conn);
        const connectionLost = !(error instanceof ResultCodeError);
        if (reused && connectionLost && attempt === 0 && !signal.aborted) continue;
        throw error;
      }
    }
  }

  /** The filter for an identity, or undefined when it cannot name a user (then nothing is asked). */
  #filterFor(identity: string): string | undefined {
    // Whitespace and control characters are in no address or login (and LDAP's caseIgnoreMatch would
    // fold spaces, finding users the estate file would not).
    if (identity.length === 0 || identity.length > 512 || hasSpaceOrControl(identity)) return undefined;
    const m = this.#o.mapping;
    const eq = (attribute: string, value: string): string => `(${attribute}=${escapeFilterValue(value)})`;
    let forms: string;
    const slash = identity.indexOf('\\');
    if (slash >= 0) {
      const domain = identity.slice(0, slash);
      const name = identity.slice(slash + 1);
      if (this.#netbios === undefined || domain.toLowerCase() !== this.#netbios.toLowerCase())
        return undefined;
      if (name === '' || name.includes('\\') || name.includes('@')) return undefined;
      forms = eq(m.sAMAccountName, name);
    } else if (identity.includes('@')) {
      forms = `(|${eq(m.mail, identity)}${eq(m.proxyAddresses, `smtp:${identity}`)}${eq(m.userPrincipalName, identity)})`;
    } else {
      return undefined;
    }
    return `(&${eq('objectClass', m.userObjectClass)}${m.userFilter ?? ''}${forms})`;
  }

  /** The user's entry and, when it is a mailbox of this estate, the mailbox. */
  async #find(identity: string, signal: AbortSignal): Promise<Found | undefined> {
    const filter = this.#filterFor(identity);
    if (filter === undefined) return undefined;
    const entries = await this.#search(
      this.#o.baseDn,
      { scope: 'sub', filter, attributes: this.#attributes, sizeLimit: 2 },
      signal,
    );
    if (entries.length !== 1) {
      if (entries.length > 1) this.#warn(`LDAP: more than one user answers to ${identity}; none is used`);
      return undefined;
    }
    const entry = entries[0] as Entry;
    return { dn: entry.dn, mailbox: await this.#mailboxOf(entry, signal) };
  }

  async #mailboxOf(entry: Entry, signal: AbortSignal): Promise<Mailbox | undefined> {
    const m = this.#o.mapping;
    const proxies = valuesOf(entry, m.proxyAddresses);
    const primary = proxies.find((p) => p.startsWith('SMTP:'))?.slice(5) ?? firstOf(entry, m.mail);
    if (primary === undefined) return undefined;
    const aliases = proxies
      .filter((p) => p.startsWith('smtp:'))
      .map((p) => p.slice(5))
      .filter((a) => a.toLowerCase() !== primary.toLowerCase());

    let serverName: string | undefined;
    let database: string | undefined;
    if (m.mailboxLocation === 'homeMDB') {
      const homeMdb = firstOf(entry, m.homeMDB);
      if (homeMdb === undefined) return undefined; // no mailbox
      database = firstRdnValue(homeMdb);
      const [db] = await this.#search(
        homeMdb,
        { scope: 'base', filter: '(objectClass=*)', attributes: [m.databaseServer] },
        signal,
        true,
      );
      const owner = db && firstOf(db, m.databaseServer);
      serverName = owner && firstRdnValue(owner);
      if (serverName === undefined) {
        this.#warn(`LDAP: ${entry.dn}: its homeMDB ${homeMdb} has no ${m.databaseServer}`);
        return undefined;
      }
    } else {
      const home = firstOf(entry, m.homeServer);
      if (home === undefined) return undefined;
      serverName = serverNameOf(home);
    }
    const server: Server | undefined = serverName === undefined ? undefined : this.#index.server(serverName);
    const site = server && this.#index.site(server.site);
    if (!server || !site) {
      this.#warn(`LDAP: ${entry.dn}: its mailbox server ${serverName ?? '(none)'} is not in the estate`);
      return undefined;
    }
    const sam = firstOf(entry, m.sAMAccountName);
    const upn = firstOf(entry, m.userPrincipalName);
    const displayName = firstOf(entry, m.displayName) ?? firstOf(entry, 'cn') ?? primary;
    const fullAccess = await this.#trustees(entry, m.fullAccess, signal);
    const delegates = await this.#trustees(entry, m.delegates, signal);
    const impersonation = await this.#impersonationOf(entry.dn, signal);
    const user: User = {
      address: primary,
      displayName,
      aliases,
      ...(sam !== undefined && this.#netbios !== undefined ? { login: `${this.#netbios}\\${sam}` } : {}),
      ...(upn === undefined ? {} : { upn }),
      mailboxServer: server.name,
      ...(database === undefined ? {} : { database }),
      ...(fullAccess.length === 0 ? {} : { fullAccess }),
      ...(delegates.length === 0 ? {} : { delegates }),
      ...(impersonation === undefined ? {} : { impersonation }),
    };
    return { address: primary, displayName, server, site, family: familyOf(server.version), user };
  }

  /**
   * The primary addresses of the users an access grant attribute links to (DNs: msExchDelegateListLink,
   * publicDelegates), each read from its entry; a link to an entry that is gone or has no address is
   * dropped. At most `maxTrustees` are read (docs/security.md "Mailbox access").
   */
  async #trustees(entry: Entry, attribute: string, signal: AbortSignal): Promise<string[]> {
    const dns = valuesOf(entry, attribute);
    if (dns.length > maxTrustees)
      this.#warn(
        `LDAP: ${entry.dn}: ${attribute} has ${dns.length} values; the first ${maxTrustees} are used`,
      );
    const m = this.#o.mapping;
    const found = await Promise.all(
      dns.slice(0, maxTrustees).map(async (dn) => {
        const [trustee] = await this.#search(
          dn,
          { scope: 'base', filter: '(objectClass=*)', attributes: [m.mail, m.proxyAddresses] },
          signal,
          true,
        );
        if (!trustee) return undefined;
        return (
          valuesOf(trustee, m.proxyAddresses)
            .find((p) => p.startsWith('SMTP:'))
            ?.slice(5) ?? firstOf(trustee, m.mail)
        );
      }),
    );
    return found.filter((a): a is string => a !== undefined);
  }

  /**
   * The ApplicationImpersonation role the user `dn` holds (docs/security.md "Mailbox access"): `all` when a
   * group assigned it without a scope has the user as a member, else the primary addresses of the members
   * of the scope groups of the assignments the user is in; undefined when the user is in none. One base
   * search per assignment (is the user a member?), and the scope group's members only for a role holder.
   */
  async #impersonationOf(dn: string, signal: AbortSignal): Promise<'all' | string[] | undefined> {
    let scoped: string[] | undefined;
    for (const assignment of this.#impersonation) {
      const [holder] = await this.#search(
        assignment.group,
        { scope: 'base', filter: `(member=${escapeFilterValue(dn)})`, attributes: ['cn'] },
        signal,
        true,
      );
      if (!holder) continue;
      if (assignment.scope === undefined) return 'all';
      const [scope] = await this.#search(
        assignment.scope,
        { scope: 'base', filter: '(objectClass=*)', attributes: ['member'] },
        signal,
        true,
      );
      scoped = [...(scoped ?? []), ...(scope ? await this.#trustees(scope, 'member', signal) : [])];
    }
    return scoped && [...new Set(scoped)];
  }

  /** A simple bind as `dn` on a connection of its own: true for the right password, false for a wrong one. */
  async #bindAs(dn: string, password: string, signal: AbortSignal): Promise<boolean> {
    await this.#binds.acquire(signal);
    try {
      const conn = await this.#connect(dn, password, false);
      await conn.client.unbind().catch(() => undefined);
      return true;
    } catch (error) {
      if (error instanceof InvalidCredentialsError) return false;
      throw error;
    } finally {
      this.#binds.release();
    }
  }
}

/** The NetBIOS domain of the estate's logins (DOMAIN\user), when they all share one. */
function netbiosOfEstate(index: EstateIndex): string | undefined {
  const domains = new Set<string>();
  let first: string | undefined;
  for (const u of index.estate.users) {
    const slash = u.login?.indexOf('\\') ?? -1;
    if (u.login === undefined || slash <= 0) continue;
    const d = u.login.slice(0, slash);
    first ??= d;
    domains.add(d.toLowerCase());
  }
  if (domains.size > 1) {
    throw new Error(
      `LDAP directory: the estate's logins use ${domains.size} domains (${[...domains].join(', ')}); set netbiosDomain`,
    );
  }
  return first;
}
