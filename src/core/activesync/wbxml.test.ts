/**
 * The ActiveSync WBXML codec: known byte vectors (MS-ASWBXML's FolderSync request and a real server's
 * answer from lab-notes/real-activesync-sogo.md), round trips across code pages, the code page tables
 * themselves, and malformed input, which must fail with a `WbxmlError` and never hang.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WbxmlElement } from './wbxml.ts';
import {
  childElement,
  childElements,
  codePages,
  decodeWbxml,
  encodeWbxml,
  textOf,
  WbxmlError,
  wbxmlElement as el,
  wbxmlMaxDepth,
  wbxmlToXml,
} from './wbxml.ts';

const bytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const header = '03016a00';

/** Decoding must fail with a WbxmlError whose message matches. */
function rejects(input: Uint8Array, message: RegExp): void {
  assert.throws(
    () => decodeWbxml(input),
    (err: unknown) => err instanceof WbxmlError && message.test(err.message),
  );
}

describe('known vectors', () => {
  test('FolderSync SyncKey 0 is the 13 bytes of MS-ASWBXML and the lab notes', () => {
    const doc = el('FolderHierarchy', 'FolderSync', el('FolderHierarchy', 'SyncKey', '0'));
    const wire = bytes('03 01 6a 00 00 07 56 52 03 30 00 01 01');
    assert.equal(hexOf(encodeWbxml(doc)), hexOf(wire));
    assert.deepEqual(decodeWbxml(wire), doc);
  });

  test("a real server's FolderSync answer (SOGo, lab notes) decodes and re-encodes byte for byte", () => {
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

describe('round trips', () => {
  const a = (tag: string, ...c: (WbxmlElement | string | number | Uint8Array)[]): WbxmlElement =>
    el('AirSync', tag, ...c);

  test('a Sync request switching to AirSyncBase and back (the lab notes s1.xml shape)', () => {
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

  test('a root element without content', () => {
    const wire = bytes(`${header}000e05`);
    assert.deepEqual(decodeWbxml(wire), el('Provision', 'Provision'));
    assert.equal(hexOf(encodeWbxml(el('Provision', 'Provision'))), hexOf(wire));
  });

  test('every tag of every code page round-trips', () => {
    for (const page of codePages) {
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
      FolderHierarchy: 7,
      Ping: 13,
      Provision: 14,
      AirSyncBase: 17,
      Settings: 18,
      Email2: 22,
    });
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
  });
});

describe('malformed input fails with WbxmlError', () => {
  test('header', () => {
    rejects(new Uint8Array(), /truncated: expected the WBXML version/);
    rejects(bytes('02016a00 45'), /version 0x02 is not 1\.3/);
    rejects(bytes('03006a00 45'), /public id 0 is not 1/);
    rejects(bytes('03010400 45'), /charset 4 is not 106/);
    rejects(bytes('03016a03 414243 45'), /no string table/);
    rejects(bytes('03016a'), /truncated: expected the string table length/);
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
    rejects(bytes(`${header}0003`), /unknown code page 3/);
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
      ['83', 'STR_T'],
      ['c0', 'EXT_0'],
      ['c4', 'LITERAL_AC'],
    ] as const)
      rejects(bytes(`${header}45${token}0001`), new RegExp(`global token ${name} is not used`));
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
    rejects(bytes('0381016a00 45'), /public id 129 is not 1/); // 81 01 = 129
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
      () => encodeWbxml({ ns: 'Calendar', tag: 'X', children: [] } as unknown as WbxmlElement),
      /unknown namespace Calendar/,
    );
    assert.throws(() => encodeWbxml(el('AirSync', 'SyncKey', 'a\0b')), /contains U\+0000/);
  });
});
