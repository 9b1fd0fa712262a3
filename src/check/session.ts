/**
 * What the probes of one check share: the options, the network edge, the credentials (in one private
 * field, only ever put in an Authorization header), what Autodiscover said, and the expectations computed
 * from the estate. A `GroupRun` collects one group's steps: it resolves and handshakes each host once and
 * turns each HTTP exchange into a judged step.
 */
import { safeUrl } from '../client/activesync/errors.ts';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Policies } from '../core/estate/estate.ts';
import type { Protocol } from '../core/protocols/protocol.ts';
import type { Expectation } from './expect.ts';
import { expectRequest } from './expect.ts';
import type { Judgement } from './fixes.ts';
import { connectFix, dnsFix, judgeAnswer, judgeCertificate, judgeSuccess } from './fixes.ts';
import type { CheckGroup, CheckProtocol, CheckStep, Verdict } from './model.ts';
import { checkProtocolTitles, group, worst } from './model.ts';
import type { HttpAnswer, HttpInit, Route } from './net.ts';
import { Net } from './net.ts';
import type { CheckAuth } from './windows-auth.ts';
import { windowsHttp } from './windows-auth.ts';

/** The protocols whose requests take Windows authentication in the check (Exchange's clients send it there). */
const windowsProtocols: ReadonlySet<Protocol> = new Set(['autodiscover', 'ews', 'oab', 'mapi', 'rpc']);

export interface CheckOptions {
  /** The user's SMTP address. */
  readonly user: string;
  /** The Basic / logon user name, when it is not the address (DOMAIN\user, UPN). */
  readonly login?: string;
  readonly password: string;
  readonly protocols: readonly CheckProtocol[];
  /**
   * How credentialed requests authenticate (docs/auth.md): Basic (the default), or NTLM / Negotiate with the
   * handshake for the protocols that take Windows authentication (Autodiscover, EWS); ActiveSync and OWA keep
   * Basic and the forms logon, as their clients do.
   */
  readonly auth?: CheckAuth;
  /** Where the client is: the expected hops depend on it. */
  readonly from: 'internal' | 'external';
  /** The estate: what `coexist trace` computes the expected hops from. */
  readonly index: EstateIndex;
  readonly policies?: Policies;
  /** Where host names really are (connect-to rules, the lab's DNS); default DNS. */
  readonly route?: Route;
  /** Trust only this CA (PEM). */
  readonly ca?: string;
  readonly localAddress?: string;
  /** Per connection and per answer; default 15 000. */
  readonly timeoutMs?: number;
  /** The Ping's HeartbeatInterval; default 10 s (a server with a higher minimum answers Status 5 at once). */
  readonly heartbeatSeconds?: number;
  /** Warn when a certificate has fewer days left; default 30. */
  readonly certWarnDays?: number;
  /** Where to POST Autodiscover; default `https://autodiscover.<domain>/Autodiscover/Autodiscover.xml`. */
  readonly autodiscoverUrl?: string;
  /** Told about each step as it ends (the progress display). */
  readonly onStep?: (group: string, step: CheckStep) => void;
  /** The clock (certificate validity). */
  readonly now?: () => Date;
}

/** What Autodiscover handed out, for the probes after it. */
export interface Discovered {
  ewsInternal?: string;
  ewsExternal?: string;
  mobileSync?: string;
}

/** The answer of a probe's `accept`: the exchange did what the probe wanted (or failed at content level). */
export interface Accepted {
  readonly verdict?: Verdict;
  readonly note?: string;
  readonly details?: readonly string[];
  readonly fix?: string;
  readonly code?: Judgement['code'];
}

export interface Exchange {
  readonly title: string;
  readonly url: string;
  readonly init?: HttpInit;
  /** For the expected hops: the protocol the request is routed as. */
  readonly protocol: Protocol;
  /** The request carries the credentials (skipped once they were refused). */
  readonly credentials: boolean;
  /** Default: the estate's expectation for the protocol at the URL's host. */
  readonly expectation?: Expectation;
  /** Success (or a content-level verdict) for an answer; undefined: an HTTP failure, judged generically. */
  readonly accept: (a: HttpAnswer) => Accepted | undefined;
}

export class Session {
  readonly o: CheckOptions;
  readonly net: Net;
  readonly timeoutMs: number;
  readonly login: string;
  /** Set once a server refused the credentials: later credentialed steps are not run (account lockout). */
  refused = false;
  readonly discovered: Discovered = {};
  readonly #authorization: string;
  readonly #password: string;
  readonly #expectations = new Map<string, Expectation>();

  constructor(o: CheckOptions) {
    this.o = o;
    this.timeoutMs = o.timeoutMs ?? 15_000;
    this.login = o.login ?? o.user;
    this.#password = o.password;
    this.#authorization = `Basic ${Buffer.from(`${this.login}:${o.password}`, 'utf8').toString('base64')}`;
    this.net = new Net({
      timeoutMs: this.timeoutMs,
      ...(o.route ? { route: o.route } : {}),
      ...(o.ca === undefined ? {} : { ca: o.ca }),
      ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
    });
  }

  /** Headers carrying the credentials. */
  authHeaders(): Record<string, string> {
    return { authorization: this.#authorization };
  }

  /** How a credentialed request of `protocol` authenticates. */
  authFor(protocol: Protocol): CheckAuth {
    const auth = this.o.auth ?? 'basic';
    return auth !== 'basic' && windowsProtocols.has(protocol) ? auth : 'basic';
  }

  /** One credentialed exchange with the Windows handshake (windows-auth.ts), the password kept here. */
  windowsHttp(
    url: string,
    init: HttpInit,
    auth: Exclude<CheckAuth, 'basic'>,
  ): ReturnType<typeof windowsHttp> {
    return windowsHttp(this.net, url, init, auth, this.login, this.#password);
  }

  /** The password in clear, for the two that need it: the OWA logon form, and the ActiveSync client (its own Basic header). */
  revealPassword(): string {
    return this.#password;
  }

  get now(): Date {
    return this.o.now ? this.o.now() : new Date();
  }

  get index(): EstateIndex {
    return this.o.index;
  }

  /** What the estate says a request of `protocol` sent to `host` does (memoised). */
  expect(protocol: Protocol, host?: string, client: 'internal' | 'external' = this.o.from): Expectation {
    const key = `${protocol}|${host ?? ''}|${client}`;
    let e = this.#expectations.get(key);
    if (!e) {
      e = expectRequest(
        this.o.index,
        { user: this.o.user, protocol, client, ...(host === undefined ? {} : { host }) },
        this.o.policies,
      );
      this.#expectations.set(key, e);
    }
    return e;
  }

  /** The server of the estate a host reaches, by name. */
  serverFor(host: string): string | undefined {
    return this.o.index.serverForHost(host)?.name;
  }

  async close(): Promise<void> {
    await this.net.close();
  }
}

/** One group's steps as they happen. */
export class GroupRun {
  readonly steps: CheckStep[] = [];
  readonly #connected = new Map<string, { ok: boolean; target?: { host: string; port: number } }>();

  constructor(
    readonly s: Session,
    readonly protocol: CheckProtocol,
    readonly title: string = checkProtocolTitles[protocol],
  ) {}

  /** Record a step, and tell the progress display. */
  add(step: CheckStep): CheckStep {
    this.steps.push(step);
    this.s.o.onStep?.(this.title, step);
    return step;
  }

  finish(flow?: string): CheckGroup {
    return group(this.protocol, this.steps, flow, this.title);
  }

  /** Where connections for a URL's host go, once known. */
  targetOf(url: string): { host: string; port: number } | undefined {
    const u = new URL(url);
    return this.#connected.get(`${u.hostname.toLowerCase()}:${Number(u.port) || 443}`)?.target;
  }

  /** DNS and TLS steps for a URL's host (once per group); false when requests there cannot work. */
  async connect(url: string): Promise<boolean> {
    const u = new URL(url);
    const host = u.hostname.toLowerCase();
    const port = Number(u.port) || 443;
    const key = `${host}:${port}`;
    const known = this.#connected.get(key);
    if (known) return known.ok;
    const r = await this.s.net.resolve(host, port);
    if (!r.ok || !r.target) {
      this.add({
        title: `DNS ${host}`,
        verdict: 'fail',
        ms: r.ms,
        note: r.errorCode ?? 'no address',
        fix: dnsFix(host, r.errorCode),
        code: 'CX_UPSTREAM_DNS',
      });
      this.#connected.set(key, { ok: false });
      return false;
    }
    const target = r.target;
    const addresses = r.addresses && r.addresses.length > 1 ? ` (${r.addresses.join(', ')})` : '';
    this.add({
      title: `DNS ${host} -> ${target.host}:${target.port}${r.via === 'connect-to' ? ' (connect-to)' : addresses}`,
      verdict: 'pass',
      ms: r.ms,
    });
    if (u.protocol !== 'https:') {
      this.#connected.set(key, { ok: true, target });
      return true;
    }
    const t = await this.s.net.tls(host, target);
    if (!t.ok || !t.cert) {
      const f = connectFix(host, target, this.s.serverFor(host), t.errorCode, this.s.timeoutMs);
      this.add({
        title: `TLS ${host} at ${target.host}:${target.port}`,
        verdict: 'fail',
        ms: t.ms,
        note: t.errorCode ?? t.message ?? 'failed',
        fix: f.fix,
        code: f.code,
      });
      this.#connected.set(key, { ok: false, target });
      return false;
    }
    const j = judgeCertificate(host, t.cert, this.s.now, this.s.o.certWarnDays ?? 30);
    this.add({
      title: j.title,
      verdict: j.verdict,
      ms: t.ms,
      ...(j.fix ? { fix: j.fix } : {}),
      ...(j.code ? { code: j.code } : {}),
    });
    const ok = j.verdict !== 'fail';
    this.#connected.set(key, { ok, target });
    return ok;
  }

  /** A step that was not run, and why. */
  skip(title: string, why: string): CheckStep {
    return this.add({ title, verdict: 'skip', note: `(not run: ${why})` });
  }

  /** Skip a credentialed step once the credentials were refused; true when skipped. */
  skipIfRefused(title: string): boolean {
    if (!this.s.refused) return false;
    this.skip(
      title,
      'the credentials were refused above; not tried again, to keep the account from locking out',
    );
    return true;
  }

  /** One HTTP exchange as a judged step; the answer, when there was one. */
  async exchange(x: Exchange): Promise<{ step: CheckStep; answer?: HttpAnswer; accepted?: Accepted }> {
    if (x.credentials && this.skipIfRefused(x.title)) return { step: this.steps.at(-1) as CheckStep };
    const host = new URL(x.url).hostname.toLowerCase();
    const auth = x.credentials ? this.s.authFor(x.protocol) : 'basic';
    const headers = {
      'user-agent': userAgent,
      ...x.init?.headers,
      ...(x.credentials && auth === 'basic' ? this.s.authHeaders() : {}),
    };
    const a =
      auth === 'basic'
        ? await this.s.net.http(x.url, { ...x.init, headers })
        : await this.s.windowsHttp(x.url, { ...x.init, headers }, auth);
    const url = safeUrl(x.url);
    if (a.kind === 'error') {
      const target = this.targetOf(x.url) ?? { host, port: Number(new URL(x.url).port) || 443 };
      const f = connectFix(host, target, this.s.serverFor(host), a.errorCode, this.s.timeoutMs);
      const step = this.add({
        title: x.title,
        verdict: 'fail',
        ms: a.ms,
        note: a.errorCode ?? a.message,
        fix: f.fix,
        code: f.code,
        url,
      });
      return { step };
    }
    const expectation = x.expectation ?? this.s.expect(x.protocol, host);
    const base = {
      title: x.title,
      ms: a.ms,
      status: a.status,
      url,
      ...(Object.keys(a.diagnostics).length > 0 ? { diagnostics: a.diagnostics } : {}),
    };
    const accepted = x.accept(a);
    if (accepted) {
      const j = judgeSuccess(a.path, expectation);
      const verdict = worst([accepted.verdict ?? 'pass', j.verdict]);
      const fix = accepted.fix ?? j.fix;
      const step = this.add({
        ...base,
        verdict,
        hops: j.hops,
        ...(accepted.note ? { note: accepted.note } : {}),
        ...(accepted.details && accepted.details.length > 0 ? { details: accepted.details } : {}),
        ...(fix && verdict !== 'pass' ? { fix } : {}),
        ...(accepted.code && verdict === 'fail' ? { code: accepted.code } : {}),
      });
      return { step, answer: a, accepted };
    }
    const j = judgeAnswer({
      user: this.s.login,
      host,
      status: a.status,
      path: a.path,
      expectation,
      ...(a.body.length < 2000 ? { body: a.body } : {}),
      ...(a.headers['retry-after'] === undefined ? {} : { retryAfter: a.headers['retry-after'] }),
      ...locationOf(a),
    });
    if (a.status === 401) this.s.refused = true;
    const step = this.add({
      ...base,
      verdict: j.verdict,
      hops: j.hops,
      ...(j.fix ? { fix: j.fix } : {}),
      ...(j.code ? { code: j.code } : {}),
    });
    return { step, answer: a };
  }
}

export const userAgent = 'coexist-check';

/** `Location` (or `X-MS-Location`) of an answer, resolved against its URL. */
export function locationOf(a: HttpAnswer): { location?: string } {
  const raw = a.headers['x-ms-location'] ?? a.headers['location'];
  if (!raw) return {};
  try {
    return { location: new URL(raw, a.url).toString() };
  } catch {
    return { location: raw };
  }
}

/** A URL without user-info (the client's rule, shared). */
export { safeUrl };
