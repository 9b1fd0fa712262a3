/**
 * The helper protocol's line side against real processes: `cat` answers each question with its own line; a
 * helper that writes unasked, writes an overlong line or never answers is failed with a reason naming it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { endHelpers, HelperLines } from './helper-lines.ts';

/** A helper process and the first error its lines failed it with (the test's `fail`, which also kills it). */
function helper(
  command: string,
  args: string[],
  maxLineLength = 1024,
): { child: ChildProcess; lines: HelperLines; failed: Promise<Error>; kill(): void } {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  let failedWith: (e: Error) => void = () => undefined;
  const failed = new Promise<Error>((resolve) => (failedWith = resolve));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const lines: HelperLines = new HelperLines(child, {
    name: 'the test helper',
    maxLineLength,
    fail: (error) => {
      lines.reject(error);
      failedWith(error);
      kill();
    },
  });
  return { child, lines, failed, kill };
}

test('one question at a time: each answer is the line the helper wrote for it', async () => {
  const h = helper('cat', []);
  try {
    assert.equal(await h.lines.ask('YR abc', 30_000), 'YR abc');
    const second = h.lines.ask('KK def', 30_000);
    assert.equal(h.lines.busy, true);
    assert.equal(await second, 'KK def');
    assert.equal(h.lines.busy, false);
  } finally {
    await endHelpers([h]);
  }
});

test('a line nobody asked for fails the helper, naming it', async () => {
  const h = helper('sh', ['-c', 'echo unasked; exec cat']);
  try {
    assert.equal((await h.failed).message, 'the test helper wrote a line nobody asked for');
  } finally {
    await endHelpers([h]);
  }
});

test('an overlong line fails the helper and the question waiting', async () => {
  const h = helper('sh', ['-c', 'read q; head -c 4096 /dev/zero | tr "\\0" a; exec cat'], 1024);
  try {
    await assert.rejects(h.lines.ask('YR abc', 30_000), {
      message: 'the test helper wrote an overlong line',
    });
  } finally {
    await endHelpers([h]);
  }
});

test('no answer within the time given fails the helper and the question', async () => {
  const h = helper('sleep', ['600']);
  try {
    await assert.rejects(h.lines.ask('YR abc', 50), {
      message: 'the test helper did not answer within 50 ms',
    });
  } finally {
    await endHelpers([h]);
  }
  assert.notEqual(h.child.signalCode ?? h.child.exitCode, null, 'the helper was ended');
});
