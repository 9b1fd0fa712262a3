/**
 * What a running server says of itself on its admin listener's `GET /status` (docs/operations.md "Next
 * hops"), and what `coexist status` prints: readiness, the directory, and every next hop's state. An object
 * with a `hops` array, so other sections can join it.
 */
import type { Protocol } from '../core/protocols/protocol.ts';
import type { HopStatus } from './next-hops.ts';
import type { ServerNode } from './server-node.ts';

/** The status document. */
export interface NodeStatus {
  /** This server's estate name. */
  readonly server: string;
  /** When the document was made (ISO 8601). */
  readonly at: string;
  /** What `/readyz` says. */
  readonly ready: boolean;
  readonly directory: 'up' | 'down';
  /** Protocols this server cannot serve now (the health pages that answer 503). */
  readonly unavailable: readonly { readonly role: string; readonly protocol: Protocol }[];
  /** Every next hop, by server name then URL. */
  readonly hops: readonly HopStatus[];
}

/** The status of `node` now. */
export function nodeStatus(node: ServerNode, now: () => number = Date.now): NodeStatus {
  const readiness = node.health.readiness();
  return {
    server: node.server.name,
    at: new Date(now()).toISOString(),
    ready: readiness.ready,
    directory: readiness.directory,
    unavailable: readiness.down.map((d) => ({ role: d.role, protocol: d.protocol })),
    hops: node.nextHops.status(),
  };
}
