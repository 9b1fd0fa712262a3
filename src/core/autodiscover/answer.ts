/**
 * The Autodiscover answer for one mailbox, as data. The wire formats (POX outlook/mobilesync, SOAP, JSON)
 * are rendered at the edge from this; `coexist trace` prints it.
 */
import type { Mailbox, EstateIndex } from '../estate/estate-index.ts';
import type { ProductVersion, Server, Site } from '../estate/estate.ts';
import type { Protocol } from '../protocols/protocol.ts';

/** Service URLs handed to a client, per protocol that Autodiscover announces. */
export type ServiceUrls = Readonly<Partial<Record<AnnouncedProtocol, string>>>;

/** Protocols whose URL an Autodiscover answer carries (POX `EwsUrl`, `OABUrl`, `OWAUrl`, `ASUrl`/MobileSync, EXPR, mapiHttp). */
export const announcedProtocols = ['ews', 'activesync', 'owa', 'ecp', 'oab', 'rpc', 'mapi'] as const;
export type AnnouncedProtocol = (typeof announcedProtocols)[number];

export interface AutodiscoverAnswer {
  readonly address: string;
  readonly displayName: string;
  readonly legacyDn: string;
  readonly mailboxServer: string;
  readonly mailboxServerFqdn: string;
  readonly mailboxVersion: ProductVersion;
  /** The CAS whose virtual directories the answer describes (the mailbox site's CAS of the mailbox's version). */
  readonly describes: string;
  /** URLs for clients inside the network (POX `EXCH`/`Internal`, SOAP `Internal*`). */
  readonly internal: ServiceUrls;
  /** URLs for clients on the internet (POX `EXPR`/`External`, SOAP `External*`). */
  readonly external: ServiceUrls;
}

/** Protocols a mailbox version can be offered at all (docs/protocols.md §2.1 rule 7; 2007 has no ECP). */
export function offered(version: ProductVersion, p: Protocol): boolean {
  if (p === 'mapi') return version >= 2013;
  if (p === 'ecp') return version >= 2010;
  return true;
}

/**
 * Build the answer for a mailbox (docs/protocols.md §2.4, docs/flows.md "Autodiscover"):
 * - internal URLs are the internal URLs of the CAS of the mailbox's version in the mailbox's site;
 * - external URLs are that CAS's external URLs when it has them (2007: the legacy or regional namespace;
 *   Madrid: `europe.mail.o365info.com`), else the primary namespace's, because the front end will proxy there;
 * - 2007 OWA has no proxy path through a 2013 front end, so without a site external URL it goes to the
 *   legacy namespace (docs/protocols.md §2.3, OWA 2007 row).
 */
export function autodiscoverAnswer(mailbox: Mailbox, index: EstateIndex): AutodiscoverAnswer | undefined {
  const urls = siteUrls(mailbox, index);
  if (!urls) return undefined;
  const at = mailbox.address.indexOf('@');
  const alias = at > 0 ? mailbox.address.slice(0, at) : mailbox.address;
  return {
    address: mailbox.address,
    displayName: mailbox.displayName,
    legacyDn: `/o=${index.estate.organization}/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=${alias}`,
    mailboxServer: mailbox.server.name,
    mailboxServerFqdn: mailbox.server.fqdn,
    mailboxVersion: mailbox.server.version,
    ...urls,
  };
}

type SiteUrls = Pick<AutodiscoverAnswer, 'describes' | 'internal' | 'external'>;

/** The URLs depend only on the mailbox's site and version, so they are computed once per pair (estates are immutable). */
const urlCache = new WeakMap<Site, Map<ProductVersion, SiteUrls | null>>();

function siteUrls(mailbox: Mailbox, index: EstateIndex): SiteUrls | undefined {
  let perVersion = urlCache.get(mailbox.site);
  if (!perVersion) urlCache.set(mailbox.site, (perVersion = new Map()));
  const version = mailbox.server.version;
  let urls = perVersion.get(version);
  if (urls === undefined) {
    urls = computeSiteUrls(mailbox, index) ?? null;
    perVersion.set(version, urls);
  }
  return urls ?? undefined;
}

function computeSiteUrls(mailbox: Mailbox, index: EstateIndex): SiteUrls | undefined {
  const home = index.casIn(mailbox.site.name, mailbox.family)[0];
  const primary = serverOf(index, 'primary');
  const legacy = serverOf(index, 'legacy');
  const describes = home ?? (mailbox.family === 'modern' ? primary : undefined);
  if (!describes) return undefined;
  const serving = (p: AnnouncedProtocol): Server | undefined =>
    home ? index.casFor(mailbox.site.name, mailbox.family, p) : describes;
  const internal: Partial<Record<AnnouncedProtocol, string>> = {};
  const external: Partial<Record<AnnouncedProtocol, string>> = {};
  for (const p of announcedProtocols) {
    if (!offered(mailbox.server.version, p)) continue;
    const own = serving(p)?.urls[p];
    if (own?.internal) internal[p] = own.internal;
    const fallback = p === 'owa' && mailbox.family === 2007 ? legacy : primary;
    const ext = own?.external ?? fallback?.urls[p]?.external;
    if (ext) external[p] = ext;
  }
  return { describes: describes.name, internal, external };
}

function serverOf(index: EstateIndex, kind: 'primary' | 'legacy'): Server | undefined {
  const ns = index.namespaceOfKind(kind);
  return ns && index.server(ns.server);
}

/**
 * The answer with the primary namespace's ActiveSync URL in place of the mailbox site's own external one
 * (policy mobileAutodiscover=primary-namespace): devices then stay on the front end, which proxies to the
 * site (docs/flows.md EAS-3A) instead of talking to it directly (EAS-3B). Undefined when nothing changes.
 */
export function withPrimaryActiveSync(
  answer: AutodiscoverAnswer,
  index: EstateIndex,
): AutodiscoverAnswer | undefined {
  const primary = serverOf(index, 'primary')?.urls.activesync?.external;
  if (
    primary === undefined ||
    answer.external.activesync === undefined ||
    answer.external.activesync === primary
  )
    return undefined;
  return { ...answer, external: { ...answer.external, activesync: primary } };
}
