/**
 * The workers' shared store over IPC (ipc-store.ts): counts and revocations land in the primary's one store,
 * two workers' failures add up, and a primary that stops answering degrades a worker to its own memory (one
 * warn line, the gauge 0) until a ping is answered again (one info line, the gauge 1, its logoffs handed over).
 * The channel here is in-process, each end a function; test/cli/serve-workers.test.ts runs the real one.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import type { Socket } from 'node:net';
import { answerStoreRequest, IpcSharedStore } from './ipc-store.ts';
import type { StoreChannel, StoreRequest } from './ipc-store.ts';
import { MemorySharedStore } from './shared-store.ts';

/** A worker's end wired to `primary`; `frozen` drops requests (a primary that does not answer). */
function channelTo(primary: MemorySharedStore): StoreChannel & { frozen: boolean } {
  const listeners = new Set<(m: unknown) => void>();
  const ch = {
    frozen: false,
    send(m: StoreRequest): boolean {
      if (ch.frozen) return true;
      // Asynchronous, as IPC is.
      queueMicrotask(() =>
        answerStoreRequest(primary, m, (a) => {
          for (const l of listeners) l(structuredClone(a));
        }),
      );
      return true;
    },
    subscribe(l: (m: unknown) => void): () => void {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return ch;
}

function recorder(): {
  lines: string[];
  log: { warn(f: object, m: string): void; info(f: object, m: string): void };
} {
  const lines: string[] = [];
  return {
    lines,
    log: { warn: (_f, m) => lines.push(`warn ${m}`), info: (_f, m) => lines.push(`info ${m}`) },
  };
}

describe('the shared store over IPC', () => {
  test("two workers' failures add up in the primary's store; a logoff in one is seen by the other", async () => {
    const primary = new MemorySharedStore();
    const a = await IpcSharedStore.open({ channel: channelTo(primary), log: recorder().log });
    const b = await IpcSharedStore.open({ channel: channelTo(primary), log: recorder().log });
    assert.equal(await a.increment('acct:bob', 60_000), 1);
    assert.equal(await b.increment('acct:bob', 60_000), 2);
    assert.equal(await a.get('acct:bob'), 2);
    assert.equal(primary.get('acct:bob'), 2);
    await a.expire('acct:bob', 0);
    assert.equal(await b.get('acct:bob'), 0);
    assert.equal(await b.revoked('session-1'), false);
    await a.revoke('session-1', 60_000);
    assert.equal(await b.revoked('session-1'), true);
    await a.close();
    await b.close();
  });

  test('a primary that does not answer: degraded to memory after the timeout, back when a ping is answered', async () => {
    const primary = new MemorySharedStore();
    const ch = channelTo(primary);
    const { lines, log } = recorder();
    const states: boolean[] = [];
    const store = await IpcSharedStore.open({
      channel: ch,
      log,
      timeoutMs: 50,
      probeMs: 10,
      onState: (up) => states.push(up),
    });
    assert.deepEqual(states, [true]);
    ch.frozen = true;
    // The first call that times out answers from this worker's memory, and switches.
    assert.equal(await store.increment('acct:carol', 60_000), 1);
    assert.equal(store.up, false);
    assert.deepEqual(states, [true, false]);
    assert.match(lines[0] ?? '', /^warn shared store: the primary process does not answer, degraded/);
    assert.equal(await store.increment('acct:carol', 60_000), 2, 'counted on in memory');
    await store.revoke('session-2', 60_000);
    assert.equal(await store.revoked('session-2'), true, 'a logoff made meanwhile is honoured here');
    assert.equal(primary.revoked('session-2'), false);
    ch.frozen = false;
    // The probe notices, hands over the logoff and switches back (polled: readiness of a timer).
    const end = Date.now() + 10_000;
    while (!store.up && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(store.up, true);
    assert.deepEqual(states, [true, false, true]);
    assert.equal(lines.at(-1), "info shared store: the primary process's store in use");
    assert.equal(primary.revoked('session-2'), true, 'handed to the primary');
    assert.equal(await store.increment('acct:carol', 60_000), 1, "the primary's count again");
    await store.close();
  });

  test('a closed channel fails at once: degraded without waiting', async () => {
    const { log } = recorder();
    const store = await IpcSharedStore.open({
      channel: { send: () => false, subscribe: () => () => undefined },
      log,
    });
    assert.equal(store.up, false);
    assert.equal(await store.increment('k', 1_000), 1);
    await store.close();
  });

  test('the primary ignores what is not a store request and refuses an unknown operation', () => {
    const primary = new MemorySharedStore();
    const answers: unknown[] = [];
    assert.equal(
      answerStoreRequest(primary, { coexist: 'ready' }, (a) => answers.push(a)),
      false,
    );
    assert.equal(
      answerStoreRequest(primary, { coexistStore: 'ask', id: 7, op: 'flushall' }, (a) => answers.push(a)),
      true,
    );
    assert.deepEqual(answers, [{ coexistStore: 'answer', id: 7, error: 'unknown operation' }]);
  });
  test("an answer that came in while the worker's own loop was busy past the timeout is an answer", async (t) => {
    // The answer travels over a real loopback socket, as cluster IPC does over its pipe: it is in the kernel
    // before this worker's loop is blocked past the timeout, so when the loop runs again the timer is due and
    // the answer is waiting to be read. Both are there; the answer must win.
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const near = connect(address.port, '127.0.0.1');
    await once(near, 'connect');
    const [far] = await accepted;
    t.after(() => {
      near.destroy();
      far.destroy();
      server.close();
    });
    const listeners = new Set<(m: unknown) => void>();
    let buffered = '';
    near.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      let end: number;
      while ((end = buffered.indexOf('\n')) >= 0) {
        const m: unknown = JSON.parse(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
        for (const l of listeners) l(m);
      }
    });
    const primary = new MemorySharedStore();
    primary.increment('acct:dave', 60_000);
    const { lines, log } = recorder();
    const store = await IpcSharedStore.open({
      channel: {
        // The primary answers at once: its answer is written to the socket before send returns.
        send(m: StoreRequest): boolean {
          answerStoreRequest(primary, m, (a) => far.write(`${JSON.stringify(a)}\n`));
          return true;
        },
        subscribe(l) {
          listeners.add(l);
          return () => listeners.delete(l);
        },
      },
      log,
      timeoutMs: 50,
    });
    t.after(() => store.close());
    assert.equal(store.up, true);
    const counted = store.increment('acct:dave', 60_000);
    // This worker busy for three times the timeout (a sleep of the thread, not of the loop).
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 150);
    assert.equal(await counted, 2, "the primary's count, not this worker's memory");
    assert.equal(store.up, true);
    assert.deepEqual(lines, []);
  });
});
