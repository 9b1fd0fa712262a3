/**
 * Autodiscover answers on the wire, rendered from the engine's `AutodiscoverAnswer` (core/autodiscover):
 * POX for Outlook (response schema 2006a, protocol-facts §4.2) and for mobile devices (mobilesync, §4.1
 * end), SOAP GetUserSettings and GetDomainSettings (§4.3), the v2 JSON form (§4.4), and the error answer of
 * each. Every value goes through `xmlEscape` (or `JSON.stringify`); nothing the client sent is concatenated
 * into markup unescaped.
 */
import { createHash } from 'node:crypto';
import type { AutodiscoverAnswer } from '../core/autodiscover/answer.ts';
import type { ProductVersion } from '../core/estate/estate.ts';
import type {
  AutodiscoverDialect,
  AutodiscoverRequest,
  GetDomainSettingsRequest,
  GetUserSettingsRequest,
  PoxAutodiscoverRequest,
} from '../core/protocols/autodiscover.ts';
import { isSmtpAddress } from '../core/protocols/request-head.ts';

/** A rendered answer: status, content type and body. */
export interface AutodiscoverReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /** For an HTTP redirect (302): where to. */
  readonly location?: string;
}

/** The server answering: its CasVersion and the SOAP `ServerVersionInfo` header come from it. */
export interface AnsweringServer {
  readonly name: string;
  readonly fqdn: string;
  readonly version: ProductVersion;
}

/** What the renderer needs besides the request and the routed mailbox's answer. */
export interface RenderContext {
  readonly answering: AnsweringServer;
  /** Exchange organization name, for ServerDN / MdbDN / MailboxDN and the DeploymentId. */
  readonly organization: string;
  /** Answer data for another address (SOAP may ask several users); 'unknown' when the directory has none, 'not-served' for a domain the estate does not serve. */
  readonly answerFor: (address: string) => AutodiscoverAnswer | 'unknown' | 'not-served';
  /** Accepted domains (GetDomainSettings answers only these). */
  readonly domains: readonly string[];
  /** The client sent `X-MapiHttpCapability: 1`: add the mapiHttp block for 2013+ mailboxes (§4.2). */
  readonly mapiHttp?: boolean;
  /** The estate's public EWS URL (primary namespace): GetDomainSettings `ExternalEwsUrl`. */
  readonly externalEwsUrl?: string;
  /** The estate's public POX URL (autodiscover namespace): JSON `AutodiscoverV1`; else derived from the EWS host. */
  readonly autodiscoverUrl?: string;
  /** A domain controller to announce as SOAP `ActiveDirectoryServer`; the setting is not available without it. */
  readonly activeDirectoryServer?: string;
  /** The clock for POX `Error/@Time` (tests pass a fixed one). */
  readonly now?: () => Date;
}

/** What an error answer needs: the answering server, and optionally the rest (SOAP resolves the other users with it). */
export type ErrorContext = Pick<RenderContext, 'answering'> & Partial<Omit<RenderContext, 'answering'>>;

/** Why a request gets an error answer instead of settings. */
export type AutodiscoverError =
  'unknown-user' | 'not-served' | 'invalid-request' | 'schema-unavailable' | 'server-busy' | 'internal';

/** Headers every Autodiscover answer carries, 401s included (ews-javascript-api requires X-SOAP-Enabled: True, real-clients-and-ldap.md §3). */
export const autodiscoverHeaders: Readonly<Record<string, string>> = Object.freeze({
  'x-soap-enabled': 'True',
});

const ns = {
  response: 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006',
  outlook: 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a',
  mobile: 'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006',
  soap11: 'http://schemas.xmlsoap.org/soap/envelope/',
  soap12: 'http://www.w3.org/2003/05/soap-envelope',
  wsa: 'http://www.w3.org/2005/08/addressing',
  autodiscover: 'http://schemas.microsoft.com/exchange/2010/Autodiscover',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
} as const;

/** XML text escaping for element content and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : '&apos;',
  );
}

/** `<name>value</name>`, or nothing when the value is absent (no empty elements, §4.2). */
const el = (name: string, value: string | undefined): string =>
  value === undefined ? '' : `<${name}>${xmlEscape(value)}</${name}>`;

const xmlDeclaration = '<?xml version="1.0" encoding="utf-8"?>';

const hostOf = (url: string | undefined): string | undefined => {
  if (url === undefined) return undefined;
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
};

// ---- versions (protocol-facts §4.2 ServerVersion layout, §7; exchangelib version.py for the API names) ----

interface Build {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
  readonly revision: number;
  /** The EWS schema name of the build (`ServerVersionInfo/Version`; a real name, real-clients-and-ldap.md §2). */
  readonly api: string;
}

/** The build coexist announces per version: the service pack the lab models (2007 SP3, 2010 SP3, 2013 SP1, RTM after). */
const builds: Readonly<Record<ProductVersion, Build>> = {
  2007: { major: 8, minor: 3, build: 83, revision: 6, api: 'Exchange2007_SP1' },
  2010: { major: 14, minor: 3, build: 123, revision: 4, api: 'Exchange2010_SP2' },
  2013: { major: 15, minor: 0, build: 847, revision: 32, api: 'Exchange2013_SP1' },
  2016: { major: 15, minor: 1, build: 225, revision: 42, api: 'Exchange2016' },
  2019: { major: 15, minor: 2, build: 221, revision: 12, api: 'Exchange2016' },
};

const schemaLadder = [
  'Exchange2007',
  'Exchange2007_SP1',
  'Exchange2010',
  'Exchange2010_SP1',
  'Exchange2010_SP2',
  'Exchange2013',
  'Exchange2013_SP1',
  'Exchange2016',
];

/** POX `ServerVersion`: `[4-bit 0x7][6-bit major][6-bit minor][1][15-bit build]` in 8 hex digits (§4.2; 2013 SP1 = 73C0834F). */
export function serverVersionHex(version: ProductVersion): string {
  const b = builds[version];
  const n = ((0x7 << 28) | (b.major << 22) | (b.minor << 16) | 0x8000 | b.build) >>> 0;
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** SOAP `CasVersion` / `ExternalEwsVersion` of a version's build, e.g. `15.00.0847.032` (§4.3, §7). */
export function casVersion(version: ProductVersion): string {
  const b = builds[version];
  const pad = (n: number, w: number): string => String(n).padStart(w, '0');
  return `${pad(b.major, 2)}.${pad(b.minor, 2)}.${pad(b.build, 4)}.${pad(b.revision, 3)}`;
}

/** SOAP `EwsSupportedSchemas`: the EWS schema names a mailbox version understands, oldest first (§4.3 table). */
export function ewsSupportedSchemas(version: ProductVersion): string {
  return schemaLadder.slice(0, schemaLadder.indexOf(builds[version].api) + 1).join(', ');
}

// ---- identifiers derived, not stored (the estate has no GUIDs) ----

/** A name-based (version 5 layout, SHA-1) GUID: stable for the same input, never random. */
function nameGuid(name: string): string {
  const h = createHash('sha1').update(name).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** POX `DeploymentId` / SOAP `UserDeploymentId`: one GUID per organization, derived from its name. */
export function deploymentId(organization: string): string {
  return nameGuid(`coexist:deployment:${organization.toLowerCase()}`);
}

/** The mailbox GUID of a 2013+ mailbox (the `<guid>@<domain>` server name, MailboxId), derived from its address. */
export function mailboxGuid(address: string): string {
  return nameGuid(`coexist:mailbox:${address.toLowerCase()}`);
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** 2007/2010: the mailbox server's FQDN; 2013+: `<mailbox GUID>@<domain>` (§4.2 `Server` row). */
function rpcServer(a: AutodiscoverAnswer): string {
  return a.mailboxVersion >= 2013 ? `${mailboxGuid(a.address)}@${domainOf(a.address)}` : a.mailboxServerFqdn;
}

function serverDn(a: AutodiscoverAnswer, organization: string): string {
  const cn = a.mailboxVersion >= 2013 ? rpcServer(a) : a.mailboxServer;
  return `/o=${organization}/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=${cn}`;
}

const mdbDn = (a: AutodiscoverAnswer, organization: string): string =>
  `${serverDn(a, organization)}/cn=Microsoft Private MDB`;

// ---- entry points ----

/** The answer in the dialect the client asked for, for the mailbox the request was routed on (`answer`). */
export function renderAutodiscover(
  request: AutodiscoverRequest,
  answer: AutodiscoverAnswer,
  ctx: RenderContext,
): AutodiscoverReply {
  switch (request.schema) {
    case 'mobilesync':
      if (!acceptable(request)) return renderAutodiscoverError(request, 'schema-unavailable', ctx);
      return xml(200, mobile(answer, ctx));
    case 'outlook':
      if (!acceptable(request)) return renderAutodiscoverError(request, 'schema-unavailable', ctx);
      return xml(200, outlook(answer, ctx));
    case 'json':
      return json(request.protocol, answer, ctx);
    case 'soap':
      return request.operation === 'GetDomainSettings'
        ? domainSettings(request, ctx)
        : userSettings(request, answer, ctx);
  }
}

/**
 * The error answer of each dialect (HTTP 200 for POX and SOAP, as Exchange answers them): POX `Response/Error`
 * with ErrorCode 500/600/601/603 (§4.2), mobilesync `Response/Error` 600/601 or `Action/Error` (§4.1 end),
 * SOAP Response- or UserResponse-level ErrorCodes (§4.3), a JSON `{ErrorCode, ErrorMessage}` with a 4xx/5xx.
 */
export function renderAutodiscoverError(
  request: AutodiscoverRequest | { readonly schema: AutodiscoverDialect },
  error: AutodiscoverError,
  ctx: ErrorContext,
): AutodiscoverReply {
  switch (request.schema) {
    case 'outlook':
      return xml(200, poxError(ctx, ns.response, poxCodes[error]));
    case 'mobilesync':
      return xml(200, mobileError(request, error, ctx));
    case 'json':
      return jsonError(error);
    case 'soap':
      return soapError(request, error, ctx);
  }
}

const xml = (status: number, body: string): AutodiscoverReply => ({
  status,
  contentType: 'text/xml; charset=utf-8',
  body: xmlDeclaration + body,
});

// ---- POX ----

const acceptableSchemas = { outlook: ns.outlook, mobilesync: ns.mobile } as const;

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

/** Mobile devices get one MobileSync server: the external ActiveSync URL (protocol-facts §4.1, flows.md EAS-3B). */
function mobile(a: AutodiscoverAnswer, ctx: RenderContext): string {
  const url = a.external.activesync ?? a.internal.activesync;
  if (url === undefined) return mobileError({ schema: 'mobilesync', address: a.address }, 'internal', ctx);
  return (
    `<Autodiscover xmlns="${ns.response}"><Response xmlns="${ns.mobile}"><Culture>en:us</Culture>` +
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
  const oaHost = hostOf(e.rpc);
  const expr =
    oaHost === undefined
      ? ''
      : `<Protocol><Type>EXPR</Type>${el('Server', oaHost)}${el('ServerVersion', version)}` +
        `<SSL>${e.rpc?.startsWith('https:') ? 'On' : 'Off'}</SSL><AuthPackage>Basic</AuthPackage>${serviceUrls(e)}</Protocol>`;
  const owa = (side: 'Internal' | 'External', url: string | undefined): string =>
    url === undefined
      ? ''
      : `<${side}><OWAUrl AuthenticationMethod="Fba">${xmlEscape(url)}</OWAUrl></${side}>`;
  const web =
    i.owa === undefined && e.owa === undefined
      ? ''
      : `<Protocol><Type>WEB</Type>${owa('External', e.owa)}${owa('Internal', i.owa)}</Protocol>`;
  return (
    `<Autodiscover xmlns="${ns.response}"><Response xmlns="${ns.outlook}">` +
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
  const xmlns = responseNs === ns.response ? '' : ` xmlns="${responseNs}"`;
  return (
    `<Autodiscover xmlns="${ns.response}"><Response${xmlns}>` +
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
    return poxError(ctx, ns.mobile, poxCodes[error]);
  const address = 'address' in request ? request.address : undefined;
  const user = address === undefined ? '' : `<User>${el('EMailAddress', address)}</User>`;
  return (
    `<Autodiscover xmlns="${ns.response}"><Response xmlns="${ns.mobile}"><Culture>en:us</Culture>${user}` +
    `<Action><Error><Status>2</Status>${el('Message', poxCodes[error].message)}<DebugData /></Error></Action>` +
    `</Response></Autodiscover>`
  );
}

// ---- SOAP (MS-OXWSADISC; shapes as ews-javascript-api and exchangelib read them, real-clients-and-ldap.md §2–§3) ----

type SettingValue =
  | { readonly type: 'StringSetting'; readonly value: string }
  | { readonly type: 'WebClientUrlCollectionSetting'; readonly urls: readonly string[] };

type UserSettingSource = (a: AutodiscoverAnswer, ctx: RenderContext) => SettingValue | undefined;

const str =
  (f: (a: AutodiscoverAnswer, ctx: RenderContext) => string | undefined): UserSettingSource =>
  (a, ctx) => {
    const value = f(a, ctx);
    return value === undefined ? undefined : { type: 'StringSetting', value };
  };

const webClient =
  (f: (a: AutodiscoverAnswer) => string | undefined): UserSettingSource =>
  (a) => {
    const url = f(a);
    return url === undefined ? undefined : { type: 'WebClientUrlCollectionSetting', urls: [url] };
  };

const bool = (b: boolean): string => (b ? 'True' : 'False');

/** The user settings coexist answers; a name not here but in `knownUserSettings` is `SettingIsNotAvailable`. */
const userSettingSources: ReadonlyMap<string, UserSettingSource> = new Map<string, UserSettingSource>([
  ['UserDisplayName', str((a) => a.displayName)],
  ['UserDN', str((a) => a.legacyDn)],
  ['UserDeploymentId', str((_, ctx) => deploymentId(ctx.organization))],
  ['AutoDiscoverSMTPAddress', str((a) => a.address)],
  ['MailboxDN', str((a, ctx) => mdbDn(a, ctx.organization))],
  ['InternalMailboxServer', str((a) => rpcServer(a))],
  ['InternalRpcClientServer', str((a) => rpcServer(a))],
  ['InternalMailboxServerDN', str((a, ctx) => serverDn(a, ctx.organization))],
  ['ExternalMailboxServer', str((a) => hostOf(a.external.rpc))],
  [
    'ExternalMailboxServerRequiresSSL',
    str((a) => (a.external.rpc ? bool(a.external.rpc.startsWith('https:')) : undefined)),
  ],
  // coexist takes Basic only at the front door (protocol-facts §5.3); EXPR says the same.
  ['ExternalMailboxServerAuthenticationMethods', str((a) => (a.external.rpc ? 'Basic' : undefined))],
  ['ActiveDirectoryServer', str((_, ctx) => ctx.activeDirectoryServer)],
  ['InternalEwsUrl', str((a) => a.internal.ews)],
  ['ExternalEwsUrl', str((a) => a.external.ews)],
  // The EWS a client reaches at ExternalEwsUrl speaks the mailbox's version (the front end proxies, EWS-2).
  ['ExternalEwsVersion', str((a) => (a.external.ews ? casVersion(a.mailboxVersion) : undefined))],
  ['EwsSupportedSchemas', str((a) => ewsSupportedSchemas(a.mailboxVersion))],
  ['CasVersion', str((_, ctx) => casVersion(ctx.answering.version))],
  ['InternalOABUrl', str((a) => a.internal.oab)],
  ['ExternalOABUrl', str((a) => a.external.oab)],
  ['InternalWebClientUrls', webClient((a) => a.internal.owa)],
  ['ExternalWebClientUrls', webClient((a) => a.external.owa)],
  ['InternalEcpUrl', str((a) => a.internal.ecp)],
  ['ExternalEcpUrl', str((a) => a.external.ecp)],
  // Affinity grouping for EWS subscriptions: mailboxes described by the same CAS group together.
  ['GroupingInformation', str((a) => a.describes)],
  [
    'MapiHttpEnabled',
    str((a) => bool(a.mailboxVersion >= 2013 && (a.internal.mapi ?? a.external.mapi) !== undefined)),
  ],
  ['UserMSOnline', str(() => 'False')],
  ['CrossOrganizationSharingEnabled', str(() => 'False')],
]);

/** Every user setting name Exchange defines (ews-javascript-api UserSettingName, exchangelib SETTINGS_MAP): unknown ones are `InvalidSetting`. */
const knownUserSettings: ReadonlySet<string> = new Set([
  ...userSettingSources.keys(),
  ...`InternalEcpVoicemailUrl InternalEcpEmailSubscriptionsUrl InternalEcpTextMessagingUrl InternalEcpDeliveryReportUrl
  InternalEcpRetentionPolicyTagsUrl InternalEcpPublishingUrl InternalEcpPhotoUrl InternalEcpConnectUrl
  InternalEcpTeamMailboxUrl InternalEcpTeamMailboxCreatingUrl InternalEcpTeamMailboxEditingUrl
  InternalEcpTeamMailboxHidingUrl InternalEcpExtensionInstallationUrl InternalEmwsUrl InternalPhotosUrl InternalUMUrl
  PublicFolderServer EcpVoicemailUrlFragment EcpEmailSubscriptionsUrlFragment EcpTextMessagingUrlFragment
  EcpDeliveryReportUrlFragment EcpRetentionPolicyTagsUrlFragment EcpPublishingUrlFragment EcpPhotoUrlFragment
  EcpConnectUrlFragment EcpTeamMailboxUrlFragment EcpTeamMailboxCreatingUrlFragment EcpTeamMailboxEditingUrlFragment
  EcpExtensionInstallationUrlFragment ExternalEcpVoicemailUrl ExternalEcpEmailSubscriptionsUrl
  ExternalEcpTextMessagingUrl ExternalEcpDeliveryReportUrl ExternalEcpRetentionPolicyTagsUrl ExternalEcpPublishingUrl
  ExternalEcpPhotoUrl ExternalEcpConnectUrl ExternalEcpTeamMailboxUrl ExternalEcpTeamMailboxCreatingUrl
  ExternalEcpTeamMailboxEditingUrl ExternalEcpTeamMailboxHidingUrl ExternalEcpExtensionInstallationUrl ExternalEmwsUrl
  ExternalPhotosUrl ExternalUMUrl AlternateMailboxes InternalPop3Connections ExternalPop3Connections
  InternalImap4Connections ExternalImap4Connections InternalSmtpConnections ExternalSmtpConnections
  InternalServerExclusiveConnect ExternalServerExclusiveConnect MobileMailboxPolicy MobileMailboxPolicyInterop
  DocumentSharingLocations InternalMailboxServerAuthenticationMethods MailboxVersion SPMySiteHostURL
  SiteMailboxCreationURL InternalRpcHttpServer InternalRpcHttpConnectivityRequiresSsl InternalRpcHttpAuthenticationMethod
  ExchangeRpcUrl ShowGalAsDefaultView InteropExternalEwsUrl InteropExternalEwsVersion PublicFolderInformation
  RedirectUrl EwsPartnerUrl CertPrincipalName`.split(/\s+/),
]);

const domainSettingNames = ['ExternalEwsUrl', 'ExternalEwsVersion'];

const actionBase = 'http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/';

/** The SOAP envelope: `a:Action …Response` and `h:ServerVersionInfo` of the answering server in the header. */
function soapReply(
  soapVersion: '1.1' | '1.2',
  operation: 'GetUserSettings' | 'GetDomainSettings',
  answering: AnsweringServer,
  response: string,
): AutodiscoverReply {
  const b = builds[answering.version];
  const header =
    `<s:Header><a:Action s:mustUnderstand="1">${actionBase}${operation}Response</a:Action>` +
    `<h:ServerVersionInfo xmlns:h="${ns.autodiscover}" xmlns:i="${ns.xsi}">` +
    `<h:MajorVersion>${b.major}</h:MajorVersion><h:MinorVersion>${b.minor}</h:MinorVersion>` +
    `<h:MajorBuildNumber>${b.build}</h:MajorBuildNumber><h:MinorBuildNumber>${b.revision}</h:MinorBuildNumber>` +
    `<h:Version>${b.api}</h:Version></h:ServerVersionInfo></s:Header>`;
  const envelope = soapVersion === '1.2' ? ns.soap12 : ns.soap11;
  return {
    status: 200,
    contentType: soapVersion === '1.2' ? 'application/soap+xml; charset=utf-8' : 'text/xml; charset=utf-8',
    body:
      `${xmlDeclaration}<s:Envelope xmlns:s="${envelope}" xmlns:a="${ns.wsa}">${header}<s:Body>` +
      `<${operation}ResponseMessage xmlns="${ns.autodiscover}"><Response xmlns:i="${ns.xsi}">${response}</Response>` +
      `</${operation}ResponseMessage></s:Body></s:Envelope>`,
  };
}

const noError = '<ErrorCode>NoError</ErrorCode><ErrorMessage />';

/** A Response-level error: no per-user or per-domain responses (exchangelib and ews-js both raise on it). */
function responseError(
  soapVersion: '1.1' | '1.2',
  operation: 'GetUserSettings' | 'GetDomainSettings',
  answering: AnsweringServer,
  code: string,
  message: string,
): AutodiscoverReply {
  const list = operation === 'GetUserSettings' ? 'UserResponses' : 'DomainResponses';
  return soapReply(
    soapVersion,
    operation,
    answering,
    `<ErrorCode>${code}</ErrorCode>${el('ErrorMessage', message)}<${list} />`,
  );
}

type UserOutcome = AutodiscoverAnswer | 'unknown' | 'not-served';

function settingError(kind: 'User' | 'Domain', code: string, name: string, message: string): string {
  return `<${kind}SettingError><ErrorCode>${code}</ErrorCode>${el('ErrorMessage', message)}${el('SettingName', name)}</${kind}SettingError>`;
}

/** A `UserResponse` for a user without settings: InvalidUser, or InvalidDomain for a domain not served (§4.3). */
function userErrorResponse(address: string, who: 'unknown' | 'not-served'): string {
  const code = who === 'unknown' ? 'InvalidUser' : 'InvalidDomain';
  const message =
    who === 'unknown' ? `Invalid user: '${address}'` : `The domain of '${address}' is not served here.`;
  return (
    `<UserResponse><ErrorCode>${code}</ErrorCode>${el('ErrorMessage', message)}` +
    `<RedirectTarget i:nil="true" /><UserSettingErrors /><UserSettings /></UserResponse>`
  );
}

/** One `UserResponse`: exactly the requested settings that have a value; the others in `UserSettingErrors` (§4.3). */
function userResponse(
  address: string,
  who: UserOutcome,
  settings: readonly string[],
  ctx: RenderContext,
): string {
  if (who === 'unknown' || who === 'not-served') return userErrorResponse(address, who);
  let values = '';
  let errors = '';
  for (const name of settings) {
    const source = userSettingSources.get(name);
    const value = source?.(who, ctx);
    if (value === undefined) {
      errors += knownUserSettings.has(name)
        ? settingError('User', 'SettingIsNotAvailable', name, `User setting '${name}' is not available.`)
        : settingError(
            'User',
            'InvalidSetting',
            name,
            `The requested setting '${name}' is not a user setting.`,
          );
    } else if (value.type === 'StringSetting') {
      values += `<UserSetting i:type="StringSetting">${el('Name', name)}${el('Value', value.value)}</UserSetting>`;
    } else {
      const urls = value.urls
        .map(
          (url) =>
            `<WebClientUrl><AuthenticationMethods>Fba</AuthenticationMethods>${el('Url', url)}</WebClientUrl>`,
        )
        .join('');
      values += `<UserSetting i:type="WebClientUrlCollectionSetting">${el('Name', name)}<WebClientUrls>${urls}</WebClientUrls></UserSetting>`;
    }
  }
  return (
    `<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage>` +
    `<RedirectTarget i:nil="true" /><UserSettingErrors>${errors}</UserSettingErrors>` +
    `<UserSettings>${values}</UserSettings></UserResponse>`
  );
}

/** GetUserSettings: one UserResponse per Mailbox, in request order; the first is the routed mailbox (`first`). */
function userSettings(
  request: GetUserSettingsRequest,
  first: UserOutcome,
  ctx: RenderContext,
): AutodiscoverReply {
  const { soapVersion } = request;
  if (request.mailboxes.length === 0)
    return responseError(
      soapVersion,
      'GetUserSettings',
      ctx.answering,
      'InvalidRequest',
      'No Mailbox was named.',
    );
  if (request.settings.length === 0)
    return responseError(
      soapVersion,
      'GetUserSettings',
      ctx.answering,
      'InvalidRequest',
      'No setting was requested.',
    );
  const firstAddress = request.mailboxes[0]?.toLowerCase();
  const routed = typeof first === 'string' ? undefined : first.address.toLowerCase();
  const responses = request.mailboxes.map((mailbox, i) => {
    const key = mailbox.toLowerCase();
    const who: UserOutcome =
      i === 0 || key === firstAddress || key === routed
        ? first
        : isSmtpAddress(mailbox)
          ? ctx.answerFor(mailbox)
          : 'unknown';
    return userResponse(mailbox, who, request.settings, ctx);
  });
  return soapReply(
    soapVersion,
    'GetUserSettings',
    ctx.answering,
    `${noError}<UserResponses>${responses.join('')}</UserResponses>`,
  );
}

/** GetDomainSettings: ExternalEwsUrl / ExternalEwsVersion for an accepted domain, InvalidDomain otherwise. */
function domainSettings(request: GetDomainSettingsRequest, ctx: ErrorContext): AutodiscoverReply {
  const { soapVersion } = request;
  if (request.settings.length === 0)
    return responseError(
      soapVersion,
      'GetDomainSettings',
      ctx.answering,
      'InvalidRequest',
      'No setting was requested.',
    );
  const accepted = new Set((ctx.domains ?? []).map((d) => d.toLowerCase()));
  const values: Readonly<Record<string, string | undefined>> = {
    ExternalEwsUrl: ctx.externalEwsUrl,
    ExternalEwsVersion: ctx.externalEwsUrl ? casVersion(ctx.answering.version) : undefined,
  };
  const responses = request.domains.map((domain) => {
    if (!accepted.has(domain.toLowerCase()))
      return (
        `<DomainResponse><ErrorCode>InvalidDomain</ErrorCode>${el('ErrorMessage', `The domain '${domain}' is not served here.`)}` +
        `<RedirectTarget i:nil="true" /><DomainSettingErrors />${domainSettingsList('')}</DomainResponse>`
      );
    let settings = '';
    let errors = '';
    for (const name of request.settings) {
      const value = domainSettingNames.includes(name) ? values[name] : undefined;
      if (value !== undefined)
        settings += `<DomainSetting i:type="DomainStringSetting">${el('Name', name)}${el('Value', value)}</DomainSetting>`;
      else if (domainSettingNames.includes(name))
        errors += settingError(
          'Domain',
          'SettingIsNotAvailable',
          name,
          `Domain setting '${name}' is not available.`,
        );
      else
        errors += settingError(
          'Domain',
          'InvalidSetting',
          name,
          `The requested setting '${name}' is not a domain setting.`,
        );
    }
    return (
      `<DomainResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage>` +
      `<RedirectTarget i:nil="true" /><DomainSettingErrors>${errors}</DomainSettingErrors>` +
      `${domainSettingsList(settings)}</DomainResponse>`
    );
  });
  return soapReply(
    soapVersion,
    'GetDomainSettings',
    ctx.answering,
    `${noError}<DomainResponses>${responses.join('')}</DomainResponses>`,
  );
}

/**
 * `DomainSettings`, never as an empty element: ews-javascript-api 0.15.3 reads an empty one as null and then
 * throws a TypeError (GetDomainSettingsResponse.LoadDomainSettingsFromXmlJsObject has no null check), failing
 * the whole call; insignificant whitespace reads as an empty collection.
 */
const domainSettingsList = (settings: string): string =>
  `<DomainSettings>${settings || ' '}</DomainSettings>`;

const soapCodes: Readonly<Record<AutodiscoverError, { code: string; message: string }>> = {
  'unknown-user': { code: 'InvalidUser', message: 'The user is not known.' },
  'not-served': { code: 'InvalidDomain', message: 'The domain is not served here.' },
  'invalid-request': { code: 'InvalidRequest', message: 'The request is invalid.' },
  'schema-unavailable': { code: 'InvalidRequest', message: 'The request is invalid.' },
  'server-busy': { code: 'ServerBusy', message: 'The server is busy. Try again later.' },
  internal: { code: 'InternalServerError', message: 'The server could not build the answer.' },
};

/**
 * SOAP errors: an unknown first user (or its domain) is a UserResponse-level InvalidUser / InvalidDomain
 * (with a full context the other users are still answered); everything else is Response-level.
 */
function soapError(
  request: AutodiscoverRequest | { readonly schema: AutodiscoverDialect },
  error: AutodiscoverError,
  ctx: ErrorContext,
): AutodiscoverReply {
  const soapVersion = 'soapVersion' in request ? request.soapVersion : '1.1';
  const operation = 'operation' in request ? request.operation : 'GetUserSettings';
  if ((error === 'unknown-user' || error === 'not-served') && 'operation' in request) {
    const outcome = error === 'unknown-user' ? 'unknown' : 'not-served';
    if (request.operation === 'GetDomainSettings') return domainSettings(request, ctx);
    const full = fullContext(ctx);
    if (full) return userSettings(request, outcome, full);
    if (request.mailboxes.length > 0) {
      const responses = request.mailboxes.map((m) => userErrorResponse(m, outcome));
      return soapReply(
        soapVersion,
        operation,
        ctx.answering,
        `${noError}<UserResponses>${responses.join('')}</UserResponses>`,
      );
    }
  }
  const e = soapCodes[error];
  return responseError(soapVersion, operation, ctx.answering, e.code, e.message);
}

function fullContext(ctx: ErrorContext): RenderContext | undefined {
  const { answerFor, organization, domains } = ctx;
  return answerFor && organization !== undefined && domains
    ? { ...ctx, answerFor, organization, domains }
    : undefined;
}

// ---- JSON (§4.4) ----

const jsonType = 'application/json; charset=utf-8';

const jsonReply = (status: number, value: unknown): AutodiscoverReply => ({
  status,
  contentType: jsonType,
  body: JSON.stringify(value),
});

/** Autodiscover v2: `{Protocol, Url}` for ActiveSync, EWS or AutodiscoverV1, case-insensitively (§4.4). */
function json(protocol: string | undefined, a: AutodiscoverAnswer, ctx: RenderContext): AutodiscoverReply {
  const p = (protocol ?? '').toLowerCase();
  const ewsHost = hostOf(a.external.ews);
  const [name, url] =
    p === 'activesync'
      ? ['ActiveSync', a.external.activesync]
      : p === 'ews'
        ? ['EWS', a.external.ews]
        : p === 'autodiscoverv1'
          ? [
              'AutodiscoverV1',
              ctx.autodiscoverUrl ??
                (ewsHost === undefined ? undefined : `https://${ewsHost}/Autodiscover/Autodiscover.xml`),
            ]
          : [undefined, undefined];
  if (name === undefined)
    return jsonReply(400, {
      ErrorCode: 'InvalidProtocol',
      ErrorMessage: `The given protocol value '${protocol ?? ''}' is invalid. Supported values are 'ActiveSync,Ews,AutodiscoverV1'.`,
    });
  if (url === undefined)
    return jsonReply(404, {
      ErrorCode: 'SettingIsNotAvailable',
      ErrorMessage: `No external ${name} URL is configured for the user.`,
    });
  return jsonReply(200, { Protocol: name, Url: url });
}

/**
 * JSON errors: the `{ErrorCode, ErrorMessage}` body of §4.4's InvalidProtocol with the SOAP ErrorCode names
 * (§4.3); an unknown user or domain is 404, as coexist's CX_ROUTE_UNKNOWN_MAILBOX (**I**: Exchange's own v2
 * answer for unknown users is not documented).
 */
function jsonError(error: AutodiscoverError): AutodiscoverReply {
  const e = soapCodes[error];
  const status =
    error === 'unknown-user' || error === 'not-served'
      ? 404
      : error === 'server-busy'
        ? 503
        : error === 'internal'
          ? 500
          : 400;
  return jsonReply(status, { ErrorCode: e.code, ErrorMessage: e.message });
}

// ---- redirects ----

/** Where Autodiscover sends a user whose domain lives elsewhere (the estate's remoteDomains). */
export type AutodiscoverRedirect =
  { readonly kind: 'url'; readonly url: string } | { readonly kind: 'address'; readonly address: string };

/**
 * The redirect of each dialect (MS-OXDSCLI, protocol-facts §4.2 and §4.3): POX outlook `Action` redirectUrl
 * or redirectAddr; mobilesync `Action/Redirect` with the new address, and for a new URL the HTTP 302 the
 * spec prefers; SOAP a `UserResponse` with ErrorCode RedirectUrl / RedirectAddress and the `RedirectTarget`;
 * JSON has no redirect form, so it answers like a domain not served.
 */
export function renderAutodiscoverRedirect(
  request: AutodiscoverRequest,
  to: AutodiscoverRedirect,
  ctx: ErrorContext,
): AutodiscoverReply {
  switch (request.schema) {
    case 'outlook': {
      const action =
        to.kind === 'url'
          ? `<Action>redirectUrl</Action>${el('RedirectUrl', to.url)}`
          : `<Action>redirectAddr</Action>${el('RedirectAddr', to.address)}`;
      return xml(
        200,
        `<Autodiscover xmlns="${ns.response}"><Response xmlns="${ns.outlook}"><Account><AccountType>email</AccountType>${action}</Account></Response></Autodiscover>`,
      );
    }
    case 'mobilesync':
      if (to.kind === 'url')
        return { status: 302, contentType: 'text/plain; charset=utf-8', body: '', location: to.url };
      return xml(
        200,
        `<Autodiscover xmlns="${ns.response}"><Response xmlns="${ns.mobile}"><Culture>en:us</Culture><Action>${el('Redirect', to.address)}</Action></Response></Autodiscover>`,
      );
    case 'soap': {
      if (request.operation !== 'GetUserSettings') return renderAutodiscoverError(request, 'not-served', ctx);
      const code = to.kind === 'url' ? 'RedirectUrl' : 'RedirectAddress';
      const target = to.kind === 'url' ? to.url : to.address;
      const responses = request.mailboxes
        .map(
          () =>
            `<UserResponse><ErrorCode>${code}</ErrorCode>${el('ErrorMessage', `Redirect to ${target}.`)}` +
            `${el('RedirectTarget', target)}<UserSettingErrors /><UserSettings /></UserResponse>`,
        )
        .join('');
      return soapReply(
        request.soapVersion,
        'GetUserSettings',
        ctx.answering,
        `${noError}<UserResponses>${responses}</UserResponses>`,
      );
    }
    case 'json':
      return renderAutodiscoverError(request, 'not-served', ctx);
  }
}
