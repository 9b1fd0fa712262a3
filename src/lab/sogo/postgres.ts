/**
 * The stack's private PostgreSQL cluster: initdb on the state dir, the server on a free port and its own
 * unix socket, and the SQL user source SOGo authenticates against.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, run } from '../daemon.ts';
import { sqlString, ssha256 } from './config.ts';
import { host, postgresBinDir, setprivPath } from './install.ts';
import { EarlyExitError, setprivArgs } from './processes.ts';
import type { Stack } from './stack.ts';
import type { SogoStackOptions } from './types.ts';

export async function startPostgres(stack: Stack, o: SogoStackOptions): Promise<void> {
  const bin = postgresBinDir() ?? '';
  const timeoutMs = o.readyTimeoutMs ?? 15_000;
  const logs = ['initdb.out', 'postgres.out'];
  await stack.step('PostgreSQL initdb', logs, async () => {
    const r = await run(
      setprivPath,
      [
        ...setprivArgs('postgres'),
        join(bin, 'initdb'),
        ...['-D', stack.path('pg'), '-A', 'trust', '-U', 'sogo', '-E', 'UTF8'],
        ...['--no-locale', '--no-sync', '--no-instructions'],
      ],
      { env: stack.env, cwd: stack.stateDir, timeoutMs: Math.max(timeoutMs, 30_000) },
    );
    await writeFile(stack.path('log', 'initdb.out'), r.output);
    if (r.code !== 0) throw new Error(`initdb exited with ${String(r.code)}`);
  });
  const socketDir = stack.path('run');
  await stack.step('PostgreSQL start', logs, async () => {
    for (let attempt = 1; ; attempt++) {
      stack.postgresPort = await freePort(host);
      const settings = [
        `listen_addresses=${host}`,
        // A throwaway cluster: no durability.
        'fsync=off',
        'synchronous_commit=off',
        'full_page_writes=off',
        // Each SOGo worker keeps a connection or two.
        `max_connections=${Math.max(50, 4 * (o.workers ?? 6) + 10)}`,
        'shared_buffers=16MB',
        // Dynamic shared memory in the data dir rather than in /dev/shm, so a killed stack leaves none behind.
        'dynamic_shared_memory_type=mmap',
      ];
      const daemon = stack.spawnDaemon('postgres', 'postgres', join(bin, 'postgres'), [
        ...['-D', stack.path('pg'), '-p', String(stack.postgresPort), '-k', socketDir],
        ...settings.flatMap((setting) => ['-c', setting]),
      ]);
      try {
        // Ready through its own unix socket: that is certainly this cluster, not someone else's on the port.
        const isReady = async (): Promise<boolean> => {
          const args = ['-q', '-h', socketDir, '-p', String(stack.postgresPort), '-t', '1'];
          const r = await run(join(bin, 'pg_isready'), args, {
            env: stack.env,
            cwd: stack.stateDir,
            timeoutMs: 3000,
          });
          return r.code === 0;
        };
        await stack.waitReady(
          daemon,
          `accepting connections on port ${stack.postgresPort}`,
          timeoutMs,
          isReady,
        );
        return;
      } catch (error) {
        if (!(error instanceof EarlyExitError && error.portClash && attempt < 3)) throw error;
        stack.daemons.splice(stack.daemons.indexOf(daemon), 1);
      }
    }
  });
  await stack.step('PostgreSQL schema and users', logs, async () => {
    const rows = o.users.map(
      (u) => `(${[u.login, u.login, ssha256(u.password), u.displayName, u.email].map(sqlString).join(', ')})`,
    );
    const sql = [
      // The columns SOGo's SQL user source needs (guide, "Authentication using SQL").
      'CREATE TABLE sogo_users (c_uid varchar(256) PRIMARY KEY, c_name varchar(256) NOT NULL,',
      '  c_password varchar(256) NOT NULL, c_cn varchar(256), mail varchar(256));',
      `INSERT INTO sogo_users VALUES ${rows.join(',\n  ')};`,
      '',
    ].join('\n');
    const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-p', String(stack.postgresPort)];
    const r = await run(join(bin, 'psql'), [...args, '-U', 'sogo', '-d', 'postgres'], {
      env: stack.env,
      cwd: stack.stateDir,
      input: sql,
      timeoutMs: Math.max(timeoutMs, 10_000),
    });
    if (r.code !== 0) throw new Error(`psql exited with ${String(r.code)}: ${r.output.trim()}`);
  });
}
