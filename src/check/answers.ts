/**
 * The requests `coexist check` sends and what it reads from the answers: POX Autodiscover for Outlook
 * (2006a), SOAP GetUserSettings, EWS GetFolder, and OWA's forms logon page. Pure.
 */
import type { XmlElement } from '../codec/xml-read.ts';
import { readXml, xmlChild, xmlChildren, xmlText } from '../codec/xml-read.ts';
import { escapeXml } from '../codec/xml-escape.ts';
import {
  autodiscoverSoapActionBase,
  autodiscoverSoapNs,
  outlookRequestSchema,
  outlookResponseSchema,
  soap11EnvelopeNs,
  wsAddressingNs,
} from '../core/autodiscover/schemas.ts';
import { accountRedirect, autodiscoverResponse } from '../client/activesync/autodiscover.ts';

// ---- POX Autodiscover (Outlook) -------------------------------------------------------------------

export function outlookRequest(email: string): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<Autodiscover xmlns="${outlookRequestSchema}"><Request>` +
    `<EMailAddress>${escapeXml(email)}</EMailAddress>` +
    `<AcceptableResponseSchema>${outlookResponseSchema}</AcceptableResponseSchema>` +
    '</Request></Autodiscover>'
  );
}

/** What an Outlook Autodiscover answer says. */
export type OutlookAnswer =
  | {
      readonly kind: 'settings';
      readonly displayName?: string;
      /** EXCH (inside the network) and EXPR (Outlook Anywhere, outside) EwsUrl. */
      readonly ewsInternal?: string;
      readonly ewsExternal?: string;
      readonly owaInternal?: string;
      readonly owaExternal?: string;
      /** The EXPR server (the Outlook Anywhere host). */
      readonly outlookAnywhere?: string;
    }
  | { readonly kind: 'redirect-address'; readonly address: string }
  | { readonly kind: 'redirect-url'; readonly url: string }
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

/** Read an Outlook answer; throws when it is not an Autodiscover document. */
export function parseOutlookAnswer(text: string): OutlookAnswer {
  const response = autodiscoverResponse(text);
  if ('kind' in response) return response;
  const account = xmlChild(response, 'Account');
  if (!account) throw new TypeError('the answer has neither Account nor Error');
  const redirect = accountRedirect(account);
  if (redirect) return redirect;
  const protocols = xmlChildren(account, 'Protocol');
  const ofType = (type: string): XmlElement | undefined =>
    protocols.find((p) => xmlText(xmlChild(p, 'Type')).toUpperCase() === type);
  const exch = ofType('EXCH');
  const expr = ofType('EXPR');
  const web = ofType('WEB');
  const opt = (key: string, value: string): Record<string, string> => (value === '' ? {} : { [key]: value });
  return {
    kind: 'settings',
    ...opt('displayName', xmlText(xmlChild(xmlChild(response, 'User'), 'DisplayName'))),
    ...opt('ewsInternal', xmlText(xmlChild(exch, 'EwsUrl'))),
    ...opt('ewsExternal', xmlText(xmlChild(expr, 'EwsUrl'))),
    ...opt('owaInternal', xmlText(xmlChild(xmlChild(web, 'Internal'), 'OWAUrl'))),
    ...opt('owaExternal', xmlText(xmlChild(xmlChild(web, 'External'), 'OWAUrl'))),
    ...opt('outlookAnywhere', xmlText(xmlChild(expr, 'Server'))),
  };
}

// ---- SOAP Autodiscover GetUserSettings ------------------------------------------------------------

export const userSettingNames = ['UserDisplayName', 'InternalEwsUrl', 'ExternalEwsUrl'] as const;

export function getUserSettingsRequest(
  email: string,
  settings: readonly string[] = userSettingNames,
): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<soap:Envelope xmlns:soap="${soap11EnvelopeNs}" xmlns:a="${autodiscoverSoapNs}" xmlns:wsa="${wsAddressingNs}">` +
    '<soap:Header><a:RequestedServerVersion>Exchange2010</a:RequestedServerVersion>' +
    `<wsa:Action>${autodiscoverSoapActionBase}GetUserSettings</wsa:Action></soap:Header>` +
    `<soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>${escapeXml(email)}</a:Mailbox></a:User></a:Users>` +
    `<a:RequestedSettings>${settings.map((s) => `<a:Setting>${escapeXml(s)}</a:Setting>`).join('')}</a:RequestedSettings>` +
    '</a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>'
  );
}

export interface UserSettingsAnswer {
  /** The Response- or UserResponse-level ErrorCode (`NoError` when fine). */
  readonly errorCode: string;
  readonly errorMessage?: string;
  readonly settings: ReadonlyMap<string, string>;
}

export function parseUserSettings(text: string): UserSettingsAnswer {
  const root = readXml(text);
  const body = xmlChild(root, 'Body');
  const response = xmlChild(xmlChild(body, 'GetUserSettingsResponseMessage'), 'Response');
  if (!response) throw new TypeError('the answer is not a GetUserSettingsResponseMessage');
  const top = xmlText(xmlChild(response, 'ErrorCode')) || 'NoError';
  const user = xmlChild(xmlChild(response, 'UserResponses'), 'UserResponse');
  const userCode = xmlText(xmlChild(user, 'ErrorCode')) || 'NoError';
  const settings = new Map<string, string>();
  for (const s of xmlChildren(xmlChild(user, 'UserSettings'), 'UserSetting')) {
    const name = xmlText(xmlChild(s, 'Name'));
    const value =
      xmlText(xmlChild(s, 'Value')) ||
      xmlText(xmlChild(xmlChild(xmlChild(s, 'WebClientUrls'), 'WebClientUrl'), 'Url'));
    if (name) settings.set(name, value);
  }
  const errorCode = top !== 'NoError' ? top : userCode;
  const message =
    top !== 'NoError' ? xmlText(xmlChild(response, 'ErrorMessage')) : xmlText(xmlChild(user, 'ErrorMessage'));
  return { errorCode, ...(message ? { errorMessage: message } : {}), settings };
}

// ---- EWS GetFolder --------------------------------------------------------------------------------

/** The EWS schema the check asks for: every Exchange since 2007 SP1 serves it. */
export const ewsRequestVersion = 'Exchange2007_SP1';

export function getFolderRequest(folder = 'inbox'): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<soap:Envelope xmlns:soap="${soap11EnvelopeNs}" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">` +
    `<soap:Header><t:RequestServerVersion Version="${ewsRequestVersion}"/></soap:Header>` +
    '<soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>' +
    `<m:FolderIds><t:DistinguishedFolderId Id="${escapeXml(folder)}"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>`
  );
}

export type EwsAnswer =
  | {
      readonly kind: 'folder';
      readonly displayName?: string;
      readonly totalCount?: number;
      /** `ServerVersionInfo/@Version`, the schema the server speaks. */
      readonly serverVersion?: string;
    }
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

/** Read a GetFolder answer or a SOAP fault; throws when it is not SOAP. */
export function parseGetFolder(text: string): EwsAnswer {
  const root = readXml(text);
  if (root.local !== 'Envelope') throw new TypeError(`the answer is <${root.local}>, not a SOAP envelope`);
  const body = xmlChild(root, 'Body');
  const fault = xmlChild(body, 'Fault');
  if (fault) {
    const detailCode = xmlText(xmlChild(xmlChild(fault, 'detail'), 'ResponseCode'));
    return {
      kind: 'error',
      code: detailCode || xmlText(xmlChild(fault, 'faultcode')) || 'SOAP fault',
      message: xmlText(xmlChild(fault, 'faultstring')),
    };
  }
  const message = xmlChild(
    xmlChild(xmlChild(body, 'GetFolderResponse'), 'ResponseMessages'),
    'GetFolderResponseMessage',
  );
  if (!message) throw new TypeError('the answer has no GetFolderResponseMessage');
  const code = xmlText(xmlChild(message, 'ResponseCode'));
  if (code !== 'NoError')
    return { kind: 'error', code: code || 'unknown', message: xmlText(xmlChild(message, 'MessageText')) };
  const folder = xmlChild(message, 'Folders')?.children[0];
  const total = xmlText(xmlChild(folder, 'TotalCount'));
  const version = /<(?:\w+:)?ServerVersionInfo\b[^>]*\bVersion="([^"]+)"/.exec(text)?.[1];
  const name = xmlText(xmlChild(folder, 'DisplayName'));
  return {
    kind: 'folder',
    ...(name ? { displayName: name } : {}),
    ...(/^\d+$/.test(total) ? { totalCount: Number(total) } : {}),
    ...(version ? { serverVersion: version } : {}),
  };
}

// ---- OWA forms logon ------------------------------------------------------------------------------

export interface LogonForm {
  /** Where the form posts (`/owa/auth.owa`, 2007's `/owa/auth/owaauth.dll`). */
  readonly action: string;
  /** The hidden fields, to post back as they are. */
  readonly hidden: ReadonlyMap<string, string>;
}

const unescapeHtml = (s: string): string =>
  s.replace(/&(amp|lt|gt|quot|#39|apos);/g, (_, e: string) =>
    e === 'amp' ? '&' : e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : "'",
  );

const attribute = (tag: string, name: string): string | undefined => {
  const m = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag);
  return m ? unescapeHtml(m[2] ?? m[3] ?? '') : undefined;
};

/** The logon form of an OWA logon page; undefined when the page has none with a password field. */
export function parseLogonForm(html: string): LogonForm | undefined {
  const form = /<form\b[^>]*>[\s\S]*?<\/form>/i.exec(html)?.[0];
  if (!form || !/type\s*=\s*["']?password/i.test(form)) return undefined;
  const open = /<form\b[^>]*>/i.exec(form)?.[0] ?? '';
  const hidden = new Map<string, string>();
  for (const input of form.match(/<input\b[^>]*>/gi) ?? []) {
    if ((attribute(input, 'type') ?? '').toLowerCase() !== 'hidden') continue;
    const name = attribute(input, 'name');
    if (name) hidden.set(name, attribute(input, 'value') ?? '');
  }
  return { action: attribute(open, 'action') ?? '', hidden };
}

/** The form body of a logon: the hidden fields, then the user name and password. */
export function logonBody(form: LogonForm, username: string, password: string): string {
  const p = new URLSearchParams();
  for (const [k, v] of form.hidden) p.set(k, v);
  p.set('username', username);
  p.set('password', password);
  return p.toString();
}

/** An HTML page's title. */
export const pageTitle = (html: string): string | undefined =>
  /<title>([^<]*)<\/title>/i.exec(html)?.[1]?.trim() || undefined;

/** `name=value` of each Set-Cookie line, as a Cookie header. */
export function cookieHeader(setCookies: readonly string[], previous?: string): string | undefined {
  const jar = new Map<string, string>();
  for (const pair of (previous ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  for (const line of setCookies) {
    const first = line.split(';')[0] ?? '';
    const eq = first.indexOf('=');
    if (eq <= 0) continue;
    const name = first.slice(0, eq).trim();
    const value = first.slice(eq + 1).trim();
    // An expired or emptied cookie is a deletion.
    if (value === '' || /;\s*max-age=0\b/i.test(line)) jar.delete(name);
    else jar.set(name, value);
  }
  return jar.size === 0 ? undefined : [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}
