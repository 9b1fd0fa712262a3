/**
 * The soak's child processes (held Pings, mixed traffic, attackers) and how the soak talks to them: each is a
 * forked `bench/soak/<name>.ts` that answers each question (an `id`) once, over IPC. Clients live in child
 * processes because file descriptors are counted per process (docs/security.md "Soak").
 */
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** How a child reaches the lab: its CA, and the port each host name of the estate listens on. */
export interface LabEndpoint {
  readonly caPem: string;
  readonly ports: Readonly<Record<string, number>>;
}

export interface Question {
  readonly id: number;
  readonly cmd: string;
  readonly [key: string]: unknown;
}

/** A child's answer: `error` when it could not do what it was asked. */
export interface Reply {
  readonly id: number;
  readonly error?: string;
  readonly [key: string]: unknown;
}

/** A running child. */
export interface Child {
  ask<T extends Record<string, unknown>>(cmd: string, extra?: Record<string, unknown>): Promise<T>;
  /** Ends the child and waits until it has exited. */
  stop(): Promise<void>;
  readonly process: ChildProcess;
}

/** The child's dispatcher: run `handle` for each question and send back what it resolves to. */
export function serve(handle: (q: Question) => Promise<Record<string, unknown>>): void {
  process.on('message', (q: Question) => {
    handle(q).then(
      (r) => process.send?.({ ...r, id: q.id }),
      (e: unknown) => process.send?.({ id: q.id, error: e instanceof Error ? e.message : String(e) }),
    );
  });
  // The soak went away (a crash, Ctrl-C): do not outlive it.
  process.on('disconnect', () => process.exit(0));
}

/** Fork `bench/soak/<name>.ts` under tsx. */
export function spawnChild(name: string): Child {
  const script = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  const proc = fork(script, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let next = 1;
  const waiting = new Map<number, (r: Reply) => void>();
  proc.on('message', (r: Reply) => waiting.get(r.id)?.(r));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => {
    for (const w of waiting.values()) w({ id: 0, error: `${name} exited` });
    waiting.clear();
  });
  return {
    process: proc,
    ask: <T extends Record<string, unknown>>(cmd: string, extra: Record<string, unknown> = {}) =>
      new Promise<T>((resolve, reject) => {
        if (!proc.connected) {
          reject(new Error(`${name} is not running`));
          return;
        }
        const id = next++;
        waiting.set(id, (r) => {
          waiting.delete(id);
          if (r.error !== undefined) reject(new Error(`${name}: ${r.error}`));
          else resolve(r as unknown as T);
        });
        proc.send({ id, cmd, ...extra });
      }),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.disconnect();
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
