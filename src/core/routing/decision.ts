/**
 * What a server decides to do with one request: exactly one of proxy, redirect, respond or refuse,
 * always with the reasons that led there (Envoy's `oneof action`).
 */
import type { AutodiscoverAnswer } from '../autodiscover/answer.ts';
import type { Server } from '../estate/estate.ts';

/** One rule that applied, machine-readable (`rule`, `facts`) and readable (`text`), with its source. */
export interface Reason {
  /** Stable rule id, e.g. `eas.legacy.cross-site-internet-facing.proxy`. */
  readonly rule: string;
  /** One sentence a reviewer can check against the article. */
  readonly text: string;
  /** Where the rule comes from: `docs/flows.md EAS-3A`, `docs/protocols.md §2.2`, ... */
  readonly source: string;
}

/**
 * How the next hop is reached:
 * - `backend`: a 2013+ mailbox server's back-end site (`https://<fqdn>:444/<vdir>`, docs/protocols.md §2.1 rule 3);
 * - `internal-url` / `external-url`: a Client Access server's virtual directory URL;
 * - `store`: a legacy CAS handing the request to its mailbox server over RPC (no HTTP URL).
 */
export type HopVia = 'backend' | 'internal-url' | 'external-url' | 'store';

/**
 * A server that can stand in for a proxy decision's `to`, reached the same way at its own URL: the same
 * Exchange version and role in the same site (docs/config.md "Equivalent servers"). The same rule and reasons
 * apply to it; the data plane chooses among the healthy ones (docs/operations.md "Next hops").
 */
export interface Alternative {
  readonly to: Server;
  readonly url: string;
}

export interface ProxyDecision {
  readonly kind: 'proxy';
  readonly to: Server;
  readonly via: HopVia;
  /** The URL used, absent for `store` hops. */
  readonly url?: string;
  /** Equivalent servers, in estate-file order; absent when `to` has none (`store` hops never have any). */
  readonly alternatives?: readonly Alternative[];
  /** The user's credentials travel with the request ("request + user credentials", docs/flows.md). */
  readonly credentials: 'passed-on';
  readonly reasons: readonly Reason[];
}

export interface RedirectDecision {
  readonly kind: 'redirect';
  /** 302 (OWA, Autodiscover) or 451 (the legacy ActiveSync redirect with `X-MS-Location`). */
  readonly status: 302 | 451;
  readonly location: string;
  /** For OWA: a plain 302 or the silent FBA replay (docs/protocols.md §2.5). */
  readonly style: 'http-302' | 'silent-fba' | 'x-ms-location';
  readonly reasons: readonly Reason[];
}

export type RespondDecision =
  | { readonly kind: 'respond'; readonly answer: 'mailbox'; readonly reasons: readonly Reason[] }
  | {
      readonly kind: 'respond';
      readonly answer: 'autodiscover';
      readonly autodiscover: AutodiscoverAnswer;
      readonly reasons: readonly Reason[];
    };

/** Refusal codes, each with its HTTP status in `core/errors.ts`. */
export type RefuseCode =
  | 'CX_ROUTE_UNKNOWN_MAILBOX'
  | 'CX_ROUTE_NOT_OFFERED'
  | 'CX_ROUTE_NO_CAS_IN_SITE'
  | 'CX_ROUTE_NO_URL'
  | 'CX_ROUTE_NO_REDIRECT_TARGET'
  | 'CX_ROUTE_VERSION_MISMATCH'
  | 'CX_ROUTE_NOT_HERE';

export interface RefuseDecision {
  readonly kind: 'refuse';
  readonly code: RefuseCode;
  readonly status: number;
  readonly reasons: readonly Reason[];
}

/** The role the next server plays: a back-end or store hop reaches a mailbox server, a URL hop a CAS. */
export const roleAfter = (via: HopVia): 'cas' | 'mailbox' =>
  via === 'backend' || via === 'store' ? 'mailbox' : 'cas';

export type Decision = ProxyDecision | RedirectDecision | RespondDecision | RefuseDecision;

export function assertNever(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
