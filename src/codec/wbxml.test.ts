/**
 * The ActiveSync WBXML codec: known byte vectors (MS-ASWBXML's FolderSync request and contact example, a
 * real server's answer from docs/lab.md §3.3, libwbxml's string-table headers), round
 * trips across code pages, the code page tables themselves, and malformed input, which must fail with a
 * `WbxmlError` and never hang. Cross-checks against libwbxml itself: test/activesync/wbxml-libwbxml.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WbxmlElement } from './wbxml.ts';
import {
  childElement,
  childElements,
  decodeWbxml,
  encodeWbxml,
  textOf,
  WbxmlError,
  wbxmlElement as el,
  wbxmlMaxDepth,
  wbxmlMaxStringTableExpansion,
  wbxmlToXml,
} from './wbxml.ts';
import { codePages } from './wbxml-code-pages.ts';

const bytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const header = '03016a00';
const ascii = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/** Decoding must fail with a WbxmlError whose message matches. */
function rejects(input: Uint8Array, message: RegExp): void {
  assert.throws(
    () => decodeWbxml(input),
    (err: unknown) => err instanceof WbxmlError && message.test(err.message),
  );
}

describe('known vectors', () => {
  test('FolderSync SyncKey 0 is the 13 bytes of MS-ASWBXML and docs/lab.md §3.3', () => {
    const doc = el('FolderHierarchy', 'FolderSync', el('FolderHierarchy', 'SyncKey', '0'));
    const wire = bytes('03 01 6a 00 00 07 56 52 03 30 00 01 01');
    assert.equal(hexOf(encodeWbxml(doc)), hexOf(wire));
    assert.deepEqual(decodeWbxml(wire), doc);
  });

  test("a real server's FolderSync answer (SOGo, docs/lab.md §3.3) decodes and re-encodes byte for byte", () => {
    // eas-files/req/tp.w: 3 folders (calendar, tasks, contacts) from SOGo 5.8.
    const wire = bytes(
      '03016a000007564c033100015203766d5f363336645f33306261636335385f3000014e57033300014f4803766576656e' +
        '74253246706572736f6e616c000149033000014703506572736f6e616c2043616c656e64617200014a03380001014f48' +
        '0376746f646f253246706572736f6e616c000149033000014703506572736f6e616c2043616c656e64617200014a0337' +
        '0001014f48037663617264253246706572736f6e616c000149033000014703506572736f6e616c204164647265737320' +
        '426f6f6b00014a03390001010101',
    );
    assert.equal(wire.length, 206);
    const doc = decodeWbxml(wire);
    assert.equal(doc.tag, 'FolderSync');
    assert.equal(textOf(childElement(doc, 'Status')), '1');
    assert.equal(textOf(childElement(doc, 'SyncKey')), 'vm_636d_30bacc58_0');
    const changes = childElement(doc, 'Changes');
    assert.ok(changes);
    assert.equal(textOf(childElement(changes, 'Count')), '3');
    const adds = childElements(changes, 'Add').map((a) => [
      textOf(childElement(a, 'DisplayName')),
      textOf(childElement(a, 'Type')),
    ]);
    assert.deepEqual(adds, [
      ['Personal Calendar', '8'],
      ['Personal Calendar', '7'],
      ['Personal Address Book', '9'],
    ]);
    assert.equal(hexOf(encodeWbxml(doc)), hexOf(wire));
  });
});

describe('known vectors: MS-ASWBXML example and libwbxml string tables', () => {
  test("MS-ASWBXML's example (a Sync response adding a contact) encodes to the bytes the spec shows", () => {
    // MS-ASWBXML §4 (learn.microsoft.com ms-aswbxml d3ce3e10-…): the first 71 bytes as published.
    const published =
      '03 01 6A 00 45 5C 4F 50 03 43 6F 6E 74 61 63 74 73 00 01 4B 03 32 00 01 52 03 32 00 01 4E 03 31 00 01' +
      '56 47 4D 03 32 3A 31 00 01 5D 00 11 4A 46 03 31 00 01 4C 03 30 00 01 4D 03 31 00 01 01 00 01 5E 03 46' +
      '75 6E 6B';
    const a = (tag: string, ...c: (WbxmlElement | string)[]): WbxmlElement => el('AirSync', tag, ...c);
    const b = (tag: string, ...c: (WbxmlElement | string)[]): WbxmlElement => el('AirSyncBase', tag, ...c);
    const c = (tag: string, text: string): WbxmlElement => el('Contacts', tag, text);
    const doc = a(
      'Sync',
      a(
        'Collections',
        a(
          'Collection',
          a('Class', 'Contacts'),
          a('SyncKey', '2'),
          a('CollectionId', '2'),
          a('Status', '1'),
          a(
            'Commands',
            a(
              'Add',
              a('ServerId', '2:1'),
              a(
                'ApplicationData',
                b('Body', b('Type', '1'), b('EstimatedDataSize', '0'), b('Truncated', '1')),
                c('FileAs', 'Funk, Don'),
                c('FirstName', 'Don'),
                c('LastName', 'Funk'),
                b('NativeBodyType', '1'),
              ),
            ),
          ),
        ),
      ),
    );
    const wire = encodeWbxml(doc);
    const n = bytes(published).length;
    assert.equal(hexOf(wire.subarray(0, n)), hexOf(bytes(published)));
    assert.equal(
      hexOf(wire.subarray(n)),
      `${ascii(', Don')}0001` +
        `5f03${ascii('Don')}0001` +
        `6903${ascii('Funk')}0001` +
        '0011560331000101010101' +
        '0101',
    );
    assert.deepEqual(decodeWbxml(wire), doc);
  });

  test('libwbxml without -a: the public id as a string-table reference (03 00 00 6A 21 …)', () => {
    // xml2wbxml -n -v 1.3 of the FolderSync request (docs/lab.md §3.3).
    const wire = bytes(
      `0300006a21${ascii('-//MICROSOFT//DTD ActiveSync//EN')}00` + '0007565203300001' + '01',
    );
    assert.deepEqual(
      decodeWbxml(wire),
      el('FolderHierarchy', 'FolderSync', el('FolderHierarchy', 'SyncKey', '0')),
    );
    // libwbxml's own name for the same DTD.
    assert.equal(decodeWbxml(bytes(`0300006a1c${ascii('-//AIRSYNC//DTD AirSync//EN')}0005`)).tag, 'Sync');
  });

  test('libwbxml without -n: repeated strings in the string table, referenced with STR_T (0x83)', () => {
    // xml2wbxml -v 1.3 (string table on) of a FolderSync answer naming "Personal Calendar" three times:
    // the table holds it at offset 0 and the public id at offset 0x12.
    const pc = ascii('Personal Calendar');
    const wire = bytes(
      `030012` +
        `6a33${pc}00${ascii('-//MICROSOFT//DTD ActiveSync//EN')}00` +
        '00 07 56 4c 033100 01 52 8300 01' + // FolderSync Status 1 SyncKey STR_T 0
        '4e 57 033300 01' + // Changes Count 3
        `4f 48 03${ascii('abc')}00 01 47 8300 01 01` + // Add ServerId abc DisplayName STR_T 0
        '4f 47 8300 01 4a 033100 01 01' + // Add DisplayName STR_T 0 Type 1
        '01 01',
    );
    const doc = decodeWbxml(wire);
    assert.equal(textOf(childElement(doc, 'SyncKey')), 'Personal Calendar');
    const names = childElements(childElement(doc, 'Changes') as WbxmlElement, 'Add').map((add) =>
      textOf(childElement(add, 'DisplayName')),
    );
    assert.deepEqual(names, ['Personal Calendar', 'Personal Calendar']);
    // Re-encoded canonically: inline strings, no table, the 03 01 6A 00 header.
    const again = encodeWbxml(doc);
    assert.equal(hexOf(again.subarray(0, 4)), header);
    assert.deepEqual(decodeWbxml(again), doc);
  });

  test('STR_T may point into the middle of a string; the anonymous header may carry a table too', () => {
    // 03 01 6A 04 "abc\0": public id 1, a 4-byte table; STR_T 1 reads "bc".
    const wire = bytes(`03016a04${ascii('abc')}00` + '0007 56 52 8301 01 01');
    assert.equal(textOf(childElement(decodeWbxml(wire), 'SyncKey')), 'bc');
  });
});

describe('round trips', () => {
  const a = (tag: string, ...c: (WbxmlElement | string | number | Uint8Array)[]): WbxmlElement =>
    el('AirSync', tag, ...c);

  test('a Sync request switching to AirSyncBase and back (the shape of docs/lab.md §3.3)', () => {
    const doc = a(
      'Sync',
      a(
        'Collections',
        a(
          'Collection',
          a('SyncKey', '-1'),
          a('CollectionId', 'mail%2Fd845e50b'),
          a('DeletesAsMoves', 1),
          a('GetChanges', 1),
          a('WindowSize', 25),
          a(
            'Options',
            a('FilterType', 0),
            el(
              'AirSyncBase',
              'BodyPreference',
              el('AirSyncBase', 'Type', 1),
              el('AirSyncBase', 'TruncationSize', 500),
            ),
          ),
        ),
      ),
    );
    const wire = encodeWbxml(doc);
    assert.equal(hexOf(wire.subarray(0, 6)), `${header}45` + '5c', 'Sync and Collections on page 0');
    assert.ok(hexOf(wire).includes('0011454603'), 'SWITCH_PAGE 17, BodyPreference, Type, STR_I');
    assert.deepEqual(decodeWbxml(wire), doc);
    assert.equal(
      wbxmlToXml(doc).replace(/<Collections>.*<\/Collections>/, '…'),
      '<Sync xmlns="AirSync:">…</Sync>',
    );
  });

  test('a Sync answer with Email, AirSyncBase and Email2 content', () => {
    const doc = a(
      'Sync',
      a(
        'Collections',
        a(
          'Collection',
          a('SyncKey', '2'),
          a('CollectionId', '1'),
          a('Status', 1),
          a(
            'Commands',
            a(
              'Add',
              a('ServerId', '1:1'),
              a(
                'ApplicationData',
                el('Email', 'From', '"Zoë" <zoe@o365info.com>'),
                el('Email', 'Subject', 'Grüße — ✓'),
                el('Email', 'Flag'),
                el('AirSyncBase', 'Body', el('AirSyncBase', 'Type', 1), el('AirSyncBase', 'Data', 'x')),
                el('Email2', 'ConversationId', Uint8Array.of(0, 1, 2, 0xff)),
              ),
            ),
          ),
        ),
      ),
    );
    assert.deepEqual(decodeWbxml(encodeWbxml(doc)), doc);
  });

  test('empty elements have no content bit; empty text and long opaque data survive', () => {
    const long = new Uint8Array(300).map((_, i) => i & 0xff);
    const doc = el('Ping', 'Ping', el('Ping', 'Folders'), el('Ping', 'Id', ''), el('Ping', 'Class', long));
    const wire = encodeWbxml(doc);
    assert.equal(hexOf(wire.subarray(0, 12)), `${header}000d` + '45' + '09' + '4b030001');
    assert.equal(hexOf(wire.subarray(12, 16)), '4c' + 'c3' + '822c', 'OPAQUE length 300 as mb_u_int32');
    assert.deepEqual(decodeWbxml(wire), doc);
  });

  test('opaque data from a Buffer is a plain Uint8Array copy, not a view of the request body', () => {
    const body = Buffer.from(`${header}001649c304000102ff01`, 'hex');
    const opaque = decodeWbxml(body).children[0];
    assert.ok(opaque instanceof Uint8Array);
    assert.equal(Object.getPrototypeOf(opaque), Uint8Array.prototype, 'not a Buffer');
    assert.notEqual(opaque.buffer, body.buffer, 'a copy');
    body.fill(0);
    assert.deepEqual(opaque, Uint8Array.of(0, 1, 2, 0xff));
  });

  test('a root element without content', () => {
    const wire = bytes(`${header}000e05`);
    assert.deepEqual(decodeWbxml(wire), el('Provision', 'Provision'));
    assert.equal(hexOf(encodeWbxml(el('Provision', 'Provision'))), hexOf(wire));
  });

  test('every tag of every code page round-trips', () => {
    for (const page of codePages.filter((p) => Object.keys(p.tags).length > 0)) {
      const doc = el(
        page.namespace,
        Object.keys(page.tags)[0] ?? '',
        ...Object.keys(page.tags).map((tag) => el(page.namespace, tag, tag)),
      );
      assert.deepEqual(decodeWbxml(encodeWbxml(doc)), doc, page.namespace);
    }
  });
});

describe('code page tables (MS-ASWBXML)', () => {
  test('pages and namespaces are unique; tokens are 0x05–0x3F and unique per page', () => {
    assert.equal(new Set(codePages.map((p) => p.page)).size, codePages.length);
    assert.equal(new Set(codePages.map((p) => p.namespace)).size, codePages.length);
    for (const p of codePages) {
      const tokens = Object.values(p.tags);
      assert.equal(new Set(tokens).size, tokens.length, `${p.namespace} repeats a token`);
      for (const t of tokens) assert.ok(t >= 0x05 && t <= 0x3f, `${p.namespace} token ${t}`);
    }
  });

  test('spot checks against MS-ASWBXML', () => {
    const token = (ns: string, tag: string): number | undefined =>
      codePages.find((p) => p.namespace === ns)?.tags[tag];
    const pages = Object.fromEntries(codePages.map((p) => [p.namespace, p.page]));
    assert.deepEqual(pages, {
      AirSync: 0,
      Contacts: 1,
      Email: 2,
      AirNotify: 3,
      Calendar: 4,
      Move: 5,
      GetItemEstimate: 6,
      FolderHierarchy: 7,
      MeetingResponse: 8,
      Tasks: 9,
      ResolveRecipients: 10,
      ValidateCert: 11,
      Contacts2: 12,
      Ping: 13,
      Provision: 14,
      Search: 15,
      GAL: 16,
      AirSyncBase: 17,
      Settings: 18,
      DocumentLibrary: 19,
      ItemOperations: 20,
      ComposeMail: 21,
      Email2: 22,
      Notes: 23,
      RightsManagement: 24,
    });
    assert.deepEqual(
      codePages.map((p) => p.page),
      Array.from({ length: 25 }, (_, i) => i),
      'pages 0–24 in order',
    );
    assert.equal(token('AirSync', 'Sync'), 0x05);
    assert.equal(token('AirSync', 'CollectionId'), 0x12);
    assert.equal(token('AirSync', 'HeartbeatInterval'), 0x29);
    assert.equal(token('Email', 'DateReceived'), 0x0f);
    assert.equal(token('Email', 'Subject'), 0x14);
    assert.equal(token('Email', 'From'), 0x18);
    assert.equal(token('FolderHierarchy', 'FolderSync'), 0x16);
    assert.equal(token('Ping', 'HeartbeatInterval'), 0x08);
    assert.equal(token('Provision', 'PolicyKey'), 0x09);
    assert.equal(token('Provision', 'EASProvisionDoc'), 0x0d);
    assert.equal(token('AirSyncBase', 'Body'), 0x0a);
    assert.equal(token('AirSyncBase', 'NativeBodyType'), 0x16);
    assert.equal(token('Settings', 'UserInformation'), 0x1d);
    assert.equal(token('Settings', 'PrimarySmtpAddress'), 0x23);
    // Names as MS-ASWBXML and the MS-AS* schemas spell them (libwbxml and Z-Push use older names).
    assert.equal(token('Email', 'Type'), 0x29, 'Email Recurrence/Type, not Recurrence_Type');
    assert.equal(token('Email', 'MonthOfYear'), 0x30);
    assert.equal(token('Email', 'Status'), 0x3b, 'Email Flag/Status, not FlagStatus');
    assert.equal(token('Email', 'Recurrence_Type'), undefined);
    assert.equal(token('Contacts', 'BusinessAddressCity'), 0x0d);
    assert.equal(token('Calendar', 'Timezone'), 0x05);
    assert.equal(token('Calendar', 'AttendeeStatus'), 0x29);
    assert.equal(token('Calendar', 'ClientUid'), 0x3c);
    assert.equal(token('Move', 'MoveItems'), 0x05);
    assert.equal(token('GetItemEstimate', 'Estimate'), 0x0c);
    assert.equal(token('MeetingResponse', 'SendResponse'), 0x12);
    assert.equal(token('Tasks', 'UtcStartDate'), 0x1f);
    assert.equal(token('ResolveRecipients', 'MaxPictures'), 0x1d);
    assert.equal(token('ValidateCert', 'CheckCrl'), 0x09);
    assert.equal(token('Contacts2', 'MMS'), 0x0e);
    assert.equal(token('Provision', 'AccountOnlyRemoteWipe'), 0x3b);
    assert.equal(token('Search', 'MaxPictures'), 0x23);
    assert.equal(token('GAL', 'Data'), 0x12);
    assert.equal(token('AirSyncBase', 'InstanceId'), 0x2d);
    assert.equal(token('DocumentLibrary', 'ContentType'), 0x0c);
    assert.equal(token('ItemOperations', 'MoveAlways'), 0x19);
    assert.equal(token('ComposeMail', 'Mime'), 0x10);
    assert.equal(token('ComposeMail', 'ForwardeeEmail'), 0x18);
    assert.equal(token('Email2', 'ConversationId'), 0x09);
    assert.equal(token('Email2', 'Send'), 0x17);
    assert.equal(token('Notes', 'Category'), 0x09);
    assert.equal(token('RightsManagement', 'RemoveRightsManagementProtection'), 0x18);
    assert.deepEqual(codePages[3]?.tags, {}, 'AirNotify: no longer in use, no tags');
  });
});

describe('malformed input fails with WbxmlError', () => {
  test('header', () => {
    rejects(new Uint8Array(), /truncated: expected the WBXML version/);
    rejects(bytes('02016a00 45'), /version 0x02 is not 1\.3/);
    rejects(bytes('03016a'), /truncated: expected the string table length/);
    rejects(bytes('03010400 45'), /charset 4 is not 106/);
    rejects(bytes('0302 6a00 45'), /public id 2 is neither 1 \(unknown\) nor 0/); // 2 = WML 1.0
  });

  test('header: string table and public id references', () => {
    rejects(bytes('03006a00 45'), /charset 0 is not 106/); // 00 6a: public id at index 0x6a, charset 00
    rejects(bytes('0300'), /truncated: expected the public id index/);
    rejects(bytes('0300006a00 45'), /public id refers to offset 0 of a string table of 0 bytes/);
    rejects(bytes('0300056a03 414200 45'), /public id refers to offset 5 of a string table of 3 bytes/);
    rejects(bytes('0300006a03 414243 05'), /refers to a string without its terminating 0x00/);
    rejects(bytes(`0300006a0b${ascii('-//WML//EN')}00 45`), /public id "-\/\/WML\/\/EN" is not ActiveSync's/);
    rejects(bytes('0300006a02 c300 05'), /the string at offset 0 of the string table is not UTF-8/);
    rejects(bytes('03016a05 4142 05'), /the string table of 5 bytes runs past the end of the input/);
    rejects(bytes('03016a8fffffff7f 05'), /the string table of 4294967295 bytes runs past the end/);
    rejects(bytes('03016a03 414243'), /truncated: expected the root element/);
    // A table nobody refers to is allowed, as WBXML allows it; it need not even end with 0x00.
    assert.equal(decodeWbxml(bytes('03016a03 414243 05')).tag, 'Sync');
    // eas-files/req/garbage.bin: 40 random bytes.
    rejects(
      bytes('3ab10dc6d312e9cb062487e1351d75b82838ef8b11b1e81ee328402bf4132d1db2812c700b3d2214'),
      /version/,
    );
  });

  test('truncation anywhere: no END, no string terminator, nothing after a token', () => {
    rejects(bytes(`${header}000756520330`), /inline string without its terminating 0x00/); // trunc.bin
    rejects(bytes(`${header}0007565203300001`), /truncated: expected content or END of <FolderSync>/);
    rejects(bytes(`${header}00`), /truncated: expected a code page number/);
    rejects(bytes(`${header}`), /truncated: expected the root element/);
    const whole = encodeWbxml(el('FolderHierarchy', 'FolderSync', el('FolderHierarchy', 'SyncKey', '0')));
    for (let n = 4; n < whole.length; n++) rejects(whole.subarray(0, n), /truncated/);
  });

  test('unknown code page or token', () => {
    rejects(bytes(`${header}006345`), /unknown code page 99/);
    rejects(bytes(`${header}001945`), /unknown code page 25/); // 25 (Find, 16.1) is not in the table
    rejects(bytes(`${header}000345`), /unknown tag token 0x05 in code page 3/); // AirNotify: no tags
    rejects(bytes(`${header}0007`.concat('7f01')), /unknown tag token 0x3f in code page 7/);
    rejects(bytes(`${header}45 3f 01`), /unknown tag token 0x3f in code page 0/);
    rejects(bytes(`${header}5101`), /unknown tag token 0x11 in code page 0/); // 0x11 Version: gone from 12.0 on
  });

  test('attributes and the global tokens ActiveSync does not use', () => {
    rejects(bytes(`${header}c5 01 01`), /attributes are not used/);
    rejects(bytes(`${header}85 01`), /attributes are not used/);
    for (const [token, name] of [
      ['02', 'ENTITY'],
      ['04', 'LITERAL'],
      ['40', 'EXT_I_0'],
      ['43', 'PI'],
      ['80', 'EXT_T_0'],
      ['84', 'LITERAL_A'],
      ['c0', 'EXT_0'],
      ['c4', 'LITERAL_AC'],
    ] as const)
      rejects(bytes(`${header}45${token}0001`), new RegExp(`global token ${name} is not used`));
  });

  test('STR_T references: in range, terminated, UTF-8, and bounded in total', () => {
    const withTable = (table: string, body: string): Uint8Array => {
      const t = table.replace(/\s+/g, '');
      return bytes(`03016a${(t.length / 2).toString(16).padStart(2, '0')}${t}${body}`);
    };
    rejects(withTable('', '4d 8300 01'), /STR_T refers to offset 0 of a string table of 0 bytes/);
    rejects(withTable('414200', '4d 8303 01'), /STR_T refers to offset 3 of a string table of 3 bytes/);
    rejects(withTable('414243', '4d 8300 01'), /STR_T refers to a string without its terminating 0x00/);
    rejects(withTable('c328 00', '4d 8300 01'), /the string table is not UTF-8/);
    rejects(withTable('c3a900', '4d 8301 01'), /the string table is not UTF-8/); // into the middle of é
    rejects(withTable('414200', '4d 83 01'), /truncated: expected content or END of <ServerId>/);
    rejects(withTable('414200', '83 00'), /content before the root element/);
    assert.deepEqual(
      decodeWbxml(withTable('c3a900', '4d 8300 8300 01')),
      el('AirSync', 'ServerId', 'é', 'é'),
    );
    // A string-table bomb: one long string and many 2-byte references to it. Without a bound, 3 kB of
    // input would decode to 5 MB of text (and re-encode to 5 MB of inline strings).
    const long = '61'.repeat(2000) + '00';
    const refs = '8300'.repeat(2500);
    const bomb = bytes(`03016a${'8f51'}${long}4d${refs}01`); // 8f 51 = 2000 + 1 bytes
    assert.equal(bomb.length < 8000, true);
    rejects(bomb, new RegExp(`expand to more than ${wbxmlMaxStringTableExpansion} times the input`));
    // The same table referenced a few times decodes.
    const few = decodeWbxml(bytes(`03016a8f51${long}4d${'8300'.repeat(4)}01`));
    assert.equal(textOf(few).length, 8000);
  });

  test('SWITCH_PAGE: a page number, then a tag', () => {
    rejects(bytes(`${header}45 0002 01`), /SWITCH_PAGE is not followed by a tag/); // before END
    rejects(bytes(`${header}45 0002 033000 01`), /SWITCH_PAGE is not followed by a tag/); // before text
    rejects(bytes(`${header}0002 0011 45 01`), /SWITCH_PAGE is not followed by a tag/); // twice in a row
    rejects(bytes(`${header}45 0002`), /truncated: expected content or END of <Sync>/);
    // Switching to the page already in use is redundant but allowed.
    assert.deepEqual(
      decodeWbxml(bytes(`${header}45 0000 5c01 01`)),
      el('AirSync', 'Sync', el('AirSync', 'Collections')),
    );
  });

  test('the content bit: set without content, or clear on the root', () => {
    // 0x45 0x01: Sync with the content bit and nothing in it (libwbxml writes this for whitespace-only
    // text); the tree is the same as for the bare token, which the encoder writes.
    assert.deepEqual(decodeWbxml(bytes(`${header}4501`)), el('AirSync', 'Sync'));
    assert.equal(hexOf(encodeWbxml(el('AirSync', 'Sync'))), `${header}05`);
    rejects(bytes(`${header}05 01`), /bytes after the end of the root element/);
  });

  test('structure: END or content outside the root, bytes after it', () => {
    rejects(bytes(`${header}01`), /END outside any element/);
    rejects(bytes(`${header}033000`), /content before the root element/);
    rejects(bytes(`${header}c30100`), /content before the root element/);
    rejects(bytes(`${header}45 01 45 01`), /bytes after the end of the root element/);
    rejects(bytes(`${header}05 05`), /bytes after the end of the root element/);
  });

  test('bad mb_u_int32 and opaque data past the end', () => {
    rejects(bytes(`${header}45 c3 8080808080 00`), /opaque length is an mb_u_int32 longer than 5 bytes/);
    rejects(bytes(`${header}45 c3 9f ff ff ff 7f`), /does not fit in 32 bits/);
    rejects(bytes(`${header}45 c3 8f`), /truncated: expected an opaque length/);
    rejects(bytes(`${header}45 c3 05 0102`), /opaque data of 5 bytes runs past the end/);
    rejects(bytes('0381016a00 45'), /public id 129 is neither/); // 81 01 = 129
    rejects(bytes(`${header}45 c3 808080808001`), /opaque length is an mb_u_int32 longer than 5 bytes/);
    // Five bytes are allowed, leading zero groups too (WBXML §5.1 does not require the shortest form).
    assert.deepEqual(
      decodeWbxml(bytes(`${header}4d c3 8080808002 4142 01`)),
      el('AirSync', 'ServerId', Uint8Array.of(0x41, 0x42)),
    );
    rejects(bytes(`${header}45 c3 8fffffff7f 00`), /opaque data of 4294967295 bytes runs past the end/);
    rejects(bytes(`${header}45 c3 90808080 00`), /opaque length does not fit in 32 bits/);
  });

  test('nesting deeper than the limit, both ways', () => {
    const nested = (depth: number): Uint8Array =>
      bytes(`${header}${'5c'.repeat(depth)}${'01'.repeat(depth)}`);
    assert.equal(decodeWbxml(nested(wbxmlMaxDepth)).tag, 'Collections');
    rejects(nested(wbxmlMaxDepth + 1), /nest deeper than 64/);
    let doc = el('AirSync', 'Collections');
    for (let i = 0; i < wbxmlMaxDepth; i++) doc = el('AirSync', 'Collections', doc);
    assert.throws(() => encodeWbxml(doc), WbxmlError);
  });

  test('inline strings must be UTF-8', () => {
    rejects(bytes(`${header}4b03c328 0001`), /inline string is not UTF-8/);
  });

  test('random bytes after a valid header always end, decoded or with a WbxmlError', () => {
    let seed = 42;
    const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let i = 0; i < 5000; i++) {
      const body = Uint8Array.from({ length: 1 + (next() % 48) }, next);
      const input = new Uint8Array([...bytes(header), ...body]);
      try {
        decodeWbxml(input);
      } catch (err) {
        assert.ok(err instanceof WbxmlError, `input ${hexOf(input)} threw ${String(err)}`);
      }
    }
  });
});

describe('encoder refuses what WBXML cannot carry', () => {
  test('unknown namespace or tag, NUL in text', () => {
    assert.throws(() => encodeWbxml(el('AirSync', 'NoSuchTag')), /AirSync has no tag NoSuchTag/);
    assert.throws(
      () => encodeWbxml({ ns: 'Find', tag: 'Find', children: [] } as unknown as WbxmlElement),
      /unknown namespace Find/,
    );
    assert.throws(() => encodeWbxml(el('Calendar', 'X')), /Calendar has no tag X/);
    assert.throws(() => encodeWbxml(el('AirNotify', 'Notify')), /AirNotify has no tag Notify/);
    assert.throws(() => encodeWbxml(el('AirSync', 'SyncKey', 'a\0b')), /contains U\+0000/);
  });

  test('lone surrogates are refused (UTF-8 cannot carry them), pairs are fine', () => {
    for (const bad of ['\uD800', 'a\uDBFFb', '\uDC00', 'x\uDFFF', '\uDC00\uD800', '😀\uD83D'])
      assert.throws(
        () => encodeWbxml(el('Email', 'Subject', bad)),
        (err: unknown) => err instanceof WbxmlError && /lone surrogate/.test(err.message),
        JSON.stringify(bad),
      );
    const ok = el('Email', 'Subject', '😀 \uD83D\uDE00 日本');
    assert.deepEqual(decodeWbxml(encodeWbxml(ok)), ok);
  });

  test('things that are not elements, nodes nested too deep or in a cycle', () => {
    const notAnElement = { ns: 'AirSync', tag: 'Sync', children: [42] } as unknown as WbxmlElement;
    assert.throws(() => encodeWbxml(notAnElement), WbxmlError);
    const cyclic: { ns: 'AirSync'; tag: string; children: WbxmlElement[] } = {
      ns: 'AirSync',
      tag: 'Collections',
      children: [],
    };
    cyclic.children.push(cyclic);
    assert.throws(() => encodeWbxml(cyclic), /nest deeper than 64/);
  });
});
