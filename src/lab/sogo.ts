/**
 * A throwaway SOGo ActiveSync stack on loopback, for tests that need a real EAS back end: a private
 * PostgreSQL cluster (the SQL user source and SOGo's own tables), memcached on a unix socket, Dovecot IMAP and
 * SOGo, each in the foreground as a child of this process, in its own process group, on free 127.0.0.1
 * ports, with all state in one temp dir that `stop()` removes. Recipe, measurements and SOGo's quirks:
 * shared lab notes real-activesync-sogo.md (§2 configuration, §2.3 the CONDSTORE warm-up, §4 what SOGo
 * expects, §6 the start/stop outline). Debian packages: sogo sogo-activesync dovecot-imapd memcached
 * postgresql (.ci/run installs them).
 *
 * Runs as root, unattended. Every daemon is started through setpriv, which execs in place (the recorded PID
 * is the daemon's) and sets SIGKILL as its parent-death signal, so nothing outlives a test process that is
 * killed outright; the next start removes such a process's state dir. PostgreSQL runs as `postgres`, sogod
 * as `sogo`, memcached as `memcache`; Dovecot's master stays root and runs its services as its own users.
 * Nothing goes through a shell: passwords are hashed ({SSHA256}) into the SQL table and Dovecot's
 * passwd-file, and sent over IMAP as quoted strings or literals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants as fsConstants,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { freePort } from './free-port.ts';

/** A mailbox user: the same login and password for SOGo (SQL source) and Dovecot (passwd-file). */
export interface SogoUser {
  /** A plain name or a full address such as `bob@o365info.com`. */
  readonly login: string;
  readonly password: string;
  readonly displayName: string;
  readonly email: string;
}

/** A plain-text message, rendered as RFC 5322 (UTF-8, CRLF). */
export interface SogoMessage {
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly body: string;
}

/** Options of `startSogoStack`. */
export interface SogoStackOptions {
  /** The stack's name, e.g. `MBX2007-NY`, used in logs and error messages. */
  readonly name: string;
  readonly users: readonly SogoUser[];
  /** By login: messages put into that user's INBOX before SOGo starts. */
  readonly seed?: Readonly<Record<string, readonly SogoMessage[]>>;
  /** `WOWorkersCount`: pre-forked SOGo workers, each holding one request (a Ping holds one); 6 by default. */
  readonly workers?: number;
  /** `SOGoMaximumPingInterval` and `SOGoMaximumSyncInterval` in seconds; 20 by default (SOGo polls every 5 s). */
  readonly maxPingSeconds?: number;
  /** `SOGoEASDebugEnabled`: every EAS request and response, decoded to XML, goes into sogo.log. */
  readonly debug?: boolean;
  /** The deadline of every wait during start, in ms; by default 15 s for PostgreSQL, 10 s for the others, 30 s for SOGo. */
  readonly readyTimeoutMs?: number;
  /**
   * Where the state dir is made: /dev/shm (tmpfs) when it is there, else the OS temp dir. On tmpfs initdb
   * takes about a quarter of the time it takes on disk. Users `postgres`, `sogo` and `mail` must be able to
   * enter it.
   */
  readonly parentDir?: string;
}

/** A running SOGo stack. */
export interface SogoStack {
  readonly name: string;
  readonly host: '127.0.0.1';
  /** SOGo's HTTP port. */
  readonly port: number;
  /** `http://127.0.0.1:<port>/SOGo/Microsoft-Server-ActiveSync` (the path SOGo answers EAS on, case and all). */
  readonly activeSyncUrl: string;
  readonly imapPort: number;
  readonly postgresPort: number;
  /** The temp dir with all the state; gone after `stop()`. */
  readonly stateDir: string;
  /** The PID of each daemon (also its process group id): postgres, memcached, dovecot, sogod. */
  readonly pids: Readonly<Record<string, number>>;
  /** IMAP APPEND an RFC 5322 message into the user's INBOX (as the user), resolves when stored. */
  deliver(login: string, message: SogoMessage | string): Promise<void>;
  /** Log file contents (sogo, dovecot, postgres, ...; the tail of each) for failure messages. */
  logs(): string;
  /** Stop every daemon (SIGKILL to its process group if it lingers), reap it and remove the state dir. */
  stop(): Promise<void>;
}

const host = '127.0.0.1';
const sogodPath = '/usr/sbin/sogod';
const activeSyncBundle = '/usr/lib/GNUstep/SOGo/ActiveSync.SOGo';
const dovecotPath = '/usr/sbin/dovecot';
const memcachedPath = '/usr/bin/memcached';
const setprivPath = '/usr/bin/setpriv';
const packages = 'sogo sogo-activesync dovecot-imapd memcached postgresql';
const installHint = `On Debian, as root: apt-get install -y --no-install-recommends ${packages} (.ci/run does this, with a deny-all policy-rc.d so no service starts)`;

/** The newest PostgreSQL server binaries Debian installed (/usr/lib/postgresql/<major>/bin), if any. */
function postgresBinDir(): string | undefined {
  let majors: number[];
  try {
    majors = readdirSync('/usr/lib/postgresql')
      .filter((d) => /^\d+$/.test(d))
      .map(Number)
      .sort((a, b) => b - a);
  } catch {
    return undefined;
  }
  for (const major of majors) {
    const dir = `/usr/lib/postgresql/${major}/bin`;
    if (['initdb', 'postgres', 'pg_isready', 'psql'].every((b) => isExecutable(join(dir, b)))) return dir;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Undefined when everything the stack needs is installed; otherwise what is missing and how to install it. */
export function sogoAvailable(): string | undefined {
  const missing: string[] = [];
  if (!isExecutable(sogodPath)) missing.push(`${sogodPath} (sogo)`);
  try {
    accessSync(activeSyncBundle);
  } catch {
    missing.push(`${activeSyncBundle} (sogo-activesync)`);
  }
  if (!isExecutable(dovecotPath)) missing.push(`${dovecotPath} (dovecot-imapd)`);
  else if (!isExecutable('/usr/lib/dovecot/imap')) missing.push('/usr/lib/dovecot/imap (dovecot-imapd)');
  if (!isExecutable(memcachedPath)) missing.push(`${memcachedPath} (memcached)`);
  if (!postgresBinDir())
    missing.push('/usr/lib/postgresql/*/bin/{initdb,postgres,pg_isready,psql} (postgresql)');
  if (!isExecutable(setprivPath)) missing.push(`${setprivPath} (util-linux)`);
  if (missing.length === 0) {
    const accounts = readAccounts();
    for (const user of ['postgres', 'sogo', 'mail', 'memcache', 'dovecot', 'dovenull']) {
      if (!accounts.has(user)) missing.push(`system user ${user}`);
    }
  }
  if (missing.length === 0) return undefined;
  return `SOGo ActiveSync stack not installed: missing ${missing.join(', ')}. ${installHint}.`;
}

/** uid and gid of the system accounts, from /etc/passwd. */
function readAccounts(): Map<string, { uid: number; gid: number }> {
  const accounts = new Map<string, { uid: number; gid: number }>();
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return accounts;
  }
  for (const line of text.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user && uid && gid) accounts.set(user, { uid: Number(uid), gid: Number(gid) });
  }
  return accounts;
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** True when a connection to a TCP port or a unix socket is accepted. */
function accepts(target: { port: number } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = 'port' in target ? connect({ host, port: target.port }) : connect({ path: target.path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Run a program to completion (no shell), feeding `input` on stdin; resolves with its exit code and output.
 * Past `timeoutMs` it is killed and the promise rejects.
 */
function run(
  file: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; cwd: string; input?: string; timeoutMs: number },
): Promise<{ code: number | string | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env, cwd: options.cwd });
    let output = '';
    let timedOut = false;
    const collect = (d: Buffer): void => {
      output = (output + d.toString()).slice(-8000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        const name = basename(file);
        reject(
          new Error(
            `${name} did not finish within ${options.timeoutMs} ms${output ? `: ${output.trim()}` : ''}`,
          ),
        );
      } else {
        resolve({ code: code ?? signal, output });
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** One GET or OPTIONS to SOGo on a fresh connection (SOGo closes every connection without saying so). */
function httpStatus(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port, method, path, headers, agent: false, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** LDAP-style salted SHA-256 (`{SSHA256}` base64(sha256(password + salt) + salt)), understood by both SOGo and Dovecot. */
function ssha256(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha256').update(password, 'utf8').update(salt).digest();
  return `{SSHA256}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** An SQL string literal (standard_conforming_strings is on: only quotes are doubled). */
const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** An RFC 5322 date in UTC, e.g. `Tue, 01 Dec 2026 22:14:00 +0000`. */
function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

// eslint-disable-next-line no-control-regex
const nonAscii = /[^\x00-\x7f]/;

/**
 * The message as RFC 5322 text: From, To, Subject (RFC 2047 encoded when not ASCII), Date, Message-ID and a
 * text/plain UTF-8 body; line breaks become CRLF. A string is taken as a whole message, only its bare LFs
 * become CRLF.
 */
export function renderSogoMessage(message: SogoMessage | string, now: Date = new Date()): string {
  if (typeof message === 'string') return message.replace(/\r?\n/g, '\r\n');
  for (const field of ['from', 'to', 'subject'] as const) {
    if (/[\r\n]/.test(message[field]))
      throw new Error(`message ${field} must be one line: ${JSON.stringify(message[field])}`);
  }
  const subject = nonAscii.test(message.subject)
    ? `=?UTF-8?B?${Buffer.from(message.subject, 'utf8').toString('base64')}?=`
    : message.subject;
  const body = message.body.replace(/\r?\n/g, '\r\n');
  return [
    `From: ${message.from}`,
    `To: ${message.to}`,
    `Subject: ${subject}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${randomUUID()}@coexist.lab>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${nonAscii.test(body) ? '8bit' : '7bit'}`,
    '',
    body.endsWith('\r\n') ? body : `${body}\r\n`,
  ].join('\r\n');
}

// ---------------------------------------------------------------------------------------------------------
// A minimal IMAP client: LOGIN, ENABLE, SELECT, APPEND with literals, LOGOUT.

/** One part of an IMAP command: text as is, or a string/bytes sent as a (synchronizing) literal. */
type ImapPart = string | { readonly literal: string | Buffer };

/** An IMAP astring: quoted when plain printable ASCII, otherwise a literal. */
const imapString = (s: string): ImapPart =>
  /^[\x20-\x7e]*$/.test(s) ? `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"` : { literal: s };

class ImapSession {
  readonly #socket;
  #buffer = Buffer.alloc(0);
  #closed: Error | undefined;
  #wake: (() => void) | undefined;
  #tag = 0;

  private constructor(
    port: number,
    readonly deadline: number,
  ) {
    this.#socket = connect({ host, port });
    this.#socket.on('data', (d: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      this.#wake?.();
    });
    this.#socket.on('error', (error) => {
      this.#closed ??= error;
      this.#wake?.();
    });
    this.#socket.on('close', () => {
      this.#closed ??= new Error('connection closed by the server');
      this.#wake?.();
    });
  }

  /** Connect, read the greeting and log in. */
  static async open(port: number, login: string, password: string, timeoutMs: number): Promise<ImapSession> {
    const session = new ImapSession(port, Date.now() + timeoutMs);
    try {
      const greeting = await session.#line();
      if (!greeting.startsWith('* OK')) throw new Error(`unexpected greeting: ${greeting}`);
      await session.command(['LOGIN ', imapString(login), ' ', imapString(password)]);
      return session;
    } catch (error) {
      session.close();
      throw error;
    }
  }

  /** The next CRLF-terminated line from the server. */
  async #line(): Promise<string> {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = this.#buffer.subarray(0, end).toString('utf8');
        this.#buffer = this.#buffer.subarray(end + 2);
        return line;
      }
      if (this.#closed) throw this.#closed;
      const left = this.deadline - Date.now();
      if (left <= 0) throw new Error('IMAP server did not answer in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Send one tagged command (waiting for `+` before each literal); resolves with the untagged lines on OK. */
  async command(parts: readonly ImapPart[]): Promise<string[]> {
    const tag = `c${++this.#tag}`;
    const untagged: string[] = [];
    let pending = `${tag} `;
    for (const part of parts) {
      if (typeof part === 'string') {
        pending += part;
        continue;
      }
      const bytes = typeof part.literal === 'string' ? Buffer.from(part.literal, 'utf8') : part.literal;
      this.#socket.write(`${pending}{${bytes.length}}\r\n`);
      pending = '';
      for (;;) {
        const line = await this.#line();
        if (line.startsWith('+')) break;
        if (line.startsWith(`${tag} `)) throw new Error(`${redact(parts)} refused: ${line}`);
        untagged.push(line);
      }
      this.#socket.write(bytes);
    }
    this.#socket.write(`${pending}\r\n`);
    for (;;) {
      const line = await this.#line();
      if (!line.startsWith(`${tag} `)) {
        untagged.push(line);
        continue;
      }
      if (line.startsWith(`${tag} OK`)) return untagged;
      throw new Error(`${redact(parts)} refused: ${line}`);
    }
  }

  /** LOGOUT (best effort) and close. */
  async logout(): Promise<void> {
    try {
      await this.command(['LOGOUT']);
    } catch {
      // The server may close before the tagged OK; the work is done either way.
    } finally {
      this.close();
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** The command's name for error messages (never the password or message). */
const redact = (parts: readonly ImapPart[]): string => {
  const first = parts[0];
  return typeof first === 'string' ? (first.trim().split(' ')[0] ?? 'command') : 'command';
};

// ---------------------------------------------------------------------------------------------------------
// Daemons

interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves once the process has exited and been reaped. */
  readonly exited: Promise<void>;
  /** Exit code or signal once exited. */
  exit: number | string | null | undefined;
  spawnError: Error | undefined;
}

/** A daemon exited before it was ready; `portClash` when its log says its port was taken. */
class EarlyExitError extends Error {
  constructor(
    message: string,
    readonly portClash: boolean,
  ) {
    super(message);
  }
}

/** A start step failed: names the stack, the step and shows the tail of the relevant logs. */
export class SogoStackError extends Error {
  override readonly name = 'SogoStackError';
}

/** A start step not run because a step beside it failed (the error reported is that step's). */
class StepSkippedError extends SogoStackError {}

const liveStacks = new Set<Stack>();
let exitHookInstalled = false;

/** Last resort when the test process exits without `stop()`: SIGKILL every process group still running. */
function killAllOnExit(): void {
  for (const stack of liveStacks) stack.killNow();
}

/** One line of /proc/<pid>/stat: enough to follow a daemon's process tree and to tell a reused PID apart. */
interface ProcEntry {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  readonly state: string;
  /** Start time in clock ticks after boot: with the PID, identifies the process. */
  readonly start: string;
}

function procEntry(pid: number): ProcEntry | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
  // cstime priority nice threads itrealvalue starttime ...; comm may hold spaces and parentheses.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(f[1]), pgrp: Number(f[2]), state: f[0] ?? '?', start: f[19] ?? '' };
}

function processTable(): ProcEntry[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  return entries
    .filter((e) => /^\d+$/.test(e))
    .map((e) => procEntry(Number(e)))
    .filter((e): e is ProcEntry => e !== undefined);
}

const running = (e: ProcEntry | undefined): e is ProcEntry =>
  e !== undefined && e.state !== 'Z' && e.state !== 'X';

/**
 * The live processes that belong to the daemons with these PIDs: their process groups and all their
 * descendants (PostgreSQL's backends call setsid, so they are in groups of their own).
 */
function treeOf(rootPids: Iterable<number>): ProcEntry[] {
  const table = processTable().filter(running);
  const roots = new Set(rootPids);
  const found = new Map<number, ProcEntry>();
  for (const e of table) if (roots.has(e.pid) || roots.has(e.pgrp)) found.set(e.pid, e);
  for (let grew = true; grew;) {
    grew = false;
    for (const e of table) {
      if (!found.has(e.pid) && found.has(e.ppid)) {
        found.set(e.pid, e);
        grew = true;
      }
    }
  }
  return [...found.values()];
}

/** Still the same process (same PID and start time) and not a zombie. */
const stillRunning = (e: ProcEntry): boolean => {
  const now = procEntry(e.pid);
  return running(now) && now.start === e.start;
};

class Stack implements SogoStack {
  readonly host = host;
  readonly daemons: Daemon[] = [];
  port = 0;
  imapPort = 0;
  postgresPort = 0;
  #stopping: Promise<void> | undefined;
  #finalLogs: string | undefined;
  readonly #passwords = new Map<string, string>();
  /** Set when a start step fails; the first failure is the one reported. */
  failed = false;
  firstFailure: SogoStackError | undefined;
  readonly env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    TZ: 'UTC',
  };

  constructor(
    readonly name: string,
    readonly stateDir: string,
    users: readonly SogoUser[],
  ) {
    for (const u of users) this.#passwords.set(u.login, u.password);
  }

  get activeSyncUrl(): string {
    return `http://${host}:${this.port}/SOGo/Microsoft-Server-ActiveSync`;
  }

  get pids(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.daemons.map((d) => [d.name, d.pid]));
  }

  path(...parts: string[]): string {
    return join(this.stateDir, ...parts);
  }

  /**
   * Spawn a daemon in the foreground in its own process group, stdout and stderr appended to
   * log/<name>.out, through setpriv (which execs in place, so the PID is the daemon's): as `user` when given,
   * and with SIGKILL as its parent-death signal, so it does not outlive this process even when this process
   * is killed without running its exit handlers.
   */
  spawnDaemon(name: string, user: string | undefined, file: string, args: readonly string[]): Daemon {
    const out = openSync(this.path('log', `${name}.out`), 'a');
    let child: ChildProcess;
    try {
      child = spawn(setprivPath, [...setprivArgs(user), file, ...args], {
        detached: true,
        stdio: ['ignore', out, out],
        env: this.env,
        cwd: this.stateDir,
      });
    } finally {
      closeSync(out);
    }
    let resolveExit: () => void = () => undefined;
    const exited = new Promise<void>((resolve) => (resolveExit = resolve));
    const daemon: Daemon = {
      name,
      child,
      pid: child.pid ?? -1,
      exited,
      exit: undefined,
      spawnError: undefined,
    };
    child.once('exit', (code, signal) => {
      daemon.exit = code ?? signal;
      resolveExit();
    });
    // A stack nobody stops does not keep the process alive: at exit, `killAllOnExit` ends it. Every wait
    // on a daemon polls with a timer, so this process stays up while it waits.
    child.unref();
    child.once('error', (error) => {
      daemon.spawnError = error;
      daemon.exit ??= 'spawn error';
      resolveExit();
    });
    if (child.pid === undefined) {
      // spawn failed synchronously (ENOENT...): the 'error' event follows.
      daemon.exit = 'spawn error';
    } else {
      this.daemons.push(daemon);
    }
    return daemon;
  }

  /** Poll `ready` until it is true; fail when the daemon exits first or the deadline passes. */
  async waitReady(
    daemon: Daemon,
    what: string,
    timeoutMs: number,
    ready: () => Promise<boolean>,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (daemon.exit !== undefined) {
        const out = this.tail([`${daemon.name}.out`, ...this.logFilesOf(daemon.name)], 4000);
        throw new EarlyExitError(
          `${daemon.name} exited (${String(daemon.exit)}${daemon.spawnError ? `: ${daemon.spawnError.message}` : ''}) before ${what}`,
          /address already in use|could not bind|could not create any TCP\/IP sockets|bind\(.*\) failed/i.test(
            out,
          ),
        );
      }
      if (await ready()) return;
      if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await delay(20);
    }
  }

  logFilesOf(daemon: string): string[] {
    switch (daemon) {
      case 'sogod':
        return ['sogo.log'];
      case 'dovecot':
        return ['dovecot.log'];
      case 'postgres':
        return ['initdb.out'];
      default:
        return [];
    }
  }

  /** The tail of each named log file that exists (all of them when `files` is omitted). */
  tail(files?: readonly string[], max = 6000): string {
    let names: string[];
    try {
      names = files ? [...files] : readdirSync(this.path('log')).sort();
    } catch {
      return '';
    }
    const sections: string[] = [];
    for (const file of names) {
      let text: string;
      try {
        text = readFileSync(this.path('log', file), 'utf8');
      } catch {
        continue;
      }
      if (!text.trim()) continue;
      const cut =
        text.length > max ? `[... ${text.length - max} characters before]\n${text.slice(-max)}` : text;
      sections.push(`--- ${file} ---\n${cut.trimEnd()}`);
    }
    return sections.join('\n');
  }

  logs(): string {
    return this.#finalLogs ?? this.tail();
  }

  /** Run a start step; on failure throw an error naming the stack, the step and the logs that matter. */
  async step<T>(step: string, logFiles: readonly string[], fn: () => Promise<T>): Promise<T> {
    // A step running side by side with one that failed: do not start more daemons (they would be stopped at once).
    if (this.failed)
      throw new StepSkippedError(`SOGo stack ${this.name}: ${step} skipped: another step failed`);
    try {
      return await fn();
    } catch (error) {
      this.failed = true;
      if (error instanceof SogoStackError) throw error;
      const logs = this.tail(logFiles, 3000);
      const failure = new SogoStackError(
        `SOGo stack ${this.name}: ${step} failed: ${errorText(error)}${logs ? `\n${logs}` : ''}`,
        { cause: error },
      );
      this.firstFailure ??= failure;
      throw failure;
    }
  }

  async deliver(login: string, message: SogoMessage | string): Promise<void> {
    const password = this.#passwords.get(login);
    if (password === undefined) throw new Error(`SOGo stack ${this.name}: deliver: no user ${login}`);
    if (this.#stopping) throw new Error(`SOGo stack ${this.name}: deliver: the stack is stopped`);
    try {
      await appendMessages(this.imapPort, login, password, [renderSogoMessage(message)], false, 10_000);
    } catch (error) {
      throw new Error(`SOGo stack ${this.name}: deliver to ${login}: ${errorText(error)}`, { cause: error });
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    // All at once: the state is thrown away, so the order does not matter. sogod's idle workers do not exit
    // quickly on SIGTERM (lab notes §5), so what is left of it gets SIGKILL after half a second; Dovecot's
    // master takes about a second; SIGINT is PostgreSQL's fast shutdown.
    const graceMs: Record<string, number> = { sogod: 500, dovecot: 3000, memcached: 3000, postgres: 3000 };
    const left = (
      await Promise.all(
        this.daemons.map((d) =>
          stopDaemon(d, d.name === 'postgres' ? 'SIGINT' : 'SIGTERM', graceMs[d.name] ?? 3000),
        ),
      )
    ).flat();
    this.#finalLogs = this.tail();
    liveStacks.delete(this);
    await rm(this.stateDir, { recursive: true, force: true });
    if (left.length > 0) {
      throw new Error(
        `SOGo stack ${this.name}: processes still running after stop: ${left.map((e) => e.pid).join(', ')}`,
      );
    }
  }

  /** SIGKILL every daemon's processes now (synchronous; for process exit). */
  killNow(): void {
    const tree = treeOf(this.daemons.filter((d) => d.exit === undefined).map((d) => d.pid));
    for (const d of this.daemons) {
      if (d.exit === undefined) killGroup(d.pid, 'SIGKILL');
    }
    for (const e of tree) {
      try {
        process.kill(e.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    try {
      rmSync(this.stateDir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }
}

/** setpriv's arguments up to the program: the user (and its groups) if any, and the parent-death signal. */
function setprivArgs(user: string | undefined): string[] {
  return [
    ...(user ? [`--reuid=${user}`, `--regid=${user}`, '--init-groups'] : []),
    '--pdeathsig',
    'KILL',
    '--',
  ];
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nothing left in the group
  }
}

/**
 * Signal the daemon, wait up to `graceMs` for it and its processes to exit, then SIGKILL what is left (its
 * process group, and each process of its tree recorded before the signal, checked by start time), and wait
 * until the daemon is reaped and none of them runs. Resolves with the processes still running at the deadline.
 */
async function stopDaemon(d: Daemon, signal: NodeJS.Signals, graceMs: number): Promise<ProcEntry[]> {
  // The daemon itself (until it is reaped), its process group and its descendants, as they are now.
  const tree = treeOf([d.pid]);
  const done = (): boolean => d.exit !== undefined && !tree.some(stillRunning);
  if (d.exit === undefined) {
    try {
      process.kill(d.pid, signal);
    } catch {
      // already gone
    }
  }
  const graceEnd = Date.now() + graceMs;
  while (!done() && Date.now() < graceEnd) await delay(10);
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) return tree.filter(stillRunning);
    if (d.exit === undefined) killGroup(d.pid, 'SIGKILL');
    for (const e of tree.filter(stillRunning)) {
      try {
        process.kill(e.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await delay(10);
  }
  return [];
}

/** Log in as the user and APPEND each message to INBOX; with `warmUp`, first enable CONDSTORE and SELECT the folders. */
async function appendMessages(
  port: number,
  login: string,
  password: string,
  messages: readonly string[],
  warmUp: boolean,
  timeoutMs: number,
): Promise<void> {
  const session = await ImapSession.open(port, login, password, timeoutMs);
  try {
    if (warmUp) {
      // Lab notes §2.3: SOGo's collection tag needs HIGHESTMODSEQ in the SELECT answer, which a fresh
      // Dovecot mailbox reports only once a session has enabled CONDSTORE on it (then it sticks in the
      // index). Without this the first Sync of a fresh INBOX comes back empty.
      await session.command(['ENABLE CONDSTORE']);
      for (const folder of ['INBOX', 'Drafts', 'Sent', 'Trash']) await session.command([`SELECT ${folder}`]);
    }
    for (const message of messages) await session.command(['APPEND INBOX ', { literal: message }]);
  } catch (error) {
    session.close();
    throw error;
  }
  await session.logout();
}

// ---------------------------------------------------------------------------------------------------------
// Start

/** /dev/shm when it is a directory everyone may write to (a tmpfs on Linux), else the OS temp dir. */
function defaultParentDir(): string {
  try {
    accessSync('/dev/shm', fsConstants.W_OK | fsConstants.X_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/** The longest unix socket path under the state dir, with a margin: `/dovecot/run/token-login/imap-urlauth`. */
const maxSocketSuffix = 40;

const loginPattern = /^[A-Za-z0-9._%+-]+(@[A-Za-z0-9.-]+)?$/;

function validate(o: SogoStackOptions): void {
  if (!o.name.trim()) throw new Error('startSogoStack: name must not be empty');
  if (o.users.length === 0) throw new Error(`SOGo stack ${o.name}: at least one user is needed`);
  const seen = new Set<string>();
  for (const u of o.users) {
    if (!loginPattern.test(u.login)) {
      throw new Error(
        `SOGo stack ${o.name}: login ${JSON.stringify(u.login)} must be a name or an address (letters, digits, . _ % + - @)`,
      );
    }
    // Dovecot lowercases logins (auth_username_format %Lu), so two logins differing in case would collide.
    if (seen.has(u.login.toLowerCase())) throw new Error(`SOGo stack ${o.name}: duplicate login ${u.login}`);
    seen.add(u.login.toLowerCase());
    if (u.password === '' || /[\0\r\n]/.test(u.password)) {
      throw new Error(
        `SOGo stack ${o.name}: password of ${u.login} must be non-empty, without NUL, CR or LF`,
      );
    }
    if (/[\0\r\n]/.test(u.displayName + u.email)) {
      throw new Error(`SOGo stack ${o.name}: display name and email of ${u.login} must be one line`);
    }
  }
  for (const login of Object.keys(o.seed ?? {})) {
    if (!o.users.some((u) => u.login === login))
      throw new Error(`SOGo stack ${o.name}: seed for unknown user ${login}`);
  }
  const workers = o.workers ?? 6;
  if (!Number.isInteger(workers) || workers < 1)
    throw new Error(`SOGo stack ${o.name}: workers must be a positive integer`);
  const ping = o.maxPingSeconds ?? 20;
  if (!Number.isInteger(ping) || ping < 2)
    throw new Error(`SOGo stack ${o.name}: maxPingSeconds must be an integer >= 2`);
}

/** Start PostgreSQL, memcached, Dovecot and SOGo on loopback; on any failure, stop what was started and throw. */
export async function startSogoStack(o: SogoStackOptions): Promise<SogoStack> {
  const missing = sogoAvailable();
  if (missing) throw new Error(`SOGo stack ${o.name}: ${missing}`);
  if (process.getuid?.() !== 0) {
    throw new Error(
      `SOGo stack ${o.name}: must run as root (PostgreSQL runs as postgres and sogod as sogo through setpriv)`,
    );
  }
  validate(o);
  const parentDir = o.parentDir ?? defaultParentDir();
  await removeStaleStateDirs(parentDir);
  const dir = await mkdtemp(join(parentDir, 'coexist-sogo-'));
  // Dovecot's passdb args and SOGo's plist values are split on spaces: keep the path plain. And every unix
  // socket path must fit in sun_path (107 bytes and a NUL); Dovecot's longest is
  // dovecot/run/token-login/imap-urlauth, and memcached would silently bind a truncated path outside the dir.
  const problem = !/^[A-Za-z0-9_./-]+$/.test(dir)
    ? 'must contain only letters, digits and _ . / -'
    : dir.length + maxSocketSuffix > 107
      ? `is too long for unix sockets in it (at most ${107 - maxSocketSuffix} characters)`
      : undefined;
  if (problem) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`SOGo stack ${o.name}: the state dir ${dir} ${problem}; choose another parentDir`);
  }
  const stack = new Stack(o.name, dir, o.users);
  liveStacks.add(stack);
  if (!exitHookInstalled) {
    process.on('exit', killAllOnExit);
    exitHookInstalled = true;
  }
  try {
    await prepareDir(stack);
    // PostgreSQL (initdb is the slow part), memcached and Dovecot do not need each other: start them side by
    // side, and wait for all of them before stopping (so nothing is spawned after a failure was cleaned up).
    const results = await Promise.allSettled([
      startPostgres(stack, o),
      startMemcached(stack, o),
      startDovecot(stack, o),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw stack.firstFailure ?? failed.reason;
    await startSogo(stack, o);
    return stack;
  } catch (error) {
    try {
      await stack.stop();
    } catch (stopError) {
      throw new SogoStackError(`${errorText(error)}\n(and stopping it: ${errorText(stopError)})`, {
        cause: error,
      });
    }
    throw error;
  }
}

/** The file in a state dir naming the process that owns it (`<pid> <start time>`), for `removeStaleStateDirs`. */
const ownerFile = 'owner';

const ownProcess = (): string => {
  const me = procEntry(process.pid);
  return `${process.pid} ${me?.start ?? ''}`;
};

/**
 * Remove state dirs in `parentDir` left by processes that were killed before they could stop their stacks
 * (their daemons died with them: parent-death signal). Only dirs with an owner file whose process is gone
 * and that no running process mentions on its command line.
 */
async function removeStaleStateDirs(parentDir: string): Promise<void> {
  let entries: string[];
  try {
    entries = readdirSync(parentDir).filter((e) => /^coexist-sogo-[A-Za-z0-9]{6}$/.test(e));
  } catch {
    return;
  }
  if (entries.length === 0) return;
  let cmdlines: string[] | undefined;
  for (const entry of entries) {
    const dir = join(parentDir, entry);
    let owner: string;
    try {
      owner = readFileSync(join(dir, ownerFile), 'utf8').trim();
    } catch {
      continue; // being set up right now, or not ours
    }
    const [pid, start] = owner.split(' ');
    const now = procEntry(Number(pid));
    if (running(now) && now.start === start) continue;
    cmdlines ??= processTable().flatMap((e) => {
      try {
        return [readFileSync(`/proc/${e.pid}/cmdline`, 'utf8')];
      } catch {
        return [];
      }
    });
    if (cmdlines.some((c) => c.includes(dir))) continue;
    await rm(dir, { recursive: true, force: true });
  }
}

async function prepareDir(stack: Stack): Promise<void> {
  await stack.step('preparing the state dir', [], async () => {
    const accounts = readAccounts();
    const account = (name: string): { uid: number; gid: number } => {
      const a = accounts.get(name);
      if (!a) throw new Error(`no system user ${name}`);
      return a;
    };
    // The parent dir must let the daemons' users in.
    const parent = join(stack.stateDir, '..');
    if (((await stat(parent)).mode & 0o001) === 0)
      throw new Error(`${parent} is not searchable by other users`);
    await chmod(stack.stateDir, 0o755);
    await writeFile(stack.path(ownerFile), `${ownProcess()}\n`);
    for (const d of ['pg', 'run', 'log', 'mail', 'dovecot', 'dovecot/run', 'dovecot/state']) {
      await mkdir(stack.path(d));
    }
    // Four users write logs and sockets here.
    await chmod(stack.path('run'), 0o1777);
    await chmod(stack.path('log'), 0o1777);
    await chmod(stack.path('pg'), 0o700);
    const pg = account('postgres');
    await chown(stack.path('pg'), pg.uid, pg.gid);
    const mail = account('mail');
    await chown(stack.path('mail'), mail.uid, mail.gid);
  });
}

async function startPostgres(stack: Stack, o: SogoStackOptions): Promise<void> {
  const bin = postgresBinDir() ?? '';
  const timeoutMs = o.readyTimeoutMs ?? 15_000;
  const logs = ['initdb.out', 'postgres.out'];
  await stack.step('PostgreSQL initdb', logs, async () => {
    const r = await run(
      setprivPath,
      [
        ...setprivArgs('postgres'),
        join(bin, 'initdb'),
        ...['-D', stack.path('pg'), '-A', 'trust', '-U', 'sogo', '-E', 'UTF8'],
        ...['--no-locale', '--no-sync', '--no-instructions'],
      ],
      { env: stack.env, cwd: stack.stateDir, timeoutMs: Math.max(timeoutMs, 30_000) },
    );
    await writeFile(stack.path('log', 'initdb.out'), r.output);
    if (r.code !== 0) throw new Error(`initdb exited with ${String(r.code)}`);
  });
  const socketDir = stack.path('run');
  await stack.step('PostgreSQL start', logs, async () => {
    for (let attempt = 1; ; attempt++) {
      stack.postgresPort = await freePort(host);
      const settings = [
        `listen_addresses=${host}`,
        // A throwaway cluster: no durability.
        'fsync=off',
        'synchronous_commit=off',
        'full_page_writes=off',
        // Each SOGo worker keeps a connection or two.
        `max_connections=${Math.max(50, 4 * (o.workers ?? 6) + 10)}`,
        'shared_buffers=16MB',
        // Dynamic shared memory in the data dir rather than in /dev/shm, so a killed stack leaves none behind.
        'dynamic_shared_memory_type=mmap',
      ];
      const daemon = stack.spawnDaemon('postgres', 'postgres', join(bin, 'postgres'), [
        ...['-D', stack.path('pg'), '-p', String(stack.postgresPort), '-k', socketDir],
        ...settings.flatMap((setting) => ['-c', setting]),
      ]);
      try {
        // Ready through its own unix socket: that is certainly this cluster, not someone else's on the port.
        const isReady = async (): Promise<boolean> => {
          const args = ['-q', '-h', socketDir, '-p', String(stack.postgresPort), '-t', '1'];
          const r = await run(join(bin, 'pg_isready'), args, {
            env: stack.env,
            cwd: stack.stateDir,
            timeoutMs: 3000,
          });
          return r.code === 0;
        };
        await stack.waitReady(
          daemon,
          `accepting connections on port ${stack.postgresPort}`,
          timeoutMs,
          isReady,
        );
        return;
      } catch (error) {
        if (!(error instanceof EarlyExitError && error.portClash && attempt < 3)) throw error;
        stack.daemons.splice(stack.daemons.indexOf(daemon), 1);
      }
    }
  });
  await stack.step('PostgreSQL schema and users', logs, async () => {
    const rows = o.users.map(
      (u) => `(${[u.login, u.login, ssha256(u.password), u.displayName, u.email].map(sqlString).join(', ')})`,
    );
    const sql = [
      // The columns SOGo's SQL user source needs (guide, "Authentication using SQL").
      'CREATE TABLE sogo_users (c_uid varchar(256) PRIMARY KEY, c_name varchar(256) NOT NULL,',
      '  c_password varchar(256) NOT NULL, c_cn varchar(256), mail varchar(256));',
      `INSERT INTO sogo_users VALUES ${rows.join(',\n  ')};`,
      '',
    ].join('\n');
    const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-p', String(stack.postgresPort)];
    const r = await run(join(bin, 'psql'), [...args, '-U', 'sogo', '-d', 'postgres'], {
      env: stack.env,
      cwd: stack.stateDir,
      input: sql,
      timeoutMs: Math.max(timeoutMs, 10_000),
    });
    if (r.code !== 0) throw new Error(`psql exited with ${String(r.code)}: ${r.output.trim()}`);
  });
}

async function startMemcached(stack: Stack, o: SogoStackOptions): Promise<void> {
  const socket = stack.path('run', 'memcached.sock');
  await stack.step('memcached start', ['memcached.out'], async () => {
    // As memcache from the start rather than with -u: memcached's own setuid would clear the parent-death signal.
    const args = ['-s', socket, '-a', '0777', '-m', '32'];
    const daemon = stack.spawnDaemon('memcached', 'memcache', memcachedPath, args);
    await stack.waitReady(daemon, 'listening on its socket', o.readyTimeoutMs ?? 10_000, () =>
      accepts({ path: socket }),
    );
  });
}

function dovecotConf(stack: Stack, mailUid: number, mailGid: number): string {
  const p = (...parts: string[]): string => stack.path(...parts);
  return `# Generated by coexist src/lab/sogo.ts for the SOGo stack ${stack.name.replace(/[^\x20-\x7e]/g, '?')}
protocols = imap
listen = ${host}
base_dir = ${p('dovecot', 'run')}
state_dir = ${p('dovecot', 'state')}
instance_name = ${basename(stack.stateDir)}
log_path = ${p('log', 'dovecot.log')}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = ${mailUid}
first_valid_gid = ${mailGid}
mail_location = maildir:~/Maildir
mail_plugins = acl
protocol imap {
  mail_plugins = $mail_plugins imap_acl
}
plugin {
  acl = vfile
}
passdb {
  driver = passwd-file
  args = scheme=SSHA256 username_format=%u ${p('dovecot', 'users')}
}
userdb {
  driver = static
  args = uid=${mailUid} gid=${mailGid} home=${p('mail')}/%u
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
service imap-login {
  inet_listener imap {
    address = ${host}
    port = ${stack.imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
`;
}

async function startDovecot(stack: Stack, o: SogoStackOptions): Promise<void> {
  const timeoutMs = o.readyTimeoutMs ?? 10_000;
  const logs = ['dovecot.out', 'dovecot.log'];
  const mail = readAccounts().get('mail');
  if (!mail) throw new Error(`SOGo stack ${stack.name}: no system user mail`);
  const conf = stack.path('dovecot', 'dovecot.conf');
  await stack.step('Dovecot start', logs, async () => {
    // Dovecot looks logins up lowercased (auth_username_format %Lu).
    const passwd = o.users.map((u) => `${u.login.toLowerCase()}:${ssha256(u.password)}\n`).join('');
    await writeFile(stack.path('dovecot', 'users'), passwd, { mode: 0o644 });
    for (let attempt = 1; ; attempt++) {
      stack.imapPort = await freePort(host);
      await writeFile(conf, dovecotConf(stack, mail.uid, mail.gid));
      const daemon = stack.spawnDaemon('dovecot', undefined, dovecotPath, ['-F', '-c', conf]);
      try {
        // The master binds every listener before it creates the auth sockets: the socket in our base_dir
        // plus an accepting port means it is our Dovecot that answers.
        await stack.waitReady(daemon, `listening on port ${stack.imapPort}`, timeoutMs, async () => {
          const socket = await stat(stack.path('dovecot', 'run', 'auth-userdb')).catch(() => undefined);
          return Boolean(socket?.isSocket()) && (await accepts({ port: stack.imapPort }));
        });
        return;
      } catch (error) {
        if (!(error instanceof EarlyExitError && error.portClash && attempt < 3)) throw error;
        stack.daemons.splice(stack.daemons.indexOf(daemon), 1);
      }
    }
  });
  await stack.step('Dovecot CONDSTORE warm-up and seed', logs, async () => {
    await Promise.all(
      o.users.map((u) =>
        appendMessages(
          stack.imapPort,
          u.login,
          u.password,
          (o.seed?.[u.login] ?? []).map((m) => renderSogoMessage(m)),
          true,
          timeoutMs,
        ).catch((error: unknown) => {
          throw new Error(`${u.login}: ${errorText(error)}`);
        }),
      ),
    );
  });
}

async function startSogo(stack: Stack, o: SogoStackOptions): Promise<void> {
  const timeoutMs = o.readyTimeoutMs ?? 30_000;
  const logs = ['sogod.out', 'sogo.log'];
  // The cluster's superuser is sogo (initdb -U sogo) and SOGo uses the database initdb made: a CREATE
  // DATABASE would copy template1 and cost about a second.
  const db = `postgresql://sogo:sogo@${host}:${stack.postgresPort}/postgres`;
  const ping = o.maxPingSeconds ?? 20;
  const first = o.users[0];
  const mailDomain = first?.email.split('@')[1] ?? 'lab.test';
  await stack.step('SOGo start', logs, async () => {
    for (let attempt = 1; ; attempt++) {
      stack.port = await freePort(host);
      // Lab notes §2.4: command-line arguments (NSArgumentDomain) override /etc/sogo/sogo.conf and the
      // user defaults, so the whole configuration stays per run and stacks can run side by side.
      const defaults: Record<string, string> = {
        WONoDetach: 'YES',
        WOPort: `${host}:${stack.port}`,
        WOWorkersCount: String(o.workers ?? 6),
        WOLogFile: stack.path('log', 'sogo.log'),
        WOPidFile: stack.path('run', 'sogo.pid'),
        SOGoProfileURL: `${db}/sogo_user_profile`,
        OCSFolderInfoURL: `${db}/sogo_folder_info`,
        OCSSessionsFolderURL: `${db}/sogo_sessions_folder`,
        OCSCacheFolderURL: `${db}/sogo_cache_folder`,
        OCSStoreURL: `${db}/sogo_store`,
        OCSAclURL: `${db}/sogo_acl`,
        OCSEMailAlarmsFolderURL: `${db}/sogo_alarms_folder`,
        SOGoMemcachedHost: stack.path('run', 'memcached.sock'),
        SOGoIMAPServer: `imap://${host}:${stack.imapPort}`,
        // Nothing listens on port 1: no Sieve and no SMTP in the lab.
        SOGoSieveServer: `sieve://${host}:1`,
        SOGoMailingMechanism: 'smtp',
        SOGoSMTPServer: `smtp://${host}:1`,
        SOGoMailDomain: mailDomain,
        SOGoTimeZone: 'UTC',
        SOGoSentFolderName: 'Sent',
        SOGoTrashFolderName: 'Trash',
        SOGoDraftsFolderName: 'Drafts',
        SOGoMaximumPingInterval: String(ping),
        SOGoMaximumSyncInterval: String(ping),
        // Must stay below both limits (guide, "Microsoft Enterprise ActiveSync").
        SOGoInternalSyncInterval: String(Math.min(5, ping - 1)),
        SOGoEASDebugEnabled: o.debug ? 'YES' : 'NO',
        // Passwords are {SSHA256} in the table (the prefix names the scheme); a plist array as an argument.
        SOGoUserSources: `({type = sql; id = users; viewURL = "${db}/sogo_users"; canAuthenticate = YES; isAddressBook = NO; userPasswordAlgorithm = ssha256;})`,
      };
      const args = Object.entries(defaults).flatMap(([key, value]) => [`-${key}`, value]);
      const daemon = stack.spawnDaemon('sogod', 'sogo', sogodPath, args);
      try {
        await stack.waitReady(daemon, `answering on port ${stack.port}`, timeoutMs, async () => {
          // Early on, the watchdog may close the connection ("No child available"): not ready yet.
          const r = await httpStatus(stack.port, 'GET', '/SOGo/', {}, 2000).catch(() => undefined);
          return r !== undefined && r.status > 0 && r.status < 500;
        });
        break;
      } catch (error) {
        if (!(error instanceof EarlyExitError && error.portClash && attempt < 3)) throw error;
        stack.daemons.splice(stack.daemons.indexOf(daemon), 1);
      }
    }
  });
  await stack.step('SOGo ActiveSync check', logs, async () => {
    if (!first) return;
    // Our users authenticate (so it is this stack's SOGo on the port) and the ActiveSync module is loaded.
    const auth = `Basic ${Buffer.from(`${first.login}:${first.password}`, 'utf8').toString('base64')}`;
    const r = await httpStatus(
      stack.port,
      'OPTIONS',
      '/SOGo/Microsoft-Server-ActiveSync',
      { authorization: auth },
      10_000,
    );
    const versions = r.headers['ms-asprotocolversions'];
    if (r.status !== 200 || !versions) {
      throw new Error(`OPTIONS as ${first.login} answered ${r.status} without MS-ASProtocolVersions`);
    }
  });
}
