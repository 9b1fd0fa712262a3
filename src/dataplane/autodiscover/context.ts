/**
 * What every Autodiscover dialect shares: the reply shape, the render context (who answers, for which
 * organization, how other users are looked up), the errors and redirects a request can end in, the headers
 * every answer carries, and the one way a value enters the XML (`el`, through the codec's `escapeXml`).
 */
import { escapeXml } from '../../codec/xml-escape.ts';
import type { AutodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import type { ProductVersion } from '../../core/estate/estate.ts';
import { hostOfUrl } from '../../core/host.ts';

/** A rendered answer: status, content type and body. */
export interface AutodiscoverReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /** For an HTTP redirect (302): where to. */
  readonly location?: string;
}

/** The server answering: its CasVersion and the SOAP `ServerVersionInfo` header come from it. */
export interface AnsweringServer {
  readonly name: string;
  readonly fqdn: string;
  readonly version: ProductVersion;
}

/** What the renderer needs besides the request and the routed mailbox's answer. */
export interface RenderContext {
  readonly answering: AnsweringServer;
  /** Exchange organization name, for ServerDN / MdbDN / MailboxDN and the DeploymentId. */
  readonly organization: string;
  /** Answer data for another address (SOAP may ask several users); 'unknown' when the directory has none, 'not-served' for a domain the estate does not serve. */
  readonly answerFor: (address: string) => AutodiscoverAnswer | 'unknown' | 'not-served';
  /** Accepted domains (GetDomainSettings answers only these). */
  readonly domains: readonly string[];
  /** The client sent `X-MapiHttpCapability: 1`: add the mapiHttp block for 2013+ mailboxes (§4.2). */
  readonly mapiHttp?: boolean;
  /** The estate's public EWS URL (primary namespace): GetDomainSettings `ExternalEwsUrl`. */
  readonly externalEwsUrl?: string;
  /** The estate's public POX URL (autodiscover namespace): JSON `AutodiscoverV1`; else derived from the EWS host. */
  readonly autodiscoverUrl?: string;
  /** A domain controller to announce as SOAP `ActiveDirectoryServer`; the setting is not available without it. */
  readonly activeDirectoryServer?: string;
  /** The clock for POX `Error/@Time` (tests pass a fixed one). */
  readonly now?: () => Date;
}

/** What an error answer needs: the answering server, and optionally the rest (SOAP resolves the other users with it). */
export type ErrorContext = Pick<RenderContext, 'answering'> & Partial<Omit<RenderContext, 'answering'>>;

/** Why a request gets an error answer instead of settings. */
export type AutodiscoverError =
  'unknown-user' | 'not-served' | 'invalid-request' | 'schema-unavailable' | 'server-busy' | 'internal';

/** Headers every Autodiscover answer carries, 401s included (ews-javascript-api requires X-SOAP-Enabled: True, real-clients-and-ldap.md §3). */
export const autodiscoverHeaders: Readonly<Record<string, string>> = Object.freeze({
  'x-soap-enabled': 'True',
});

/** Where Autodiscover sends a user whose domain lives elsewhere (the estate's remoteDomains). */
export type AutodiscoverRedirect =
  { readonly kind: 'url'; readonly url: string } | { readonly kind: 'address'; readonly address: string };

/** `<name>value</name>`, or nothing when the value is absent (no empty elements, §4.2). */
export const el = (name: string, value: string | undefined): string =>
  value === undefined ? '' : `<${name}>${escapeXml(value)}</${name}>`;

export const xmlDeclaration = '<?xml version="1.0" encoding="utf-8"?>';

/** An XML answer with its declaration. */
export const xml = (status: number, body: string): AutodiscoverReply => ({
  status,
  contentType: 'text/xml; charset=utf-8',
  body: xmlDeclaration + body,
});

/** The host of a URL the answer names, if there is one. */
export function hostIn(url: string | undefined): string | undefined {
  const host = url === undefined ? '' : hostOfUrl(url);
  return host === '' ? undefined : host;
}
