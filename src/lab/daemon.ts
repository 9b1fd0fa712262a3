/**
 * What the lab's throwaway daemons (slapd, Samba AD, the SOGo stacks) share: a free loopback port, running a program
 * to completion, waiting for a port or socket to accept, and ending the daemons when this process exits
 * without stopping them.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { connect, createServer } from 'node:net';
import { basename } from 'node:path';

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** An error's message, or the thrown value as text. */
export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Whether `path` is a file this process may execute. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * A port nobody listens on now on `host` (the OS picks it). A daemon may still lose it to someone else
 * before it binds, so the callers retry their start.
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when a connection to a TCP port or a unix socket is accepted. */
export function accepts(target: { host: string; port: number } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket =
      'port' in target ? connect({ host: target.host, port: target.port }) : connect({ path: target.path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Options of `run`. */
export interface RunOptions {
  /** The environment; this process's by default. */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Fed on stdin, which is then closed (closed at once without it). */
  readonly input?: string;
  /** Past this the program is killed and the promise rejects; no limit by default. */
  readonly timeoutMs?: number;
}

/**
 * Run a program to completion (no shell); resolves with its exit code (or the signal that ended it) and the
 * last 8000 characters of its stdout and stderr together.
 */
export function run(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<{ code: number | string | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    let output = '';
    let timedOut = false;
    const collect = (d: Buffer): void => {
      output = (output + d.toString()).slice(-8000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
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

const atExit = new Set<() => void>();
let exitHookInstalled = false;

/**
 * Run `kill` (synchronous: SIGKILL to what is still running) if this process exits before the returned
 * function is called: the last resort when a test or the lab ends without stopping its daemons. One
 * `exit` listener serves every daemon, so many daemons do not trip Node's listener limit.
 */
export function killOnExit(kill: () => void): () => void {
  if (!exitHookInstalled) {
    process.on('exit', () => {
      for (const k of atExit) {
        try {
          k();
        } catch {
          // best effort at exit: the next one still runs
        }
      }
    });
    exitHookInstalled = true;
  }
  atExit.add(kill);
  return () => {
    atExit.delete(kill);
  };
}

/** A daemon run in the foreground as a child of this process (slapd, samba): its last output and its exit. */
export interface Foreground {
  readonly child: ChildProcess;
  /** The last 4 000 characters it wrote on the streams piped, and a spawn error's message. */
  output(): string;
  /** Its exit code or signal; undefined while it runs. */
  exitCode(): number | string | null | undefined;
  /** Settles once it has exited. If this process exits first, it is SIGKILLed (`killOnExit`). */
  readonly exited: Promise<void>;
}

/**
 * Start `path args` in the foreground, its standard error (and standard output with `stdout`) kept as its
 * last output; `onExit` runs when it exits, before `exited` settles.
 */
export function runForeground(
  path: string,
  args: readonly string[],
  o: { readonly stdout: boolean; readonly onExit: () => void },
): Foreground {
  const child = spawn(path, args, { stdio: ['ignore', o.stdout ? 'pipe' : 'ignore', 'pipe'] });
  let output = '';
  const collect = (d: Buffer): void => {
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  child.once('error', (error) => {
    output += error.message;
  });
  let exitCode: number | string | null | undefined;
  const release = killOnExit(() => child.kill('SIGKILL'));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitCode = code ?? signal;
      o.onExit();
      release();
      resolve();
    });
  });
  return { child, output: () => output, exitCode: () => exitCode, exited };
}
