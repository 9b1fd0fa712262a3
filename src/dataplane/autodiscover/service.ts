/**
 * The Autodiscover service of one server: what the pipeline calls when the engine says "answer Autodiscover"
 * or when an Autodiscover request cannot be answered with settings (a body that does not parse, an unknown
 * mailbox or a domain living elsewhere, the directory down). Parsing and rendering are the protocol module's
 * and `render.ts`'s; this file supplies what they need from the estate and the directory
 * (other SOAP users are looked up through the directory, like the routed one) and writes the reply.
 */
import type { AutodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import { autodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import type { EstateIndex, Mailbox } from '../../core/estate/estate-index.ts';
import type { Server } from '../../core/estate/estate.ts';
import type { ErrorCode } from '../../core/errors.ts';
import type { AutodiscoverRequest } from '../../core/protocols/autodiscover.ts';
import {
  autodiscoverDialect,
  parseAutodiscoverBody,
  parseAutodiscoverJson,
} from '../../core/protocols/autodiscover.ts';
import type { Invalid, RequestHead } from '../../core/protocols/request-head.ts';
import { isInvalid, underPath } from '../../core/protocols/request-head.ts';
import type { Directory } from '../../directory/directory.ts';
import type { ServerContext } from '../contracts.ts';
import type { InFlight } from '../in-flight.ts';
import { observe } from '../in-flight.ts';
import { sendReply } from '../reply.ts';
import type { AutodiscoverError, AutodiscoverRedirect, AutodiscoverReply, RenderContext } from './context.ts';
import { renderAutodiscover, renderAutodiscoverError, renderAutodiscoverRedirect } from './render.ts';

/** The engine said "answer Autodiscover" for the routed mailbox: its settings in the request's dialect. */
export async function respondAutodiscover(
  ctx: ServerContext,
  flight: InFlight,
  answer: AutodiscoverAnswer,
): Promise<void> {
  const request = autodiscoverRequest(flight.head, flight.body);
  if (isInvalid(request)) {
    await answerAutodiscoverError(ctx, flight, undefined, 'invalid-request', request.code);
    return;
  }
  sendReply(flight, await answerAutodiscover(ctx, flight.head, request, answer));
  flight.record.outcome = 'answered';
  observe(ctx, flight, {});
}

/**
 * The engine refused an unknown mailbox: the schema's "address not found" (POX 500, SOAP InvalidUser, JSON
 * 404), or a domain not served here; a domain the estate says lives elsewhere gets the dialect's redirect.
 */
export async function answerUnknownMailbox(
  ctx: ServerContext,
  flight: InFlight,
  code: ErrorCode,
): Promise<void> {
  const request = autodiscoverRequest(flight.head, flight.body);
  const parsed = isInvalid(request) ? undefined : request;
  const address = requestedAddress(parsed);
  const elsewhere = parsed && remoteRedirect(ctx, address);
  if (parsed && elsewhere) {
    // The estate says this domain lives elsewhere: send the client there (MS-OXDSCLI redirects).
    sendReply(flight, redirectAutodiscover(ctx, parsed, elsewhere));
    flight.record.outcome = 'redirected';
    observe(ctx, flight, { url: elsewhere.kind === 'url' ? elsewhere.url : `mailto:${elsewhere.address}` });
    return;
  }
  await answerAutodiscoverError(ctx, flight, parsed, missingMailbox(ctx, address), code);
}

/** Write an Autodiscover error answer; the access line keeps the code that caused it. */
export async function answerAutodiscoverError(
  ctx: ServerContext,
  flight: InFlight,
  request: AutodiscoverRequest | undefined,
  error: AutodiscoverError,
  code: ErrorCode,
): Promise<void> {
  // "Server busy" names no user, so the answer is built without asking the directory that is down.
  const asked = error === 'server-busy' ? undefined : request;
  sendReply(flight, await autodiscoverError(ctx, flight.head, flight.body, asked, error));
  flight.record.outcome = 'refused';
  flight.record.code = code;
}

/** The address an Autodiscover request asks about. */
function requestedAddress(request: AutodiscoverRequest | undefined): string | undefined {
  if (!request) return undefined;
  switch (request.schema) {
    case 'outlook':
    case 'mobilesync':
      return request.address;
    case 'json':
      return request.address;
    case 'soap':
      return request.operation === 'GetUserSettings' ? request.mailboxes[0] : undefined;
  }
}

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
function autodiscoverRequest(head: RequestHead, body: Uint8Array | undefined): AutodiscoverRequest | Invalid {
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
function remoteRedirect(
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
function redirectAutodiscover(
  site: AutodiscoverSite,
  request: AutodiscoverRequest,
  to: AutodiscoverRedirect,
): AutodiscoverReply {
  return renderAutodiscoverRedirect(request, to, baseContext(site));
}

/** Why a mailbox could not be answered for: a domain the estate does not serve, or an unknown user. */
function missingMailbox(site: AutodiscoverSite, address: string | undefined): 'not-served' | 'unknown-user' {
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
