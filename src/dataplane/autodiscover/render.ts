/**
 * Autodiscover answers on the wire, rendered from the engine's `AutodiscoverAnswer` (core/autodiscover):
 * POX for Outlook (response schema 2006a, docs/protocols.md §4.2) and for mobile devices (mobilesync, §4.1
 * end), SOAP GetUserSettings and GetDomainSettings (§4.3), the v2 JSON form (§4.4), and the error answer of
 * each. Every value goes through `escapeXml` (or `JSON.stringify`); nothing the client sent is concatenated
 * into markup unescaped. One module per dialect (pox, soap, json); this one picks the dialect.
 */
import type { AutodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import type { AutodiscoverDialect, AutodiscoverRequest } from '../../core/protocols/autodiscover.ts';
import type {
  AutodiscoverError,
  AutodiscoverRedirect,
  AutodiscoverReply,
  ErrorContext,
  RenderContext,
} from './context.ts';
import { jsonAnswer, jsonError } from './json.ts';
import { poxAnswer, poxErrorAnswer, poxRedirect } from './pox.ts';
import { soapAnswer, soapError, soapRedirect } from './soap.ts';

/** The answer in the dialect the client asked for, for the mailbox the request was routed on (`answer`). */
export function renderAutodiscover(
  request: AutodiscoverRequest,
  answer: AutodiscoverAnswer,
  ctx: RenderContext,
): AutodiscoverReply {
  switch (request.schema) {
    case 'mobilesync':
    case 'outlook':
      return poxAnswer(request, answer, ctx);
    case 'json':
      return jsonAnswer(request.protocol, answer, ctx);
    case 'soap':
      return soapAnswer(request, answer, ctx);
  }
}

/**
 * The error answer of each dialect (HTTP 200 for POX and SOAP, as Exchange answers them): POX `Response/Error`
 * with ErrorCode 500/600/601/603 (§4.2), mobilesync `Response/Error` 600/601 or `Action/Error` (§4.1 end),
 * SOAP Response- or UserResponse-level ErrorCodes (§4.3), a JSON `{ErrorCode, ErrorMessage}` with a 4xx/5xx.
 */
export function renderAutodiscoverError(
  request: AutodiscoverRequest | { readonly schema: AutodiscoverDialect },
  error: AutodiscoverError,
  ctx: ErrorContext,
): AutodiscoverReply {
  switch (request.schema) {
    case 'outlook':
    case 'mobilesync':
      return poxErrorAnswer(request, error, ctx);
    case 'json':
      return jsonError(error);
    case 'soap':
      return soapError(request, error, ctx);
  }
}

/**
 * The redirect of each dialect (MS-OXDSCLI, docs/protocols.md §4.2 and §4.3): POX outlook `Action` redirectUrl
 * or redirectAddr; mobilesync `Action/Redirect` with the new address, and for a new URL the HTTP 302 the
 * spec prefers; SOAP a `UserResponse` with ErrorCode RedirectUrl / RedirectAddress and the `RedirectTarget`;
 * JSON has no redirect form, so it answers like a domain not served.
 */
export function renderAutodiscoverRedirect(
  request: AutodiscoverRequest,
  to: AutodiscoverRedirect,
  ctx: ErrorContext,
): AutodiscoverReply {
  switch (request.schema) {
    case 'outlook':
    case 'mobilesync':
      return poxRedirect(request.schema, to);
    case 'soap':
      return soapRedirect(request, to, ctx);
    case 'json':
      return renderAutodiscoverError(request, 'not-served', ctx);
  }
}
