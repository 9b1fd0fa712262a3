/**
 * Autodiscover answers on the wire, rendered from the engine's `AutodiscoverAnswer` (core/autodiscover):
 * POX for Outlook (response schema 2006a) and for mobile devices (mobilesync), and the v2 JSON form
 * (protocol-facts §4.1, §4.2, §4.4). The SOAP service and the error answers of each schema come with the
 * Autodiscover issue; until then a SOAP request gets a SOAP fault saying so.
 */
import type { AutodiscoverAnswer } from '../core/autodiscover/answer.ts';
import type { AutodiscoverRequest } from '../core/protocols/autodiscover.ts';

/** A rendered answer: status, content type and body. */
export interface AutodiscoverReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

const responseNs = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';
const outlookNs = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';
const mobileNs = 'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006';

/** XML text escaping for element content and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : '&apos;',
  );
}

const el = (name: string, value: string | undefined): string =>
  value === undefined ? '' : `<${name}>${xmlEscape(value)}</${name}>`;

const hostOf = (url: string | undefined): string | undefined => {
  if (url === undefined) return undefined;
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
};

/** The answer in the schema the client asked for. */
export function renderAutodiscover(request: AutodiscoverRequest, a: AutodiscoverAnswer): AutodiscoverReply {
  switch (request.schema) {
    case 'mobilesync':
      return xml(mobile(a));
    case 'outlook':
      return xml(outlook(a));
    case 'json':
      return json(request.protocol, a);
    case 'soap':
      return {
        status: 500,
        contentType: 'text/xml; charset=utf-8',
        body:
          '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>' +
          '<faultcode>s:Server</faultcode><faultstring>The Autodiscover SOAP service is not served by this front end yet; use POX (autodiscover.xml).</faultstring>' +
          '</s:Fault></s:Body></s:Envelope>',
      };
  }
}

const xml = (body: string): AutodiscoverReply => ({
  status: 200,
  contentType: 'text/xml; charset=utf-8',
  body: `<?xml version="1.0" encoding="utf-8"?>${body}`,
});

/** Mobile devices get one MobileSync server: the external ActiveSync URL (protocol-facts §4.1, flows.md EAS-3B). */
function mobile(a: AutodiscoverAnswer): string {
  const url = a.external.activesync ?? a.internal.activesync;
  return (
    `<Autodiscover xmlns="${responseNs}"><Response xmlns="${mobileNs}"><Culture>en:us</Culture>` +
    `<User>${el('DisplayName', a.displayName)}${el('EMailAddress', a.address)}</User>` +
    `<Action><Settings><Server><Type>MobileSync</Type>${el('Url', url)}${el('Name', url)}</Server></Settings></Action>` +
    `</Response></Autodiscover>`
  );
}

/** Outlook: EXCH (inside), EXPR (Outlook Anywhere from outside) and WEB (OWA) blocks (protocol-facts §4.2). */
function outlook(a: AutodiscoverAnswer): string {
  const i = a.internal;
  const e = a.external;
  const exch =
    `<Protocol><Type>EXCH</Type>${el('Server', a.mailboxServerFqdn)}` +
    `${el('ASUrl', i.activesync)}${el('EwsUrl', i.ews)}${el('OOFUrl', i.ews)}${el('OABUrl', i.oab)}</Protocol>`;
  const expr =
    e.rpc === undefined
      ? ''
      : `<Protocol><Type>EXPR</Type>${el('Server', hostOf(e.rpc))}<SSL>On</SSL><AuthPackage>Basic</AuthPackage>` +
        `${el('ASUrl', e.activesync)}${el('EwsUrl', e.ews)}${el('OOFUrl', e.ews)}${el('OABUrl', e.oab)}</Protocol>`;
  const owa = (url: string | undefined): string =>
    url === undefined ? '' : `<OWAUrl AuthenticationMethod="Fba">${xmlEscape(url)}</OWAUrl>`;
  const web =
    `<Protocol><Type>WEB</Type><Internal>${owa(i.owa)}</Internal>` +
    `<External>${owa(e.owa)}</External></Protocol>`;
  return (
    `<Autodiscover xmlns="${responseNs}"><Response xmlns="${outlookNs}">` +
    `<User>${el('DisplayName', a.displayName)}${el('LegacyDN', a.legacyDn)}${el('AutoDiscoverSMTPAddress', a.address)}</User>` +
    `<Account><AccountType>email</AccountType><Action>settings</Action>${exch}${expr}${web}</Account>` +
    `</Response></Autodiscover>`
  );
}

/** Autodiscover v2: `{Protocol, Url}` for the protocol asked (protocol-facts §4.4). */
function json(protocol: string | undefined, a: AutodiscoverAnswer): AutodiscoverReply {
  const p = (protocol ?? '').toLowerCase();
  const url =
    p === 'activesync'
      ? a.external.activesync
      : p === 'ews'
        ? a.external.ews
        : p === 'autodiscoverv1'
          ? (a.external.ews ?? '').replace(/\/EWS\/Exchange\.asmx$/i, '/Autodiscover/Autodiscover.xml')
          : undefined;
  if (!url) {
    return {
      status: 400,
      contentType: 'application/json; charset=utf-8',
      body: JSON.stringify({
        ErrorCode: 'InvalidProtocol',
        ErrorMessage: `The protocol '${protocol ?? ''}' is not valid.`,
      }),
    };
  }
  return {
    status: 200,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify({ Protocol: protocol, Url: url }),
  };
}
