/**
 * A request in flight through this server: the one object the pipeline's steps share (no closures per
 * step), and this server's record of what it did with it (the hop the lab's recorder reads).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { RequestHead } from '../core/protocols/request-head.ts';
import type { AccessRecord } from '../observability/log.ts';
import type { ListenerInfo, ServerContext } from './contracts.ts';
import type { PeerTrust } from './peer-trust.ts';

/** Per-request state: the request, its answer, the access record being filled in, and what was learnt. */
export interface InFlight {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly head: RequestHead;
  readonly record: Mutable<AccessRecord>;
  readonly started: number;
  /** Who the TCP peer proved to be, decided once for this request (peer-trust.ts). */
  readonly peer: PeerTrust;
  /** The client's address by the one rule (peer-trust.ts `clientAddress`): location and the lockout's source. */
  readonly clientAddress: string | undefined;
  readonly listener: ListenerInfo;
  body?: Uint8Array;
  protocol?: Protocol;
  /** Ends the request's count in `coexist_inflight_requests`, once it is classified. */
  done?: () => void;
}

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Record this server's part of the flow. */
export function observe(
  ctx: ServerContext,
  flight: InFlight,
  hop: { readonly to?: string; readonly via?: string; readonly url?: string },
): void {
  if (!ctx.observer) return;
  const r = flight.record;
  ctx.observer.record({
    requestId: r.reqId,
    server: ctx.server.name,
    implementation: ctx.implementation,
    role: flight.listener.role,
    ...(flight.protocol === undefined ? {} : { protocol: flight.protocol }),
    ...(r.user === undefined ? {} : { user: r.user }),
    ...(r.authMethod === undefined ? {} : { authMethod: r.authMethod }),
    ...(r.routedBy === undefined ? {} : { routedBy: r.routedBy }),
    // The socket is detached from a request whose answer ended first (a long channel): no connection then.
    ...(flight.req.socket
      ? { connection: `${flight.req.socket.remoteAddress}|${flight.req.socket.remotePort}` }
      : {}),
    ...(r.decision === undefined ? {} : { decision: r.decision }),
    ...hop,
    ...(r.status === undefined ? {} : { status: r.status }),
    outcome: r.outcome,
  });
}
