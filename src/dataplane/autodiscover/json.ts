/** Autodiscover v2, the JSON form (docs/protocols.md §4.4): `{Protocol, Url}` per protocol, and its errors. */
import type { AutodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import type { AutodiscoverError, AutodiscoverReply, RenderContext } from './context.ts';
import { hostIn } from './context.ts';
import { soapCodes } from './soap.ts';

const jsonType = 'application/json; charset=utf-8';

const jsonReply = (status: number, value: unknown): AutodiscoverReply => ({
  status,
  contentType: jsonType,
  body: JSON.stringify(value),
});

/** Autodiscover v2: `{Protocol, Url}` for ActiveSync, EWS or AutodiscoverV1, case-insensitively (§4.4). */
export function jsonAnswer(
  protocol: string | undefined,
  a: AutodiscoverAnswer,
  ctx: RenderContext,
): AutodiscoverReply {
  const p = (protocol ?? '').toLowerCase();
  const ewsHost = hostIn(a.external.ews);
  const [name, url] =
    p === 'activesync'
      ? ['ActiveSync', a.external.activesync]
      : p === 'ews'
        ? ['EWS', a.external.ews]
        : p === 'autodiscoverv1'
          ? [
              'AutodiscoverV1',
              ctx.autodiscoverUrl ??
                (ewsHost === undefined ? undefined : `https://${ewsHost}/Autodiscover/Autodiscover.xml`),
            ]
          : [undefined, undefined];
  if (name === undefined)
    return jsonReply(400, {
      ErrorCode: 'InvalidProtocol',
      ErrorMessage: `The given protocol value '${protocol ?? ''}' is invalid. Supported values are 'ActiveSync,Ews,AutodiscoverV1'.`,
    });
  if (url === undefined)
    return jsonReply(404, {
      ErrorCode: 'SettingIsNotAvailable',
      ErrorMessage: `No external ${name} URL is configured for the user.`,
    });
  return jsonReply(200, { Protocol: name, Url: url });
}

/**
 * JSON errors: the `{ErrorCode, ErrorMessage}` body of §4.4's InvalidProtocol with the SOAP ErrorCode names
 * (§4.3); an unknown user or domain is 404, as coexist's CX_ROUTE_UNKNOWN_MAILBOX (**I**: Exchange's own v2
 * answer for unknown users is not documented).
 */
export function jsonError(error: AutodiscoverError): AutodiscoverReply {
  const e = soapCodes[error];
  const status =
    error === 'unknown-user' || error === 'not-served'
      ? 404
      : error === 'server-busy'
        ? 503
        : error === 'internal'
          ? 500
          : 400;
  return jsonReply(status, { ErrorCode: e.code, ErrorMessage: e.message });
}
