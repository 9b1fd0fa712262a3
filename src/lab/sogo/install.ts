/**
 * What a SOGo stack needs installed, where it is, and the system accounts its daemons run as. Debian
 * packages: sogo sogo-activesync dovecot-imapd memcached postgresql (.ci/run installs them).
 */
import { accessSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isExecutable } from '../daemon.ts';

/** Every daemon of a stack listens on this address only. */
export const host = '127.0.0.1';
export const sogodPath = '/usr/sbin/sogod';
const activeSyncBundle = '/usr/lib/GNUstep/SOGo/ActiveSync.SOGo';
export const dovecotPath = '/usr/sbin/dovecot';
export const memcachedPath = '/usr/bin/memcached';
export const setprivPath = '/usr/bin/setpriv';
const packages = 'sogo sogo-activesync dovecot-imapd memcached postgresql';
const installHint = `On Debian, as root: apt-get install -y --no-install-recommends ${packages} (.ci/run does this, with a deny-all policy-rc.d so no service starts)`;

/** The newest PostgreSQL server binaries Debian installed (/usr/lib/postgresql/<major>/bin), if any. */
export function postgresBinDir(): string | undefined {
  let majors: number[];
  try {
    majors = readdirSync('/usr/lib/postgresql')
      .filter((d) => /^\d+$/.test(d))
      .map(Number)
      .sort((a, b) => b - a);
  } catch {
    return undefined;
  }
  for (const major of majors) {
    const dir = `/usr/lib/postgresql/${major}/bin`;
    if (['initdb', 'postgres', 'pg_isready', 'psql'].every((b) => isExecutable(join(dir, b)))) return dir;
  }
  return undefined;
}

/** Undefined when everything the stack needs is installed; otherwise what is missing and how to install it. */
export function sogoAvailable(): string | undefined {
  const missing: string[] = [];
  if (!isExecutable(sogodPath)) missing.push(`${sogodPath} (sogo)`);
  try {
    accessSync(activeSyncBundle);
  } catch {
    missing.push(`${activeSyncBundle} (sogo-activesync)`);
  }
  if (!isExecutable(dovecotPath)) missing.push(`${dovecotPath} (dovecot-imapd)`);
  else if (!isExecutable('/usr/lib/dovecot/imap')) missing.push('/usr/lib/dovecot/imap (dovecot-imapd)');
  if (!isExecutable(memcachedPath)) missing.push(`${memcachedPath} (memcached)`);
  if (!postgresBinDir())
    missing.push('/usr/lib/postgresql/*/bin/{initdb,postgres,pg_isready,psql} (postgresql)');
  if (!isExecutable(setprivPath)) missing.push(`${setprivPath} (util-linux)`);
  if (missing.length === 0) {
    const accounts = readAccounts();
    for (const user of ['postgres', 'sogo', 'mail', 'memcache', 'dovecot', 'dovenull']) {
      if (!accounts.has(user)) missing.push(`system user ${user}`);
    }
  }
  if (missing.length === 0) return undefined;
  return `SOGo ActiveSync stack not installed: missing ${missing.join(', ')}. ${installHint}.`;
}

/** uid and gid of the system accounts, from /etc/passwd. */
export function readAccounts(): Map<string, { uid: number; gid: number }> {
  const accounts = new Map<string, { uid: number; gid: number }>();
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return accounts;
  }
  for (const line of text.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user && uid && gid) accounts.set(user, { uid: Number(uid), gid: Number(gid) });
  }
  return accounts;
}
