/**
 * Which protocol module a request is for (architecture.md "How a request flows"): the ordered list of
 * modules and `classify`. A new protocol is one file and one line here.
 */
import { activeSync } from './activesync.ts';
import { autodiscover } from './autodiscover.ts';
import { ecp } from './ecp.ts';
import { ews } from './ews.ts';
import { mapi } from './mapi.ts';
import { oab } from './oab.ts';
import { owa } from './owa.ts';
import type { ProtocolModule, RequestHead } from './request-head.ts';
import { rpc } from './rpc.ts';

export type { ProtocolModule } from './request-head.ts';

/** The modules in the order they are tried (paths do not overlap; the order only fixes precedence). */
export const modules: readonly ProtocolModule[] = [autodiscover, activeSync, ews, mapi, rpc, oab, owa, ecp];

/**
 * A path coexist routes at all: absolute, no empty, `.` or `..` segments, no backslash, no encoded slash,
 * backslash, dot or percent. Anything else matches no module, so lookalike paths never reach a back end.
 */
export function isCleanPath(path: string): boolean {
  if (!path.startsWith('/') || path.includes('\\') || /%(?:2f|5c|2e|25)/i.test(path)) return false;
  const segments = path.slice(1).split('/');
  return segments.every((s, i) => (s !== '' || i === segments.length - 1) && s !== '.' && s !== '..');
}

/** The module for a request, by path; undefined for paths of no protocol (the pipeline answers 404). */
export function classify(
  head: RequestHead,
  list: readonly ProtocolModule[] = modules,
): ProtocolModule | undefined {
  if (!isCleanPath(head.path)) return undefined;
  return list.find((m) => m.matches(head));
}
