/**
 * The WBXML documents of a device's first session (MS-ASCMD, MS-ASPROV; element order as the schemas
 * give it): builders for FolderSync, Sync, Ping, Provision and Settings requests, and parsers for their
 * answers into plain data. Pure: documents in, documents out, with the codec of src/codec.
 */
import type { WbxmlElement, WbxmlNamespace, WbxmlNode } from '../../codec/wbxml.ts';
import { childElement, childElements, textOf, wbxmlElement as el } from '../../codec/wbxml.ts';

/** An answer that is not the document the command expects. */
export class CommandParseError extends Error {
  override name = 'CommandParseError';
}

const inNs =
  (ns: WbxmlNamespace) =>
  (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement =>
    el(ns, tag, ...c);
const airSync = inNs('AirSync');
const airSyncBase = inNs('AirSyncBase');
const folders = inNs('FolderHierarchy');
const pingNs = inNs('Ping');
const prov = inNs('Provision');
const settingsNs = inNs('Settings');

/** Statuses of 14.0+ commands that mean "provision again" (MS-ASCMD common status codes 142–144). */
export const provisionStatuses: ReadonlySet<number> = new Set([142, 143, 144]);

/** What a command status means (MS-ASCMD per command, and the common 1xx codes). */
export function statusMeaning(command: string, status: number): string {
  return (
    perCommand[command]?.[status] ??
    commonStatuses[status] ??
    (status >= 100 ? 'a common ActiveSync error' : 'a status this client does not know')
  );
}

const commonStatuses: Readonly<Record<number, string>> = {
  126: 'the user account is disabled for sync',
  129: 'the user has no mailbox',
  139: 'the device cannot be fully provisioned',
  140: 'remote wipe requested',
  141: 'a legacy device on a strict policy',
  142: 'the device is not provisioned',
  143: 'the policy has changed; provision again',
  144: 'the policy key is invalid',
};

const perCommand: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  FolderSync: {
    1: 'success',
    6: 'server error',
    9: 'invalid or mismatched folder sync key; start again with 0',
    10: 'incorrectly formatted request',
    11: 'unknown error',
    12: 'unusual back-end error',
  },
  Sync: {
    1: 'success',
    3: 'invalid sync key; start again with 0',
    4: 'protocol error',
    5: 'server error',
    6: 'error in client/server conversion',
    7: 'conflict',
    8: 'object not found',
    9: 'the Sync cannot be completed',
    12: 'the folder hierarchy has changed; run FolderSync',
    13: 'incomplete Sync request',
    14: 'invalid Wait or HeartbeatInterval',
    15: 'too many collections',
    16: 'retry',
  },
  Ping: {
    1: 'the heartbeat expired with no changes',
    2: 'changes in the folders listed',
    3: 'required parameters are missing',
    4: 'syntax error in the request',
    5: 'the heartbeat interval is out of range',
    6: 'too many folders',
    7: 'the folder hierarchy has changed; run FolderSync',
    8: 'server error',
  },
  Provision: {
    1: 'success',
    2: 'protocol error',
    3: 'general server error',
  },
  Settings: {
    1: 'success',
    2: 'protocol error',
    3: 'access denied',
    4: 'server unavailable',
    5: 'invalid arguments',
    6: 'conflicting arguments',
    7: 'denied by policy',
  },
};

/** MS-ASPROV Policy Status values. */
export const policyStatusMeaning: Readonly<Record<number, string>> = {
  1: 'success',
  2: 'there is no policy for this client',
  3: 'unknown PolicyType',
  4: 'the policy data on the server is corrupted',
  5: 'the device acknowledged the wrong policy key',
};

// ---------------------------------------------------------------------------------------------------
// FolderSync

/** `<FolderSync><SyncKey>…</SyncKey></FolderSync>`: key 0 asks for the whole hierarchy. */
export function folderSyncRequest(syncKey = '0'): WbxmlElement {
  return folders('FolderSync', folders('SyncKey', syncKey));
}

/** What a folder is for, from FolderSync Type (MS-ASCMD 2.2.3.186.3). */
export type FolderKind =
  | 'inbox'
  | 'drafts'
  | 'deleted'
  | 'sent'
  | 'outbox'
  | 'tasks'
  | 'calendar'
  | 'contacts'
  | 'notes'
  | 'journal'
  | 'mail'
  | 'other';

const folderKinds: Readonly<Record<number, FolderKind>> = {
  2: 'inbox',
  3: 'drafts',
  4: 'deleted',
  5: 'sent',
  6: 'outbox',
  7: 'tasks',
  8: 'calendar',
  9: 'contacts',
  10: 'notes',
  11: 'journal',
  12: 'mail',
  13: 'calendar',
  14: 'contacts',
  15: 'tasks',
  16: 'journal',
  17: 'notes',
};

/** The AirSync Class of a folder's items (what Ping asks about). */
export function folderClass(type: number): 'Email' | 'Calendar' | 'Contacts' | 'Tasks' | 'Notes' | undefined {
  switch (folderKinds[type]) {
    case 'inbox':
    case 'drafts':
    case 'deleted':
    case 'sent':
    case 'outbox':
    case 'mail':
      return 'Email';
    case 'calendar':
      return 'Calendar';
    case 'contacts':
      return 'Contacts';
    case 'tasks':
      return 'Tasks';
    case 'notes':
      return 'Notes';
    default:
      return undefined;
  }
}

export interface Folder {
  readonly serverId: string;
  readonly parentId: string;
  readonly displayName: string;
  readonly type: number;
  readonly kind: FolderKind;
}

export interface FolderSyncResult {
  readonly status: number;
  /** The next folder sync key; opaque (SOGo's look like `vm_72c2_30baccf3_0`). */
  readonly syncKey: string;
  readonly added: readonly Folder[];
  readonly updated: readonly Folder[];
  /** ServerIds of deleted folders. */
  readonly deleted: readonly string[];
}

const expectRoot = (doc: WbxmlElement | undefined, ns: WbxmlNamespace, tag: string): WbxmlElement => {
  if (!doc) throw new CommandParseError(`the answer is empty, not ${tag}`);
  if (doc.ns !== ns || doc.tag !== tag)
    throw new CommandParseError(`the answer is ${doc.ns}:${doc.tag}, not ${ns}:${tag}`);
  return doc;
};

/** A Status element's number; NaN-free (a missing or odd Status reads as 0). */
const statusOf = (e: WbxmlElement | undefined): number => {
  const t = textOf(e).trim();
  return /^\d{1,5}$/.test(t) ? Number(t) : 0;
};

const folderOf = (e: WbxmlElement): Folder => {
  const type = Number(textOf(childElement(e, 'Type')) || '0');
  return {
    serverId: textOf(childElement(e, 'ServerId')),
    parentId: textOf(childElement(e, 'ParentId')),
    displayName: textOf(childElement(e, 'DisplayName')),
    type,
    kind: folderKinds[type] ?? 'other',
  };
};

export function parseFolderSync(doc: WbxmlElement | undefined): FolderSyncResult {
  const root = expectRoot(doc, 'FolderHierarchy', 'FolderSync');
  const changes = childElement(root, 'Changes');
  return {
    status: statusOf(childElement(root, 'Status')),
    syncKey: textOf(childElement(root, 'SyncKey')),
    added: changes ? childElements(changes, 'Add').map(folderOf) : [],
    updated: changes ? childElements(changes, 'Update').map(folderOf) : [],
    deleted: changes ? childElements(changes, 'Delete').map((d) => textOf(childElement(d, 'ServerId'))) : [],
  };
}

// ---------------------------------------------------------------------------------------------------
// Sync

export interface SyncRequestOptions {
  readonly collectionId: string;
  readonly syncKey: string;
  /** Most changes per answer (MS-ASCMD WindowSize, 1–512); default 25. */
  readonly windowSize?: number;
  /** MS-ASCMD FilterType: 0 everything (default), 1 one day … 5 one month. */
  readonly filterType?: number;
  /** AirSyncBase BodyPreference Type 1 (plain text) TruncationSize in bytes; default 500. */
  readonly truncationSize?: number;
}

/**
 * A Sync of one collection. Key 0 asks only for the first key (as devices and the SOGo capture do);
 * any other key asks for changes: GetChanges, WindowSize and Options (FilterType, BodyPreference).
 */
export function syncRequest(o: SyncRequestOptions): WbxmlElement {
  const head = [airSync('SyncKey', o.syncKey), airSync('CollectionId', o.collectionId)];
  if (o.syncKey === '0') return airSync('Sync', airSync('Collections', airSync('Collection', ...head)));
  return airSync(
    'Sync',
    airSync(
      'Collections',
      airSync(
        'Collection',
        ...head,
        airSync('DeletesAsMoves'),
        airSync('GetChanges'),
        airSync('WindowSize', o.windowSize ?? 25),
        airSync(
          'Options',
          airSync('FilterType', o.filterType ?? 0),
          airSyncBase(
            'BodyPreference',
            airSyncBase('Type', 1),
            airSyncBase('TruncationSize', o.truncationSize ?? 500),
          ),
        ),
      ),
    ),
  );
}

/** An item change the server sent. */
export interface SyncItem {
  readonly change: 'add' | 'change' | 'delete' | 'soft-delete';
  readonly serverId: string;
  readonly subject?: string;
  readonly from?: string;
  readonly to?: string;
  readonly dateReceived?: string;
  readonly read?: boolean;
  readonly messageClass?: string;
  /** The body as the server sent it (plain text, as asked for), possibly truncated. */
  readonly body?: string;
  readonly bodyTruncated?: boolean;
}

export interface SyncResult {
  readonly collectionId: string;
  /** The next key; opaque. The same key as sent when the answer was empty. */
  readonly syncKey: string;
  readonly status: number;
  readonly items: readonly SyncItem[];
  readonly moreAvailable: boolean;
  /** The server answered an empty 200: nothing changed (MS-ASCMD empty Sync response; SOGo does this). */
  readonly empty: boolean;
}

/**
 * A Sync answer for `collectionId` sent with `sentKey`. An empty body means no changes; a Sync with a
 * top-level Status only (4, 13…) gives that status and no collection.
 */
export function parseSync(doc: WbxmlElement | undefined, collectionId: string, sentKey: string): SyncResult {
  if (!doc)
    return { collectionId, syncKey: sentKey, status: 1, items: [], moreAvailable: false, empty: true };
  const root = expectRoot(doc, 'AirSync', 'Sync');
  const collections = childElement(root, 'Collections');
  const all = collections ? childElements(collections, 'Collection') : [];
  const c = all.find((x) => textOf(childElement(x, 'CollectionId')) === collectionId) ?? all[0];
  if (!c)
    return {
      collectionId,
      syncKey: sentKey,
      status: statusOf(childElement(root, 'Status')),
      items: [],
      moreAvailable: false,
      empty: false,
    };
  const commands = childElement(c, 'Commands');
  const changes: [string, SyncItem['change']][] = [
    ['Add', 'add'],
    ['Change', 'change'],
    ['Delete', 'delete'],
    ['SoftDelete', 'soft-delete'],
  ];
  const items = commands
    ? childElements(commands, undefined, 'AirSync').flatMap((cmd) => {
        const change = changes.find(([tag]) => tag === cmd.tag)?.[1];
        return change ? [syncItem(cmd, change)] : [];
      })
    : [];
  return {
    collectionId: textOf(childElement(c, 'CollectionId')) || collectionId,
    syncKey: textOf(childElement(c, 'SyncKey')) || sentKey,
    status: statusOf(childElement(c, 'Status')),
    items,
    moreAvailable: childElement(c, 'MoreAvailable') !== undefined,
    empty: false,
  };
}

function syncItem(cmd: WbxmlElement, change: SyncItem['change']): SyncItem {
  const data = childElement(cmd, 'ApplicationData');
  const email = (tag: string): string | undefined => {
    const e = data && childElement(data, tag, 'Email');
    return e ? textOf(e) : undefined;
  };
  const opt = <K extends string, V>(key: K, v: V | undefined): Partial<Record<K, V>> =>
    v === undefined ? {} : ({ [key]: v } as Record<K, V>);
  const body = data && childElement(data, 'Body', 'AirSyncBase');
  // 2.5 sent the body as Email:Body; 12.0+ as AirSyncBase:Body/Data.
  const bodyText = body ? textOf(childElement(body, 'Data')) : email('Body');
  const truncated = body ? textOf(childElement(body, 'Truncated')) : email('BodyTruncated');
  const read = email('Read');
  return {
    change,
    serverId: textOf(childElement(cmd, 'ServerId')),
    ...opt('subject', email('Subject')),
    ...opt('from', email('From')),
    ...opt('to', email('To')),
    ...opt('dateReceived', email('DateReceived')),
    ...opt('read', read === undefined ? undefined : read === '1'),
    ...opt('messageClass', email('MessageClass')),
    ...opt('body', bodyText),
    ...opt('bodyTruncated', truncated === undefined ? undefined : truncated === '1'),
  };
}

// ---------------------------------------------------------------------------------------------------
// Ping

export interface PingFolder {
  readonly id: string;
  /** AirSync Class: `Email`, `Calendar`, `Contacts`, `Tasks`, `Notes`. */
  readonly class: string;
}

/** `<Ping><HeartbeatInterval/><Folders><Folder><Id/><Class/></Folder>…</Folders></Ping>`. */
export function pingRequest(heartbeatSeconds: number, watch: readonly PingFolder[]): WbxmlElement {
  return pingNs(
    'Ping',
    pingNs('HeartbeatInterval', heartbeatSeconds),
    pingNs('Folders', ...watch.map((f) => pingNs('Folder', pingNs('Id', f.id), pingNs('Class', f.class)))),
  );
}

export interface PingResult {
  readonly status: number;
  readonly outcome:
    | 'no-changes'
    | 'changes'
    | 'heartbeat-out-of-range'
    | 'too-many-folders'
    | 'folder-sync-required'
    | 'error';
  /** Status 2: the folders that changed. */
  readonly changedFolders: readonly string[];
  /** Status 5: the server's limit (its minimum or maximum heartbeat). */
  readonly heartbeatInterval?: number;
  /** Status 6: how many folders the server watches at most. */
  readonly maxFolders?: number;
}

const pingOutcomes: Readonly<Record<number, PingResult['outcome']>> = {
  1: 'no-changes',
  2: 'changes',
  5: 'heartbeat-out-of-range',
  6: 'too-many-folders',
  7: 'folder-sync-required',
};

export function parsePing(doc: WbxmlElement | undefined): PingResult {
  const root = expectRoot(doc, 'Ping', 'Ping');
  const status = statusOf(childElement(root, 'Status'));
  const list = childElement(root, 'Folders');
  const heartbeat = textOf(childElement(root, 'HeartbeatInterval'));
  const max = textOf(childElement(root, 'MaxFolders'));
  return {
    status,
    outcome: pingOutcomes[status] ?? 'error',
    changedFolders: list ? childElements(list, 'Folder').map((f) => textOf(f)) : [],
    ...(/^\d+$/.test(heartbeat) ? { heartbeatInterval: Number(heartbeat) } : {}),
    ...(/^\d+$/.test(max) ? { maxFolders: Number(max) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------
// Provision (MS-ASPROV)

export const wbxmlPolicyType = 'MS-EAS-Provisioning-WBXML';

/** Settings:DeviceInformation/Set fields (MS-ASCMD Settings, in schema order). */
export interface DeviceInformation {
  readonly model?: string;
  readonly friendlyName?: string;
  readonly os?: string;
  readonly osLanguage?: string;
  readonly userAgent?: string;
}

function deviceInformation(d: DeviceInformation): WbxmlElement {
  const fields: [string, string | undefined][] = [
    ['Model', d.model],
    ['FriendlyName', d.friendlyName],
    ['OS', d.os],
    ['OSLanguage', d.osLanguage],
    ['UserAgent', d.userAgent],
  ];
  return settingsNs(
    'DeviceInformation',
    settingsNs('Set', ...fields.flatMap(([tag, v]) => (v === undefined ? [] : [settingsNs(tag, v)]))),
  );
}

/**
 * Phase 1 (no `ack`): ask for the policy, with DeviceInformation first when given (14.1+). Phase 2
 * (`ack`): acknowledge the temporary key with PolicyStatus 1 (the device applied the policy).
 */
export function provisionRequest(
  o: {
    readonly deviceInformation?: DeviceInformation;
    readonly ack?: { readonly policyKey: string; readonly status?: number };
  } = {},
): WbxmlElement {
  const policy = prov(
    'Policy',
    prov('PolicyType', wbxmlPolicyType),
    ...(o.ack ? [prov('PolicyKey', o.ack.policyKey), prov('Status', o.ack.status ?? 1)] : []),
  );
  return prov(
    'Provision',
    ...(o.deviceInformation && !o.ack ? [deviceInformation(o.deviceInformation)] : []),
    prov('Policies', policy),
  );
}

export interface ProvisionAnswer {
  /** Provision Status (1 success, 2 protocol error, 3 server error). */
  readonly status: number;
  readonly policyType?: string;
  /** Policy Status (1 success, 2 no policy for the client (SOGo), 3 unknown type, 5 wrong key). */
  readonly policyStatus?: number;
  /** The temporary key (phase 1) or the final one (phase 2); absent when the server sends none. */
  readonly policyKey?: string;
  /** EASProvisionDoc settings by name ('' for empty elements). */
  readonly policy?: Readonly<Record<string, string>>;
  readonly remoteWipe: boolean;
  /** Status of the Settings:DeviceInformation part, when the server answered it. */
  readonly deviceInformationStatus?: number;
}

export function parseProvision(doc: WbxmlElement | undefined): ProvisionAnswer {
  const root = expectRoot(doc, 'Provision', 'Provision');
  const policy = childElement(childElement(root, 'Policies') ?? root, 'Policy');
  const key = policy ? textOf(childElement(policy, 'PolicyKey')) : '';
  const type = policy ? textOf(childElement(policy, 'PolicyType')) : '';
  const provDoc = policy && childElement(childElement(policy, 'Data') ?? policy, 'EASProvisionDoc');
  const info = childElement(root, 'DeviceInformation', 'Settings');
  return {
    status: statusOf(childElement(root, 'Status')),
    ...(type ? { policyType: type } : {}),
    ...(policy && childElement(policy, 'Status')
      ? { policyStatus: statusOf(childElement(policy, 'Status')) }
      : {}),
    ...(key ? { policyKey: key } : {}),
    ...(provDoc ? { policy: Object.fromEntries(childElements(provDoc).map((s) => [s.tag, textOf(s)])) } : {}),
    remoteWipe: childElement(root, 'RemoteWipe') !== undefined,
    ...(info ? { deviceInformationStatus: statusOf(childElement(info, 'Status')) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------
// Settings

/** `<Settings><UserInformation><Get/></UserInformation>[DeviceInformation]</Settings>`. */
export function settingsRequest(o: { readonly deviceInformation?: DeviceInformation } = {}): WbxmlElement {
  return settingsNs(
    'Settings',
    ...(o.deviceInformation ? [deviceInformation(o.deviceInformation)] : []),
    settingsNs('UserInformation', settingsNs('Get')),
  );
}

export interface SettingsResult {
  readonly status: number;
  readonly userInformationStatus?: number;
  readonly displayName?: string;
  readonly primarySmtpAddress?: string;
  readonly smtpAddresses: readonly string[];
}

export function parseSettings(doc: WbxmlElement | undefined): SettingsResult {
  const root = expectRoot(doc, 'Settings', 'Settings');
  const info = childElement(root, 'UserInformation');
  const get = info && childElement(info, 'Get');
  // 14.1: Get/Accounts/Account/{UserDisplayName, EmailAddresses/{SMTPAddress, PrimarySmtpAddress}};
  // earlier: Get/EmailAddresses/SMTPAddress.
  const account = get && childElement(childElement(get, 'Accounts') ?? get, 'Account');
  const addresses = childElement(account ?? get ?? root, 'EmailAddresses');
  const name = account ? textOf(childElement(account, 'UserDisplayName')) : '';
  const primary = addresses ? textOf(childElement(addresses, 'PrimarySmtpAddress')) : '';
  return {
    status: statusOf(childElement(root, 'Status')),
    ...(info ? { userInformationStatus: statusOf(childElement(info, 'Status')) } : {}),
    ...(name ? { displayName: name } : {}),
    ...(primary ? { primarySmtpAddress: primary } : {}),
    smtpAddresses: addresses ? childElements(addresses, 'SMTPAddress').map((a) => textOf(a)) : [],
  };
}
