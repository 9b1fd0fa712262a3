/**
 * ActiveSync at the mailbox (docs/protocols.md §4.1; MS-ASHTTP, MS-ASCMD, MS-ASPROV): OPTIONS, and the
 * WBXML commands a device's first session needs (Provision, FolderSync, Sync, Ping, Settings).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { WbxmlElement, WbxmlNamespace, WbxmlNode } from '../../../codec/wbxml.ts';
import {
  childElement,
  childElements,
  decodeWbxml,
  encodeWbxml,
  textOf,
  WbxmlError,
  wbxmlElement as el,
} from '../../../codec/wbxml.ts';
import type { ActiveSyncRequest } from '../../../core/protocols/activesync.ts';
import { parseActiveSyncQuery } from '../../../core/protocols/activesync.ts';
import { isInvalid } from '../../../core/protocols/request-head.ts';
import type { StoreContext } from './common.ts';
import { drain, escapeHtml, MiB, readBody, refuse, requestHead, send } from './common.ts';
import type { LabMessage } from './contents.ts';
import { folders, inboxMessages } from './contents.ts';
import type { PingHolder } from './ping-holder.ts';
import { profiles } from './versions.ts';

const easMaxBody = 4 * MiB;

/** Answer one ActiveSync request; Pings are held in `pings`. */
export async function activeSync(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: StoreContext,
  pings: PingHolder,
): Promise<void> {
  const profile = profiles[ctx.version];
  const common = { 'MS-Server-ActiveSync': profile.easServer, 'Cache-Control': 'private' };
  if (req.method === 'OPTIONS') {
    await drain(req);
    // MS-ASHTTP OPTIONS response (docs/protocols.md §4.1 [26k][26l]).
    send(res, 200, {
      ...common,
      Allow: 'OPTIONS,POST',
      Public: 'OPTIONS,POST',
      'MS-ASProtocolVersions': profile.easVersions.join(','),
      'MS-ASProtocolCommands': easCommands,
    });
    return;
  }
  if (req.method !== 'POST') return refuse(req, res, 405, 'ActiveSync takes OPTIONS and POST', common);
  const request = parseActiveSyncQuery(requestHead(req));
  if (isInvalid(request)) return refuse(req, res, 400, request.detail, common);
  const version = request.protocolVersion ?? profile.easVersions.at(-1) ?? '12.1';
  // A version the server does not speak is a malformed request (docs/protocols.md §4.1 status 400).
  if (!profile.easVersions.includes(version))
    return refuse(req, res, 400, `protocol version ${version} is not offered by ${ctx.serverName}`, common);
  const command = easCommandHandlers.get(request.cmd);
  if (!command) return refuse(req, res, 400, `${request.cmd} is not simulated`, common);
  const body = await readBody(req, easMaxBody);
  if (body === undefined) return refuse(req, res, 413, 'ActiveSync body too large', common);
  let doc: WbxmlElement | undefined;
  if (body.length > 0) {
    try {
      doc = decodeWbxml(body);
    } catch (err) {
      if (err instanceof WbxmlError) return refuse(req, res, 400, err.message, common);
      throw err;
    }
    if (doc.tag !== request.cmd || doc.ns !== command.ns)
      return refuse(req, res, 400, `the body is ${doc.ns}:${doc.tag}, not ${request.cmd}`, common);
  } else if (!command.emptyBody) {
    return refuse(req, res, 400, `${request.cmd} needs a WBXML body`, common);
  }
  const x: Eas = { res, ctx, request, version: Number(version), common, pings };
  const answer = await command.run(x, doc);
  if (answer) sendWbxml(x, answer);
}

/** Ping: hold for HeartbeatInterval (capped), then Status 1 "heartbeat expired" (MS-ASCMD Ping). */
async function ping(x: Eas, doc: WbxmlElement | undefined): Promise<WbxmlElement | undefined> {
  const status = (s: number, ...more: WbxmlElement[]): WbxmlElement =>
    el('Ping', 'Ping', el('Ping', 'Status', s), ...more);
  const device = `${x.ctx.mailbox.address.toLowerCase()}\n${x.request.deviceId}`;
  const sent = doc && childElement(doc, 'HeartbeatInterval');
  const text = sent && textOf(sent);
  if (text !== undefined && !/^\d{1,9}$/.test(text)) return status(4); // syntax error in the request
  const heartbeat = text === undefined ? x.pings.lastHeartbeat.get(device) : Number(text);
  if (heartbeat === undefined) return status(3); // required parameters omitted, none cached
  const [min, max] = x.pings.range;
  if (heartbeat < min || heartbeat > max)
    // Out of range: Status 5 with the limit that was crossed (docs/protocols.md §4.1 [27a]).
    return status(5, el('Ping', 'HeartbeatInterval', heartbeat < min ? min : max));
  x.pings.lastHeartbeat.set(device, heartbeat);
  const outcome = await x.pings.hold(Math.min(heartbeat * 1000, x.pings.maxHoldMs), x.res);
  return outcome === 'gone' ? undefined : status(1);
}

/** One ActiveSync request in progress. */
interface Eas {
  readonly res: ServerResponse;
  readonly ctx: StoreContext;
  readonly request: ActiveSyncRequest;
  /** The protocol version in use, as a number (12.1, 14.1). */
  readonly version: number;
  readonly common: OutgoingHttpHeaders;
  readonly pings: PingHolder;
}

interface EasCommand {
  /** The namespace of the command's root element. */
  readonly ns: WbxmlElement['ns'];
  /** May the body be empty? (Ping reuses the cached request; Sync answers Status 13.) */
  readonly emptyBody?: boolean;
  run(x: Eas, doc: WbxmlElement | undefined): Promise<WbxmlElement | undefined>;
}

const easCommands =
  'Sync,SendMail,SmartForward,SmartReply,GetAttachment,GetHierarchy,CreateCollection,DeleteCollection,' +
  'MoveCollection,FolderSync,FolderCreate,FolderDelete,FolderUpdate,MoveItems,GetItemEstimate,' +
  'MeetingResponse,Search,Settings,Ping,ItemOperations,Provision,ResolveRecipients,ValidateCert';

/** The simulated commands; those without `emptyBody` always get a document (checked before `run`). */
const easCommandHandlers = new Map<string, EasCommand>([
  ['Provision', { ns: 'Provision', run: async (x, doc) => provision(x, doc as WbxmlElement) }],
  ['FolderSync', { ns: 'FolderHierarchy', run: async (_x, doc) => folderSync(doc as WbxmlElement) }],
  ['Sync', { ns: 'AirSync', emptyBody: true, run: async (x, doc) => sync(x, doc) }],
  ['Ping', { ns: 'Ping', emptyBody: true, run: ping }],
  ['Settings', { ns: 'Settings', run: async (x, doc) => settings(x, doc as WbxmlElement) }],
]);

/** A builder of elements in one code page's namespace. */
const inNamespace =
  (ns: WbxmlNamespace) =>
  (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement =>
    el(ns, tag, ...c);

function sendWbxml(x: Eas, answer: WbxmlElement): void {
  send(x.res, 200, { ...x.common, 'Content-Type': 'application/vnd.ms-sync.wbxml' }, encodeWbxml(answer));
}

/** A policy key: a 32-bit unsigned integer as text (MS-ASPROV PolicyKey), stable per device and phase. */
function policyKey(phase: 'temporary' | 'final', x: Eas): string {
  const digest = createHash('sha256')
    .update(`${phase}\n${x.ctx.serverName}\n${x.ctx.mailbox.address.toLowerCase()}\n${x.request.deviceId}`)
    .digest();
  return String(digest.readUInt32BE(0) || 1); // 0 means "no key" (MS-ASHTTP X-MS-PolicyKey)
}

const wbxmlProvisioning = 'MS-EAS-Provisioning-WBXML';

/**
 * Provision in two phases (docs/protocols.md §4.1 [28][30]): without a PolicyKey the device gets the policy
 * and a temporary key; acknowledging that key gets the final one. Keys derive from server, mailbox and
 * device, so the simulator keeps no state for it.
 */
function provision(x: Eas, doc: WbxmlElement): WbxmlElement {
  const p = inNamespace('Provision');
  // 14.1 devices may send Settings:DeviceInformation first; the answer acknowledges it (MS-ASPROV).
  const device = childElement(doc, 'DeviceInformation', 'Settings')
    ? [el('Settings', 'DeviceInformation', el('Settings', 'Status', 1))]
    : [];
  const policy = childElement(childElement(doc, 'Policies') ?? doc, 'Policy');
  if (!policy) return p('Provision', ...device, p('Status', 2)); // protocol error
  const type = textOf(childElement(policy, 'PolicyType'));
  const answer = (...policyContent: WbxmlElement[]): WbxmlElement =>
    p(
      'Provision',
      ...device,
      p('Status', 1),
      p('Policies', p('Policy', p('PolicyType', type), ...policyContent)),
    );
  // Policy Status 3: unknown PolicyType (2.5's MS-WAP-Provisioning-XML is not simulated).
  if (type !== wbxmlProvisioning) return answer(p('Status', 3));
  const acked = childElement(policy, 'PolicyKey');
  if (acked) {
    const ok = textOf(acked) === policyKey('temporary', x);
    // Status 5: the device acknowledged the wrong policy key.
    return ok ? answer(p('Status', 1), p('PolicyKey', policyKey('final', x))) : answer(p('Status', 5));
  }
  return answer(
    p('Status', 1),
    p('PolicyKey', policyKey('temporary', x)),
    p('Data', provisionDoc(x.version)),
  );
}

/** A permissive default mobile policy, elements in schema (token) order; 12.1 added the Allow* ones. */
function provisionDoc(version: number): WbxmlElement {
  const settings: [string, string][] = [
    ['DevicePasswordEnabled', '0'],
    ['AlphanumericDevicePasswordRequired', '0'],
    ['RequireStorageCardEncryption', '0'],
    ['PasswordRecoveryEnabled', '0'],
    ['AttachmentsEnabled', '1'],
    ['MinDevicePasswordLength', ''],
    ['MaxInactivityTimeDeviceLock', ''],
    ['MaxDevicePasswordFailedAttempts', ''],
    ['MaxAttachmentSize', ''],
    ['AllowSimpleDevicePassword', '1'],
    ['DevicePasswordExpiration', ''],
    ['DevicePasswordHistory', '0'],
  ];
  if (version >= 12.1)
    settings.push(
      ['AllowStorageCard', '1'],
      ['AllowCamera', '1'],
      ['RequireDeviceEncryption', '0'],
      ['AllowUnsignedApplications', '1'],
      ['AllowUnsignedInstallationPackages', '1'],
      ['MinDevicePasswordComplexCharacters', '1'],
      ['AllowWiFi', '1'],
      ['AllowTextMessaging', '1'],
      ['AllowPOPIMAPEmail', '1'],
      ['AllowBluetooth', '2'],
      ['AllowIrDA', '1'],
      ['RequireManualSyncWhenRoaming', '0'],
      ['AllowDesktopSync', '1'],
      ['MaxCalendarAgeFilter', '0'],
      ['AllowHTMLEmail', '1'],
      ['MaxEmailAgeFilter', '0'],
      ['MaxEmailBodyTruncationSize', '-1'],
      ['MaxEmailHTMLBodyTruncationSize', '-1'],
      ['RequireSignedSMIMEMessages', '0'],
      ['RequireEncryptedSMIMEMessages', '0'],
      ['RequireSignedSMIMEAlgorithm', '0'],
      ['RequireEncryptionSMIMEAlgorithm', '0'],
      ['AllowSMIMEEncryptionAlgorithmNegotiation', '2'],
      ['AllowSMIMESoftCerts', '1'],
      ['AllowBrowser', '1'],
      ['AllowConsumerEmail', '1'],
      ['AllowRemoteDesktop', '1'],
      ['AllowInternetSharing', '1'],
    );
  return el(
    'Provision',
    'EASProvisionDoc',
    ...settings.map(([tag, value]) => (value === '' ? el('Provision', tag) : el('Provision', tag, value))),
  );
}

/** FolderSync: key 0 gets the hierarchy and key 1; any later key gets "no changes" (MS-ASCMD FolderSync). */
function folderSync(doc: WbxmlElement): WbxmlElement {
  const f = inNamespace('FolderHierarchy');
  const key = textOf(childElement(doc, 'SyncKey'));
  if (key === '0')
    return f(
      'FolderSync',
      f('Status', 1),
      f('SyncKey', 1),
      f(
        'Changes',
        f('Count', folders.length),
        ...folders.map((d) =>
          f('Add', f('ServerId', d.id), f('ParentId', 0), f('DisplayName', d.name), f('Type', d.type)),
        ),
      ),
    );
  // Status 9: invalid synchronization key; the device starts over with 0.
  if (!/^[1-9]\d{0,9}$/.test(key)) return f('FolderSync', f('Status', 9));
  return f('FolderSync', f('Status', 1), f('SyncKey', key), f('Changes', f('Count', 0)));
}

/**
 * Sync: per collection, key 0 gets key 1 and no items; key 1 gets key 2 and, for the Inbox, two
 * messages; later keys get the next key and no changes (MS-ASCMD Sync, shapes as in the SOGo capture).
 */
function sync(x: Eas, doc: WbxmlElement | undefined): WbxmlElement {
  const a = inNamespace('AirSync');
  if (!doc) return a('Sync', a('Status', 13)); // an empty Sync with nothing to repeat
  const collections = childElement(doc, 'Collections');
  if (!collections) return a('Sync', a('Status', 4)); // protocol error
  const out = childElements(collections, 'Collection').map((c) => {
    const key = textOf(childElement(c, 'SyncKey'));
    const id = textOf(childElement(c, 'CollectionId'));
    const folder = folders.find((d) => d.id === id);
    // Up to 12.1 the answer names the Class first (as the SOGo capture shows); 14.0 dropped it.
    const head = folder && x.version < 14 ? [a('Class', folder.itemClass)] : [];
    // Status 12: the folder hierarchy changed (an unknown CollectionId), so FolderSync again.
    if (!folder) return a('Collection', a('SyncKey', key), a('CollectionId', id), a('Status', 12));
    if (!/^(0|[1-9]\d{0,9})$/.test(key))
      return a('Collection', ...head, a('SyncKey', 0), a('CollectionId', id), a('Status', 3)); // bad key
    const next = String(Number(key) + 1);
    const items = key === '1' && folder.distinguished === 'inbox' ? inboxMessages(x.ctx) : [];
    const preference = bodyPreference(c);
    return a(
      'Collection',
      ...head,
      a('SyncKey', next),
      a('CollectionId', id),
      a('Status', 1),
      ...(items.length
        ? [
            a(
              'Commands',
              ...items.map((m) => a('Add', a('ServerId', m.serverId), applicationData(x, m, preference))),
            ),
          ]
        : []),
    );
  });
  return a('Sync', a('Collections', ...out));
}

interface BodyPreference {
  readonly type: 1 | 2;
  readonly truncationSize?: number;
}

/** The client's AirSyncBase BodyPreference: HTML (2) only if asked for without plain text (1). */
function bodyPreference(collection: WbxmlElement): BodyPreference {
  const options = childElement(collection, 'Options');
  const prefs = options ? childElements(options, 'BodyPreference', 'AirSyncBase') : [];
  const ofType = (t: string): WbxmlElement | undefined =>
    prefs.find((p) => textOf(childElement(p, 'Type')) === t);
  const type = !ofType('1') && ofType('2') ? 2 : 1;
  const chosen = ofType(String(type));
  const size = chosen ? textOf(childElement(chosen, 'TruncationSize')) : '';
  return { type, ...(/^\d{1,9}$/.test(size) ? { truncationSize: Number(size) } : {}) };
}

function applicationData(x: Eas, m: LabMessage, pref: BodyPreference): WbxmlElement {
  const e = inNamespace('Email');
  const b = inNamespace('AirSyncBase');
  const { address, displayName } = x.ctx.mailbox;
  const full = pref.type === 2 ? `<html><body><p>${escapeHtml(m.body)}</p></body></html>` : m.body;
  const size = Buffer.byteLength(full);
  const cut = pref.truncationSize !== undefined && pref.truncationSize < size;
  const data = cut ? Buffer.from(full).subarray(0, pref.truncationSize).toString() : full;
  return el(
    'AirSync',
    'ApplicationData',
    e('To', `"${displayName}" <${address}>`),
    e('From', m.from),
    e('Subject', m.subject),
    e('DateReceived', m.received),
    e('DisplayTo', displayName),
    e('ThreadTopic', m.subject),
    e('Importance', 1),
    e('Read', 0),
    b(
      'Body',
      b('Type', pref.type),
      b('EstimatedDataSize', size),
      b('Truncated', cut ? 1 : 0),
      b('Data', data),
    ),
    e('MessageClass', 'IPM.Note'),
    e('InternetCPID', 65001),
    e('Flag'),
    e('ContentClass', 'urn:content-classes:message'),
    b('NativeBodyType', 1),
  );
}

/** Settings: UserInformation Get, DeviceInformation Set, Oof Get (MS-ASCMD Settings). */
function settings(x: Eas, doc: WbxmlElement): WbxmlElement {
  const s = inNamespace('Settings');
  const { address, displayName } = x.ctx.mailbox;
  const parts = childElements(doc, undefined, 'Settings').map((part) => {
    switch (part.tag) {
      case 'UserInformation':
        // 14.1 answers per account with the display name; earlier versions list SMTP addresses only.
        return s(
          'UserInformation',
          s('Status', 1),
          s(
            'Get',
            ...(x.version >= 14.1
              ? [
                  s(
                    'Accounts',
                    s(
                      'Account',
                      s('UserDisplayName', displayName),
                      s('EmailAddresses', s('SMTPAddress', address), s('PrimarySmtpAddress', address)),
                    ),
                  ),
                ]
              : [s('EmailAddresses', s('SMTPAddress', address))]),
          ),
        );
      case 'Oof':
        return s('Oof', s('Status', 1), s('Get', s('OofState', 0)));
      default:
        // DeviceInformation, DevicePassword, RightsManagementInformation: accepted as sent.
        return s(part.tag, s('Status', 1));
    }
  });
  return s('Settings', s('Status', 1), ...parts);
}
