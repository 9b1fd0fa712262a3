/**
 * `coexist serve`'s options for several front ends (docs/operations.md "Several front ends"): the OWA session
 * key file they share and the Redis they share revocations and lockout counters in. Read and checked at
 * start, each bad file named with what is wrong; no password or key is ever printed.
 */
import { readFileSync } from 'node:fs';
import { checkRedisUrl, type SharedStoreSettings } from '../dataplane/redis-store.ts';
import { readSessionKeyFile, SessionKeyFileError } from '../dataplane/session-keys.ts';
import { usage } from './common.ts';

/** The options as commander gives them. */
export interface SessionCliOptions {
  readonly sessionKeyFile?: string;
  readonly redis?: string;
  readonly redisPasswordFile?: string;
}

/** What `startServerNode` takes from them (nothing when none is given: one front end, as before). */
export function sessionOptions(o: SessionCliOptions): {
  sessionKeys?: Uint8Array[];
  redis?: SharedStoreSettings;
} {
  let sessionKeys: Uint8Array[] | undefined;
  if (o.sessionKeyFile !== undefined) {
    try {
      sessionKeys = readSessionKeyFile(o.sessionKeyFile);
    } catch (err) {
      if (err instanceof SessionKeyFileError) throw usage(`--session-key-file ${err.message}`);
      throw err;
    }
  }
  if (o.redisPasswordFile !== undefined && o.redis === undefined)
    throw usage('--redis-password-file needs --redis URL');
  let redis: SharedStoreSettings | undefined;
  if (o.redis !== undefined) {
    // The URL's text is not echoed: it may hold a password.
    const problem = checkRedisUrl(o.redis);
    if (problem) throw usage(`--redis: the URL ${problem}`);
    redis = { url: o.redis };
    if (o.redisPasswordFile !== undefined) {
      let password: string;
      try {
        password = readFileSync(o.redisPasswordFile, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw usage(
          `--redis-password-file ${o.redisPasswordFile}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
        );
      }
      if (password === '' || /[\r\n]/.test(password))
        throw usage(`--redis-password-file ${o.redisPasswordFile}: must hold the password on one line`);
      redis = { ...redis, password };
    }
  }
  return {
    ...(sessionKeys === undefined ? {} : { sessionKeys }),
    ...(redis === undefined ? {} : { redis }),
  };
}
