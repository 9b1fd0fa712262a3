/**
 * The lab's mailbox store simulator: what answers at the end of every path in the lab. Exchange 2007 and
 * 2010 cannot run here, so this stands in for their mailbox servers (MBX2007-NY & co.) and for the 2013+
 * mailbox role. The pipeline has already authenticated and routed the request; the store answers for
 * `ctx.mailbox` in each protocol's wire shape (protocol-facts §4): ActiveSync WBXML commands, EWS SOAP,
 * OWA/ECP pages, Outlook Anywhere channels, MAPI/HTTP and the OAB manifest. Autodiscover is rendered by
 * the pipeline, not here. Every answer names the server in `X-BEServer` and `X-DiagInfo` (§4.10).
 * A simulator: shapes follow the specifications and captures, contents are made up.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { WbxmlElement, WbxmlNode } from '../../core/activesync/wbxml.ts';
import {
  childElement,
  childElements,
  decodeWbxml,
  encodeWbxml,
  textOf,
  WbxmlError,
  wbxmlElement as el,
} from '../../core/activesync/wbxml.ts';
import type { ProductVersion } from '../../core/estate/estate.ts';
import type { ActiveSyncRequest } from '../../core/protocols/activesync.ts';
import { parseActiveSyncQuery } from '../../core/protocols/activesync.ts';
import type { Protocol } from '../../core/protocols/protocol.ts';
import type { RequestHead } from '../../core/protocols/request-head.ts';
import { isInvalid } from '../../core/protocols/request-head.ts';

/** The mailbox a request is answered for. */
export interface StoreMailbox {
  readonly address: string;
  readonly displayName: string;
}

/** Who answers and for whom: the mailbox server's name and version, the protocol, the mailbox. */
export interface StoreContext {
  /** The mailbox server, e.g. `MBX2007-NY`; it appears in `X-BEServer`, `X-DiagInfo` and the bodies. */
  readonly serverName: string;
  readonly version: ProductVersion;
  readonly protocol: Protocol;
  readonly mailbox: StoreMailbox;
}

/** Tuning for tests. */
export interface MailboxStoreOptions {
  /** Longest a Ping is held before "heartbeat expired" (default: the whole HeartbeatInterval). */
  readonly maxPingHoldMs?: number;
  /** Accepted Ping HeartbeatInterval in seconds (default 60–3540, Exchange's, protocol-facts §4.1). */
  readonly heartbeatRangeSeconds?: readonly [min: number, max: number];
}

/** The byte at `offset` of every RPC_OUT_DATA body (a prime period, so chunk seams show). */
export const rpcOutDataByte = (offset: number): number => offset % 251;

/** The simulator-only request header that sets the RPC_OUT_DATA body length. */
export const rpcOutBytesHeader = 'x-lab-out-bytes';

const KiB = 1024;
const MiB = 1024 * KiB;
// The OUT channel answer's Content-Length lies between 128 KiB and 2 GiB (protocol-facts §4.7 [41d]).
const defaultOutBytes = 128 * KiB;
const maxOutBytes = 2 * 1024 * MiB;
const easMaxBody = 4 * MiB;
const ewsMaxBody = 1 * MiB;
const xmlMaxDepth = 64;

// ---------------------------------------------------------------------------------------------------
// What each version looks like

interface VersionProfile {
  /** Product name as admins know it. */
  readonly product: string;
  /** Major, minor, build, revision of a late update of that version. */
  readonly build: readonly [number, number, number, number];
  /** `MS-Server-ActiveSync` (informational, §4.1). */
  readonly easServer: string;
  /** `MS-ASProtocolVersions`. */
  readonly easVersions: readonly string[];
  /**
   * `ServerVersionInfo/@Version`: the newest schema the server speaks. The Exchange 2007 SP1 reference
   * documents the attribute; 2007 SP1-SP3 speak `Exchange2007_SP1`, and clients read it (exchangelib
   * takes the schema from it, lab notes §2).
   */
  readonly ewsSchema: string;
  /** The `RequestServerVersion` values it serves; any other is ErrorInvalidServerVersion. */
  readonly ewsRequestVersions: readonly string[];
  readonly owaTitle: string;
  /** Absent for 2007, which has no ECP (protocol-facts §2.2 ECP row). */
  readonly ecpTitle?: string;
  /** MAPI/HTTP exists only on 2013 SP1+ (§2.1 rule 7). */
  readonly mapiHttp: boolean;
}

const eas12 = ['2.0', '2.1', '2.5', '12.0', '12.1'];
const eas14 = [...eas12, '14.0', '14.1'];
const ews2007 = ['Exchange2007', 'Exchange2007_SP1'];
const ews2010 = [...ews2007, 'Exchange2010', 'Exchange2010_SP1', 'Exchange2010_SP2'];
const ews2013 = [...ews2010, 'Exchange2013', 'Exchange2013_SP1'];
// Later schemas are named by date; this list is from memory of the 2016/2019 Types.xsd, not re-verified
// (no o365info server runs 2016 or 2019).
const ews2016 = [
  ...ews2013,
  'Exchange2015',
  'Exchange2016',
  'V2015_10_05',
  'V2016_01_06',
  'V2016_04_13',
  'V2016_07_13',
  'V2016_10_10',
  'V2017_01_07',
  'V2017_04_14',
  'V2017_07_11',
];
const profiles: Readonly<Record<ProductVersion, VersionProfile>> = {
  // 2007 SP3 is the minimum for coexistence with 2013 (protocol-facts §6); its EAS tops out at 12.1.
  2007: {
    product: 'Exchange Server 2007 SP3',
    build: [8, 3, 83, 6],
    easServer: '8.3',
    easVersions: eas12,
    ewsSchema: 'Exchange2007_SP1',
    ewsRequestVersions: ews2007,
    owaTitle: 'Microsoft Exchange - Outlook Web Access',
    mapiHttp: false,
  },
  // 2010 SP3 advertises 14.1 with MS-Server-ActiveSync 14.3 (the capture of protocol-facts §4.1 [32]).
  2010: {
    product: 'Exchange Server 2010 SP3',
    build: [14, 3, 123, 4],
    easServer: '14.3',
    easVersions: eas14,
    ewsSchema: 'Exchange2010_SP2',
    ewsRequestVersions: ews2010,
    owaTitle: 'Outlook Web App',
    ecpTitle: 'Exchange Control Panel',
    mapiHttp: false,
  },
  2013: {
    product: 'Exchange Server 2013 CU23',
    build: [15, 0, 1497, 2],
    easServer: '15.0',
    easVersions: eas14,
    ewsSchema: 'Exchange2013_SP1',
    ewsRequestVersions: ews2013,
    owaTitle: 'Outlook Web App',
    ecpTitle: 'Exchange admin center',
    mapiHttp: true,
  },
  2016: {
    product: 'Exchange Server 2016 CU23',
    build: [15, 1, 2507, 6],
    easServer: '15.1',
    easVersions: eas14,
    ewsSchema: 'V2017_07_11',
    ewsRequestVersions: ews2016,
    owaTitle: 'Outlook on the web',
    ecpTitle: 'Exchange admin center',
    mapiHttp: true,
  },
  2019: {
    product: 'Exchange Server 2019 CU12',
    build: [15, 2, 1118, 7],
    easServer: '15.2',
    easVersions: eas14,
    ewsSchema: 'V2017_07_11',
    ewsRequestVersions: ews2016,
    owaTitle: 'Outlook on the web',
    ecpTitle: 'Exchange admin center',
    mapiHttp: true,
  },
};

const buildText = (p: VersionProfile): string => p.build.join('.');

// ---------------------------------------------------------------------------------------------------
// The mailbox's contents (the same for every mailbox, with its owner and server written in)

interface LabFolder {
  /** ActiveSync ServerId. */
  readonly id: string;
  readonly name: string;
  /** FolderHierarchy Type (MS-ASCMD FolderSync Type values). */
  readonly type: number;
  /** AirSync Class of its items. */
  readonly itemClass: 'Email' | 'Calendar' | 'Contacts';
  /** EWS DistinguishedFolderId. */
  readonly distinguished: string;
}

const folders: readonly LabFolder[] = [
  { id: '1', name: 'Inbox', type: 2, itemClass: 'Email', distinguished: 'inbox' },
  { id: '2', name: 'Drafts', type: 3, itemClass: 'Email', distinguished: 'drafts' },
  { id: '3', name: 'Deleted Items', type: 4, itemClass: 'Email', distinguished: 'deleteditems' },
  { id: '4', name: 'Sent Items', type: 5, itemClass: 'Email', distinguished: 'sentitems' },
  { id: '5', name: 'Outbox', type: 6, itemClass: 'Email', distinguished: 'outbox' },
  { id: '6', name: 'Calendar', type: 8, itemClass: 'Calendar', distinguished: 'calendar' },
  { id: '7', name: 'Contacts', type: 9, itemClass: 'Contacts', distinguished: 'contacts' },
];

interface LabMessage {
  readonly serverId: string;
  readonly subject: string;
  readonly from: string;
  readonly received: string;
  readonly body: string;
}

function inboxMessages(ctx: StoreContext): LabMessage[] {
  const { address, displayName } = ctx.mailbox;
  const domain = address.slice(address.indexOf('@') + 1);
  const p = profiles[ctx.version];
  const from = `"coexist lab" <postmaster@${domain}>`;
  return [
    {
      serverId: '1:1',
      subject: `Welcome to ${ctx.serverName}, ${displayName}`,
      from,
      received: '2026-01-05T09:00:00.000Z',
      body: `Hello ${displayName}, this is your mailbox ${address} on ${ctx.serverName} (${p.product}).`,
    },
    {
      serverId: '1:2',
      subject: `Your mailbox lives on ${ctx.serverName}`,
      from,
      received: '2026-01-05T09:05:00.000Z',
      body: `${ctx.serverName} (Exchange ${buildText(p)}) holds ${address}. Served by the coexist lab mailbox store simulator.`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------------
// The store

/** Thrown when the client went away while its request was being read. */
class ClientGone extends Error {}

/** A held Ping; calling it answers the Ping now. */
type Release = () => void;

/** The Pings being held, and the last heartbeat per device. */
class PingHolder {
  readonly held = new Set<Release>();
  /** The last Ping per device, reused by an empty Ping (MS-ASCMD Ping: the server caches the request). */
  readonly lastHeartbeat = new Map<string, number>();
  private closed = false;

  constructor(
    readonly maxHoldMs: number,
    readonly range: readonly [number, number],
  ) {}

  /** Wait `ms`, or until `close()`; 'gone' when the client disconnects first (no timer is left behind). */
  hold(ms: number, res: ServerResponse): Promise<'expired' | 'gone'> {
    if (res.destroyed) return Promise.resolve('gone');
    if (this.closed) return Promise.resolve('expired');
    return new Promise((resolve) => {
      const done = (outcome: 'expired' | 'gone'): void => {
        clearTimeout(timer);
        res.off('close', gone);
        this.held.delete(release);
        resolve(outcome);
      };
      const release = (): void => done('expired');
      const gone = (): void => done('gone');
      const timer = setTimeout(release, ms);
      res.once('close', gone);
      this.held.add(release);
    });
  }

  close(): void {
    this.closed = true;
    for (const release of [...this.held]) release();
  }
}

/** The lab's mailbox store simulator (see the file comment). */
export class MailboxStore {
  private readonly pings: PingHolder;

  constructor(o: MailboxStoreOptions = {}) {
    this.pings = new PingHolder(o.maxPingHoldMs ?? 3540_000, o.heartbeatRangeSeconds ?? [60, 3540]);
  }

  /** How many Pings are being held right now. */
  get pendingPings(): number {
    return this.pings.held.size;
  }

  /** Answer one request for `ctx.mailbox`; resolves when the answer is written or the client left. */
  async handle(req: IncomingMessage, res: ServerResponse, ctx: StoreContext): Promise<void> {
    res.setHeader('X-BEServer', ctx.serverName);
    res.setHeader('X-DiagInfo', ctx.serverName);
    try {
      switch (ctx.protocol) {
        case 'activesync':
          return await activeSync(req, res, ctx, this.pings);
        case 'ews':
          return await ews(req, res, ctx);
        case 'owa':
        case 'ecp':
          return await page(req, res, ctx);
        case 'rpc':
          return await outlookAnywhere(req, res);
        case 'mapi':
          return await mapiHttp(req, res, ctx);
        case 'oab':
          return await offlineAddressBook(req, res);
        case 'autodiscover':
          // The pipeline renders Autodiscover from the directory (docs/architecture.md).
          return await refuse(req, res, 404, 'Autodiscover is answered by the pipeline, not the store');
      }
    } catch (err) {
      if (err instanceof ClientGone || res.destroyed) return;
      if (res.headersSent) res.destroy();
      else send(res, 500, { 'Content-Type': 'text/plain; charset=utf-8' }, 'mailbox store simulator error');
    }
  }

  /** Answer every held Ping now (heartbeat expired) and stop holding new ones. */
  close(): void {
    this.pings.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// ActiveSync (protocol-facts §4.1; MS-ASHTTP, MS-ASCMD, MS-ASPROV)

async function activeSync(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: StoreContext,
  pings: PingHolder,
): Promise<void> {
  const profile = profiles[ctx.version];
  const common = { 'MS-Server-ActiveSync': profile.easServer, 'Cache-Control': 'private' };
  if (req.method === 'OPTIONS') {
    await drain(req);
    // MS-ASHTTP OPTIONS response (protocol-facts §4.1 [26k][26l]).
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
  // A version the server does not speak is a malformed request (protocol-facts §4.1 status 400).
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
    // Out of range: Status 5 with the limit that was crossed (protocol-facts §4.1 [27a]).
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
 * Provision in two phases (protocol-facts §4.1 [28][30]): without a PolicyKey the device gets the policy
 * and a temporary key; acknowledging that key gets the final one. Keys derive from server, mailbox and
 * device, so the simulator keeps no state for it.
 */
function provision(x: Eas, doc: WbxmlElement): WbxmlElement {
  const p = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('Provision', tag, ...c);
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
  const f = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('FolderHierarchy', tag, ...c);
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
  const a = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('AirSync', tag, ...c);
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
  const e = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('Email', tag, ...c);
  const b = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('AirSyncBase', tag, ...c);
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
  const s = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('Settings', tag, ...c);
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

// ---------------------------------------------------------------------------------------------------
// EWS (protocol-facts §4.6). What real clients need (lab notes on exchangelib, ews-javascript-api and
// DavMail): a ServerVersionInfo with a real schema name on every answer, the version negotiation their
// probes rely on (an unknown RequestServerVersion is ErrorInvalidServerVersion, so they step down),
// ConvertId (exchangelib's version probe, DavMail's way of learning the address), GetFolder for the
// distinguished folders in every shape, and ResolveNames.

const soapNs = 'http://schemas.xmlsoap.org/soap/envelope/';
const messagesNs = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const typesNs = 'http://schemas.microsoft.com/exchange/services/2006/types';
const errorsNs = 'http://schemas.microsoft.com/exchange/services/2006/errors';
const xsiNs = 'http://www.w3.org/2001/XMLSchema-instance';
const xmlType = { 'Content-Type': 'text/xml; charset=utf-8' };

async function ews(req: IncomingMessage, res: ServerResponse, ctx: StoreContext): Promise<void> {
  const path = requestHead(req).path.toLowerCase();
  if (path !== '/ews/exchange.asmx') return refuse(req, res, 404, 'only /EWS/Exchange.asmx is simulated');
  if (req.method !== 'POST') return refuse(req, res, 405, 'EWS takes POST', { Allow: 'POST' });
  const body = await readBody(req, ewsMaxBody);
  if (body === undefined) return refuse(req, res, 413, `EWS bodies are capped at ${ewsMaxBody} bytes`);
  let envelope: XmlElement;
  try {
    envelope = parseXml(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (err) {
    const at = err instanceof XmlSyntaxError ? err : { message: 'the body is not UTF-8', line: 1, column: 1 };
    send(res, 500, xmlType, schemaFault(at.message, at.line, at.column));
    return;
  }
  const soapBody =
    envelope.ns === soapNs && envelope.local === 'Envelope' ? child(envelope, 'Body', soapNs) : undefined;
  const op = soapBody?.children[0];
  if (!op) {
    send(
      res,
      500,
      xmlType,
      schemaFault('The request is not a SOAP 1.1 envelope with an operation in its Body.', 1, 1),
    );
    return;
  }
  const profile = profiles[ctx.version];
  // Without the header a request targets the first release of Exchange 2007, which every version serves.
  const requested = child(child(envelope, 'Header', soapNs), 'RequestServerVersion', typesNs);
  if (requested) {
    const version = requested.attributes.get('Version');
    if (version === undefined) {
      send(res, 500, xmlType, schemaFault("The required attribute 'Version' is missing.", 1, 1));
      return;
    }
    if (!profile.ewsRequestVersions.includes(version)) {
      send(res, 500, xmlType, invalidServerVersionFault());
      return;
    }
  }
  const operation = op.ns === messagesNs ? ewsOperations.get(op.local) : undefined;
  if (!operation) {
    send(res, 500, xmlType, invalidRequestFault(op.local));
    return;
  }
  const answer = operation(op, ctx);
  if ('schemaError' in answer) {
    send(res, 500, xmlType, schemaFault(answer.schemaError, 1, 1));
    return;
  }
  send(res, 200, xmlType, soapEnvelope(profile, answer.body));
}

function soapEnvelope(p: VersionProfile, body: string): string {
  const [major, minor, build, revision] = p.build;
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<s:Envelope xmlns:s="${soapNs}">` +
    `<s:Header><h:ServerVersionInfo MajorVersion="${major}" MinorVersion="${minor}" ` +
    `MajorBuildNumber="${build}" MinorBuildNumber="${revision}" Version="${p.ewsSchema}" xmlns:h="${typesNs}"/></s:Header>` +
    `<s:Body xmlns:m="${messagesNs}" xmlns:t="${typesNs}">${body}</s:Body></s:Envelope>`
  );
}

/** A request-level failure: SOAP 1.1 fault, HTTP 500 (protocol-facts §4.6 [34i][34j]). */
function fault(code: string, faultstring: string, detail: string): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<s:Envelope xmlns:s="${soapNs}"><s:Body><s:Fault>` +
    `<faultcode xmlns:a="${typesNs}">a:${code}</faultcode>` +
    `<faultstring xml:lang="en-US">${escapeXml(faultstring)}</faultstring>` +
    `<detail><e:ResponseCode xmlns:e="${errorsNs}">${code}</e:ResponseCode>${detail}</detail>` +
    '</s:Fault></s:Body></s:Envelope>'
  );
}

function schemaFault(violation: string, line: number, column: number): string {
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

type EwsAnswer = { readonly body: string } | { readonly schemaError: string };

/** The operations the simulator answers, by the local name of the first child of `s:Body`. */
const ewsOperations = new Map<string, (op: XmlElement, ctx: StoreContext) => EwsAnswer>([
  ['GetFolder', (op, ctx) => getFolder(op, ctx)],
  ['ResolveNames', (op, ctx) => resolveNames(op, ctx)],
  ['ConvertId', (op, ctx) => convertId(op, ctx)],
  ['GetUserAvailabilityRequest', (op) => getUserAvailability(op)],
]);

/** A per-item error: HTTP 200, ResponseClass="Error" (protocol-facts §4.6 [35h]). */
const errorMessage = (operation: string, code: string, text: string): string =>
  `<m:${operation}ResponseMessage ResponseClass="Error"><m:MessageText>${escapeXml(text)}</m:MessageText>` +
  `<m:ResponseCode>${code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:${operation}ResponseMessage>`;

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
        element:
          d.itemClass === 'Calendar'
            ? 'CalendarFolder'
            : d.itemClass === 'Contacts'
              ? 'ContactsFolder'
              : 'Folder',
        folderClass:
          d.itemClass === 'Calendar'
            ? 'IPF.Appointment'
            : d.itemClass === 'Contacts'
              ? 'IPF.Contact'
              : 'IPF.Note',
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
  AllProperties: [
    'FolderId',
    'ParentFolderId',
    'FolderClass',
    'DisplayName',
    'TotalCount',
    'ChildFolderCount',
    'EffectiveRights',
    'SharingEffectiveRights',
    'UnreadCount',
  ],
};

function getFolder(op: XmlElement, ctx: StoreContext): EwsAnswer {
  const shape = child(op, 'FolderShape', messagesNs);
  const base = text(child(shape, 'BaseShape', typesNs));
  const baseProperties = folderShapes[base];
  if (!baseProperties) return { schemaError: `BaseShape '${base}' is not IdOnly, Default or AllProperties.` };
  const wanted = new Set<FolderProperty>(baseProperties);
  // AdditionalProperties adds folder:* FieldURIs; other property paths are accepted and not simulated.
  for (const uri of child(shape, 'AdditionalProperties', typesNs)?.children ?? []) {
    const name =
      uri.local === 'FieldURI' ? /^folder:(\w+)$/.exec(uri.attributes.get('FieldURI') ?? '')?.[1] : '';
    const known = folderProperties.find((p) => p === name);
    if (known) wanted.add(known);
  }
  const ids = child(op, 'FolderIds', messagesNs);
  if (!ids || ids.children.length === 0) return { schemaError: 'GetFolder needs FolderIds.' };
  const known = ewsFolders();
  const messages = ids.children.map((id) => {
    let distinguished: string | undefined;
    if (id.local === 'DistinguishedFolderId') distinguished = id.attributes.get('Id');
    else {
      const lab = decodeId(id.attributes.get('Id') ?? '', 'EwsId');
      if (lab?.server === ctx.serverName && lab.mailbox === ctx.mailbox.address.toLowerCase())
        distinguished = lab.folder;
    }
    const f = known.find((k) => k.distinguished === distinguished);
    if (!f)
      return errorMessage(
        'GetFolder',
        'ErrorFolderNotFound',
        'The specified folder could not be found in the store.',
      );
    const props = folderProperties.filter((p) => wanted.has(p)).map((p) => folderProperty(p, f, ctx));
    return (
      '<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>' +
      `<m:Folders><t:${f.element}>${props.join('')}</t:${f.element}></m:Folders></m:GetFolderResponseMessage>`
    );
  });
  return {
    body: `<m:GetFolderResponse><m:ResponseMessages>${messages.join('')}</m:ResponseMessages></m:GetFolderResponse>`,
  };
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
  const entry = text(child(op, 'UnresolvedEntry', messagesNs)).trim();
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
  const body = words.some((w) => w.startsWith(wanted))
    ? '<m:ResolveNamesResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>' +
      '<m:ResolutionSet TotalItemsInView="1" IncludesLastItemInRange="true"><t:Resolution><t:Mailbox>' +
      `<t:Name>${escapeXml(displayName)}</t:Name><t:EmailAddress>${escapeXml(address)}</t:EmailAddress>` +
      `<t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>${contact}` +
      '</t:Resolution></m:ResolutionSet></m:ResolveNamesResponseMessage>'
    : errorMessage('ResolveNames', 'ErrorNameResolutionNoResults', 'No results were found.');
  return {
    body: `<m:ResolveNamesResponse><m:ResponseMessages>${body}</m:ResponseMessages></m:ResolveNamesResponse>`,
  };
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
  const sources = child(op, 'SourceIds', messagesNs)?.children ?? [];
  if (sources.length === 0) return { schemaError: 'ConvertId needs SourceIds.' };
  const messages: string[] = [];
  for (const source of sources) {
    const format = source.attributes.get('Format');
    if (!isIdFormat(format)) return { schemaError: `Format '${format ?? ''}' is not an IdFormatType value.` };
    if (source.local !== 'AlternateId') {
      messages.push(errorMessage('ConvertId', 'ErrorInvalidIdMalformed', 'Id is malformed.'));
      continue;
    }
    const id = decodeId(source.attributes.get('Id') ?? '', format);
    if (!id || id.server !== ctx.serverName || id.mailbox !== ctx.mailbox.address.toLowerCase()) {
      messages.push(errorMessage('ConvertId', 'ErrorInvalidIdMalformed', 'Id is malformed.'));
      continue;
    }
    messages.push(
      '<m:ConvertIdResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>' +
        `<m:AlternateId xmlns:xsi="${xsiNs}" xsi:type="t:AlternateIdType" Format="${destination}" ` +
        `Id="${encodeId(id, destination)}" Mailbox="${escapeXml(ctx.mailbox.address)}"/></m:ConvertIdResponseMessage>`,
    );
  }
  return {
    body: `<m:ConvertIdResponse><m:ResponseMessages>${messages.join('')}</m:ResponseMessages></m:ConvertIdResponse>`,
  };
}

/** GetUserAvailability: one empty (all free) FreeBusy answer per mailbox asked about. */
function getUserAvailability(op: XmlElement): EwsAnswer {
  const mailboxes =
    child(op, 'MailboxDataArray', messagesNs)?.children.filter((c) => c.local === 'MailboxData') ?? [];
  if (mailboxes.length === 0)
    return { schemaError: 'GetUserAvailabilityRequest needs MailboxDataArray/MailboxData.' };
  const view = text(child(child(op, 'FreeBusyViewOptions', typesNs), 'RequestedView', typesNs)) || 'FreeBusy';
  const one =
    '<m:FreeBusyResponse><m:ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>' +
    `</m:ResponseMessage><m:FreeBusyView><t:FreeBusyViewType>${escapeXml(view)}</t:FreeBusyViewType>` +
    '</m:FreeBusyView></m:FreeBusyResponse>';
  return {
    body: `<m:GetUserAvailabilityResponse><m:FreeBusyResponseArray>${one.repeat(mailboxes.length)}</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse>`,
  };
}

// A small strict XML reader for SOAP bodies: namespaces resolved, no DTD (so no entity expansion), the
// five predefined entities and character references only, bounded nesting.

interface XmlElement {
  readonly ns: string;
  readonly local: string;
  /** Unprefixed attributes by name (namespace declarations left out). */
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  readonly text: string;
}

class XmlSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
  }
}

const child = (e: XmlElement | undefined, local: string, ns?: string): XmlElement | undefined =>
  e?.children.find((c) => c.local === local && (ns === undefined || c.ns === ns));
const text = (e: XmlElement | undefined): string => e?.text ?? '';

const predefined: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function parseXml(xml: string): XmlElement {
  function fail(message: string, at: number): never {
    const before = xml.slice(0, at);
    const line = before.split('\n').length;
    throw new XmlSyntaxError(message, line, at - before.lastIndexOf('\n'));
  }
  const unescape = (raw: string, at: number): string =>
    raw.replace(/&([^;]*);|&/g, (whole, ref: string | undefined) => {
      const m = ref === undefined ? null : /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref);
      const code = m ? parseInt(m[1] ?? m[2] ?? '', m[1] ? 16 : 10) : undefined;
      const value =
        (ref !== undefined ? predefined[ref] : undefined) ??
        (code !== undefined && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : undefined);
      return value ?? fail(`unknown entity or stray & in ${JSON.stringify(whole)}`, at);
    });
  const dtd = /<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i.exec(xml);
  if (dtd) fail('DTDs are prohibited in EWS requests', dtd.index);

  interface Building {
    readonly qname: string;
    readonly prefix: string;
    readonly local: string;
    readonly attributes: Map<string, string>;
    readonly scope: ReadonlyMap<string, string>;
    readonly children: XmlElement[];
    readonly text: string[];
  }
  const stack: Building[] = [];
  let root: XmlElement | undefined;
  const name = /([A-Za-z_][\w.-]*)(?::([A-Za-z_][\w.-]*))?/y;
  const attribute = /\s+([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;
  const close = /\s*(\/?)>/y;
  let i = xml.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const end = lt < 0 ? xml.length : lt;
    if (end > i) {
      const top = stack.at(-1);
      if (top) top.text.push(unescape(xml.slice(i, end), i));
      else if (xml.slice(i, end).trim() !== '') fail('text outside the root element', i);
    }
    if (lt < 0) break;
    if (xml.startsWith('<?', lt) || xml.startsWith('<!--', lt)) {
      const pi = xml[lt + 1] === '?';
      const stop = xml.indexOf(pi ? '?>' : '-->', lt + 2);
      if (stop < 0) fail(pi ? 'unterminated processing instruction' : 'unterminated comment', lt);
      i = stop + (pi ? 2 : 3);
      continue;
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      const top = stack.at(-1);
      const stop = xml.indexOf(']]>', lt);
      if (!top || stop < 0) fail('misplaced or unterminated CDATA section', lt);
      top.text.push(xml.slice(lt + 9, stop));
      i = stop + 3;
      continue;
    }
    if (xml.startsWith('<!', lt)) fail('markup declarations are not accepted', lt);
    const closing = xml[lt + 1] === '/';
    name.lastIndex = lt + (closing ? 2 : 1);
    const n = name.exec(xml) ?? fail('malformed tag', lt);
    const qname = n[0];
    let at = name.lastIndex;
    const raw = new Map<string, string>();
    if (!closing) {
      attribute.lastIndex = at;
      for (let a = attribute.exec(xml); a; a = attribute.exec(xml)) {
        const key = a[1] ?? '';
        if (raw.has(key)) fail(`attribute ${key} appears twice`, a.index);
        raw.set(key, unescape(a[2] ?? a[3] ?? '', a.index));
        at = attribute.lastIndex;
      }
    }
    close.lastIndex = at;
    const c = close.exec(xml) ?? fail(`malformed tag <${qname}>`, at);
    if (closing && c[1] === '/') fail('malformed end tag', lt);
    i = close.lastIndex;
    if (closing) {
      const top = stack.pop();
      if (!top || top.qname !== qname) fail(`unexpected end tag </${qname}>`, lt);
      const done = finishElement(top, lt);
      const parent = stack.at(-1);
      if (parent) parent.children.push(done);
      else root = done;
      continue;
    }
    if (root !== undefined) fail('more than one root element', lt);
    if (stack.length >= xmlMaxDepth) fail(`elements nest deeper than ${xmlMaxDepth} levels`, lt);
    const scope = new Map(stack.at(-1)?.scope ?? [['xml', 'http://www.w3.org/XML/1998/namespace']]);
    const attributes = new Map<string, string>();
    for (const [k, v] of raw) {
      if (k === 'xmlns') scope.set('', v);
      else if (k.startsWith('xmlns:')) scope.set(k.slice(6), v);
      else if (!k.includes(':')) attributes.set(k, v);
    }
    const building: Building = {
      qname,
      prefix: n[2] === undefined ? '' : (n[1] ?? ''),
      local: n[2] ?? n[1] ?? '',
      attributes,
      scope,
      children: [],
      text: [],
    };
    stack.push(building);
    if (c[1] === '/') {
      stack.pop();
      const done = finishElement(building, lt);
      const parent = stack.at(-1);
      if (parent) parent.children.push(done);
      else root = done;
    }
  }
  if (stack.length > 0) fail(`element <${stack.at(-1)?.qname}> is not closed`, xml.length);
  return root ?? fail('no root element', xml.length);

  function finishElement(b: Building, at: number): XmlElement {
    const ns = b.scope.get(b.prefix);
    if (ns === undefined) fail(`namespace prefix ${b.prefix} is not declared`, at);
    return { ns, local: b.local, attributes: b.attributes, children: b.children, text: b.text.join('') };
  }
}

// ---------------------------------------------------------------------------------------------------
// OWA and ECP (protocol-facts §4.9): the page the user lands on after logon

async function page(req: IncomingMessage, res: ServerResponse, ctx: StoreContext): Promise<void> {
  const p = profiles[ctx.version];
  const title = ctx.protocol === 'owa' ? p.owaTitle : p.ecpTitle;
  if (title === undefined) return refuse(req, res, 404, `${p.product} has no ECP`);
  if (!['GET', 'HEAD', 'POST'].includes(req.method ?? ''))
    return refuse(req, res, 405, 'OWA/ECP pages take GET, HEAD and POST', { Allow: 'GET, HEAD, POST' });
  await drain(req);
  const { address, displayName } = ctx.mailbox;
  const html =
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    `<title>${escapeHtml(title)}</title></head><body>\n` +
    `<h1>${escapeHtml(title)}</h1>\n` +
    `<p id="user">${escapeHtml(displayName)} &lt;${escapeHtml(address)}&gt;</p>\n` +
    `<p id="server">Mailbox server ${escapeHtml(ctx.serverName)}, ${escapeHtml(p.product)} (${buildText(p)})</p>\n` +
    '<p id="simulator">coexist lab: mailbox store simulator</p>\n</body></html>\n';
  send(res, 200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'private' }, html);
}

// ---------------------------------------------------------------------------------------------------
// Outlook Anywhere (protocol-facts §4.7, MS-RPCH): two long-lived channels, never buffered

async function outlookAnywhere(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const channelHeaders = { 'Content-Type': 'application/rpc', 'Cache-Control': 'no-cache' };
  if (req.method === 'RPC_IN_DATA') {
    // Count and hash as the bytes arrive: the IN channel reserves 1 GiB (§4.7) and is never held in memory.
    const hash = createHash('sha256');
    const bytes = await drain(req, (chunk) => hash.update(chunk));
    const body = `RPC_IN_DATA bytes=${bytes} sha256=${hash.digest('hex')}\r\n`;
    res.writeHead(200, 'Success', { ...channelHeaders, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  if (req.method === 'RPC_OUT_DATA') {
    const asked = req.headers[rpcOutBytesHeader];
    const value = Array.isArray(asked) ? asked[0] : asked;
    if (value !== undefined && !/^\d{1,12}$/.test(value.trim()))
      return refuse(req, res, 400, `${rpcOutBytesHeader} is not a byte count`);
    const length = Math.min(value === undefined ? defaultOutBytes : Number(value), maxOutBytes);
    req.resume(); // the 76-byte OUT channel request body (§4.7) carries nothing the simulator needs
    // "200 Success" with the Content-Length of the whole channel (MS-RPCH OUT channel response [41d]).
    res.writeHead(200, 'Success', { ...channelHeaders, 'Content-Length': length });
    await streamPattern(res, length);
    return;
  }
  return refuse(req, res, 405, 'the RPC proxy takes RPC_IN_DATA and RPC_OUT_DATA', {
    Allow: 'RPC_IN_DATA, RPC_OUT_DATA',
  });
}

const patternChunk = Buffer.alloc(251 * 256, 0).map((_, i) => rpcOutDataByte(i));

/** Write `length` pattern bytes, waiting for 'drain' whenever the socket is full; stop if the client goes. */
async function streamPattern(res: ServerResponse, length: number): Promise<void> {
  let sent = 0;
  while (sent < length) {
    if (res.destroyed) return;
    // The chunk length is a multiple of the period, so every chunk starts at pattern offset 0.
    const n = Math.min(patternChunk.length, length - sent);
    const more = res.write(n === patternChunk.length ? patternChunk : patternChunk.subarray(0, n));
    sent += n;
    if (!more && !(await drained(res))) return;
  }
  res.end();
}

function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

// ---------------------------------------------------------------------------------------------------
// MAPI over HTTP (protocol-facts §4.8, MS-OXCMAPIHTTP)

async function mapiHttp(req: IncomingMessage, res: ServerResponse, ctx: StoreContext): Promise<void> {
  const p = profiles[ctx.version];
  const path = requestHead(req).path.toLowerCase().replace(/\/$/, '');
  if (!p.mapiHttp) return refuse(req, res, 404, `${p.product} has no MAPI/HTTP endpoint`);
  if (path !== '/mapi/emsmdb' && path !== '/mapi/nspi')
    return refuse(req, res, 404, 'not a MAPI/HTTP endpoint');
  if (req.method !== 'POST') return refuse(req, res, 405, 'MAPI/HTTP takes POST', { Allow: 'POST' });
  const header = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const requestType = header('x-requesttype');
  if (!requestType) return refuse(req, res, 400, 'X-RequestType is required');
  const started = new Date();
  await drain(req);
  const [major, minor, build, revision] = p.build;
  const pad = (v: number, n: number): string => String(v).padStart(n, '0');
  const headers: OutgoingHttpHeaders = {
    'Content-Type': 'application/mapi-http',
    'Cache-Control': 'private',
    'X-RequestType': requestType,
    'X-ResponseCode': '0',
    'X-ServerApplication': `Exchange/${pad(major, 2)}.${pad(minor, 2)}.${pad(build, 4)}.${pad(revision, 3)}`,
    'X-PendingPeriod': '30000',
  };
  // Exchange echoes the client's correlation headers (§4.8 [15]).
  for (const name of ['X-RequestId', 'X-ClientInfo']) {
    const v = header(name.toLowerCase());
    if (v !== undefined) headers[name] = v;
  }
  if (requestType.toLowerCase() === 'connect') {
    // Session context and sequence cookies (§4.8): opaque to clients, passed through by proxies.
    const context = createHash('sha256').update(
      `${ctx.serverName}\n${ctx.mailbox.address}\n${started.getTime()}`,
    );
    headers['Set-Cookie'] = [
      `MapiContext=${context.digest('hex').slice(0, 32)}; path=/mapi/emsmdb/; secure; HttpOnly`,
      'MapiSequence=1; path=/mapi/emsmdb/; secure; HttpOnly',
    ];
  }
  // No Content-Length: the answer is chunked, meta-tags first (MS-OXCMAPIHTTP response format [40c]).
  res.writeHead(200, headers);
  res.write('PROCESSING\r\n');
  res.write('DONE\r\n');
  res.write(
    `X-ResponseCode: 0\r\nX-ElapsedTime: ${Date.now() - started.getTime()}\r\nX-StartTime: ${started.toUTCString()}\r\n\r\n`,
  );
  res.end(mapiBody(requestType, ctx));
}

/** The binary answer after the meta-tags: success status and error codes, empty buffers. */
function mapiBody(requestType: string, ctx: StoreContext): Buffer {
  const u32 = (...values: number[]): Buffer => {
    const b = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
    return b;
  };
  switch (requestType.toLowerCase()) {
    case 'connect':
      // StatusCode, ErrorCode, PollsMax, RetryCount, RetryDelay, DnPrefix, DisplayName, AuxiliaryBufferSize.
      return Buffer.concat([
        u32(0, 0, 60_000, 6, 10_000),
        Buffer.from('/o=coexist lab/ou=Exchange Administrative Group/cn=Recipients\0', 'latin1'),
        Buffer.from(`${ctx.mailbox.displayName}\0`, 'utf16le'),
        u32(0),
      ]);
    case 'execute':
      // StatusCode, ErrorCode, Flags, RopBufferSize 0, AuxiliaryBufferSize 0.
      return u32(0, 0, 0, 0, 0);
    default:
      // StatusCode, ErrorCode, AuxiliaryBufferSize 0.
      return u32(0, 0, 0);
  }
}

// ---------------------------------------------------------------------------------------------------
// OAB (protocol-facts §2.2 OAB row): the manifest Outlook reads first

async function offlineAddressBook(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const m = /^\/oab\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/oab\.xml$/i.exec(
    requestHead(req).path,
  );
  if (!m) return refuse(req, res, 404, 'only /OAB/<guid>/oab.xml is simulated');
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return refuse(req, res, 405, 'the OAB is fetched with GET', { Allow: 'GET, HEAD' });
  await drain(req);
  const guid = (m[1] ?? '').toLowerCase();
  const sha = (what: string): string => createHash('sha1').update(`${guid}\n${what}`).digest('hex');
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n<OAB>\n' +
    `<OAL id="${guid}" dn="/o=coexist lab/cn=addrlists/cn=oabs/cn=Default Offline Address Book" ` +
    'name="\\Default Offline Address Book">\n' +
    `<Full seq="1" ver="32" size="2048" uncompressedsize="8192" SHA="${sha('full')}">${guid}-data-1.lzx</Full>\n` +
    `<Template seq="1" ver="32" size="1024" uncompressedsize="4096" SHA="${sha('template')}" langid="0409" ` +
    `type="windows">${guid}-lng0409-1.lzx</Template>\n</OAL>\n</OAB>\n`;
  send(res, 200, { ...xmlType, 'Cache-Control': 'private' }, xml);
}

// ---------------------------------------------------------------------------------------------------
// Plumbing

/** The request line and headers as the core's parsers expect them. */
function requestHead(req: IncomingMessage): RequestHead {
  let target = req.url ?? '/';
  if (!target.startsWith('/')) {
    // Absolute form (RFC 9112 §3.2.2): keep only path and query.
    const slash = target.indexOf('/', target.indexOf('//') + 2);
    target = slash < 0 ? '/' : target.slice(slash);
  }
  const q = target.indexOf('?');
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return {
    method: req.method ?? 'GET',
    host: req.headers.host ?? '',
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? '' : target.slice(q + 1),
    headers,
  };
}

/** Read the body, keeping at most `max` bytes; undefined when it is larger (the rest is discarded). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve(undefined);
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0)); // already read upstream of the store
  if (req.destroyed) return Promise.reject(new ClientGone());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        chunks.length = 0;
        resolve(undefined); // answered now; the remaining bytes are dropped with the connection
      } else chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', () => reject(new ClientGone()));
    req.once('close', () => {
      if (!req.complete) reject(new ClientGone());
    });
  });
}

/** Consume the body without keeping it, passing each chunk to `each`; resolves with the byte count. */
function drain(req: IncomingMessage, each?: (chunk: Buffer) => void): Promise<number> {
  if (req.readableEnded) return Promise.resolve(0); // already read upstream of the store
  if (req.destroyed) return Promise.reject(new ClientGone());
  return new Promise((resolve, reject) => {
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      each?.(chunk);
    });
    req.once('end', () => resolve(size));
    req.once('error', () => reject(new ClientGone()));
    req.once('close', () => {
      if (!req.complete) reject(new ClientGone());
    });
  });
}

function send(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  body?: string | Uint8Array,
): void {
  const bytes = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, 'Content-Length': bytes?.length ?? 0 });
  res.end(bytes);
}

/**
 * An error answer with an empty body, as Exchange sends them; `X-Lab-Reason` (simulator only) says why,
 * so a failing lab test shows the cause. A body too large to read closes the connection.
 */
async function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  reason: string,
  headers: OutgoingHttpHeaders = {},
): Promise<void> {
  const extra: OutgoingHttpHeaders = status === 413 ? { Connection: 'close' } : {};
  if (status !== 413) await drain(req);
  send(res, status, { ...headers, ...extra, 'X-Lab-Reason': reason.replace(/[^\x20-\x7e]/g, '?') });
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const escapeHtml = escapeXml;
