/**
 * EWS at the mailbox (docs/protocols.md §4.6). What real clients need (docs/lab.md §2 on exchangelib,
 * ews-javascript-api and DavMail): a ServerVersionInfo with a real schema name on every answer, the version
 * negotiation their probes rely on (an unknown RequestServerVersion is ErrorInvalidServerVersion, so they
 * step down), ConvertId (exchangelib's version probe, DavMail's way of learning the address), GetFolder for
 * the distinguished folders in every shape, ResolveNames and GetUserAvailability.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StoreContext } from './common.ts';
import type { ConnectingSid, ImpersonationVerdict } from '../../../dataplane/contracts.ts';
import { escapeXml } from '../../../codec/xml-escape.ts';
import { soap11EnvelopeNs, xmlSchemaInstanceNs } from '../../../core/autodiscover/schemas.ts';
import { MiB, readBody, refuse, requestHead, send, xmlType } from './common.ts';
import type { LabFolder } from './contents.ts';
import { folders } from './contents.ts';
import type { VersionProfile } from './versions.ts';
import { profiles } from './versions.ts';
import type { XmlElement } from '../../../codec/xml-read.ts';
import { readXml, xmlChild, XmlError } from '../../../codec/xml-read.ts';

const ewsMaxBody = 1 * MiB;

const messagesNs = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const typesNs = 'http://schemas.microsoft.com/exchange/services/2006/types';
const errorsNs = 'http://schemas.microsoft.com/exchange/services/2006/errors';

/** The text content of `e`, untrimmed; empty when there is no `e`. */
const text = (e: XmlElement | undefined): string => e?.text ?? '';

/** Answer one EWS request: a SOAP 1.1 envelope posted to /EWS/Exchange.asmx. */
export async function ews(req: IncomingMessage, res: ServerResponse, ctx: StoreContext): Promise<void> {
  const path = requestHead(req).path.toLowerCase();
  if (path !== '/ews/exchange.asmx') return refuse(req, res, 404, 'only /EWS/Exchange.asmx is simulated');
  if (req.method !== 'POST') return refuse(req, res, 405, 'EWS takes POST', { Allow: 'POST' });
  const body = await readBody(req, ewsMaxBody);
  if (body === undefined) return refuse(req, res, 413, `EWS bodies are capped at ${ewsMaxBody} bytes`);
  // Request-level failures are SOAP faults with HTTP 500 (docs/protocols.md §4.6 [34i][34j]).
  const failWith = (faultXml: string): void => send(res, 500, xmlType, faultXml);
  let envelope: XmlElement;
  try {
    envelope = readXml(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (err) {
    const at = err instanceof XmlError ? err : { message: 'the body is not UTF-8', line: 1, column: 1 };
    return failWith(schemaFault(at.message, at.line, at.column));
  }
  const soapBody =
    envelope.ns === soap11EnvelopeNs && envelope.local === 'Envelope'
      ? xmlChild(envelope, 'Body', soap11EnvelopeNs)
      : undefined;
  const op = soapBody?.children[0];
  if (!op)
    return failWith(schemaFault('The request is not a SOAP 1.1 envelope with an operation in its Body.'));
  const profile = profiles[ctx.version];
  // Without the header a request targets the first release of Exchange 2007, which every version serves.
  const requested = xmlChild(xmlChild(envelope, 'Header', soap11EnvelopeNs), 'RequestServerVersion', typesNs);
  if (requested) {
    const version = requested.attributes.get('Version');
    if (version === undefined) return failWith(schemaFault("The required attribute 'Version' is missing."));
    if (!profile.ewsRequestVersions.includes(version)) return failWith(invalidServerVersionFault());
  }
  const operation = op.ns === messagesNs ? ewsOperations.get(op.local) : undefined;
  if (!operation) return failWith(invalidRequestFault(op.local));
  // EWS impersonation (docs/security.md "Mailbox access"): the data plane decides; only an allowed header is
  // served, as the impersonated mailbox's owner. Every refusal is a request-level fault.
  const impersonation = xmlChild(
    xmlChild(envelope, 'Header', soap11EnvelopeNs),
    'ExchangeImpersonation',
    typesNs,
  );
  if (impersonation) {
    const target = connectingSid(impersonation);
    if ('schemaError' in target) return failWith(schemaFault(target.schemaError));
    const verdict = ctx.impersonate ? await ctx.impersonate(target) : { kind: 'no-role' as const };
    if (verdict.kind !== 'allowed') return failWith(impersonationFault(verdict.kind));
    ctx = { ...ctx, mailbox: verdict.mailbox, caller: verdict.mailbox, access: 'owner' };
  }
  const items = ctx.access === 'denied' ? mailboxItems.get(op.local)?.(op) : undefined;
  if (items !== undefined) {
    // Each item of the mailbox asked about is ErrorAccessDenied, a per-item error (docs/protocols.md §4.6).
    const denied = errorMessage(
      op.local,
      'ErrorAccessDenied',
      'Access is denied. Check credentials and try again.',
    );
    const answer = responseMessages(op.local, new Array<string>(Math.max(1, items)).fill(denied));
    if ('body' in answer) return send(res, 200, xmlType, soapEnvelope(profile, answer.body));
  }
  const answer = operation(op, ctx);
  if ('schemaError' in answer) return failWith(schemaFault(answer.schemaError));
  send(res, 200, xmlType, soapEnvelope(profile, answer.body));
}

function soapEnvelope(p: VersionProfile, body: string): string {
  const [major, minor, build, revision] = p.build;
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<s:Envelope xmlns:s="${soap11EnvelopeNs}">` +
    `<s:Header><h:ServerVersionInfo MajorVersion="${major}" MinorVersion="${minor}" ` +
    `MajorBuildNumber="${build}" MinorBuildNumber="${revision}" Version="${p.ewsSchema}" xmlns:h="${typesNs}"/></s:Header>` +
    `<s:Body xmlns:m="${messagesNs}" xmlns:t="${typesNs}">${body}</s:Body></s:Envelope>`
  );
}

/** A request-level failure: SOAP 1.1 fault, HTTP 500 (docs/protocols.md §4.6 [34i][34j]). */
function fault(code: string, faultstring: string, detail: string): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<s:Envelope xmlns:s="${soap11EnvelopeNs}"><s:Body><s:Fault>` +
    `<faultcode xmlns:a="${typesNs}">a:${code}</faultcode>` +
    `<faultstring xml:lang="en-US">${escapeXml(faultstring)}</faultstring>` +
    `<detail><e:ResponseCode xmlns:e="${errorsNs}">${code}</e:ResponseCode>${detail}</detail>` +
    '</s:Fault></s:Body></s:Envelope>'
  );
}

/** ErrorSchemaValidation, with where in the request it failed (1:1 when it is not about a position). */
function schemaFault(violation: string, line = 1, column = 1): string {
  return fault(
    'ErrorSchemaValidation',
    `The request failed schema validation: ${violation}`,
    `<e:Message xmlns:e="${errorsNs}">The request failed schema validation.</e:Message>` +
      `<t:MessageXml xmlns:t="${typesNs}"><t:LineNumber>${line}</t:LineNumber>` +
      `<t:LinePosition>${column}</t:LinePosition><t:Violation>${escapeXml(violation)}</t:Violation></t:MessageXml>`,
  );
}

function invalidRequestFault(operation: string): string {
  return fault(
    'ErrorInvalidRequest',
    'The request is invalid.',
    `<e:Message xmlns:e="${errorsNs}">${escapeXml(
      `The mailbox store simulator does not implement ${operation}; it answers ${[...ewsOperations.keys()].join(', ')}.`,
    )}</e:Message>`,
  );
}

/** A RequestServerVersion this version does not serve: clients step down to an older schema and retry. */
function invalidServerVersionFault(): string {
  const text = 'The specified server version is invalid.';
  return fault('ErrorInvalidServerVersion', text, `<e:Message xmlns:e="${errorsNs}">${text}</e:Message>`);
}

/** The forms of ConnectingSID (MS-OXWSCDATA ConnectingSIDType): exactly one of them names the account. */
const connectingSidKinds = ['PrincipalName', 'SID', 'PrimarySmtpAddress', 'SmtpAddress'] as const;

/** Whom an ExchangeImpersonation header names, or the schema violation when it names no one properly. */
function connectingSid(header: XmlElement): ConnectingSid | { readonly schemaError: string } {
  const sid = xmlChild(header, 'ConnectingSID', typesNs);
  const forms = sid?.children ?? [];
  const [form] = forms;
  const kind = connectingSidKinds.find((k) => k === form?.local);
  if (!sid || forms.length !== 1 || form?.ns !== typesNs || kind === undefined)
    return {
      schemaError: `ExchangeImpersonation needs a ConnectingSID with exactly one of ${connectingSidKinds.join(', ')}.`,
    };
  return { kind, value: text(form).trim() };
}

/** Why an impersonation was refused, as Exchange's response codes (request-level faults, HTTP 500). */
const impersonationErrors: Readonly<
  Record<Exclude<ImpersonationVerdict['kind'], 'allowed'>, readonly [code: string, text: string]>
> = {
  'no-role': ['ErrorImpersonationDenied', 'The account does not have the right to impersonate.'],
  unknown: ['ErrorNonExistentMailbox', 'The SMTP address has no mailbox associated with it.'],
  'out-of-scope': [
    'ErrorImpersonateUserDenied',
    'The account does not have permission to impersonate the requested user.',
  ],
  'not-anchor': [
    'ErrorInvalidExchangeImpersonationHeaderData',
    'The ExchangeImpersonation header names another mailbox than X-AnchorMailbox, which the request was routed on: send the impersonated mailbox in X-AnchorMailbox.',
  ],
  unavailable: ['ErrorADUnavailable', 'The directory is unavailable. Try your request again later.'],
};

function impersonationFault(kind: Exclude<ImpersonationVerdict['kind'], 'allowed'>): string {
  const [code, message] = impersonationErrors[kind];
  return fault(code, message, `<e:Message xmlns:e="${errorsNs}">${escapeXml(message)}</e:Message>`);
}

type EwsAnswer = { readonly body: string } | { readonly schemaError: string };

/** The operations the simulator answers, by the local name of the first child of `s:Body`. */
const ewsOperations = new Map<string, (op: XmlElement, ctx: StoreContext) => EwsAnswer>([
  ['GetFolder', (op, ctx) => getFolder(op, ctx)],
  ['ResolveNames', (op, ctx) => resolveNames(op, ctx)],
  ['ConvertId', (op, ctx) => convertId(op, ctx)],
  ['GetUserAvailabilityRequest', (op) => getUserAvailability(op)],
]);

/**
 * The operations that open the mailbox's contents, with how many items a request names: a caller who may
 * not open the mailbox gets ErrorAccessDenied for each. ResolveNames and GetUserAvailability answer from
 * the directory and free/busy, which Exchange gives every signed-in user (docs/security.md "Mailbox access").
 */
const mailboxItems = new Map<string, (op: XmlElement) => number>([
  ['GetFolder', (op) => xmlChild(op, 'FolderIds', messagesNs)?.children.length ?? 0],
  ['ConvertId', (op) => xmlChild(op, 'SourceIds', messagesNs)?.children.length ?? 0],
]);

/** A per-item error: HTTP 200, ResponseClass="Error" (docs/protocols.md §4.6 [35h]). */
const errorMessage = (operation: string, code: string, text: string): string =>
  `<m:${operation}ResponseMessage ResponseClass="Error"><m:MessageText>${escapeXml(text)}</m:MessageText>` +
  `<m:ResponseCode>${code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:${operation}ResponseMessage>`;

/** A per-item success: HTTP 200, ResponseClass="Success", NoError, then what was asked for. */
const successMessage = (operation: string, content: string): string =>
  `<m:${operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>` +
  `${content}</m:${operation}ResponseMessage>`;

/** An operation's answer: one response message per item asked about. */
const responseMessages = (operation: string, messages: readonly string[]): EwsAnswer => ({
  body: `<m:${operation}Response><m:ResponseMessages>${messages.join('')}</m:ResponseMessages></m:${operation}Response>`,
});

interface EwsFolder {
  readonly distinguished: string;
  readonly name: string;
  readonly element: 'Folder' | 'CalendarFolder' | 'ContactsFolder';
  readonly folderClass?: string;
  /** The distinguished id of the parent; the root has none. */
  readonly parent?: string;
  readonly total: number;
  readonly unread: number;
  readonly children: number;
}

/** How a folder holding each class of items is written: its element and FolderClass. */
const folderKinds: Readonly<
  Record<LabFolder['itemClass'], Required<Pick<EwsFolder, 'element' | 'folderClass'>>>
> = {
  Email: { element: 'Folder', folderClass: 'IPF.Note' },
  Calendar: { element: 'CalendarFolder', folderClass: 'IPF.Appointment' },
  Contacts: { element: 'ContactsFolder', folderClass: 'IPF.Contact' },
};

/** The mailbox's folder tree: the root, the top of the information store under it, the folders under that. */
function ewsFolders(): EwsFolder[] {
  return [
    { distinguished: 'root', name: 'Root', element: 'Folder', total: 0, unread: 0, children: 1 },
    {
      distinguished: 'msgfolderroot',
      name: 'Top of Information Store',
      element: 'Folder',
      parent: 'root',
      total: 0,
      unread: 0,
      children: folders.length,
    },
    ...folders.map((d): EwsFolder => {
      const total = d.distinguished === 'inbox' ? 2 : 0;
      return {
        distinguished: d.distinguished,
        name: d.name,
        ...folderKinds[d.itemClass],
        parent: 'msgfolderroot',
        total,
        unread: total,
        children: 0,
      };
    }),
  ];
}

/**
 * EWS ids are opaque to clients; the simulator's carry server, mailbox and folder so they read back, one
 * encoding per ConvertId format (EntryId and HexEntryId are the same bytes, in base64 and in hex).
 */
const idFormats = ['EwsId', 'EwsLegacyId', 'EntryId', 'HexEntryId', 'StoreId', 'OwaId'] as const;
type IdFormat = (typeof idFormats)[number];
const idPrefix: Readonly<Record<IdFormat, string>> = {
  EwsId: 'coexist-lab',
  EwsLegacyId: 'coexist-lab-legacy',
  EntryId: 'coexist-lab-entry',
  HexEntryId: 'coexist-lab-entry',
  StoreId: 'coexist-lab-store',
  OwaId: 'coexist-lab-owa',
};
const isIdFormat = (f: string | undefined): f is IdFormat => idFormats.includes(f as IdFormat);

/** What a lab id names. */
interface LabId {
  readonly server: string;
  readonly mailbox: string;
  readonly folder: string;
}

function encodeId(id: LabId, format: IdFormat): string {
  const bytes = Buffer.from(`${idPrefix[format]}:${id.server}:${id.mailbox.toLowerCase()}:${id.folder}`);
  return format === 'HexEntryId' ? bytes.toString('hex').toUpperCase() : bytes.toString('base64');
}

function decodeId(text: string, format: IdFormat): LabId | undefined {
  const valid = format === 'HexEntryId' ? /^(?:[0-9A-Fa-f]{2})+$/ : /^[A-Za-z0-9+/]+={0,2}$/;
  if (!valid.test(text)) return undefined;
  const plain = Buffer.from(text, format === 'HexEntryId' ? 'hex' : 'base64').toString('utf8');
  const m = /^([a-z-]+):([^:]+):([^:]+@[^:]+):([a-z]+)$/.exec(plain);
  if (!m || m[1] !== idPrefix[format]) return undefined;
  return { server: m[2] ?? '', mailbox: m[3] ?? '', folder: m[4] ?? '' };
}

/** Does `id` name something of this mailbox on this mailbox server? */
const isOwnId = (id: LabId | undefined, ctx: StoreContext): id is LabId =>
  id?.server === ctx.serverName && id.mailbox === ctx.mailbox.address.toLowerCase();

const ewsFolderId = (ctx: StoreContext, distinguished: string): string =>
  encodeId({ server: ctx.serverName, mailbox: ctx.mailbox.address, folder: distinguished }, 'EwsId');

/** Folder properties in the order of the schema's BaseFolderType, FolderType and the calendar/contacts types. */
const folderProperties = [
  'FolderId',
  'ParentFolderId',
  'FolderClass',
  'DisplayName',
  'TotalCount',
  'ChildFolderCount',
  'EffectiveRights',
  'SharingEffectiveRights',
  'PermissionSet',
  'UnreadCount',
] as const;
type FolderProperty = (typeof folderProperties)[number];

/** What each BaseShape returns (AllProperties: everything but the permissions, as Exchange does). */
const folderShapes: Readonly<Record<string, readonly FolderProperty[]>> = {
  IdOnly: ['FolderId'],
  Default: ['FolderId', 'DisplayName', 'TotalCount', 'ChildFolderCount', 'UnreadCount'],
  AllProperties: folderProperties.filter((p) => p !== 'PermissionSet'),
};

function getFolder(op: XmlElement, ctx: StoreContext): EwsAnswer {
  const shape = xmlChild(op, 'FolderShape', messagesNs);
  const base = text(xmlChild(shape, 'BaseShape', typesNs));
  const baseProperties = folderShapes[base];
  if (!baseProperties) return { schemaError: `BaseShape '${base}' is not IdOnly, Default or AllProperties.` };
  const wanted = new Set<FolderProperty>(baseProperties);
  // AdditionalProperties adds folder:* FieldURIs; other property paths are accepted and not simulated.
  for (const uri of xmlChild(shape, 'AdditionalProperties', typesNs)?.children ?? []) {
    const name =
      uri.local === 'FieldURI' ? /^folder:(\w+)$/.exec(uri.attributes.get('FieldURI') ?? '')?.[1] : '';
    const known = folderProperties.find((p) => p === name);
    if (known) wanted.add(known);
  }
  const ids = xmlChild(op, 'FolderIds', messagesNs);
  if (!ids || ids.children.length === 0) return { schemaError: 'GetFolder needs FolderIds.' };
  const known = ewsFolders();
  const messages = ids.children.map((id) => {
    let distinguished: string | undefined;
    if (id.local === 'DistinguishedFolderId') distinguished = id.attributes.get('Id');
    else {
      const lab = decodeId(id.attributes.get('Id') ?? '', 'EwsId');
      if (isOwnId(lab, ctx)) distinguished = lab.folder;
    }
    const f = known.find((k) => k.distinguished === distinguished);
    if (!f)
      return errorMessage(
        'GetFolder',
        'ErrorFolderNotFound',
        'The specified folder could not be found in the store.',
      );
    const props = folderProperties.filter((p) => wanted.has(p)).map((p) => folderProperty(p, f, ctx));
    return successMessage(
      'GetFolder',
      `<m:Folders><t:${f.element}>${props.join('')}</t:${f.element}></m:Folders>`,
    );
  });
  return responseMessages('GetFolder', messages);
}

/** One property of a folder as the schema writes it; '' when the folder has no such property. */
function folderProperty(p: FolderProperty, f: EwsFolder, ctx: StoreContext): string {
  const changeKey = 'AQAAABYAAAA=';
  switch (p) {
    case 'FolderId':
      return `<t:FolderId Id="${ewsFolderId(ctx, f.distinguished)}" ChangeKey="${changeKey}"/>`;
    case 'ParentFolderId':
      return f.parent === undefined
        ? ''
        : `<t:ParentFolderId Id="${ewsFolderId(ctx, f.parent)}" ChangeKey="${changeKey}"/>`;
    case 'FolderClass':
      return f.folderClass === undefined ? '' : `<t:FolderClass>${f.folderClass}</t:FolderClass>`;
    case 'DisplayName':
      return `<t:DisplayName>${escapeXml(f.name)}</t:DisplayName>`;
    case 'TotalCount':
      return `<t:TotalCount>${f.total}</t:TotalCount>`;
    case 'ChildFolderCount':
      return `<t:ChildFolderCount>${f.children}</t:ChildFolderCount>`;
    case 'EffectiveRights': {
      // The owner's rights; ViewPrivateItems exists from Exchange 2010 on.
      const rights = ['CreateAssociated', 'CreateContents', 'CreateHierarchy', 'Delete', 'Modify', 'Read'];
      if (ctx.version >= 2010) rights.push('ViewPrivateItems');
      return `<t:EffectiveRights>${rights.map((r) => `<t:${r}>true</t:${r}>`).join('')}</t:EffectiveRights>`;
    }
    case 'SharingEffectiveRights':
      // Calendar and contacts folders only, from Exchange 2010 on.
      return f.element === 'Folder' || ctx.version < 2010
        ? ''
        : '<t:SharingEffectiveRights>FullDetails</t:SharingEffectiveRights>';
    case 'PermissionSet':
      return permissionSet(f);
    case 'UnreadCount':
      // UnreadCount belongs to FolderType (mail folders), not to calendar or contacts folders.
      return f.element === 'Folder' ? `<t:UnreadCount>${f.unread}</t:UnreadCount>` : '';
  }
}

/** The permissions of a new mailbox's folder: Default and Anonymous have none (the owner is implicit). */
function permissionSet(f: EwsFolder): string {
  const calendar = f.element === 'CalendarFolder';
  const entry = (who: string): string =>
    (calendar ? '<t:CalendarPermission>' : '<t:Permission>') +
    `<t:UserId><t:DistinguishedUser>${who}</t:DistinguishedUser></t:UserId>` +
    '<t:CanCreateItems>false</t:CanCreateItems><t:CanCreateSubFolders>false</t:CanCreateSubFolders>' +
    '<t:IsFolderOwner>false</t:IsFolderOwner><t:IsFolderVisible>false</t:IsFolderVisible>' +
    '<t:IsFolderContact>false</t:IsFolderContact><t:EditItems>None</t:EditItems><t:DeleteItems>None</t:DeleteItems>' +
    '<t:ReadItems>None</t:ReadItems>' +
    (calendar
      ? '<t:CalendarPermissionLevel>None</t:CalendarPermissionLevel></t:CalendarPermission>'
      : '<t:PermissionLevel>None</t:PermissionLevel></t:Permission>');
  const list = calendar ? 'CalendarPermissions' : 'Permissions';
  return `<t:PermissionSet><t:${list}>${entry('Default')}${entry('Anonymous')}</t:${list}></t:PermissionSet>`;
}

/**
 * ResolveNames: the mailbox's own entry when the text starts its address or a word of its name; with
 * ReturnFullContactData="true" the directory contact comes along.
 */
function resolveNames(op: XmlElement, ctx: StoreContext): EwsAnswer {
  const entry = text(xmlChild(op, 'UnresolvedEntry', messagesNs)).trim();
  if (entry === '') return { schemaError: 'ResolveNames needs a non-empty UnresolvedEntry.' };
  const wanted = entry.replace(/^smtp:/i, '').toLowerCase();
  const { address, displayName } = ctx.mailbox;
  const words = [address.toLowerCase(), ...displayName.toLowerCase().split(/\s+/), displayName.toLowerCase()];
  const contact =
    op.attributes.get('ReturnFullContactData') === 'true'
      ? `<t:Contact><t:DisplayName>${escapeXml(displayName)}</t:DisplayName>` +
        `<t:EmailAddresses><t:Entry Key="EmailAddress1">SMTP:${escapeXml(address)}</t:Entry></t:EmailAddresses>` +
        '<t:ContactSource>ActiveDirectory</t:ContactSource></t:Contact>'
      : '';
  const message = words.some((w) => w.startsWith(wanted))
    ? successMessage(
        'ResolveNames',
        '<m:ResolutionSet TotalItemsInView="1" IncludesLastItemInRange="true"><t:Resolution><t:Mailbox>' +
          `<t:Name>${escapeXml(displayName)}</t:Name><t:EmailAddress>${escapeXml(address)}</t:EmailAddress>` +
          `<t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>${contact}` +
          '</t:Resolution></m:ResolutionSet>',
      )
    : errorMessage('ResolveNames', 'ErrorNameResolutionNoResults', 'No results were found.');
  return responseMessages('ResolveNames', [message]);
}

/**
 * ConvertId: a lab id from one format to another, one message per source id. The answer's Mailbox is the
 * mailbox's primary address whatever the request said (DavMail learns the address this way); an id that is
 * not one of this mailbox server's is ErrorInvalidIdMalformed (exchangelib's version probe sends "DUMMY").
 */
function convertId(op: XmlElement, ctx: StoreContext): EwsAnswer {
  const destination = op.attributes.get('DestinationFormat');
  if (!isIdFormat(destination))
    return { schemaError: `DestinationFormat '${destination ?? ''}' is not an IdFormatType value.` };
  const sources = xmlChild(op, 'SourceIds', messagesNs)?.children ?? [];
  if (sources.length === 0) return { schemaError: 'ConvertId needs SourceIds.' };
  const messages: string[] = [];
  for (const source of sources) {
    const format = source.attributes.get('Format');
    if (!isIdFormat(format)) return { schemaError: `Format '${format ?? ''}' is not an IdFormatType value.` };
    const id =
      source.local === 'AlternateId' ? decodeId(source.attributes.get('Id') ?? '', format) : undefined;
    if (!isOwnId(id, ctx)) {
      messages.push(errorMessage('ConvertId', 'ErrorInvalidIdMalformed', 'Id is malformed.'));
      continue;
    }
    messages.push(
      successMessage(
        'ConvertId',
        `<m:AlternateId xmlns:xsi="${xmlSchemaInstanceNs}" xsi:type="t:AlternateIdType" Format="${destination}" ` +
          `Id="${encodeId(id, destination)}" Mailbox="${escapeXml(ctx.mailbox.address)}"/>`,
      ),
    );
  }
  return responseMessages('ConvertId', messages);
}

/** GetUserAvailability: one empty (all free) FreeBusy answer per mailbox asked about. */
function getUserAvailability(op: XmlElement): EwsAnswer {
  const mailboxes =
    xmlChild(op, 'MailboxDataArray', messagesNs)?.children.filter((c) => c.local === 'MailboxData') ?? [];
  if (mailboxes.length === 0)
    return { schemaError: 'GetUserAvailabilityRequest needs MailboxDataArray/MailboxData.' };
  const view =
    text(xmlChild(xmlChild(op, 'FreeBusyViewOptions', typesNs), 'RequestedView', typesNs)) || 'FreeBusy';
  const one =
    '<m:FreeBusyResponse><m:ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>' +
    `</m:ResponseMessage><m:FreeBusyView><t:FreeBusyViewType>${escapeXml(view)}</t:FreeBusyViewType>` +
    '</m:FreeBusyView></m:FreeBusyResponse>';
  return {
    body: `<m:GetUserAvailabilityResponse><m:FreeBusyResponseArray>${one.repeat(mailboxes.length)}</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse>`,
  };
}
