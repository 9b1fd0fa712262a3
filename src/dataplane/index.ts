/** The data plane's public surface: header rules and the upstream failure mapping. */
export type {
  ForwardContext,
  HeaderRecord,
  OutgoingHeaders,
  ResponseContext,
  TrustedProxies,
} from './headers.ts';
export { forwardRequestHeaders, headerNames, parseHops, responseHeaders } from './headers.ts';
export type { FailureResponse, UpstreamCode, UpstreamFailure, UpstreamOutcome } from './upstream-errors.ts';
export { classifyUpstreamError, failureResponse, retryable, upstreamOutcomes } from './upstream-errors.ts';
