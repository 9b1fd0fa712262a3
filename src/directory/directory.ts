/**
 * Where a mailbox lives and whether a password is right: the questions the front end asks the directory
 * before every decision (architecture.md "How a request flows"). Declared here, next to its first
 * implementation; the LDAP directory (issue 5) implements the same contract.
 */
import type { EstateIndex, Mailbox } from '../core/estate/estate-index.ts';
import { hashPassword, verifyPassword } from './password-hash.ts';

/**
 * The directory could not answer (down, timed out, refused the service account): not "no such user".
 * Part of the contract, so every implementation and the cache in front of them speak of it the same way.
 */
export class DirectoryUnavailableError extends Error {
  override readonly name = 'DirectoryUnavailableError';
}

/**
 * What a caller may do with a mailbox (docs/security.md "Mailbox access"): its owner, a user granted full
 * access, a delegate, or none of these.
 */
export type MailboxAccess = 'owner' | 'full-access' | 'delegate' | 'none';

/**
 * The caller's access to `mailbox`, from the grants the directory returned with it (`user.fullAccess`,
 * `user.delegates`: the trustees' primary addresses). Pure: both mailboxes come from the same directory.
 */
export function accessOf(caller: Mailbox, mailbox: Mailbox): MailboxAccess {
  const who = caller.address.toLowerCase();
  if (who === mailbox.address.toLowerCase()) return 'owner';
  if (mailbox.user.fullAccess?.some((a) => a.toLowerCase() === who)) return 'full-access';
  if (mailbox.user.delegates?.some((a) => a.toLowerCase() === who)) return 'delegate';
  return 'none';
}

/**
 * Whether `caller` holds the ApplicationImpersonation role over `target`'s mailbox (docs/security.md
 * "Mailbox access"): over every mailbox, or over a scope that lists it. Pure, as `accessOf`.
 */
export function mayImpersonate(caller: Mailbox, target: Mailbox): boolean {
  const scope = caller.user.impersonation;
  if (scope === undefined) return false;
  if (scope === 'all') return true;
  const whom = target.address.toLowerCase();
  return scope.some((a) => a.toLowerCase() === whom);
}

/** Whether `caller` holds the ApplicationImpersonation role at all (over any mailbox). */
export const holdsImpersonationRole = (caller: Mailbox): boolean =>
  caller.user.impersonation === 'all' || (caller.user.impersonation?.length ?? 0) > 0;

/** The directory as the data plane uses it. */
export interface Directory {
  /**
   * The mailbox of an SMTP address (primary or secondary), UPN or `DOMAIN\user`; undefined when unknown.
   * Its `user.fullAccess` and `user.delegates` are the access grants on it, as the trustees' primary SMTP
   * addresses (`accessOf` reads them); `user.impersonation` is the ApplicationImpersonation role its user
   * holds (`mayImpersonate` reads it).
   */
  findMailbox(identity: string): Promise<Mailbox | undefined>;
  /**
   * The mailbox of the user whose password this is, or undefined for a wrong password or an unknown user;
   * both take about as long (an unknown user is checked against a dummy hash), so timing does not tell
   * which users exist.
   */
  authenticate(login: string, password: string): Promise<Mailbox | undefined>;
}

/** The embedded directory: users and their scrypt hashes from the estate file. */
export class FileDirectory implements Directory {
  readonly #index: EstateIndex;
  #dummy: Promise<string> | undefined;

  constructor(index: EstateIndex) {
    this.#index = index;
  }

  findMailbox(identity: string): Promise<Mailbox | undefined> {
    return Promise.resolve(this.#index.mailbox(identity));
  }

  async authenticate(login: string, password: string): Promise<Mailbox | undefined> {
    const mailbox = this.#index.mailbox(login);
    const hash = mailbox?.user.passwordHash;
    if (mailbox === undefined || hash === undefined) {
      // Same work as a real check, so an unknown user answers in about the same time as a wrong password.
      await verifyPassword(password, await this.#dummyHash());
      return undefined;
    }
    return (await verifyPassword(password, hash)) ? mailbox : undefined;
  }

  /** A hash with the estate's usual cost, made once. */
  #dummyHash(): Promise<string> {
    const sample = this.#index.estate.users.find((u) => u.passwordHash)?.passwordHash;
    const ln = sample ? Number(/ln=(\d+)/.exec(sample)?.[1] ?? 15) : 15;
    this.#dummy ??= hashPassword('coexist-no-such-user', ln);
    return this.#dummy;
  }
}
