/**
 * The one place that sequences a request's I/O (architecture.md "How a request flows"):
 * classify -> identify (reading a small body when the protocol needs it) -> authenticate -> look up ->
 * `decide()` -> proxy / redirect / respond / refuse, then one access-log line. The engine stays pure:
 * everything it needs is looked up here and handed over as a plain `RoutingInput`. The answers written
 * here are reply.ts's, OWA's forms logon is owa-logon.ts's, Autodiscover's answers autodiscover/service.ts's.
 */
import { randomUUID } from 'node:crypto';
import { clientAddressOf } from '../net/proxy-protocol.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Mailbox } from '../core/estate/estate-index.ts';
import { hostOfHeader } from '../core/host.ts';
import { basicCredentials } from '../core/protocols/basic-auth.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import { alwaysExternal } from '../core/protocols/protocol.ts';
import type { Identity, RequestHead } from '../core/protocols/request-head.ts';
import { isInvalid } from '../core/protocols/request-head.ts';
import { classify } from '../core/protocols/registry.ts';
import type { Decision, ProxyDecision, RedirectDecision } from '../core/routing/decision.ts';
import { decide } from '../core/routing/decide.ts';
import { accessOf } from '../directory/directory.ts';
import type { AccessRecord } from '../observability/log.ts';
import { capField, logAccess } from '../observability/log.ts';
import {
  answerAutodiscoverError,
  answerUnknownMailbox,
  respondAutodiscover,
} from './autodiscover/service.ts';
import { readBody } from './body.ts';
import type { HeldPing, HeldPings } from './drain.ts';
import { isPing, pingExpiredBody } from './drain.ts';
import type { ConnectingSid, ImpersonationVerdict, ListenerInfo, ServerContext } from './contracts.ts';
import type { ForwardResult } from './forward.ts';
import { forward } from './forward.ts';
import type { HealthMonitor } from './health.ts';
import { healthPageOf } from './health.ts';
import { decideImpersonation } from './impersonation.ts';
import type { OutgoingHeaders } from './headers.ts';
import { headerNames, parseHops } from './headers.ts';
import type { InFlight, Mutable } from './in-flight.ts';
import { observe } from './in-flight.ts';
import { restoreMethod } from './listener.ts';
import { endpointUrl, nextHopUrl } from './next-hop-url.ts';
import { answerOwaLogon, owaRedirectLocation, presentSession, redirectToLogon } from './owa-logon.ts';
import { clientAddress, peerTrust } from './peer-trust.ts';
import { crossSiteRequest, hostRefusal } from './request-trust.ts';
import { challenge, refuse, send } from './reply.ts';
import { signIn } from './sign-in.ts';
import {
  assertedCaller,
  assertedMethod,
  handshakeLegIdentity,
  isWindowsRequest,
  offerChallenges,
  pinnedFor,
  terminate,
  verifiedCaller,
  windowsRequestOf,
  windowsRoute,
} from './windows-auth.ts';
import { kerberosAtEdge, terminateKerberos } from './kerberos-edge.ts';

/** The request handler of one listener. Never throws; every request ends with one access line. */
export function createRequestHandler(
  ctx: ServerContext,
  listener: ListenerInfo,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void handle(ctx, listener, req, res);
  };
}

/**
 * Classify and identify, then route; whatever happens, one access line, metrics. Not an async function: its
 * frame, every local of it, would stay suspended for as long as the request is held (an ActiveSync Ping,
 * up to an hour); the steps run in `serve()`, and what ends the request waits on its promise, keeping only
 * `flight` (docs/lab.md §4.2).
 */
function handle(
  ctx: ServerContext,
  listener: ListenerInfo,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const started = performance.now();
  restoreMethod(req);
  const peer = clientAddressOf(req.socket);
  // Who the peer is, proven per request (docs/security.md "How servers authenticate each other"): a server of
  // the estate by its client certificate, a load balancer by its listed address, anyone else a client.
  const peerIs = peerTrust(req.socket, ctx.estateServers, ctx.trustedProxies);
  const fromServer = peerIs.kind === 'server';
  const inbound = req.headers[headerNames.forwardRequestId];
  const requestId =
    fromServer && typeof inbound === 'string' && /^[A-Za-z0-9-]{1,64}$/.test(inbound)
      ? inbound
      : randomUUID();
  // The servers the request came through before this one, as a proven server says (X-Coexist-Hops).
  const via = fromServer ? parseHops(req.headers[headerNames.hops]) : [];
  const client = clientAddress({
    peer: peerIs,
    peerAddress: peer,
    forwardedFor: req.headers['x-forwarded-for'],
    hops: via.length,
    proxies: ctx.trustedProxies,
  });
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
    ...(peerIs.kind === 'server' ? { peerServer: peerIs.server } : {}),
    ...(via.length > 0 ? { via } : {}),
    ...(peerIs.kind === 'proxy' ? { peerProxy: true } : {}),
    ...(client !== peer && client !== undefined ? { forwardedClient: client } : {}),
  };
  const flight: InFlight = { req, res, head, record, started, peer: peerIs, clientAddress: client, listener };
  return serve(ctx, flight)
    .catch((err: unknown) => {
      ctx.logger.error(
        { reqId: requestId, server: ctx.server.name, err: errorSummary(err) },
        'request failed',
      );
      if (!res.headersSent && !res.destroyed) {
        refuse(flight, 'CX_HTTP_INTERNAL');
      } else {
        res.destroy();
      }
    })
    .finally(() => {
      flight.done?.();
      record.timings.totalMs = round(performance.now() - started);
      logAccess(ctx.logger, record);
      ctx.metrics?.observeRequest(record);
    });
}

/** The steps of `handle`, up to the answer; rejects on a failure of this server's own. */
async function serve(ctx: ServerContext, flight: InFlight): Promise<void> {
  const { req, head, record } = flight;
  // The host is checked before anything else: a request for a host this server does not answer for is
  // not classified, authenticated or routed (docs/security.md "Trust per request").
  const misdirected = hostRefusal(req, ctx.index, ctx.server);
  if (misdirected !== undefined) {
    refuse(flight, misdirected, { connection: 'close' });
    return;
  }
  // A load balancer's health page: after the host check, before anything about who is asking; never
  // proxied or redirected (docs/operations.md "Health pages").
  const page = ctx.health && (head.method === 'GET' || head.method === 'HEAD') && healthPageOf(head.path);
  if (ctx.health && page) {
    answerHealth(ctx.health, flight, page);
    return;
  }
  const module = classify(head);
  if (!module) {
    refuse(flight, 'CX_HTTP_NOT_FOUND');
    return;
  }
  flight.protocol = module.protocol;
  record.protocol = module.protocol;
  flight.done = ctx.metrics?.inflight(module.protocol);
  let id = module.identify(head);
  if (id.kind === 'needs-body') {
    const body = await readBody(req, id.maxBytes);
    if (body === undefined) {
      refuse(flight, 'CX_IDENTITY_BODY_TOO_LARGE', { connection: 'close' });
      return;
    }
    flight.body = body;
    id = module.identify(head, body);
    // A handshake leg sent without its body (docs/auth.md "A leg without its body"): routed on its head alone.
    if (isInvalid(id)) id = handshakeLegIdentity(flight, head) ?? id;
  }
  if (isInvalid(id)) {
    // A body Autodiscover cannot read gets the schema's own error answer, not a bare 400 (MS-OXDSCLI 600).
    if (module.protocol === 'autodiscover' && id.code !== 'CX_IDENTITY_BODY_TOO_LARGE') {
      await answerAutodiscoverError(ctx, flight, undefined, 'invalid-request', id.code);
      return;
    }
    refuse(flight, id.code);
    return;
  }
  // Returned, not awaited: this frame ends here rather than staying suspended for the hold.
  return route(ctx, flight, id);
}

/**
 * `/<vdir>/healthcheck.htm`: Exchange's answer, `200 OK<br/>` and the server's FQDN, or 503 with a short text
 * that names nothing; precomputed by the health monitor, so a probe costs a lookup (docs/operations.md
 * "Health pages").
 */
function answerHealth(health: HealthMonitor, flight: InFlight, protocol: Protocol): void {
  const answer = health.page(flight.listener.role, protocol);
  flight.protocol = protocol;
  flight.record.protocol = protocol;
  flight.record.outcome = 'health';
  const headers: OutgoingHeaders = {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': String(answer.body.length),
  };
  send(flight, answer.status, headers, flight.head.method === 'HEAD' ? undefined : answer.body);
}

/** OWA logon pages, authenticate, look up, decide, execute. */
async function route(ctx: ServerContext, flight: InFlight, id: Identity): Promise<void> {
  const { head, record } = flight;
  const protocol = flight.protocol as Protocol;
  const isOwa = protocol === 'owa' || protocol === 'ecp';

  // OWA's own forms logon (docs/protocols.md §4.9): the logon page, the POST that starts a session, logoff.
  // Login CSRF and its kin: a state-changing OWA/ECP request from another site (docs/security.md "Trust per request").
  if (isOwa && crossSiteRequest(head)) {
    refuse(flight, 'CX_HTTP_CROSS_SITE');
    return;
  }
  if (isOwa && (await answerOwaLogon(ctx, flight, clientLocation(ctx, flight, protocol)))) return;
  // NTLM / Negotiate: routed on what the request says, passed through pinned (docs/security.md "Windows
  // authentication").
  if (isWindowsRequest(flight) && assertedCaller(flight) === undefined)
    return routeWindows(ctx, flight, id, protocol);

  const caller = await authenticate(ctx, flight, id, isOwa);
  if (!caller) return;

  // Whose mailbox: the anchor the request names (EWS X-AnchorMailbox, Autodiscover EMailAddress), else the
  // caller's own (ActiveSync routes on the authenticated user; Outlook Anywhere and MAPI GUIDs name the
  // caller's mailbox in this estate model).
  const lookupStarted = performance.now();
  let mailbox: Mailbox | undefined = caller.mailbox;
  if (id.kind === 'user' && id.source !== 'basic-auth' && id.source !== 'activesync-query') {
    record.anchor = id.user;
    const anchor = id.user.toLowerCase();
    if (anchor !== caller.login.toLowerCase() && anchor !== caller.mailbox.address) {
      try {
        mailbox = await ctx.directory.findMailbox(id.user);
      } catch (err) {
        await directoryDown(ctx, flight, err);
        return;
      }
      // An anchor that names no mailbox routes as if there were none: the caller's own, so the answer does
      // not tell which addresses exist (docs/security.md "Mailbox access"). Autodiscover keeps its schema's
      // own answer for an unknown address (MS-OXDSCLI, docs/protocols.md §4.2).
      if (mailbox === undefined && protocol !== 'autodiscover') mailbox = caller.mailbox;
    }
  }
  record.timings.lookupMs = round(performance.now() - lookupStarted);
  record.routedBy = routedByOf(id);

  const location = clientLocation(ctx, flight, protocol);
  record.location = location;
  const decision = decide(
    { server: ctx.server, role: flight.listener.role },
    { protocol, mailbox, client: location, host: hostOfHeader(head.host) },
    ctx.index,
    ctx.policies,
  );
  record.decision = decision.kind;
  // Returned, not awaited: this frame ends here instead of staying suspended while a long poll is held
  // (docs/lab.md §4.2).
  return execute(ctx, flight, decision, mailbox, caller.mailbox);
}

/**
 * A request with Windows authentication (windows-auth.ts): the mailbox the request names decides the chain as
 * today; a hop that passes the handshake through forwards it on the client connection's own upstream connection
 * (`proxy`), the hop that answers from a mailbox store or hands over to one terminates it, and then goes on as
 * after a Basic sign-in.
 */
async function routeWindows(
  ctx: ServerContext,
  flight: InFlight,
  id: Identity,
  protocol: Protocol,
): Promise<void> {
  const { head, record } = flight;
  const routed = await windowsRoute(ctx, flight, id, (err) => directoryDown(ctx, flight, err));
  if (!routed) return;
  const anchored = id.kind === 'user' && id.source !== 'basic-auth';
  if (anchored) record.anchor = id.user;
  const location = clientLocation(ctx, flight, protocol);
  record.location = location;
  const input = { protocol, client: location, host: hostOfHeader(head.host) } as const;
  const at = { server: ctx.server, role: flight.listener.role } as const;
  const decision = decide(at, { ...input, mailbox: routed.mailbox }, ctx.index, ctx.policies);
  record.decision = decision.kind;
  // Kerberos at the edge: accepted here with the front ends' keytab where the next hop is coexist itself, NTLM
  // offered where it is not (kerberos-edge.ts).
  if (kerberosAtEdge(ctx, flight))
    return terminateKerberos(
      ctx,
      flight,
      (caller) => {
        const mailbox = anchored ? routed.mailbox : caller;
        return {
          mailbox,
          decision: anchored ? decision : decide(at, { ...input, mailbox }, ctx.index, ctx.policies),
        };
      },
      (d, mailbox, caller) => execute(ctx, flight, d, mailbox, caller),
    );
  if (decision.kind === 'proxy' && decision.via !== 'store')
    return execute(ctx, flight, decision, routed.mailbox, routed.caller ?? (routed.mailbox as Mailbox));
  if (decision.kind === 'refuse') {
    refuse(flight, decision.code);
    return;
  }
  // Nothing is redirected or answered before the caller is verified here: a redirect would tell an
  // unauthenticated client where a mailbox lives.
  if (decision.kind === 'redirect' && routed.caller === undefined) {
    offerChallenges(flight, ctx, 'CX_AUTH_REQUIRED');
    return;
  }
  return terminate(ctx, flight, (caller) => {
    // The caller now known, the anchor (or else the caller's own mailbox) decides, as after Basic.
    const mailbox = anchored ? routed.mailbox : caller;
    const d = anchored ? decision : decide(at, { ...input, mailbox }, ctx.index, ctx.policies);
    record.decision = d.kind;
    return execute(ctx, flight, d, mailbox, caller);
  });
}

/**
 * Who is asking: Basic credentials, or for OWA/ECP a session whose credential goes on to the next hop.
 * Undefined when the request has been answered (challenge, logon page, directory down).
 */
async function authenticate(
  ctx: ServerContext,
  flight: InFlight,
  id: Identity,
  isOwa: boolean,
): Promise<{ readonly mailbox: Mailbox; readonly login: string } | undefined> {
  const { head, record } = flight;
  const authStarted = performance.now();
  let caller: Mailbox | undefined;
  let login: string;
  const asserted = assertedCaller(flight);
  if (asserted !== undefined) {
    // A proven server of the estate verified this caller with Windows authentication (windows-auth.ts).
    try {
      caller = await ctx.directory.findMailbox(asserted);
    } catch (err) {
      await directoryDown(ctx, flight, err);
      return undefined;
    }
    login = asserted;
    if (!caller) {
      challenge(flight, 'CX_AUTH_FAILED');
      return undefined;
    }
  } else if (isOwa && id.kind === 'session-cookie') {
    const session = await presentSession(ctx, flight, id);
    if (!session) {
      redirectToLogon(flight);
      return undefined;
    }
    try {
      caller = await ctx.directory.findMailbox(session.user);
    } catch (err) {
      await directoryDown(ctx, flight, err);
      return undefined;
    }
    login = session.user;
  } else {
    const credentials = basicCredentials(head);
    if (isInvalid(credentials)) {
      refuse(flight, credentials.code);
      return undefined;
    }
    if (credentials === undefined) {
      if (isOwa && head.method === 'GET') redirectToLogon(flight);
      // One WWW-Authenticate per method the server offers for the protocol; Basic alone by default.
      else offerChallenges(flight, ctx, 'CX_AUTH_REQUIRED');
      return undefined;
    }
    login = credentials.user;
    try {
      // The lockout first, then the directory; sets record.auth (ok, bad_credentials, locked, error).
      caller = await signIn(ctx, flight, credentials.user, credentials.password);
    } catch (err) {
      await directoryDown(ctx, flight, err);
      return undefined;
    }
    if (!caller) {
      record.user = login;
      // A locked account gets the very answer of a wrong password: the lock tells an attacker nothing.
      challenge(flight, 'CX_AUTH_FAILED');
      return undefined;
    }
  }
  record.timings.authMs = round(performance.now() - authStarted);
  record.authMethod =
    asserted !== undefined
      ? (assertedMethod(flight) ?? 'ntlm')
      : isOwa && id.kind === 'session-cookie'
        ? 'session'
        : 'basic';
  if (!caller) {
    // A session whose user the directory no longer knows: log on again.
    redirectToLogon(flight);
    return undefined;
  }
  record.user = caller.address;
  return { mailbox: caller, login };
}

/** Apply the decision: proxy, redirect, respond or refuse. */
async function execute(
  ctx: ServerContext,
  flight: InFlight,
  d: Decision,
  mailbox: Mailbox | undefined,
  caller: Mailbox,
): Promise<void> {
  switch (d.kind) {
    case 'proxy':
      // Returned, not awaited, as in route(): no frame of this function held for the hold.
      return proxy(ctx, flight, d, mailbox?.address ?? caller.address);
    case 'redirect':
      redirect(ctx, flight, d);
      return;
    case 'respond':
      flight.record.outcome = 'answered';
      if (d.answer === 'autodiscover') {
        await respondAutodiscover(ctx, flight, d.autodiscover);
        return;
      }
      await respondFromMailbox(ctx, flight, mailbox, caller);
      return;
    case 'refuse':
      if (flight.protocol === 'autodiscover' && d.code === 'CX_ROUTE_UNKNOWN_MAILBOX') {
        await answerUnknownMailbox(ctx, flight, d.code);
        return;
      }
      refuse(flight, d.code);
      return;
  }
}

/**
 * Stream to the next hop: the decision's vdir URL plus the rest of the client's path and query. Of the
 * decision's server and its equivalents, the one next-hops.ts chooses for the routed mailbox (`anchor`).
 * Not an async function: while the next hop holds the request, only what `proxied()` needs is kept, not
 * this frame with the decision and every local (docs/lab.md §4.2).
 */
function proxy(ctx: ServerContext, flight: InFlight, d: ProxyDecision, anchor: string): Promise<void> {
  const { record, res, head, listener } = flight;
  const protocol = flight.protocol as Protocol;
  const choice = ctx.nextHops?.choose(d, protocol, anchor);
  const to = choice?.to ?? d.to;
  // A legacy CAS reaches its mailbox server over RPC; the lab carries that hop over HTTPS to the
  // mailbox server's own name, keeping the client's path (the simulators' stand-in for MAPI RPC).
  const endpoint = d.via === 'store' ? ctx.storeEndpoints?.(to.name, protocol) : undefined;
  const base = endpoint?.url ?? choice?.url ?? d.url ?? `https://${to.fqdn}/`;
  const url = endpoint ? endpointUrl(endpoint.url, head) : nextHopUrl(base, head);
  // Windows authentication passed through: the client connection's own upstream connection (windows-auth.ts);
  // none when this request has been answered here (its handshake began at another next hop).
  // The caller this server verified goes to a store, or to the 2013+ mailbox role behind a front end that
  // accepted Kerberos (kerberos-edge.ts): in `X-Coexist-Caller`, over an ordinary pooled connection.
  const caller = d.via === 'store' || d.via === 'backend' ? verifiedCaller(flight) : undefined;
  const windows = caller === undefined && d.via !== 'store' && windowsRequestOf(flight) !== undefined;
  const pin = windows ? pinnedFor(ctx, flight, new URL(url).origin) : undefined;
  if (windows && !pin) return Promise.resolve();
  // A Ping the drain may answer early (docs/operations.md "Drain"): Exchange's 200, Ping Status 1.
  const ping =
    protocol === 'activesync' && ctx.pings && isPing(head) ? holdPing(ctx.pings, flight) : undefined;
  const upstreamStarted = performance.now();
  const toName = to.name;
  const via = d.via;
  return forward(
    flight.req,
    res,
    {
      url,
      protocol,
      serverName: ctx.server.name,
      nextServer: to.name,
      ...(endpoint?.keepAlive === false ? { keepAlive: false } : {}),
      ...(d.via === 'backend' || d.via === 'store' ? { backendTarget: to.fqdn } : {}),
      ...(flight.body === undefined ? {} : { body: flight.body }),
      ...(pin === undefined ? {} : { pinned: pin.client }),
      ...(caller === undefined ? {} : { caller }),
    },
    {
      upstreams: ctx.upstreams,
      requestId: record.reqId,
      scheme: listener.scheme,
      listenerPort: listener.port,
      peer: flight.peer,
      ...(ctx.idleTimeoutsMs === undefined ? {} : { idleTimeoutsMs: ctx.idleTimeoutsMs }),
      ...(ctx.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: ctx.retryAfterSeconds }),
      ...(ping === undefined ? {} : { cancel: ping.cancel }),
    },
  ).then((result) => {
    pin?.release();
    proxied(ctx, flight, result, ping, { upstreamStarted, base, to: toName, via, url });
  });
}

/** Record what forward() did with a proxied request: the next hop's health, the access record, the flow. */
function proxied(
  ctx: ServerContext,
  flight: InFlight,
  result: ForwardResult,
  ping: HeldPing | undefined,
  hop: { upstreamStarted: number; base: string; to: string; via: ProxyDecision['via']; url: string },
): void {
  const { record } = flight;
  const protocol = flight.protocol as Protocol;
  const { upstreamStarted, base, to, via, url } = hop;
  ping?.done();
  record.timings.upstreamMs = round(performance.now() - upstreamStarted);
  ctx.nextHops?.report(ctx.nextHops.keyOf(base, protocol), to, protocol, result);
  record.outcome = result.outcome;
  record.hops = [ctx.server.name, to];
  record.bytesIn = result.bytesIn;
  record.bytesOut = result.bytesOut;
  if (result.status !== undefined) record.status = result.status;
  if (result.upstreamStatus !== undefined) record.upstreamStatus = result.upstreamStatus;
  if (result.failure) record.code = result.failure.code;
  if (result.retried) ctx.metrics?.observeUpstreamFailure(result.retried.code);
  if (ping?.answered) {
    // Answered here by the drain, its next hop's request cancelled on purpose: not a failure.
    record.outcome = 'answered';
    record.status = 200;
    delete record.code;
  }
  observe(ctx, flight, { to, via, url });
}

/** Hold a proxied Ping; its early answer is Exchange's for a heartbeat that ran out with nothing to report. */
function holdPing(pings: HeldPings, flight: InFlight): HeldPing {
  return pings.hold(flight.res, () =>
    send(
      flight,
      200,
      {
        'content-type': 'application/vnd.ms-sync.wbxml',
        'content-length': String(pingExpiredBody.length),
        'cache-control': 'private',
        connection: 'close',
      },
      pingExpiredBody,
    ),
  );
}

/** 302 Location, or the legacy ActiveSync 451 with X-MS-Location and no body (docs/protocols.md §4.1). */
function redirect(ctx: ServerContext, flight: InFlight, d: RedirectDecision): void {
  // OWA/ECP: an authenticated answer no browser stores, and the logon page at the target says why it asks
  // again (docs/security.md "OWA in the browser").
  const owa = flight.protocol === 'owa' || flight.protocol === 'ecp';
  const headers: OutgoingHeaders = { 'cache-control': owa ? 'no-store' : 'private', 'content-length': '0' };
  if (d.status === 451) headers['x-ms-location'] = d.location;
  else headers['location'] = flight.protocol === 'owa' ? owaRedirectLocation(d.location) : d.location;
  send(flight, d.status, headers);
  flight.record.outcome = 'redirected';
  observe(ctx, flight, { url: d.location });
}

/**
 * The request ends at this mailbox server: its content comes from the responder (the lab's simulators),
 * told who is asking and what the directory grants the caller on the mailbox: its owner, full access in
 * every protocol, a delegate over EWS; anything else is the protocol's access-denied answer
 * (docs/security.md "Mailbox access").
 */
async function respondFromMailbox(
  ctx: ServerContext,
  flight: InFlight,
  mailbox: Mailbox | undefined,
  caller: Mailbox,
): Promise<void> {
  const { record, res } = flight;
  if (!ctx.responder || !mailbox) {
    refuse(flight, 'CX_ROUTE_NO_STORE');
    return;
  }
  const granted = accessOf(caller, mailbox);
  // Delegates open another mailbox over EWS (delegate access); full access opens it everywhere.
  const access =
    granted === 'none' || (granted === 'delegate' && flight.protocol !== 'ews') ? 'denied' : granted;
  if (access === 'denied') {
    record.outcome = 'refused';
    record.code = 'CX_AUTH_ACCESS_DENIED';
  }
  res.setHeader(headerNames.path, ctx.server.name);
  res.setHeader(headerNames.requestId, record.reqId);
  await ctx.responder.handle(flight.req, res, {
    serverName: ctx.server.name,
    version: ctx.server.version,
    protocol: flight.protocol as Protocol,
    mailbox: { address: mailbox.address, displayName: mailbox.displayName },
    caller: { address: caller.address, displayName: caller.displayName },
    access,
    ...(flight.protocol === 'ews' && {
      impersonate: (target: ConnectingSid) => impersonate(ctx, flight, caller, mailbox, target),
    }),
  });
  // The client (the previous hop) went away before the answer was written or while it was: record what it
  // saw, not the status the responder had set (docs/security.md "Trust per request", log hygiene).
  if (!res.headersSent || (res.destroyed && !res.writableFinished)) {
    record.outcome = 'client_aborted';
    record.code = 'CX_UPSTREAM_CLIENT_ABORTED';
    if (res.headersSent) record.status = res.statusCode;
  } else record.status = res.statusCode;
  observe(ctx, flight, {});
}

/**
 * EWS impersonation (docs/security.md "Mailbox access"): the verdict on the `ExchangeImpersonation` header
 * the store found, recorded on the access line (`impersonating`, `impersonation`). Allowed, the request is
 * served as the mailbox's owner; refused, it is `CX_AUTH_ACCESS_DENIED`, whatever the caller's own access.
 */
async function impersonate(
  ctx: ServerContext,
  flight: InFlight,
  caller: Mailbox,
  routed: Mailbox,
  target: ConnectingSid,
): Promise<ImpersonationVerdict> {
  const { record } = flight;
  record.impersonating = target.value;
  const verdict = await decideImpersonation(ctx.directory, caller, routed, target);
  record.impersonation = verdict.kind;
  if (verdict.kind === 'allowed') {
    record.impersonating = verdict.mailbox.address;
    record.outcome = 'answered';
    delete record.code;
  } else {
    record.outcome = 'refused';
    record.code = verdict.kind === 'unavailable' ? 'CX_DIRECTORY_UNAVAILABLE' : 'CX_AUTH_ACCESS_DENIED';
  }
  return verdict;
}

/**
 * The directory could not be asked (LDAP down, past the cache's stale window): a temporary error in the
 * protocol's dialect, never a 401 (the credentials may be right) and never a 500. ActiveSync gets 503 with
 * Retry-After and an empty body (docs/protocols.md §4.1), Autodiscover its schema's "server busy" answer.
 */
async function directoryDown(ctx: ServerContext, flight: InFlight, err: unknown): Promise<void> {
  ctx.logger.warn(
    { reqId: flight.record.reqId, server: ctx.server.name, err: errorSummary(err) },
    'directory unavailable',
  );
  if (flight.protocol === 'autodiscover') {
    await answerAutodiscoverError(ctx, flight, undefined, 'server-busy', 'CX_DIRECTORY_UNAVAILABLE');
    return;
  }
  refuse(flight, 'CX_DIRECTORY_UNAVAILABLE', { 'retry-after': String(ctx.retryAfterSeconds ?? 30) });
}

/** Internal or external client (docs/protocols.md §2.4): ActiveSync is always external (docs/flows.md). */
function clientLocation(ctx: ServerContext, flight: InFlight, protocol: Protocol): 'internal' | 'external' {
  if (alwaysExternal(protocol) || !ctx.internalNetworks) return 'external';
  // The one rule (peer-trust.ts `clientAddress`): behind a proven server or a listed load balancer, the
  // right-most X-Forwarded-For entry no trusted peer added, never a left-most entry a client could write.
  const client = flight.clientAddress;
  if (client === undefined) return 'external';
  const family = client.includes(':') ? 'ipv6' : 'ipv4';
  return ctx.internalNetworks.check(client, family) ? 'internal' : 'external';
}

/** The access line's `routedBy` for a request authenticated here with Basic or an OWA session. */
function routedByOf(id: Identity): string {
  if (id.kind === 'session-cookie') return 'session';
  // With Basic, a MAPI MailboxId or an RPC target names the caller's own mailbox (route() above).
  if (id.kind !== 'user') return 'basic';
  switch (id.source) {
    case 'anchor-header':
      return 'x-anchormailbox';
    case 'autodiscover-body':
    case 'autodiscover-url':
    case 'autodiscover-legacy-dn':
      return 'autodiscover-body';
    case 'logon-form':
      return 'session';
    default:
      return 'basic';
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/** What goes in a log about an unexpected error: its name, code and message, never request data. */
function errorSummary(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    // A message can quote what the client sent (a user name in a directory error): capped.
    return { name: err.name, message: capField(err.message), ...(code === undefined ? {} : { code }) };
  }
  return { message: String(err) };
}
