/**
 * The pino root logger with the redaction every coexist log line goes through, and the access-log line:
 * one JSON line per request at `info` with `msg: 'access'` (architecture.md "Habits" 7).
 */
import type { DestinationStream, Logger, LoggerOptions } from 'pino';
import { pino } from 'pino';
import type { ErrorCode } from '../core/errors.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { Decision } from '../core/routing/decision.ts';

/** pino's logger, as coexist passes it around. */
export type { Logger };

/** The censor written in place of a redacted value. */
export const redactedText = '[redacted]';

/**
 * Keys whose whole value is a secret (or a body, which is never logged), matched case-insensitively at any
 * depth of a logged object.
 */
const secretKeys = [
  'password',
  'passwordHash',
  'bindPassword',
  'passphrase',
  'credential',
  'credentials',
  'secret',
  'token',
  'privateKey',
  'keyPem',
  'authorization',
  'cookie',
  // RequestHead.query: ActiveSync base64 queries carry the policy key (docs/protocols.md §3).
  'query',
  'body',
  // [name, value, ...] pairs: no per-name rule can reach into them.
  'rawHeaders',
] as const;

/** Header names whose values authenticate someone or carry a session. */
const secretHeaders = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-coexist-identity',
  // Exchange 2013's serialized user token between CAS and mailbox server.
  'x-commonaccesstoken',
  'x-ms-policykey',
  'x-owa-canary',
] as const;

const secretNames: ReadonlySet<string> = new Set(
  [...secretKeys, ...secretHeaders].map((k) => k.toLowerCase()),
);

/**
 * pino `redact` paths: the top-level secrets, literal only. pino applies them to the merging object, to
 * child bindings and to objects interpolated into the message (`%j`). Nested secrets are left to `scrub`:
 * @pinojs/redact 0.4 costs about 2.5 µs per line for each leading-wildcard path (`*.password`; 45 µs for
 * 18, against 2 µs for a whole access line) and about 0.25 µs per literal path whenever its first key is
 * present, so "every place a secret could land" cannot be a path list on the hot path.
 */
export const redactPaths: readonly string[] = Object.freeze([
  ...secretKeys,
  ...secretHeaders.map((h) => `headers["${h}"]`),
]);

/** Walking limits: deeper or bigger than this, a logged value is replaced rather than walked (cycles end). */
const maxDepth = 8;
const maxNodes = 2_000;
let budget = 0;

/**
 * A copy of `value` with every secret key's value censored, at any depth; `value` itself when nothing
 * changed, so a clean access record is not copied. Walks plain objects and arrays; an Error becomes a
 * plain object first (type, message, stack, own fields, cause), since undici's errors carry headers. Other
 * class instances (IncomingMessage, Buffer, URL) are left to the serializers, and strings are not read.
 */
function scrub(value: unknown): unknown {
  budget = maxNodes;
  return walk(value, 0);
}

function walk(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= maxDepth || --budget < 0) return '[truncated]';
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v !== 'object' || v === null) continue;
      const next = walk(v, depth + 1);
      if (next !== v) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }
  if (value instanceof Error) return walkFields(errorFields(value), depth, true);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  return walkFields(value as Record<string, unknown>, depth, false);
}

function walkFields(obj: Record<string, unknown>, depth: number, owned: boolean): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined = owned ? obj : undefined;
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    let next: unknown;
    if (isSecretName(key)) next = redactedText;
    else if (typeof v === 'object' && v !== null) next = walk(v, depth + 1);
    else continue;
    if (next !== v) (copy ??= { ...obj })[key] = next;
  }
  return copy ?? obj;
}

/** An error as logged: type, message, stack, its own fields, and `cause` / `errors` (walked in turn). */
function errorFields(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: e.constructor.name || e.name,
    message: e.message,
    stack: e.stack,
  };
  Object.assign(out, e);
  // Both are own but not enumerable when set by the constructor (`{ cause }`, AggregateError).
  if (e.cause !== undefined) out['cause'] = e.cause;
  if (e instanceof AggregateError) out['errors'] = e.errors;
  return out;
}

const isSecretName = (key: string): boolean => secretNames.has(key) || secretNames.has(key.toLowerCase());

interface RequestLike {
  readonly method?: unknown;
  readonly url?: unknown;
  readonly headers?: unknown;
  readonly socket?: { readonly remoteAddress?: unknown };
}

interface ResponseLike {
  readonly statusCode?: unknown;
  readonly getHeaders?: unknown;
}

const withoutQuery = (url: string): string => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

/** `req` as logged: a Node IncomingMessage becomes method, path (no query), headers and peer. */
function serializeRequest(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const r = value as RequestLike;
  if (typeof r.socket !== 'object' || r.socket === null) return scrub(value);
  return scrub({
    method: r.method,
    path: typeof r.url === 'string' ? withoutQuery(r.url) : undefined,
    headers: r.headers,
    remoteAddress: r.socket.remoteAddress,
  });
}

/** `res` as logged: a Node ServerResponse becomes its status and headers. */
function serializeResponse(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const r = value as ResponseLike;
  if (typeof r.getHeaders !== 'function') return scrub(value);
  return scrub({ statusCode: r.statusCode, headers: (r.getHeaders as () => unknown).call(value) });
}

/** Options of the root logger. */
export interface LoggerSetup {
  /** pino level name; `info` when absent. */
  readonly level?: string;
  /** Where JSON lines go; standard output when absent. */
  readonly destination?: NodeJS.WritableStream | DestinationStream;
  /** Written as `name` on every line. */
  readonly name?: string;
}

/** The one pino root logger of a process: JSON lines, secrets redacted. */
export function createLogger(options: LoggerSetup = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    redact: { paths: [...redactPaths], censor: redactedText },
    // The merging object of every line; child bindings get only the paths and serializers (pino does not
    // run this formatter on them), so bind ids, not objects.
    formatters: { log: (obj) => scrub(obj) as Record<string, unknown> },
    // `err` is already plain when it comes through the merging object; child bindings still need it.
    serializers: { err: scrub, req: serializeRequest, res: serializeResponse },
  };
  if (options.name !== undefined) config.name = options.name;
  // Standard output by default, written asynchronously: lines written while a write is in flight go out
  // together in the next one, instead of one blocking write(2) per request; pino flushes what is left
  // when the process exits.
  return pino(config, options.destination ?? pino.destination({ dest: 1, sync: false }));
}

/** The access line's closed `outcome` set (architecture.md "Error modeling", Envoy's response flags). */
export const accessOutcomes = [
  'proxied',
  'redirected',
  'answered',
  'refused',
  'upstream_timeout',
  'upstream_unreachable',
  // dataplane/upstream-errors.ts: the hop failed on an open connection (reset, invalid response).
  'upstream_error',
  'client_aborted',
  // A load balancer's health page answered here (docs/operations.md "Health pages").
  'health',
] as const;
export type AccessOutcome = (typeof accessOutcomes)[number];

/**
 * How authenticating the caller went (counted by `coexist_auth_total`); `locked`: refused by the extranet
 * smart lockout without asking the directory (docs/security.md "Extranet smart lockout").
 */
export type AuthResult = 'ok' | 'bad_credentials' | 'locked' | 'error';

/**
 * What a mailbox server decided about an EWS `ExchangeImpersonation` header (docs/security.md "Mailbox
 * access"): `allowed`, or why not: the caller holds no ApplicationImpersonation role (`no-role`), the header
 * names no mailbox (`unknown`), one outside the caller's scope (`out-of-scope`), or another mailbox than the
 * one the request was routed to (`not-anchor`); `unavailable`: the directory could not be asked.
 */
export type ImpersonationResult =
  'allowed' | 'no-role' | 'unknown' | 'out-of-scope' | 'not-anchor' | 'unavailable';

/** Milliseconds spent per step; mutable because the pipeline fills them in as each step ends. */
export interface AccessTimings {
  totalMs: number;
  authMs?: number;
  lookupMs?: number;
  upstreamMs?: number;
}

/** One access-log line: what happened to one request. Never a query string, a body or a secret. */
export interface AccessRecord {
  readonly reqId: string;
  /** The listener that accepted the request. */
  readonly listener: string;
  /** This server's estate name. */
  readonly server: string;
  readonly method: string;
  /** The Host header as sent. */
  readonly host: string;
  /** The path only: ActiveSync base64 queries carry policy keys (`accessLine` cuts a query off). */
  readonly path: string;
  readonly protocol?: Protocol;
  /** The caller's address or login name; never a password. */
  readonly user?: string;
  /** The mailbox the request names (EWS X-AnchorMailbox, Autodiscover's address), when it names one. */
  readonly anchor?: string;
  /**
   * EWS impersonation: the mailbox the `ExchangeImpersonation` header named (its primary address once found,
   * else as sent), and what was decided (docs/security.md "Mailbox access"); absent without the header.
   */
  readonly impersonating?: string;
  readonly impersonation?: ImpersonationResult;
  readonly auth?: AuthResult;
  /** How the request authenticated: basic, ntlm, negotiate, session (OWA), none (docs/security.md "Windows authentication"). */
  readonly authMethod?: 'basic' | 'ntlm' | 'negotiate' | 'kerberos' | 'session' | 'none';
  /**
   * Which input of the request chose its route: x-anchormailbox, activesync-user, mapi-mailboxid, rpc-target,
   * autodiscover-body, ntlm-user, basic, session, connection (the connection's earlier route), default.
   */
  readonly routedBy?: string;
  readonly decision?: Decision['kind'];
  /** Servers the request went through, this one first. */
  readonly hops?: readonly string[];
  /** The status sent to the client; absent when none was sent. */
  readonly status?: number;
  readonly outcome: AccessOutcome;
  /** The catalogue code that explains a refusal or a failure (`CX_ROUTE_UNKNOWN_MAILBOX`). */
  readonly code?: ErrorCode;
  readonly upstreamStatus?: number;
  readonly bytesIn?: number;
  readonly bytesOut?: number;
  readonly timings: AccessTimings;
  /** The TCP peer's address. */
  readonly clientAddress?: string;
  /** The estate server the peer proved it is by its client certificate (docs/security.md); absent: not a server. */
  readonly peerServer?: string;
  /** The servers the request came through before this one (`X-Coexist-Hops`, believed from a proven server). */
  readonly via?: readonly string[];
  /** The peer is a load balancer listed by address (`--trusted-proxy`). */
  readonly peerProxy?: boolean;
  /** Behind a trusted peer, the client's address read from `X-Forwarded-For`, when it is not the TCP peer. */
  readonly forwardedClient?: string;
  /** Where the client is, as the engine was told (docs/protocols.md §2.4). */
  readonly location?: 'internal' | 'external';
}

/**
 * The longest a client-supplied value is written in a log line (docs/security.md "Trust per request"): an
 * 8 000-character Basic user name, path or Host must not fill the log or hide the line around it.
 */
export const maxLoggedField = 256;

/** `value` cut to `max` characters, with a marker saying how many were left out. */
export function capField(value: string, max = maxLoggedField): string {
  return value.length <= max ? value : `${value.slice(0, max)}…[+${value.length - max} chars]`;
}

/**
 * The access line's fields as written: the record itself, or a copy with a stray query cut off `path` and
 * every string field capped (`capField`): method, host, path, user name and whatever else the client chose.
 */
export function accessLine(record: AccessRecord): AccessRecord {
  const q = record.path.indexOf('?');
  let line: Record<string, unknown> | undefined =
    q < 0 ? undefined : { ...record, path: record.path.slice(0, q) };
  for (const key in record) {
    const value = (line ?? record)[key as keyof AccessRecord];
    if (typeof value === 'string' && value.length > maxLoggedField)
      (line ??= { ...record })[key] = capField(value);
  }
  return (line as AccessRecord | undefined) ?? record;
}

/**
 * Write the access line of one request (`msg: 'access'`): at `info`, but a health page's (outcome `health`)
 * at `debug`, since load balancers and the next hops' probes ask every few seconds (docs/operations.md).
 */
export function logAccess(logger: Logger, record: AccessRecord): void {
  if (record.outcome === 'health') logger.debug(accessLine(record), 'access');
  else logger.info(accessLine(record), 'access');
}
