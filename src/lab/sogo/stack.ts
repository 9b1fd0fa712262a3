/**
 * One SOGo stack while it starts and runs: its state dir, its daemons (each spawned through setpriv in a
 * process group of its own), the start steps that name themselves in errors, delivery and stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { delay, errorText, killOnExit } from '../daemon.ts';
import { appendMessages } from './imap.ts';
import { host, setprivPath } from './install.ts';
import { renderSogoMessage } from './message.ts';
import type { Daemon } from './processes.ts';
import { EarlyExitError, killGroup, setprivArgs, stopDaemon, treeOf } from './processes.ts';
import type { SogoMessage, SogoStack, SogoUser } from './types.ts';

/** A start step failed: names the stack, the step and shows the tail of the relevant logs. */
export class SogoStackError extends Error {
  override readonly name = 'SogoStackError';
}

/** A start step not run because a step beside it failed (the error reported is that step's). */
export class StepSkippedError extends SogoStackError {}

export class Stack implements SogoStack {
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

  /** Last resort when the process exits without `stop()`: SIGKILL every process group still running. */
  readonly #releaseExitHook = killOnExit(() => this.killNow());

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
    // A stack nobody stops does not keep the process alive: at exit, `killNow` ends it. Every wait
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

  /**
   * Poll `ready` until it is true; fail when the daemon exits first or the deadline passes. A poll counts
   * only when it begins before the deadline, so a deadline of 0 fails every wait at its first look, however
   * fast the daemon is (tests rely on that to fail a start at a known step).
   */
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
      if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      if (await ready()) return;
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
    // quickly on SIGTERM (docs/lab.md §3.5), so what is left of it gets SIGKILL after half a second; Dovecot's
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
    this.#releaseExitHook();
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
