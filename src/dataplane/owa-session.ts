/**
 * OWA forms-based logon, owned by the front end (docs/protocols.md §4.9 "coexist design"): coexist shows its
 * own logon page, checks the password against the directory, and keeps the credential server-side in a
 * session store keyed by an opaque signed cookie, so later OWA requests reach the next hop as "request +
 * user credentials" (`Authorization: Basic`, docs/protocols.md §5.3). The credential never goes into the
 * cookie, never leaves the process, and nothing here logs (§5.3 "logging").
 */
import { Buffer } from 'node:buffer';
import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { defaultSessionCookie, logonMaxBytes } from '../core/protocols/owa.ts';
import { decodeUtf8, isInvalid, parseQuery, single, underPath } from '../core/protocols/request-head.ts';

/** How the session store is set up. */
export interface OwaSessionOptions {
  /** The HMAC-SHA256 key that signs cookie values; at least 32 bytes (copied, so later changes are ignored). */
  readonly secret: Uint8Array;
  /** The cookie's name; default `defaultSessionCookie`. `__Host-` names work (Secure, Path=/, no Domain). */
  readonly cookieName?: string;
  /** A session ends after this long without a request (sliding); default 15 min. */
  readonly idleMs?: number;
  /** A session ends this long after logon, however busy (absolute); default 8 h. */
  readonly maxAgeMs?: number;
  /** The most sessions kept; the least recently used goes first; default 100 000. */
  readonly maxSessions?: number;
  /** A clock in milliseconds (tests); default `performance.now`, which NTP steps cannot move. */
  readonly now?: () => number;
}

/** Who a session is for, and the `Authorization` value to send to the next hop on their behalf. */
export interface OwaSession {
  readonly user: string;
  readonly authorization: string;
}

interface Entry {
  readonly session: OwaSession;
  readonly created: number;
  lastSeen: number;
}

const minSecretBytes = 32;
const idBytes = 32;
// base64url of 32 bytes, no padding: 43 characters. Only this exact shape is ever looked at.
const cookieShape = /^([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/;
// Domain separation: the same secret may sign other things (the identity token of docs/protocols.md §5.3),
// so a signature made here can never be replayed as one made there.
const signingLabel = 'coexist-owa-session-v1.';
// RFC 6265 §4.1.1: cookie-name is an RFC 7230 token.
const tokenShape = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// A header value Node accepts without throwing: visible ASCII and spaces, no CR/LF.
const headerValueShape = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
// SameSite=Lax, not Strict: users reach OWA from links in other sites (portals, notification mails), and
// Strict would drop the cookie on that first navigation; Lax still withholds it from cross-site POSTs.
const cookieAttributes = 'Path=/; Secure; HttpOnly; SameSite=Lax';

const hasControl = (s: string): boolean => /\p{Cc}/u.test(s);

/** A user name coexist can check and send on as Basic: 1–256 characters, no colon, no controls. */
const usableUser = (user: string): boolean =>
  user.length > 0 && user.length <= 256 && !user.includes(':') && !hasControl(user);

const positive = (name: string, value: number): number => {
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`OwaSessions: ${name} must be > 0`);
  return value;
};

/** The in-memory OWA session store: opaque signed cookie values to a user and their credential. */
export class OwaSessions {
  readonly #key: KeyObject;
  readonly #name: string;
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  readonly #max: number;
  readonly #now: () => number;
  // Kept in least-recently-seen order (verify moves an entry to the end), so the idle-expired and the
  // eviction candidates are always at the front.
  readonly #entries = new Map<string, Entry>();

  constructor(o: OwaSessionOptions) {
    if (!(o.secret instanceof Uint8Array) || o.secret.length < minSecretBytes)
      throw new RangeError(
        `OwaSessions: the secret must be at least ${minSecretBytes} random bytes (got ${o.secret?.length ?? 0})`,
      );
    const name = o.cookieName ?? defaultSessionCookie;
    if (!tokenShape.test(name)) throw new RangeError('OwaSessions: cookieName must be an RFC 6265 token');
    this.#key = createSecretKey(Buffer.from(o.secret));
    this.#name = name;
    this.#idleMs = positive('idleMs', o.idleMs ?? 15 * 60_000);
    this.#maxAgeMs = positive('maxAgeMs', o.maxAgeMs ?? 8 * 3_600_000);
    const max = o.maxSessions ?? 100_000;
    if (!Number.isSafeInteger(max) || max < 1)
      throw new RangeError('OwaSessions: maxSessions must be a positive integer');
    this.#max = max;
    this.#now = o.now ?? (() => performance.now());
  }

  /** The cookie's name. */
  get cookieName(): string {
    return this.#name;
  }

  /** How many sessions are held (expired ones included until they are swept). */
  get size(): number {
    return this.#entries.size;
  }

  /** Start a session; returns the `Set-Cookie` value (HttpOnly; Secure; SameSite=Lax; Path=/). */
  create(user: string, authorization: string): string {
    if (user === '') throw new TypeError('OwaSessions: empty user');
    // It goes into a request header later: refuse now what Node would refuse mid-request.
    if (!headerValueShape.test(authorization)) throw new TypeError('OwaSessions: unusable authorization');
    const now = this.#now();
    this.#sweepFront(now);
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    const id = randomBytes(idBytes).toString('base64url');
    this.#entries.set(id, { session: { user, authorization }, created: now, lastSeen: now });
    // A session cookie (no Max-Age): the browser drops it when it closes; the server enforces both expiries.
    return `${this.#name}=${id}.${this.#sign(id)}; ${cookieAttributes}`;
  }

  /** The session of a cookie value, if its signature checks (constant time) and it has not expired; slides idle expiry. */
  verify(cookieValue: string | undefined): OwaSession | undefined {
    const id = this.#id(cookieValue);
    if (id === undefined) return undefined;
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    const now = this.#now();
    this.#entries.delete(id);
    if (this.#expired(entry, now)) return undefined;
    entry.lastSeen = now;
    this.#entries.set(id, entry);
    return entry.session;
  }

  /** End the session of a cookie value (logoff); true when there was one. */
  destroy(cookieValue: string | undefined): boolean {
    const id = this.#id(cookieValue);
    return id !== undefined && this.#entries.delete(id);
  }

  /** A `Set-Cookie` value that clears the cookie (logoff). */
  clearCookie(): string {
    return `${this.#name}=; ${cookieAttributes}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
  }

  /** Drop every expired session, so no stale credential stays in memory; returns how many went. */
  sweep(): number {
    const now = this.#now();
    let dropped = 0;
    for (const [id, entry] of this.#entries)
      if (this.#expired(entry, now)) {
        this.#entries.delete(id);
        dropped++;
      }
    return dropped;
  }

  /** The id of a well-formed, correctly signed cookie value. */
  #id(cookieValue: string | undefined): string | undefined {
    const m = cookieValue === undefined ? null : cookieShape.exec(cookieValue);
    if (!m) return undefined;
    const [, id, signature] = m as unknown as [string, string, string];
    // Compare the canonical base64url text, not decoded bytes: Buffer's decoder ignores the unused low bits
    // of the last character, which would let several spellings of one signature pass.
    const ok = timingSafeEqual(Buffer.from(signature, 'latin1'), Buffer.from(this.#sign(id), 'latin1'));
    return ok ? id : undefined;
  }

  #sign(id: string): string {
    return createHmac('sha256', this.#key).update(signingLabel).update(id).digest('base64url');
  }

  #expired(entry: Entry, now: number): boolean {
    return now - entry.lastSeen >= this.#idleMs || now - entry.created >= this.#maxAgeMs;
  }

  /** Amortised O(1) clean-up on each logon: drop idle-expired sessions from the least recently seen end. */
  #sweepFront(now: number): void {
    for (const [id, entry] of this.#entries) {
      if (!this.#expired(entry, now)) return;
      this.#entries.delete(id);
    }
  }
}

/** The fields of an OWA logon POST that coexist reads (docs/protocols.md §4.9). */
export interface LogonForm {
  readonly username: string;
  readonly password: string;
  readonly destination?: string;
}

/**
 * Parse an `application/x-www-form-urlencoded` logon body (UTF-8); undefined when it is too large, not
 * UTF-8, malformed, or `username`/`password` are missing, empty or repeated (or `destination` repeated).
 * The user name is trimmed as `logonIdentity` trims it, so the session and the routing identity agree.
 */
export function parseLogonForm(body: Uint8Array): LogonForm | undefined {
  if (body.length > logonMaxBytes) return undefined;
  const text = decodeUtf8(body);
  const form = text === undefined ? undefined : parseQuery(text);
  if (!form) return undefined;
  const username = single(form, 'username', 'CX_IDENTITY_BODY_MALFORMED');
  const password = single(form, 'password', 'CX_IDENTITY_BODY_MALFORMED');
  const destination = single(form, 'destination', 'CX_IDENTITY_BODY_MALFORMED');
  if (isInvalid(username) || isInvalid(password) || isInvalid(destination)) return undefined;
  const user = username?.trim();
  if (!user || !usableUser(user)) return undefined;
  // RFC 4513 §5.1.2: an LDAP simple bind with an empty password is an unauthenticated bind that succeeds,
  // so an empty password must never reach the directory. RFC 7617 §2: no control characters in Basic.
  if (!password || hasControl(password)) return undefined;
  return destination === undefined ? { username: user, password } : { username: user, password, destination };
}

/**
 * Why a logon page asks (its `reason` parameter): a fixed set, each with a fixed message; any other value
 * shows none, and no text of the request is ever shown (docs/security.md "OWA in the browser").
 */
export const logonReasons = {
  /** OWA's own: the user name or password was wrong (docs/protocols.md §4.9). */
  badCredentials: 2,
  /** coexist's: another server of the estate sent the browser here, where the mailbox is: a second sign-in. */
  mailboxHere: 20,
  /** coexist's: the logoff went through every host of the estate the browser may hold a session on. */
  signedOut: 21,
} as const;

/** The reason code OWA puts on the logon page after a wrong user name or password (docs/protocols.md §4.9). */
export const badCredentialsReason = logonReasons.badCredentials;

/** A `reason` parameter as one of `logonReasons`, or undefined (absent, malformed or not in the set). */
export function logonReason(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || !/^\d{1,3}$/.test(value)) return undefined;
  const n = Number(value);
  return (Object.values(logonReasons) as number[]).includes(n) ? n : undefined;
}

/** OWA's logon page path (2007 and 2010+, docs/protocols.md §4.9). */
export const logonPagePath = '/owa/auth/logon.aspx';

/**
 * Where a browser is sent to log on: `logon.aspx?replaceCurrent=1&reason=…&url=…`, the shape Exchange
 * 2010/2013 redirect to (a failed logon carries `reason=2`, docs/protocols.md §4.9).
 */
export function logonUrl(destination: string, reason?: number, path = logonPagePath): string {
  const why = reason === undefined ? '' : `&reason=${Math.trunc(reason)}`;
  return `${path}?replaceCurrent=1${why}&url=${encodeURIComponent(destination)}`;
}

const escapes: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => escapes[c] ?? c);

const pageStyle =
  'body{font-family:system-ui,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh}' +
  'form{display:grid;gap:.6rem;width:18rem}input{padding:.4rem}' +
  '.error{color:#a4262c}.notice{color:#004e8c}';
// The CSP names the style by hash, so the page runs no script and loads nothing.
const styleHash = createHash('sha256').update(pageStyle).digest('base64');

/** The server a logon page is shown by, from the estate (never from the request). */
export interface LogonPageServer {
  /** The host the page is at: one the estate gives this server (request-trust.ts checked the Host). */
  readonly host: string;
  /** Its Exchange version: 2007 pages say Outlook Web Access, later ones Outlook Web App. */
  readonly version: number;
}

/** The message for one of `logonReasons`, chosen from fixed texts; '' for any other reason. */
function reasonMessage(reason: number | undefined, server: LogonPageServer | undefined): string {
  switch (reason) {
    case logonReasons.badCredentials:
      return '<p id="logon-reason" class="error" role="alert">The user name or password you entered isn\'t correct. Try again.</p>';
    case logonReasons.mailboxHere: {
      if (server === undefined) return '';
      const where =
        server.version < 2013
          ? `an older server, Exchange ${Math.trunc(server.version)}, at ${escapeHtml(server.host)}`
          : `another server, at ${escapeHtml(server.host)}`;
      return (
        `<p id="logon-reason" class="notice" role="status">Your mailbox is on ${where}. ` +
        'Please sign in here once more to open it: your first sign-in worked.</p>'
      );
    }
    case logonReasons.signedOut:
      return '<p id="logon-reason" class="notice" role="status">You have signed out of Outlook Web App on every server.</p>';
    default:
      return '';
  }
}

/**
 * The logon page (HTML, every value escaped), posting OWA's field set to `action`, with `destination`
 * hidden and the message of `reason` when it is one of `logonReasons` (the one about the mailbox being here
 * needs `server`).
 */
export function logonPage(o: {
  action: string;
  destination: string;
  reason?: number | undefined;
  server?: LogonPageServer;
}): string {
  const message = reasonMessage(o.reason, o.server);
  const title = o.server !== undefined && o.server.version < 2010 ? 'Outlook Web Access' : 'Outlook Web App';
  // `flags`, `forcedownlevel` and `isUtf8` make the POST look like OWA's own (§4.9); only `username`,
  // `password` and `destination` are read. The empty icon keeps the browser from asking for /favicon.ico.
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${title}</title>
<link rel="icon" href="data:,">
<style>${pageStyle}</style>
</head>
<body>
<form method="post" action="${escapeHtml(o.action)}" accept-charset="UTF-8">
<h1>${title}</h1>
${message}
<input type="hidden" name="destination" value="${escapeHtml(o.destination)}">
<input type="hidden" name="flags" value="4">
<input type="hidden" name="forcedownlevel" value="0">
<input type="hidden" name="isUtf8" value="1">
<label for="username">Domain\\user name or email address</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</body>
</html>
`;
}

/**
 * Response headers for the logon page: never cached, never framed (a password form), no script, and a
 * `form-action` that allows the redirects after the POST to exactly `allowedHosts` besides the page's own
 * origin (browsers check it along the whole redirect chain; docs/security.md "OWA in the browser").
 */
export function logonPageHeaders(allowedHosts: ReadonlySet<string> = new Set()): Record<string, string> {
  const hosts = [...allowedHosts]
    .filter((h) => /^[a-z0-9.-]+(?::\d{1,5})?$/i.test(h))
    .map((h) => `https://${h}`);
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': [
      "default-src 'none'",
      `style-src 'sha256-${styleHash}'`,
      // The page's empty icon (data:,) only.
      'img-src data:',
      `form-action ${["'self'", ...hosts].join(' ')}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    // The logon URL carries the destination: keep it from other sites. Not `no-referrer`: under it a browser
    // sends `Origin: null` with the logon POST, which the cross-site check refuses (request-trust.ts).
    'referrer-policy': 'same-origin',
  };
}

const placeholder = 'coexist.invalid';

/**
 * A destination that stays on this front end: an absolute https URL whose `host` (lower case, with the
 * port unless 443, as `new URL().host` gives it) is in `allowedHosts`, or a path under `/owa`; otherwise
 * `fallback` (no open redirect). The answer is the URL as serialised, safe for a `Location` header.
 */
export function safeDestination(
  destination: string | undefined,
  allowedHosts: ReadonlySet<string>,
  fallback: string,
): string {
  // The URL parser silently drops tabs and newlines; refuse them (and spaces, controls) rather than
  // redirect somewhere other than what was asked.
  if (!destination || destination.length > 2048 || hasControl(destination) || /\s/.test(destination))
    return fallback;
  const absolute = URL.canParse(destination) ? new URL(destination) : undefined;
  if (absolute)
    return absolute.protocol === 'https:' &&
      absolute.username === '' &&
      absolute.password === '' &&
      allowedHosts.has(absolute.host)
      ? absolute.href
      : fallback;
  if (!destination.startsWith('/')) return fallback;
  // Resolve first, check after: `//evil`, `/\evil` and `/owa/..//evil` all leave the placeholder origin or
  // the /owa tree only once resolved.
  const url = URL.canParse(destination, `https://${placeholder}`)
    ? new URL(destination, `https://${placeholder}`)
    : undefined;
  if (!url || url.host !== placeholder || !underPath(url.pathname, '/owa') || url.pathname.startsWith('//'))
    return fallback;
  return url.pathname + url.search + url.hash;
}

/** The value for `Authorization` to pass on: `Basic base64(user:password)` in UTF-8 (RFC 7617 §2). */
export function basicAuthorization(user: string, password: string): string {
  // RFC 7617 §2: the user-id cannot contain a colon, and neither part may contain control characters.
  if (!usableUser(user) || hasControl(password))
    throw new TypeError('basicAuthorization: the user name or password cannot be sent as Basic');
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/** The directory's password check: the user's mailbox address, or undefined for a wrong password or user. */
export type Authenticate = (
  login: string,
  password: string,
) => Promise<{ readonly address: string } | undefined>;

/** What `owaLogon` needs. */
export interface OwaLogonOptions {
  readonly sessions: OwaSessions;
  /** The directory (`Directory.authenticate` fits). */
  readonly authenticate: Authenticate;
  /** Hosts an absolute `destination` may name (see `safeDestination`). */
  readonly allowedHosts: ReadonlySet<string>;
  /** Where to go when `destination` is absent or unsafe, e.g. `/owa/`. */
  readonly fallback: string;
  /** The cookie value the browser sent, if any: ended, so a planted session id cannot survive logon. */
  readonly previousCookie?: string;
}

/** The answer to a logon POST: each kind is one HTTP response. */
export type OwaLogonOutcome =
  /** 400 `CX_IDENTITY_BODY_MALFORMED`: not a logon form. */
  | { readonly kind: 'malformed' }
  /** 302 to `location`: back to the logon page with `reason=2` (docs/protocols.md §4.9 "failed logon"). */
  | { readonly kind: 'refused'; readonly location: string }
  /** 302 to `location` with `Set-Cookie: setCookie` (docs/protocols.md §4.9 "success"). */
  | {
      readonly kind: 'accepted';
      readonly location: string;
      readonly setCookie: string;
      readonly user: string;
    };

/**
 * Handle a logon POST body (`logonPaths`): parse it, check the password with the directory, start a
 * session whose credential is the typed user name and password as Basic. A directory failure rejects.
 */
export async function owaLogon(body: Uint8Array, o: OwaLogonOptions): Promise<OwaLogonOutcome> {
  o.sessions.destroy(o.previousCookie);
  const form = parseLogonForm(body);
  if (!form) return { kind: 'malformed' };
  const location = safeDestination(form.destination, o.allowedHosts, o.fallback);
  const mailbox = await o.authenticate(form.username, form.password);
  if (!mailbox) return { kind: 'refused', location: logonUrl(location, badCredentialsReason) };
  // The next hop (a legacy CAS) authenticates the name as typed (DOMAIN\user or UPN), not the address.
  const setCookie = o.sessions.create(mailbox.address, basicAuthorization(form.username, form.password));
  return { kind: 'accepted', location, setCookie, user: mailbox.address };
}
