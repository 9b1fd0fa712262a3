/**
 * SOAP Autodiscover (MS-OXWSADISC, docs/protocols.md §4.3): GetUserSettings and GetDomainSettings answers, their
 * Response-, UserResponse- and setting-level errors, and the redirect responses (RedirectUrl, RedirectAddress).
 */
import type { AutodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import {
  autodiscoverSoapActionBase,
  autodiscoverSoapNs,
  soap11EnvelopeNs,
  soap12EnvelopeNs,
  wsAddressingNs,
  xmlSchemaInstanceNs,
} from '../../core/autodiscover/schemas.ts';
import type {
  AutodiscoverDialect,
  AutodiscoverRequest,
  GetDomainSettingsRequest,
  GetUserSettingsRequest,
} from '../../core/protocols/autodiscover.ts';
import { isSmtpAddress } from '../../core/protocols/request-head.ts';
import type {
  AnsweringServer,
  AutodiscoverError,
  AutodiscoverRedirect,
  AutodiscoverReply,
  ErrorContext,
  RenderContext,
} from './context.ts';
import { el, hostIn, xmlDeclaration } from './context.ts';
import {
  builds,
  casVersion,
  deploymentId,
  ewsSupportedSchemas,
  mdbDn,
  rpcServer,
  serverDn,
} from './exchange.ts';

/** The settings answer: GetUserSettings for the routed mailbox (and the others named), or GetDomainSettings. */
export function soapAnswer(
  request: GetUserSettingsRequest | GetDomainSettingsRequest,
  answer: AutodiscoverAnswer,
  ctx: RenderContext,
): AutodiscoverReply {
  return request.operation === 'GetDomainSettings'
    ? domainSettings(request, ctx)
    : userSettings(request, answer, ctx);
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
  ['ExternalMailboxServer', str((a) => hostIn(a.external.rpc))],
  [
    'ExternalMailboxServerRequiresSSL',
    str((a) => (a.external.rpc ? bool(a.external.rpc.startsWith('https:')) : undefined)),
  ],
  // coexist takes Basic only at the front door (docs/protocols.md §5.3); EXPR says the same.
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

/** The SOAP envelope: `a:Action …Response` and `h:ServerVersionInfo` of the answering server in the header. */
function soapReply(
  soapVersion: '1.1' | '1.2',
  operation: 'GetUserSettings' | 'GetDomainSettings',
  answering: AnsweringServer,
  response: string,
): AutodiscoverReply {
  const b = builds[answering.version];
  const header =
    `<s:Header><a:Action s:mustUnderstand="1">${autodiscoverSoapActionBase}${operation}Response</a:Action>` +
    `<h:ServerVersionInfo xmlns:h="${autodiscoverSoapNs}" xmlns:i="${xmlSchemaInstanceNs}">` +
    `<h:MajorVersion>${b.major}</h:MajorVersion><h:MinorVersion>${b.minor}</h:MinorVersion>` +
    `<h:MajorBuildNumber>${b.build}</h:MajorBuildNumber><h:MinorBuildNumber>${b.revision}</h:MinorBuildNumber>` +
    `<h:Version>${b.api}</h:Version></h:ServerVersionInfo></s:Header>`;
  const envelope = soapVersion === '1.2' ? soap12EnvelopeNs : soap11EnvelopeNs;
  return {
    status: 200,
    contentType: soapVersion === '1.2' ? 'application/soap+xml; charset=utf-8' : 'text/xml; charset=utf-8',
    body:
      `${xmlDeclaration}<s:Envelope xmlns:s="${envelope}" xmlns:a="${wsAddressingNs}">${header}<s:Body>` +
      `<${operation}ResponseMessage xmlns="${autodiscoverSoapNs}"><Response xmlns:i="${xmlSchemaInstanceNs}">${response}</Response>` +
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

export const soapCodes: Readonly<Record<AutodiscoverError, { code: string; message: string }>> = {
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
export function soapError(
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

/**
 * The redirect (MS-OXDSCLI, docs/protocols.md §4.3): a `UserResponse` per mailbox with ErrorCode RedirectUrl /
 * RedirectAddress and the `RedirectTarget`; GetDomainSettings answers like a domain not served.
 */
export function soapRedirect(
  request: GetUserSettingsRequest | GetDomainSettingsRequest,
  to: AutodiscoverRedirect,
  ctx: ErrorContext,
): AutodiscoverReply {
  if (request.operation !== 'GetUserSettings') return soapError(request, 'not-served', ctx);
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
