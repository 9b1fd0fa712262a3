/**
 * A client for the lab: real HTTPS through undici, trusting only the lab CA, reaching the estate's host
 * names through the lab's DNS, from the external or the internal client address.
 */
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Agent, buildConnector, request } from 'undici';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses } from '../../src/lab/index.ts';

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  /** The request id the entry server gave the request (the `request-id` header). */
  readonly requestId: string;
  /** The servers the answer came back through (`X-Coexist-Path`). */
  readonly path: string[];
}

/** What a request sends; `user` (and `password`, default the demo one) become Basic credentials. */
export interface Send {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array | Readable;
  readonly user?: string;
  readonly password?: string;
}

export interface LabClient {
  /** The undici dispatcher that reaches the lab. */
  readonly dispatcher: Dispatcher;
  /** Send and read the whole answer. */
  fetch(url: string, o?: Send): Promise<Reply>;
  /** Send and hand back the answer's body as a stream (large downloads). */
  stream(url: string, o?: Send): Promise<Omit<Reply, 'body'> & { body: Readable }>;
  close(): Promise<void>;
}

export const demoPassword = 'Coexist-Lab-2026!';

export const basic = (user: string, password = demoPassword): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A client of the lab; `from: 'internal'` connects from the internal client address. */
export function labClient(lab: Lab, from: 'external' | 'internal' = 'external'): LabClient {
  const base = buildConnector({ ca: lab.ca.certPem });
  const makeAgent = (): Agent =>
    new Agent({
      localAddress: from === 'internal' ? labAddresses.internalClient : labAddresses.externalClient,
      connect: (opts, cb) => {
        const to = lab.resolve(opts.hostname, Number(opts.port) || 443);
        if (!to) return base(opts, cb);
        return base({ ...opts, hostname: to.address, port: String(to.port), servername: opts.hostname }, cb);
      },
    });
  const agent = makeAgent();
  // Outlook opens each RPC channel on a connection of its own (MS-RPCH): a new agent per channel.
  const channels: Agent[] = [];
  const send = (url: string, o: Send): Promise<Dispatcher.ResponseData> => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.user !== undefined) headers['authorization'] = basic(o.user, o.password);
    const method = o.method ?? (o.body === undefined ? 'GET' : 'POST');
    let dispatcher = agent;
    if (method.startsWith('RPC_')) channels.push((dispatcher = makeAgent()));
    return request(url, {
      dispatcher,
      method: method as Dispatcher.HttpMethod,
      headers,
      ...(o.body === undefined ? {} : { body: o.body }),
    });
  };
  const meta = (r: Dispatcher.ResponseData): Omit<Reply, 'body'> => {
    const h = r.headers;
    const path = String(h['x-coexist-path'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    return { status: r.statusCode, headers: h, requestId: String(h['request-id'] ?? ''), path };
  };
  return {
    dispatcher: agent,
    async fetch(url, o = {}) {
      const r = await send(url, o);
      return { ...meta(r), body: Buffer.from(await r.body.arrayBuffer()) };
    },
    async stream(url, o = {}) {
      const r = await send(url, o);
      return { ...meta(r), body: r.body };
    },
    close: async () => {
      await Promise.all([agent.close(), ...channels.map((c) => c.destroy())]);
    },
  };
}

/** A writable that keeps every line written (the lab's log), for assertions. */
export class LineSink extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    for (const l of chunk.toString('utf8').split('\n')) if (l !== '') this.lines.push(l);
    cb();
  }
  /** Parsed JSON lines. */
  records(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
