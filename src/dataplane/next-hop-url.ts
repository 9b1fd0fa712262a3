/** Where a proxied request goes: the URL at the next hop, composed from the decision and the client's path. */
import type { RequestHead } from '../core/protocols/request-head.ts';

/**
 * The URL to call at the next hop: the decision's URL names the virtual directory there; the rest of the
 * client's path and its query go along (Exchange proxies per virtual directory: `/owa/auth/...` under
 * the target's `/owa`, ActiveSync's `?Cmd=...&User=...` unchanged).
 */
export function nextHopUrl(vdirUrl: string, head: Pick<RequestHead, 'path' | 'query'>): string {
  const target = new URL(vdirUrl);
  const firstSegment = (p: string): number => {
    const i = p.indexOf('/', 1);
    return i < 0 ? p.length : i;
  };
  const base = target.pathname === '/' ? '' : target.pathname.slice(0, firstSegment(target.pathname));
  const rest = base === '' ? head.path : head.path.slice(firstSegment(head.path));
  return `${target.origin}${base}${rest}${head.query === '' ? '' : `?${head.query}`}`;
}

/**
 * The URL at a stand-in endpoint (`StoreEndpoint`): its whole path in place of the client's virtual
 * directory, then the rest of the client's path and its query (`/Microsoft-Server-ActiveSync?Cmd=Sync&...`
 * -> `/SOGo/Microsoft-Server-ActiveSync?Cmd=Sync&...`, the exact case the endpoint wants).
 */
export function endpointUrl(url: string, head: Pick<RequestHead, 'path' | 'query'>): string {
  const target = new URL(url);
  const slash = head.path.indexOf('/', 1);
  const rest = slash < 0 ? '' : head.path.slice(slash);
  const base = target.pathname.endsWith('/') && rest !== '' ? target.pathname.slice(0, -1) : target.pathname;
  return `${target.origin}${base}${rest}${head.query === '' ? '' : `?${head.query}`}`;
}
