/**
 * The one XML reader: untrusted documents (SOAP and Autodiscover bodies, Autodiscover answers, wbxml2xml
 * output) into an element tree, on saxes (a strict, namespace-aware, non-validating parser that never
 * expands entities declared in a DTD). On top of saxes: a DOCTYPE is refused (or, where asked, one without
 * an internal subset is allowed: it declares nothing and names nothing that is fetched), and size, depth
 * and element count are bounded. Only the five predefined entities and character references are decoded.
 * Pure: no I/O, no Node built-ins.
 */
import type { SaxesTagNS } from 'saxes';
import { SaxesParser } from 'saxes';

/** An element as read. */
export interface XmlElement {
  /** The namespace URI ('' when the element is in no namespace). */
  readonly ns: string;
  readonly local: string;
  /**
   * Attributes: unprefixed ones by name, prefixed ones as `{namespace URI}local` (so `xml:lang` is
   * `{http://www.w3.org/XML/1998/namespace}lang`); namespace declarations left out.
   */
  readonly attributes: ReadonlyMap<string, string>;
  /** The child elements, in document order. */
  readonly children: readonly XmlElement[];
  /** Child elements and text in document order; adjacent text (CDATA included) merged, no empty strings. */
  readonly content: readonly (XmlElement | string)[];
  /** The element's own text (not its descendants'), concatenated: entities decoded, CDATA included. */
  readonly text: string;
}

export interface XmlReadOptions {
  /** The longest document read, in UTF-16 code units (default 1 MiB). */
  readonly maxLength?: number;
  /** The deepest nesting of elements, the root at 1 (default 64). */
  readonly maxDepth?: number;
  /** The most elements in the document (default 100,000). */
  readonly maxElements?: number;
  /** `refuse` (default): any DOCTYPE is an error. `external`: one without an internal subset is allowed. */
  readonly doctype?: 'refuse' | 'external';
}

/** Why and where (1-based line and column) a document is not well-formed or not accepted. */
export class XmlError extends Error {
  override name = 'XmlError';
  constructor(
    /** The reason alone, without the position. */
    readonly reason: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${reason} (line ${line}, column ${column})`);
  }
}

interface Open {
  readonly tag: SaxesTagNS;
  children?: XmlElement[];
  content?: (XmlElement | string)[];
  text?: string;
}

const xmlnsUri = 'http://www.w3.org/2000/xmlns/';
// Most elements have no attributes, or no children: they share these (never changed, only read).
const noAttributes: ReadonlyMap<string, string> = new Map();
const none: readonly never[] = Object.freeze([]);

// saxes reports "1:7: reason."; the position is kept apart.
const reasonOf = (err: Error): string => err.message.replace(/^\d+:\d+: /, '').replace(/\.$/, '');

function attributesOf(tag: SaxesTagNS): ReadonlyMap<string, string> {
  let attributes: Map<string, string> | undefined;
  for (const name in tag.attributes) {
    const a = tag.attributes[name];
    if (!a || a.uri === xmlnsUri) continue;
    (attributes ??= new Map()).set(a.prefix === '' ? a.local : `{${a.uri}}${a.local}`, a.value);
  }
  return attributes ?? noAttributes;
}

/** Read a whole document; throws XmlError for anything not well-formed, too large or too deep, or a DTD. */
export function readXml(xml: string, options: XmlReadOptions = {}): XmlElement {
  const { maxLength = 1024 * 1024, maxDepth = 64, maxElements = 100_000, doctype = 'refuse' } = options;
  if (xml.length > maxLength) throw new XmlError(`the document is longer than ${maxLength} characters`, 1, 1);
  const parser = new SaxesParser({ xmlns: true, position: true });
  const fail = (reason: string): never => {
    throw new XmlError(reason, parser.line, Math.max(parser.column, 1));
  };
  const stack: Open[] = [];
  let root: XmlElement | undefined;
  let elements = 0;
  const addText = (s: string): void => {
    const top = stack.at(-1);
    if (!top || s === '') return; // saxes itself refuses non-whitespace text outside the root
    top.text = (top.text ?? '') + s;
    const content = (top.content ??= []);
    const last = content.length - 1;
    if (typeof content[last] === 'string') content[last] += s;
    else content.push(s);
  };
  parser.on('error', (err) => fail(reasonOf(err)));
  parser.on('doctype', (declaration) => {
    if (doctype === 'refuse') fail('DTDs are prohibited');
    if (declaration.replace(/"[^"]*"|'[^']*'/g, '').includes('['))
      fail('DTDs are prohibited (a DOCTYPE with an internal subset)');
  });
  parser.on('opentag', (tag) => {
    if (stack.length >= maxDepth) fail(`elements nest deeper than ${maxDepth} levels`);
    if (++elements > maxElements) fail(`more than ${maxElements} elements`);
    stack.push({ tag });
  });
  parser.on('text', addText);
  parser.on('cdata', addText);
  parser.on('closetag', () => {
    const open = stack.pop() ?? fail('unexpected end tag');
    const element: XmlElement = {
      ns: open.tag.uri,
      local: open.tag.local,
      attributes: attributesOf(open.tag),
      children: open.children ?? none,
      content: open.content ?? none,
      text: open.text ?? '',
    };
    const parent = stack.at(-1);
    if (parent) {
      (parent.children ??= []).push(element);
      (parent.content ??= []).push(element);
    } else root = element;
  });
  parser.write(xml).close();
  return root ?? fail('document must contain a root element');
}

/** The first child of `e` named `local` (in `ns` when given, else in any namespace). */
export const xmlChild = (e: XmlElement | undefined, local: string, ns?: string): XmlElement | undefined =>
  e?.children.find((c) => c.local === local && (ns === undefined || c.ns === ns));

/** Every child of `e` named `local` (in `ns` when given, else in any namespace). */
export const xmlChildren = (e: XmlElement | undefined, local: string, ns?: string): XmlElement[] =>
  e ? e.children.filter((c) => c.local === local && (ns === undefined || c.ns === ns)) : [];

/** The trimmed text of `e`; '' when there is no `e`. */
export const xmlText = (e: XmlElement | undefined): string => e?.text.trim() ?? '';
