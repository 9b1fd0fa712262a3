/**
 * ECP (`/ecp`, 2010+): the same session as OWA (logon happens on `/owa/auth…`), else the Basic user
 * (docs/protocols.md §2.2 ECP row).
 */
import { defaultSessionCookie, sessionIdentity } from './owa.ts';
import type { ProtocolModule } from './request-head.ts';
import { underPath } from './request-head.ts';

/** ECP with a session cookie of the given name (the one OWA sets). */
export function createEcp(sessionCookie = defaultSessionCookie): ProtocolModule {
  return {
    protocol: 'ecp',
    matches: (head) => underPath(head.path, '/ecp'),
    identify: (head) => sessionIdentity(head, sessionCookie),
  };
}

/** ECP with the default session cookie. */
export const ecp: ProtocolModule = createEcp();
