/**
 * Autodiscover for mobile devices (MS-ASCMD Autodiscover, docs/protocols.md §4.1 "EAS Autodiscover"): the
 * mobilesync POX request, and what its answer says: a MobileSync server URL, a redirect to another
 * address (Action/Redirect; the outlook schema's redirectAddr/redirectUrl are read too), or an error.
 * Pure: the HTTP side (Basic auth, HTTP 302, the limit of 10 redirects) is in client.ts.
 */
import type { XmlElement } from '../../codec/xml-read.ts';
import { readXml, xmlChild, xmlChildren, xmlText } from '../../codec/xml-read.ts';
import { escapeXml } from '../../codec/xml-escape.ts';
import { mobileSyncRequestSchema, mobileSyncResponseSchema } from '../../core/autodiscover/schemas.ts';

// The client's request schema and the response schema it asks for, part of its public surface (index.ts).
export { mobileSyncRequestSchema, mobileSyncResponseSchema };

/** Most redirects a client follows (docs/protocols.md §7: "stop after 10 redirects"). */
export const autodiscoverMaxRedirects = 10;

/** The request body for `email`. */
export function autodiscoverRequest(email: string): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<Autodiscover xmlns="${mobileSyncRequestSchema}"><Request>` +
    `<EMailAddress>${escapeXml(email)}</EMailAddress>` +
    `<AcceptableResponseSchema>${mobileSyncResponseSchema}</AcceptableResponseSchema>` +
    '</Request></Autodiscover>'
  );
}

/** Where to POST for a domain, an address (its domain) or an explicit URL. */
export function autodiscoverUrl(domainOrUrl: string): string {
  if (/^https?:\/\//i.test(domainOrUrl)) return domainOrUrl;
  const domain = domainOrUrl.slice(domainOrUrl.lastIndexOf('@') + 1).trim();
  if (!/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(domain))
    throw new TypeError(`"${domainOrUrl}" is neither a domain, an address nor a URL`);
  return `https://autodiscover.${domain.toLowerCase()}/Autodiscover/Autodiscover.xml`;
}

/** Is `url` an https Autodiscover endpoint (the only kind an HTTP 302 may send a client to)? */
export function isAutodiscoverUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' && /\/autodiscover\/autodiscover\.xml$/i.test(u.pathname);
  } catch {
    return false;
  }
}

/** One `Settings/Server` of the answer. */
export interface AutodiscoverServer {
  /** `MobileSync` or `CertEnroll`. */
  readonly type: string;
  readonly url: string;
  readonly name?: string;
}

/** What an Autodiscover answer says. */
export type AutodiscoverAnswer =
  | {
      readonly kind: 'settings';
      readonly displayName?: string;
      readonly email?: string;
      readonly culture?: string;
      readonly servers: readonly AutodiscoverServer[];
      /** The MobileSync server's URL, when there is one. */
      readonly mobileSyncUrl?: string;
    }
  | { readonly kind: 'redirect-address'; readonly address: string }
  | { readonly kind: 'redirect-url'; readonly url: string }
  | {
      readonly kind: 'error';
      /** `Response/Error/ErrorCode` (600 invalid request, 601 no such schema) or `Action/Error/Status`. */
      readonly code: string;
      readonly message: string;
    };

/** An Autodiscover error answer (either POX schema). */
export interface AutodiscoverErrorAnswer {
  readonly kind: 'error';
  readonly code: string;
  readonly message: string;
}

/**
 * The `Response` element of a POX Autodiscover answer (outlook or mobilesync schema), or the error it
 * carries at `Response/Error`; throws XmlError when it is not XML, TypeError when not Autodiscover.
 */
export function autodiscoverResponse(text: string): XmlElement | AutodiscoverErrorAnswer {
  const root = readXml(text);
  if (root.local !== 'Autodiscover') throw new TypeError(`the answer is <${root.local}>, not <Autodiscover>`);
  const response = xmlChild(root, 'Response');
  if (!response) throw new TypeError('the answer has no Response');
  const error = xmlChild(response, 'Error');
  if (error)
    return {
      kind: 'error',
      code: xmlText(xmlChild(error, 'ErrorCode')) || 'unknown',
      message: xmlText(xmlChild(error, 'Message')) || 'Autodiscover error',
    };
  return response;
}

/** The outlook schema's redirects: `<Account><Action>redirectUrl</Action><RedirectUrl>…` (or redirectAddr). */
export function accountRedirect(
  account: XmlElement | undefined,
):
  | { readonly kind: 'redirect-url'; readonly url: string }
  | { readonly kind: 'redirect-address'; readonly address: string }
  | undefined {
  const action = xmlText(xmlChild(account, 'Action')).toLowerCase();
  if (action === 'redirecturl')
    return { kind: 'redirect-url', url: xmlText(xmlChild(account, 'RedirectUrl')) };
  if (action === 'redirectaddr')
    return { kind: 'redirect-address', address: xmlText(xmlChild(account, 'RedirectAddr')) };
  return undefined;
}

/** Read an answer; throws XmlError when it is not XML, or not an Autodiscover document. */
export function parseAutodiscoverAnswer(text: string): AutodiscoverAnswer {
  const response = autodiscoverResponse(text);
  if ('kind' in response) return response;
  const action = xmlChild(response, 'Action') ?? xmlChild(xmlChild(response, 'Account'), 'Action');
  const outlookRedirect = accountRedirect(xmlChild(response, 'Account'));
  if (outlookRedirect) return outlookRedirect;
  if (!action) throw new TypeError('the answer has neither Action nor Error');
  const redirect = xmlChild(action, 'Redirect');
  if (redirect) return { kind: 'redirect-address', address: xmlText(redirect) };
  const actionError = xmlChild(action, 'Error');
  if (actionError)
    return {
      kind: 'error',
      code: xmlText(xmlChild(actionError, 'Status')) || 'unknown',
      message: xmlText(xmlChild(actionError, 'Message')) || 'Autodiscover error',
    };
  const servers = xmlChildren(xmlChild(action, 'Settings'), 'Server').map(server);
  const mobile = servers.find((s) => s.type.toLowerCase() === 'mobilesync' && s.url !== '');
  const user = xmlChild(response, 'User');
  const opt = (key: string, node: XmlElement | undefined): Record<string, string> =>
    xmlText(node) === '' ? {} : { [key]: xmlText(node) };
  return {
    kind: 'settings',
    ...opt('displayName', xmlChild(user, 'DisplayName')),
    ...opt('email', xmlChild(user, 'EMailAddress')),
    ...opt('culture', xmlChild(response, 'Culture')),
    servers,
    ...(mobile ? { mobileSyncUrl: mobile.url } : {}),
  };
}

function server(s: XmlElement): AutodiscoverServer {
  const name = xmlText(xmlChild(s, 'Name'));
  return {
    type: xmlText(xmlChild(s, 'Type')),
    url: xmlText(xmlChild(s, 'Url')),
    ...(name === '' ? {} : { name }),
  };
}
