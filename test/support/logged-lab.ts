/**
 * The demo lab (examples/o365info.yaml) with its log kept for assertions, and the log's access lines: what
 * the attack tests share to start a lab and to check what it wrote about a request.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../src/config/index.ts';
import type { Lab, LabOptions } from '../../src/lab/index.ts';
import { startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import { labClient, LineSink } from './lab-client.ts';
import { requestIds } from './raw-tls.ts';

export const demoEstateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

/** The demo lab started with `options` (edge limits, lockout, ...), logging at info into `sink`. */
export async function loggedLab(
  options: Omit<LabOptions, 'index' | 'logger'> = {},
  level: 'info' | 'debug' = 'info',
): Promise<{ lab: Lab; sink: LineSink }> {
  const { index } = parseEstate(await readFile(demoEstateFile, 'utf8'), demoEstateFile);
  const sink = new LineSink();
  const lab = await startLab({
    ...options,
    index,
    logger: createLogger({ level, destination: sink }),
  });
  return { lab, sink };
}

/**
 * Called in a `describe`: the demo lab started by `loggedLab(options, level)` before its tests and closed after
 * them (also when one fails). `lab` and `sink` are read inside tests and hooks, once the lab has started.
 */
export function labForTests(
  options: Omit<LabOptions, 'index' | 'logger'> = {},
  level: 'info' | 'debug' = 'info',
): { readonly lab: Lab; readonly sink: LineSink } {
  let started: { lab: Lab; sink: LineSink } | undefined;
  before(async () => {
    started = await loggedLab(options, level);
  });
  after(async () => {
    await started?.lab.close();
  });
  const get = (): { lab: Lab; sink: LineSink } => {
    assert.ok(started, 'the lab has started (read it inside a test or a hook)');
    return started;
  };
  return {
    get lab() {
      return get().lab;
    },
    get sink() {
      return get().sink;
    },
  };
}

/** The access lines of request `id`, one per server it went through. */
export const accessLines = (sink: LineSink, id: string): Record<string, unknown>[] =>
  sink.records().filter((l) => l['msg'] === 'access' && l['reqId'] === id);

/** The request id of a raw answer's first response; asserts that it carries one. */
export function answerId(answer: string): string {
  const [id] = requestIds(answer);
  assert.ok(id, `the answer carries a request id:\n${answer.slice(0, 400)}`);
  return id;
}

/** The access line of a request the front door refused; asserts that no server of the estate acted on it. */
export function refusedAccessLine(lab: Lab, sink: LineSink, id: string): Record<string, unknown> | undefined {
  assert.deepEqual(lab.recorder.records(id), [], 'refused at the front door: nothing was routed');
  return accessLines(sink, id)[0];
}

/** The normal request that must still work: alice's ActiveSync OPTIONS through the front door, 200. */
export async function assertEasOptionsWorks(lab: Lab): Promise<void> {
  const client = labClient(lab);
  try {
    const r = await client.fetch(
      'https://mail.o365info.com/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=abc123&DeviceType=iPhone',
      { method: 'OPTIONS', user: 'alice@o365info.com' },
    );
    assert.equal(r.status, 200);
  } finally {
    await client.close();
  }
}
