/**
 * The users `coexist trace` and `coexist check` work with (docs/config.md "directory"): the estate file's
 * `users`, or, when the file has a `directory.ldap` section, that directory, asked with the estate's own
 * service account (its password from `bindPasswordFile` / `bindPasswordEnv`, as `coexist serve` reads it;
 * never the user's). The LDAP client is imported only then, so an estate without a directory never loads it.
 * What the directory answers becomes an index in which only those mailboxes exist: the engine then routes
 * them exactly as it routes the same users of an estate file.
 */
import { readFile } from 'node:fs/promises';
import type { LoadedEstate } from '../config/index.ts';
import type { EstateIndex, Mailbox } from '../core/estate/estate-index.ts';
import { CoexistError } from '../core/errors.ts';
import { DirectoryUnavailableError } from '../directory/directory.ts';
import type { LdapDirectoryOptions } from '../directory/ldap-settings.ts';

/** Where the users come from, for one command run; `close()` when done. */
export interface EstateUsers {
  /** The LDAP server's URL when the users are in a directory (it carries no credentials). */
  readonly directoryUrl: string | undefined;
  /** The mailbox of an address, alias, UPN or DOMAIN\login; undefined when there is none. */
  find(identity: string): Promise<Mailbox | undefined>;
  /**
   * Every user's mailbox, or with a directory the first `limit` by primary SMTP address, and how many
   * mailbox users there are (a directory's users whose server is not in the estate are counted, not traced).
   */
  all(limit: number): Promise<{ readonly mailboxes: readonly Mailbox[]; readonly total: number }>;
  close(): Promise<void>;
}

/** Lookups made at once against a directory (its pool's default size: more would only wait). */
const concurrentLookups = 4;

/**
 * The users of a loaded estate file `file`. `warn` hears about directory entries that cannot be a mailbox
 * of the estate (a server it does not have, a database without a server).
 */
export async function openEstateUsers(
  loaded: LoadedEstate,
  file: string,
  warn: (message: string) => void,
): Promise<EstateUsers> {
  const ldap = loaded.settings.directory?.ldap;
  const index = loaded.index;
  if (ldap === undefined) {
    return {
      directoryUrl: undefined,
      find: (identity) => Promise.resolve(index.mailbox(identity)),
      all: () => {
        const mailboxes = index.estate.users.flatMap((u) => index.mailbox(u.address) ?? []);
        return Promise.resolve({ mailboxes, total: mailboxes.length });
      },
      close: () => Promise.resolve(),
    };
  }
  const { LdapDirectory, readLdapSecrets } = await import('../directory/ldap-directory.ts');
  let secrets;
  try {
    secrets = await readLdapSecrets(ldap);
  } catch (e) {
    throw unavailable(ldap, file, e);
  }
  const directory = new LdapDirectory(index, ldap, secrets, { warn });
  const asked = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      throw unavailable(ldap, file, e);
    }
  };
  return {
    directoryUrl: directory.url,
    find: (identity) => asked(() => directory.findMailbox(identity)),
    all: async (limit) => {
      const { first, total } = await asked(() => directory.mailboxAddresses(limit));
      const found = await asked(() => mapLimited(first, concurrentLookups, (a) => directory.findMailbox(a)));
      return { mailboxes: found.filter((m): m is Mailbox => m !== undefined), total };
    },
    close: () => directory.close(),
  };
}

/** A directory that cannot be asked: which server, what failed, and the estate file that names it. */
function unavailable(ldap: LdapDirectoryOptions, file: string, e: unknown): CoexistError {
  const what = e instanceof Error ? e.message : String(e);
  const reason =
    e instanceof DirectoryUnavailableError ? what : `the directory ${ldap.url} cannot be asked: ${what}`;
  return new CoexistError(
    'CX_DIRECTORY_UNAVAILABLE',
    `${reason} (directory.ldap of ${file})`,
    { url: ldap.url },
    { cause: e },
  );
}

/** `fn` over `items` with at most `limit` calls in flight; results in the items' order. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * `index` with only these mailboxes as its users: `user()` and `mailbox()` answer for their addresses,
 * aliases, UPNs and logins, and for the identities they were asked by (`askedAs`, lower-case -> mailbox);
 * everything else (servers, sites, namespaces) is the estate's. Mailboxes keep their order, once each.
 */
export function indexWithMailboxes(
  index: EstateIndex,
  mailboxes: readonly Mailbox[],
  askedAs: ReadonlyMap<string, Mailbox> = new Map(),
): EstateIndex {
  const byIdentity = new Map<string, Mailbox>();
  const unique: Mailbox[] = [];
  for (const m of mailboxes) {
    const key = m.address.toLowerCase();
    if (byIdentity.get(key) !== undefined) continue;
    unique.push(m);
    for (const id of [m.address, ...m.user.aliases, m.user.upn, m.user.login])
      if (id !== undefined && !byIdentity.has(id.toLowerCase())) byIdentity.set(id.toLowerCase(), m);
  }
  for (const [id, m] of askedAs) if (!byIdentity.has(id)) byIdentity.set(id, m);
  const mailbox = (identity: string): Mailbox | undefined => byIdentity.get(identity.toLowerCase());
  return {
    ...index,
    estate: { ...index.estate, users: unique.map((m) => m.user) },
    user: (identity) => mailbox(identity)?.user,
    mailbox,
  };
}

/** One identity of a `--users FILE` and where it is. */
export interface ListedUser {
  readonly identity: string;
  readonly line: number;
}

/** `--users FILE`: one address (or alias, UPN, DOMAIN\login) per line; blank lines and `#` comments skipped. */
export async function readUserList(file: string): Promise<ListedUser[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CoexistError(
      'CX_CLI_USAGE',
      `--users ${file}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  const users: ListedUser[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const identity = raw.trim();
      if (identity !== '' && !identity.startsWith('#')) users.push({ identity, line: i + 1 });
    });
  if (users.length === 0) throw new CoexistError('CX_CLI_USAGE', `--users ${file}: no user in the file`);
  return users;
}
