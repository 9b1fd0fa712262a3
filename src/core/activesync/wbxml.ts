/**
 * WBXML 1.3 as Exchange ActiveSync uses it (MS-ASWBXML): the header `03 01 6A 00` (version 1.3, unknown
 * public id, UTF-8, empty string table), tags from the ActiveSync code pages, inline strings (STR_I) and
 * opaque data (OPAQUE), and nothing else: ActiveSync uses no attributes, entities, string-table references
 * or extensions. Pure and table-driven: adding a code page is one entry in `codePages`.
 */

/** The ActiveSync namespaces (one per WBXML code page) this codec knows. */
export type WbxmlNamespace =
  | 'AirSync'
  | 'Contacts'
  | 'Email'
  | 'FolderHierarchy'
  | 'Ping'
  | 'Provision'
  | 'AirSyncBase'
  | 'Settings'
  | 'Email2';

/** One element: its namespace (code page), its tag name and its content in document order. */
export interface WbxmlElement {
  readonly ns: WbxmlNamespace;
  readonly tag: string;
  readonly children: readonly WbxmlNode[];
}

/** Element content: a child element, inline text (STR_I) or opaque bytes (OPAQUE). */
export type WbxmlNode = WbxmlElement | string | Uint8Array;

/** One WBXML code page: its number, its namespace and its tag tokens (0x05–0x3F). */
export interface CodePage {
  readonly page: number;
  readonly namespace: WbxmlNamespace;
  readonly tags: Readonly<Record<string, number>>;
}

/** Malformed or unsupported WBXML; `offset` is where in the input the decoder stopped. */
export class WbxmlError extends Error {
  override readonly name = 'WbxmlError';
  readonly offset: number | undefined;
  constructor(message: string, offset?: number) {
    super(offset === undefined ? message : `${message} (at byte ${offset})`);
    this.offset = offset;
  }
}

/** How deep elements may nest, in both directions (real ActiveSync documents stay under 15). */
export const wbxmlMaxDepth = 64;

/**
 * The code pages, with the tag names and tokens of MS-ASWBXML §2.1.2.1 (cross-checked against the
 * tables of Z-Push/grommunio-sync and a real server's answers in lab-notes/real-activesync-sogo.md).
 * Tokens marked 2.5 exist only in protocol version 2.5 but are kept so old clients still decode.
 */
export const codePages: readonly CodePage[] = [
  {
    page: 0,
    namespace: 'AirSync',
    tags: {
      Sync: 0x05,
      Responses: 0x06,
      Add: 0x07,
      Change: 0x08,
      Delete: 0x09,
      Fetch: 0x0a,
      SyncKey: 0x0b,
      ClientId: 0x0c,
      ServerId: 0x0d,
      Status: 0x0e,
      Collection: 0x0f,
      Class: 0x10,
      CollectionId: 0x12,
      GetChanges: 0x13,
      MoreAvailable: 0x14,
      WindowSize: 0x15,
      Commands: 0x16,
      Options: 0x17,
      FilterType: 0x18,
      Conflict: 0x1b,
      Collections: 0x1c,
      ApplicationData: 0x1d,
      DeletesAsMoves: 0x1e,
      Supported: 0x20,
      SoftDelete: 0x21,
      MIMESupport: 0x22,
      MIMETruncation: 0x23,
      Wait: 0x24,
      Limit: 0x25,
      Partial: 0x26,
      ConversationMode: 0x27,
      MaxItems: 0x28,
      HeartbeatInterval: 0x29,
    },
  },
  {
    // Minimal for now (issue 7 completes it): the names most contact items carry.
    page: 1,
    namespace: 'Contacts',
    tags: {
      Anniversary: 0x05,
      AssistantName: 0x06,
      Birthday: 0x08,
      BusinessPhoneNumber: 0x13,
      Categories: 0x15,
      Category: 0x16,
      CompanyName: 0x19,
      Department: 0x1a,
      Email1Address: 0x1b,
      Email2Address: 0x1c,
      Email3Address: 0x1d,
      FileAs: 0x1e,
      FirstName: 0x1f,
      HomePhoneNumber: 0x27,
      JobTitle: 0x28,
      LastName: 0x29,
      MiddleName: 0x2a,
      MobilePhoneNumber: 0x2b,
      Title: 0x36,
      WebPage: 0x37,
      Picture: 0x3c,
      Alias: 0x3d,
      WeightedRank: 0x3e,
    },
  },
  {
    page: 2,
    namespace: 'Email',
    tags: {
      Attachment: 0x05, // 2.5
      Attachments: 0x06, // 2.5
      AttName: 0x07, // 2.5
      AttSize: 0x08, // 2.5
      Att0Id: 0x09, // 2.5
      AttMethod: 0x0a, // 2.5
      AttRemoved: 0x0b, // 2.5
      Body: 0x0c, // 2.5
      BodySize: 0x0d, // 2.5
      BodyTruncated: 0x0e, // 2.5
      DateReceived: 0x0f,
      DisplayName: 0x10, // 2.5
      DisplayTo: 0x11,
      Importance: 0x12,
      MessageClass: 0x13,
      Subject: 0x14,
      Read: 0x15,
      To: 0x16,
      Cc: 0x17,
      From: 0x18,
      ReplyTo: 0x19,
      AllDayEvent: 0x1a,
      Categories: 0x1b,
      Category: 0x1c,
      DtStamp: 0x1d,
      EndTime: 0x1e,
      InstanceType: 0x1f,
      BusyStatus: 0x20,
      Location: 0x21,
      MeetingRequest: 0x22,
      Organizer: 0x23,
      RecurrenceId: 0x24,
      Reminder: 0x25,
      ResponseRequested: 0x26,
      Recurrences: 0x27,
      Recurrence: 0x28,
      Recurrence_Type: 0x29,
      Recurrence_Until: 0x2a,
      Recurrence_Occurrences: 0x2b,
      Recurrence_Interval: 0x2c,
      Recurrence_DayOfWeek: 0x2d,
      Recurrence_DayOfMonth: 0x2e,
      Recurrence_WeekOfMonth: 0x2f,
      Recurrence_MonthOfYear: 0x30,
      StartTime: 0x31,
      Sensitivity: 0x32,
      TimeZone: 0x33,
      GlobalObjId: 0x34,
      ThreadTopic: 0x35,
      MIMEData: 0x36, // 2.5
      MIMETruncated: 0x37, // 2.5
      MIMESize: 0x38, // 2.5
      InternetCPID: 0x39,
      Flag: 0x3a,
      FlagStatus: 0x3b,
      ContentClass: 0x3c,
      FlagType: 0x3d,
      CompleteTime: 0x3e,
      DisallowNewTimeProposal: 0x3f,
    },
  },
  {
    page: 7,
    namespace: 'FolderHierarchy',
    tags: {
      Folders: 0x05, // 2.5, 12.x
      Folder: 0x06, // 2.5, 12.x
      DisplayName: 0x07,
      ServerId: 0x08,
      ParentId: 0x09,
      Type: 0x0a,
      Status: 0x0c,
      Changes: 0x0e,
      Add: 0x0f,
      Delete: 0x10,
      Update: 0x11,
      SyncKey: 0x12,
      FolderCreate: 0x13,
      FolderDelete: 0x14,
      FolderUpdate: 0x15,
      FolderSync: 0x16,
      Count: 0x17,
    },
  },
  {
    page: 13,
    namespace: 'Ping',
    tags: {
      Ping: 0x05,
      AutdState: 0x06, // defined, not used by the protocol
      Status: 0x07,
      HeartbeatInterval: 0x08,
      Folders: 0x09,
      Folder: 0x0a,
      Id: 0x0b,
      Class: 0x0c,
      MaxFolders: 0x0d,
    },
  },
  {
    page: 14,
    namespace: 'Provision',
    tags: {
      Provision: 0x05,
      Policies: 0x06,
      Policy: 0x07,
      PolicyType: 0x08,
      PolicyKey: 0x09,
      Data: 0x0a,
      Status: 0x0b,
      RemoteWipe: 0x0c,
      EASProvisionDoc: 0x0d,
      DevicePasswordEnabled: 0x0e,
      AlphanumericDevicePasswordRequired: 0x0f,
      RequireStorageCardEncryption: 0x10,
      PasswordRecoveryEnabled: 0x11,
      AttachmentsEnabled: 0x13,
      MinDevicePasswordLength: 0x14,
      MaxInactivityTimeDeviceLock: 0x15,
      MaxDevicePasswordFailedAttempts: 0x16,
      MaxAttachmentSize: 0x17,
      AllowSimpleDevicePassword: 0x18,
      DevicePasswordExpiration: 0x19,
      DevicePasswordHistory: 0x1a,
      AllowStorageCard: 0x1b,
      AllowCamera: 0x1c,
      RequireDeviceEncryption: 0x1d,
      AllowUnsignedApplications: 0x1e,
      AllowUnsignedInstallationPackages: 0x1f,
      MinDevicePasswordComplexCharacters: 0x20,
      AllowWiFi: 0x21,
      AllowTextMessaging: 0x22,
      AllowPOPIMAPEmail: 0x23,
      AllowBluetooth: 0x24,
      AllowIrDA: 0x25,
      RequireManualSyncWhenRoaming: 0x26,
      AllowDesktopSync: 0x27,
      MaxCalendarAgeFilter: 0x28,
      AllowHTMLEmail: 0x29,
      MaxEmailAgeFilter: 0x2a,
      MaxEmailBodyTruncationSize: 0x2b,
      MaxEmailHTMLBodyTruncationSize: 0x2c,
      RequireSignedSMIMEMessages: 0x2d,
      RequireEncryptedSMIMEMessages: 0x2e,
      RequireSignedSMIMEAlgorithm: 0x2f,
      RequireEncryptionSMIMEAlgorithm: 0x30,
      AllowSMIMEEncryptionAlgorithmNegotiation: 0x31,
      AllowSMIMESoftCerts: 0x32,
      AllowBrowser: 0x33,
      AllowConsumerEmail: 0x34,
      AllowRemoteDesktop: 0x35,
      AllowInternetSharing: 0x36,
      UnapprovedInROMApplicationList: 0x37,
      ApplicationName: 0x38,
      ApprovedApplicationList: 0x39,
      Hash: 0x3a,
    },
  },
  {
    page: 17,
    namespace: 'AirSyncBase',
    tags: {
      BodyPreference: 0x05,
      Type: 0x06,
      TruncationSize: 0x07,
      AllOrNone: 0x08,
      Body: 0x0a,
      Data: 0x0b,
      EstimatedDataSize: 0x0c,
      Truncated: 0x0d,
      Attachments: 0x0e,
      Attachment: 0x0f,
      DisplayName: 0x10,
      FileReference: 0x11,
      Method: 0x12,
      ContentId: 0x13,
      ContentLocation: 0x14,
      IsInline: 0x15,
      NativeBodyType: 0x16,
      ContentType: 0x17,
      Preview: 0x18,
      BodyPartPreference: 0x19,
      BodyPart: 0x1a,
      Status: 0x1b,
    },
  },
  {
    page: 18,
    namespace: 'Settings',
    tags: {
      Settings: 0x05,
      Status: 0x06,
      Get: 0x07,
      Set: 0x08,
      Oof: 0x09,
      OofState: 0x0a,
      StartTime: 0x0b,
      EndTime: 0x0c,
      OofMessage: 0x0d,
      AppliesToInternal: 0x0e,
      AppliesToExternalKnown: 0x0f,
      AppliesToExternalUnknown: 0x10,
      Enabled: 0x11,
      ReplyMessage: 0x12,
      BodyType: 0x13,
      DevicePassword: 0x14,
      Password: 0x15,
      DeviceInformation: 0x16,
      Model: 0x17,
      IMEI: 0x18,
      FriendlyName: 0x19,
      OS: 0x1a,
      OSLanguage: 0x1b,
      PhoneNumber: 0x1c,
      UserInformation: 0x1d,
      EmailAddresses: 0x1e,
      SMTPAddress: 0x1f,
      UserAgent: 0x20,
      EnableOutboundSMS: 0x21,
      MobileOperator: 0x22,
      PrimarySmtpAddress: 0x23,
      Accounts: 0x24,
      Account: 0x25,
      AccountId: 0x26,
      AccountName: 0x27,
      UserDisplayName: 0x28,
      SendDisabled: 0x29,
      RightsManagementInformation: 0x2b,
    },
  },
  {
    page: 22,
    namespace: 'Email2',
    tags: {
      UmCallerID: 0x05,
      UmUserNotes: 0x06,
      UmAttDuration: 0x07,
      UmAttOrder: 0x08,
      ConversationId: 0x09,
      ConversationIndex: 0x0a,
      LastVerbExecuted: 0x0b,
      LastVerbExecutionTime: 0x0c,
      ReceivedAsBcc: 0x0d,
      Sender: 0x0e,
      CalendarType: 0x0f,
      IsLeapMonth: 0x10,
      AccountId: 0x11,
      FirstDayOfWeek: 0x12,
      MeetingMessageType: 0x13,
    },
  },
];

interface PageIndex {
  readonly page: number;
  readonly namespace: WbxmlNamespace;
  readonly tokenOf: ReadonlyMap<string, number>;
  readonly tagOf: ReadonlyMap<number, string>;
}

const pageByNumber = new Map<number, PageIndex>();
const pageByNamespace = new Map<string, PageIndex>();
for (const p of codePages) {
  const entries = Object.entries(p.tags);
  const index: PageIndex = {
    page: p.page,
    namespace: p.namespace,
    tokenOf: new Map(entries),
    tagOf: new Map(entries.map(([tag, token]) => [token, tag])),
  };
  pageByNumber.set(p.page, index);
  pageByNamespace.set(p.namespace, index);
}

// Global tokens (WBXML 1.3 §7.1). Every byte whose low six bits are below 5 is one of them.
const SWITCH_PAGE = 0x00;
const END = 0x01;
const STR_I = 0x03;
const OPAQUE = 0xc3;
const WITH_CONTENT = 0x40;
const WITH_ATTRIBUTES = 0x80;
const globalNames: Readonly<Record<number, string>> = {
  0x02: 'ENTITY',
  0x04: 'LITERAL',
  0x40: 'EXT_I_0',
  0x41: 'EXT_I_1',
  0x42: 'EXT_I_2',
  0x43: 'PI',
  0x44: 'LITERAL_C',
  0x80: 'EXT_T_0',
  0x81: 'EXT_T_1',
  0x82: 'EXT_T_2',
  0x83: 'STR_T',
  0x84: 'LITERAL_A',
  0xc0: 'EXT_0',
  0xc1: 'EXT_1',
  0xc2: 'EXT_2',
  0xc4: 'LITERAL_AC',
};

// The header every ActiveSync body carries (MS-ASWBXML §2.1.1): version 1.3, public id 1 ("unknown"),
// charset 106 (UTF-8, IANA MIBenum), string table length 0.
const VERSION_1_3 = 0x03;
const PUBLIC_ID_UNKNOWN = 0x01;
const CHARSET_UTF8 = 106;
const header = Uint8Array.of(VERSION_1_3, PUBLIC_ID_UNKNOWN, CHARSET_UTF8, 0x00);

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a leading U+FEFF stays part of the text.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;

/** Bounds-checked reading; every read consumes at least one byte, so decoding always terminates. */
class Reader {
  at = 0;
  constructor(private readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.bytes.length;
  }

  byte(what: string): number {
    const b = this.bytes[this.at];
    if (b === undefined) throw new WbxmlError(`truncated: expected ${what}`, this.at);
    this.at++;
    return b;
  }

  /** mb_u_int32 (WBXML §5.1): big-endian 7-bit groups, high bit = more follow; at most 5 bytes. */
  mbUint32(what: string): number {
    const start = this.at;
    let value = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte(what);
      value = value * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) {
        if (value > 0xffffffff) throw new WbxmlError(`${what} does not fit in 32 bits`, start);
        return value;
      }
    }
    throw new WbxmlError(`${what} is an mb_u_int32 longer than 5 bytes`, start);
  }

  cString(): string {
    const start = this.at;
    const end = this.bytes.indexOf(0, start);
    if (end < 0) throw new WbxmlError('truncated: inline string without its terminating 0x00', start);
    this.at = end + 1;
    try {
      return utf8Decoder.decode(this.bytes.subarray(start, end));
    } catch {
      throw new WbxmlError('inline string is not UTF-8', start);
    }
  }

  take(n: number, what: string): Uint8Array {
    if (n > this.bytes.length - this.at)
      throw new WbxmlError(`${what} of ${n} bytes runs past the end of the input`, this.at);
    this.at += n;
    return this.bytes.slice(this.at - n, this.at);
  }
}

interface Open {
  readonly ns: WbxmlNamespace;
  readonly tag: string;
  readonly children: WbxmlNode[];
}

/** Decode an ActiveSync WBXML body into its root element; throws `WbxmlError` on anything malformed. */
export function decodeWbxml(bytes: Uint8Array): WbxmlElement {
  const r = new Reader(bytes);
  const version = r.byte('the WBXML version');
  if (version !== VERSION_1_3) throw new WbxmlError(`WBXML version ${hex(version)} is not 1.3 (0x03)`, 0);
  const publicId = r.mbUint32('the public id');
  if (publicId !== PUBLIC_ID_UNKNOWN)
    throw new WbxmlError(`public id ${publicId} is not 1; ActiveSync sends no document type`, 1);
  const charset = r.mbUint32('the charset');
  if (charset !== CHARSET_UTF8) throw new WbxmlError(`charset ${charset} is not 106 (UTF-8)`);
  const tableLength = r.mbUint32('the string table length');
  if (tableLength !== 0) throw new WbxmlError('ActiveSync bodies have no string table', r.at - 1);

  let page = pageByNumber.get(0) as PageIndex;
  const open: Open[] = [];
  for (;;) {
    const at = r.at;
    const token = r.byte(open.length === 0 ? 'the root element' : `content or END of <${open.at(-1)?.tag}>`);
    const top = open.at(-1);
    if ((token & 0x3f) < 5) {
      // A global token.
      if (token === SWITCH_PAGE) {
        const n = r.byte('a code page number');
        const next = pageByNumber.get(n);
        if (!next) throw new WbxmlError(`unknown code page ${n}`, at);
        page = next;
      } else if (token === END) {
        if (!top) throw new WbxmlError('END outside any element', at);
        open.pop();
        const done: WbxmlElement = { ns: top.ns, tag: top.tag, children: top.children };
        const parent = open.at(-1);
        if (!parent) return finish(r, done);
        parent.children.push(done);
      } else if (token === STR_I || token === OPAQUE) {
        if (!top) throw new WbxmlError('content before the root element', at);
        top.children.push(
          token === STR_I ? r.cString() : r.take(r.mbUint32('an opaque length'), 'opaque data'),
        );
      } else {
        throw new WbxmlError(
          `global token ${globalNames[token] ?? hex(token)} is not used by ActiveSync`,
          at,
        );
      }
      continue;
    }
    if (token & WITH_ATTRIBUTES) throw new WbxmlError('attributes are not used by ActiveSync', at);
    const tag = page.tagOf.get(token & 0x3f);
    if (tag === undefined)
      throw new WbxmlError(`unknown tag token ${hex(token & 0x3f)} in code page ${page.page}`, at);
    if (open.length >= wbxmlMaxDepth)
      throw new WbxmlError(`elements nest deeper than ${wbxmlMaxDepth} levels`, at);
    const element: Open = { ns: page.namespace, tag, children: [] };
    if (token & WITH_CONTENT) open.push(element);
    else if (top) top.children.push(element);
    else return finish(r, element);
  }
}

function finish(r: Reader, root: WbxmlElement): WbxmlElement {
  if (!r.done) throw new WbxmlError('bytes after the end of the root element', r.at);
  return root;
}

/** A growable byte buffer. */
class Writer {
  private buf = new Uint8Array(256);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.length++] = b;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  mbUint32(n: number): void {
    const groups = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) groups.unshift((v & 0x7f) | 0x80);
    for (const g of groups) this.byte(g);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Encode a root element as an ActiveSync WBXML body; throws `WbxmlError` for names no code page has. */
export function encodeWbxml(root: WbxmlElement): Uint8Array {
  const w = new Writer();
  w.bytes(header);
  let page = 0;
  const emit = (el: WbxmlElement, depth: number): void => {
    if (depth > wbxmlMaxDepth) throw new WbxmlError(`elements nest deeper than ${wbxmlMaxDepth} levels`);
    const p = pageByNamespace.get(el.ns);
    if (!p) throw new WbxmlError(`unknown namespace ${el.ns}`);
    const token = p.tokenOf.get(el.tag);
    if (token === undefined) throw new WbxmlError(`${el.ns} has no tag ${el.tag}`);
    if (p.page !== page) {
      w.byte(SWITCH_PAGE);
      w.byte(p.page);
      page = p.page;
    }
    if (el.children.length === 0) {
      w.byte(token);
      return;
    }
    w.byte(token | WITH_CONTENT);
    for (const child of el.children) {
      if (typeof child === 'string') {
        if (child.includes('\0')) throw new WbxmlError(`text of ${el.tag} contains U+0000`);
        w.byte(STR_I);
        w.bytes(utf8Encoder.encode(child));
        w.byte(0);
      } else if (child instanceof Uint8Array) {
        w.byte(OPAQUE);
        w.mbUint32(child.length);
        w.bytes(child);
      } else {
        emit(child, depth + 1);
      }
    }
    w.byte(END);
  };
  emit(root, 1);
  return w.result();
}

/** Build an element; numbers become their decimal text. */
export function wbxmlElement(
  ns: WbxmlNamespace,
  tag: string,
  ...children: readonly (WbxmlNode | number)[]
): WbxmlElement {
  return { ns, tag, children: children.map((c) => (typeof c === 'number' ? String(c) : c)) };
}

const isElement = (n: WbxmlNode): n is WbxmlElement => typeof n === 'object' && !(n instanceof Uint8Array);

/** The child elements of `el`, or only those named `tag` (in `ns`, when given). */
export function childElements(el: WbxmlElement, tag?: string, ns?: WbxmlNamespace): WbxmlElement[] {
  return el.children.filter(
    (c): c is WbxmlElement =>
      isElement(c) && (tag === undefined || c.tag === tag) && (ns === undefined || c.ns === ns),
  );
}

/** The first child element named `tag` (in `ns`, when given). */
export function childElement(el: WbxmlElement, tag: string, ns?: WbxmlNamespace): WbxmlElement | undefined {
  return el.children.find(
    (c): c is WbxmlElement => isElement(c) && c.tag === tag && (ns === undefined || c.ns === ns),
  );
}

/** The element's own text: its string children joined (opaque data and child elements left out). */
export function textOf(el: WbxmlElement | undefined): string {
  return el ? el.children.filter((c): c is string => typeof c === 'string').join('') : '';
}

const xmlEscape = (s: string): string =>
  s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] ?? c);

/**
 * The element as XML in the notation of libwbxml's `wbxml2xml` (`xmlns="FolderHierarchy:"` where the
 * namespace changes) for logs and test messages; opaque data shows as `[opaque <n> bytes]`.
 */
export function wbxmlToXml(root: WbxmlElement): string {
  const render = (el: WbxmlElement, parentNs: WbxmlNamespace | undefined): string => {
    const ns = el.ns === parentNs ? '' : ` xmlns="${el.ns}:"`;
    if (el.children.length === 0) return `<${el.tag}${ns}/>`;
    const inner = el.children
      .map((c) =>
        typeof c === 'string'
          ? xmlEscape(c)
          : c instanceof Uint8Array
            ? `[opaque ${c.length} bytes]`
            : render(c, el.ns),
      )
      .join('');
    return `<${el.tag}${ns}>${inner}</${el.tag}>`;
  };
  return render(root, undefined);
}
