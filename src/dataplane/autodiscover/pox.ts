/**
 * POX Autodiscover: the Outlook answer (response schema 2006a, docs/protocols.md §4.2) with its mapiHttp, EXCH,
 * EXPR and WEB blocks, the mobilesync answer (§4.1 end), and the error and redirect answers of each.
 */
import { escapeXml } from '../../codec/xml-escape.ts';
import type { AutodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import {
  autodiscoverResponseSchema,
  mobileSyncResponseSchema,
  outlookResponseSchema,
} from '../../core/autodiscover/schemas.ts';
import type {
  AutodiscoverDialect,
  AutodiscoverRequest,
  PoxAutodiscoverRequest,
} from '../../core/protocols/autodiscover.ts';
import type {
  AutodiscoverError,
  AutodiscoverRedirect,
  AutodiscoverReply,
  ErrorContext,
  RenderContext,
} from './context.ts';
import { el, hostIn, xml } from './context.ts';
import {
  deploymentId,
  domainOf,
  mailboxGuid,
  mdbDn,
  rpcServer,
  serverDn,
  serverVersionHex,
} from './exchange.ts';

/** The settings answer of a POX request, or 601 when the client does not accept this dialect's schema. */
export function poxAnswer(
  request: PoxAutodiscoverRequest,
  answer: AutodiscoverAnswer,
  ctx: RenderContext,
): AutodiscoverReply {
  if (!acceptable(request)) return poxErrorAnswer(request, 'schema-unavailable', ctx);
  return xml(200, request.schema === 'outlook' ? outlook(answer, ctx) : mobile(answer, ctx));
}

/**
 * The error answer (HTTP 200, as Exchange answers them): outlook `Response/Error` with ErrorCode
 * 500/600/601/603 (§4.2), mobilesync `Response/Error` 600/601 or `Action/Error` (§4.1 end).
 */
export function poxErrorAnswer(
  request: AutodiscoverRequest | { readonly schema: AutodiscoverDialect },
  error: AutodiscoverError,
  ctx: ErrorContext,
): AutodiscoverReply {
  return xml(
    200,
    request.schema === 'outlook'
      ? poxError(ctx, autodiscoverResponseSchema, poxCodes[error])
      : mobileError(request, error, ctx),
  );
}

/**
 * The redirect (MS-OXDSCLI, docs/protocols.md §4.2): outlook `Action` redirectUrl or redirectAddr; mobilesync
 * `Action/Redirect` with the new address, and for a new URL the HTTP 302 the spec prefers.
 */
export function poxRedirect(schema: 'outlook' | 'mobilesync', to: AutodiscoverRedirect): AutodiscoverReply {
  if (schema === 'outlook') {
    const action =
      to.kind === 'url'
        ? `<Action>redirectUrl</Action>${el('RedirectUrl', to.url)}`
        : `<Action>redirectAddr</Action>${el('RedirectAddr', to.address)}`;
    return xml(
      200,
      `<Autodiscover xmlns="${autodiscoverResponseSchema}"><Response xmlns="${outlookResponseSchema}"><Account><AccountType>email</AccountType>${action}</Account></Response></Autodiscover>`,
    );
  }
  if (to.kind === 'url')
    return { status: 302, contentType: 'text/plain; charset=utf-8', body: '', location: to.url };
  return xml(
    200,
    `<Autodiscover xmlns="${autodiscoverResponseSchema}"><Response xmlns="${mobileSyncResponseSchema}"><Culture>en:us</Culture><Action>${el('Redirect', to.address)}</Action></Response></Autodiscover>`,
  );
}

const acceptableSchemas = { outlook: outlookResponseSchema, mobilesync: mobileSyncResponseSchema } as const;

/** The client accepts the response schema this dialect answers in (both spellings, § warning); absent is accepted. */
function acceptable(request: PoxAutodiscoverRequest): boolean {
  const asked = request.acceptableResponseSchema;
  if (asked === undefined) return true;
  return (
    asked
      .trim()
      .toLowerCase()
      .replace(/^https:/, 'http:') === acceptableSchemas[request.schema]
  );
}

/** Mobile devices get one MobileSync server: the external ActiveSync URL (docs/protocols.md §4.1, docs/flows.md EAS-3B). */
function mobile(a: AutodiscoverAnswer, ctx: RenderContext): string {
  const url = a.external.activesync ?? a.internal.activesync;
  if (url === undefined) return mobileError({ schema: 'mobilesync', address: a.address }, 'internal', ctx);
  return (
    `<Autodiscover xmlns="${autodiscoverResponseSchema}"><Response xmlns="${mobileSyncResponseSchema}"><Culture>en:us</Culture>` +
    `<User>${el('DisplayName', a.displayName)}${el('EMailAddress', a.address)}</User>` +
    `<Action><Settings><Server><Type>MobileSync</Type>${el('Url', url)}${el('Name', url)}</Server></Settings></Action>` +
    `</Response></Autodiscover>`
  );
}

/** The per-service URL elements of an EXCH/EXPR block: ASUrl is the Availability service, i.e. EWS (§4.2 sample). */
function serviceUrls(urls: AutodiscoverAnswer['internal']): string {
  return (
    el('ASUrl', urls.ews) +
    el('EwsUrl', urls.ews) +
    el('OOFUrl', urls.ews) +
    el('OABUrl', urls.oab) +
    el('EcpUrl', urls.ecp === undefined ? undefined : withSlash(urls.ecp))
  );
}

const withSlash = (url: string): string => (url.endsWith('/') ? url : `${url}/`);

/** Outlook: mapiHttp (asked, 2013+), EXCH (inside), EXPR (Outlook Anywhere) and WEB (OWA) blocks (§4.2). */
function outlook(a: AutodiscoverAnswer, ctx: RenderContext): string {
  const i = a.internal;
  const e = a.external;
  const version = serverVersionHex(a.mailboxVersion);
  const exch =
    `<Protocol><Type>EXCH</Type>${el('Server', rpcServer(a))}${el('ServerDN', serverDn(a, ctx.organization))}` +
    `${el('ServerVersion', version)}${el('MdbDN', mdbDn(a, ctx.organization))}${serviceUrls(i)}</Protocol>`;
  const oaHost = hostIn(e.rpc);
  const expr =
    oaHost === undefined
      ? ''
      : `<Protocol><Type>EXPR</Type>${el('Server', oaHost)}${el('ServerVersion', version)}` +
        `<SSL>${e.rpc?.startsWith('https:') ? 'On' : 'Off'}</SSL><AuthPackage>Basic</AuthPackage>${serviceUrls(e)}</Protocol>`;
  const owa = (side: 'Internal' | 'External', url: string | undefined): string =>
    url === undefined
      ? ''
      : `<${side}><OWAUrl AuthenticationMethod="Fba">${escapeXml(url)}</OWAUrl></${side}>`;
  const web =
    i.owa === undefined && e.owa === undefined
      ? ''
      : `<Protocol><Type>WEB</Type>${owa('External', e.owa)}${owa('Internal', i.owa)}</Protocol>`;
  return (
    `<Autodiscover xmlns="${autodiscoverResponseSchema}"><Response xmlns="${outlookResponseSchema}">` +
    `<User>${el('DisplayName', a.displayName)}${el('LegacyDN', a.legacyDn)}` +
    `${el('AutoDiscoverSMTPAddress', a.address)}${el('DeploymentId', deploymentId(ctx.organization))}</User>` +
    `<Account><AccountType>email</AccountType><Action>settings</Action>` +
    `${mapiHttp(a, ctx)}${exch}${expr}${web}</Account>` +
    `</Response></Autodiscover>`
  );
}

/**
 * `<Protocol Type="mapiHttp" Version="1">` with MailStore (emsmdb) and AddressBook (nspi) URLs, only when the
 * client sent X-MapiHttpCapability, the mailbox is 2013+ and the answering server is 2013 SP1+ (§4.2; MS-OXDSCLI §4.4).
 */
function mapiHttp(a: AutodiscoverAnswer, ctx: RenderContext): string {
  if (!ctx.mapiHttp || a.mailboxVersion < 2013 || ctx.answering.version < 2013) return '';
  const { mapi: internal } = a.internal;
  const { mapi: external } = a.external;
  if (internal === undefined && external === undefined) return '';
  const id = `${mailboxGuid(a.address)}@${domainOf(a.address)}`;
  const urls = (endpoint: 'emsmdb' | 'nspi'): string => {
    const at = (base: string | undefined): string | undefined =>
      base === undefined ? undefined : `${withSlash(base)}${endpoint}/?MailboxId=${id}`;
    return el('InternalUrl', at(internal)) + el('ExternalUrl', at(external));
  };
  return (
    `<Protocol Type="mapiHttp" Version="1"><MailStore>${urls('emsmdb')}</MailStore>` +
    `<AddressBook>${urls('nspi')}</AddressBook></Protocol>`
  );
}

const poxCodes: Readonly<Record<AutodiscoverError, { code: number; message: string }>> = {
  // exchangelib maps exactly this message to ErrorNonExistentMailbox (autodiscover/properties.py raise_errors).
  'unknown-user': { code: 500, message: "The email address can't be found." },
  'not-served': { code: 500, message: "The email address can't be found." },
  'invalid-request': { code: 600, message: 'Invalid Request' },
  'schema-unavailable': { code: 601, message: 'The requested response schema is not available.' },
  'server-busy': { code: 603, message: 'The server is busy. Try again later.' },
  internal: { code: 603, message: 'The server could not build the answer.' },
};

/** `Error/@Time`: the UTC time of day as Exchange writes it, `HH:MM:SS.fffffff`. */
function errorTime(ctx: ErrorContext): string {
  const d = (ctx.now ?? (() => new Date()))();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}0000`;
}

/** `Error/@Id`: "a hash of the name of the computer" answering (Error (POX)); FNV-1a, as an unsigned decimal. */
function errorId(ctx: ErrorContext): string {
  let h = 0x811c9dc5;
  for (const c of ctx.answering.name.toLowerCase()) h = Math.imul(h ^ (c.codePointAt(0) ?? 0), 0x01000193);
  return String(h >>> 0);
}

/** `Response/Error` (§4.2 error response); `responseNs` is the base namespace (outlook) or mobilesync's. */
function poxError(ctx: ErrorContext, responseNs: string, e: { code: number; message: string }): string {
  const xmlns = responseNs === autodiscoverResponseSchema ? '' : ` xmlns="${responseNs}"`;
  return (
    `<Autodiscover xmlns="${autodiscoverResponseSchema}"><Response${xmlns}>` +
    `<Error Time="${errorTime(ctx)}" Id="${errorId(ctx)}"><ErrorCode>${e.code}</ErrorCode>` +
    `${el('Message', e.message)}<DebugData /></Error></Response></Autodiscover>`
  );
}

/**
 * Mobile errors (§4.1 end, MS-ASCMD §4.2): a framework error (600 invalid request, 601 schema) is
 * `Response/Error/ErrorCode` in the mobilesync namespace; a per-user failure is `Action/Error/Status` 2.
 */
function mobileError(
  request: AutodiscoverRequest | { readonly schema: AutodiscoverDialect; readonly address?: string },
  error: AutodiscoverError,
  ctx: ErrorContext,
): string {
  if (error === 'invalid-request' || error === 'schema-unavailable')
    return poxError(ctx, mobileSyncResponseSchema, poxCodes[error]);
  const address = 'address' in request ? request.address : undefined;
  const user = address === undefined ? '' : `<User>${el('EMailAddress', address)}</User>`;
  return (
    `<Autodiscover xmlns="${autodiscoverResponseSchema}"><Response xmlns="${mobileSyncResponseSchema}"><Culture>en:us</Culture>${user}` +
    `<Action><Error><Status>2</Status>${el('Message', poxCodes[error].message)}<DebugData /></Error></Action>` +
    `</Response></Autodiscover>`
  );
}
