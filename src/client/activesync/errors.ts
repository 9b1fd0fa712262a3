/**
 * What can go wrong in an ActiveSync session, as typed errors that name the step (the command or
 * `Autodiscover`) and the URL. No message, field or cause ever holds a credential: URLs are stripped of
 * any user-info, and the Authorization header is never copied anywhere.
 */

/** Why a step failed. */
export type ActiveSyncErrorKind =
  /** The options are unusable (a DeviceId that is not 1–32 letters or digits, no password…). */
  | 'usage'
  /** HTTP 401: the user name or password is wrong (or the server wants something else than Basic). */
  | 'auth'
  /** HTTP 403: the user is not enabled for ActiveSync (MS-ASHTTP status codes). */
  | 'forbidden'
  /** Any other HTTP status the client cannot go on from (400, 404, 500, 502, 503, 507…). */
  | 'http'
  /** Connecting, TLS or reading the answer failed. */
  | 'network'
  /** A 451 without X-MS-Location, one that is not https, or more redirects than allowed. */
  | 'redirect'
  /** The answer is not what the protocol says (bad WBXML, wrong root element, unreadable XML). */
  | 'protocol'
  /** The command ran and answered with a Status that is not success. */
  | 'status'
  /** Autodiscover answered with an error, a loop of redirects, or no MobileSync server. */
  | 'autodiscover';

/** Everything the client throws. */
export class ActiveSyncClientError extends Error {
  override name = 'ActiveSyncClientError';
  readonly kind: ActiveSyncErrorKind;
  /** The step: `Autodiscover`, `OPTIONS`, or the command (`Provision`, `FolderSync`, `Sync`, `Ping`, `Settings`). */
  readonly step: string;
  /** Where it was sent (no credentials, ever). */
  readonly url: string | undefined;
  /** The HTTP status, when there was an answer. */
  readonly status: number | undefined;

  constructor(
    kind: ActiveSyncErrorKind,
    step: string,
    message: string,
    o: { url?: string | undefined; status?: number | undefined; cause?: unknown } = {},
  ) {
    super(`${step}: ${message}`, o.cause === undefined ? undefined : { cause: o.cause });
    this.kind = kind;
    this.step = step;
    this.url = o.url === undefined ? undefined : safeUrl(o.url);
    this.status = o.status;
  }
}

/** HTTP 401. */
export class ActiveSyncAuthError extends ActiveSyncClientError {
  override name = 'ActiveSyncAuthError';
  constructor(step: string, url: string) {
    super(
      'auth',
      step,
      `authentication failed (HTTP 401) at ${safeUrl(url)}: check the user name and password`,
      {
        url,
        status: 401,
      },
    );
  }
}

/** An HTTP status the session cannot continue from; 503 carries the server's Retry-After. */
export class ActiveSyncHttpError extends ActiveSyncClientError {
  override name = 'ActiveSyncHttpError';
  /** Seconds from `Retry-After` (503, 429), when the server sent a number. */
  readonly retryAfterSeconds: number | undefined;
  constructor(step: string, url: string, status: number, retryAfterSeconds?: number) {
    const what = httpMeanings[status] ?? 'unexpected answer';
    const retry = retryAfterSeconds === undefined ? '' : `; retry after ${retryAfterSeconds} s`;
    super(
      status === 403 ? 'forbidden' : 'http',
      step,
      `HTTP ${status} (${what}) from ${safeUrl(url)}${retry}`,
      {
        url,
        status,
      },
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A command's Status element said something else than success. */
export class ActiveSyncStatusError extends ActiveSyncClientError {
  override name = 'ActiveSyncStatusError';
  /** The Status value the server sent (e.g. 3 invalid sync key, 12 folder hierarchy changed). */
  readonly commandStatus: number;
  constructor(step: string, url: string, commandStatus: number, meaning: string) {
    super('status', step, `Status ${commandStatus} (${meaning})`, { url, status: 200 });
    this.commandStatus = commandStatus;
  }
}

/** The meaning of the HTTP statuses an ActiveSync server sends (docs/protocols.md §4.1 status table). */
const httpMeanings: Readonly<Record<number, string>> = {
  400: 'malformed request, or a protocol version the server does not speak',
  403: 'the user is not enabled for ActiveSync',
  404: 'not an ActiveSync server',
  449: 'the server still wants Provision',
  451: 'redirect',
  456: 'account blocked',
  457: 'password expired',
  500: 'server error',
  502: 'the server it was proxied to could not be reached',
  503: 'service unavailable',
  504: 'gateway timeout',
  507: 'mailbox full',
};

/** A URL for messages: user-info removed (a URL never carries the password, but a caller's might). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}
