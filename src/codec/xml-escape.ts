/**
 * The one XML escape of the project: text made safe for element content and for attribute values in
 * either quote, in XML and in HTML alike. Pure.
 *
 * `&`, `<` and `>` as the predefined entities; the quotes as character references (`&#34;`, `&#39;`),
 * which every XML and HTML parser reads, where `&apos;` is not an HTML 4 entity. The same five
 * replacements as Go's `encoding/xml` EscapeText.
 */

const references: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&#34;',
  "'": '&#39;',
};

/** `text` with `& < > " '` replaced by references; everything else as it was. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => references[c] ?? c);
}
