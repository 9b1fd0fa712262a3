/** The SOGo stack's public shapes: its users, the messages it is seeded with, its options and the running stack. */

/** A mailbox user: the same login and password for SOGo (SQL source) and Dovecot (passwd-file). */
export interface SogoUser {
  /** A plain name or a full address such as `bob@o365info.com`. */
  readonly login: string;
  readonly password: string;
  readonly displayName: string;
  readonly email: string;
}

/** A plain-text message, rendered as RFC 5322 (UTF-8, CRLF). */
export interface SogoMessage {
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly body: string;
}

/** Options of `startSogoStack`. */
export interface SogoStackOptions {
  /** The stack's name, e.g. `MBX2007-NY`, used in logs and error messages. */
  readonly name: string;
  readonly users: readonly SogoUser[];
  /** By login: messages put into that user's INBOX before SOGo starts. */
  readonly seed?: Readonly<Record<string, readonly SogoMessage[]>>;
  /** `WOWorkersCount`: pre-forked SOGo workers, each holding one request (a Ping holds one); 6 by default. */
  readonly workers?: number;
  /** `SOGoMaximumPingInterval` and `SOGoMaximumSyncInterval` in seconds; 20 by default (SOGo polls every 5 s). */
  readonly maxPingSeconds?: number;
  /** `SOGoEASDebugEnabled`: every EAS request and response, decoded to XML, goes into sogo.log. */
  readonly debug?: boolean;
  /**
   * The deadline of every wait during start, in ms; by default 15 s for PostgreSQL, 10 s for the others, 30 s
   * for SOGo. 0 fails the first wait at once (memcached's, the first daemon waited for).
   */
  readonly readyTimeoutMs?: number;
  /**
   * Where the state dir is made: /dev/shm (tmpfs) when it is there, else the OS temp dir. On tmpfs initdb
   * takes about a quarter of the time it takes on disk. Users `postgres`, `sogo` and `mail` must be able to
   * enter it.
   */
  readonly parentDir?: string;
}

/** A running SOGo stack. */
export interface SogoStack {
  readonly name: string;
  readonly host: '127.0.0.1';
  /** SOGo's HTTP port. */
  readonly port: number;
  /** `http://127.0.0.1:<port>/SOGo/Microsoft-Server-ActiveSync` (the path SOGo answers EAS on, case and all). */
  readonly activeSyncUrl: string;
  readonly imapPort: number;
  readonly postgresPort: number;
  /** The temp dir with all the state; gone after `stop()`. */
  readonly stateDir: string;
  /** The PID of each daemon (also its process group id): postgres, memcached, dovecot, sogod. */
  readonly pids: Readonly<Record<string, number>>;
  /** IMAP APPEND an RFC 5322 message into the user's INBOX (as the user), resolves when stored. */
  deliver(login: string, message: SogoMessage | string): Promise<void>;
  /** Log file contents (sogo, dovecot, postgres, ...; the tail of each) for failure messages. */
  logs(): string;
  /** Stop every daemon (SIGKILL to its process group if it lingers), reap it and remove the state dir. */
  stop(): Promise<void>;
}
