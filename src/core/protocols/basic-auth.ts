/**
 * `Authorization: Basic` (RFC 7617), the credential ActiveSync, EWS, Autodiscover and Outlook Anywhere
 * clients send in practice (docs/protocols.md §4.1, §5). The user may be `DOMAIN\user`, a UPN or an SMTP
 * address; the directory resolves it. No detail of an error ever carries the password or the token.
 */
import type { Invalid, RequestHead } from './request-head.ts';
import { decodeBase64, decodeUtf8, invalid, isInvalid } from './request-head.ts';

export interface BasicCredentials {
  readonly user: string;
  readonly password: string;
}

/** Parse the Authorization header: credentials, `undefined` when absent or another scheme, or `invalid`. */
export function basicCredentials(head: RequestHead): BasicCredentials | undefined | Invalid {
  const header = head.headers['authorization'];
  if (header === undefined) return undefined;
  const m = /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:[ \t]+(.*?))?\s*$/.exec(header);
  if (!m) return invalid('CX_IDENTITY_BASIC_MALFORMED', 'Authorization header has no scheme');
  if (m[1]?.toLowerCase() !== 'basic') return undefined; // NTLM, Negotiate, Bearer: not ours to read
  const token = m[2] ?? '';
  const bytes = /^[A-Za-z0-9+/]+=*$/.test(token) ? decodeBase64(token) : undefined;
  if (!bytes) return invalid('CX_IDENTITY_BASIC_MALFORMED', 'Basic credentials are not base64');
  const text = decodeUtf8(bytes);
  if (text === undefined) return invalid('CX_IDENTITY_BASIC_MALFORMED', 'Basic credentials are not UTF-8');
  const colon = text.indexOf(':');
  if (colon < 0) return invalid('CX_IDENTITY_BASIC_MALFORMED', 'Basic credentials have no colon');
  const user = text.slice(0, colon);
  if (user.trim() === '')
    return invalid('CX_IDENTITY_BASIC_MALFORMED', 'Basic credentials have an empty user');
  // RFC 7617 §2: the user-id must not contain control characters.
  if (hasControl(user))
    return invalid('CX_IDENTITY_BASIC_MALFORMED', 'Basic user name contains control characters');
  return { user, password: text.slice(colon + 1) };
}

/** Just the Basic user name: a string, `undefined`, or `invalid` when the header is malformed. */
export function basicUser(head: RequestHead): string | undefined | Invalid {
  const c = basicCredentials(head);
  return c === undefined || isInvalid(c) ? c : c.user;
}

const hasControl = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
};
