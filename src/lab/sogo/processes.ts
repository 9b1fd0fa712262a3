/**
 * A stack's daemons as processes: what is recorded of each, its process tree read from /proc (to stop
 * everything it started, PostgreSQL's backends and SOGo's workers included), and stopping it.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { delay } from '../daemon.ts';

export interface Daemon {
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
export class EarlyExitError extends Error {
  constructor(
    message: string,
    readonly portClash: boolean,
  ) {
    super(message);
  }
}

/** One line of /proc/<pid>/stat: enough to follow a daemon's process tree and to tell a reused PID apart. */
export interface ProcEntry {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  readonly state: string;
  /** Start time in clock ticks after boot: with the PID, identifies the process. */
  readonly start: string;
}

export function procEntry(pid: number): ProcEntry | undefined {
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

export function processTable(): ProcEntry[] {
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

export const running = (e: ProcEntry | undefined): e is ProcEntry =>
  e !== undefined && e.state !== 'Z' && e.state !== 'X';

/**
 * The live processes that belong to the daemons with these PIDs: their process groups and all their
 * descendants (PostgreSQL's backends call setsid, so they are in groups of their own).
 */
export function treeOf(rootPids: Iterable<number>): ProcEntry[] {
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
export const stillRunning = (e: ProcEntry): boolean => {
  const now = procEntry(e.pid);
  return running(now) && now.start === e.start;
};

/** setpriv's arguments up to the program: the user (and its groups) if any, and the parent-death signal. */
export function setprivArgs(user: string | undefined): string[] {
  return [
    ...(user ? [`--reuid=${user}`, `--regid=${user}`, '--init-groups'] : []),
    '--pdeathsig',
    'KILL',
    '--',
  ];
}

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
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
export async function stopDaemon(d: Daemon, signal: NodeJS.Signals, graceMs: number): Promise<ProcEntry[]> {
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
