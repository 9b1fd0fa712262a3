/**
 * The routing engine: what one server of the estate does with one request. Pure: no I/O, no clock.
 * Unfolded from the entry server until someone responds (`flow.ts`), these decisions are the numbered
 * flows of docs/flows.md. Rules cite docs/protocols.md (§2.x) and docs/flows.md; where both are silent the rule
 * follows Exchange 2013 and says why.
 */
import { autodiscoverAnswer, offered, withPrimaryActiveSync } from '../autodiscover/answer.ts';
import type { EstateIndex, Mailbox } from '../estate/estate-index.ts';
import type { Policies, Server, VersionFamily } from '../estate/estate.ts';
import { familyLabel, familyOf } from '../estate/estate.ts';
import type { Protocol } from '../protocols/protocol.ts';
import { protocolPath, protocolTitle } from '../protocols/protocol.ts';
import { statusOf } from '../errors.ts';
import { hostOfHeader, hostOfUrl } from '../host.ts';
import type { Alternative, Decision, HopVia, ProxyDecision, Reason, RefuseCode } from './decision.ts';

/** The role a server plays for this request: its client-access front or its mailbox back end. */
export type Role = 'cas' | 'mailbox';

/** A server of the estate acting in one role. */
export interface ServerRef {
  readonly server: Server;
  readonly role: Role;
}

/** Everything the engine needs about one request, already looked up by the caller. */
export interface RoutingInput {
  readonly protocol: Protocol;
  /** The mailbox the request is for, or undefined when the directory does not know the user. */
  readonly mailbox: Mailbox | undefined;
  /** Where the client is; ActiveSync is always external (docs/flows.md). */
  readonly client: 'internal' | 'external';
  /** The host name the request was sent to (used to avoid redirecting a browser to where it already is). */
  readonly host: string;
}

const reason = (rule: string, text: string, source: string): Reason => ({ rule, text, source });

/** Decide what `at` does with `input`. */
export function decide(at: ServerRef, input: RoutingInput, index: EstateIndex, policies: Policies): Decision {
  if (!at.server.roles.includes(at.role)) {
    return refuse('CX_ROUTE_NOT_HERE', [
      reason(
        'server.wrong-role',
        `${at.server.name} has no ${at.role === 'cas' ? 'Client Access' : 'Mailbox'} role: it cannot take this request in that role.`,
        'docs/protocols.md §1',
      ),
    ]);
  }
  const m = input.mailbox;
  if (!m) {
    return refuse('CX_ROUTE_UNKNOWN_MAILBOX', [
      reason('directory.unknown', 'The directory has no mailbox for this user.', 'docs/protocols.md §1'),
    ]);
  }
  if (!offered(m.server.version, input.protocol)) {
    return refuse('CX_ROUTE_NOT_OFFERED', [
      reason(
        `${input.protocol}.not-offered`,
        `${protocolTitle[input.protocol]} is not offered for Exchange ${m.server.version} mailboxes.`,
        input.protocol === 'mapi' ? 'docs/protocols.md §2.1 rule 7' : 'docs/protocols.md §2.2 (ECP row)',
      ),
    ]);
  }
  const family = familyOf(at.server.version);
  if (family === 'modern') {
    return at.role === 'cas'
      ? modernFrontEnd(at.server, input, m, index, policies)
      : modernBackEnd(at.server, input, m, index);
  }
  return at.role === 'cas' ? legacyCas(at.server, family, input, m, index) : legacyMailbox(at.server, m);
}

/** A 2013+ Client Access front end (CAS2013-NY): authenticate, look up, then proxy or redirect (docs/protocols.md §2.1). */
function modernFrontEnd(
  fe: Server,
  input: RoutingInput,
  m: Mailbox,
  index: EstateIndex,
  policies: Policies,
): Decision {
  const p = input.protocol;
  const here = fe.site;
  const crossSite = m.site.name !== here;
  if (m.family === 'modern') {
    // Only OWA is redirected for 2013+ mailboxes; ECP and everything else is proxied (docs/protocols.md §2.1 rule 2, §2.6).
    if (p === 'owa' && crossSite) {
      const ext = index.casFor(m.site.name, 'modern', p)?.urls.owa?.external;
      if (ext && !sameHost(ext, input.host)) {
        return redirect302(ext, policies.owaRedirectStyle, [
          reason(
            `${p}.modern.cross-site.redirect`,
            `The mailbox is on Exchange ${m.server.version} in ${m.site.name}, whose ${protocolTitle[p]} external URL is ${ext}: the browser is sent there.`,
            'docs/protocols.md §2.3 (OWA 2013 mailbox row)',
          ),
        ]);
      }
    }
    return proxyToBackEnd(m.server, p, [
      reason(
        `${p}.modern.proxy-backend`,
        `Mailbox version ${m.server.version}: the front end proxies every protocol to the mailbox server ${m.server.name} (back-end site, port 444).`,
        'docs/flows.md MODERN-1; docs/protocols.md §2.1 rule 3',
      ),
    ]);
  }

  const label = familyLabel(m.family);
  const home = index.casFor(m.site.name, m.family, p);
  switch (p) {
    case 'autodiscover': {
      if (m.family === 2007) {
        if (policies.autodiscoverLegacy === 'proxy-to-mailbox') {
          const local = index.mailboxServersIn(here, 'modern')[0];
          if (local) {
            return proxyToLocalBackEnd(local, p, index, [
              reason(
                'autodiscover.2007.proxy-mailbox',
                `Policy autodiscoverLegacy=proxy-to-mailbox: a local 2013 mailbox server (${local.name}) builds the answer with the 2007 URLs.`,
                'docs/protocols.md §2.2 Autodiscover row [4]',
              ),
            ]);
          }
        }
        const answered = answerAutodiscover(m, index, [
          reason(
            'autodiscover.2007.answer',
            `Mailbox version 2007: the front end answers Autodiscover itself from the directory, with the 2007 URLs (legacy or site namespace).`,
            'docs/flows.md EWS-1 step 3; docs/protocols.md §2.8',
          ),
        ]);
        return policies.mobileAutodiscover === 'primary-namespace'
          ? onPrimaryNamespace(answered, index)
          : answered;
      }
      return viaLegacyCas(index, home, m, 'internal-url', p, [
        reason(
          'autodiscover.2010.proxy',
          `Mailbox version 2010: Autodiscover is proxied to the 2010 CAS in ${m.site.name}, which answers with its own URLs.`,
          'docs/protocols.md §2.2 Autodiscover row',
        ),
      ]);
    }
    case 'owa':
    case 'ecp': {
      if (m.family === 2010) {
        const ext = home?.urls[p]?.external;
        if (ext && !sameHost(ext, input.host)) {
          return redirect302(ext, policies.owaRedirectStyle, [
            reason(
              `${p}.2010.redirect`,
              `Mailbox version 2010 and the 2010 CAS in ${m.site.name} has a ${protocolTitle[p]} external URL: redirect there.`,
              'docs/protocols.md §2.1 rule 8 ("redirect if the ExternalURL is set")',
            ),
          ]);
        }
        const why = ext
          ? `its ${protocolTitle[p]} external URL ${ext} is the host the browser already used, so a redirect would loop`
          : `it has no ${protocolTitle[p]} external URL`;
        return viaLegacyCas(index, home, m, 'internal-url', p, [
          reason(
            `${p}.2010.proxy`,
            `Mailbox version 2010 and ${why}: proxy to the 2010 CAS in ${m.site.name}.`,
            'docs/protocols.md §2.1 rule 8, §2.4 note',
          ),
        ]);
      }
      // OWA for 2007 (ECP was refused above: not offered for 2007). CAS2013 cannot proxy OWA to 2007.
      return owaFor2007(input, m, index, policies);
    }
    case 'activesync': {
      const ext = home?.urls.activesync?.external;
      if (crossSite && ext) {
        if (policies.activesyncCrossSite === 'redirect-451') {
          return redirect451(ext, [
            reason(
              'activesync.cross-site.451',
              `Policy activesyncCrossSite=redirect-451 (pre-2013 behaviour): the mailbox's site ${m.site.name} is internet-facing for ActiveSync, so the device is told to use ${ext}.`,
              'docs/flows.md EAS-legacy; docs/protocols.md §4.1 (451)',
            ),
          ]);
        }
        if (m.family === 2007 && home) {
          return proxy(home, 'external-url', ext, withEquivalents(index, home, 'external-url', p), [
            reason(
              'activesync.2007.cross-site.proxy-external',
              `The mailbox's site ${m.site.name} is internet-facing: instead of a 451 redirect (which many devices mishandle), CAS2013 proxies the request and credentials to the external ActiveSync URL of ${home.name}.`,
              'docs/flows.md EAS-3A step 3',
            ),
          ]);
        }
      }
      if (m.family === 2007) {
        const local = index.mailboxServersIn(here, 'modern')[0];
        if (local) {
          const where = crossSite
            ? `no 2007 CAS in ${here} serves this mailbox (it is in ${m.site.name}, which has no external ActiveSync URL)`
            : `the mailbox and a 2007 CAS are in the front end's own site ${here}`;
          return proxyToLocalBackEnd(local, p, index, [
            reason(
              crossSite
                ? 'activesync.2007.intranet-site.via-mailbox'
                : 'activesync.2007.same-site.via-mailbox',
              `Mailbox version 2007 and ${where}: CAS2013 does not talk to a 2007 CAS itself; it proxies the request and credentials to the local 2013 mailbox server ${local.name}.`,
              crossSite ? 'docs/flows.md EAS-2 steps 2-3' : 'docs/flows.md EAS-1 step 3',
            ),
          ]);
        }
      }
      return viaLegacyCas(index, home, m, 'internal-url', p, [
        reason(
          `activesync.${label}.proxy-internal`,
          `Mailbox version ${label}: ActiveSync is proxied to the internal URL of the ${label} CAS in ${m.site.name}.`,
          m.family === 2007
            ? 'docs/protocols.md §2.6 (no local 2013 mailbox server)'
            : 'docs/protocols.md §2.2, §6',
        ),
      ]);
    }
    case 'ews':
    case 'rpc':
    case 'oab':
      return viaLegacyCas(index, home, m, 'internal-url', p, [legacyProxyReason(p, m, here)]);
    case 'mapi':
      // `offered()` already refuses MAPI/HTTP for legacy mailboxes; kept for exhaustiveness.
      return refuse('CX_ROUTE_NOT_OFFERED', [
        reason(
          'mapi.not-offered',
          'MAPI/HTTP is offered only for 2013 SP1+ mailboxes.',
          'docs/protocols.md §2.1 rule 7',
        ),
      ]);
  }
}

function legacyProxyReason(p: 'ews' | 'rpc' | 'oab', m: Mailbox, here: string): Reason {
  const label = familyLabel(m.family);
  const where = m.site.name === here ? "in the front end's own site" : `in ${m.site.name}`;
  switch (p) {
    case 'ews':
      return reason(
        `ews.${label}.proxy`,
        `Mailbox version ${label} with its CAS ${where}: the EWS request that reached the front end is proxied to that CAS.`,
        m.family === 2007 ? 'docs/flows.md EWS-2 step 3' : 'docs/protocols.md §2.2 EWS row, §2.3',
      );
    case 'rpc':
      return reason(
        `rpc.${label}.proxy`,
        `Mailbox version ${label}: Outlook Anywhere is proxied to the ${label} CAS ${where} (Outlook Anywhere must be enabled there, with NTLM).`,
        'docs/protocols.md §2.1 rule 6',
      );
    case 'oab':
      return reason(
        `oab.${label}.proxy`,
        `Mailbox version ${label}: the offline address book is served by the ${label} CAS ${where}.`,
        'docs/protocols.md §2.2 OAB row',
      );
  }
}

/** OWA for a 2007 mailbox from a 2013 front end: always a redirect (docs/protocols.md §2.2, §2.3). */
function owaFor2007(input: RoutingInput, m: Mailbox, index: EstateIndex, policies: Policies): Decision {
  const home = index.casFor(m.site.name, 2007, 'owa');
  if (input.client === 'internal' && home?.urls.owa?.internal) {
    const url = home.urls.owa.internal;
    return redirect302(url, policies.owaRedirectStyle, [
      reason(
        'owa.2007.internal-client.redirect-internal',
        `Mailbox version 2007 and the client is inside the network: redirect to the internal OWA URL of ${home.name}, which it can reach.`,
        'docs/protocols.md §2.4 (OWA row: InternalUrl only for known internal clients)',
      ),
    ]);
  }
  const siteExt = home?.urls.owa?.external;
  if (siteExt) {
    return redirect302(siteExt, policies.owaRedirectStyle, [
      reason(
        'owa.2007.redirect-site-external',
        `Mailbox version 2007: CAS2013 cannot proxy OWA to 2007; ${home.name} in the mailbox's site has the OWA external URL ${siteExt}, so the browser is redirected there.`,
        'docs/flows.md OWA-1; docs/protocols.md §2.2, §2.3 OWA 2007 rows',
      ),
    ]);
  }
  const legacyNs = index.namespaceOfKind('legacy');
  const legacyCas = legacyNs && index.server(legacyNs.server);
  const legacyUrl = legacyCas?.urls.owa?.external;
  if (legacyUrl && legacyCas) {
    return redirect302(legacyUrl, policies.owaRedirectStyle, [
      reason(
        'owa.2007.redirect-legacy-namespace',
        `Mailbox version 2007 in ${m.site.name}, which has no OWA external URL: redirect to the legacy namespace (${legacyCas.name}), whose 2007 CAS proxies on to the mailbox's site.`,
        'docs/flows.md OWA-2; docs/protocols.md §2.3',
      ),
    ]);
  }
  return refuse('CX_ROUTE_NO_REDIRECT_TARGET', [
    reason(
      'owa.2007.no-target',
      `Mailbox version 2007 needs an OWA redirect target, but neither the mailbox's site nor a legacy namespace has a 2007 OWA external URL. Add a namespace of kind "legacy".`,
      'docs/protocols.md §1 (legacy namespace)',
    ),
  ]);
}

/** A 2013+ mailbox server (the back end): serve its own mailboxes, hand legacy ones down-level (docs/flows.md EAS-1 step 4). */
function modernBackEnd(self: Server, input: RoutingInput, m: Mailbox, index: EstateIndex): Decision {
  const p = input.protocol;
  if (m.family === 'modern') {
    if (m.server === self) return respond(p, m, index, `${self.name} holds the mailbox.`);
    return proxyToBackEnd(m.server, p, [
      reason(
        'backend.modern.other-server',
        `The mailbox is on ${m.server.name}: proxy there.`,
        'docs/protocols.md §2.1 rule 3',
      ),
    ]);
  }
  if (p === 'autodiscover') {
    return respond(
      p,
      m,
      index,
      `${self.name} builds the Autodiscover answer for the ${m.server.version} mailbox.`,
      'docs/protocols.md §2.2 [4]',
    );
  }
  const label = familyLabel(m.family);
  const home = index.casFor(m.site.name, m.family, p);
  const step =
    p !== 'activesync' || m.family !== 2007
      ? 'docs/protocols.md §2.2'
      : m.site.name === self.site
        ? 'docs/flows.md EAS-1 step 4'
        : 'docs/flows.md EAS-2 step 4';
  return viaLegacyCas(index, home, m, 'internal-url', p, [
    reason(
      `backend.${label}.proxy-internal`,
      `Mailbox version ${label} in ${m.site.name}: ${self.name} proxies to the internal ${protocolTitle[p]} URL of ${home?.name ?? `the ${label} CAS`}.`,
      step,
    ),
  ]);
}

/** A 2007 or 2010 Client Access server: pass to its mailbox server, or act as the old CAS did across sites (docs/protocols.md §2.5). */
function legacyCas(
  self: Server,
  family: VersionFamily,
  input: RoutingInput,
  m: Mailbox,
  index: EstateIndex,
): Decision {
  const p = input.protocol;
  if (m.family !== family) {
    return refuse('CX_ROUTE_VERSION_MISMATCH', [
      reason(
        'legacy-cas.version-mismatch',
        `${self.name} is an Exchange ${self.version} CAS and the mailbox is on Exchange ${m.server.version}: it does not serve it (a 2007 CAS cannot render a newer mailbox; 2013 proxies down-level, never the reverse).`,
        'docs/protocols.md §2.1, §2.5',
      ),
    ]);
  }
  if (p === 'autodiscover') {
    return respond(
      p,
      m,
      index,
      `${self.name} answers Autodiscover for ${familyLabel(family)} mailboxes of the organization itself.`,
      'docs/protocols.md §2.5',
    );
  }
  if (m.site.name === self.site) {
    if (m.server === self) return respond(p, m, index, `${self.name} also holds the mailbox.`);
    return {
      kind: 'proxy',
      to: m.server,
      via: 'store',
      credentials: 'passed-on',
      reasons: [
        reason(
          'legacy-cas.same-site.store',
          `The mailbox is in ${self.name}'s own site: it passes the request to the mailbox server ${m.server.name}.`,
          'docs/flows.md EAS-1 step 5',
        ),
      ],
    };
  }
  const home = index.casFor(m.site.name, family, p);
  const ext = home?.urls[p]?.external;
  if (p === 'activesync' && ext) {
    return redirect451(ext, [
      reason(
        'legacy-cas.activesync.cross-site.451',
        `A ${self.version} CAS answers ActiveSync for a mailbox in another internet-facing site (${m.site.name}) with 451 and X-MS-Location.`,
        'docs/protocols.md §2.3 (ActiveSync, 2007/2010 front end)',
      ),
    ]);
  }
  if (p === 'owa' && ext && !sameHost(ext, input.host)) {
    return redirect302(ext, 'http-302', [
      reason(
        'legacy-cas.owa.cross-site.redirect',
        `A ${self.version} CAS sends OWA users of another internet-facing site (${m.site.name}) to that site's external URL.`,
        'docs/protocols.md §2.5 (OWA cross-site redirect)',
      ),
    ]);
  }
  return viaLegacyCas(index, home, m, 'internal-url', p, [
    reason(
      'legacy-cas.cross-site.proxy',
      `The mailbox is in ${m.site.name}${ext ? '' : ', which is not internet-facing for ' + protocolTitle[p]}: ${self.name} proxies CAS-to-CAS to the internal URL of ${home?.name ?? 'its CAS'} (Integrated Windows authentication on the target).`,
      'docs/protocols.md §2.5 (CAS-to-CAS proxy); docs/flows.md OWA-2',
    ),
  ]);
}

/** A 2007/2010 mailbox server: the end of the path. */
function legacyMailbox(self: Server, m: Mailbox): Decision {
  if (m.server === self) {
    return {
      kind: 'respond',
      answer: 'mailbox',
      reasons: [
        reason(
          'mailbox.holds',
          `${self.name} holds the mailbox and answers with its content.`,
          'docs/flows.md EAS-1 step 6',
        ),
      ],
    };
  }
  return refuse('CX_ROUTE_NOT_HERE', [
    reason(
      'mailbox.not-here',
      `${self.name} does not hold this mailbox (it is on ${m.server.name}).`,
      'docs/protocols.md §1',
    ),
  ]);
}

function respond(
  p: Protocol,
  m: Mailbox,
  index: EstateIndex,
  why: string,
  source = 'docs/flows.md MODERN-1',
): Decision {
  if (p === 'autodiscover') return answerAutodiscover(m, index, [reason('autodiscover.answer', why, source)]);
  return { kind: 'respond', answer: 'mailbox', reasons: [reason('mailbox.holds', why, source)] };
}

function answerAutodiscover(m: Mailbox, index: EstateIndex, reasons: readonly Reason[]): Decision {
  const answer = autodiscoverAnswer(m, index);
  if (!answer) {
    return refuse('CX_ROUTE_NO_CAS_IN_SITE', [
      reason(
        'autodiscover.no-cas',
        `No ${familyLabel(m.family)} CAS in ${m.site.name} to describe in the answer.`,
        'docs/protocols.md §2.6',
      ),
    ]);
  }
  return { kind: 'respond', answer: 'autodiscover', autodiscover: answer, reasons };
}

/** Policy mobileAutodiscover=primary-namespace: the mobile URL on the front end's namespace, and why. */
function onPrimaryNamespace(d: Decision, index: EstateIndex): Decision {
  if (d.kind !== 'respond' || d.answer !== 'autodiscover') return d;
  const moved = withPrimaryActiveSync(d.autodiscover, index);
  if (!moved) return d;
  return {
    ...d,
    autodiscover: moved,
    reasons: [
      ...d.reasons,
      reason(
        'autodiscover.mobile.primary-namespace',
        `Policy mobileAutodiscover=primary-namespace: devices get ${moved.external.activesync ?? ''} instead of ${d.autodiscover.external.activesync ?? ''}; the front end proxies to the mailbox's site.`,
        'docs/flows.md EAS-3A / EAS-3B',
      ),
    ],
  };
}

function proxy(
  to: Server,
  via: HopVia,
  url: string | undefined,
  alternatives: readonly Alternative[],
  reasons: readonly Reason[],
): ProxyDecision {
  // Only a decision with equivalent servers carries the field: every other one (and its JSON) is unchanged.
  if (alternatives.length > 0)
    return url === undefined
      ? { kind: 'proxy', to, via, alternatives, credentials: 'passed-on', reasons }
      : { kind: 'proxy', to, via, url, alternatives, credentials: 'passed-on', reasons };
  return url === undefined
    ? { kind: 'proxy', to, via, credentials: 'passed-on', reasons }
    : { kind: 'proxy', to, via, url, credentials: 'passed-on', reasons };
}

/** A 2013+ mailbox server's back-end site, `https://<fqdn>:444/<vdir>` (docs/protocols.md §2.1 rule 3). */
const backendUrl = (s: Server, p: Protocol): string => `https://${s.fqdn}:444${protocolPath[p]}`;

/** A 2013+ mailbox server holding the mailbox, on its back-end site (docs/protocols.md §2.1 rule 3): nothing stands in. */
function proxyToBackEnd(to: Server, p: Protocol, reasons: readonly Reason[]): ProxyDecision {
  return proxy(to, 'backend', backendUrl(to, p), none, reasons);
}

/** Any 2013+ mailbox server of a site that hands the request on (`to`, the first): its equivalents may stand in. */
function proxyToLocalBackEnd(
  to: Server,
  p: Protocol,
  index: EstateIndex,
  reasons: readonly Reason[],
): ProxyDecision {
  return proxy(to, 'backend', backendUrl(to, p), withEquivalents(index, to, 'backend', p), reasons);
}

const none: readonly Alternative[] = [];

/**
 * Memo of `withEquivalents` per estate index, server, way and protocol: decisions share one array, and a
 * lookup builds no key.
 */
const equivalentsMemo = new WeakMap<
  EstateIndex,
  Map<Server, Map<HopVia, Map<Protocol, readonly Alternative[]>>>
>();

/**
 * The servers that can stand in for `to` when it is reached `via` for protocol `p` (docs/config.md "Equivalent
 * servers"): the other servers of its site with the same Exchange version and the same role (a CAS for a URL
 * hop, a mailbox server for a back-end hop), each at its own URL of the same kind, in estate-file order. As
 * Exchange treats the Client Access servers of one version in one AD site. One whose URL is `to`'s own (a
 * shared load-balanced name) is the same next hop, not an alternative.
 */
function withEquivalents(index: EstateIndex, to: Server, via: HopVia, p: Protocol): readonly Alternative[] {
  const family = familyOf(to.version);
  const peers = via === 'backend' ? index.mailboxServersIn(to.site, family) : index.casIn(to.site, family);
  if (peers.length < 2) return none;
  let byServer = equivalentsMemo.get(index);
  if (!byServer) equivalentsMemo.set(index, (byServer = new Map()));
  let byVia = byServer.get(to);
  if (!byVia) byServer.set(to, (byVia = new Map()));
  let memo = byVia.get(via);
  if (!memo) byVia.set(via, (memo = new Map()));
  const known = memo.get(p);
  if (known) return known;
  const urlOf = (s: Server): string | undefined =>
    via === 'backend'
      ? backendUrl(s, p)
      : via === 'internal-url'
        ? s.urls[p]?.internal
        : via === 'external-url'
          ? s.urls[p]?.external
          : undefined;
  const own = urlOf(to);
  const out: Alternative[] = [];
  for (const s of peers) {
    if (s === to || s.version !== to.version) continue;
    const url = urlOf(s);
    if (url !== undefined && url !== own) out.push({ to: s, url });
  }
  const result = out.length === 0 ? none : out;
  memo.set(p, result);
  return result;
}

/** Proxy to a legacy CAS's virtual directory, or refuse when the estate gives no CAS or no URL for it. */
function viaLegacyCas(
  index: EstateIndex,
  cas: Server | undefined,
  m: Mailbox,
  via: 'internal-url',
  p: Protocol,
  reasons: readonly Reason[],
): Decision {
  const label = familyLabel(m.family);
  if (!cas) {
    return refuse('CX_ROUTE_NO_CAS_IN_SITE', [
      ...reasons,
      reason(
        'route.no-cas',
        `No Exchange ${label} CAS in ${m.site.name} serves the mailbox: add one to the estate.`,
        'docs/protocols.md §2.6',
      ),
    ]);
  }
  const url = cas.urls[p]?.internal;
  if (!url) {
    return refuse('CX_ROUTE_NO_URL', [
      ...reasons,
      reason(
        'route.no-url',
        `${cas.name} has no internal ${protocolTitle[p]} URL in the estate: add urls.${p}.internal.`,
        'docs/protocols.md §1',
      ),
    ]);
  }
  return proxy(cas, via, url, withEquivalents(index, cas, via, p), reasons);
}

function redirect302(
  location: string,
  style: 'http-302' | 'silent-fba',
  reasons: readonly Reason[],
): Decision {
  return { kind: 'redirect', status: 302, location, style, reasons };
}

/** The legacy ActiveSync redirect: 451 with `X-MS-Location` (docs/protocols.md §4.1). */
function redirect451(location: string, reasons: readonly Reason[]): Decision {
  return { kind: 'redirect', status: 451, location, style: 'x-ms-location', reasons };
}

function refuse(code: RefuseCode, reasons: readonly Reason[]): Decision {
  return { kind: 'refuse', code, status: statusOf(code), reasons };
}

/** Whether a URL points at the host a request was sent to (Host header, maybe with a port): a redirect there would loop. */
function sameHost(url: string, hostHeader: string): boolean {
  return hostOfUrl(url) === hostOfHeader(hostHeader);
}
