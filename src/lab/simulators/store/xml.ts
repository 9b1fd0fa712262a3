/**
 * SOAP bodies are read by the shared strict reader (src/xml/read.ts): namespaces resolved, no DTD (so no
 * entity expansion), the five predefined entities and character references only, bounded size and nesting.
 * This module keeps the names the EWS simulator uses.
 */
import type { XmlElement } from '../../../xml/read.ts';

export type { XmlElement } from '../../../xml/read.ts';
export { readXml as parseXml, xmlChild as child, XmlError as XmlSyntaxError } from '../../../xml/read.ts';

/** The text content of `e`, untrimmed; empty when there is no `e`. */
export const text = (e: XmlElement | undefined): string => e?.text ?? '';
