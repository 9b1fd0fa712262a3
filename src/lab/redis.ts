/**
 * A throwaway Redis (Debian `redis-server`) on loopback, for tests of several front ends sharing a store
 * (docs/operations.md "Several front ends"): a temp dir, no persistence (no RDB, no AOF), a free port, in
 * the foreground as a child of this process; ready when it logs that it accepts connections. `stop()` and
 * `start()` take it away and bring it back on the same port (empty: nothing persists), `pause()` freezes it
 * (SIGSTOP) as a hung server would be.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, isExecutable, killOnExit } from './daemon.ts';
import { whenStopped } from './stopped.ts';

/** Options of `startRedis`. */
export interface RedisOptions {
  /** A loopback address; 127.0.0.1 by default. */
  readonly host?: string;
  /** `requirepass`; none by default. */
  readonly password?: string;
  /** Debian's path by default. */
  readonly redisServerPath?: string;
  /** How long to wait for it to accept connections; 10 s by default. */
  readonly readyTimeoutMs?: number;
}

/** A running (or stopped) throwaway Redis. */
export interface RedisDaemon {
  readonly host: string;
  readonly port: number;
  /** `redis://host:port` (no password in it). */
  readonly url: string;
  /** Start again after `stop()`, on the same port. */
  start(): Promise<void>;
  /** SIGTERM, and wait until it has exited. */
  stop(): Promise<void>;
  /** Freeze (SIGSTOP): connections stay open, nothing is answered; resolves once every thread is stopped. */
  pause(): Promise<void>;
  resume(): void;
  /** Stop and remove its directory. */
  close(): Promise<void>;
}

/** Debian's redis-server is not installed (`npm run setup` installs it). */
export class RedisNotInstalledError extends Error {
  constructor(path: string) {
    super(`${path} not found: install Debian's redis-server (npm run setup)`);
    this.name = 'RedisNotInstalledError';
  }
}

/** Start a throwaway Redis on a free loopback port. */
export async function startRedis(o: RedisOptions = {}): Promise<RedisDaemon> {
  const path = o.redisServerPath ?? '/usr/bin/redis-server';
  if (!isExecutable(path)) throw new RedisNotInstalledError(path);
  const host = o.host ?? '127.0.0.1';
  if (!host.startsWith('127.') && host !== '::1')
    throw new Error(`startRedis: host must be a loopback address, not ${host}`);
  const dir = await mkdtemp(join(tmpdir(), 'coexist-redis-'));
  const daemon = new Daemon(path, dir, host, o.password, o.readyTimeoutMs ?? 10_000);
  try {
    await daemon.boot();
  } catch (err) {
    await daemon.close();
    throw err;
  }
  return daemon;
}

class Daemon implements RedisDaemon {
  #port = 0;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #paused = false;

  constructor(
    readonly path: string,
    readonly dir: string,
    readonly host: string,
    readonly password: string | undefined,
    readonly readyTimeoutMs: number,
  ) {}

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `redis://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.#port}`;
  }

  /** A free port; another when it was taken before Redis bound it. */
  async boot(): Promise<void> {
    let last: unknown;
    for (let i = 0; i < 5; i++) {
      this.#port = await freePort(this.host);
      try {
        await this.#spawn();
        return;
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  async start(): Promise<void> {
    if (this.#child) return;
    await this.#spawn();
  }

  /** Spawn, and resolve when it logs that it is ready (reject when it exits first or the deadline passes). */
  #spawn(): Promise<void> {
    const args = [
      '--bind',
      this.host,
      '--port',
      String(this.#port),
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--logfile',
      '',
      '--loglevel',
      'notice',
      '--databases',
      '1',
      ...(this.password === undefined ? [] : ['--requirepass', this.password]),
    ];
    const child = spawn(this.path, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir });
    const release = killOnExit(() => child.kill('SIGKILL'));
    this.#child = child;
    this.#paused = false;
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (this.#child === child) this.#child = undefined;
        release();
        resolve();
      });
    });
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(
            `redis-server did not get ready on ${this.url} within ${this.readyTimeoutMs} ms: ${out.slice(-2000)}`,
          ),
        );
      }, this.readyTimeoutMs);
      const onData = (d: Buffer): void => {
        out = (out + d.toString()).slice(-8000);
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          // Keep draining its output, so a full pipe never blocks it.
          child.stdout?.resume();
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', (d: Buffer) => {
        out = (out + d.toString()).slice(-8000);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code ?? signal}) before it was ready: ${out.slice(-2000)}`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    if (this.#paused) this.resume();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await this.#exited;
    clearTimeout(timer);
  }

  async pause(): Promise<void> {
    const child = this.#child;
    if (child?.pid === undefined || this.#paused) return;
    child.kill('SIGSTOP');
    this.#paused = true;
    // kill() returns before every thread has stopped; until then Redis may still answer (docs/lab.md §1.2).
    await whenStopped(child.pid, 10_000, () => this.#child !== child || !this.#paused);
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
