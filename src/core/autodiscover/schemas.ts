/**
 * The Autodiscover schema and namespace URIs, once: the POX request and response schemas (docs/protocols.md
 * §4.2, mobilesync §4.1 end), the SOAP service's namespace and the envelopes around it (§4.3). Used by the request
 * scanner here in core, by the answers the data plane renders, and by the shipped clients. Pure data.
 */

/** POX request schema of Outlook (and EWS clients): the root namespace of their request. */
export const outlookRequestSchema =
  'http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006';
/** POX response schema Outlook asks for in AcceptableResponseSchema: the `Response` of the answer. */
export const outlookResponseSchema =
  'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';
/** POX request schema of ActiveSync devices (mobilesync): the root namespace of their request. */
export const mobileSyncRequestSchema =
  'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006';
/** POX response schema ActiveSync devices ask for: the `Response` of the mobilesync answer. */
export const mobileSyncResponseSchema =
  'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006';
/** The outer `Autodiscover` element of every POX answer (and of its error answers). */
export const autodiscoverResponseSchema =
  'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';

/** The SOAP Autodiscover service's namespace (GetUserSettings, GetDomainSettings). */
export const autodiscoverSoapNs = 'http://schemas.microsoft.com/exchange/2010/Autodiscover';
/** The prefix of a SOAP Autodiscover WS-Addressing Action; the operation name follows. */
export const autodiscoverSoapActionBase = `${autodiscoverSoapNs}/Autodiscover/`;
/** The SOAP 1.1 envelope. */
export const soap11EnvelopeNs = 'http://schemas.xmlsoap.org/soap/envelope/';
/** The SOAP 1.2 envelope. */
export const soap12EnvelopeNs = 'http://www.w3.org/2003/05/soap-envelope';
/** WS-Addressing (the `Action` and `To` headers of a SOAP Autodiscover message). */
export const wsAddressingNs = 'http://www.w3.org/2005/08/addressing';
/** XML Schema instance (`xsi:type`, `xsi:nil` in SOAP Autodiscover answers). */
export const xmlSchemaInstanceNs = 'http://www.w3.org/2001/XMLSchema-instance';
