/**
 * `coexist serve` as an admin runs it: a separate process (this checkout's entry point under tsx) on loopback
 * with ephemeral ports, its output kept; stopped with SIGTERM (SIGKILL if it does not stop).
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));

/** The demo estate's file: the one `coexist serve` is given in these tests unless they write their own. */
export const demoEstate = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

/** `--listen` and `--admin` on loopback with ephemeral ports: where every `coexist serve` of the tests listens. */
export const loopbackListeners = ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'] as const;

export interface ServeProcess {
  /** Its process id. */
  readonly pid: number;
  /** The front listener's port. */
  readonly port: number;
  /** The admin listener's port (/metrics). */
  readonly adminPort: number;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** Its JSON log lines so far. */
  logLines(): Record<string, unknown>[];
  /** The first log line `match` accepts, waiting for it (its output arrives through a pipe) up to a deadline. */
  waitForLog(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** SIGTERM, and its exit code. */
  stop(): Promise<number | null>;
}

/** `coexist serve ARGS` as a process, nothing added and nothing awaited. */
export function spawnServe(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', entry, 'serve', ...args], { stdio: 'pipe', env });
}

/**
 * Start `coexist serve ARGS --listen 127.0.0.1:0 --admin 127.0.0.1:0` (and `--workers 1` unless ARGS say how
 * many) and wait until it listens.
 */
export async function startServe(
  args: readonly string[],
  o: { readonly env?: NodeJS.ProcessEnv; readonly deadlineMs?: number } = {},
): Promise<ServeProcess> {
  const deadlineMs = o.deadlineMs ?? 30_000;
  const child = spawnServe(
    [
      ...loopbackListeners,
      // One process unless a test asks for workers: cheaper on a 2-core machine (serve-workers tests have several).
      ...(args.includes('--workers') ? [] : ['--workers', '1']),
      // No load balancer to wait for: stop() ends at once instead of after the default 10 s of draining grace,
      // which left a loaded machine only the rest of stop()'s deadline (a test that drains says its own).
      ...(args.includes('--drain-grace') ? [] : ['--drain-grace', '0']),
      ...args,
    ],
    o.env,
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const end = Date.now() + deadlineMs;
  // Readiness only: poll its output with a generous deadline.
  while (!/metrics on http:\/\/127\.0\.0\.1:(\d+)/.test(out)) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`coexist serve did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const logLines = (): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    pid: child.pid as number,
    port: Number(/front listening on https? port (\d+)/.exec(out)?.[1]),
    adminPort: Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]),
    output: () => out,
    logLines,
    waitForLog: async (match) => {
      const until = Date.now() + deadlineMs;
      for (;;) {
        const line = logLines().find(match);
        if (line) return line;
        if (Date.now() > until) throw new Error(`no such log line:\n${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        // A deadline for a hung process, not a timing: a drain with no grace and nothing in flight ends at once.
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return child.exitCode;
    },
  };
}
