/**
 * Waiting until a process that was sent SIGSTOP has really stopped. `kill(2)` returns as soon as the
 * signal is queued: one thread of the target is woken to take it, and only when that thread runs does the
 * kernel stop the others. Until then the other threads go on working, so a multi-threaded server such as
 * slapd can still answer; on a busy machine, where the woken thread waits for a CPU, that was long enough
 * to answer a whole lookup of several searches (docs/lab.md §1.2). Linux shows each thread's state in
 * /proc/<pid>/task/<tid>/stat (proc(5)): `T` once it is stopped.
 */
import { readdir, readFile } from 'node:fs/promises';
import { delay } from './daemon.ts';

/** The state letter of /proc/…/stat (proc(5)): after the command, which is in parentheses and may hold any. */
function stateOf(stat: string): string {
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** The state letter of every thread of `pid`, in thread id order; undefined when the process is gone. */
export async function threadStates(pid: number): Promise<string[] | undefined> {
  let tids: string[];
  try {
    tids = await readdir(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const states = await Promise.all(
    tids.map(
      (tid) => readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').then(stateOf, () => 'X'), // a thread that just exited
    ),
  );
  return states;
}

/** Stopped (`T`), stopped by a tracer (`t`), or exited (`Z`, `X`): a thread that runs none of its code. */
const still = (state: string): boolean => 'TtZX'.includes(state);

/**
 * Resolves once every thread of `pid` is stopped; rejects when the process is gone or has not stopped
 * within `timeoutMs` (a readiness deadline: generous, it only bounds a failure). `cancelled` is asked
 * between polls: true ends the wait at once (the caller sent SIGCONT meanwhile).
 */
export async function whenStopped(
  pid: number,
  timeoutMs: number,
  cancelled: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (cancelled()) return;
    const states = await threadStates(pid);
    if (states === undefined) throw new Error(`process ${pid} is gone (it was to be stopped)`);
    if (states.every(still)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `process ${pid} did not stop within ${timeoutMs} ms of SIGSTOP (thread states ${states.join('')})`,
      );
    }
    await delay(1);
  }
}
