/**
 * NTLM verified by the lab's domain controller: a `WindowsAuthVerifier` (dataplane/contracts.ts) backed by
 * a bounded pool of Samba's own `ntlm_auth --helper-protocol=squid-2.5-ntlmssp` helpers on the DC's
 * smb.conf, which ask the DC's winbindd (docs/lab.md §5.5). coexist does not verify NTLM itself: the helper
 * computes the challenge and checks the answer against the domain, as an Exchange server's IIS asks its DC.
 * Each helper runs in a mount namespace of its own where the DC's winbind socket directory is at the one
 * path `ntlm_auth` looks at (winbind-socket.ts), so verifiers on different DCs run side by side.
 *
 * The helper's protocol is one line each way: `YR <NEGOTIATE, base64>` is answered `TT <CHALLENGE>`, then
 * `KK <AUTHENTICATE>` is answered `AF <DOMAIN\user>` (verified) or `NA <NT_STATUS_...>` (refused); `BH` is
 * a broken helper. A `YR` starts a new handshake on the same helper, so one helper serves handshake after
 * handshake. A handshake takes a helper with its NEGOTIATE and holds it (the CHALLENGE's state is in the
 * helper) until it is done, failed or closed; a helper that dies, answers something else or takes too long
 * fails its one handshake (never a throw to the caller) and is killed, and the next handshake spawns a new
 * one. Tokens and what the helper says are never logged (only the NT status of a refusal).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import type { WindowsAuthHandshake, WindowsAuthVerifier } from '../../dataplane/contracts.ts';
import { endHelpers, HelperLines } from '../../dataplane/helper-lines.ts';
import type { Logger } from '../../observability/log.ts';
import { killOnExit } from '../daemon.ts';
import { inWinbindNamespace, mountFailedExitCode, winbindSocketDir } from './winbind-socket.ts';

/** A step's outcome, as the contract has it. */
export type NtlmStep = Awaited<ReturnType<WindowsAuthHandshake['step']>>;

/** Options of `NtlmVerifier`. */
export interface NtlmVerifierOptions {
  /** The DC's smb.conf (`SambaAd.confFile`): its realm and workgroup. */
  readonly confFile: string;
  /**
   * The DC's `winbindd socket directory` (`SambaAd.winbindSocketDir`): each helper sees it at
   * `/run/samba/winbindd`, in its own mount namespace.
   */
  readonly winbindSocketDir: string;
  /** Debian's by default. */
  readonly ntlmAuthPath?: string;
  /** At most this many helpers run; a handshake beyond them waits for one. 4 by default. */
  readonly maxHelpers?: number;
  /** A helper that has not answered a line within this is killed and its handshake fails; 10 s by default. */
  readonly answerTimeoutMs?: number;
  /**
   * A handshake that has held its helper this long since its NEGOTIATE (a client that never sends its
   * AUTHENTICATE) gives it back and fails; 60 s by default.
   */
  readonly holdTimeoutMs?: number;
  /** A handshake waiting this long for a free helper fails; 30 s by default. */
  readonly queueTimeoutMs?: number;
  readonly logger?: Logger;
}

/** The NTLMSSP signature and a message's type (MS-NLMP 2.2.1: 1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE). */
const signature = Buffer.from('NTLMSSP\0', 'latin1');
export function ntlmMessageType(token: Buffer): number | undefined {
  if (token.length < 12 || !token.subarray(0, 8).equals(signature)) return undefined;
  return token.readUInt32LE(8);
}

/** No NTLM message comes near this (MS-NLMP messages are a few hundred bytes; the helper reads lines). */
const maxTokenBytes = 16 * 1024;

/** Why a helper ended, in words: the namespace's setup failing is told apart from ntlm_auth exiting. */
function exitError(
  code: number | null,
  signal: NodeJS.Signals | null,
  path: string,
  socketDir: string,
  complaint: string,
): Error {
  const said = complaint.trim().replace(/\s+/g, ' ');
  if (code === mountFailedExitCode) {
    return new Error(
      `ntlm_auth could not run: bind-mounting ${socketDir} at ${winbindSocketDir} in its own mount namespace failed (root is needed): ${said}`,
    );
  }
  if (code === 126 || code === 127) return new Error(`ntlm_auth could not run: ${path} (exit ${code})`);
  return new Error(`ntlm_auth exited (${String(code ?? signal)})${said === '' ? '' : `: ${said}`}`);
}

/** One `ntlm_auth` process (in its own mount namespace) and its line reader. */
class Helper {
  readonly child: ChildProcess;
  readonly #lines: HelperLines;
  #dead: Error | undefined;

  constructor(path: string, confFile: string, socketDir: string, onExit: (helper: Helper) => void) {
    const command = inWinbindNamespace(socketDir, path, [
      `--configfile=${confFile}`,
      '--helper-protocol=squid-2.5-ntlmssp',
    ]);
    this.child = spawn(command.command, command.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    // Only the namespace's setup writes here (ntlm_auth's own stderr is dropped): kept short for the exit reason.
    let complaint = '';
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (d: string) => {
      if (complaint.length < 1024) complaint = (complaint + d).slice(0, 1024);
    });
    const releaseAtExit = killOnExit(() => this.child.kill('SIGKILL'));
    this.#lines = new HelperLines(this.child, {
      name: 'ntlm_auth',
      maxLineLength: 64 * 1024,
      fail: (error) => this.#fail(error),
    });
    // A program that cannot be spawned may report only 'error', not 'close': either one ends the helper, once.
    let ended = false;
    const end = (error: Error): void => {
      this.#fail(error);
      if (ended) return;
      ended = true;
      releaseAtExit();
      onExit(this);
    };
    this.child.once('error', (error) => end(new Error(`ntlm_auth could not run: ${error.message}`)));
    // 'close', not 'exit': the setup's complaint on stderr has been read by then.
    this.child.once('close', (code, signal) => end(exitError(code, signal, path, socketDir, complaint)));
  }

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  #fail(error: Error): void {
    this.#dead ??= error;
    this.#lines.reject(error);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** Send one line and read the answer; rejects when the helper dies, is killed or times out. */
  ask(line: string, timeoutMs: number): Promise<string> {
    if (this.#dead) return Promise.reject(this.#dead);
    if (this.#lines.busy) return Promise.reject(new Error('ntlm_auth is busy'));
    return this.#lines.ask(line, timeoutMs);
  }

  kill(): void {
    this.#fail(new Error('ntlm_auth was stopped'));
  }
}

/** The pool: idle helpers, how many run, who waits. */
export class NtlmVerifier implements WindowsAuthVerifier {
  readonly #o: Required<Omit<NtlmVerifierOptions, 'logger'>> & { logger: Logger | undefined };
  readonly #all = new Set<Helper>();
  readonly #idle: Helper[] = [];
  readonly #waiting: { resolve: (h: Helper) => void; reject: (e: Error) => void }[] = [];
  #closed = false;

  constructor(o: NtlmVerifierOptions) {
    this.#o = {
      confFile: o.confFile,
      winbindSocketDir: o.winbindSocketDir,
      ntlmAuthPath: o.ntlmAuthPath ?? '/usr/bin/ntlm_auth',
      maxHelpers: Math.max(1, o.maxHelpers ?? 4),
      answerTimeoutMs: o.answerTimeoutMs ?? 10_000,
      holdTimeoutMs: o.holdTimeoutMs ?? 60_000,
      queueTimeoutMs: o.queueTimeoutMs ?? 30_000,
      logger: o.logger,
    };
  }

  /** Helpers running, idle ones and handshakes waiting for one (tests and /status). */
  get stats(): { readonly helpers: number; readonly idle: number; readonly waiting: number } {
    return { helpers: this.#all.size, idle: this.#idle.length, waiting: this.#waiting.length };
  }

  /** The pids of the running helpers (tests kill one mid-handshake). */
  helperPids(): number[] {
    return [...this.#all].flatMap((h) => (h.child.pid === undefined ? [] : [h.child.pid]));
  }

  begin(): WindowsAuthHandshake {
    return new NtlmHandshake(this);
  }

  /** Ends every helper; handshakes in progress fail, waiting ones too. */
  close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w.reject(new Error('the NTLM verifier is closed'));
    const ended = endHelpers(this.#all);
    this.#idle.length = 0;
    return ended;
  }

  /** @internal A helper for a handshake: an idle one, a new one, or the next one given back. */
  acquire(): Promise<Helper> {
    if (this.#closed) return Promise.reject(new Error('the NTLM verifier is closed'));
    for (let h = this.#idle.pop(); h; h = this.#idle.pop()) if (!h.dead) return Promise.resolve(h);
    if (this.#all.size < this.#o.maxHelpers) return Promise.resolve(this.#spawn());
    return new Promise<Helper>((resolve, reject) => {
      const entry = {
        resolve: (h: Helper) => {
          clearTimeout(timer);
          resolve(h);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const i = this.#waiting.indexOf(entry);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(new Error(`no NTLM helper was free within ${this.#o.queueTimeoutMs} ms`));
      }, this.#o.queueTimeoutMs);
      this.#waiting.push(entry);
    });
  }

  /** @internal A handshake gives its helper back (a dead one is dropped, and a waiter gets a new one). */
  giveBack(h: Helper, reusable: boolean): void {
    if (!reusable || h.dead || this.#closed) {
      h.kill();
      this.#all.delete(h);
    } else {
      const w = this.#waiting.shift();
      if (w) w.resolve(h);
      else this.#idle.push(h);
      return;
    }
    const w = this.#waiting.shift();
    if (w && this.#all.size < this.#o.maxHelpers) w.resolve(this.#spawn());
    else if (w) this.#waiting.unshift(w);
  }

  /** @internal */
  get options(): { answerTimeoutMs: number; holdTimeoutMs: number; logger: Logger | undefined } {
    return this.#o;
  }

  #spawn(): Helper {
    const h = new Helper(this.#o.ntlmAuthPath, this.#o.confFile, this.#o.winbindSocketDir, (dead) => {
      const i = this.#idle.indexOf(dead);
      if (i >= 0) this.#idle.splice(i, 1);
      // Dropped already (giveBack), which gave its place to a waiter then.
      if (!this.#all.delete(dead) || this.#closed) return;
      this.#o.logger?.warn(
        { pid: dead.child.pid },
        'an ntlm_auth helper ended; the next handshake starts a new one',
      );
      // A waiter can use the place the dead helper leaves.
      const w = this.#waiting.shift();
      if (w) w.resolve(this.#spawn());
    });
    this.#all.add(h);
    this.#o.logger?.debug({ pid: h.child.pid, helpers: this.#all.size }, 'ntlm_auth helper started');
    return h;
  }
}

/** One client connection's handshake. */
class NtlmHandshake implements WindowsAuthHandshake {
  #helper: Helper | undefined;
  #state: 'new' | 'challenged' | 'ended' = 'new';
  /** In a step (a second one at once is refused). */
  #busy = false;
  /** A line is with the helper: its answer is owed to this handshake, so it cannot serve another. */
  #asking = false;
  #holdTimer: NodeJS.Timeout | undefined;

  constructor(private readonly pool: NtlmVerifier) {}

  async step(token: Buffer): Promise<NtlmStep> {
    if (this.#state === 'ended') return { kind: 'failed', reason: 'the handshake has ended' };
    if (this.#busy) return this.#end(false, 'a step is already in progress');
    const type = ntlmMessageType(token);
    if (type === undefined || token.length > maxTokenBytes) return this.#end(true, 'not an NTLM message');
    if (this.#state === 'new' && type !== 1) return this.#end(true, 'the first message is not NEGOTIATE');
    if (this.#state === 'challenged' && type !== 3) {
      return this.#end(true, 'the second message is not AUTHENTICATE');
    }
    this.#busy = true;
    try {
      if (this.#state === 'new') {
        try {
          this.#helper = await this.pool.acquire();
        } catch (error) {
          return this.#end(true, (error as Error).message);
        }
        // The verifier may have been closed, or the handshake, while it waited.
        if ((this.#state as string) === 'ended') {
          this.pool.giveBack(this.#helper, true);
          this.#helper = undefined;
          return { kind: 'failed', reason: 'the handshake has ended' };
        }
        this.#holdTimer = setTimeout(
          () => this.#end(true, 'the client did not answer the challenge in time'),
          this.pool.options.holdTimeoutMs,
        );
        this.#holdTimer.unref();
      }
      const helper = this.#helper as Helper;
      let answer: string;
      try {
        this.#asking = true;
        answer = await helper.ask(
          `${type === 1 ? 'YR' : 'KK'} ${token.toString('base64')}`,
          this.pool.options.answerTimeoutMs,
        );
      } catch (error) {
        return this.#end(false, (error as Error).message);
      } finally {
        this.#asking = false;
      }
      if ((this.#state as string) === 'ended') return { kind: 'failed', reason: 'the handshake has ended' };
      return this.#answer(type, answer);
    } finally {
      this.#busy = false;
    }
  }

  #answer(type: number, answer: string): NtlmStep {
    const space = answer.indexOf(' ');
    const code = space < 0 ? answer : answer.slice(0, space);
    const rest = space < 0 ? '' : answer.slice(space + 1).trim();
    if (type === 1 && code === 'TT') {
      const challenge = Buffer.from(rest, 'base64');
      if (ntlmMessageType(challenge) !== 2 || challenge.toString('base64') !== rest) {
        return this.#end(false, 'ntlm_auth answered NEGOTIATE with something that is not a CHALLENGE');
      }
      this.#state = 'challenged';
      return { kind: 'continue', token: challenge };
    }
    if (type === 3 && code === 'AF') {
      // DOMAIN\user; an empty user would be an anonymous logon, which is never a mailbox user.
      const account = /^[^\\\s]+\\[^\\\s]+$/.test(rest) ? rest : undefined;
      if (account === undefined) return this.#end(true, 'ntlm_auth accepted no named account');
      this.#end(true);
      return { kind: 'done', account };
    }
    if (type === 3 && code === 'NA') {
      const status = /^NT_STATUS_[A-Z_]+$/.test(rest) ? rest : 'refused';
      return this.#end(true, `the domain refused the logon: ${status}`);
    }
    if (code === 'BH') return this.#end(false, 'ntlm_auth reported a broken helper');
    return this.#end(false, 'ntlm_auth answered something unexpected');
  }

  /** End the handshake and give the helper back (reusable or not); a reason makes it a failure. */
  #end(reusable: boolean, reason?: string): NtlmStep {
    if (this.#state !== 'ended') {
      this.#state = 'ended';
      clearTimeout(this.#holdTimer);
      const helper = this.#helper;
      this.#helper = undefined;
      // A helper in the middle of a line is not reusable: its answer would go to the next handshake.
      if (helper) this.pool.giveBack(helper, reusable && !this.#asking);
    }
    return { kind: 'failed', reason: reason ?? 'the handshake has ended' };
  }

  close(): void {
    this.#end(true);
  }
}
