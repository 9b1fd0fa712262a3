/**
 * OWA (`/owa`): before logon, the `username` field of the forms-based logon POST to `/owa/auth.owa`
 * (2010+) or `/owa/auth/owaauth.dll` (2007); after logon, coexist's own session cookie, whose value the
 * data plane verifies (docs/protocols.md §3 OWA row, §4.9). Exchange's `cadata*` cookies and backend hints
 * (`X-BEResource`, the ProxyLogon class) are never read.
 */
import { basicUser } from './basic-auth.ts';
import type { Identity, ProtocolModule, RequestHead } from './request-head.ts';
import {
  checkBodySize,
  cookieValue,
  decodeUtf8,
  invalid,
  isInvalid,
  parseQuery,
  single,
  underPath,
} from './request-head.ts';

/** The name of coexist's session cookie unless configured otherwise. */
export const defaultSessionCookie = 'coexist-session';

/** The largest logon form coexist reads. */
export const logonMaxBytes = 16 * 1024;

/** The logon POST targets of OWA 2010+ and 2007 (§4.9). */
export const logonPaths: readonly string[] = ['/owa/auth.owa', '/owa/auth/owaauth.dll'];

/** After logon: the session cookie, else the Basic user, else anonymous (also used by ECP). */
export function sessionIdentity(head: RequestHead, sessionCookie: string): Identity {
  const basic = basicUser(head);
  if (isInvalid(basic)) return basic;
  const value = cookieValue(head, sessionCookie);
  if (value) return { kind: 'session-cookie', cookie: sessionCookie, value };
  if (basic !== undefined) return { kind: 'user', user: basic, source: 'basic-auth', basicUser: basic };
  return { kind: 'anonymous' };
}

/** The `username` of a logon form body (`DOMAIN\user`, UPN or SMTP); never touches `password`. */
export function logonIdentity(head: RequestHead, body: Uint8Array | undefined): Identity {
  const tooLarge = checkBodySize(head, body, logonMaxBytes);
  if (tooLarge) return tooLarge;
  if (body === undefined) return { kind: 'needs-body', maxBytes: logonMaxBytes };
  const text = decodeUtf8(body);
  const form = text === undefined ? undefined : parseQuery(text);
  if (!form) return invalid('CX_IDENTITY_BODY_MALFORMED', 'the logon form is not UTF-8 form-urlencoded');
  const user = single(form, 'username', 'CX_IDENTITY_BODY_MALFORMED');
  if (isInvalid(user)) return user;
  const name = user?.trim();
  if (!name || name.length > 256 || /[\p{Cc}]/u.test(name))
    return invalid('CX_IDENTITY_BODY_MALFORMED', 'the logon form has no usable username');
  return { kind: 'user', user: name, source: 'logon-form' };
}

/** OWA with a session cookie of the given name. */
export function createOwa(sessionCookie = defaultSessionCookie): ProtocolModule {
  return {
    protocol: 'owa',
    matches: (head) => underPath(head.path, '/owa'),
    identify(head, body) {
      const isLogon = logonPaths.includes(head.path.toLowerCase()) && head.method.toUpperCase() === 'POST';
      return isLogon ? logonIdentity(head, body) : sessionIdentity(head, sessionCookie);
    },
  };
}

/** OWA with the default session cookie. */
export const owa: ProtocolModule = createOwa();
