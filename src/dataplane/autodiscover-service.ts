/**
 * The Autodiscover service of one server: what the pipeline calls when the engine says "answer Autodiscover"
 * or when an Autodiscover request cannot be answered with settings. Parsing and rendering are the
 * protocol module's and `autodiscover-response.ts`'s; this file supplies what they need from the estate and
 * the directory (other SOAP users are looked up through the directory, like the routed one).
 */
import { autodiscoverAnswer } from '../core/autodiscover/answer.ts';
import type { EstateIndex, Mailbox } from '../core/estate/estate-index.ts';
import type { Server } from '../core/estate/estate.ts';
import type { AutodiscoverRequest } from '../core/protocols/autodiscover.ts';
import {
  autodiscoverDialect,
  parseAutodiscoverBody,
  parseAutodiscoverJson,
} from '../core/protocols/autodiscover.ts';
import type { Invalid, RequestHead } from '../core/protocols/request-head.ts';
import { underPath } from '../core/protocols/request-head.ts';
import type { AutodiscoverAnswer } from '../core/autodiscover/answer.ts';
import type { Directory } from '../directory/directory.ts';
import type {
  AutodiscoverError,
  AutodiscoverRedirect,
  AutodiscoverReply,
  RenderContext,
} from './autodiscover-response.ts';
import {
  renderAutodiscover,
  renderAutodiscoverError,
  renderAutodiscoverRedirect,
} from './autodiscover-response.ts';

/** What the service needs of the server it runs on. */
export interface AutodiscoverSite {
  readonly index: EstateIndex;
  readonly server: Server;
  readonly directory: Directory;
}

type BaseContext = Omit<RenderContext, 'answerFor' | 'mapiHttp'>;

/** The per-server part of the render context, made once (estates are immutable snapshots). */
const bases = new WeakMap<Server, BaseContext>();

function baseContext(site: AutodiscoverSite): BaseContext {
  let base = bases.get(site.server);
  if (!base) {
    const { index, server } = site;
    const primary = index.namespaceOfKind('primary');
    const auto = index.namespaceOfKind('autodiscover');
    const frontDoor = primary ? index.server(primary.server) : undefined;
    const externalEwsUrl = frontDoor?.urls.ews?.external;
    const autodiscoverUrl = (auto ? index.server(auto.server) : frontDoor)?.urls.autodiscover?.external;
    base = {
      answering: { name: server.name, fqdn: server.fqdn, version: server.version },
      organization: index.estate.organization,
      domains: index.estate.domains,
      ...(externalEwsUrl === undefined ? {} : { externalEwsUrl }),
      ...(autodiscoverUrl === undefined ? {} : { autodiscoverUrl }),
    };
    bases.set(site.server, base);
  }
  return base;
}

/** The request as the client sent it: the JSON form from the URL, the others from the body. */
export function autodiscoverRequest(
  head: RequestHead,
  body: Uint8Array | undefined,
): AutodiscoverRequest | Invalid {
  return underPath(head.path, '/autodiscover/autodiscover.json')
    ? parseAutodiscoverJson(head)
    : parseAutodiscoverBody(body ?? new Uint8Array());
}

/** The settings answer for the routed mailbox, with every other user a SOAP request names looked up too. */
export async function answerAutodiscover(
  site: AutodiscoverSite,
  head: RequestHead,
  request: AutodiscoverRequest,
  answer: AutodiscoverAnswer,
): Promise<AutodiscoverReply> {
  return renderAutodiscover(request, answer, await renderContext(site, head, request));
}

/** The error answer in the dialect of the request (which may not have parsed: then by path and body). */
export async function autodiscoverError(
  site: AutodiscoverSite,
  head: RequestHead,
  body: Uint8Array | undefined,
  request: AutodiscoverRequest | undefined,
  error: AutodiscoverError,
): Promise<AutodiscoverReply> {
  const dialect = request ?? { schema: autodiscoverDialect(head, body) };
  return renderAutodiscoverError(
    dialect,
    error,
    request ? await renderContext(site, head, request) : baseContext(site),
  );
}

/** The redirect for an address whose domain the estate says lives elsewhere; undefined otherwise. */
export function remoteRedirect(
  site: AutodiscoverSite,
  address: string | undefined,
): AutodiscoverRedirect | undefined {
  if (address === undefined) return undefined;
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1).toLowerCase();
  const remote = site.index.estate.remoteDomains.find((d) => d.domain === domain);
  if (!remote) return undefined;
  return remote.redirect.kind === 'url'
    ? { kind: 'url', url: remote.redirect.url }
    : { kind: 'address', address: `${address.slice(0, at)}@${remote.redirect.domain}` };
}

/** The redirect answer in the dialect of the request. */
export function redirectAutodiscover(
  site: AutodiscoverSite,
  request: AutodiscoverRequest,
  to: AutodiscoverRedirect,
): AutodiscoverReply {
  return renderAutodiscoverRedirect(request, to, baseContext(site));
}

/** Why a mailbox could not be answered for: a domain the estate does not serve, or an unknown user. */
export function missingMailbox(
  site: AutodiscoverSite,
  address: string | undefined,
): 'not-served' | 'unknown-user' {
  const domain = address?.slice(address.lastIndexOf('@') + 1).toLowerCase();
  return domain && !site.index.estate.domains.some((d) => d.toLowerCase() === domain)
    ? 'not-served'
    : 'unknown-user';
}

async function renderContext(
  site: AutodiscoverSite,
  head: RequestHead,
  request: AutodiscoverRequest,
): Promise<RenderContext> {
  const others = new Map<string, Mailbox | undefined>();
  if (request.schema === 'soap' && request.operation === 'GetUserSettings') {
    await Promise.all(
      request.mailboxes.map(async (m) => others.set(m.toLowerCase(), await site.directory.findMailbox(m))),
    );
  }
  return {
    ...baseContext(site),
    mapiHttp: head.headers['x-mapihttpcapability'] === '1',
    answerFor: (address) => {
      const mailbox = others.get(address.toLowerCase());
      if (mailbox) return autodiscoverAnswer(mailbox, site.index) ?? 'unknown';
      return missingMailbox(site, address) === 'not-served' ? 'not-served' : 'unknown';
    },
  };
}
