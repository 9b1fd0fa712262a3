/**
 * OWA forms-based logon, owned by the front end (docs/protocols.md §4.9 "coexist design"): coexist shows its
 * own logon page, checks the password against the directory, and gives the browser a session cookie that
 * carries the session itself, as Exchange's `cadata` cookies do: the user, the `Authorization` value for the
 * next hop ("request + user credentials", docs/protocols.md §5.3), the logon and last-seen times and a
 * session id, sealed with AES-256-GCM under a key the front ends of the estate share (session-keys.ts). Any
 * front end holding the key serves any request, so a load balancer needs no affinity; a restart logs nobody
 * out. Only a logoff's revocation lives server-side, in the shared store (shared-store.ts), until the
 * session's absolute expiry. The credential is never logged, and never stored in clear outside this process
 * (docs/security.md "OWA sessions").
 */
import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { defaultSessionCookie, logonMaxBytes } from '../core/protocols/owa.ts';
import { decodeUtf8, isInvalid, parseQuery, single, underPath } from '../core/protocols/request-head.ts';
import type { RevocationStore } from './shared-store.ts';
import { MemoryRevocations } from './shared-store.ts';

/** How the session cookies are sealed and how long they live. */
export interface OwaSessionOptions {
  /**
   * AES-256-GCM keys, 32 bytes each (copied): the first seals new cookies, every one opens them (rotation:
   * docs/operations.md "OWA session keys"). The front ends of an estate share them (`--session-key-file`).
   */
  readonly keys: readonly Uint8Array[];
  /** The cookie's name; default `defaultSessionCookie`. `__Host-` names work (Secure, Path=/, no Domain). */
  readonly cookieName?: string;
  /** A session ends after this long without a request (sliding); default 15 min. */
  readonly idleMs?: number;
  /** A session ends this long after logon, however busy (absolute); default 8 h. */
  readonly maxAgeMs?: number;
  /**
   * The cookie is sealed again with a new last-seen time when a request comes this long after the one it
   * holds: a fraction of `idleMs`, so a busy session is not re-sealed on every request. Default `idleMs / 2`
   * (as ASP.NET's sliding forms authentication renews past half the timeout): an idle session then ends
   * between `idleMs - refreshMs` and `idleMs` after its last request.
   */
  readonly refreshMs?: number;
  /** Logoff revocations; default one in this process's memory (one front end). */
  readonly revocations?: RevocationStore;
  /**
   * Wall-clock milliseconds (tests); default `Date.now`. The times travel in the cookie between front ends,
   * so it is the clock they agree on (NTP), not a monotonic one.
   */
  readonly now?: () => number;
}

/** Who a session is for, and the `Authorization` value to send to the next hop on their behalf. */
export interface OwaSession {
  readonly user: string;
  readonly authorization: string;
}

/** Why a cookie opened no session: logged (never the cookie's value), the browser just gets the logon page. */
export type SessionRefusal =
  /** Not the shape of a cookie coexist makes (wrong length, not base64url). */
  | 'malformed'
  /** A version byte this server does not know. */
  | 'version'
  /** Sealed under a key this server does not hold (retired, or another estate's). */
  | 'unknown-key'
  /** The seal does not check: tampered, truncated, or made for another cookie name. */
  | 'forged'
  | 'idle-expired'
  | 'expired'
  /** Logged off (on any front end sharing the store). */
  | 'revoked';

/** A cookie checked: its session (and a re-sealed cookie to send back, when due), or why not. */
export type SessionCheck =
  | {
      readonly ok: true;
      readonly session: OwaSession;
      /** A `Set-Cookie` value with the new last-seen time, when the one held was past `refreshMs`. */
      readonly setCookie?: string;
    }
  | { readonly ok: false; readonly reason: SessionRefusal };

/** What a cookie carries (inside the seal; field names kept short, a cookie has at most ~4 KB). */
const sealedShape = z
  .object({
    /** The session id: what a logoff revokes. */
    i: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
    u: z.string().min(1).max(256),
    a: z.string().min(1),
    /** Logon time (absolute expiry), ms since the epoch. */
    c: z.number().int().nonnegative(),
    /** Last-seen time (idle expiry), ms since the epoch. */
    s: z.number().int().nonnegative(),
  })
  .strict();
type Sealed = z.infer<typeof sealedShape>;

const version = 1;
const keyIdBytes = 4;
const nonceBytes = 12;
const tagBytes = 16;
const headerBytes = 1 + keyIdBytes + nonceBytes;
const keyBytes = 32;
/** Browsers keep a cookie's name and value up to 4096 bytes (RFC 6265 §6.1's minimum); leave room. */
const maxCookieChars = 3800;
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

/** A key's id in the cookie (a hash, not the key): picks the key to open with, so rotation costs no retries. */
const keyIdOf = (key: Uint8Array): Buffer =>
  createHash('sha256').update('coexist-owa-session-key-id.').update(key).digest().subarray(0, keyIdBytes);

interface Key {
  readonly id: Buffer;
  readonly key: Buffer;
}

/** OWA sessions carried in sealed cookies; only logoff revocations are kept (in `revocations`). */
export class OwaSessions {
  readonly #keys: readonly Key[];
  readonly #name: string;
  readonly #aad: Buffer;
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  readonly #refreshMs: number;
  readonly #revocations: RevocationStore;
  readonly #now: () => number;

  constructor(o: OwaSessionOptions) {
    if (!Array.isArray(o.keys) || o.keys.length === 0)
      throw new RangeError('OwaSessions: at least one key is needed');
    for (const k of o.keys)
      if (!(k instanceof Uint8Array) || k.length !== keyBytes)
        throw new RangeError(
          `OwaSessions: every key must be exactly ${keyBytes} random bytes (got ${(k as Uint8Array | undefined)?.length ?? 0})`,
        );
    const name = o.cookieName ?? defaultSessionCookie;
    if (!tokenShape.test(name)) throw new RangeError('OwaSessions: cookieName must be an RFC 6265 token');
    this.#keys = o.keys.map((k) => ({ id: keyIdOf(k), key: Buffer.from(k) }));
    this.#name = name;
    // Associated data: the cookie's name and the version byte, so a cookie of another name (another purpose)
    // or format never opens here, even under the same key.
    this.#aad = Buffer.concat([Buffer.from(`coexist-owa-session.${name}.`, 'latin1'), Buffer.of(version)]);
    this.#idleMs = positive('idleMs', o.idleMs ?? 15 * 60_000);
    this.#maxAgeMs = positive('maxAgeMs', o.maxAgeMs ?? 8 * 3_600_000);
    this.#refreshMs = positive('refreshMs', o.refreshMs ?? this.#idleMs / 2);
    if (this.#refreshMs > this.#idleMs) throw new RangeError('OwaSessions: refreshMs must be <= idleMs');
    this.#revocations = o.revocations ?? new MemoryRevocations();
    this.#now = o.now ?? Date.now;
  }

  /** The cookie's name. */
  get cookieName(): string {
    return this.#name;
  }

  /**
   * Start a session; returns the `Set-Cookie` value (HttpOnly; Secure; SameSite=Lax; Path=/). Throws a
   * TypeError for a user or credential that cannot be carried (a header value Node refuses, or too long
   * for a cookie).
   */
  create(user: string, authorization: string): string {
    if (user === '' || user.length > 256) throw new TypeError('OwaSessions: unusable user');
    // It goes into a request header later: refuse now what Node would refuse mid-request.
    if (!headerValueShape.test(authorization)) throw new TypeError('OwaSessions: unusable authorization');
    const now = Math.trunc(this.#now());
    const setCookie = this.#setCookie({
      i: randomBytes(16).toString('base64url'),
      u: user,
      a: authorization,
      c: now,
      s: now,
    });
    if (setCookie.length > maxCookieChars)
      throw new TypeError('OwaSessions: the credential is too long for a cookie');
    return setCookie;
  }

  /**
   * The session of a cookie value: its seal checks under one of the keys, neither expiry has passed, and
   * it was not logged off. When its last-seen time is older than `refreshMs`, `setCookie` carries it anew.
   */
  async verify(cookieValue: string | undefined): Promise<SessionCheck> {
    const opened = this.#open(cookieValue);
    if (!('sealed' in opened)) return opened;
    const { sealed } = opened;
    const now = this.#now();
    // A front end whose clock is behind another's sees times slightly ahead: they count as now.
    if (now - sealed.c >= this.#maxAgeMs) return { ok: false, reason: 'expired' };
    if (now - sealed.s >= this.#idleMs) return { ok: false, reason: 'idle-expired' };
    if (await this.#revocations.revoked(sealed.i)) return { ok: false, reason: 'revoked' };
    const session: OwaSession = { user: sealed.u, authorization: sealed.a };
    if (now - sealed.s < this.#refreshMs) return { ok: true, session };
    return {
      ok: true,
      session,
      setCookie: this.#setCookie({ ...sealed, s: Math.trunc(Math.max(now, sealed.s)) }),
    };
  }

  /**
   * End the session of a cookie value (logoff): its id is revoked until its absolute expiry, on every front
   * end sharing the store. True when the value was a live session.
   */
  async revoke(cookieValue: string | undefined): Promise<boolean> {
    const opened = this.#open(cookieValue);
    if (!('sealed' in opened)) return false;
    const ttl = opened.sealed.c + this.#maxAgeMs - this.#now();
    if (ttl <= 0) return false;
    await this.#revocations.revoke(opened.sealed.i, Math.ceil(ttl));
    return true;
  }

  /** A `Set-Cookie` value that clears the cookie (logoff). */
  clearCookie(): string {
    return `${this.#name}=; ${cookieAttributes}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
  }

  /** Seal a session: version, key id, nonce, ciphertext, tag; base64url. */
  #setCookie(sealed: Sealed): string {
    const [current] = this.#keys as [Key];
    // A random 96-bit nonce per cookie (NIST SP 800-38D §8.2.2): far below 2^32 cookies per key.
    const nonce = randomBytes(nonceBytes);
    const header = Buffer.concat([Buffer.of(version), current.id, nonce]);
    const cipher = createCipheriv('aes-256-gcm', current.key, nonce, { authTagLength: tagBytes });
    cipher.setAAD(Buffer.concat([this.#aad, current.id]));
    const body = Buffer.concat([
      cipher.update(JSON.stringify(sealed), 'utf8'),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    // A session cookie (no Max-Age): the browser drops it when it closes; the server enforces both expiries.
    return `${this.#name}=${Buffer.concat([header, body]).toString('base64url')}; ${cookieAttributes}`;
  }

  /** Open a cookie value: the session inside, or why not. */
  #open(
    value: string | undefined,
  ): { readonly sealed: Sealed } | { readonly ok: false; readonly reason: SessionRefusal } {
    const refused = (reason: SessionRefusal) => ({ ok: false, reason }) as const;
    if (value === undefined || value.length > maxCookieChars || !/^[A-Za-z0-9_-]+$/.test(value))
      return refused('malformed');
    const raw = Buffer.from(value, 'base64url');
    // Only the canonical spelling: Buffer's decoder ignores the unused low bits of the last character.
    if (raw.toString('base64url') !== value || raw.length < headerBytes + tagBytes + 2)
      return refused('malformed');
    if (raw[0] !== version) return refused('version');
    const id = raw.subarray(1, 1 + keyIdBytes);
    const key = this.#keys.find((k) => k.id.equals(id));
    if (!key) return refused('unknown-key');
    const nonce = raw.subarray(1 + keyIdBytes, headerBytes);
    const tag = raw.subarray(raw.length - tagBytes);
    let text: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, nonce, { authTagLength: tagBytes });
      decipher.setAAD(Buffer.concat([this.#aad, key.id]));
      decipher.setAuthTag(tag);
      text = Buffer.concat([
        decipher.update(raw.subarray(headerBytes, raw.length - tagBytes)),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      return refused('forged');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return refused('forged');
    }
    // Sealed by a holder of the key, so well-formed; checked all the same (another version's writer).
    const sealed = sealedShape.safeParse(parsed);
    if (!sealed.success || !headerValueShape.test(sealed.data.a)) return refused('forged');
    return { sealed: sealed.data };
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
  /** The cookie value the browser sent, if any: revoked, so a planted session cannot survive logon. */
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
  // A cookie the browser still holds is ended: a planted one cannot be the session the user carries on.
  await o.sessions.revoke(o.previousCookie);
  const form = parseLogonForm(body);
  if (!form) return { kind: 'malformed' };
  const location = safeDestination(form.destination, o.allowedHosts, o.fallback);
  const mailbox = await o.authenticate(form.username, form.password);
  if (!mailbox) return { kind: 'refused', location: logonUrl(location, badCredentialsReason) };
  // The next hop (a legacy CAS) authenticates the name as typed (DOMAIN\user or UPN), not the address.
  let setCookie: string;
  try {
    setCookie = o.sessions.create(mailbox.address, basicAuthorization(form.username, form.password));
  } catch (err) {
    // A name and password too long to carry in a cookie (or not sendable as Basic): no session can hold it.
    if (err instanceof TypeError) return { kind: 'malformed' };
    throw err;
  }
  return { kind: 'accepted', location, setCookie, user: mailbox.address };
}
