/** A minimal IMAP client (LOGIN, ENABLE, SELECT, APPEND with literals, LOGOUT): seeds and delivers messages. */
import { connect } from 'node:net';
import { host } from './install.ts';

/** One part of an IMAP command: text as is, or a string/bytes sent as a (synchronizing) literal. */
type ImapPart = string | { readonly literal: string | Buffer };

/** An IMAP astring: quoted when plain printable ASCII, otherwise a literal. */
const imapString = (s: string): ImapPart =>
  /^[\x20-\x7e]*$/.test(s) ? `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"` : { literal: s };

class ImapSession {
  readonly #socket;
  #buffer = Buffer.alloc(0);
  #closed: Error | undefined;
  #wake: (() => void) | undefined;
  #tag = 0;

  private constructor(
    port: number,
    readonly deadline: number,
  ) {
    this.#socket = connect({ host, port });
    this.#socket.on('data', (d: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      this.#wake?.();
    });
    this.#socket.on('error', (error) => {
      this.#closed ??= error;
      this.#wake?.();
    });
    this.#socket.on('close', () => {
      this.#closed ??= new Error('connection closed by the server');
      this.#wake?.();
    });
  }

  /** Connect, read the greeting and log in. */
  static async open(port: number, login: string, password: string, timeoutMs: number): Promise<ImapSession> {
    const session = new ImapSession(port, Date.now() + timeoutMs);
    try {
      const greeting = await session.#line();
      if (!greeting.startsWith('* OK')) throw new Error(`unexpected greeting: ${greeting}`);
      await session.command(['LOGIN ', imapString(login), ' ', imapString(password)]);
      return session;
    } catch (error) {
      session.close();
      throw error;
    }
  }

  /** The next CRLF-terminated line from the server. */
  async #line(): Promise<string> {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = this.#buffer.subarray(0, end).toString('utf8');
        this.#buffer = this.#buffer.subarray(end + 2);
        return line;
      }
      if (this.#closed) throw this.#closed;
      const left = this.deadline - Date.now();
      if (left <= 0) throw new Error('IMAP server did not answer in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Send one tagged command (waiting for `+` before each literal); resolves with the untagged lines on OK. */
  async command(parts: readonly ImapPart[]): Promise<string[]> {
    const tag = `c${++this.#tag}`;
    const untagged: string[] = [];
    let pending = `${tag} `;
    for (const part of parts) {
      if (typeof part === 'string') {
        pending += part;
        continue;
      }
      const bytes = typeof part.literal === 'string' ? Buffer.from(part.literal, 'utf8') : part.literal;
      this.#socket.write(`${pending}{${bytes.length}}\r\n`);
      pending = '';
      for (;;) {
        const line = await this.#line();
        if (line.startsWith('+')) break;
        if (line.startsWith(`${tag} `)) throw new Error(`${redact(parts)} refused: ${line}`);
        untagged.push(line);
      }
      this.#socket.write(bytes);
    }
    this.#socket.write(`${pending}\r\n`);
    for (;;) {
      const line = await this.#line();
      if (!line.startsWith(`${tag} `)) {
        untagged.push(line);
        continue;
      }
      if (line.startsWith(`${tag} OK`)) return untagged;
      throw new Error(`${redact(parts)} refused: ${line}`);
    }
  }

  /** LOGOUT (best effort) and close. */
  async logout(): Promise<void> {
    try {
      await this.command(['LOGOUT']);
    } catch {
      // The server may close before the tagged OK; the work is done either way.
    } finally {
      this.close();
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** The command's name for error messages (never the password or message). */
const redact = (parts: readonly ImapPart[]): string => {
  const first = parts[0];
  return typeof first === 'string' ? (first.trim().split(' ')[0] ?? 'command') : 'command';
};

/** Log in as the user and APPEND each message to INBOX; with `warmUp`, first enable CONDSTORE and SELECT the folders. */
export async function appendMessages(
  port: number,
  login: string,
  password: string,
  messages: readonly string[],
  warmUp: boolean,
  timeoutMs: number,
): Promise<void> {
  const session = await ImapSession.open(port, login, password, timeoutMs);
  try {
    if (warmUp) {
      // Lab notes §2.3: SOGo's collection tag needs HIGHESTMODSEQ in the SELECT answer, which a fresh
      // Dovecot mailbox reports only once a session has enabled CONDSTORE on it (then it sticks in the
      // index). Without this the first Sync of a fresh INBOX comes back empty.
      await session.command(['ENABLE CONDSTORE']);
      for (const folder of ['INBOX', 'Drafts', 'Sent', 'Trash']) await session.command([`SELECT ${folder}`]);
    }
    for (const message of messages) await session.command(['APPEND INBOX ', { literal: message }]);
  } catch (error) {
    session.close();
    throw error;
  }
  await session.logout();
}
