/**
 * The data plane's public surface: header rules, upstream failure mapping, pools and the forwarder, the
 * contracts the lab implements, the bounded body reader the simulators share.
 */
export type { ForwardContext, HeaderRecord, OutgoingHeaders, ResponseContext } from './headers.ts';
export type { ClientAddressInput, PeerTrust, TrustedProxies } from './peer-trust.ts';
export { clientAddress, clientAuthOid, estateServers, peerTrust, serverNamed } from './peer-trust.ts';
export { forwardRequestHeaders, headerNames, parseHops, responseHeaders } from './headers.ts';
export type { FailureResponse, UpstreamCode, UpstreamFailure, UpstreamOutcome } from './upstream-errors.ts';
export { classifyUpstreamError, failureResponse, retryable, upstreamOutcomes } from './upstream-errors.ts';
export type { ForwardOptions, ForwardOutcome, ForwardResult, ForwardTarget } from './forward.ts';
export { forward, idleTimeoutMs } from './forward.ts';
export type { UpstreamsOptions } from './upstreams.ts';
export { Upstreams } from './upstreams.ts';
export type { CertificateEntry, Listening, ListenOptions } from './listener.ts';
export type { EdgeEvent, EdgeLimits } from './edge-limits.ts';
export { defaultEdgeLimits, EdgeGate, edgeLimits } from './edge-limits.ts';
export { sourceKey } from '../net/source.ts';
export { listen, sniContexts } from './listener.ts';
export type {
  HopObserver,
  HopRecord,
  ListenerInfo,
  MailboxResponder,
  ServerContext,
  StoreEndpoint,
  StoreEndpoints,
} from './contracts.ts';
export { createRequestHandler } from './pipeline.ts';
export { endpointUrl, nextHopUrl } from './next-hop-url.ts';
export { ClientGone, drain, readBody } from './body.ts';
export type { NodeListener, ServerNode, ServerNodeOptions } from './server-node.ts';
export type {
  Attempt,
  LockoutEvent,
  LockoutOptions,
  LockoutSettings,
  LockoutStore,
  LockScope,
} from './lockout.ts';
export { Lockout, MemoryLockoutStore, lockoutDefaults } from './lockout.ts';
export { startServerNode } from './server-node.ts';
export type {
  HealthAnswer,
  HealthMonitorOptions,
  HealthObserver,
  HealthPlan,
  HealthRule,
  HealthSettings,
  HealthTimers,
  HopTarget,
  ProtocolNeeds,
  Readiness,
} from './health.ts';
export { HealthMonitor, healthDefaults, healthPageOf, healthPlan, hopKey, vdirOf } from './health.ts';
export type { AutodiscoverError, AutodiscoverReply, RenderContext } from './autodiscover/context.ts';
export { autodiscoverHeaders } from './autodiscover/context.ts';
export { renderAutodiscover, renderAutodiscoverError } from './autodiscover/render.ts';
export type { AutodiscoverSite } from './autodiscover/service.ts';
export { answerAutodiscover, autodiscoverError } from './autodiscover/service.ts';
export type {
  HopChoice,
  HopState,
  HopStatus,
  NextHopObserver,
  NextHopSettings,
  NextHopsOptions,
} from './next-hops.ts';
export { NextHops, weight as rendezvousWeight } from './next-hops.ts';
export type { NodeStatus } from './status.ts';
export { nodeStatus } from './status.ts';
