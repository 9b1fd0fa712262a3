/**
 * A flow: `decide()` unfolded from the server a client connects to until someone answers, then the answer's
 * way back, as numbered steps. This is what `coexist trace` prints, the console draws and the golden tests
 * compare with docs/flows.md. Pure.
 */
import type { AutodiscoverAnswer } from '../autodiscover/answer.ts';
import type { EstateIndex, Mailbox } from '../estate/estate-index.ts';
import type { Policies, Server } from '../estate/estate.ts';
import { familyLabel } from '../estate/estate.ts';
import { CoexistError } from '../errors.ts';
import { hostOfUrl } from '../host.ts';
import type { Protocol } from '../protocols/protocol.ts';
import { alwaysExternal, protocolPath, protocolTitle } from '../protocols/protocol.ts';
import type { Role, ServerRef } from './decide.ts';
import { decide } from './decide.ts';
import type { Decision, HopVia, Reason, RefuseCode } from './decision.ts';
import { assertNever, roleAfter } from './decision.ts';

export interface TraceRequest {
  /** Address, alias, UPN or login of the user. */
  readonly user: string;
  readonly protocol: Protocol;
  readonly client: 'internal' | 'external';
  /** The host the client sends the request to; default: the autodiscover namespace for Autodiscover, else the primary one. */
  readonly host?: string;
}

export type StepKind = 'connect' | 'lookup' | 'proxy' | 'answer' | 'redirect' | 'refuse' | 'return' | 'keep';

export interface FlowStep {
  readonly n: number;
  readonly kind: StepKind;
  /** Who acts: a server name, or the client (`Device`, `Browser`, `Client`). */
  readonly from: string;
  /** Who receives, when someone does. */
  readonly to?: string;
  readonly text: string;
  readonly url?: string;
  /** Extra lines (the URLs of an Autodiscover answer). */
  readonly details?: readonly string[];
  /**
   * A proxy step's equivalent servers (docs/config.md "Equivalent servers"): each could take the hop at its own
   * URL under the same rule; the data plane picks among the healthy ones. Absent when there are none.
   */
  readonly alternatives?: readonly { readonly server: string; readonly url: string }[];
  readonly reasons: readonly Reason[];
}

export type FlowOutcome =
  | { readonly kind: 'answered'; readonly by: string }
  | { readonly kind: 'redirected'; readonly status: 302 | 451; readonly location: string }
  | { readonly kind: 'refused'; readonly by: string; readonly status: number; readonly code: RefuseCode };

export interface Flow {
  readonly user: string;
  readonly protocol: Protocol;
  readonly client: 'internal' | 'external';
  readonly host: string;
  readonly steps: readonly FlowStep[];
  readonly outcome: FlowOutcome;
  /** Every server the request (and any followed redirect) passed through, in order. */
  readonly path: readonly string[];
  /** The same servers, one list per client request (a followed redirect or an Autodiscover-first leg starts a new one). */
  readonly legs: readonly (readonly string[])[];
  /** Whether the client first ran Autodiscover to find the URL (docs/flows.md EWS-1). */
  readonly discovered: boolean;
  /** Whether a 2013+ front end was on the path (docs/flows.md EAS-3B, EWS-1: "the front end is not involved"). */
  readonly frontEndInvolved: boolean;
}

const MAX_HOPS = 16;
/** Clients stop after 10 redirects (docs/protocols.md §7, Autodiscover; used for every protocol). */
const MAX_REDIRECTS = 10;

/** The client as the article names it. */
export function clientName(p: Protocol): string {
  if (p === 'activesync') return 'Device';
  if (p === 'owa' || p === 'ecp') return 'Browser';
  return 'Client';
}

/** The host a client uses by default for a protocol. */
export function defaultHost(index: EstateIndex, p: Protocol): string | undefined {
  const ns =
    (p === 'autodiscover' && index.namespaceOfKind('autodiscover')) || index.namespaceOfKind('primary');
  return ns?.host;
}

/** Unfold the flow of one request. Throws CX_CLI_UNKNOWN_NAMESPACE when the host is not in the estate. */
export function traceFlow(
  index: EstateIndex,
  req: TraceRequest,
  policies: Policies = index.estate.policies,
): Flow {
  const client = alwaysExternal(req.protocol) ? 'external' : req.client;
  const host = (req.host ?? defaultHost(index, req.protocol) ?? '').toLowerCase();
  if (!index.serverForHost(host)) {
    throw new CoexistError(
      'CX_CLI_UNKNOWN_NAMESPACE',
      `${host || '(none)'} is neither a namespace nor a server of the estate`,
      { host },
    );
  }
  const mailbox = index.mailbox(req.user);
  const steps: FlowStep[] = [];
  const legs: string[][] = [];
  const who = clientName(req.protocol);
  const add = (s: Omit<FlowStep, 'n' | 'reasons'> & { reasons?: readonly Reason[] }): void => {
    steps.push({ ...s, n: steps.length + 1, reasons: s.reasons ?? [] });
  };

  // docs/flows.md EWS-1: an internal client finds EWS through Autodiscover, then talks to the URL it was given.
  let legHost = host;
  let leg: 'first' | 'discovered' | 'followed' = 'first';
  const discovered =
    req.protocol === 'ews' && client === 'internal' && req.host === undefined && mailbox !== undefined;
  if (discovered) {
    const adHost = defaultHost(index, 'autodiscover') ?? host;
    const first = runLeg(index, adHost, 'autodiscover', mailbox, client, policies, add, legs, who, 'first');
    if (!first.answer) return finish(first.outcome);
    const ewsUrl = first.answer.internal.ews;
    if (!ewsUrl || !index.serverForHost(hostOfUrl(ewsUrl))) return finish(first.outcome);
    add({
      kind: 'keep',
      from: who,
      text: `The ${who.toLowerCase()} keeps that answer and uses ${ewsUrl} for EWS from now on.`,
    });
    legHost = hostOfUrl(ewsUrl);
    leg = 'discovered';
  }

  let outcome: FlowOutcome | undefined;
  for (let redirects = 0; ; redirects++) {
    outcome = runLeg(
      index,
      legHost,
      req.protocol,
      mailbox,
      client,
      policies,
      add,
      legs,
      who,
      leg,
      req.user,
    ).outcome;
    if (outcome.kind !== 'redirected' || redirects >= MAX_REDIRECTS) break;
    const next = hostOfUrl(outcome.location);
    if (!index.serverForHost(next)) break;
    legHost = next;
    leg = 'followed';
  }
  return finish(outcome);

  function finish(o: FlowOutcome): Flow {
    return {
      user: mailbox?.address ?? req.user,
      protocol: req.protocol,
      client,
      host: discovered ? (defaultHost(index, 'autodiscover') ?? host) : host,
      discovered,
      steps,
      outcome: o,
      path: legs.flat(),
      legs,
      frontEndInvolved: legs.flat().some((name) => {
        const s = index.server(name);
        return s !== undefined && s.version >= 2013 && s.roles.includes('cas');
      }),
    };
  }
}

interface LegResult {
  readonly outcome: FlowOutcome;
  readonly answer?: AutodiscoverAnswer;
}

type Add = (s: Omit<FlowStep, 'n' | 'reasons'> & { reasons?: readonly Reason[] }) => void;

/** One client request: connect, authenticate and look up, then the hops until an answer, and the way back. */
function runLeg(
  index: EstateIndex,
  host: string,
  protocol: Protocol,
  mailbox: Mailbox | undefined,
  client: 'internal' | 'external',
  policies: Policies,
  add: Add,
  legs: string[][],
  who: string,
  leg: 'first' | 'discovered' | 'followed',
  user = mailbox?.address ?? '',
): LegResult {
  const entry = index.serverForHost(host) as Server;
  const url = `https://${host}${protocolPath[protocol]}`;
  const title = protocolTitle[protocol];
  const subject = who === 'Client' ? 'the client' : `the ${who.toLowerCase()}`;
  const Subject = who === 'Client' ? 'The client' : `The ${who.toLowerCase()}`;
  const connectText =
    leg === 'followed'
      ? `${Subject} follows the redirect and connects to ${host} (${entry.name}) with the user's credentials.`
      : leg === 'discovered'
        ? `When it needs ${title}, ${subject} connects to ${host} (${entry.name}) directly, with the user's credentials.`
        : `${Subject} sends ${article(title)} ${title} request to ${host} (${entry.name}) with the user's credentials.`;
  add({ kind: 'connect', from: who, to: entry.name, text: connectText, url });
  const path = [entry.name];
  legs.push(path);
  add({ kind: 'lookup', from: entry.name, text: lookupText(entry, mailbox, user, index) });

  const chain: string[] = [entry.name];
  const seen = new Set<string>([`${entry.name}|cas`]);
  let at: ServerRef = { server: entry, role: 'cas' };
  let reqHost = host;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const d: Decision = decide(at, { protocol, mailbox, client, host: reqHost }, index, policies);
    const prev = chain.length > 1 ? (chain[chain.length - 2] as string) : who;
    switch (d.kind) {
      case 'proxy': {
        const role: Role = roleAfter(d.via);
        const key = `${d.to.name}|${role}`;
        if (seen.has(key)) {
          throw new CoexistError(
            'CX_ROUTE_LOOP',
            `${at.server.name} sends the request back to ${d.to.name}: the estate routes in a circle`,
            {
              path: [...chain, d.to.name],
            },
          );
        }
        seen.add(key);
        add({
          kind: 'proxy',
          from: at.server.name,
          to: d.to.name,
          text: proxyText(at.server, d.to, d.via, title),
          url: d.url,
          ...(d.alternatives
            ? { alternatives: d.alternatives.map((a) => ({ server: a.to.name, url: a.url })) }
            : {}),
          reasons: d.reasons,
        });
        chain.push(d.to.name);
        path.push(d.to.name);
        at = { server: d.to, role };
        reqHost = d.url ? hostOfUrl(d.url) : d.to.fqdn;
        continue;
      }
      case 'respond': {
        if (d.answer === 'autodiscover') {
          const urls = client === 'internal' ? d.autodiscover.internal : d.autodiscover.external;
          add({
            kind: 'answer',
            from: at.server.name,
            to: prev,
            text: `${at.server.name} answers the Autodiscover request with the ${client} URLs of ${d.autodiscover.describes} for the Exchange ${d.autodiscover.mailboxVersion} mailbox on ${d.autodiscover.mailboxServer}.`,
            details: Object.entries(urls).map(([p, u]) => `${protocolTitle[p as Protocol]}: ${u}`),
            reasons: d.reasons,
          });
          returnSteps(chain, who, add);
          return {
            outcome: { kind: 'answered', by: at.server.name },
            answer: d.autodiscover,
          };
        }
        add({
          kind: 'answer',
          from: at.server.name,
          to: prev,
          text: `${at.server.name} fetches the mailbox content and answers ${prev === who ? subject : prev}.`,
          reasons: d.reasons,
        });
        returnSteps(chain, who, add);
        return { outcome: { kind: 'answered', by: at.server.name } };
      }
      case 'redirect': {
        const how =
          d.status === 451
            ? `HTTP 451 and X-MS-Location: ${d.location}`
            : d.style === 'silent-fba'
              ? `a page that silently re-posts the logon form to ${d.location} (single sign-on)`
              : `HTTP 302, Location: ${d.location}`;
        add({
          kind: 'redirect',
          from: at.server.name,
          to: prev,
          text: `${at.server.name} does not proxy: it answers with ${how}.`,
          url: d.location,
          reasons: d.reasons,
        });
        returnSteps(chain, who, add);
        return {
          outcome: { kind: 'redirected', status: d.status, location: d.location },
        };
      }
      case 'refuse': {
        add({
          kind: 'refuse',
          from: at.server.name,
          to: prev,
          text: `${at.server.name} refuses the request: HTTP ${d.status} (${d.code}).`,
          reasons: d.reasons,
        });
        returnSteps(chain, who, add);
        return { outcome: { kind: 'refused', by: at.server.name, status: d.status, code: d.code } };
      }
      default:
        return assertNever(d);
    }
  }
  throw new CoexistError('CX_ROUTE_LOOP', `more than ${MAX_HOPS} hops`, { path: chain });
}

/**
 * The answer's way back. The deciding server's own step already reached the server before it; from there
 * each server hands the answer to the one that called it, and the first one to the client.
 */
function returnSteps(chain: readonly string[], who: string, add: Add): void {
  if (chain.length < 2) return;
  for (let i = chain.length - 2; i >= 1; i--) {
    add({
      kind: 'return',
      from: chain[i] as string,
      to: chain[i - 1] as string,
      text: `${chain[i]} answers ${chain[i - 1]}.`,
    });
  }
  const first = chain[0] as string;
  add({ kind: 'return', from: first, to: who, text: `${first} answers the ${who.toLowerCase()}.` });
}

function lookupText(entry: Server, m: Mailbox | undefined, user: string, index: EstateIndex): string {
  if (!m)
    return `${entry.name} authenticates the user and looks ${user} up in the directory: no such mailbox.`;
  let where = `site ${m.site.name}`;
  if (m.site.name !== entry.site) {
    where += m.site.internetFacing ? ' (internet-facing)' : ' (intranet only)';
  }
  const cas = entry.version >= 2013 && m.family !== 'modern' && index.casIn(m.site.name, m.family)[0];
  const casNote = cas ? `; ${m.site.name} has a ${familyLabel(m.family)} CAS (${cas.name})` : '';
  return `${entry.name} authenticates ${m.address} and looks the mailbox up in the directory: version ${m.server.version}, on ${m.server.name}, ${where}${casNote}.`;
}

function proxyText(from: Server, to: Server, via: HopVia, title: string): string {
  switch (via) {
    case 'backend':
      return `${from.name} proxies the request and the user's credentials to the mailbox server ${to.name} (back-end site).`;
    case 'internal-url':
      return `${from.name} proxies the request and the user's credentials to the internal ${title} URL of ${to.name}.`;
    case 'external-url':
      return `${from.name} proxies the request and the user's credentials to the external ${title} URL of ${to.name}.`;
    case 'store':
      return `${from.name} passes the request to the mailbox server ${to.name}.`;
  }
}

const article = (word: string): string => (/^[AEIOU]/i.test(word) ? 'an' : 'a');
