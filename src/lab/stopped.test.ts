import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { threadStates, whenStopped } from './stopped.ts';

/** A multi-threaded child that idles (Node: the main thread plus libuv's and V8's), ended after `use`. */
async function withIdleChild(use: (child: ChildProcess, pid: number) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000); process.stdout.write("up")'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = once(child, 'exit');
  // Running, its threads started (or an error if it ended first).
  await Promise.race([
    once(child.stdout as NodeJS.ReadableStream, 'data'),
    exited.then(() => Promise.reject(new Error('the child exited before it was up'))),
  ]);
  try {
    await use(child, child.pid as number);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

test('whenStopped resolves once every thread of the process is stopped', async () => {
  await withIdleChild(async (child, pid) => {
    child.kill('SIGSTOP');
    await whenStopped(pid, 10_000);
    const states = await threadStates(pid);
    assert.ok(states && states.length > 1, `threads: ${String(states)}`);
    assert.deepEqual(
      states.filter((s) => s !== 'T'),
      [],
      `thread states ${states.join('')}`,
    );
    child.kill('SIGCONT');
  });
});

test('whenStopped: a process that was not stopped is an error at the deadline; cancelled ends the wait', async () => {
  await withIdleChild(async (_child, pid) => {
    await assert.rejects(
      whenStopped(pid, 50),
      /process \d+ did not stop within 50 ms of SIGSTOP \(thread states/,
    );
    await whenStopped(pid, 60_000, () => true);
  });
});

test('whenStopped: a process that is gone is an error, not a wait', async () => {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid as number;
  await once(child, 'exit'); // reaped by Node: /proc no longer has it
  assert.equal(await threadStates(pid), undefined);
  await assert.rejects(whenStopped(pid, 60_000), /process \d+ is gone/);
});
