/**
 * The estate's OWA hosts as a browser meets them (docs/security.md "OWA in the browser"): where the estate
 * can send a browser from a server (what its logon page's CSP `form-action` allows), and the hosts a logoff
 * passes through (every host a browser can hold a session on together with this one). Both come from the
 * estate, by the engine's own flows (core/routing/flow.ts: `decide()` unfolded, redirects followed as a
 * browser follows them), never from a request; they are computed once per estate and kept.
 */
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Server } from '../core/estate/estate.ts';
import { traceFlow } from '../core/routing/flow.ts';

/** Where the browser is, as the pipeline tells it (docs/protocols.md §2.4). */
export type ClientLocation = 'internal' | 'external';

const locations: readonly ClientLocation[] = ['internal', 'external'];

interface OwaHosts {
  /** Per server name: the hosts (`URL.host`: lower case, the port unless 443) its OWA can redirect a browser to. */
  readonly targets: ReadonlyMap<string, ReadonlySet<string>>;
  /** Per client location, per host: the sorted hosts a browser there can be sent between (its group). */
  readonly groups: Readonly<Record<ClientLocation, ReadonlyMap<string, readonly string[]>>>;
}

const memo = new WeakMap<EstateIndex, OwaHosts>();

/** `https://host` as `URL.host` writes it, or undefined when it is no host. */
function urlHost(host: string): string | undefined {
  return URL.canParse(`https://${host}`) ? new URL(`https://${host}`).host : undefined;
}

/**
 * The hosts a browser at `client` reaches `server` at for OWA. Outside: the namespaces that resolve to it
 * (Autodiscover's aside) and its external OWA URL (public names). Inside: its FQDN and internal OWA URL as well (split DNS). A
 * host outside browsers cannot resolve must never join their group: a logoff would send them there.
 */
function entryHosts(index: EstateIndex, server: Server, client: ClientLocation): string[] {
  const hosts = new Set<string>();
  const owa = server.urls.owa;
  for (const u of client === 'internal' ? [owa?.internal, owa?.external] : [owa?.external])
    if (u !== undefined && URL.canParse(u)) hosts.add(new URL(u).hostname);
  // Every namespace but Autodiscover's: browsers are given the others for OWA.
  for (const ns of index.estate.namespaces)
    if (ns.kind !== 'autodiscover' && ns.server.toLowerCase() === server.name.toLowerCase())
      hosts.add(ns.host.toLowerCase());
  if (client === 'internal') hosts.add(server.fqdn.toLowerCase());
  // Only the hosts the estate's DNS gives to this server: a flow starts where the name really leads.
  return [...hosts].filter((h) => index.serverForHost(h)?.name === server.name);
}

/** One user per mailbox server: every user on a server is routed alike (the engine routes on the mailbox). */
function representatives(index: EstateIndex): string[] {
  const seen = new Map<string, string>();
  for (const user of index.estate.users) {
    const mailbox = index.mailbox(user.address);
    if (mailbox !== undefined && !seen.has(mailbox.server.name)) seen.set(mailbox.server.name, user.address);
  }
  return [...seen.values()];
}

/** Union-find over host names. */
class Groups {
  readonly #parent = new Map<string, string>();
  find(h: string): string {
    let root = h;
    for (let p = this.#parent.get(root); p !== undefined && p !== root; p = this.#parent.get(root)) root = p;
    if (!this.#parent.has(h)) this.#parent.set(h, h);
    return root;
  }
  join(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.#parent.set(ra, rb);
  }
  /** Every host with the sorted members of its group. */
  members(): Map<string, readonly string[]> {
    const byRoot = new Map<string, string[]>();
    for (const h of this.#parent.keys()) {
      const root = this.find(h);
      const list = byRoot.get(root) ?? [];
      list.push(h);
      byRoot.set(root, list);
    }
    const out = new Map<string, readonly string[]>();
    for (const list of byRoot.values()) {
      const sorted = Object.freeze(list.sort());
      for (const h of sorted) out.set(h, sorted);
    }
    return out;
  }
}

function compute(index: EstateIndex): OwaHosts {
  const users = representatives(index);
  const targets = new Map<string, Set<string>>();
  const groups: Record<ClientLocation, Groups> = { internal: new Groups(), external: new Groups() };
  for (const site of index.estate.sites)
    for (const server of site.servers) {
      if (!server.roles.includes('cas')) continue;
      const mine = new Set<string>();
      targets.set(server.name, mine);
      for (const client of locations)
        for (const host of entryHosts(index, server, client))
          for (const user of users) {
            const entry = urlHost(host);
            if (entry === undefined) continue;
            groups[client].find(entry);
            const flow = traceFlow(index, { user, protocol: 'owa', client, host });
            for (const step of flow.steps) {
              if (step.kind !== 'redirect' || step.url === undefined || !URL.canParse(step.url)) continue;
              const target = new URL(step.url).host;
              mine.add(target);
              groups[client].join(entry, target);
            }
          }
    }
  return {
    targets,
    groups: { internal: groups.internal.members(), external: groups.external.members() },
  };
}

function owaHosts(index: EstateIndex): OwaHosts {
  let hosts = memo.get(index);
  if (hosts === undefined) {
    hosts = compute(index);
    memo.set(index, hosts);
  }
  return hosts;
}

/**
 * The hosts the estate can redirect a browser to from `server`'s OWA, for any user and either client
 * location, following further redirects as the browser would (`URL.host` form). The logon page's CSP
 * `form-action` names exactly these besides its own origin: the POST's redirect chain ends there.
 */
export function owaRedirectTargets(index: EstateIndex, server: Server): ReadonlySet<string> {
  return owaHosts(index).targets.get(server.name) ?? new Set();
}

/**
 * The hosts a browser at `host` (a `URL.host`) can hold an OWA session on together with it, `host`
 * included, sorted: the hosts joined to it by the estate's OWA redirects for a client at `client`. A host
 * no redirect touches is alone in its group.
 */
export function owaSessionGroup(index: EstateIndex, host: string, client: ClientLocation): readonly string[] {
  const h = host.toLowerCase();
  return owaHosts(index).groups[client].get(h) ?? [h];
}

/**
 * The next step of a logoff chain (docs/security.md "OWA in the browser"): the logoff at `here` ends the
 * session there, then the browser goes through the logoff of every other host of `here`'s group, in the
 * group's order, and back to where the chain began. `started` is where it began (the chain parameter),
 * believed only when it is a host of this group: anything else starts a new chain here. Every host given
 * back is one of the group's, so the chain cannot send a browser anywhere else.
 */
export function nextLogoffHop(
  index: EstateIndex,
  here: string,
  started: string | undefined,
  client: ClientLocation,
): { readonly next: string; readonly started: string } | { readonly done: string } {
  const group = owaSessionGroup(index, here, client);
  const self = here.toLowerCase();
  const origin = started?.toLowerCase();
  const begin = origin !== undefined && origin !== self && group.includes(origin) ? origin : self;
  const at = group.indexOf(self);
  const next = group[(at + 1) % group.length] as string;
  return next === begin || next === self ? { done: begin } : { next, started: begin };
}
