/** The OAB at the mailbox (docs/protocols.md §2.2 OAB row): the manifest Outlook reads first. */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { drain, refuse, requestHead, send, xmlType } from './common.ts';

/** Answer a GET of /OAB/<guid>/oab.xml with the manifest of the default offline address book. */
export async function offlineAddressBook(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const m = /^\/oab\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/oab\.xml$/i.exec(
    requestHead(req).path,
  );
  if (!m) return refuse(req, res, 404, 'only /OAB/<guid>/oab.xml is simulated');
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return refuse(req, res, 405, 'the OAB is fetched with GET', { Allow: 'GET, HEAD' });
  await drain(req);
  const guid = (m[1] ?? '').toLowerCase();
  const sha = (what: string): string => createHash('sha1').update(`${guid}\n${what}`).digest('hex');
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n<OAB>\n' +
    `<OAL id="${guid}" dn="/o=coexist lab/cn=addrlists/cn=oabs/cn=Default Offline Address Book" ` +
    'name="\\Default Offline Address Book">\n' +
    `<Full seq="1" ver="32" size="2048" uncompressedsize="8192" SHA="${sha('full')}">${guid}-data-1.lzx</Full>\n` +
    `<Template seq="1" ver="32" size="1024" uncompressedsize="4096" SHA="${sha('template')}" langid="0409" ` +
    `type="windows">${guid}-lng0409-1.lzx</Template>\n</OAL>\n</OAB>\n`;
  send(res, 200, { ...xmlType, 'Cache-Control': 'private' }, xml);
}
