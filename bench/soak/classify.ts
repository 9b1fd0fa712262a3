/**
 * Every answer the soak's clients saw, judged: the right mailbox by the right path (`X-Coexist-Path`,
 * `X-BEServer`, as the engine says), misrouted (an answer by the wrong way or from the wrong mailbox), the
 * protocol's correct temporary error while a fault touched the request, or lost (anything else: a reset, a
 * wrong status, a timeout, an error with no fault to explain it). Pure.
 *
 * The temporary errors accepted (docs/protocols.md §4.1, src/dataplane/upstream-errors.ts, the pipeline's
 * directoryDown): 503 with `Retry-After` (next hop unreachable for ActiveSync; directory down), 502 and 504
 * (next hop refused, reset or timed out), Autodiscover's own "server busy" (`ErrorCode` 603, HTTP 200), and
 * a refused or cut connection when the server the client connects to is itself the one stopped.
 */
import type { Expected } from './requests.ts';

/** What a client saw of one request. */
export interface Observation {
  /** `activesync`, `ews`, ... or `ping` (a held ActiveSync Ping). */
  readonly kind: string;
  readonly user: string;
  readonly host: string;
  /** Wall clock, ms since the epoch, when the request was started and when it settled. */
  readonly startMs: number;
  readonly endMs: number;
  /** Absent when no answer came (reset, refused, timeout): then `error` says what happened. */
  readonly status?: number;
  readonly error?: string;
  /** `X-Coexist-Path`. */
  readonly path: readonly string[];
  readonly beServer?: string;
  readonly location?: string;
  readonly retryAfter?: string;
  /** Autodiscover: the `ErrorCode` of an error answer. */
  readonly autodiscoverError?: string;
  /** ActiveSync Ping: the `Status` of the answer. */
  readonly pingStatus?: string;
}

/** A fault, as it really happened (wall clock). */
export interface FaultWindow {
  readonly name: string;
  readonly fromMs: number;
  readonly toMs: number;
  /** The server stopped; absent for the directory. */
  readonly server?: string;
  /**
   * A restarted server: from when a new connection to it completes its TLS handshake within the data plane's
   * connect deadline again (run.ts `recoveryOf`). Between `toMs` and here it is still working through the
   * connections of the clients the stop cut off, which all come back at once (in the lab, on the one thread
   * every server shares): a hop that connects to it meanwhile may give up at its connect deadline and answer
   * the protocol's temporary error (CX_UPSTREAM_CONNECT_TIMEOUT, docs/protocols.md §4.1). Only such answers,
   * from the hop in front of it, are the fault's in that time.
   */
  readonly recoveredMs?: number;
}

export type Verdict = 'right' | 'temporary' | 'misrouted' | 'lost';

export interface Judged {
  readonly verdict: Verdict;
  /** Why, for anything but `right`. */
  readonly why?: string;
}

const samePath = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((s, i) => s === b[i]);
const isPrefix = (a: readonly string[], of: readonly string[]): boolean =>
  a.length > 0 && a.length <= of.length && a.every((s, i) => s === of[i]);

/** A redirect's target without its query: the engine decides where, the page adds hints (`?reason=`). */
const withoutQuery = (url: string | undefined): string | undefined => url?.replace(/[?#].*$/, '');

/**
 * Whether the answer came from the hop that connects to `server` on the expected path (the servers before it,
 * or none when it is the entry server): an answer about a connection to it.
 */
const answeredInFrontOf = (o: Observation, expected: Expected, server: string): boolean => {
  const at = expected.path.indexOf(server);
  return at >= 0 && samePath(o.path, expected.path.slice(0, at));
};

/**
 * The faults that touched a request: active while it was in flight, and on its way; a restarted server's
 * recovery (`recoveredMs`) too, for an answer from the hop in front of it.
 */
export function faultsOn(o: Observation, expected: Expected, faults: readonly FaultWindow[]): FaultWindow[] {
  return faults.filter((f) => {
    if (f.server !== undefined && !expected.path.includes(f.server)) return false;
    if (o.endMs < f.fromMs) return false;
    if (o.startMs <= f.toMs) return true;
    return (
      f.server !== undefined &&
      f.recoveredMs !== undefined &&
      o.startMs <= f.recoveredMs &&
      answeredInFrontOf(o, expected, f.server)
    );
  });
}

/** Judge one observation against the engine's answer and the faults of the run. */
export function judge(o: Observation, expected: Expected, faults: readonly FaultWindow[]): Judged {
  const touched = faultsOn(o, expected, faults);
  const temporary = (why: string): Judged =>
    touched.length > 0
      ? { verdict: 'temporary', why: `${why} during ${touched.map((f) => f.name).join(', ')}` }
      : { verdict: 'lost', why: `${why} with no fault on its path` };

  if (o.status === undefined) {
    const entry = expected.path[0];
    const entryDown = touched.some((f) => f.server !== undefined && f.server === entry);
    return entryDown
      ? { verdict: 'temporary', why: `${o.error ?? 'no answer'}: ${entry} was stopped` }
      : { verdict: 'lost', why: o.error ?? 'no answer' };
  }
  if (o.status === expected.status) {
    if (o.autodiscoverError !== undefined) {
      return o.autodiscoverError === '603'
        ? temporary('Autodiscover ErrorCode 603 (server busy)')
        : { verdict: 'lost', why: `Autodiscover ErrorCode ${o.autodiscoverError}` };
    }
    if (!samePath(o.path, expected.path))
      return { verdict: 'misrouted', why: `path ${o.path.join('>')}, expected ${expected.path.join('>')}` };
    if (expected.beServer !== undefined && o.beServer !== expected.beServer)
      return { verdict: 'misrouted', why: `answered by ${o.beServer ?? '?'}, expected ${expected.beServer}` };
    if (expected.location !== undefined && withoutQuery(o.location) !== expected.location)
      return {
        verdict: 'misrouted',
        why: `redirected to ${o.location ?? '?'}, expected ${expected.location}`,
      };
    if (o.kind === 'ping' && o.pingStatus !== '1')
      return { verdict: 'lost', why: `Ping Status ${o.pingStatus ?? '?'}` };
    return { verdict: 'right' };
  }
  // An answer that is not the right one must come back by (a start of) the right way.
  if (o.path.length > 0 && !isPrefix(o.path, expected.path))
    return { verdict: 'misrouted', why: `${o.status} by ${o.path.join('>')}` };
  if (o.status === 503 && o.retryAfter !== undefined) return temporary('503 Retry-After');
  if (o.status === 502 || o.status === 504) return temporary(String(o.status));
  return { verdict: 'lost', why: `status ${o.status}` };
}
