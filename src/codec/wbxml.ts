/**
 * WBXML 1.3 (WAP-192-WBXML) as Exchange ActiveSync uses it (MS-ASWBXML). Pure and table-driven: the code pages
 * are data (wbxml-code-pages.ts), adding one is one entry in `codePages`.
 *
 * What the decoder accepts (inputs are untrusted: they come from phones through the proxy):
 * - the header `03 01 6A 00` every ActiveSync peer sends (version 1.3, public id 1 "unknown", UTF-8,
 *   empty string table), and also what WBXML allows beyond it and libwbxml writes: a public id given as a
 *   string-table reference (`00 <index>`, naming the ActiveSync DTD) and a non-empty string table;
 * - tags from the 25 code pages (wbxml-code-pages.ts), with or without the content bit, SWITCH_PAGE before a tag, END,
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
import { escapeXml } from './xml-escape.ts';
import type { WbxmlNamespace } from './wbxml-code-pages.ts';
import { codePages } from './wbxml-code-pages.ts';

// The element's namespace type travels with the element API.
export type { WbxmlNamespace } from './wbxml-code-pages.ts';

/** One element: its namespace (code page), its tag name and its content in document order. */
export interface WbxmlElement {
  readonly ns: WbxmlNamespace;
  readonly tag: string;
  readonly children: readonly WbxmlNode[];
}

/** Element content: a child element, text (STR_I or STR_T) or opaque bytes (OPAQUE). */
export type WbxmlNode = WbxmlElement | string | Uint8Array;

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
          ? escapeXml(c)
          : c instanceof Uint8Array
            ? `[opaque ${c.length} bytes]`
            : render(c, el.ns),
      )
      .join('');
    return `<${el.tag}${ns}>${inner}</${el.tag}>`;
  };
  return render(root, undefined);
}
