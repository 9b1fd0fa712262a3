/**
 * `coexist check`: a connectivity analyzer run from inside the network. The report model, expectations,
 * verdicts and rendering are pure (model, expect, fixes, render, answers); the probes do the I/O.
 */
export type {
  CheckGroup,
  CheckProtocol,
  CheckReport,
  CheckStep,
  Diagnostics,
  HopComparison,
  Hops,
  Verdict,
} from './model.ts';
export { allSteps, checkProtocols, compareHops, firstFailure, passed, worst } from './model.ts';
export type { Expectation, LegOutcome } from './expect.ts';
export { expectRequest, flowLabel, hopUrl } from './expect.ts';
export { judgeAnswer, judgeCertificate, upstreamReason } from './fixes.ts';
export { progressLine, renderReport, reportJson, summaryLine } from './render.ts';
export type { Route } from './net.ts';
export type { CheckOptions } from './session.ts';
export { runCheck } from './run.ts';
