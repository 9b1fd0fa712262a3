/**
 * Autodiscover answers are read by the shared strict reader (src/xml/read.ts): namespaces resolved, no DTD
 * (so no entity expansion), the five predefined entities and character references, bounded nesting and
 * size. This module keeps the names the ActiveSync client and `coexist check` import.
 */
export type { XmlElement as XmlNode } from '../../xml/read.ts';
export { readXml, XmlError as XmlReadError, xmlChild, xmlChildren, xmlText } from '../../xml/read.ts';
