/**
 * A small strict XML reader for SOAP bodies: namespaces resolved, no DTD (so no entity expansion), the
 * five predefined entities and character references only, bounded nesting.
 */

const xmlMaxDepth = 64;

/** An element as read: its namespace and local name, unprefixed attributes, child elements and text. */
export interface XmlElement {
  readonly ns: string;
  readonly local: string;
  /** Unprefixed attributes by name (namespace declarations left out). */
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  readonly text: string;
}

/** Where and why a document is not well-formed XML (1-based line and column). */
export class XmlSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
  }
}

/** The first child of `e` named `local` (in `ns`, when given). */
export const child = (e: XmlElement | undefined, local: string, ns?: string): XmlElement | undefined =>
  e?.children.find((c) => c.local === local && (ns === undefined || c.ns === ns));
/** The text content of `e`; empty when there is no `e`. */
export const text = (e: XmlElement | undefined): string => e?.text ?? '';

const predefined: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Parse a document; throws XmlSyntaxError on anything not well-formed or not accepted. */
export function parseXml(xml: string): XmlElement {
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
