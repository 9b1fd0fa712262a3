/**
 * WBXML 1.3 (WAP-192-WBXML) as Exchange ActiveSync uses it (MS-ASWBXML). Pure and table-driven: adding a
 * code page is one entry in `codePages`.
 *
 * What the decoder accepts (inputs are untrusted: they come from phones through the proxy):
 * - the header `03 01 6A 00` every ActiveSync peer sends (version 1.3, public id 1 "unknown", UTF-8,
 *   empty string table), and also what WBXML allows beyond it and libwbxml writes: a public id given as a
 *   string-table reference (`00 <index>`, naming the ActiveSync DTD) and a non-empty string table;
 * - tags from the 25 code pages below, with or without the content bit, SWITCH_PAGE before a tag, END,
 *   inline strings (STR_I), references into the string table (STR_T) and opaque data (OPAQUE);
 * - nothing else: attributes, ENTITY, LITERAL tags, PI and the extension tokens are a `WbxmlError`
 *   (MS-ASWBXML: ActiveSync uses none of them; libwbxml never writes them for ActiveSync XML either).
 * Every failure is a `WbxmlError`; every read consumes input, so decoding is linear in the input and
 * always ends; nesting is capped (`wbxmlMaxDepth`), a string table or opaque block cannot be longer than
 * the input, and STR_T references may not expand the text beyond `wbxmlMaxStringTableExpansion` times the
 * input length.
 *
 * What the encoder writes: always the canonical header `03 01 6A 00` and never a string table; text as
 * STR_I, `Uint8Array` content as OPAQUE; SWITCH_PAGE only where the code page changes; an element without
 * children as its bare token (no content bit). Text must be well-formed UTF-16 without U+0000: a lone
 * surrogate or a NUL is a `WbxmlError` (UTF-8 cannot carry the one, a WBXML inline string not the other),
 * so `decodeWbxml(encodeWbxml(t))` gives back `t` exactly.
 */

/** The ActiveSync namespaces, one per WBXML code page (MS-ASWBXML §2.1.2.1). */
export type WbxmlNamespace =
  | 'AirSync'
  | 'Contacts'
  | 'Email'
  | 'AirNotify'
  | 'Calendar'
  | 'Move'
  | 'GetItemEstimate'
  | 'FolderHierarchy'
  | 'MeetingResponse'
  | 'Tasks'
  | 'ResolveRecipients'
  | 'ValidateCert'
  | 'Contacts2'
  | 'Ping'
  | 'Provision'
  | 'Search'
  | 'GAL'
  | 'AirSyncBase'
  | 'Settings'
  | 'DocumentLibrary'
  | 'ItemOperations'
  | 'ComposeMail'
  | 'Email2'
  | 'Notes'
  | 'RightsManagement';

/** One element: its namespace (code page), its tag name and its content in document order. */
export interface WbxmlElement {
  readonly ns: WbxmlNamespace;
  readonly tag: string;
  readonly children: readonly WbxmlNode[];
}

/** Element content: a child element, text (STR_I or STR_T) or opaque bytes (OPAQUE). */
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
 * How much text STR_T references may produce, as a multiple of the input length. A string table lets a
 * few bytes stand for a long string, so without a bound a 1 MB body could decode to terabytes of text.
 * libwbxml's string tables stay far below this (each reference costs at least two bytes).
 */
export const wbxmlMaxStringTableExpansion = 16;

/**
 * The code pages with the tag names and tokens of MS-ASWBXML §2.1.2.1.1–25, cross-checked against
 * Microsoft's own MS-ASWBXML implementation (OfficeDev/Interop-TestSuites), the element names of the
 * MS-AS* schemas, libwbxml 0.11.8's tables (test/activesync/wbxml-libwbxml.test.ts compares every token)
 * and Z-Push/grommunio-sync. Tokens marked 2.5 exist only in protocol version 2.5 but are kept so old
 * clients still decode. Tokens the current specification no longer defines are left out, so they fail to
 * decode rather than decode under a guessed name.
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
    page: 1,
    namespace: 'Contacts',
    tags: {
      Anniversary: 0x05,
      AssistantName: 0x06,
      AssistantPhoneNumber: 0x07,
      Birthday: 0x08,
      Body: 0x09, // 2.5
      BodySize: 0x0a, // 2.5
      BodyTruncated: 0x0b, // 2.5
      Business2PhoneNumber: 0x0c,
      BusinessAddressCity: 0x0d,
      BusinessAddressCountry: 0x0e,
      BusinessAddressPostalCode: 0x0f,
      BusinessAddressState: 0x10,
      BusinessAddressStreet: 0x11,
      BusinessFaxNumber: 0x12,
      BusinessPhoneNumber: 0x13,
      CarPhoneNumber: 0x14,
      Categories: 0x15,
      Category: 0x16,
      Children: 0x17,
      Child: 0x18,
      CompanyName: 0x19,
      Department: 0x1a,
      Email1Address: 0x1b,
      Email2Address: 0x1c,
      Email3Address: 0x1d,
      FileAs: 0x1e,
      FirstName: 0x1f,
      Home2PhoneNumber: 0x20,
      HomeAddressCity: 0x21,
      HomeAddressCountry: 0x22,
      HomeAddressPostalCode: 0x23,
      HomeAddressState: 0x24,
      HomeAddressStreet: 0x25,
      HomeFaxNumber: 0x26,
      HomePhoneNumber: 0x27,
      JobTitle: 0x28,
      LastName: 0x29,
      MiddleName: 0x2a,
      MobilePhoneNumber: 0x2b,
      OfficeLocation: 0x2c,
      OtherAddressCity: 0x2d,
      OtherAddressCountry: 0x2e,
      OtherAddressPostalCode: 0x2f,
      OtherAddressState: 0x30,
      OtherAddressStreet: 0x31,
      PagerNumber: 0x32,
      RadioPhoneNumber: 0x33,
      Spouse: 0x34,
      Suffix: 0x35,
      Title: 0x36,
      WebPage: 0x37,
      YomiCompanyName: 0x38,
      YomiFirstName: 0x39,
      YomiLastName: 0x3a,
      CompressedRTF: 0x3b, // 2.5
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
      // The children of Recurrence (MS-ASEMAIL); libwbxml calls them Recurrence_Type and so on.
      Type: 0x29,
      Until: 0x2a,
      Occurrences: 0x2b,
      Interval: 0x2c,
      DayOfWeek: 0x2d,
      DayOfMonth: 0x2e,
      WeekOfMonth: 0x2f,
      MonthOfYear: 0x30,
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
      Status: 0x3b, // the flag's status (MS-ASEMAIL Flag/Status); libwbxml and Z-Push call it FlagStatus
      ContentClass: 0x3c,
      FlagType: 0x3d,
      CompleteTime: 0x3e,
      DisallowNewTimeProposal: 0x3f,
    },
  },
  {
    // MS-ASWBXML: "no longer in use"; the specification lists no tags, so none decode.
    page: 3,
    namespace: 'AirNotify',
    tags: {},
  },
  {
    page: 4,
    namespace: 'Calendar',
    tags: {
      Timezone: 0x05,
      AllDayEvent: 0x06,
      Attendees: 0x07,
      Attendee: 0x08,
      Email: 0x09,
      Name: 0x0a,
      Body: 0x0b, // 2.5
      BodyTruncated: 0x0c, // 2.5
      BusyStatus: 0x0d,
      Categories: 0x0e,
      Category: 0x0f,
      CompressedRTF: 0x10, // 2.5
      DtStamp: 0x11,
      EndTime: 0x12,
      Exception: 0x13,
      Exceptions: 0x14,
      Deleted: 0x15,
      ExceptionStartTime: 0x16,
      Location: 0x17,
      MeetingStatus: 0x18,
      OrganizerEmail: 0x19,
      OrganizerName: 0x1a,
      Recurrence: 0x1b,
      Type: 0x1c,
      Until: 0x1d,
      Occurrences: 0x1e,
      Interval: 0x1f,
      DayOfWeek: 0x20,
      DayOfMonth: 0x21,
      WeekOfMonth: 0x22,
      MonthOfYear: 0x23,
      Reminder: 0x24,
      Sensitivity: 0x25,
      Subject: 0x26,
      StartTime: 0x27,
      UID: 0x28,
      AttendeeStatus: 0x29,
      AttendeeType: 0x2a,
      DisallowNewTimeProposal: 0x33,
      ResponseRequested: 0x34,
      AppointmentReplyTime: 0x35,
      ResponseType: 0x36,
      CalendarType: 0x37,
      IsLeapMonth: 0x38,
      FirstDayOfWeek: 0x39,
      OnlineMeetingConfLink: 0x3a,
      OnlineMeetingExternalLink: 0x3b,
      ClientUid: 0x3c,
    },
  },
  {
    page: 5,
    namespace: 'Move',
    tags: {
      MoveItems: 0x05,
      Move: 0x06,
      SrcMsgId: 0x07,
      SrcFldId: 0x08,
      DstFldId: 0x09,
      Response: 0x0a,
      Status: 0x0b,
      DstMsgId: 0x0c,
    },
  },
  {
    page: 6,
    namespace: 'GetItemEstimate',
    tags: {
      GetItemEstimate: 0x05,
      Collections: 0x07,
      Collection: 0x08,
      Class: 0x09,
      CollectionId: 0x0a,
      Estimate: 0x0c,
      Response: 0x0d,
      Status: 0x0e,
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
    page: 8,
    namespace: 'MeetingResponse',
    tags: {
      CalendarId: 0x05,
      CollectionId: 0x06,
      MeetingResponse: 0x07,
      RequestId: 0x08,
      Request: 0x09,
      Result: 0x0a,
      Status: 0x0b,
      UserResponse: 0x0c,
      InstanceId: 0x0e,
      SendResponse: 0x12,
    },
  },
  {
    page: 9,
    namespace: 'Tasks',
    tags: {
      Body: 0x05, // 2.5
      BodySize: 0x06, // 2.5
      BodyTruncated: 0x07, // 2.5
      Categories: 0x08,
      Category: 0x09,
      Complete: 0x0a,
      DateCompleted: 0x0b,
      DueDate: 0x0c,
      UtcDueDate: 0x0d,
      Importance: 0x0e,
      Recurrence: 0x0f,
      Type: 0x10,
      Start: 0x11,
      Until: 0x12,
      Occurrences: 0x13,
      Interval: 0x14,
      DayOfMonth: 0x15,
      DayOfWeek: 0x16,
      WeekOfMonth: 0x17,
      MonthOfYear: 0x18,
      Regenerate: 0x19,
      DeadOccur: 0x1a,
      ReminderSet: 0x1b,
      ReminderTime: 0x1c,
      Sensitivity: 0x1d,
      StartDate: 0x1e,
      UtcStartDate: 0x1f,
      Subject: 0x20,
      CompressedRTF: 0x21, // 2.5
      OrdinalDate: 0x22,
      SubOrdinalDate: 0x23,
      CalendarType: 0x24,
      IsLeapMonth: 0x25,
      FirstDayOfWeek: 0x26,
    },
  },
  {
    page: 10,
    namespace: 'ResolveRecipients',
    tags: {
      ResolveRecipients: 0x05,
      Response: 0x06,
      Status: 0x07,
      Type: 0x08,
      Recipient: 0x09,
      DisplayName: 0x0a,
      EmailAddress: 0x0b,
      Certificates: 0x0c,
      Certificate: 0x0d,
      MiniCertificate: 0x0e,
      Options: 0x0f,
      To: 0x10,
      CertificateRetrieval: 0x11,
      RecipientCount: 0x12,
      MaxCertificates: 0x13,
      MaxAmbiguousRecipients: 0x14,
      CertificateCount: 0x15,
      Availability: 0x16,
      StartTime: 0x17,
      EndTime: 0x18,
      MergedFreeBusy: 0x19,
      Picture: 0x1a,
      MaxSize: 0x1b,
      Data: 0x1c,
      MaxPictures: 0x1d,
    },
  },
  {
    page: 11,
    namespace: 'ValidateCert',
    tags: {
      ValidateCert: 0x05,
      Certificates: 0x06,
      Certificate: 0x07,
      CertificateChain: 0x08,
      CheckCrl: 0x09, // libwbxml: CheckCRL
      Status: 0x0a,
    },
  },
  {
    page: 12,
    namespace: 'Contacts2',
    tags: {
      CustomerId: 0x05,
      GovernmentId: 0x06,
      IMAddress: 0x07,
      IMAddress2: 0x08,
      IMAddress3: 0x09,
      ManagerName: 0x0a,
      CompanyMainPhone: 0x0b,
      AccountName: 0x0c,
      NickName: 0x0d,
      MMS: 0x0e,
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
      RequireStorageCardEncryption: 0x10, // libwbxml: DeviceEncryptionEnabled (its 12.0 name)
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
      AccountOnlyRemoteWipe: 0x3b, // 16.1; not in libwbxml 0.11.8
    },
  },
  {
    page: 15,
    namespace: 'Search',
    tags: {
      Search: 0x05,
      Store: 0x07,
      Name: 0x08,
      Query: 0x09,
      Options: 0x0a,
      Range: 0x0b,
      Status: 0x0c,
      Response: 0x0d,
      Result: 0x0e,
      Properties: 0x0f,
      Total: 0x10,
      EqualTo: 0x11,
      Value: 0x12,
      And: 0x13,
      Or: 0x14,
      FreeText: 0x15,
      DeepTraversal: 0x17,
      LongId: 0x18,
      RebuildResults: 0x19,
      LessThan: 0x1a,
      GreaterThan: 0x1b,
      UserName: 0x1e,
      Password: 0x1f,
      ConversationId: 0x20,
      Picture: 0x21,
      MaxSize: 0x22,
      MaxPictures: 0x23,
    },
  },
  {
    page: 16,
    namespace: 'GAL', // libwbxml: "Gal"
    tags: {
      DisplayName: 0x05,
      Phone: 0x06,
      Office: 0x07,
      Title: 0x08,
      Company: 0x09,
      Alias: 0x0a,
      FirstName: 0x0b,
      LastName: 0x0c,
      HomePhone: 0x0d,
      MobilePhone: 0x0e,
      EmailAddress: 0x0f,
      Picture: 0x10,
      Status: 0x11,
      Data: 0x12,
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
      Add: 0x1c, // 16.0 and later, down to InstanceId
      Delete: 0x1d,
      ClientId: 0x1e,
      Content: 0x1f,
      Location: 0x20,
      Annotation: 0x21,
      Street: 0x22,
      City: 0x23,
      State: 0x24,
      Country: 0x25,
      PostalCode: 0x26,
      Latitude: 0x27,
      Longitude: 0x28,
      Accuracy: 0x29,
      Altitude: 0x2a,
      AltitudeAccuracy: 0x2b,
      LocationUri: 0x2c,
      InstanceId: 0x2d,
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
      SMTPAddress: 0x1f, // libwbxml: SmtpAddress
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
      RightsManagementInformation: 0x2b, // libwbxml 0.11.8 misspells it "ihsManagementInformation"
    },
  },
  {
    page: 19,
    namespace: 'DocumentLibrary',
    tags: {
      LinkId: 0x05,
      DisplayName: 0x06,
      IsFolder: 0x07,
      CreationDate: 0x08,
      LastModifiedDate: 0x09,
      IsHidden: 0x0a,
      ContentLength: 0x0b,
      ContentType: 0x0c,
    },
  },
  {
    page: 20,
    namespace: 'ItemOperations',
    tags: {
      ItemOperations: 0x05,
      Fetch: 0x06,
      Store: 0x07,
      Options: 0x08,
      Range: 0x09,
      Total: 0x0a,
      Properties: 0x0b,
      Data: 0x0c,
      Status: 0x0d,
      Response: 0x0e,
      Version: 0x0f,
      Schema: 0x10,
      Part: 0x11,
      EmptyFolderContents: 0x12,
      DeleteSubFolders: 0x13,
      UserName: 0x14,
      Password: 0x15,
      Move: 0x16,
      DstFldId: 0x17,
      ConversationId: 0x18,
      MoveAlways: 0x19,
    },
  },
  {
    page: 21,
    namespace: 'ComposeMail',
    tags: {
      SendMail: 0x05,
      SmartForward: 0x06,
      SmartReply: 0x07,
      SaveInSentItems: 0x08,
      ReplaceMime: 0x09,
      Source: 0x0b,
      FolderId: 0x0c,
      ItemId: 0x0d,
      LongId: 0x0e,
      InstanceId: 0x0f,
      Mime: 0x10, // libwbxml: MIME
      ClientId: 0x11,
      Status: 0x12,
      AccountId: 0x13,
      Forwardees: 0x15,
      Forwardee: 0x16,
      ForwardeeName: 0x17,
      ForwardeeEmail: 0x18,
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
      IsDraft: 0x15,
      Bcc: 0x16,
      Send: 0x17,
    },
  },
  {
    page: 23,
    namespace: 'Notes',
    tags: {
      Subject: 0x05,
      MessageClass: 0x06,
      LastModifiedDate: 0x07,
      Categories: 0x08,
      Category: 0x09,
    },
  },
  {
    page: 24,
    namespace: 'RightsManagement',
    tags: {
      RightsManagementSupport: 0x05,
      RightsManagementTemplates: 0x06,
      RightsManagementTemplate: 0x07,
      RightsManagementLicense: 0x08,
      EditAllowed: 0x09,
      ReplyAllowed: 0x0a,
      ReplyAllAllowed: 0x0b,
      ForwardAllowed: 0x0c,
      ModifyRecipientsAllowed: 0x0d,
      ExtractAllowed: 0x0e,
      PrintAllowed: 0x0f,
      ExportAllowed: 0x10,
      ProgrammaticAccessAllowed: 0x11,
      Owner: 0x12, // libwbxml: RMOwner
      ContentExpiryDate: 0x13,
      TemplateID: 0x14,
      TemplateName: 0x15,
      TemplateDescription: 0x16,
      ContentOwner: 0x17,
      RemoveRightsManagementProtection: 0x18, // libwbxml: RemoveRightsManagementDistribution
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
const STR_T = 0x83;
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
  0x84: 'LITERAL_A',
  0xc0: 'EXT_0',
  0xc1: 'EXT_1',
  0xc2: 'EXT_2',
  0xc4: 'LITERAL_AC',
};

// The header every ActiveSync body carries (MS-ASWBXML §2.1.1): version 1.3, public id 1 ("unknown"),
// charset 106 (UTF-8, IANA MIBenum), string table length 0.
const VERSION_1_3 = 0x03;
const PUBLIC_ID_IN_STRING_TABLE = 0x00;
const PUBLIC_ID_UNKNOWN = 0x01;
const CHARSET_UTF8 = 106;
const header = Uint8Array.of(VERSION_1_3, PUBLIC_ID_UNKNOWN, CHARSET_UTF8, 0x00);

/**
 * The document types a public id in the string table may name: the ActiveSync DTD of MS-ASWBXML's XML
 * notation (what `xml2wbxml` writes for `<!DOCTYPE ActiveSync PUBLIC "-//MICROSOFT//DTD ActiveSync//EN" …>`)
 * and libwbxml's older name for the same tokens.
 */
const activeSyncPublicIds: ReadonlySet<string> = new Set([
  '-//MICROSOFT//DTD ActiveSync//EN',
  '-//AIRSYNC//DTD AirSync//EN',
]);

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a leading U+FEFF stays part of the text.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;

function utf8(bytes: Uint8Array, what: string, at: number): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new WbxmlError(`${what} is not UTF-8`, at);
  }
}

/** Bounds-checked reading; every read consumes at least one byte, so decoding always terminates. */
class Reader {
  at = 0;
  constructor(private readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.bytes.length;
  }

  /** `what` names the expected byte for the error message; a function when building it costs. */
  byte(what: string | (() => string)): number {
    const b = this.bytes[this.at];
    if (b === undefined)
      throw new WbxmlError(`truncated: expected ${typeof what === 'string' ? what : what()}`, this.at);
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
    return utf8(this.bytes.subarray(start, end), 'inline string', start);
  }

  take(n: number, what: string): Uint8Array {
    if (n > this.bytes.length - this.at)
      throw new WbxmlError(`${what} of ${n} bytes runs past the end of the input`, this.at);
    this.at += n;
    // A copy, and a plain Uint8Array even when the input is a Buffer (whose slice() is a view): decoded
    // opaque data must not alias, nor keep alive, the request body it came from.
    return new Uint8Array(this.bytes.subarray(this.at - n, this.at));
  }
}

/**
 * The string table (WBXML §5.7): NUL-terminated strings, referenced by byte offset. A reference may
 * point into the middle of a string and reads up to the next NUL. Decoded strings are cached per offset;
 * every reference is charged against `budget` bytes so that references cannot multiply the text.
 */
class StringTable {
  private readonly cache = new Map<number, { readonly text: string; readonly size: number }>();
  private spent = 0;
  constructor(
    private readonly table: Uint8Array,
    private readonly budget: number,
  ) {}

  at(offset: number, what: string, at: number): string {
    if (offset >= this.table.length)
      throw new WbxmlError(
        `${what} refers to offset ${offset} of a string table of ${this.table.length} bytes`,
        at,
      );
    const cached = this.cache.get(offset);
    if (cached) {
      this.charge(cached.size, at);
      return cached.text;
    }
    const end = this.table.indexOf(0, offset);
    if (end < 0) throw new WbxmlError(`${what} refers to a string without its terminating 0x00`, at);
    // Charged before decoding: the scan above is the only work proportional to the string.
    this.charge(end - offset, at);
    const text = utf8(
      this.table.subarray(offset, end),
      `the string at offset ${offset} of the string table`,
      at,
    );
    this.cache.set(offset, { text, size: end - offset });
    return text;
  }

  private charge(size: number, at: number): void {
    this.spent += size + 1;
    if (this.spent > this.budget)
      throw new WbxmlError(
        `string table references expand to more than ${wbxmlMaxStringTableExpansion} times the input`,
        at,
      );
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
  let publicIdIndex: number | undefined;
  if (publicId === PUBLIC_ID_IN_STRING_TABLE) publicIdIndex = r.mbUint32('the public id index');
  else if (publicId !== PUBLIC_ID_UNKNOWN)
    throw new WbxmlError(
      `public id ${publicId} is neither 1 (unknown) nor 0 (in the string table); ActiveSync has no well-known id`,
      1,
    );
  const charsetAt = r.at;
  const charset = r.mbUint32('the charset');
  if (charset !== CHARSET_UTF8) throw new WbxmlError(`charset ${charset} is not 106 (UTF-8)`, charsetAt);
  const tableAt = r.at;
  const table = new StringTable(
    r.take(r.mbUint32('the string table length'), 'the string table'),
    wbxmlMaxStringTableExpansion * bytes.length,
  );
  if (publicIdIndex !== undefined) {
    const id = table.at(publicIdIndex, 'the public id', tableAt);
    if (!activeSyncPublicIds.has(id))
      throw new WbxmlError(`public id ${JSON.stringify(id.slice(0, 80))} is not ActiveSync's`, tableAt);
  }

  let page = pageByNumber.get(0) as PageIndex;
  const open: Open[] = [];
  for (;;) {
    const at = r.at;
    const top = open.at(-1);
    const token = r.byte(() => (top ? `content or END of <${top.tag}>` : 'the root element'));
    if (token === SWITCH_PAGE) {
      // WBXML §5.8.1: switchPage = SWITCH_PAGE pageindex, and in content it only comes before a tag.
      const n = r.byte('a code page number');
      const next = pageByNumber.get(n);
      if (!next) throw new WbxmlError(`unknown code page ${n}`, at);
      page = next;
      const following = bytes[r.at];
      if (following !== undefined && (following & 0x3f) < 5)
        throw new WbxmlError('SWITCH_PAGE is not followed by a tag', r.at);
      continue;
    }
    if ((token & 0x3f) < 5) {
      // The other global tokens.
      if (token === END) {
        if (!top) throw new WbxmlError('END outside any element', at);
        open.pop();
        const done: WbxmlElement = { ns: top.ns, tag: top.tag, children: top.children };
        const parent = open.at(-1);
        if (!parent) return finish(r, done);
        parent.children.push(done);
      } else if (token === STR_I || token === STR_T || token === OPAQUE) {
        if (!top) throw new WbxmlError('content before the root element', at);
        top.children.push(
          token === STR_I
            ? r.cString()
            : token === STR_T
              ? table.at(r.mbUint32('a string table reference'), 'STR_T', at)
              : r.take(r.mbUint32('an opaque length'), 'opaque data'),
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

// A UTF-16 code unit sequence UTF-8 cannot carry: a high surrogate not followed by a low one, or a low
// surrogate not preceded by a high one.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Encode a root element as an ActiveSync WBXML body (header `03 01 6A 00`, inline strings, OPAQUE for
 * bytes, no string table); throws `WbxmlError` for names no code page has and text WBXML cannot carry.
 */
export function encodeWbxml(root: WbxmlElement): Uint8Array {
  const w = new Writer();
  w.bytes(header);
  let page = 0;
  const emit = (el: WbxmlElement, depth: number): void => {
    if (depth > wbxmlMaxDepth) throw new WbxmlError(`elements nest deeper than ${wbxmlMaxDepth} levels`);
    if (typeof el !== 'object' || el === null || !Array.isArray(el.children))
      throw new WbxmlError(`${String(el)} is not an element`);
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
        if (loneSurrogate.test(child))
          throw new WbxmlError(`text of ${el.tag} contains a lone surrogate, which UTF-8 cannot carry`);
        w.byte(STR_I);
        w.bytes(utf8Encoder.encode(child));
        w.byte(0);
      } else if (child instanceof Uint8Array) {
        if (child.length > 0xffffffff) throw new WbxmlError(`opaque data in ${el.tag} is over 4 GiB`);
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
