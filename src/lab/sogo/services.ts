/** Starting memcached, Dovecot (with its CONDSTORE warm-up and the seed) and SOGo, each until it answers. */
import { request as httpRequest } from 'node:http';
import { stat, writeFile } from 'node:fs/promises';
import { accepts, errorText, freePort } from '../daemon.ts';
import { dovecotConf, sogoArguments, ssha256 } from './config.ts';
import { appendMessages } from './imap.ts';
import { dovecotPath, host, memcachedPath, readAccounts, sogodPath } from './install.ts';
import { renderSogoMessage } from './message.ts';
import { EarlyExitError } from './processes.ts';
import type { Stack } from './stack.ts';
import type { SogoStackOptions } from './types.ts';

/** One GET or OPTIONS to SOGo on a fresh connection (SOGo closes every connection without saying so). */
function httpStatus(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port, method, path, headers, agent: false, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export async function startMemcached(stack: Stack, o: SogoStackOptions): Promise<void> {
  const socket = stack.path('run', 'memcached.sock');
  await stack.step('memcached start', ['memcached.out'], async () => {
    // As memcache from the start rather than with -u: memcached's own setuid would clear the parent-death signal.
    const args = ['-s', socket, '-a', '0777', '-m', '32'];
    const daemon = stack.spawnDaemon('memcached', 'memcache', memcachedPath, args);
    await stack.waitReady(daemon, 'listening on its socket', o.readyTimeoutMs ?? 10_000, () =>
      accepts({ path: socket }),
    );
  });
}

export async function startDovecot(stack: Stack, o: SogoStackOptions): Promise<void> {
  const timeoutMs = o.readyTimeoutMs ?? 10_000;
  const logs = ['dovecot.out', 'dovecot.log'];
  const mail = readAccounts().get('mail');
  if (!mail) throw new Error(`SOGo stack ${stack.name}: no system user mail`);
  const conf = stack.path('dovecot', 'dovecot.conf');
  await stack.step('Dovecot start', logs, async () => {
    // Dovecot looks logins up lowercased (auth_username_format %Lu).
    const passwd = o.users.map((u) => `${u.login.toLowerCase()}:${ssha256(u.password)}\n`).join('');
    await writeFile(stack.path('dovecot', 'users'), passwd, { mode: 0o644 });
    for (let attempt = 1; ; attempt++) {
      stack.imapPort = await freePort(host);
      await writeFile(conf, dovecotConf(stack, mail.uid, mail.gid));
      const daemon = stack.spawnDaemon('dovecot', undefined, dovecotPath, ['-F', '-c', conf]);
      try {
        // The master binds every listener before it creates the auth sockets: the socket in our base_dir
        // plus an accepting port means it is our Dovecot that answers.
        await stack.waitReady(daemon, `listening on port ${stack.imapPort}`, timeoutMs, async () => {
          const socket = await stat(stack.path('dovecot', 'run', 'auth-userdb')).catch(() => undefined);
          return Boolean(socket?.isSocket()) && (await accepts({ host, port: stack.imapPort }));
        });
        return;
      } catch (error) {
        if (!(error instanceof EarlyExitError && error.portClash && attempt < 3)) throw error;
        stack.daemons.splice(stack.daemons.indexOf(daemon), 1);
      }
    }
  });
  await stack.step('Dovecot CONDSTORE warm-up and seed', logs, async () => {
    await Promise.all(
      o.users.map((u) =>
        appendMessages(
          stack.imapPort,
          u.login,
          u.password,
          (o.seed?.[u.login] ?? []).map((m) => renderSogoMessage(m)),
          true,
          timeoutMs,
        ).catch((error: unknown) => {
          throw new Error(`${u.login}: ${errorText(error)}`);
        }),
      ),
    );
  });
}

export async function startSogo(stack: Stack, o: SogoStackOptions): Promise<void> {
  const timeoutMs = o.readyTimeoutMs ?? 30_000;
  const logs = ['sogod.out', 'sogo.log'];
  const first = o.users[0];
  await stack.step('SOGo start', logs, async () => {
    for (let attempt = 1; ; attempt++) {
      stack.port = await freePort(host);
      const daemon = stack.spawnDaemon('sogod', 'sogo', sogodPath, sogoArguments(stack, o));
      try {
        await stack.waitReady(daemon, `answering on port ${stack.port}`, timeoutMs, async () => {
          // Early on, the watchdog may close the connection ("No child available"): not ready yet.
          const r = await httpStatus(stack.port, 'GET', '/SOGo/', {}, 2000).catch(() => undefined);
          return r !== undefined && r.status > 0 && r.status < 500;
        });
        break;
      } catch (error) {
        if (!(error instanceof EarlyExitError && error.portClash && attempt < 3)) throw error;
        stack.daemons.splice(stack.daemons.indexOf(daemon), 1);
      }
    }
  });
  await stack.step('SOGo ActiveSync check', logs, async () => {
    if (!first) return;
    // Our users authenticate (so it is this stack's SOGo on the port) and the ActiveSync module is loaded.
    const auth = `Basic ${Buffer.from(`${first.login}:${first.password}`, 'utf8').toString('base64')}`;
    const r = await httpStatus(
      stack.port,
      'OPTIONS',
      '/SOGo/Microsoft-Server-ActiveSync',
      { authorization: auth },
      10_000,
    );
    const versions = r.headers['ms-asprotocolversions'];
    if (r.status !== 200 || !versions) {
      throw new Error(`OPTIONS as ${first.login} answered ${r.status} without MS-ASProtocolVersions`);
    }
  });
}
