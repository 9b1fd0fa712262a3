import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../config/index.ts';
import { Generations, restartReasons } from './reload.ts';

const demo = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

/** A response that closes when told: what `Generations.handle` waits on. */
const response = (): ServerResponse & { finish(): void } => {
  const e = new EventEmitter() as unknown as ServerResponse & { finish(): void };
  e.finish = () => e.emit('close');
  return e;
};

describe('Generations', () => {
  test('a request keeps the generation it started with; the old one stops when its last request ends', async () => {
    const stopped: string[] = [];
    const g = new Generations<string>('one', (old, successor) => stopped.push(`${old}->${successor}`));
    const early = response();
    assert.equal(g.handle(early), 'one');
    let retired = false;
    const done = g.swap('two').then(() => (retired = true));
    assert.equal(g.number, 2);
    const late = response();
    assert.equal(g.handle(late), 'two');
    await Promise.resolve();
    assert.equal(retired, false, 'a request of generation one is in flight');
    early.finish();
    await done;
    assert.deepEqual(stopped, ['one->two']);
    late.finish();
    g.stopAll();
    assert.deepEqual(stopped, ['one->two', 'two->undefined']);
  });

  test('a generation with no request in flight is stopped at the swap', async () => {
    const stopped: string[] = [];
    const g = new Generations<string>('one', (old) => stopped.push(old));
    await g.swap('two');
    assert.deepEqual(stopped, ['one']);
  });
});

describe('restartReasons', () => {
  test('a reload may change users, sites and namespaces; not this server, its roles or the limits', async () => {
    const text = await readFile(demo, 'utf8');
    const { index } = parseEstate(text, demo);
    const server = index.server('CAS2013-NY');
    assert.ok(server);
    const live = { server, limits: {} };
    const moved = parseEstate(text.replace('database: DB2007-NY }', 'database: DB2007-MAD }'), demo);
    assert.deepEqual(restartReasons(live, { index: moved.index }), []);

    const renamed = parseEstate(text.replaceAll('CAS2013-NY', 'CAS2016-NY'), demo);
    assert.match(
      restartReasons(live, { index: renamed.index }).join('\n'),
      /CAS2013-NY is no longer a server/,
    );

    const roles = parseEstate(text.replace('roles: [cas]', 'roles: [cas, mailbox]'), demo);
    assert.match(
      restartReasons(live, { index: roles.index }).join('\n'),
      /roles changed \(cas -> cas, mailbox\)/,
    );

    assert.deepEqual(restartReasons(live, { index, limits: { maxConnections: 10_000 } }), [], 'the default');
    assert.match(
      restartReasons(live, { index, limits: { maxConnections: 5, headTimeoutMs: 1_000 } }).join('\n'),
      /limits\.headTimeoutMs, limits\.maxConnections changed/,
    );
  });
});
