/**
 * The WBXML codec against an encoder nobody here wrote: libwbxml 0.11.8 (Debian libwbxml2-utils,
 * `xml2wbxml` / `wbxml2xml`). For every request and response of a device's first session (FolderSync,
 * Sync, Ping, Provision, Settings) and for awkward text and opaque data:
 *   (a) libwbxml encodes the XML (`xml2wbxml -a -n -v 1.3`) and decodeWbxml gives the expected tree;
 *   (b) wbxml2xml decodes our encodeWbxml output to the same elements and text;
 *   (c) both write the same bytes, except where noted (and then they are asserted to differ);
 *   (d) libwbxml's default output (public id in the string table, and with string-table references)
 *       decodes to the same tree.
 * Plus the code page tables token by token against libwbxml's. These tests fail, with what to install,
 * when the tools are missing; they never skip.
 *
 * Where the bytes legitimately differ: libwbxml works on XML, which has no empty text node and no two
 * adjacent text nodes, so an empty string child (we: content bit, STR_I 00, END; libwbxml: the bare token)
 * and several string children (we: one STR_I each; libwbxml: one) encode differently but mean the same
 * XML. Opaque data does not differ: libwbxml writes OPAQUE for base64 text in ConversationId and a few
 * other elements (`libwbxmlBase64`) and for CDATA sections elsewhere, byte for byte as we do for
 * `Uint8Array` content. Its string tables (without -n) and string-table public id (without -a) differ by
 * design, which (d) covers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WbxmlElement, WbxmlNamespace, WbxmlNode } from '../../src/codec/wbxml.ts';
import { decodeWbxml, encodeWbxml, WbxmlError, wbxmlElement, wbxmlToXml } from '../../src/codec/wbxml.ts';
import { codePages } from '../../src/codec/wbxml-code-pages.ts';
import type { XmlElement } from '../support/libwbxml.ts';
import {
  libwbxmlBase64,
  libwbxmlNames,
  parseLibwbxmlXml,
  requireLibwbxml,
  toLibwbxmlXml,
  wbxml2xml,
  xml2wbxml,
  xmlView,
} from '../support/libwbxml.ts';

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
type Child = WbxmlNode | number;
const ns =
  (n: WbxmlNamespace) =>
  (tag: string, ...c: Child[]): WbxmlElement =>
    wbxmlElement(n, tag, ...c);
const as = ns('AirSync');
const fh = ns('FolderHierarchy');
const email = ns('Email');
const base = ns('AirSyncBase');
const email2 = ns('Email2');
const ping = ns('Ping');
const prov = ns('Provision');
const set = ns('Settings');

// A ConversationId as Exchange sends it: 16 opaque bytes, including 0x00 and bytes that are not UTF-8.
const conversationId = Uint8Array.from([
  0x00, 0x01, 0x02, 0x03, 0xff, 0xfe, 0x80, 0x7f, 0x4c, 0x61, 0x62, 0x00, 0xc3, 0x28, 0x10, 0x20,
]);

interface Shape {
  readonly name: string;
  readonly doc: WbxmlElement;
  /** Why libwbxml writes other bytes than we do, when it does. */
  readonly bytesDiffer?: string;
}

const shapes: readonly Shape[] = [
  { name: 'FolderSync request, SyncKey 0', doc: fh('FolderSync', fh('SyncKey', '0')) },
  {
    name: 'FolderSync response: Status, SyncKey, Changes/Count/Add',
    doc: fh(
      'FolderSync',
      fh('Status', 1),
      fh('SyncKey', 'vm_72c2_30baccf3_0'),
      fh(
        'Changes',
        fh('Count', 3),
        ...[
          ['mail%2Fd845e50b73950a6bb372000083ecc375', 'INBOX', 2],
          ['vevent%2Fpersonal', 'Personal Calendar', 8],
          ['vcard%2Fpersonal', 'Personal Address Book', 9],
        ].map(([id, name, type]) =>
          fh(
            'Add',
            fh('ServerId', id as string),
            fh('ParentId', 0),
            fh('DisplayName', name as string),
            fh('Type', type as number),
          ),
        ),
      ),
    ),
  },
  {
    name: 'Sync request, initial (SyncKey 0)',
    doc: as(
      'Sync',
      as('Collections', as('Collection', as('SyncKey', 0), as('CollectionId', 'mail%2Fd845e50b'))),
    ),
  },
  {
    name: 'Sync request with GetChanges, WindowSize, Options/FilterType and AirSyncBase BodyPreference',
    doc: as(
      'Sync',
      as(
        'Collections',
        as(
          'Collection',
          as('SyncKey', '-1'),
          as('CollectionId', 'mail%2Fd845e50b'),
          as('DeletesAsMoves', 1),
          as('GetChanges', 1),
          as('WindowSize', 25),
          as(
            'Options',
            as('FilterType', 0),
            base('BodyPreference', base('Type', 1), base('TruncationSize', 500)),
            base('BodyPreference', base('Type', 2), base('TruncationSize', 32768)),
          ),
        ),
      ),
    ),
  },
  {
    name: 'Sync response, initial: Class, SyncKey, CollectionId, Status',
    doc: as(
      'Sync',
      as(
        'Collections',
        as(
          'Collection',
          as('Class', 'Email'),
          as('SyncKey', '-1'),
          as('CollectionId', 'mail%2Fd845e50b'),
          as('Status', 1),
        ),
      ),
    ),
  },
  {
    name: 'Sync response with Commands/Add: Email, AirSyncBase Body, Email2 ConversationId (opaque)',
    doc: as(
      'Sync',
      as(
        'Collections',
        as(
          'Collection',
          as('Class', 'Email'),
          as('SyncKey', '1-2'),
          as('CollectionId', 'mail%2Fd845e50b'),
          as('Status', 1),
          as(
            'Commands',
            as(
              'Add',
              as('ServerId', '1'),
              as(
                'ApplicationData',
                email('To', '"Alice Example" <alice@lab.test>'),
                email('From', '"Carol Sender" <carol@lab.test>'),
                email('Subject', 'Test message 1 for alice'),
                email('DateReceived', '2024-05-01T10:00:00.000Z'),
                email('DisplayTo', 'Alice Example'),
                email('ThreadTopic', 'Test message 1 for alice'),
                email('Importance', 1),
                email('Read', 0),
                base(
                  'Body',
                  base('Type', 1),
                  base('EstimatedDataSize', 46),
                  base('Truncated', 0),
                  base('Data', 'Hello alice, this is seeded message number 1.'),
                ),
                email('MessageClass', 'IPM.Note'),
                email('InternetCPID', 65001),
                email('Flag'),
                email('ContentClass', 'urn:content-classes:message'),
                email2('ConversationId', conversationId),
                email2('ConversationIndex', Uint8Array.of(0x01, 0xd0, 0x9b, 0x3a, 0x00)),
                base('NativeBodyType', 1),
              ),
            ),
          ),
          as('MoreAvailable'),
        ),
      ),
    ),
  },
  {
    name: 'Ping request: HeartbeatInterval, Folders/Folder/Id/Class',
    doc: ping(
      'Ping',
      ping('HeartbeatInterval', 480),
      ping('Folders', ping('Folder', ping('Id', 'mail%2Fd845e50b'), ping('Class', 'Email'))),
    ),
  },
  { name: 'Ping response, Status 1 (nothing changed)', doc: ping('Ping', ping('Status', 1)) },
  {
    name: 'Ping response, Status 2 with Folders',
    doc: ping(
      'Ping',
      ping('Status', 2),
      ping('Folders', ping('Folder', 'mail%2Fd845e50b'), ping('Folder', '7')),
    ),
  },
  {
    name: 'Ping response, Status 5 with HeartbeatInterval',
    doc: ping('Ping', ping('Status', 5), ping('HeartbeatInterval', 20)),
  },
  {
    name: 'Provision request: Settings DeviceInformation, Policies/Policy/PolicyType',
    doc: prov(
      'Provision',
      set(
        'DeviceInformation',
        set(
          'Set',
          set('Model', 'iPhone15,2'),
          set('IMEI', '356938035643809'),
          set('FriendlyName', 'Alice’s iPhone'),
          set('OS', 'iOS 17.4.1 21E236'),
          set('OSLanguage', 'en'),
          set('PhoneNumber', '+15555550123'),
          set('UserAgent', 'Apple-iPhone15C2/2104.236'),
          set('MobileOperator', 'Lab Mobile'),
        ),
      ),
      prov('Policies', prov('Policy', prov('PolicyType', 'MS-EAS-Provisioning-WBXML'))),
    ),
  },
  {
    name: 'Provision response without PolicyKey (SOGo: Policy Status 2)',
    doc: prov(
      'Provision',
      prov('Status', 1),
      prov('Policies', prov('Policy', prov('PolicyType', 'MS-EAS-Provisioning-WBXML'), prov('Status', 2))),
    ),
  },
  {
    name: 'Provision response with PolicyKey and EASProvisionDoc',
    doc: prov(
      'Provision',
      set('DeviceInformation', set('Status', 1)),
      prov('Status', 1),
      prov(
        'Policies',
        prov(
          'Policy',
          prov('PolicyType', 'MS-EAS-Provisioning-WBXML'),
          prov('Status', 1),
          prov('PolicyKey', '1307199584'),
          prov(
            'Data',
            prov(
              'EASProvisionDoc',
              prov('DevicePasswordEnabled', 0),
              prov('AlphanumericDevicePasswordRequired', 0),
              prov('PasswordRecoveryEnabled', 0),
              prov('RequireStorageCardEncryption', 0),
              prov('AttachmentsEnabled', 1),
              prov('MinDevicePasswordLength', 4),
              prov('MaxInactivityTimeDeviceLock', 900),
              prov('MaxDevicePasswordFailedAttempts', 8),
              prov('MaxAttachmentSize'),
              prov('AllowSimpleDevicePassword', 1),
              prov('DevicePasswordExpiration'),
              prov('DevicePasswordHistory', 0),
              prov('AllowCamera', 1),
              prov('AllowHTMLEmail', 1),
              prov('MaxEmailAgeFilter', 0),
              prov('MaxEmailBodyTruncationSize', -1),
              prov('UnapprovedInROMApplicationList'),
              prov('ApprovedApplicationList'),
            ),
          ),
        ),
      ),
    ),
  },
  {
    name: 'Provision acknowledgement: PolicyKey and Status',
    doc: prov(
      'Provision',
      prov(
        'Policies',
        prov(
          'Policy',
          prov('PolicyType', 'MS-EAS-Provisioning-WBXML'),
          prov('PolicyKey', '1307199584'),
          prov('Status', 1),
        ),
      ),
    ),
  },
  {
    name: 'Settings UserInformation Get request',
    doc: set('Settings', set('UserInformation', set('Get'))),
  },
  {
    name: 'Settings UserInformation Get response (14.1: Accounts)',
    doc: set(
      'Settings',
      set('Status', 1),
      set(
        'UserInformation',
        set('Status', 1),
        set(
          'Get',
          set(
            'Accounts',
            set(
              'Account',
              set('UserDisplayName', 'Alice Example'),
              set(
                'EmailAddresses',
                set('PrimarySmtpAddress', 'alice@lab.test'),
                set('SMTPAddress', 'a.example@lab.test'),
              ),
            ),
          ),
        ),
      ),
    ),
  },
  {
    name: 'Settings UserInformation Get response (14.0: EmailAddresses/SMTPAddress, libwbxml "SmtpAddress")',
    doc: set(
      'Settings',
      set('Status', 1),
      set(
        'UserInformation',
        set('Status', 1),
        set('Get', set('EmailAddresses', set('SMTPAddress', 'alice@lab.test'))),
      ),
    ),
  },
  {
    name: 'text: non-ASCII (é, 日本, emoji), XML-special characters, whitespace and line breaks',
    doc: as(
      'ApplicationData',
      email('Subject', 'Grüße, é, 日本語, 😀👍🏽 and ✓'),
      email('From', '"Zoë & Co" <zoe@o365info.com>'),
      email('To', 'a < b > c & d " e \' f &amp; &#233;'),
      email('DisplayTo', '  leading and trailing spaces  '),
      base('Body', base('Type', 1), base('Data', 'line 1\r\nline 2\n\ttabbed\n')),
      email('ThreadTopic', '\u00a0no-break\u2028separator\ufeff'),
    ),
  },
  {
    // (A CDATA section cannot carry U+000D: XML turns CR LF into LF before libwbxml sees it.)
    name: 'opaque data: ConversationId and ConversationIndex (base64 in libwbxml XML), Data (CDATA)',
    doc: as(
      'ApplicationData',
      email2('ConversationId', conversationId),
      email2(
        'ConversationIndex',
        new Uint8Array(300).map((_, i) => (i * 7) & 0xff),
      ),
      base(
        'Body',
        base('Type', 4),
        base('Data', new TextEncoder().encode('MIME-Version: 1.0\n\n<b>x</b> & y')),
      ),
    ),
  },
  {
    name: 'empty text, which libwbxml drops',
    doc: ping('Ping', ping('Folders', ping('Folder', ping('Id', ''), ping('Class', 'Email')))),
    bytesDiffer:
      'we write an empty string as content bit + STR_I 00 (4b 03 00 01); libwbxml has no empty text node ' +
      'and writes the bare token (0b). Both decode to the same XML.',
  },
  {
    name: 'adjacent text nodes, which XML merges',
    doc: email('Subject', 'one ', 'two'),
    bytesDiffer: 'we write one STR_I per string child; XML has one text node, so libwbxml writes one STR_I.',
  },
];

/** The tree XML and libwbxml see: adjacent strings merged, empty strings dropped. */
function normalized(el: WbxmlElement): WbxmlElement {
  const children: WbxmlNode[] = [];
  for (const c of el.children) {
    const last = children.at(-1);
    if (typeof c === 'string') {
      if (c === '') continue;
      if (typeof last === 'string') children[children.length - 1] = last + c;
      else children.push(c);
    } else children.push(c instanceof Uint8Array ? c : normalized(c));
  }
  return { ns: el.ns, tag: el.tag, children };
}

test('libwbxml2-utils (xml2wbxml, wbxml2xml) is installed', async () => {
  await requireLibwbxml();
});

for (const shape of shapes) {
  describe(shape.name, () => {
    const expected = normalized(shape.doc);
    const xml = toLibwbxmlXml(shape.doc);

    test('(a) xml2wbxml -a -n output decodes to the expected tree', async () => {
      const theirs = await xml2wbxml(xml);
      assert.equal(hexOf(theirs.subarray(0, 4)), '03016a00', 'the canonical ActiveSync header');
      assert.deepEqual(decodeWbxml(theirs), expected, xml);
    });

    test('(b) wbxml2xml reads our bytes as the same elements and text', async () => {
      const ours = encodeWbxml(shape.doc);
      const back: XmlElement = parseLibwbxmlXml(await wbxml2xml(ours));
      assert.deepEqual(back, xmlView(shape.doc), wbxmlToXml(shape.doc));
    });

    test(`(c) ${shape.bytesDiffer ? 'the bytes differ where expected' : 'libwbxml and we write the same bytes'}`, async () => {
      const ours = encodeWbxml(shape.doc);
      const theirs = await xml2wbxml(xml);
      if (shape.bytesDiffer) {
        assert.notEqual(hexOf(ours), hexOf(theirs), shape.bytesDiffer);
        assert.equal(
          hexOf(encodeWbxml(expected)),
          hexOf(theirs),
          'the normalized tree encodes as libwbxml does',
        );
      } else assert.equal(hexOf(ours), hexOf(theirs));
    });

    test('(d) xml2wbxml without -a (public id in the string table), and without -n (STR_T), decodes', async () => {
      const withPublicId = await xml2wbxml(xml, { anonymous: false });
      assert.equal(hexOf(withPublicId.subarray(0, 4)), '0300006a', 'public id: index 0 of the string table');
      assert.deepEqual(decodeWbxml(withPublicId), expected);
      // With its string table on, libwbxml may split one text into STR_T and STR_I pieces ("Personal"
      // from the table, then " Calendar" inline); we keep the pieces, XML joins them.
      const withTable = await xml2wbxml(xml, { anonymous: false, stringTable: true });
      assert.deepEqual(normalized(decodeWbxml(withTable)), expected);
      const anonymousWithTable = await xml2wbxml(xml, { stringTable: true });
      assert.deepEqual(normalized(decodeWbxml(anonymousWithTable)), expected);
    });
  });
}

describe('string tables as libwbxml writes them', () => {
  test('one text from a string-table piece and an inline piece (83 00 03 " Calendar" 00)', async () => {
    const doc = fh(
      'FolderSync',
      fh(
        'Changes',
        fh('Add', fh('DisplayName', 'Personal Calendar')),
        fh('Add', fh('DisplayName', 'Personal Address Book')),
      ),
    );
    const wire = await xml2wbxml(toLibwbxmlXml(doc), { stringTable: true });
    assert.equal(
      hexOf(wire),
      `03016a09${Buffer.from('Personal\0').toString('hex')}0007564e4f47` +
        `8300 03${Buffer.from(' Calendar').toString('hex')}00 0101 4f47 8300 03${Buffer.from(' Address Book').toString('hex')}00 01010101`.replace(
          / /g,
          '',
        ),
    );
    const decoded = decodeWbxml(wire);
    assert.deepEqual(
      decoded,
      fh(
        'FolderSync',
        fh(
          'Changes',
          fh('Add', fh('DisplayName', 'Personal', ' Calendar')),
          fh('Add', fh('DisplayName', 'Personal', ' Address Book')),
        ),
      ),
    );
    assert.deepEqual(normalized(decoded), doc);
  });

  test('repeated strings become STR_T references, and we decode them', async () => {
    const doc = shapes.find((s) => s.name.startsWith('Sync response with Commands'))?.doc as WbxmlElement;
    const withTable = await xml2wbxml(toLibwbxmlXml(doc), { stringTable: true });
    assert.ok(hexOf(withTable.subarray(3, 4)) !== '00', 'a non-empty string table');
    assert.ok(withTable.includes(0x83), 'at least one STR_T');
    assert.ok(withTable.length < encodeWbxml(doc).length, 'smaller than inline strings');
    assert.deepEqual(decodeWbxml(withTable), doc);
  });
});

describe('opaque data in libwbxml XML', () => {
  test('wbxml2xml writes our OPAQUE ConversationId as base64; xml2wbxml turns base64 back into OPAQUE', async () => {
    const doc = email2('ConversationId', conversationId);
    const ours = encodeWbxml(doc);
    assert.equal(hexOf(ours), `03016a00001649c310${hexOf(conversationId)}01`);
    const xml = await wbxml2xml(ours);
    const b64 = Buffer.from(conversationId).toString('base64');
    assert.ok(xml.endsWith(`<ConversationId xmlns="Email2:">${b64}</ConversationId>`), xml);
    const theirs = await xml2wbxml(xml);
    assert.equal(hexOf(theirs), hexOf(ours));
  });

  test('elsewhere, xml2wbxml writes a CDATA section as OPAQUE and plain text as STR_I', async () => {
    const cdata = await xml2wbxml(
      `<?xml version="1.0"?>\n<!DOCTYPE ActiveSync PUBLIC "-//MICROSOFT//DTD ActiveSync//EN" "http://www.microsoft.com/">\n<Data xmlns="AirSyncBase:"><![CDATA[a<b]]></Data>`,
    );
    assert.deepEqual(decodeWbxml(cdata), base('Data', new TextEncoder().encode('a<b')));
    assert.equal(hexOf(cdata), '03016a0000114bc303613c6201');
    const text = await xml2wbxml(toLibwbxmlXml(base('Data', 'a<b')));
    assert.equal(hexOf(text), '03016a0000114b03613c620001');
  });

  test('the elements libwbxml treats as base64 are exactly libwbxmlBase64', async () => {
    // For every tag both tables know: <Tag>QUJD</Tag> ("ABC" in base64) becomes OPAQUE 41 42 43 only there.
    const found: string[] = [];
    for (const p of codePages) {
      for (const tag of Object.keys(p.tags)) {
        if (p.namespace === 'Provision' && tag === 'AccountOnlyRemoteWipe') continue; // not in libwbxml
        const bytes = await xml2wbxml(toLibwbxmlXml(wbxmlElement(p.namespace, tag, 'QUJD')));
        const decoded = decodeWbxml(bytes);
        if (decoded.children[0] instanceof Uint8Array) {
          assert.deepEqual(decoded.children[0], Uint8Array.of(0x41, 0x42, 0x43));
          found.push(`${p.namespace}:${tag}`);
        }
      }
    }
    assert.deepEqual(found.sort(), [...libwbxmlBase64].sort());
  });
});

/** libwbxml's tag table for one code page, read back by decoding every token 0x05–0x3F with wbxml2xml. */
async function libwbxmlPage(page: number): Promise<{ namespaces: Set<string>; tags: Map<number, string> }> {
  const tokens = Array.from({ length: 0x3f - 0x05 + 1 }, (_, i) => 0x05 + i);
  // <Sync> (page 0, with content), SWITCH_PAGE page, every token as an empty tag, END.
  const wire = Uint8Array.from([0x03, 0x01, 0x6a, 0x00, 0x45, 0x00, page, ...tokens, 0x01]);
  const root = parseLibwbxmlXml(await wbxml2xml(wire));
  const children = root.children as XmlElement[];
  assert.equal(children.length, tokens.length);
  const tags = new Map<number, string>();
  const namespaces = new Set<string>();
  children.forEach((c, i) => {
    if (c.tag === 'unknown') return;
    tags.set(tokens[i] as number, c.tag);
    namespaces.add(c.ns);
  });
  return { namespaces, tags };
}

describe('code page tables, token by token against libwbxml 0.11.8', () => {
  // Tokens libwbxml still knows that MS-ASWBXML no longer defines (so we refuse them), and the reverse.
  const libwbxmlOnly = [
    'AirSync 0x11 Version',
    'AirSync 0x19 Truncation',
    'AirSync 0x1a RTFTruncation',
    'AirSync 0x1f NotifyGUID',
    'AirNotify 0x05 Notify',
    'AirNotify 0x06 Notification',
    'AirNotify 0x07 Version',
    'AirNotify 0x08 LifeTime',
    'AirNotify 0x09 DeviceInfo',
    'AirNotify 0x0a Enable',
    'AirNotify 0x0b Folder',
    'AirNotify 0x0c ServerId',
    'AirNotify 0x0d DeviceAddress',
    'AirNotify 0x0e ValidCarrierProfiles',
    'AirNotify 0x0f CarrierProfile',
    'AirNotify 0x10 Status',
    'AirNotify 0x11 Responses',
    'AirNotify 0x12 Devices',
    'AirNotify 0x13 Device',
    'AirNotify 0x14 Id',
    'AirNotify 0x15 Expiry',
    'AirNotify 0x16 NotifyGUID',
    'AirNotify 0x17 DeviceFriendlyName',
    'GetItemEstimate 0x06 Version',
    'GetItemEstimate 0x0b DateTime',
    'FolderHierarchy 0x0b Response',
    'FolderHierarchy 0x0d ContentClass',
    'FolderHierarchy 0x18 Version',
    'MeetingResponse 0x0d Version',
    'Provision 0x12 DocumentBrowseEnabled',
    'Search 0x1c Schema',
    'Search 0x1d Supported',
  ];
  const oursOnly = ['Provision 0x3b AccountOnlyRemoteWipe'];

  test('same pages and namespaces; every shared token has the same tag (modulo libwbxmlNames)', async () => {
    const mismatches: string[] = [];
    const onlyTheirs: string[] = [];
    const onlyOurs: string[] = [];
    const usedRenames = new Set<string>();
    for (const p of codePages) {
      const lib = await libwbxmlPage(p.page);
      if (lib.tags.size > 0) assert.deepEqual([...lib.namespaces], [p.namespace], `page ${p.page}`);
      const ours = new Map(Object.entries(p.tags).map(([tag, token]) => [token, tag]));
      for (let token = 0x05; token <= 0x3f; token++) {
        const mine = ours.get(token);
        const theirs = lib.tags.get(token);
        const where = `${p.namespace} 0x${token.toString(16).padStart(2, '0')}`;
        if (mine !== undefined && theirs !== undefined) {
          // parseLibwbxmlXml already maps libwbxml's names back to ours.
          if (mine !== theirs) mismatches.push(`${where}: ours ${mine}, libwbxml ${theirs}`);
          if (libwbxmlNames[p.namespace]?.[mine]) usedRenames.add(`${p.namespace}:${mine}`);
        } else if (theirs !== undefined) onlyTheirs.push(`${where} ${theirs}`);
        else if (mine !== undefined) onlyOurs.push(`${where} ${mine}`);
      }
    }
    assert.deepEqual(mismatches, []);
    assert.deepEqual(onlyTheirs, libwbxmlOnly);
    assert.deepEqual(onlyOurs, oursOnly);
    const renames = Object.entries(libwbxmlNames).flatMap(([n, m]) => Object.keys(m).map((t) => `${n}:${t}`));
    assert.deepEqual(
      renames.filter((r) => !usedRenames.has(r)),
      [],
      'no stale entries in libwbxmlNames',
    );
  });

  test('xml2wbxml encodes every tag of every page (libwbxml names) to our tokens', async () => {
    for (const p of codePages) {
      const tags = Object.keys(p.tags).filter(
        (t) => !oursOnly.includes(`${p.namespace} 0x${(p.tags[t] as number).toString(16)} ${t}`),
      );
      if (tags.length === 0) continue;
      const doc = wbxmlElement(
        p.namespace,
        tags[0] as string,
        // Each tag holds its own name: as text, or as opaque bytes where libwbxml expects base64.
        ...tags.map((t) =>
          wbxmlElement(
            p.namespace,
            t,
            libwbxmlBase64.has(`${p.namespace}:${t}`) ? new TextEncoder().encode(t) : t,
          ),
        ),
      );
      assert.equal(hexOf(await xml2wbxml(toLibwbxmlXml(doc))), hexOf(encodeWbxml(doc)), p.namespace);
    }
  });

  test('we refuse the tokens only libwbxml knows, with a WbxmlError', () => {
    for (const entry of libwbxmlOnly) {
      const [name, token] = entry.split(' ') as [string, string];
      const page = codePages.find((p) => p.namespace === name)?.page as number;
      const wire = Uint8Array.from([0x03, 0x01, 0x6a, 0x00, 0x00, page, Number(token)]);
      assert.throws(
        () => decodeWbxml(wire),
        (err: unknown) => err instanceof WbxmlError && /unknown tag token/.test(err.message),
        entry,
      );
    }
  });
});
