/** OWA and ECP at the mailbox (docs/protocols.md §4.9): the page the user lands on after logon. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StoreContext } from './common.ts';
import { drain, escapeHtml, refuse, send } from './common.ts';
import { buildText, profiles } from './versions.ts';

/** Answer an OWA or ECP request with the page naming the user, the server and its version. */
export async function owaPage(req: IncomingMessage, res: ServerResponse, ctx: StoreContext): Promise<void> {
  const p = profiles[ctx.version];
  const title = ctx.protocol === 'owa' ? p.owaTitle : p.ecpTitle;
  if (title === undefined) return refuse(req, res, 404, `${p.product} has no ECP`);
  if (!['GET', 'HEAD', 'POST'].includes(req.method ?? ''))
    return refuse(req, res, 405, 'OWA/ECP pages take GET, HEAD and POST', { Allow: 'GET, HEAD, POST' });
  await drain(req);
  const { address, displayName } = ctx.mailbox;
  const html =
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    // The empty icon keeps the browser from asking for /favicon.ico (a 404 in its console).
    `<title>${escapeHtml(title)}</title><link rel="icon" href="data:,"></head><body>\n` +
    `<h1>${escapeHtml(title)}</h1>\n` +
    `<p id="user">${escapeHtml(displayName)} &lt;${escapeHtml(address)}&gt;</p>\n` +
    `<p id="server">Mailbox server ${escapeHtml(ctx.serverName)}, ${escapeHtml(p.product)} (${buildText(p)})</p>\n` +
    // OWA's own logoff, on the host the browser is at (the front door's chain takes it to the others).
    '<p><a id="signout" href="/owa/auth/logoff.aspx">Sign out</a></p>\n' +
    '<p id="simulator">coexist lab: mailbox store simulator</p>\n</body></html>\n';
  // The user's mailbox: no browser keeps a copy that Back could show after logoff (docs/security.md
  // "OWA in the browser").
  send(res, 200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }, html);
}
