/**
 * The line side of squid's helper protocol, as the Windows-authentication helpers speak it (squid's
 * `negotiate_kerberos_auth` at the edge, Samba's `ntlm_auth --helper-protocol=squid-2.5-ntlmssp` in the lab):
 * one request line in, one answer line out, one question at a time. What the helper writes beyond an answer to
 * the question asked, a line longer than the limit, or no answer in time, ends the helper (through `fail`).
 */
import type { ChildProcess } from 'node:child_process';

export interface HelperLinesOptions {
  /** How errors name the helper ("ntlm_auth", "the Kerberos helper"). */
  readonly name: string;
  /** The longest answer read; more ends the helper. */
  readonly maxLineLength: number;
  /** Ends the helper with `error`: it must call `reject(error)` and kill the process. */
  readonly fail: (error: Error) => void;
}

/** Questions to one helper process and its answers, read off its stdout. */
export class HelperLines {
  readonly #child: ChildProcess;
  readonly #o: HelperLinesOptions;
  #buffer = '';
  #pending: { resolve: (line: string) => void; reject: (error: Error) => void } | undefined;

  constructor(child: ChildProcess, options: HelperLinesOptions) {
    this.#child = child;
    this.#o = options;
    child.stdout?.setEncoding('latin1');
    child.stdout?.on('data', (d: string) => {
      this.#buffer += d;
      if (this.#buffer.length > options.maxLineLength) {
        options.fail(new Error(`${options.name} wrote an overlong line`));
        return;
      }
      for (let nl = this.#buffer.indexOf('\n'); nl >= 0; nl = this.#buffer.indexOf('\n')) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        const p = this.#pending;
        this.#pending = undefined;
        if (!p) {
          options.fail(new Error(`${options.name} wrote a line nobody asked for`));
          return;
        }
        p.resolve(line);
      }
    });
    // A helper gone mid-write: its exit ends it, not an unhandled EPIPE.
    child.stdin?.on('error', () => undefined);
  }

  /** A question is waiting for its answer. */
  get busy(): boolean {
    return this.#pending !== undefined;
  }

  /** Send one line and read the answer; rejects when the helper fails or does not answer within `timeoutMs`. */
  ask(line: string, timeoutMs: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => this.#o.fail(new Error(`${this.#o.name} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#pending = {
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#child.stdin?.write(`${line}\n`);
    });
  }

  /** Fails the question waiting, if any, with `error`. */
  reject(error: Error): void {
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(error);
  }
}

/** Kills every helper (`kill`) and resolves once each process has exited. */
export function endHelpers<H extends { readonly child: ChildProcess; kill(): void }>(
  helpers: Iterable<H>,
): Promise<void> {
  const exits = [...helpers].map(
    (h) =>
      new Promise<void>((resolve) => {
        if (h.child.exitCode !== null || h.child.signalCode !== null) resolve();
        else h.child.once('exit', () => resolve());
        h.kill();
      }),
  );
  return Promise.all(exits).then(() => undefined);
}
