/**
 * The I/O edge of `coexist check`: where a host name is (a connect-to rule, or DNS), the peer certificate
 * of a TLS handshake, and one HTTP exchange through undici, all from the same local address, with the same
 * trusted CAs and the same timeout. Nothing here sees what a request carries beyond sending it.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { DetailedPeerCertificate } from 'node:tls';
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';
import type { Agent, Dispatcher } from 'undici';
import { Client, request } from 'undici';
import type { ConnectRoute } from '../net/connector.ts';
import { routedAgent, routedConnector } from '../net/connector.ts';
import type { PeerCertificateFacts } from './fixes.ts';
import type { Diagnostics } from './model.ts';

/** Where `host:port` really is (curl's --connect-to, the lab's DNS); undefined: ask DNS. */
export type Route = ConnectRoute;

export interface NetOptions {
  readonly route?: Route;
  /** Trust only this CA (PEM); default the system's. */
  readonly ca?: string;
  /** The local address to connect from (the lab's internal clients use 127.0.0.3). */
  readonly localAddress?: string;
  /** For connecting and for each answer. */
  readonly timeoutMs: number;
}

export interface Resolved {
  readonly ok: boolean;
  readonly ms: number;
  /** Where connections for the host go. */
  readonly target?: { readonly host: string; readonly port: number };
  /** `connect-to` when a rule decided, else `dns`. */
  readonly via: 'connect-to' | 'dns';
  readonly addresses?: readonly string[];
  readonly errorCode?: string;
}

export interface TlsResult {
  readonly ok: boolean;
  readonly ms: number;
  readonly cert?: PeerCertificateFacts;
  readonly errorCode?: string;
  readonly message?: string;
}

export interface HttpAnswer {
  readonly kind: 'answer';
  readonly url: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** Every Set-Cookie line. */
  readonly setCookies: readonly string[];
  readonly body: string;
  /** `X-Coexist-Path`. */
  readonly path: readonly string[];
  readonly diagnostics: Diagnostics;
  readonly ms: number;
}

export interface HttpFailure {
  readonly kind: 'error';
  readonly url: string;
  readonly ms: number;
  readonly errorCode?: string;
  readonly message: string;
}

export interface HttpInit {
  readonly method?: Dispatcher.HttpMethod;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** Most of an answer's body kept (the probes read XML and HTML pages, never large downloads). */
const maxBody = 2 * 1024 * 1024;

export class Net {
  readonly dispatcher: Agent;
  readonly timeoutMs: number;
  readonly #route: Route | undefined;
  readonly #ca: string | undefined;
  readonly #localAddress: string | undefined;

  constructor(o: NetOptions) {
    this.#route = o.route;
    this.#ca = o.ca;
    this.#localAddress = o.localAddress;
    this.timeoutMs = o.timeoutMs;
    this.dispatcher = routedAgent({
      route: o.route,
      ca: o.ca,
      localAddress: o.localAddress,
      connectTimeoutMs: o.timeoutMs,
      answerTimeoutMs: o.timeoutMs,
    });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /**
   * One connection of its own to a URL's origin, with the same routing, CA, local address and timeouts: what a
   * Windows authentication handshake needs (NTLM authenticates a connection, docs/auth.md). The caller closes it.
   */
  connection(url: string): Client {
    return new Client(new URL(url).origin, {
      allowH2: false,
      pipelining: 1,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      ...(this.#localAddress === undefined ? {} : { localAddress: this.#localAddress }),
      connect: routedConnector({ route: this.#route, ca: this.#ca, connectTimeoutMs: this.timeoutMs }),
    });
  }

  /** Where connections for `host:port` go: a route when one matches, else a DNS lookup. */
  async resolve(host: string, port: number): Promise<Resolved> {
    const started = performance.now();
    const routed = this.#route?.(host, port);
    if (routed) return { ok: true, ms: elapsed(started), target: routed, via: 'connect-to' };
    if (isIP(host)) return { ok: true, ms: 0, target: { host, port }, via: 'dns', addresses: [host] };
    try {
      const all = await lookup(host, { all: true });
      const first = all[0];
      if (!first) return { ok: false, ms: elapsed(started), via: 'dns', errorCode: 'ENOTFOUND' };
      return {
        ok: true,
        ms: elapsed(started),
        target: { host: first.address, port },
        via: 'dns',
        addresses: all.map((a) => a.address),
      };
    } catch (e) {
      return { ok: false, ms: elapsed(started), via: 'dns', errorCode: errorCode(e) ?? 'ENOTFOUND' };
    }
  }

  /** A TLS handshake with `host` at `target` (SNI `host`), reading the peer certificate whatever it is. */
  tls(host: string, target: { readonly host: string; readonly port: number }): Promise<TlsResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      let settled = false;
      const socket = tlsConnect({
        host: target.host,
        port: target.port,
        ...(isIP(host) ? {} : { servername: host }),
        ...(this.#ca === undefined ? {} : { ca: this.#ca }),
        ...(this.#localAddress === undefined ? {} : { localAddress: this.#localAddress }),
        // The certificate is judged here, whatever it is; nothing is sent on this connection.
        rejectUnauthorized: false,
      });
      const done = (r: Omit<TlsResult, 'ms'>): void => {
        if (settled) return;
        settled = true;
        socket.destroy();
        resolve({ ...r, ms: elapsed(started) });
      };
      socket.setTimeout(this.timeoutMs, () =>
        done({ ok: false, errorCode: 'ETIMEDOUT', message: `no TLS handshake within ${this.timeoutMs} ms` }),
      );
      socket.once('error', (e) => done({ ok: false, ...errorFacts(e) }));
      socket.once('secureConnect', () => {
        const peer = socket.getPeerCertificate(true);
        if (!peer || Object.keys(peer).length === 0) {
          done({ ok: false, errorCode: 'ERR_TLS_NO_CERT', message: 'the server sent no certificate' });
          return;
        }
        const authError = socket.authorizationError as unknown;
        done({
          ok: true,
          cert: certificateFacts(host, peer, socket.authorized, authError),
        });
      });
    });
  }

  /** One HTTP exchange (on `on`, a connection of `connection`, when given); the whole answer is read. */
  async http(url: string, init: HttpInit = {}, on?: Dispatcher): Promise<HttpAnswer | HttpFailure> {
    const started = performance.now();
    try {
      const r = await request(url, {
        dispatcher: on ?? this.dispatcher,
        method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
        headers: { ...init.headers },
        ...(init.body === undefined ? {} : { body: init.body }),
      });
      const body = await readText(r.body);
      const headers: Record<string, string | undefined> = {};
      let setCookies: string[] = [];
      for (const [k, v] of Object.entries(r.headers)) {
        if (k === 'set-cookie') setCookies = Array.isArray(v) ? v : v === undefined ? [] : [v];
        headers[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      const opt = (key: keyof Diagnostics, name: string): Partial<Diagnostics> => {
        const v = headers[name];
        return v === undefined ? {} : { [key]: v };
      };
      return {
        kind: 'answer',
        url,
        status: r.statusCode,
        headers,
        setCookies,
        body,
        path: pathOf(headers['x-coexist-path']),
        diagnostics: {
          ...opt('requestId', 'request-id'),
          ...opt('feServer', 'x-feserver'),
          ...opt('beServer', 'x-beserver'),
          ...opt('calculatedBeTarget', 'x-calculatedbetarget'),
        },
        ms: elapsed(started),
      };
    } catch (e) {
      return { kind: 'error', url, ms: elapsed(started), ...errorFacts(e) };
    }
  }
}

/** `X-Coexist-Path` as a list. */
export const pathOf = (header: string | undefined): string[] =>
  (header ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

const elapsed = (started: number): number => Math.round(performance.now() - started);

async function readText(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBody) {
      body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The error code and a message of a network failure (the innermost cause that has a code). */
export function errorFacts(e: unknown): { errorCode?: string; message: string } {
  const err = e as { code?: unknown; message?: string; cause?: { code?: unknown; message?: string } };
  const code =
    typeof err.cause?.code === 'string'
      ? err.cause.code
      : typeof err.code === 'string'
        ? err.code
        : undefined;
  const message = err.cause?.message ?? err.message ?? String(e);
  return { ...(code === undefined ? {} : { errorCode: code }), message };
}

const errorCode = (e: unknown): string | undefined => errorFacts(e).errorCode;

function certificateFacts(
  host: string,
  peer: DetailedPeerCertificate,
  authorized: boolean,
  authError: unknown,
): PeerCertificateFacts {
  const altNames = (peer.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim().replace(/^(DNS|IP Address):/, ''))
    .filter((s) => s !== '');
  const cn = firstOf(peer.subject?.CN);
  const issuer = firstOf(peer.issuer?.CN) ?? firstOf(peer.issuer?.O);
  const authorizationError =
    authError instanceof Error ? ((authError as { code?: string }).code ?? authError.message) : authError;
  return {
    ...(cn === undefined ? {} : { subjectCn: cn }),
    altNames,
    ...(issuer === undefined ? {} : { issuer }),
    validFrom: new Date(peer.valid_from),
    validTo: new Date(peer.valid_to),
    authorized,
    ...(typeof authorizationError === 'string' && authorizationError !== '' ? { authorizationError } : {}),
    nameMatches: checkServerIdentity(host, peer) === undefined,
  };
}

const firstOf = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
