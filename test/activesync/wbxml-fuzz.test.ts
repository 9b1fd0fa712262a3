/**
 * Bounded, deterministic fuzzing of the WBXML codec (a few seconds; seeded PRNG, seed printed on failure,
 * WBXML_FUZZ_SEED=<n> to replay or explore another seed).
 *
 * Decoder: valid documents (first-session shapes, libwbxml's string-table forms) are truncated at every
 * offset, bit-flipped, have bytes inserted, deleted and replaced, get random mb_u_int32 lengths, nesting
 * bombs, huge declared string-table and opaque lengths and string-table reference bombs, and there are
 * plain random bytes. Every input must decode or throw a WbxmlError (never another exception, never hang:
 * the runner's timeout catches a hang). The work is bounded by what the decoder produces, so that is
 * what is measured instead of time: a decoded tree is never bigger than a fixed multiple of its input
 * (nodes + text + opaque bytes), and it re-encodes and decodes to the same tree.
 *
 * Encoder: random valid trees (random tags from all code pages, random Unicode text including astral
 * characters, control characters, and sometimes lone surrogates or U+0000, random opaque data) either
 * encode and decode back to the same tree, or, exactly when the text holds a lone surrogate or U+0000,
 * throw a WbxmlError (the documented choice: no silent U+FFFD replacement).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WbxmlElement, WbxmlNode } from '../../src/codec/wbxml.ts';
import {
  decodeWbxml,
  encodeWbxml,
  WbxmlError,
  wbxmlElement as el,
  wbxmlMaxDepth,
  wbxmlMaxStringTableExpansion,
} from '../../src/codec/wbxml.ts';
import { codePages } from '../../src/codec/wbxml-code-pages.ts';

const seed = Number(process.env['WBXML_FUZZ_SEED'] ?? 0x5eed_c0de) >>> 0;

/** mulberry32: small, fast, good enough to spread inputs; deterministic per seed. */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
const where = (what: string, input: Uint8Array): string =>
  `seed ${seed} (replay: WBXML_FUZZ_SEED=${seed}), ${what}, input ${hexOf(input.subarray(0, 400))}${input.length > 400 ? `… (${input.length} bytes)` : ''}`;

/** Nodes, text bytes and opaque bytes in a tree: what decoding had to produce. */
function treeSize(node: WbxmlNode): number {
  if (typeof node === 'string') return 1 + Buffer.byteLength(node);
  if (node instanceof Uint8Array) return 1 + node.length;
  return node.children.reduce((n, c) => n + treeSize(c), 1);
}

const stats = { inputs: 0, decoded: 0, refused: 0, largestRatio: 0 };

/**
 * The decoder's contract for one untrusted input. Returns the tree, or undefined after a WbxmlError.
 * Output per input byte is bounded: every node costs at least one input byte, inline text and opaque data
 * are copied from the input, STR_T text is capped at wbxmlMaxStringTableExpansion × the input.
 */
function check(input: Uint8Array, what: string): WbxmlElement | undefined {
  stats.inputs++;
  let tree: WbxmlElement;
  try {
    tree = decodeWbxml(input);
  } catch (err) {
    if (!(err instanceof WbxmlError)) assert.fail(`${where(what, input)}: threw ${String(err)}`);
    if (err.offset !== undefined)
      assert.ok(err.offset >= 0 && err.offset <= input.length, `${where(what, input)}: offset ${err.offset}`);
    stats.refused++;
    return undefined;
  }
  stats.decoded++;
  const size = treeSize(tree);
  const bound = (wbxmlMaxStringTableExpansion + 2) * input.length;
  stats.largestRatio = Math.max(stats.largestRatio, size / input.length);
  assert.ok(size <= bound, `${where(what, input)}: decoded to ${size} units, over ${bound}`);
  let again: Uint8Array;
  try {
    again = encodeWbxml(tree);
  } catch (err) {
    return assert.fail(`${where(what, input)}: the decoded tree does not re-encode: ${String(err)}`);
  }
  assert.deepEqual(decodeWbxml(again), tree, `${where(what, input)}: re-encoded tree differs`);
  assert.equal(hexOf(encodeWbxml(decodeWbxml(again))), hexOf(again), `${where(what, input)}: not canonical`);
  // A Buffer body decodes the same (plain Uint8Array opaque data, not views).
  assert.deepEqual(decodeWbxml(Buffer.from(input)), tree, `${where(what, input)}: differs for a Buffer`);
  return tree;
}

// The seed corpus: first-session shapes as we encode them, and libwbxml's string-table forms (bytes
// captured from xml2wbxml 0.11.8 in wbxml-libwbxml.test.ts, inlined so this test runs without it).
const a = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('AirSync', tag, ...c);
const corpus: readonly (readonly [string, Uint8Array])[] = [
  [
    'FolderSync request',
    encodeWbxml(el('FolderHierarchy', 'FolderSync', el('FolderHierarchy', 'SyncKey', '0'))),
  ],
  [
    'Sync request',
    encodeWbxml(
      a(
        'Sync',
        a(
          'Collections',
          a(
            'Collection',
            a('SyncKey', '-1'),
            a('CollectionId', 'mail%2Fd845e50b'),
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
      ),
    ),
  ],
  [
    'Sync response with opaque ConversationId',
    encodeWbxml(
      a(
        'Sync',
        a(
          'Collections',
          a(
            'Collection',
            a('SyncKey', '1-2'),
            a('Status', 1),
            a(
              'Commands',
              a(
                'Add',
                a('ServerId', '1'),
                a(
                  'ApplicationData',
                  el('Email', 'Subject', 'Grüße 日本 😀 & <x>'),
                  el('AirSyncBase', 'Body', el('AirSyncBase', 'Type', 1), el('AirSyncBase', 'Data', 'Hello')),
                  el('Email2', 'ConversationId', Uint8Array.of(0, 1, 2, 0xff, 0x83, 0xc3)),
                  el(
                    'Email2',
                    'ConversationIndex',
                    new Uint8Array(200).map((_, i) => i),
                  ),
                ),
              ),
            ),
          ),
        ),
      ),
    ),
  ],
  [
    'Ping request',
    encodeWbxml(
      el(
        'Ping',
        'Ping',
        el('Ping', 'HeartbeatInterval', 480),
        el('Ping', 'Folders', el('Ping', 'Folder', el('Ping', 'Id', '1'), el('Ping', 'Class', 'Email'))),
      ),
    ),
  ],
  [
    'Provision request',
    encodeWbxml(
      el(
        'Provision',
        'Provision',
        el('Settings', 'DeviceInformation', el('Settings', 'Set', el('Settings', 'Model', 'iPhone'))),
        el(
          'Provision',
          'Policies',
          el('Provision', 'Policy', el('Provision', 'PolicyType', 'MS-EAS-Provisioning-WBXML')),
        ),
      ),
    ),
  ],
  // xml2wbxml -v 1.3: public id and repeated strings in the string table, STR_T references.
  [
    'libwbxml string table and public id',
    bytes(
      '030012 6a33 506572736f6e616c2043616c656e64617200 2d2f2f4d4943524f534f46542f2f4454442041637469766553796e632f2f454e00' +
        '0007564c03310001528300014e57033300014f4803616263000147830001014f478300014a0331000101 0101',
    ),
  ],
  // xml2wbxml -a -v 1.3: one text from a STR_T piece and an inline piece.
  [
    'libwbxml STR_T + STR_I',
    bytes(
      '03016a09 506572736f6e616c00 0007564e4f47 8300 032043616c656e6461720001 01 4f47 8300 03204164647265737320426f6f6b0001 010101',
    ),
  ],
];

describe(`WBXML decoder fuzzing (seed ${seed})`, () => {
  test('the corpus itself decodes', () => {
    for (const [name, doc] of corpus) assert.ok(check(doc, name), name);
  });

  test('truncation at every offset fails with a WbxmlError', () => {
    for (const [name, doc] of corpus)
      for (let n = 0; n < doc.length; n++)
        assert.equal(check(doc.subarray(0, n), `${name} cut at ${n}`), undefined, `${name} cut at ${n}`);
  });

  test('bit flips, byte inserts, deletes and replacements', () => {
    const rnd = prng(seed);
    const int = (n: number): number => Math.floor(rnd() * n);
    for (const [name, doc] of corpus) {
      // Every single-bit flip of every byte, for the small documents.
      if (doc.length <= 64)
        for (let i = 0; i < doc.length; i++)
          for (let bit = 0; bit < 8; bit++) {
            const m = Uint8Array.from(doc);
            m[i] = (m[i] as number) ^ (1 << bit);
            check(m, `${name}: flip bit ${bit} of byte ${i}`);
          }
      for (let k = 0; k < 6000; k++) {
        let m = Uint8Array.from(doc);
        const ops = 1 + int(4);
        const log: string[] = [];
        for (let o = 0; o < ops; o++) {
          const at = int(m.length + 1);
          switch (int(4)) {
            case 0: {
              const i = Math.min(at, m.length - 1);
              m[i] = (m[i] as number) ^ (1 << int(8));
              log.push(`flip@${i}`);
              break;
            }
            case 1: {
              const ins = Uint8Array.from({ length: 1 + int(4) }, () =>
                // Bias towards the interesting bytes: global tokens, content-bit tags, high bits.
                rnd() < 0.5 ? ([0x00, 0x01, 0x03, 0x83, 0xc3, 0x45, 0x80, 0xff][int(8)] as number) : int(256),
              );
              m = Uint8Array.from([...m.subarray(0, at), ...ins, ...m.subarray(at)]);
              log.push(`insert@${at}:${hexOf(ins)}`);
              break;
            }
            case 2: {
              const n = 1 + int(4);
              m = Uint8Array.from([...m.subarray(0, at), ...m.subarray(at + n)]);
              log.push(`delete@${at}+${n}`);
              break;
            }
            default: {
              const i = Math.min(at, m.length - 1);
              m[i] = int(256);
              log.push(`set@${i}`);
            }
          }
        }
        check(m, `${name}: ${log.join(' ')}`);
      }
    }
  });

  test('random mb_u_int32 values where lengths and indexes go', () => {
    const rnd = prng(seed ^ 0x9e3779b9);
    const int = (n: number): number => Math.floor(rnd() * n);
    const mb = (): number[] => {
      // 1 to 6 groups; sometimes the largest 32-bit value, sometimes overlong or over 32 bits.
      const pick = int(6);
      if (pick === 0) return [0x8f, 0xff, 0xff, 0xff, 0x7f];
      if (pick === 1) return [0x90, 0x80, 0x80, 0x80, 0x00];
      if (pick === 2) return [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
      const n = 1 + int(5);
      return Array.from({ length: n }, (_, i) => (i < n - 1 ? 0x80 | int(128) : int(128)));
    };
    for (let k = 0; k < 4000; k++) {
      const tail = Array.from({ length: int(40) }, () => int(256));
      const shapes = [
        // the public id, then an index
        [0x03, ...mb(), ...mb(), 0x6a, ...mb(), ...tail],
        // the charset
        [0x03, 0x01, ...mb(), 0x00, 0x45, 0x01],
        // the string table length
        [0x03, 0x01, 0x6a, ...mb(), ...tail],
        // an opaque length
        [0x03, 0x01, 0x6a, 0x00, 0x4d, 0xc3, ...mb(), ...tail, 0x01],
        // a STR_T index into a small table
        [0x03, 0x01, 0x6a, 0x04, 0x61, 0x62, 0x63, 0x00, 0x4d, 0x83, ...mb(), 0x01],
      ];
      const input = Uint8Array.from(shapes[k % shapes.length] as number[]);
      check(input, `mb_u_int32 shape ${k % shapes.length}`);
    }
  });

  test('nesting bombs, in one page and across pages, closed and unclosed', () => {
    const head = [0x03, 0x01, 0x6a, 0x00];
    for (const depth of [wbxmlMaxDepth - 1, wbxmlMaxDepth, wbxmlMaxDepth + 1, 1000, 100_000]) {
      const open = new Array<number>(depth).fill(0x5c); // Collections, with content
      const closed = Uint8Array.from([...head, ...open, ...new Array<number>(depth).fill(0x01)]);
      const tree = check(closed, `nesting ${depth}, closed`);
      assert.equal(tree !== undefined, depth <= wbxmlMaxDepth, `seed ${seed}: nesting ${depth}`);
      assert.equal(check(Uint8Array.from([...head, ...open]), `nesting ${depth}, unclosed`), undefined);
      // Alternating pages: SWITCH_PAGE before every tag.
      const pages = Array.from({ length: Math.min(depth, 5000) }, (_, i) =>
        i % 2 ? [0x00, 0x00, 0x5c] : [0x00, 0x0d, 0x49],
      ).flat();
      check(
        Uint8Array.from([...head, ...pages, ...new Array<number>(Math.min(depth, 5000)).fill(0x01)]),
        `paged ${depth}`,
      );
      // Wide instead of deep: many siblings are fine, they cost input bytes.
      if (depth <= 100_000) {
        const wide = Uint8Array.from([...head, 0x45, ...new Array<number>(depth).fill(0x1c), 0x01]);
        assert.equal((check(wide, `wide ${depth}`) as WbxmlElement).children.length, depth);
      }
    }
  });

  test('huge declared string-table and opaque lengths fail fast, without allocating them', () => {
    const huge = [
      '03016a 8fffffff7f', // a 4 GiB string table
      '03016a 8fffffff7f 414243',
      '03016a00 4d c3 8fffffff7f 00', // 4 GiB of opaque data
      '03016a00 4d c3 8080808000 01', // zero, overlong
      '0300 8fffffff7f 6a00 05', // a public id index far outside the table
      '03016a04 61626300 4d 83 8fffffff7f 01', // a STR_T index far outside the table
    ];
    for (const h of huge) check(bytes(h), h);
    // A table of 1 MB is fine when the input holds it.
    const table = new Uint8Array(1 << 20).fill(0x61);
    table[table.length - 1] = 0;
    const big = Uint8Array.from([0x03, 0x01, 0x6a, 0xc0, 0x80, 0x00, ...table, 0x4d, 0x83, 0x00, 0x01]);
    assert.equal((check(big, '1 MB string table') as WbxmlElement).children.length, 1);
  });

  test('string-table reference bombs hit the expansion bound', () => {
    const rnd = prng(seed ^ 0x1234567);
    const int = (n: number): number => Math.floor(rnd() * n);
    for (let k = 0; k < 60; k++) {
      const len = 1 + int(3000);
      const refs = 1 + int(4000);
      const mid = int(len); // references into the middle of the string, too
      const tableLen = len + 1;
      const mbLen = tableLen < 128 ? [tableLen] : [0x80 | (tableLen >> 7), tableLen & 0x7f];
      const offsets = Array.from({ length: refs }, () =>
        rnd() < 0.5 ? [0x83, 0x00] : [0x83, ...(mid < 128 ? [mid] : [0x80 | (mid >> 7), mid & 0x7f])],
      ).flat();
      const input = Uint8Array.from([
        0x03,
        0x01,
        0x6a,
        ...mbLen,
        ...new Array<number>(len).fill(0x78),
        0x00,
        0x4d,
        ...offsets,
        0x01,
      ]);
      check(input, `STR_T bomb: ${refs} references to ${len} bytes`);
    }
  });

  test('random bytes, bare and after a valid header', () => {
    const rnd = prng(seed ^ 0xdeadbeef);
    const int = (n: number): number => Math.floor(rnd() * n);
    for (let k = 0; k < 60_000; k++) {
      const body = Array.from({ length: int(64) }, () => int(256));
      const input = Uint8Array.from(k % 3 === 0 ? body : [0x03, 0x01, 0x6a, 0x00, ...body]);
      check(input, 'random bytes');
    }
  });

  test('splices of two documents', () => {
    const rnd = prng(seed ^ 0x5a5a5a5a);
    const int = (n: number): number => Math.floor(rnd() * n);
    for (let k = 0; k < 5000; k++) {
      const [, x] = corpus[int(corpus.length)] as readonly [string, Uint8Array];
      const [, y] = corpus[int(corpus.length)] as readonly [string, Uint8Array];
      check(Uint8Array.from([...x.subarray(0, int(x.length)), ...y.subarray(int(y.length))]), 'splice');
    }
  });

  test('summary', (t) => {
    t.diagnostic(
      `seed ${seed}: ${stats.inputs} inputs, ${stats.decoded} decoded, ${stats.refused} refused with a WbxmlError`,
    );
    t.diagnostic(`largest output/input ratio: ${stats.largestRatio.toFixed(2)}`);
    assert.ok(stats.decoded > 100 && stats.refused > 1000, 'the fuzzer reaches both outcomes');
  });
});

describe(`WBXML encoder fuzzing (seed ${seed})`, () => {
  const pages = codePages.filter((p) => Object.keys(p.tags).length > 0);
  const rnd = prng(seed ^ 0x0badf00d);
  const int = (n: number): number => Math.floor(rnd() * n);

  /** A random string: ASCII, Latin-1, BMP, astral, controls; sometimes a lone surrogate or a NUL. */
  function text(): { s: string; bad: boolean } {
    let s = '';
    const n = int(12);
    for (let i = 0; i < n; i++) {
      const kind = int(20);
      if (kind < 6) s += String.fromCharCode(0x20 + int(0x5f));
      else if (kind < 9) s += String.fromCharCode(0xa0 + int(0x60));
      else if (kind < 12)
        s += String.fromCharCode(0x100 + int(0xd700)); // below the surrogates
      else if (kind < 14)
        s += String.fromCharCode(0xe000 + int(0x2000)); // private use … FFFF
      else if (kind < 16)
        s += String.fromCodePoint(0x10000 + int(0x100000)); // astral: a proper pair
      else if (kind < 18)
        s += String.fromCharCode(1 + int(0x1f)); // controls, but not NUL
      else if (kind === 18) {
        s += String.fromCharCode(int(2) ? 0xd800 + int(0x400) : 0xdc00 + int(0x400)); // lone surrogate
      } else {
        s += '\0';
      }
    }
    // A lone surrogate may pair up with a neighbour by chance; decide badness on the result.
    const bad =
      /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s) || s.includes('\0');
    return { s, bad };
  }

  function tree(depth: number, maxDepth: number): { t: WbxmlElement; bad: boolean } {
    const p = pages[int(pages.length)] as (typeof pages)[number];
    const tags = Object.keys(p.tags);
    const tag = tags[int(tags.length)] as string;
    const children: WbxmlNode[] = [];
    let bad = false;
    const n = depth >= maxDepth ? 0 : int(5);
    for (let i = 0; i < n; i++) {
      const kind = int(6);
      if (kind < 3) {
        const c = tree(depth + 1, maxDepth);
        children.push(c.t);
        bad ||= c.bad;
      } else if (kind < 5) {
        const c = text();
        children.push(c.s);
        bad ||= c.bad;
      } else children.push(Uint8Array.from({ length: int(3) === 0 ? int(400) : int(8) }, () => int(256)));
    }
    return { t: { ns: p.namespace, tag, children }, bad };
  }

  test('random trees round-trip, or throw a WbxmlError exactly for lone surrogates and NUL', () => {
    let encoded = 0;
    let refused = 0;
    for (let k = 0; k < 6000; k++) {
      const { t, bad } = tree(1, k % 100 === 0 ? wbxmlMaxDepth : 1 + int(8));
      const what = `seed ${seed} (replay: WBXML_FUZZ_SEED=${seed}), tree ${k}: ${JSON.stringify(t).slice(0, 300)}`;
      let wire: Uint8Array;
      try {
        wire = encodeWbxml(t);
      } catch (err) {
        assert.ok(err instanceof WbxmlError, `${what}: threw ${String(err)}`);
        assert.ok(bad, `${what}: refused a valid tree: ${err.message}`);
        refused++;
        continue;
      }
      assert.ok(!bad, `${what}: encoded text UTF-8 cannot carry`);
      encoded++;
      assert.deepEqual(decodeWbxml(wire), t, what);
    }
    assert.ok(encoded > 1000 && refused > 50, `seed ${seed}: ${encoded} encoded, ${refused} refused`);
  });

  test('a tree one level too deep is refused at every shape', () => {
    let doc: WbxmlElement = el('AirSync', 'Collections');
    for (let i = 1; i < wbxmlMaxDepth; i++)
      doc = el(i % 2 ? 'Ping' : 'AirSync', i % 2 ? 'Folders' : 'Collections', doc);
    assert.deepEqual(decodeWbxml(encodeWbxml(doc)), doc);
    assert.throws(() => encodeWbxml(el('AirSync', 'Collections', doc)), WbxmlError);
  });
});
