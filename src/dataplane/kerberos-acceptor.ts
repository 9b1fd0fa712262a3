/**
 * Kerberos at the edge (docs/security.md "Windows authentication", docs/operations.md "Kerberos"): a
 * `WindowsAuthVerifier` that accepts a client's Negotiate token carrying a Kerberos AP-REQ for the front ends'
 * service principal, with the keys of the alternate service account's keytab (`coexist serve --keytab`).
 * coexist implements nothing of Kerberos: MIT Kerberos does it, through squid's `negotiate_kerberos_auth` helper
 * (Debian's `squid` package), the GSS-API acceptor a Debian proxy runs in production in front of an AD domain.
 * It needs only the keytab, not a domain join or a DC to ask (the ticket is proven by the keys alone), checks the
 * authenticator's time and keeps MIT's replay cache, so a captured token is refused a second time.
 *
 * Kerberos takes one leg: the helper's protocol is one line each way, `YR <token, base64>` answered
 * `OK token=<AP-REP> user=<principal> ...` (accepted), or `BH <reason>` / `ERR` (refused: an expired, replayed,
 * garbled token, or one for a principal the keytab has no key of). A few helpers run, each answering one line at
 * a time; one that dies or does not answer in time is replaced, its one request failing. Tokens and what the
 * helper says are never logged.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Logger } from '../observability/log.ts';
import type { WindowsAuthHandshake, WindowsAuthVerifier } from './contracts.ts';
import { endHelpers, HelperLines } from './helper-lines.ts';

/** Options of `KerberosAcceptor`. */
export interface KerberosAcceptorOptions {
  /** The keytab with the service principals' keys (read by the helper; mode 0600, owned by coexist's user). */
  readonly keytab: string;
  /** A krb5.conf (`KRB5_CONFIG`); the system's by default. Acceptance needs no KDC. */
  readonly krb5Config?: string;
  /** Debian's by default. */
  readonly helperPath?: string;
  /** At most this many helpers; 2 by default. */
  readonly maxHelpers?: number;
  /** A helper that has not answered within this is killed and the request fails; 10 s by default. */
  readonly answerTimeoutMs?: number;
  readonly logger?: Logger;
}

/** Debian's path of squid's Kerberos helper. */
export const defaultKerberosHelper = '/usr/lib/squid/negotiate_kerberos_auth';

/** The largest token handed on (a ticket with a large PAC is about 12 KB, MS-KILE). */
const maxTokenBytes = 32 * 1024;

/** A step's outcome, as the contract has it. */
type Step = Awaited<ReturnType<WindowsAuthHandshake['step']>>;

/** Thrown at start when the helper or the keytab cannot be used, naming which and what to do. */
export class KerberosAcceptorError extends Error {
  override readonly name = 'KerberosAcceptorError';
}

/** One helper process and its line reader. */
class Helper {
  readonly child: ChildProcess;
  readonly #lines: HelperLines;
  dead = false;

  constructor(path: string, env: NodeJS.ProcessEnv, onExit: (h: Helper) => void) {
    // -s GSS_C_NO_NAME: any principal of the keytab (every SPN of the namespace on the one account).
    this.child = spawn(path, ['-s', 'GSS_C_NO_NAME'], { stdio: ['pipe', 'pipe', 'ignore'], env });
    this.#lines = new HelperLines(this.child, {
      name: 'the Kerberos helper',
      maxLineLength: 256 * 1024,
      fail: (error) => this.kill(error),
    });
    let ended = false;
    const end = (error: Error): void => {
      this.kill(error);
      if (!ended) {
        ended = true;
        onExit(this);
      }
    };
    this.child.once('error', (e) => end(new Error(`the Kerberos helper could not run: ${e.message}`)));
    this.child.once('exit', (code, signal) =>
      end(new Error(`the Kerberos helper exited (${String(code ?? signal)})`)),
    );
  }

  ask(line: string, timeoutMs: number): Promise<string> {
    if (this.dead) return Promise.reject(new Error('the Kerberos helper has ended'));
    return this.#lines.ask(line, timeoutMs);
  }

  kill(error: Error = new Error('the Kerberos helper was stopped')): void {
    this.dead = true;
    this.#lines.reject(error);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** The acceptor: a few helpers, requests queued for the next free one. */
export class KerberosAcceptor implements WindowsAuthVerifier {
  readonly #path: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #max: number;
  readonly #timeoutMs: number;
  readonly #logger: Logger | undefined;
  readonly #all = new Set<Helper>();
  readonly #idle: Helper[] = [];
  readonly #waiting: ((h: Helper | Error) => void)[] = [];
  #closed = false;

  constructor(o: KerberosAcceptorOptions) {
    this.#path = o.helperPath ?? defaultKerberosHelper;
    try {
      accessSync(this.#path, constants.X_OK);
    } catch {
      throw new KerberosAcceptorError(
        `Kerberos: the acceptor ${this.#path} is missing (Debian: apt-get install --no-install-recommends squid; docs/operations.md "Kerberos")`,
      );
    }
    try {
      accessSync(o.keytab, constants.R_OK);
    } catch {
      throw new KerberosAcceptorError(`Kerberos: the keytab ${o.keytab} cannot be read`);
    }
    this.#env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      KRB5_KTNAME: `FILE:${o.keytab}`,
      ...(o.krb5Config === undefined ? {} : { KRB5_CONFIG: o.krb5Config }),
    };
    this.#max = Math.max(1, o.maxHelpers ?? 2);
    this.#timeoutMs = o.answerTimeoutMs ?? 10_000;
    this.#logger = o.logger;
  }

  /** Helpers running (tests). */
  get helpers(): number {
    return this.#all.size;
  }

  begin(): WindowsAuthHandshake {
    let ended = false;
    return {
      step: async (token: Buffer): Promise<Step> => {
        if (ended) return { kind: 'failed', reason: 'the handshake has ended' };
        ended = true;
        return this.#accept(token);
      },
      close: () => {
        ended = true;
      },
    };
  }

  async #accept(token: Buffer): Promise<Step> {
    if (token.length === 0 || token.length > maxTokenBytes) return { kind: 'failed', reason: 'token size' };
    const helper = await this.#acquire().catch((e: unknown) => e as Error);
    if (helper instanceof Error) return { kind: 'failed', reason: helper.message };
    let answer: string;
    try {
      answer = await helper.ask(`YR ${token.toString('base64')}`, this.#timeoutMs);
    } catch (error) {
      this.#drop(helper);
      throw error;
    }
    this.#release(helper);
    return parseAnswer(answer);
  }

  #acquire(): Promise<Helper> {
    if (this.#closed) return Promise.reject(new Error('the Kerberos acceptor is closed'));
    for (let h = this.#idle.pop(); h; h = this.#idle.pop()) if (!h.dead) return Promise.resolve(h);
    if (this.#all.size < this.#max) return Promise.resolve(this.#spawn());
    return new Promise((resolve, reject) =>
      this.#waiting.push((h) => (h instanceof Error ? reject(h) : resolve(h))),
    );
  }

  #release(h: Helper): void {
    if (h.dead || this.#closed) return this.#drop(h);
    const w = this.#waiting.shift();
    if (w) w(h);
    else this.#idle.push(h);
  }

  #drop(h: Helper): void {
    h.kill();
    if (!this.#all.delete(h)) return;
    const w = this.#waiting.shift();
    if (w) w(this.#closed ? new Error('the Kerberos acceptor is closed') : this.#spawn());
  }

  #spawn(): Helper {
    const h = new Helper(this.#path, this.#env, (dead) => {
      const i = this.#idle.indexOf(dead);
      if (i >= 0) this.#idle.splice(i, 1);
      if (this.#all.has(dead) && !this.#closed)
        this.#logger?.warn({ pid: dead.child.pid }, 'a Kerberos helper ended');
      this.#drop(dead);
    });
    this.#all.add(h);
    return h;
  }

  /** Ends every helper; requests waiting fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w(new Error('the Kerberos acceptor is closed'));
    const ended = endHelpers(this.#all);
    this.#idle.length = 0;
    await ended;
  }
}

/**
 * The helper's answer: `OK token=<b64> user=<principal> [group=...]` (squid 3.4+'s key=value form) or the
 * older `AF <token> <principal>`; anything else is a refusal. The principal must be `name@REALM`.
 */
export function parseAnswer(line: string): Step {
  const fields = line.trim().split(/\s+/);
  const code = fields[0];
  let token: string | undefined;
  let user: string | undefined;
  if (code === 'OK') {
    for (const f of fields.slice(1)) {
      if (f.startsWith('token=')) token = f.slice(6);
      else if (f.startsWith('user=')) user = decodeURIComponent(f.slice(5));
    }
  } else if (code === 'AF') {
    token = fields[1];
    user = fields[2];
  } else {
    return { kind: 'failed', reason: 'the ticket was refused' };
  }
  if (user === undefined || !/^[^@\s\\/]+@[A-Za-z0-9.-]+$/.test(user)) {
    return { kind: 'failed', reason: 'the acceptor named no user principal' };
  }
  const reply =
    token !== undefined && /^[A-Za-z0-9+/]+=*$/.test(token) ? Buffer.from(token, 'base64') : undefined;
  return { kind: 'done', account: user, ...(reply && reply.length > 0 ? { token: reply } : {}) };
}
