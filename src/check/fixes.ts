/**
 * Verdicts and what to fix: from the facts of a DNS lookup, a TLS handshake or an HTTP answer (status,
 * X-Coexist-Path, the catalogue code in a coexist error body) and what the estate expected, the verdict of
 * the step and one or two sentences an administrator can act on. Pure; never sees a credential.
 */
import type { ErrorCode } from '../core/errors.ts';
import { catalogue } from '../core/errors.ts';
import type { Expectation } from './expect.ts';
import { hopUrl } from './expect.ts';
import type { Hops, Verdict } from './model.ts';
import { compareHops } from './model.ts';

export interface Judgement {
  readonly verdict: Verdict;
  readonly fix?: string;
  readonly code?: ErrorCode;
}

const isCode = (c: string | undefined): c is ErrorCode => c !== undefined && c in catalogue;

/** The catalogue code a coexist error body ends with (`... (CX_UPSTREAM_CONNECT_REFUSED)`). */
export function bodyCode(body: string | undefined): ErrorCode | undefined {
  const m = /\((CX_[A-Z_]+)\)\s*$/.exec(body ?? '');
  return isCode(m?.[1]) ? m[1] : undefined;
}

/** Why a server could not reach the next one, in a few words, from the code of its error answer. */
export function upstreamReason(code: ErrorCode | undefined, retryAfter?: string): string {
  switch (code) {
    case 'CX_UPSTREAM_CONNECT_REFUSED':
      return 'connection refused';
    case 'CX_UPSTREAM_CONNECT_TIMEOUT':
      return 'the connection timed out';
    case 'CX_UPSTREAM_HOST_UNREACHABLE':
      return 'no network route to it';
    case 'CX_UPSTREAM_DNS':
      return 'its host name does not resolve';
    case 'CX_UPSTREAM_TLS':
      return 'the TLS handshake failed: certificate not trusted, wrong name or expired';
    case 'CX_UPSTREAM_HEADERS_TIMEOUT':
      return 'it took the request but did not answer in time';
    case 'CX_UPSTREAM_BODY_TIMEOUT':
    case 'CX_UPSTREAM_TIMEOUT':
      return 'it timed out';
    case 'CX_UPSTREAM_CONNECTION_RESET':
      return 'it closed the connection before answering';
    case 'CX_UPSTREAM_PROTOCOL':
      return 'its answer was not valid HTTP';
    case undefined:
      return retryAfter !== undefined
        ? 'it could not be reached: HTTP 503 with Retry-After'
        : 'no reason given';
    default:
      return catalogue[code].summary.replace(/\.$/, '').replace(/^The /, 'the ');
  }
}

/** The facts of an HTTP answer the probe did not accept as success. */
export interface AnswerFacts {
  readonly user: string;
  /** The host the request went to. */
  readonly host: string;
  readonly status: number;
  /** `X-Coexist-Path` of the answer. */
  readonly path: readonly string[];
  readonly expectation: Expectation;
  /** The body of the answer, when it is short text (coexist's error answers). */
  readonly body?: string;
  readonly retryAfter?: string;
  /** `Location` or `X-MS-Location`. */
  readonly location?: string;
}

export const credentialsFix = (user: string, who: string): string =>
  `${who} refused the credentials of ${user} (HTTP 401): check the user name and password ` +
  `(--password or COEXIST_PASSWORD), and that the account is enabled and not locked out.`;

/** HTTP 451 (ActiveSync's legacy redirect): what a device must do. */
export const redirect451Fix = (location: string | undefined): string =>
  location
    ? `The server answered HTTP 451: the device must follow X-MS-Location to ${location} and use that URL from now on; devices that cannot follow it fail here.`
    : 'The server answered HTTP 451 without X-MS-Location: the device has to run Autodiscover again to find its server.';

const arrow = (hops: readonly string[]): string => hops.join(' -> ');

/** Hops that differ from the estate's: the network does not route as the estate file describes. */
export function hopsFix(hops: Hops): string | undefined {
  const c = hops.comparison;
  if (c.kind !== 'different' || !hops.expected) return undefined;
  return (
    `The answer came back through ${arrow(hops.actual)}, but the estate says ${arrow(hops.expected)}: ` +
    `a host name or URL points at another server than the estate file says (check DNS and the servers' URLs), or --estate is not this estate's file.`
  );
}

/** Judge an HTTP answer that is not the success the probe wanted. */
export function judgeAnswer(f: AnswerFacts): Judgement & { hops: Hops } {
  const hops = compareHops(f.path, f.expectation.hops);
  const c = hops.comparison;
  const code = bodyCode(f.body);
  const last = f.path.at(-1);
  const who = last ?? f.host;
  if (f.status === 401)
    return { hops, verdict: 'fail', code: 'CX_AUTH_FAILED', fix: credentialsFix(f.user, who) };
  if (f.status === 403)
    return {
      hops,
      verdict: 'fail',
      fix: `${who} answered HTTP 403: ${f.user} is not allowed to use this protocol (check that it is enabled for the mailbox).`,
    };
  if (f.status === 451) return { hops, verdict: 'fail', fix: redirect451Fix(f.location) };
  if (code === 'CX_DIRECTORY_UNAVAILABLE')
    return {
      hops,
      verdict: 'fail',
      code,
      fix: `${who} could not ask the directory (HTTP ${f.status}, ${code}): check the directory servers and ${who}'s connection to them.`,
    };
  if (f.status >= 500) {
    if (c.kind === 'stopped') {
      const url = hopUrl(f.expectation.flow, c.at, c.next);
      return {
        hops,
        verdict: 'fail',
        code: code ?? 'CX_UPSTREAM_ERROR',
        fix:
          `${c.next} did not answer ${c.at} (${upstreamReason(code, f.retryAfter)}). ` +
          `Check that ${c.next} is running and reachable from ${c.at}${url ? ` at ${url}` : ''}.`,
      };
    }
    if (c.kind === 'different')
      return { hops, verdict: 'fail', code: code ?? 'CX_UPSTREAM_ERROR', fix: hopsFix(hops) as string };
    const where =
      c.kind === 'same'
        ? `the request reached every server the estate names, so look at ${who} itself (its log, with the request-id)`
        : `look at ${who}'s log (with the request-id)`;
    return {
      hops,
      verdict: 'fail',
      code: code ?? 'CX_HTTP_INTERNAL',
      fix: `${who} answered HTTP ${f.status}${code ? ` (${code}: ${catalogue[code].summary})` : ''}; ${where}.`,
    };
  }
  if (code !== undefined)
    return {
      hops,
      verdict: 'fail',
      code,
      fix: `${who} refused the request with HTTP ${f.status} (${code}): ${catalogue[code].summary}`,
    };
  if (f.status >= 300 && f.status < 400)
    return {
      hops,
      verdict: 'fail',
      fix: `${who} redirected the request (HTTP ${f.status}) to ${f.location ?? 'nowhere'}, which the estate does not expect${
        f.expectation.outcome?.kind === 'answered' ? ` (it says ${f.expectation.outcome.by} answers)` : ''
      }.`,
    };
  return {
    hops,
    verdict: 'fail',
    fix: `${who} answered HTTP ${f.status}, which this check does not expect.`,
  };
}

/** The verdict of a successful answer: a pass, or a warning when it came through other servers. */
export function judgeSuccess(path: readonly string[], expectation: Expectation): Judgement & { hops: Hops } {
  const hops = compareHops(path, expectation.hops);
  const fix = hopsFix(hops);
  return fix === undefined ? { hops, verdict: 'pass' } : { hops, verdict: 'warn', fix };
}

// ---- DNS, connecting, TLS -------------------------------------------------------------------------

/** A DNS lookup that failed. */
export function dnsFix(host: string, errorCode: string | undefined): string {
  const why = errorCode === 'EAI_AGAIN' ? 'the DNS server did not answer' : 'no such name';
  return (
    `${host} does not resolve (${errorCode ?? 'error'}: ${why}): add it to DNS (for an internal client, check the split-DNS zone), ` +
    `or point the check at the server with --connect-to ${host}:443:ADDRESS:PORT.`
  );
}

/** Connecting (TCP, TLS or the HTTP exchange) failed before any answer. */
export function connectFix(
  host: string,
  target: { readonly host: string; readonly port: number },
  server: string | undefined,
  errorCode: string | undefined,
  timeoutMs: number,
): { fix: string; code: ErrorCode } {
  const at = `${target.host}:${target.port}`;
  const it = server ?? 'the server';
  const named = server ? ` (${server} in the estate)` : '';
  switch (errorCode) {
    case 'ECONNREFUSED':
      return {
        code: 'CX_UPSTREAM_CONNECT_REFUSED',
        fix: `Nothing accepts connections for ${host}${named} at ${at}: check that ${it} is running, and that ${host} points at it.`,
      };
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return {
        code: 'CX_UPSTREAM_CONNECT_TIMEOUT',
        fix: `${host}${named} at ${at} did not accept the connection within ${timeoutMs} ms: a firewall drops the traffic, or ${it} is down.`,
      };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return {
        code: 'CX_UPSTREAM_HOST_UNREACHABLE',
        fix: `There is no network route from this client to ${at} (${host}): check routing and firewalls.`,
      };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { code: 'CX_UPSTREAM_DNS', fix: dnsFix(host, errorCode) };
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return {
        code: 'CX_UPSTREAM_HEADERS_TIMEOUT',
        fix: `${host}${named} took the request but did not answer within ${timeoutMs} ms: look at ${it}'s log and at the servers after it.`,
      };
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return {
        code: 'CX_UPSTREAM_CONNECTION_RESET',
        fix: `${host}${named} at ${at} closed the connection before answering (often: no certificate for ${host} on that listener).`,
      };
    default:
      if (errorCode !== undefined && /CERT|SELF_SIGNED|SIGNATURE|ISSUER|ERR_TLS|ALTNAME/.test(errorCode))
        return {
          code: 'CX_UPSTREAM_TLS',
          fix: `The TLS handshake with ${host} failed (${errorCode}): see the TLS certificate step.`,
        };
      return {
        code: 'CX_UPSTREAM_ERROR',
        fix: `The request to ${host}${named} at ${at} failed (${errorCode ?? 'unknown error'}).`,
      };
  }
}

/** What the peer certificate of a TLS handshake says. */
export interface PeerCertificateFacts {
  readonly subjectCn?: string;
  /** DNS names (and IP addresses) of the Subject Alternative Name. */
  readonly altNames: readonly string[];
  readonly issuer?: string;
  readonly validFrom: Date;
  readonly validTo: Date;
  /** The chain verified against the trusted CAs. */
  readonly authorized: boolean;
  /** OpenSSL's reason when not (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `CERT_HAS_EXPIRED`...). */
  readonly authorizationError?: string;
  /** The certificate names the host (RFC 6125, as `tls.checkServerIdentity` checks it). */
  readonly nameMatches: boolean;
}

const dayMs = 86_400_000;
const day = (d: Date): string => d.toISOString().slice(0, 10);

/** Days left before `validTo`, counting the day in progress (a 30-day certificate issued now has 30). */
export const daysLeft = (validTo: Date, now: Date): number =>
  Math.ceil((validTo.getTime() - now.getTime()) / dayMs);

/** The title and verdict of a TLS step. A warning when fewer than `warnDays` days are left. */
export function judgeCertificate(
  host: string,
  cert: PeerCertificateFacts,
  now: Date,
  warnDays: number,
): Judgement & { title: string } {
  const left = daysLeft(cert.validTo, now);
  const names = [
    ...(cert.subjectCn ? [`CN=${cert.subjectCn}`] : []),
    ...cert.altNames.filter((n) => n !== cert.subjectCn),
  ].join(', ');
  const title =
    `TLS certificate ${host} (${cert.nameMatches ? 'CN/SAN match' : 'name mismatch'}` +
    `${cert.issuer ? `, issuer ${cert.issuer}` : ''}, expires ${day(cert.validTo)}, ${left} day${left === 1 ? '' : 's'})`;
  const fail = (fix: string): Judgement & { title: string } => ({
    title,
    verdict: 'fail',
    code: 'CX_UPSTREAM_TLS',
    fix,
  });
  if (now.getTime() > cert.validTo.getTime())
    return fail(
      `The certificate for ${host} expired on ${day(cert.validTo)}: renew it and bind the new one on the server.`,
    );
  if (now.getTime() < cert.validFrom.getTime())
    return fail(
      `The certificate for ${host} is not valid before ${day(cert.validFrom)}: check the server's clock, or bind a certificate valid now.`,
    );
  if (!cert.nameMatches)
    return fail(
      `The certificate served for ${host} names ${names || 'nothing'}, not ${host}: ` +
        `add ${host} to the certificate's Subject Alternative Names, or point ${host} at a server whose certificate has it.`,
    );
  if (!cert.authorized)
    return fail(
      `The certificate for ${host} (issuer ${cert.issuer ?? 'unknown'}) is not trusted by this client (${cert.authorizationError ?? 'not verified'}): ` +
        `give its CA with --ca, or use a certificate from a CA the clients trust.`,
    );
  if (left < warnDays)
    return {
      title,
      verdict: 'warn',
      fix: `The certificate for ${host} expires on ${day(cert.validTo)}, in ${left} day${left === 1 ? '' : 's'}: renew it before then.`,
    };
  return { title, verdict: 'pass' };
}
