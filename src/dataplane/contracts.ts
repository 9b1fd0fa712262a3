/**
 * What the data plane declares for its consumers (architecture.md: `dataplane` declares what it needs from
 * the lab and never imports it): the server context a node runs with, the hop records it emits, the
 * mailbox responder and stand-in store endpoints the lab supplies, and the listener a request came in on.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Policies, Server } from '../core/estate/estate.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { Decision } from '../core/routing/decision.ts';
import type { Role } from '../core/routing/decide.ts';
import type { Directory } from '../directory/directory.ts';
import type { AccessRecord, ImpersonationResult, Logger } from '../observability/log.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { TrustedProxies } from './peer-trust.ts';
import type { Lockout } from './lockout.ts';
import type { KnownSources } from './edge-limits.ts';
import type { HealthMonitor } from './health.ts';
import type { NextHops } from './next-hops.ts';
import type { HeldPings } from './drain.ts';
import type { OwaSessions } from './owa-session.ts';
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
  /** How the request authenticated here, and which input routed it (the access line's; docs/security.md). */
  readonly authMethod?: AccessRecord['authMethod'];
  readonly routedBy?: string;
  /**
   * The TCP connection the request arrived on, as this server saw it (`address|port` of its peer): which upstream
   * connection of the previous hop carried it (Windows authentication pins one per client connection, docs/auth.md).
   */
  readonly connection?: string;
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

/**
 * Whom an EWS `ExchangeImpersonation` header names: its `ConnectingSID`'s one child, as sent (MS-OXWSCDATA
 * ConnectingSIDType; docs/security.md "Mailbox access").
 */
export interface ConnectingSid {
  readonly kind: 'PrincipalName' | 'SID' | 'PrimarySmtpAddress' | 'SmtpAddress';
  readonly value: string;
}

/** The mailbox server's decision on an `ExchangeImpersonation` header: the mailbox to serve as its owner, or why not. */
export type ImpersonationVerdict =
  | {
      readonly kind: 'allowed';
      readonly mailbox: { readonly address: string; readonly displayName: string };
    }
  | { readonly kind: Exclude<ImpersonationResult, 'allowed'> };

/**
 * What a mailbox server answers with when a request ends at it (the lab's mailbox simulators). It is told
 * whose mailbox the request is for, who is asking (the caller this server authenticated) and what the
 * directory grants the caller on that mailbox; with `access: 'denied'` it must answer the protocol's own
 * access-denied answer and nothing of the mailbox (docs/security.md "Mailbox access").
 */
export interface MailboxResponder {
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    ctx: {
      readonly serverName: string;
      readonly version: Server['version'];
      readonly protocol: Protocol;
      readonly mailbox: { readonly address: string; readonly displayName: string };
      readonly caller: { readonly address: string; readonly displayName: string };
      /** The caller's own mailbox, one granted (full access, delegate over EWS), or denied. */
      readonly access: 'owner' | 'full-access' | 'delegate' | 'denied';
      /**
       * EWS: decide an `ExchangeImpersonation` header the store found in the request (and record it on the
       * access line). Only on `allowed` may the store answer, as that mailbox's owner; otherwise it answers
       * Exchange's error and nothing of any mailbox, whatever `access` says (docs/security.md "Mailbox access").
       */
      readonly impersonate?: (target: ConnectingSid) => Promise<ImpersonationVerdict>;
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
  /**
   * Verifies the Windows authentication (NTLM, and NTLM inside Negotiate) of the clients this server
   * terminates, against the domain (the lab: Samba's `ntlm_auth` on the lab's domain controller).
   * Absent: this server cannot terminate Windows authentication, only pass it through (docs/security.md
   * "Windows authentication").
   */
  readonly windowsAuth?: WindowsAuthVerifier;
  /**
   * Accepts Kerberos tickets for the front ends' service principal (`coexist serve --keytab`; the lab's ASA):
   * this server terminates a Negotiate carrying Kerberos where the next hop is coexist itself
   * (windows-auth.ts `kerberosAtEdge`). Absent: a Kerberos token is passed through unchanged.
   */
  readonly kerberos?: WindowsAuthVerifier;
  /**
   * Load balancers in front, by address, whose `X-Forwarded-*` are believed (`coexist serve --trusted-proxy`);
   * never the estate's servers, which prove themselves by certificate (`estateServers`).
   */
  readonly trustedProxies?: TrustedProxies;
  /**
   * The estate's servers by FQDN (lower case; peer-trust.ts `estateServers`), when the listeners ask for client
   * certificates against the internal CA: a peer whose verified certificate names one with clientAuth is that
   * server, and its `X-Forwarded-*`, `X-Coexist-Hops` and request id are believed. Absent: no peer is a server.
   */
  readonly estateServers?: ReadonlyMap<string, string>;
  /** Source networks of internal clients (docs/protocols.md §2.4); everyone else is external. */
  readonly internalNetworks?: BlockList;
  /** `coexist`, or a simulator's name (`simulator: Exchange 2007 CAS`). */
  readonly implementation: string;
  /** `Retry-After` for 503 answers (seconds). */
  readonly retryAfterSeconds?: number;
  /** Per-protocol idle timeouts (tests). */
  readonly idleTimeoutsMs?: Readonly<Partial<Record<Protocol, number>>>;
  /** Mailbox servers whose protocol endpoint is not where the estate's name and path say (see the type). */
  readonly storeEndpoints?: StoreEndpoints;
  /** The extranet smart lockout in front of every password check (docs/security.md); absent: none. */
  readonly lockout?: Lockout;
  /** Where someone signed in lately: the edge keeps its reserved places for them (edge-limits.ts). */
  readonly knownSources?: KnownSources;
  /** The health pages' precomputed answers (docs/operations.md "Health pages"); absent: no pages. */
  readonly health?: HealthMonitor;
  /** The next hops' states and the choice among equivalent servers (docs/operations.md "Next hops"). */
  readonly nextHops?: NextHops;
  /** The ActiveSync Pings being proxied, answered early when the server drains (drain.ts). */
  readonly pings?: HeldPings;
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

/**
 * Windows authentication verified against the domain, one handshake per client connection (NTLM is
 * connection-oriented: MS-NLMP). A handshake is begun when a connection's first NEGOTIATE arrives and closed
 * when the connection closes or the handshake ends.
 */
export interface WindowsAuthVerifier {
  begin(): WindowsAuthHandshake;
}

/** One handshake: tokens as they travel in `Authorization` / `WWW-Authenticate` (decoded from base64). */
export interface WindowsAuthHandshake {
  /**
   * The client's next token: NEGOTIATE gets `continue` with the CHALLENGE to send back; AUTHENTICATE gets
   * `done` with the verified account (`DOMAIN\\user`, as the domain spells it) or `failed` (a wrong password,
   * an unknown or disabled account: the client gets 401 and no reason).
   */
  step(token: Buffer): Promise<
    | { readonly kind: 'continue'; readonly token: Buffer }
    | {
        readonly kind: 'done';
        readonly account: string;
        /** The server's last token, sent back with the answer (Kerberos: the AP-REP, RFC 4559 §5). */
        readonly token?: Buffer;
      }
    | { readonly kind: 'failed'; readonly reason: string }
  >;
  /** Ends the handshake and frees what it holds (a helper process is returned to its pool). */
  close(): void;
}
