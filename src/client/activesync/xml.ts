/**
 * A small strict XML reader for Autodiscover answers: namespaces resolved (default and prefixed), no DTD
 * (so no entity expansion), the five predefined entities and character references, bounded nesting and size.
 * Pure.
 */

/** An element: its namespace URI, local name, child elements and text. */
export interface XmlNode {
  readonly ns: string;
  readonly local: string;
  readonly children: readonly XmlNode[];
  readonly text: string;
}

export class XmlReadError extends Error {
  override name = 'XmlReadError';
}

const maxDepth = 64;
const maxLength = 1024 * 1024;
const entities: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function unescape(raw: string): string {
  return raw.replace(/&([^;&\s]{1,10});|&/g, (whole, ref: string | undefined) => {
    if (ref === undefined) throw new XmlReadError('stray & in text');
    const named = entities[ref];
    if (named !== undefined) return named;
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref);
    const code = m ? parseInt(m[1] ?? m[2] ?? '', m[1] ? 16 : 10) : NaN;
    if (!(code > 0 && code <= 0x10ffff)) throw new XmlReadError(`unknown entity ${whole}`);
    return String.fromCodePoint(code);
  });
}

/** Parse a document; throws XmlReadError for anything not well-formed, or with a DTD. */
export function readXml(xml: string): XmlNode {
  if (xml.length > maxLength) throw new XmlReadError('document too large');
  if (/<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i.test(xml)) throw new XmlReadError('DTDs are refused');
  interface Open {
    readonly qname: string;
    readonly local: string;
    readonly prefix: string;
    readonly scope: ReadonlyMap<string, string>;
    readonly children: XmlNode[];
    readonly text: string[];
  }
  const stack: Open[] = [];
  let root: XmlNode | undefined;
  const tag =
    /<(\/?)([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/y;
  const attr = /([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/g;
  let i = xml.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const end = lt < 0 ? xml.length : lt;
    if (end > i) {
      const top = stack.at(-1);
      if (top) top.text.push(unescape(xml.slice(i, end)));
      else if (xml.slice(i, end).trim() !== '') throw new XmlReadError('text outside the root element');
    }
    if (lt < 0) break;
    if (xml.startsWith('<?', lt) || xml.startsWith('<!--', lt)) {
      const close = xml.indexOf(xml.startsWith('<?', lt) ? '?>' : '-->', lt);
      if (close < 0) throw new XmlReadError('unterminated declaration or comment');
      i = close + (xml.startsWith('<?', lt) ? 2 : 3);
      continue;
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      const close = xml.indexOf(']]>', lt);
      const top = stack.at(-1);
      if (close < 0 || !top) throw new XmlReadError('CDATA outside an element or unterminated');
      top.text.push(xml.slice(lt + 9, close));
      i = close + 3;
      continue;
    }
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) throw new XmlReadError(`malformed tag at ${lt}`);
    i = tag.lastIndex;
    const [, closing, qname = '', attrs = '', selfClosing] = m;
    const colon = qname.indexOf(':');
    const prefix = colon < 0 ? '' : qname.slice(0, colon);
    const local = colon < 0 ? qname : qname.slice(colon + 1);
    if (closing) {
      const open = stack.pop();
      if (!open || open.qname !== qname) throw new XmlReadError(`unexpected </${qname}>`);
      finish(open);
      continue;
    }
    if (root) throw new XmlReadError('more than one root element');
    if (stack.length >= maxDepth) throw new XmlReadError('elements nest too deep');
    const scope = new Map(stack.at(-1)?.scope ?? []);
    for (const a of attrs.matchAll(attr)) {
      const name = a[1] ?? '';
      const value = unescape(a[2] ?? a[3] ?? '');
      if (name === 'xmlns') scope.set('', value);
      else if (name.startsWith('xmlns:')) scope.set(name.slice(6), value);
    }
    const open: Open = { qname, local, prefix, scope, children: [], text: [] };
    if (selfClosing) finish(open);
    else stack.push(open);
  }
  if (stack.length > 0 || !root) throw new XmlReadError('the document ends inside an element');
  return root;

  function finish(open: Open): void {
    const ns = open.scope.get(open.prefix);
    if (ns === undefined && open.prefix !== '') throw new XmlReadError(`undeclared prefix ${open.prefix}`);
    const node: XmlNode = {
      ns: ns ?? '',
      local: open.local,
      children: open.children,
      text: open.text.join(''),
    };
    const parent = stack.at(-1);
    if (parent) parent.children.push(node);
    else root = node;
  }
}

/** The first child named `local` (any namespace). */
export const xmlChild = (e: XmlNode | undefined, local: string): XmlNode | undefined =>
  e?.children.find((c) => c.local === local);

/** Every child named `local` (any namespace). */
export const xmlChildren = (e: XmlNode | undefined, local: string): XmlNode[] =>
  e ? e.children.filter((c) => c.local === local) : [];

/** The trimmed text of `e`; '' when absent. */
export const xmlText = (e: XmlNode | undefined): string => e?.text.trim() ?? '';
