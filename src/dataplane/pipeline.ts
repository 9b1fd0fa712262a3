/**
 * The one place that sequences a request's I/O (architecture.md "How a request flows"):
 * classify -> identify (reading a small body when the protocol needs it) -> authenticate -> look up ->
 * `decide()` -> proxy / redirect / respond / refuse, then one access-log line. The engine stays pure:
 * everything it needs is looked up here and handed over as a plain `RoutingInput`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { EstateIndex, Mailbox } from '../core/estate/estate-index.ts';
import type { Policies, Server } from '../core/estate/estate.ts';
import type { ErrorCode } from '../core/errors.ts';
import { catalogue, statusOf } from '../core/errors.ts';
import type { AutodiscoverRequest } from '../core/protocols/autodiscover.ts';
import { basicCredentials } from '../core/protocols/basic-auth.ts';
import { logonPaths } from '../core/protocols/owa.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import { alwaysExternal } from '../core/protocols/protocol.ts';
import type { Identity, RequestHead } from '../core/protocols/request-head.ts';
import { cookieValue, isInvalid } from '../core/protocols/request-head.ts';
import { classify } from '../core/protocols/registry.ts';
import type { Decision } from '../core/routing/decision.ts';
import type { Role } from '../core/routing/decide.ts';
import { decide } from '../core/routing/decide.ts';
import type { Directory } from '../directory/directory.ts';
import type { AccessRecord, Logger } from '../observability/log.ts';
import { logAccess } from '../observability/log.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { AutodiscoverError, AutodiscoverReply } from './autodiscover-response.ts';
import { autodiscoverHeaders } from './autodiscover-response.ts';
import {
  answerAutodiscover,
  autodiscoverError,
  autodiscoverRequest,
  missingMailbox,
  redirectAutodiscover,
  remoteRedirect,
} from './autodiscover-service.ts';
import { forward } from './forward.ts';
import type { OutgoingHeaders, TrustedProxies } from './headers.ts';
import { headerNames } from './headers.ts';
import { restoreMethod } from './listener.ts';
import type { OwaSessions } from './owa-session.ts';
import {
  logonPage,
  logonPageHeaders,
  logonUrl,
  owaLogon as logonWith,
  safeDestination,
} from './owa-session.ts';
import type { Upstreams } from './upstreams.ts';

/** What a server did with a request, as the server itself records it (lab/hop-recorder reads these). */
export interface HopRecord {
  readonly requestId: string;
  /** This server's estate name. */
  readonly server: string;
  /** `coexist`, or the name of the simulator standing in for a product that cannot run here. */
  readonly implementation: string;
  readonly role: Role;
  readonly protocol?: Protocol;
  readonly user?: string;
  readonly decision?: Decision['kind'];
  /** For proxy: the next server, how it was reached and the URL called. */
  readonly to?: string;
  readonly via?: string;
  readonly url?: string;
  readonly status?: number;
  readonly outcome: AccessRecord['outcome'];
}

/** Receives every server's records (declared here, by its consumer; the lab implements it). */
export interface HopObserver {
  record(hop: HopRecord): void;
}

/** What a mailbox server answers with when a request ends at it (the lab's mailbox simulators). */
export interface MailboxResponder {
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    ctx: {
      readonly serverName: string;
      readonly version: Server['version'];
      readonly protocol: Protocol;
      readonly mailbox: { readonly address: string; readonly displayName: string };
    },
  ): Promise<void>;
}

/** Everything one server of the estate needs to handle requests. */
export interface ServerContext {
  readonly index: EstateIndex;
  /** Which server of the estate this process is (`--as`). */
  readonly server: Server;
  readonly policies: Policies;
  readonly directory: Directory;
  readonly upstreams: Upstreams;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly sessions: OwaSessions;
  readonly observer?: HopObserver;
  readonly responder?: MailboxResponder;
  /** Peers whose `X-Forwarded-*`, `X-Coexist-Hops` and request id are believed (other servers of the estate). */
  readonly trustedProxies?: TrustedProxies;
  /** Source networks of internal clients (protocol-facts §2.4); everyone else is external. */
  readonly internalNetworks?: BlockList;
  /** `coexist`, or a simulator's name (`simulator: Exchange 2007 CAS`). */
  readonly implementation: string;
  /** `Retry-After` for 503 answers (seconds). */
  readonly retryAfterSeconds?: number;
  /** Per-protocol idle timeouts (tests). */
  readonly idleTimeoutsMs?: Readonly<Partial<Record<Protocol, number>>>;
  /** Mailbox servers whose protocol endpoint is not where the estate's name and path say (see the type). */
  readonly storeEndpoints?: StoreEndpoints;
}

/**
 * A mailbox server's endpoint for one protocol when it is a server of another kind standing in for it: in
 * the lab, a real ActiveSync server (SOGo) answers for a 2007 mailbox server. Everything the stand-in needs
 * differently is said here, at the hop to it, and nowhere in the engine.
 */
export interface StoreEndpoint {
  /** The endpoint's URL; its path replaces the client's virtual directory (`/Microsoft-Server-ActiveSync`). */
  readonly url: string;
  /** False for a server that closes the connection after every answer without saying so: one per request. */
  readonly keepAlive?: boolean;
}

/** The stand-in endpoint of `server` for `protocol`, if it has one. */
export type StoreEndpoints = (server: string, protocol: Protocol) => StoreEndpoint | undefined;

/** The listener a request came in on. */
export interface ListenerInfo {
  readonly name: string;
  /** The role the server plays for requests on this listener (a 2013 back end listens on 444 as `mailbox`). */
  readonly role: Role;
  readonly scheme: 'http' | 'https';
  readonly port: number;
}

/** Per-request state the steps share (one object, no closures per step). */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly head: RequestHead;
  readonly record: Mutable<AccessRecord>;
  readonly started: number;
  readonly trustedPeer: boolean;
  readonly listener: ListenerInfo;
  body?: Uint8Array;
  protocol?: Protocol;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The request handler of one listener. Never throws; every request ends with one access line. */
export function createRequestHandler(
  ctx: ServerContext,
  listener: ListenerInfo,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void handle(ctx, listener, req, res);
  };
}

async function handle(
  ctx: ServerContext,
  listener: ListenerInfo,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const started = performance.now();
  restoreMethod(req);
  const peer = req.socket.remoteAddress;
  const trustedPeer = peer !== undefined && ctx.trustedProxies?.has(peer) === true;
  const inbound = req.headers[headerNames.forwardRequestId];
  const requestId =
    trustedPeer && typeof inbound === 'string' && /^[A-Za-z0-9-]{1,64}$/.test(inbound)
      ? inbound
      : randomUUID();
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const head: RequestHead = {
    method: req.method ?? 'GET',
    host: req.headers.host ?? '',
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    headers: req.headers as Record<string, string | undefined>,
    listener: listener.name,
  };
  const record: Mutable<AccessRecord> = {
    reqId: requestId,
    listener: listener.name,
    server: ctx.server.name,
    method: head.method,
    host: head.host,
    path: head.path,
    outcome: 'refused',
    timings: { totalMs: 0 },
    ...(peer === undefined ? {} : { clientAddress: peer }),
  };
  const x: Exchange = { req, res, head, record, started, trustedPeer, listener };
  let done: (() => void) | undefined;
  try {
    const module = classify(head);
    if (!module) {
      refuse(x, 'CX_HTTP_NOT_FOUND');
      return;
    }
    x.protocol = module.protocol;
    record.protocol = module.protocol;
    done = ctx.metrics?.inflight(module.protocol);
    let id = module.identify(head);
    if (id.kind === 'needs-body') {
      const body = await readBody(req, id.maxBytes);
      if (body === undefined) {
        refuse(x, 'CX_IDENTITY_BODY_TOO_LARGE', { connection: 'close' });
        return;
      }
      x.body = body;
      id = module.identify(head, body);
    }
    if (isInvalid(id)) {
      // A body Autodiscover cannot read gets the schema's own error answer, not a bare 400 (MS-OXDSCLI 600).
      if (module.protocol === 'autodiscover' && id.code !== 'CX_IDENTITY_BODY_TOO_LARGE') {
        await answerAutodiscoverError(ctx, x, undefined, 'invalid-request', id.code);
        return;
      }
      refuse(x, id.code);
      return;
    }
    await route(ctx, listener, x, id);
  } catch (err) {
    ctx.logger.error({ reqId: requestId, server: ctx.server.name, err: errorSummary(err) }, 'request failed');
    if (!res.headersSent && !res.destroyed) {
      refuse(x, 'CX_HTTP_INTERNAL');
    } else {
      res.destroy();
    }
  } finally {
    done?.();
    record.timings.totalMs = round(performance.now() - started);
    logAccess(ctx.logger, record);
    ctx.metrics?.observeRequest(record);
  }
}

/** Authenticate, look up, decide, execute. */
async function route(ctx: ServerContext, listener: ListenerInfo, x: Exchange, id: Identity): Promise<void> {
  const { head, record } = x;
  const protocol = x.protocol as Protocol;
  const isOwa = protocol === 'owa' || protocol === 'ecp';

  // OWA's own forms logon (protocol-facts §4.9): the logon page, and the POST that starts a session.
  if (isOwa && head.method === 'GET' && head.path.toLowerCase() === '/owa/auth/logon.aspx') {
    answerOwaLogonPage(ctx, x);
    return;
  }
  if (isOwa && head.method === 'POST' && logonPaths.includes(head.path.toLowerCase())) {
    await owaLogon(ctx, x);
    return;
  }
  // Logoff ends the session here (the credential it held is dropped) and clears the cookie.
  if (isOwa && head.method === 'GET' && head.path.toLowerCase() === '/owa/auth/logoff.aspx') {
    ctx.sessions.destroy(cookieValue(head, ctx.sessions.cookieName));
    send(x, 302, {
      location: logonUrl(`https://${head.host}/owa/`),
      'set-cookie': ctx.sessions.clearCookie(),
      'cache-control': 'no-store',
      'content-length': '0',
    });
    x.record.outcome = 'answered';
    return;
  }

  // Who is asking: Basic credentials, or for OWA/ECP a session whose credential goes on to the next hop.
  const authStarted = performance.now();
  let caller: Mailbox | undefined;
  let login: string | undefined;
  if (isOwa && id.kind === 'session-cookie') {
    const session = ctx.sessions.verify(id.value);
    if (!session) {
      redirectToLogon(x);
      return;
    }
    // The next hop gets the user's credentials, not coexist's cookie (protocol-facts §5.3).
    x.req.headers.authorization = session.authorization;
    x.req.headers.cookie = withoutCookie(x.req.headers.cookie, id.cookie);
    try {
      caller = await ctx.directory.findMailbox(session.user);
    } catch (err) {
      await directoryDown(ctx, x, err);
      return;
    }
    login = session.user;
  } else {
    const credentials = basicCredentials(head);
    if (isInvalid(credentials)) {
      refuse(x, credentials.code);
      return;
    }
    if (credentials === undefined) {
      if (isOwa && head.method === 'GET') redirectToLogon(x);
      else challenge(x, 'CX_AUTH_REQUIRED');
      return;
    }
    login = credentials.user;
    try {
      caller = await ctx.directory.authenticate(credentials.user, credentials.password);
    } catch (err) {
      record.auth = 'error';
      await directoryDown(ctx, x, err);
      return;
    }
    if (!caller) {
      record.user = login;
      record.auth = 'bad_credentials';
      challenge(x, 'CX_AUTH_FAILED');
      return;
    }
    record.auth = 'ok';
  }
  record.timings.authMs = round(performance.now() - authStarted);
  if (!caller) {
    redirectToLogon(x);
    return;
  }
  record.user = caller.address;

  // Whose mailbox: the anchor the request names (EWS X-AnchorMailbox, Autodiscover EMailAddress), else the
  // caller's own (ActiveSync routes on the authenticated user; Outlook Anywhere and MAPI GUIDs name the
  // caller's mailbox in this estate model).
  const lookupStarted = performance.now();
  let mailbox: Mailbox | undefined = caller;
  if (id.kind === 'user' && id.source !== 'basic-auth' && id.source !== 'activesync-query') {
    if (id.user.toLowerCase() !== login.toLowerCase() && id.user.toLowerCase() !== caller.address) {
      try {
        mailbox = await ctx.directory.findMailbox(id.user);
      } catch (err) {
        await directoryDown(ctx, x, err);
        return;
      }
    }
  }
  record.timings.lookupMs = round(performance.now() - lookupStarted);

  const decision = decide(
    { server: ctx.server, role: listener.role },
    { protocol, mailbox, client: clientLocation(ctx, x, protocol), host: hostOnly(head.host) },
    ctx.index,
    ctx.policies,
  );
  record.decision = decision.kind;
  await execute(ctx, listener, x, decision, mailbox);
}

async function execute(
  ctx: ServerContext,
  listener: ListenerInfo,
  x: Exchange,
  d: Decision,
  mailbox: Mailbox | undefined,
): Promise<void> {
  const { record, res, head } = x;
  const protocol = x.protocol as Protocol;
  switch (d.kind) {
    case 'proxy': {
      // A legacy CAS reaches its mailbox server over RPC; the lab carries that hop over HTTPS to the
      // mailbox server's own name, keeping the client's path (the simulators' stand-in for MAPI RPC).
      const endpoint = d.via === 'store' ? ctx.storeEndpoints?.(d.to.name, protocol) : undefined;
      const url = endpoint
        ? endpointUrl(endpoint.url, head)
        : nextHopUrl(d.url ?? `https://${d.to.fqdn}/`, head);
      const upstreamStarted = performance.now();
      const result = await forward(
        x.req,
        res,
        {
          url,
          protocol,
          serverName: ctx.server.name,
          nextServer: d.to.name,
          ...(endpoint?.keepAlive === false ? { keepAlive: false } : {}),
          ...(d.via === 'backend' || d.via === 'store' ? { backendTarget: d.to.fqdn } : {}),
          ...(x.body === undefined ? {} : { body: x.body }),
        },
        {
          upstreams: ctx.upstreams,
          requestId: record.reqId,
          scheme: listener.scheme,
          listenerPort: listener.port,
          ...(ctx.trustedProxies === undefined ? {} : { trustedProxies: ctx.trustedProxies }),
          ...(ctx.idleTimeoutsMs === undefined ? {} : { idleTimeoutsMs: ctx.idleTimeoutsMs }),
          ...(ctx.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: ctx.retryAfterSeconds }),
        },
      );
      record.timings.upstreamMs = round(performance.now() - upstreamStarted);
      record.outcome = result.outcome;
      record.hops = [ctx.server.name, d.to.name];
      record.bytesIn = result.bytesIn;
      record.bytesOut = result.bytesOut;
      if (result.status !== undefined) record.status = result.status;
      if (result.upstreamStatus !== undefined) record.upstreamStatus = result.upstreamStatus;
      if (result.failure) record.code = result.failure.code;
      if (result.retried) ctx.metrics?.observeUpstreamFailure(result.retried.code);
      observe(ctx, x, { to: d.to.name, via: d.via, url });
      return;
    }
    case 'redirect': {
      const headers: OutgoingHeaders = { 'cache-control': 'private', 'content-length': '0' };
      // The legacy ActiveSync redirect: 451 with X-MS-Location and no body (protocol-facts §4.1).
      if (d.status === 451) headers['x-ms-location'] = d.location;
      else headers['location'] = d.location;
      send(x, d.status, headers);
      record.outcome = 'redirected';
      observe(ctx, x, { url: d.location });
      return;
    }
    case 'respond': {
      record.outcome = 'answered';
      if (d.answer === 'autodiscover') {
        const request = autodiscoverRequest(head, x.body);
        if (isInvalid(request)) {
          await answerAutodiscoverError(ctx, x, undefined, 'invalid-request', request.code);
          return;
        }
        sendReply(x, await answerAutodiscover(ctx, head, request, d.autodiscover));
        record.outcome = 'answered';
        observe(ctx, x, {});
        return;
      }
      if (!ctx.responder || !mailbox) {
        refuse(x, 'CX_ROUTE_NO_STORE');
        return;
      }
      res.setHeader(headerNames.path, ctx.server.name);
      res.setHeader(headerNames.requestId, record.reqId);
      await ctx.responder.handle(x.req, res, {
        serverName: ctx.server.name,
        version: ctx.server.version,
        protocol,
        mailbox: { address: mailbox.address, displayName: mailbox.displayName },
      });
      record.status = res.statusCode;
      observe(ctx, x, {});
      return;
    }
    case 'refuse':
      if (protocol === 'autodiscover' && d.code === 'CX_ROUTE_UNKNOWN_MAILBOX') {
        // The schema's "address not found" (POX 500, SOAP InvalidUser, JSON 404), or a domain not served here.
        const request = autodiscoverRequest(head, x.body);
        const parsed = isInvalid(request) ? undefined : request;
        const address = requestedAddress(parsed);
        const elsewhere = parsed && remoteRedirect(ctx, address);
        if (parsed && elsewhere) {
          // The estate says this domain lives elsewhere: send the client there (MS-OXDSCLI redirects).
          sendReply(x, redirectAutodiscover(ctx, parsed, elsewhere));
          record.outcome = 'redirected';
          observe(ctx, x, { url: elsewhere.kind === 'url' ? elsewhere.url : `mailto:${elsewhere.address}` });
          return;
        }
        await answerAutodiscoverError(ctx, x, parsed, missingMailbox(ctx, address), d.code);
        return;
      }
      refuse(x, d.code);
      return;
  }
}

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

/**
 * The directory could not be asked (LDAP down, past the cache's stale window): a temporary error in the
 * protocol's dialect, never a 401 (the credentials may be right) and never a 500. ActiveSync gets 503 with
 * Retry-After and an empty body (protocol-facts §4.1), Autodiscover its schema's "server busy" answer.
 */
async function directoryDown(ctx: ServerContext, x: Exchange, err: unknown): Promise<void> {
  ctx.logger.warn(
    { reqId: x.record.reqId, server: ctx.server.name, err: errorSummary(err) },
    'directory unavailable',
  );
  if (x.protocol === 'autodiscover') {
    await answerAutodiscoverError(ctx, x, undefined, 'server-busy', 'CX_DIRECTORY_UNAVAILABLE');
    return;
  }
  refuse(x, 'CX_DIRECTORY_UNAVAILABLE', { 'retry-after': String(ctx.retryAfterSeconds ?? 30) });
}

/** Write an Autodiscover error answer; the access line keeps the code that caused it. */
async function answerAutodiscoverError(
  ctx: ServerContext,
  x: Exchange,
  request: AutodiscoverRequest | undefined,
  error: AutodiscoverError,
  code: ErrorCode,
): Promise<void> {
  // "Server busy" names no user, so the answer is built without asking the directory that is down.
  const asked = error === 'server-busy' ? undefined : request;
  sendReply(x, await autodiscoverError(ctx, x.head, x.body, asked, error));
  x.record.outcome = 'refused';
  x.record.code = code;
}

/** The address an Autodiscover request asks about. */
function requestedAddress(request: AutodiscoverRequest | undefined): string | undefined {
  if (!request) return undefined;
  switch (request.schema) {
    case 'outlook':
    case 'mobilesync':
      return request.address;
    case 'json':
      return request.address;
    case 'soap':
      return request.operation === 'GetUserSettings' ? request.mailboxes[0] : undefined;
  }
}

function sendReply(x: Exchange, reply: AutodiscoverReply): void {
  const body = Buffer.from(reply.body);
  const headers: OutgoingHeaders = {
    'content-type': reply.contentType,
    'content-length': String(body.length),
  };
  if (reply.location !== undefined) headers['location'] = reply.location;
  send(x, reply.status, headers, body);
}

/** Record this server's part of the flow. */
function observe(
  ctx: ServerContext,
  x: Exchange,
  hop: { readonly to?: string; readonly via?: string; readonly url?: string },
): void {
  if (!ctx.observer) return;
  const r = x.record;
  ctx.observer.record({
    requestId: r.reqId,
    server: ctx.server.name,
    implementation: ctx.implementation,
    role: x.listener.role,
    ...(x.protocol === undefined ? {} : { protocol: x.protocol }),
    ...(r.user === undefined ? {} : { user: r.user }),
    ...(r.decision === undefined ? {} : { decision: r.decision }),
    ...hop,
    ...(r.status === undefined ? {} : { status: r.status }),
    outcome: r.outcome,
  });
}

/** Internal or external client (protocol-facts §2.4): ActiveSync is always external (flows.md). */
function clientLocation(ctx: ServerContext, x: Exchange, protocol: Protocol): 'internal' | 'external' {
  if (alwaysExternal(protocol) || !ctx.internalNetworks) return 'external';
  // Behind another server of the estate, the original client is the first X-Forwarded-For entry.
  let client = x.req.socket.remoteAddress;
  const xff = x.req.headers['x-forwarded-for'];
  if (x.trustedPeer && typeof xff === 'string') client = xff.split(',')[0]?.trim() ?? client;
  if (client === undefined) return 'external';
  const family = client.includes(':') ? 'ipv6' : 'ipv4';
  return ctx.internalNetworks.check(client, family) ? 'internal' : 'external';
}

/** A locally produced answer: diagnostics headers, status, record. */
function send(x: Exchange, status: number, headers: OutgoingHeaders, body?: Uint8Array | string): void {
  const { res, record } = x;
  // Every Autodiscover answer, 401s included, says SOAP is served (ews-javascript-api needs it).
  if (x.protocol === 'autodiscover') Object.assign(headers, autodiscoverHeaders);
  headers[headerNames.requestId] = record.reqId;
  headers[headerNames.path] = record.server;
  headers[headerNames.feServer] = record.server;
  res.writeHead(status, headers);
  res.end(body);
  record.status = status;
}

/** Refuse with a catalogue code, in the protocol's dialect (ActiveSync: empty bodies, §4.1). */
function refuse(x: Exchange, code: ErrorCode, extra: OutgoingHeaders = {}): void {
  const status = statusOf(code);
  x.record.code = code;
  x.record.outcome = 'refused';
  if (x.res.headersSent || x.res.destroyed) {
    x.res.destroy();
    return;
  }
  const headers: OutgoingHeaders = { 'cache-control': 'no-store', ...extra };
  // An unread request body is not drained to keep the connection.
  if (!x.req.complete && x.body === undefined) headers['connection'] = 'close';
  if (x.protocol === 'activesync') {
    headers['content-length'] = '0';
    send(x, status, headers);
    return;
  }
  const body = `${catalogue[code].summary} (${code})\n`;
  headers['content-type'] = 'text/plain; charset=utf-8';
  headers['content-length'] = String(Buffer.byteLength(body));
  send(x, status, headers, body);
}

/** 401 with the Basic challenge every protocol here accepts (protocol-facts §5.1). */
function challenge(x: Exchange, code: 'CX_AUTH_REQUIRED' | 'CX_AUTH_FAILED'): void {
  const realm = hostOnly(x.head.host) || x.record.server;
  refuse(x, code, { 'www-authenticate': `Basic realm="${realm.replace(/["\\]/g, '')}"` });
}

function redirectToLogon(x: Exchange): void {
  const destination = `https://${x.head.host}${x.head.path}${x.head.query === '' ? '' : `?${x.head.query}`}`;
  const location = logonUrl(destination);
  send(x, 302, { location, 'cache-control': 'no-store', 'content-length': '0' });
  x.record.outcome = 'redirected';
}

function answerOwaLogonPage(ctx: ServerContext, x: Exchange): void {
  const params = new URLSearchParams(x.head.query);
  const fallback = `https://${x.head.host}/owa/`;
  const allowed = new Set([x.head.host.toLowerCase()]);
  const destination = safeDestination(params.get('url') ?? undefined, allowed, fallback);
  const reason = Number(params.get('reason') ?? '0');
  // Each version posts its form where its own OWA expects it (protocol-facts §4.9).
  const action = ctx.server.version === 2007 ? '/owa/auth/owaauth.dll' : '/owa/auth.owa';
  const html = logonPage({ action, destination, reason: Number.isFinite(reason) ? reason : 0 });
  const body = Buffer.from(html);
  send(x, 200, { ...logonPageHeaders(allowed), 'content-length': String(body.length) }, body);
  x.record.outcome = 'answered';
}

/** The logon POST: check the password, start a session holding the credential, go to the destination. */
async function owaLogon(ctx: ServerContext, x: Exchange): Promise<void> {
  let outcome: Awaited<ReturnType<typeof runLogon>>;
  try {
    outcome = await runLogon(ctx, x);
  } catch {
    refuse(x, 'CX_DIRECTORY_UNAVAILABLE', { 'retry-after': String(ctx.retryAfterSeconds ?? 30) });
    return;
  }
  switch (outcome.kind) {
    case 'malformed':
      refuse(x, 'CX_IDENTITY_BODY_MALFORMED');
      return;
    case 'refused':
      // protocol-facts §4.9: a failed logon goes back to the logon page with a reason.
      x.record.code = 'CX_AUTH_FAILED';
      send(x, 302, { location: outcome.location, 'cache-control': 'no-store', 'content-length': '0' });
      x.record.outcome = 'refused';
      return;
    case 'accepted':
      x.record.user = outcome.user;
      send(x, 302, {
        location: outcome.location,
        'set-cookie': outcome.setCookie,
        'cache-control': 'no-store',
        'content-length': '0',
      });
      x.record.outcome = 'answered';
      return;
  }
}

function runLogon(ctx: ServerContext, x: Exchange): ReturnType<typeof logonWith> {
  return logonWith(x.body ?? new Uint8Array(), {
    sessions: ctx.sessions,
    authenticate: (login, password) => ctx.directory.authenticate(login, password),
    allowedHosts: new Set([x.head.host.toLowerCase()]),
    fallback: '/owa/',
    ...previous(cookieValue(x.head, ctx.sessions.cookieName)),
  });
}

const previous = (cookie: string | undefined): { previousCookie?: string } =>
  cookie === undefined ? {} : { previousCookie: cookie };

/** Read at most `max` bytes; undefined when the body is larger. */
async function readBody(req: IncomingMessage, max: number): Promise<Uint8Array | undefined> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > max) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** The Cookie header without one cookie; undefined when nothing is left. */
function withoutCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '' && p.slice(0, p.indexOf('=')).trim() !== name);
  return kept.length === 0 ? undefined : kept.join('; ');
}

/** `mail.o365info.com:8443` -> `mail.o365info.com`; IPv6 literals keep their brackets' content. */
export function hostOnly(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']')).toLowerCase();
  const colon = host.indexOf(':');
  return (colon < 0 ? host : host.slice(0, colon)).toLowerCase();
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/** What goes in a log about an unexpected error: its name, code and message, never request data. */
function errorSummary(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(code === undefined ? {} : { code }) };
  }
  return { message: String(err) };
}
