/**
 * What the estate says a request should do: the engine's flow (`coexist trace`) for one request of the
 * check, cut to the request itself (its first leg: the servers it passes through until someone answers,
 * redirects or refuses). Pure.
 */
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Policies } from '../core/estate/estate.ts';
import { CoexistError } from '../core/errors.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { Flow } from '../core/routing/flow.ts';
import { traceFlow } from '../core/routing/flow.ts';

/** How the first leg of a flow ends. */
export type LegOutcome =
  | { readonly kind: 'answered'; readonly by: string }
  | { readonly kind: 'redirected'; readonly status: number; readonly location: string }
  | { readonly kind: 'refused'; readonly by: string; readonly status: number; readonly code: string };

export interface Expectation {
  /** The servers the request should pass through, the entry server first; absent when unknown. */
  readonly hops?: readonly string[];
  readonly outcome?: LegOutcome;
  /** The whole flow, for the URLs of its hops. */
  readonly flow?: Flow;
  /** Why there is no expectation (a host the estate does not know...). */
  readonly unknown?: string;
}

export interface ExpectRequest {
  readonly user: string;
  readonly protocol: Protocol;
  readonly client: 'internal' | 'external';
  /** The host the request is sent to; absent: the flow's default (primary or Autodiscover namespace). */
  readonly host?: string;
}

/** What the estate says one request does. Never throws: an unknown host or user gives `unknown`. */
export function expectRequest(index: EstateIndex, req: ExpectRequest, policies?: Policies): Expectation {
  if (!index.mailbox(req.user)) return { unknown: `the estate has no mailbox for ${req.user}` };
  let flow: Flow;
  try {
    flow = traceFlow(
      index,
      {
        user: req.user,
        protocol: req.protocol,
        client: req.client,
        ...(req.host === undefined ? {} : { host: req.host }),
      },
      policies ?? index.estate.policies,
    );
  } catch (e) {
    if (e instanceof CoexistError) return { unknown: e.message };
    throw e;
  }
  const hops = flow.legs[0];
  return {
    ...(hops ? { hops } : {}),
    outcome: firstLegOutcome(flow),
    flow,
  };
}

/** How the first client request of a flow ends (a followed redirect starts a second one). */
export function firstLegOutcome(flow: Flow): LegOutcome {
  let connects = 0;
  for (const s of flow.steps) {
    if (s.kind === 'connect' && ++connects > 1) break;
    if (s.kind === 'redirect')
      return {
        kind: 'redirected',
        status: /HTTP 451/.test(s.text) ? 451 : 302,
        location: s.url ?? '',
      };
    if (s.kind === 'refuse') {
      const m = /HTTP (\d{3}) \((CX_[A-Z_]+)\)/.exec(s.text);
      return { kind: 'refused', by: s.from, status: Number(m?.[1] ?? 0), code: m?.[2] ?? '' };
    }
    if (s.kind === 'answer') return { kind: 'answered', by: s.from };
  }
  // A flow with one leg ends as the flow does.
  const o = flow.outcome;
  return o.kind === 'redirected'
    ? { kind: 'redirected', status: o.status, location: o.location }
    : o.kind === 'refused'
      ? { kind: 'refused', by: o.by, status: o.status, code: o.code }
      : { kind: 'answered', by: o.by };
}

const flowPrefix: Partial<Record<Protocol, string>> = { activesync: 'EAS-', ews: 'EWS-' };

/**
 * The numbered flow of docs/flows.md a flow is (`EAS-1`, `EWS-2`), from the sources of its reasons; only names
 * of the protocol's own family count (a 2007 CAS's store hop cites EAS-1 for every protocol).
 */
export function flowLabel(flow: Flow): string | undefined {
  const prefix = flowPrefix[flow.protocol];
  if (prefix === undefined) return undefined;
  for (const s of flow.steps)
    for (const r of s.reasons) {
      const m = /flows\.md\s+([A-Z]+-[0-9A-Za-z]+)/.exec(r.source);
      if (m?.[1]?.startsWith(prefix)) return m[1];
    }
  return undefined;
}

/** The URL `from` uses to reach `to` in a flow (absent for a legacy CAS's store hop, which has none). */
export function hopUrl(flow: Flow | undefined, from: string, to: string): string | undefined {
  const lower = (s: string | undefined): string => (s ?? '').toLowerCase();
  return flow?.steps.find(
    (s) => s.kind === 'proxy' && lower(s.from) === lower(from) && lower(s.to) === lower(to),
  )?.url;
}

/** Two URLs name the same place: scheme, host and path, case-insensitive host, no trailing slash. */
export function sameUrl(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const norm = (u: string): string => {
    try {
      const x = new URL(u);
      return `${x.protocol}//${x.host.toLowerCase()}${x.pathname.replace(/\/+$/, '').toLowerCase()}`;
    } catch {
      return u.replace(/\/+$/, '').toLowerCase();
    }
  };
  return norm(a) === norm(b);
}
