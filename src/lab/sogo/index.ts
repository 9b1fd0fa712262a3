/**
 * A throwaway SOGo ActiveSync stack on loopback, for tests that need a real EAS back end: a private
 * PostgreSQL cluster (the SQL user source and SOGo's own tables), memcached on a unix socket, Dovecot IMAP and
 * SOGo, each in the foreground as a child of this process, in its own process group, on free 127.0.0.1
 * ports, with all state in one temp dir that `stop()` removes. Recipe, measurements and SOGo's quirks:
 * docs/lab.md (§3.1 configuration, §3.2 the CONDSTORE warm-up, §3.4 what SOGo
 * expects, §3.6 the start/stop outline). Debian packages: sogo sogo-activesync dovecot-imapd memcached
 * postgresql (.ci/run installs them).
 *
 * This module validates, prepares the state dir and runs the start in order; install.ts says what is
 * needed, stack.ts is the running stack, processes.ts its processes, postgres.ts and services.ts start the
 * daemons, config.ts writes what they are told, imap.ts seeds and delivers, message.ts renders messages.
 *
 * Runs as root, unattended. Every daemon is started through setpriv, which execs in place (the recorded PID
 * is the daemon's) and sets SIGKILL as its parent-death signal, so nothing outlives a test process that is
 * killed outright; the next start removes such a process's state dir. PostgreSQL runs as `postgres`, sogod
 * as `sogo`, memcached as `memcache`; Dovecot's master stays root and runs its services as its own users.
 * Nothing goes through a shell: passwords are hashed ({SSHA256}) into the SQL table and Dovecot's
 * passwd-file, and sent over IMAP as quoted strings or literals.
 */
import { accessSync, constants as fsConstants, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorText } from '../daemon.ts';
import { readAccounts, sogoAvailable } from './install.ts';
import { startPostgres } from './postgres.ts';
import { procEntry, processTable, running } from './processes.ts';
import { startDovecot, startMemcached, startSogo } from './services.ts';
import { SogoStackError, Stack } from './stack.ts';
import type { SogoStack, SogoStackOptions } from './types.ts';

export type { SogoMessage, SogoStack, SogoStackOptions, SogoUser } from './types.ts';
export { sogoAvailable } from './install.ts';
export { renderSogoMessage } from './message.ts';
export { SogoStackError } from './stack.ts';

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
  if (o.readyTimeoutMs !== undefined && !(o.readyTimeoutMs >= 0 && Number.isFinite(o.readyTimeoutMs)))
    throw new Error(`SOGo stack ${o.name}: readyTimeoutMs must be a number of ms >= 0`);
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
