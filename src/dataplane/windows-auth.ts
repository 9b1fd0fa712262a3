/**
 * Windows authentication (NTLM, Negotiate) at the front door (docs/security.md "Windows authentication").
 * NTLM authenticates a connection, not a request (MS-NLMP): so a client connection that sends
 * `Authorization: NTLM|Negotiate` gets, per next-hop origin, an upstream connection of its own (`Upstreams.pinned`)
 * that no other client connection ever uses, closed with it, and closing it when it closes. This hop cannot check
 * the handshake (it is not in the domain): it routes on what the request says (`routedBy`), and only the hop that
 * answers from a mailbox store, or hands over to one, terminates the handshake with the domain's verifier
 * (`ServerContext.windowsAuth`).
 */
import type { Socket } from 'node:net';
import type { Client } from 'undici';
import type { Mailbox } from '../core/estate/estate-index.ts';
import type { AuthMethod, Server } from '../core/estate/estate.ts';
import { familyOf } from '../core/estate/estate.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import { anchoredIdentity } from '../core/protocols/ews.ts';
import type { Identity, RequestHead } from '../core/protocols/request-head.ts';
import type { WindowsAuthToken } from '../core/protocols/windows-auth.ts';
import {
  isWindowsAuthInvalid,
  negTokenResp,
  parseWindowsAuthorization,
} from '../core/protocols/windows-auth.ts';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { ErrorCode } from '../core/errors.ts';
import { hostOfHeader } from '../core/host.ts';
import { mailboxGuid } from './autodiscover/exchange.ts';
import type { ServerContext, WindowsAuthHandshake } from './contracts.ts';
import { clientAddressOf } from '../net/proxy-protocol.ts';
import { readBody } from './body.ts';
import { headerNames } from './headers.ts';
import type { InFlight } from './in-flight.ts';
import { observe } from './in-flight.ts';
import { refuse } from './reply.ts';
import { sourceAddress } from './sign-in.ts';

/** Which input of the request chose its route (the access line's `routedBy`). */
export type RoutedBy =
  | 'x-anchormailbox'
  | 'activesync-user'
  | 'mapi-mailboxid'
  | 'rpc-target'
  | 'autodiscover-body'
  | 'ntlm-user'
  | 'basic'
  | 'session'
  /** The route this client connection's earlier request took (the NEGOTIATE after a first handshake). */
  | 'connection'
  /** Nothing in the request routes it: this server's default next hop for the protocol. */
  | 'default';

/** How the request authenticated (the access line's `authMethod`, a metric label). */
export type AuthMethodUsed = 'basic' | 'ntlm' | 'negotiate' | 'kerberos' | 'session' | 'none';

/** What one client connection holds of its Windows authentication. */
interface ConnectionState {
  readonly socket: Socket;
  /** Per next-hop origin, this connection's own upstream connection. */
  readonly pins: Map<string, Client>;
  /** The mailbox and next-hop origin this connection's last request passed through went to. */
  route?: { readonly mailbox: Mailbox; readonly origin: string };
  /** The handshake this server terminates (a store hop), while it runs. */
  handshake?: WindowsAuthHandshake;
  /** The method of the handshake this connection last sent (its later bare requests ride it). */
  scheme?: 'ntlm' | 'negotiate';
  /** The account this server verified on this connection (NTLM authenticates the connection). */
  account?: {
    readonly mailbox: Mailbox;
    readonly login: string;
    readonly scheme: 'ntlm' | 'negotiate';
    /** Verified here from a Kerberos ticket (kerberos-edge.ts), not from an NTLM handshake. */
    readonly kerberos?: boolean;
  };
  /** Requests of this connection in flight here; the connection is closed after the last when `closing`. */
  busy: number;
  closing: boolean;
}

const states = new WeakMap<Socket, ConnectionState>();

/** The Windows side of one request: its token (when it carries one) and the connection's state. */
export interface WindowsRequest {
  readonly token: WindowsAuthToken | undefined;
  readonly state: ConnectionState;
  routedBy?: RoutedBy;
  /** The mailbox it routed on. */
  mailbox?: Mailbox;
}

const requests = new WeakMap<InFlight, WindowsRequest>();

/** The Windows side of `flight`, once `windowsRoute` has taken it. */
export const windowsRequestOf = (flight: InFlight): WindowsRequest | undefined => requests.get(flight);

/**
 * Does this request take the Windows path: it carries `Authorization: NTLM|Negotiate`, or it carries no
 * `Authorization` on a connection that has authenticated that way (clients send later requests bare).
 */
export function isWindowsRequest(flight: InFlight): boolean {
  const auth = flight.req.headers.authorization;
  if (auth !== undefined) return /^\s*(?:ntlm|negotiate)(?:[ \t]|$)/i.test(auth);
  const state = states.get(flight.req.socket);
  return state !== undefined && (state.pins.size > 0 || state.account !== undefined);
}

/**
 * The identity of an NTLM/Negotiate handshake leg whose body the protocol needs but that came without one: curl
 * sends a POST's NEGOTIATE (and any leg before the last) with `Content-Length: 0`, as IIS authenticates before
 * the application reads a body. Such a leg is routed on its head (`X-AnchorMailbox`, else as a request that names
 * no mailbox); undefined for any other request, which keeps the protocol's own answer to a missing body.
 */
export function handshakeLegIdentity(flight: InFlight, head: RequestHead): Identity | undefined {
  if (flight.body?.length !== 0 || flight.req.headers.authorization === undefined) return undefined;
  if (!isWindowsRequest(flight)) return undefined;
  const id = anchoredIdentity(head);
  return id.kind === 'user' || id.kind === 'anonymous' ? id : undefined;
}

/**
 * The caller a proven server of the estate verified with Windows authentication and hands over with the request
 * (`X-Coexist-Caller`): a legacy CAS terminates NTLM and passes the request to its mailbox server, as Exchange
 * 2007/2010's CAS talks to its mailbox server under its own identity for the user (docs/protocols.md §5.2). Believed
 * only from a peer that proved with its client certificate that it is a server of the estate, on a mailbox
 * server's listener; from anyone else, a client or a load balancer, and on a front end's listener, the header is
 * ignored (and never forwarded: headers.ts drops `X-Coexist-*`).
 */
export function assertedCaller(flight: InFlight): string | undefined {
  return assertion(flight)?.caller;
}

/**
 * How the asserted caller authenticated at the hop that verified it (`; method=` of `X-Coexist-Caller`: ntlm,
 * negotiate or kerberos; ntlm when the hop names none), believed under the same rule as the caller itself.
 */
export function assertedMethod(flight: InFlight): 'ntlm' | 'negotiate' | 'kerberos' | undefined {
  return assertion(flight)?.method;
}

/** `X-Coexist-Caller: <address>[; method=<ntlm|negotiate|kerberos>]`, from a proven server at a mailbox server. */
function assertion(
  flight: InFlight,
): { readonly caller: string; readonly method: 'ntlm' | 'negotiate' | 'kerberos' } | undefined {
  // Only a mailbox server's listener takes it, the end of a CAS's `store` hop: a front end authenticates itself.
  if (flight.peer.kind !== 'server' || flight.listener.role !== 'mailbox') return undefined;
  const value = flight.req.headers[headerNames.caller];
  if (typeof value !== 'string' || value.length === 0 || value.length > 320) return undefined;
  const m = /^([^;\s]+)(?:;\s*method=(ntlm|negotiate|kerberos))?$/.exec(value);
  if (!m?.[1]) return undefined;
  return { caller: m[1], method: (m[2] as 'ntlm' | 'negotiate' | 'kerberos' | undefined) ?? 'ntlm' };
}

/**
 * The caller this server verified on the request's connection with Windows authentication: what it hands to a
 * store it passes the request to (forward.ts `caller`).
 */
export function verifiedCaller(flight: InFlight): string | undefined {
  const account = requests.get(flight)?.state.account;
  if (!account) return undefined;
  // The method goes with the caller, so the store's access line names it (`assertedMethod`).
  return `${account.mailbox.address}; method=${account.kerberos === true ? 'kerberos' : account.scheme}`;
}

/**
 * The account this server verified on the request's connection, and whether from a Kerberos ticket
 * (kerberos-edge.ts reads and sets it).
 */
export function connectionAccount(
  flight: InFlight,
): { readonly mailbox: Mailbox; readonly kerberos: boolean } | undefined {
  const account = requests.get(flight)?.state.account;
  return account && { mailbox: account.mailbox, kerberos: account.kerberos === true };
}

/** This server verified `mailbox` from a Kerberos ticket on the request's connection (kerberos-edge.ts). */
export function setKerberosAccount(flight: InFlight, mailbox: Mailbox, login: string): void {
  const w = requests.get(flight);
  if (!w) return;
  w.state.handshake?.close();
  delete w.state.handshake;
  w.state.account = { mailbox, login, scheme: 'negotiate', kerberos: true };
}

function stateOf(socket: Socket): ConnectionState {
  const existing = states.get(socket);
  if (existing) return existing;
  const created: ConnectionState = { socket, pins: new Map(), busy: 0, closing: false };
  states.set(socket, created);
  // The client connection is gone: its upstream connections and its handshake go with it.
  socket.once('close', () => {
    for (const client of created.pins.values()) void client.destroy().catch(() => undefined);
    created.pins.clear();
    created.handshake?.close();
    delete created.handshake;
  });
  return created;
}

/**
 * The mailbox to route on and, when this server verified the connection's account earlier, the caller.
 * Undefined when the request has been answered (a malformed token: 400; the directory down: 503).
 */
export async function windowsRoute(
  ctx: ServerContext,
  flight: InFlight,
  id: Identity,
  directoryDown: (err: unknown) => Promise<void>,
): Promise<{ mailbox: Mailbox | undefined; caller: Mailbox | undefined } | undefined> {
  const { record } = flight;
  const parsed = parseWindowsAuthorization(flight.req.headers.authorization);
  if (isWindowsAuthInvalid(parsed)) {
    // What was wrong, never the token (docs/security.md "Windows authentication").
    ctx.logger.warn(
      {
        reqId: record.reqId,
        server: ctx.server.name,
        code: 'CX_IDENTITY_WINDOWS_AUTH_MALFORMED',
        reason: parsed.reason,
      },
      'windows authentication token refused',
    );
    refuse(flight, 'CX_IDENTITY_WINDOWS_AUTH_MALFORMED', { connection: 'close' });
    return undefined;
  }
  // A virtual directory that does not offer the method (`servers[].authentication`; Basic alone when the estate
  // says nothing) refuses it as IIS does: 401 with what it offers, nothing passed on.
  if (parsed !== undefined && !offeredMethods(ctx.server, flight.protocol).includes(parsed.scheme)) {
    offerChallenges(flight, ctx, 'CX_AUTH_REQUIRED');
    return undefined;
  }
  const state = stateOf(flight.req.socket);
  const request: WindowsRequest = { token: parsed, state };
  requests.set(flight, request);
  const setRecord = record as { authMethod?: AuthMethodUsed; routedBy?: RoutedBy; user?: string };
  if (parsed !== undefined) state.scheme = parsed.scheme;
  setRecord.authMethod =
    parsed?.mechanism === 'kerberos' || (parsed === undefined && state.account?.kerberos === true)
      ? 'kerberos'
      : (parsed?.scheme ?? state.account?.scheme ?? state.scheme ?? 'none');
  if (parsed?.mechanism === 'ntlm' && parsed.user !== undefined)
    setRecord.user = parsed.domain === undefined ? parsed.user : `${parsed.domain}\\${parsed.user}`;
  try {
    const found = await routingMailbox(ctx, flight, id, parsed, state);
    request.routedBy = found.by;
    setRecord.routedBy = found.by;
    if (found.mailbox) request.mailbox = found.mailbox;
    return { mailbox: found.mailbox, caller: state.account?.mailbox };
  } catch (err) {
    await directoryDown(err);
    return undefined;
  }
}

/** The first input that names a mailbox, in the order docs/security.md "Windows authentication" gives. */
async function routingMailbox(
  ctx: ServerContext,
  flight: InFlight,
  id: Identity,
  token: WindowsAuthToken | undefined,
  state: ConnectionState,
): Promise<{ mailbox: Mailbox | undefined; by: RoutedBy }> {
  if (id.kind === 'user' && id.source !== 'basic-auth' && id.source !== 'logon-form') {
    const by: RoutedBy =
      id.source === 'anchor-header'
        ? 'x-anchormailbox'
        : id.source === 'activesync-query'
          ? 'activesync-user'
          : 'autodiscover-body';
    const mailbox = await ctx.directory.findMailbox(id.user);
    // Autodiscover keeps its schema's own answer for an unknown address (docs/protocols.md §4.2).
    if (mailbox || flight.protocol === 'autodiscover') return { mailbox, by };
  }
  // The OAB URL names an address book, not a mailbox: a client's `X-AnchorMailbox` routes the handshake
  // (docs/auth.md, OAB-1), read as EWS reads it.
  const anchor = id.kind === 'oab' ? anchoredIdentity(flight.head) : undefined;
  if (anchor?.kind === 'user') {
    const mailbox = await ctx.directory.findMailbox(anchor.user);
    if (mailbox) return { mailbox, by: 'x-anchormailbox' };
  }
  if (id.kind === 'mailbox-guid') {
    const address = guidsOf(ctx.index).get(id.guid);
    const mailbox = address === undefined ? undefined : await ctx.directory.findMailbox(address);
    if (mailbox) return { mailbox, by: id.source === 'mailbox-id' ? 'mapi-mailboxid' : 'rpc-target' };
  }
  if (id.kind === 'server') {
    const address = onServerOf(ctx.index).get(id.server);
    const mailbox = address === undefined ? undefined : await ctx.directory.findMailbox(address);
    if (mailbox) return { mailbox, by: 'rpc-target' };
  }
  if (state.account) return { mailbox: state.account.mailbox, by: 'ntlm-user' };
  if (token?.mechanism === 'ntlm' && token.message === 'authenticate' && token.user !== undefined) {
    // As the directory looks logins up: a UPN as it is, else DOMAIN\user.
    const login =
      token.user.includes('@') || token.domain === undefined ? token.user : `${token.domain}\\${token.user}`;
    const mailbox = await ctx.directory.findMailbox(login);
    if (mailbox) return { mailbox, by: 'ntlm-user' };
  }
  if (state.route) return { mailbox: state.route.mailbox, by: 'connection' };
  const fallback = defaultMailbox(ctx.index, ctx.server, flight.listener.role);
  return {
    mailbox: fallback === undefined ? undefined : await ctx.directory.findMailbox(fallback),
    by: 'default',
  };
}

const guidMaps = new WeakMap<EstateIndex, Map<string, string>>();

/** Mailbox GUID (the MAPI `MailboxId`, the 2013 RPC target) to address, for the estate's users, built once. */
function guidsOf(index: EstateIndex): Map<string, string> {
  let map = guidMaps.get(index);
  if (!map) {
    map = new Map();
    for (const u of index.estate.users) map.set(mailboxGuid(u.address), u.address);
    guidMaps.set(index, map);
  }
  return map;
}

const serverMaps = new WeakMap<EstateIndex, Map<string, string>>();

/** A legacy RPC target (a mailbox server's FQDN or name) to a mailbox on it: the route is the server's. */
function onServerOf(index: EstateIndex): Map<string, string> {
  let map = serverMaps.get(index);
  if (!map) {
    map = new Map();
    for (const u of index.estate.users) {
      const server = index.server(u.mailboxServer);
      if (!server) continue;
      for (const name of [server.fqdn.toLowerCase(), server.name.toLowerCase()])
        if (!map.has(name)) map.set(name, u.address);
    }
    serverMaps.set(index, map);
  }
  return map;
}

/**
 * The default next hop of a handshake nothing routes (docs/security.md "Windows authentication"): a mailbox on
 * this server's own site's first mailbox server of its version (a front end), or on this server itself (a
 * mailbox server). Its address, or undefined when the estate has none there.
 */
function defaultMailbox(index: EstateIndex, server: Server, role: 'cas' | 'mailbox'): string | undefined {
  const target =
    role === 'mailbox' ? server : index.mailboxServersIn(server.site, familyOf(server.version))[0];
  if (!target) return undefined;
  return index.estate.users.find((u) => u.mailboxServer === target.name)?.address;
}

/**
 * This client connection's own upstream connection to `origin`, created on first use; or undefined after the
 * request has been answered here: its AUTHENTICATE routes elsewhere than its NEGOTIATE went (401, and both
 * connections closed; docs/errors.md CX_AUTH_WINDOWS_REROUTED).
 */
export function pinnedFor(
  ctx: ServerContext,
  flight: InFlight,
  origin: string,
): { client: Client; release: () => void } | undefined {
  const w = requests.get(flight);
  if (!w) return undefined;
  const { state, token } = w;
  const handshakeOrigin = state.route?.origin;
  if (
    token?.mechanism === 'ntlm' &&
    token.message === 'authenticate' &&
    handshakeOrigin !== undefined &&
    handshakeOrigin !== origin &&
    state.pins.has(handshakeOrigin)
  ) {
    ctx.logger.warn(
      {
        reqId: flight.record.reqId,
        server: ctx.server.name,
        code: 'CX_AUTH_WINDOWS_REROUTED',
        routedBy: w.routedBy,
        handshakeTo: handshakeOrigin,
        routedTo: origin,
      },
      'the NTLM AUTHENTICATE routes to another next hop than its NEGOTIATE went to: the client must send X-AnchorMailbox',
    );
    const pinned = state.pins.get(handshakeOrigin);
    state.pins.delete(handshakeOrigin);
    void pinned?.destroy().catch(() => undefined);
    delete state.route;
    offerChallenges(flight, ctx, 'CX_AUTH_WINDOWS_REROUTED', { connection: 'close' });
    return undefined;
  }
  if (w.mailbox) state.route = { mailbox: w.mailbox, origin };
  let client = state.pins.get(origin);
  if (!client) {
    const created = ctx.upstreams.pinned(origin);
    client = created;
    state.pins.set(origin, created);
    // The next hop closed it (or could not be reached): the client connection is closed too, after the answer
    // in progress, so the client starts a new handshake rather than ride an unauthenticated socket.
    const gone = (): void => {
      if (state.pins.get(origin) === created) state.pins.delete(origin);
      ctx.upstreams.endChannel(created);
      if (state.busy === 0) state.socket.end();
      else state.closing = true;
    };
    created.once('disconnect', gone);
    created.once('connectionError', gone);
  }
  state.busy++;
  return {
    client,
    release: () => {
      state.busy--;
      if (state.closing && state.busy === 0) state.socket.end();
    },
  };
}

/**
 * The methods a server offers for a protocol (`servers[].authentication`, docs/config.md): Basic alone when
 * nothing is configured. A server that would have to verify NTLM itself without a verifier cannot offer it.
 */
export function offeredMethods(server: Server, protocol: Protocol | undefined): readonly AuthMethod[] {
  const listed = protocol === undefined ? undefined : server.authentication?.[protocol];
  return listed === undefined || listed.length === 0 ? ['basic'] : listed;
}

/**
 * 401 with one `WWW-Authenticate` field per method offered, in Exchange's order: Negotiate, NTLM, Basic
 * (docs/security.md "Windows authentication").
 */
export function offerChallenges(
  flight: InFlight,
  ctx: ServerContext,
  code: ErrorCode,
  extra: Record<string, string> = {},
  methods: readonly AuthMethod[] = offeredMethods(ctx.server, flight.protocol),
): void {
  refuse(flight, code, { ...extra, 'www-authenticate': challengeFields(flight, methods) });
}

/** The `WWW-Authenticate` fields for `methods`. */
export function challengeFields(flight: InFlight, methods: readonly AuthMethod[]): string[] {
  const realm = (hostOfHeader(flight.head.host) || flight.record.server).replace(/["\\]/g, '');
  const out: string[] = [];
  if (methods.includes('negotiate')) out.push('Negotiate');
  if (methods.includes('ntlm')) out.push('NTLM');
  if (methods.includes('basic') || out.length === 0) out.push(`Basic realm="${realm}"`);
  return out;
}

/**
 * This hop answers from a mailbox store, or hands over to one: it terminates the handshake with the domain's
 * verifier (state per client connection) and, once the account is verified, goes on as after a Basic sign-in
 * (`then`). The lockout counts a failed Windows logon like a wrong password. Without a verifier, or when the
 * server does not offer the method, 401 offering what it can.
 */
export async function terminate(
  ctx: ServerContext,
  flight: InFlight,
  then: (caller: Mailbox) => Promise<void>,
): Promise<void> {
  const w = requests.get(flight);
  const methods = offeredMethods(ctx.server, flight.protocol);
  const verifier = ctx.windowsAuth;
  const own: readonly AuthMethod[] = verifier ? methods : methods.filter((m) => m === 'basic');
  const token = w?.token;
  if (
    !w ||
    token === undefined ||
    token.mechanism !== 'ntlm' ||
    !verifier ||
    !methods.includes(token.scheme)
  ) {
    if (w?.state.account) {
      // A later request on the connection this server verified: the same caller, named on its line.
      (flight.record as { user?: string }).user = w.state.account.mailbox.address;
      return then(w.state.account.mailbox);
    }
    offerChallenges(flight, ctx, token === undefined ? 'CX_AUTH_REQUIRED' : 'CX_AUTH_FAILED', {}, own);
    return;
  }
  const { state } = w;
  const record = flight.record as { auth?: string; user?: string };
  const wrap = (t: Buffer | Uint8Array, done: boolean): string =>
    `${token.scheme === 'negotiate' ? 'Negotiate' : 'NTLM'} ${Buffer.from(
      token.wrapping === 'spnego' ? negTokenResp(done ? 'accept-completed' : 'accept-incomplete', t) : t,
    ).toString('base64')}`;
  if (token.message === 'negotiate') {
    state.handshake?.close();
    delete state.account;
    state.handshake = verifier.begin();
  }
  const handshake = state.handshake;
  if (!handshake) {
    offerChallenges(flight, ctx, 'CX_AUTH_FAILED', {}, own);
    return;
  }
  let attempt: Awaited<ReturnType<NonNullable<ServerContext['lockout']>['check']>> | undefined;
  if (token.message === 'authenticate') {
    const login = record.user ?? '';
    attempt = await ctx.lockout?.check(ctx.index.mailbox(login)?.address ?? login, sourceAddress(flight));
    if (attempt?.refused !== undefined) {
      record.auth = 'locked';
      endHandshake(state);
      offerChallenges(flight, ctx, 'CX_AUTH_FAILED', {}, own);
      return;
    }
  }
  let step: Awaited<ReturnType<WindowsAuthHandshake['step']>>;
  try {
    step = await handshake.step(Buffer.from(token.ntlm));
  } catch (err) {
    // The verifier could not be asked (the domain controller's helper gone): a temporary failure, as when the
    // directory is down, never a 401 (the password may be right).
    endHandshake(state);
    authUnavailable(ctx, flight, err, 'windows authentication verifier unavailable');
    return;
  }
  if (step.kind === 'continue') {
    // The handshake goes on on this connection: a small body sent with the leg is read, not left to close it.
    if (!flight.req.complete && flight.body === undefined) {
      const body = await readBody(flight.req, handshakeBodyBytes);
      if (body !== undefined) flight.body = body;
    }
    refuse(flight, 'CX_AUTH_REQUIRED', { 'www-authenticate': wrap(step.token, false) });
    // This hop answered the leg: its record says on which connection (which upstream connection of the hop before).
    observe(ctx, flight, {});
    return;
  }
  endHandshake(state);
  if (step.kind === 'failed') {
    record.auth = 'bad_credentials';
    if (attempt) await ctx.lockout?.failed(attempt);
    offerChallenges(flight, ctx, 'CX_AUTH_FAILED', {}, own);
    return;
  }
  const caller = await ctx.directory.findMailbox(step.account);
  if (!caller) {
    record.auth = 'bad_credentials';
    offerChallenges(flight, ctx, 'CX_AUTH_FAILED', {}, own);
    return;
  }
  record.auth = 'ok';
  // As after a Basic sign-in (sign-in.ts): the TCP peer becomes a known source of the edge.
  ctx.knownSources?.add(clientAddressOf(flight.req.socket));
  if (attempt) await ctx.lockout?.succeeded(attempt);
  state.account = { mailbox: caller, login: step.account, scheme: token.scheme };
  record.user = caller.address;
  return then(caller);
}

/** The largest body of a handshake leg read to keep the connection (clients send none, or the request's). */
const handshakeBodyBytes = 64 * 1024;

function endHandshake(state: ConnectionState): void {
  state.handshake?.close();
  delete state.handshake;
}

/**
 * What Windows authentication needs could not be asked (the verifier's helper, the acceptor, the directory): a
 * temporary failure, 503 with `Retry-After` and a warning saying which, never a 401 (the credentials may be right).
 */
export function authUnavailable(ctx: ServerContext, flight: InFlight, err: unknown, what: string): void {
  flight.record.auth = 'error';
  ctx.logger.warn({ reqId: flight.record.reqId, server: ctx.server.name, err: (err as Error).name }, what);
  refuse(flight, 'CX_DIRECTORY_UNAVAILABLE', { 'retry-after': String(ctx.retryAfterSeconds ?? 30) });
}
