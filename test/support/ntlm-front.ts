/**
 * A coexist front end (CAS2013-NY of the demo estate, in this process) whose next hops all resolve to one
 * NTLM next-hop simulator: a stand-in for IIS's Windows authentication as Exchange runs it, protocol-faithful
 * for what pinning needs (NTLM authenticates the connection: a NEGOTIATE gets a CHALLENGE, the AUTHENTICATE on
 * the same socket makes that socket the user's, later bare requests on it are the user's; on another socket
 * they get 401). It records which of its sockets each request arrived on, so tests see which upstream
 * connection carried what. The verifier of passwords is not simulated here: any AUTHENTICATE after a CHALLENGE
 * on its socket is accepted (the domain's own verification is the lab's, with Samba).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connect as tlsConnect } from 'node:tls';
import { buildConnector, Client } from 'undici';
import { fileURLToPath } from 'node:url';
import { loadEstate } from '../../src/config/load-estate.ts';
import type { Server } from '../../src/core/estate/estate.ts';
import { indexEstate } from '../../src/core/estate/estate-index.ts';
import type { ServerNode } from '../../src/dataplane/index.ts';
import { startServerNode } from '../../src/dataplane/index.ts';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import { createLogger } from '../../src/observability/log.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { WatchedLog } from './front-ends.ts';
import {
  authenticateUser,
  defined,
  authorization,
  negTokenInit,
  negTokenResp,
  NTLMSSP,
  ntlmAuthenticate,
  ntlmChallenge,
  ntlmNegotiate,
  ntlmType,
} from './ntlm.ts';

export const frontHost = 'mail.o365info.com';

/** One request as the simulator saw it. */
export interface SeenRequest {
  /** The simulator's number for the socket it arrived on (1, 2, ...). */
  readonly socket: number;
  /** The Host it was sent to: which next hop coexist chose. */
  readonly host: string;
  readonly path: string;
  /** The NTLM message of its Authorization (1, 2, 3), 0 for none. */
  readonly ntlm: number;
  /** Its `X-Coexist-Caller`, when it had one (it never should, from the front end). */
  readonly caller?: string;
  readonly authorization?: string;
  /** The status answered. */
  readonly status: number;
  /** The user the socket was authenticated as when it answered 200. */
  readonly user?: string;
}

interface SocketState {
  readonly id: number;
  readonly socket: Socket;
  challenged: boolean;
  user?: string;
  /** Users ever authenticated on it: more than one would be the leak the tests look for. */
  readonly users: Set<string>;
}

export interface NtlmFront {
  readonly port: number;
  readonly ca: string;
  readonly node: ServerNode;
  readonly log: WatchedLog;
  readonly metrics: Metrics;
  readonly seen: SeenRequest[];
  /** The simulator's sockets, by its number: open ones, and what each carried. */
  readonly sockets: Map<number, SocketState & { open: boolean }>;
  /**
   * A client connection to the front end (an undici Client is exactly one connection); with `certificate`, it
   * presents that client certificate (a server of the estate proving itself).
   */
  client(o?: { certificate?: { certPem: string; keyPem: string } }): Client;
  /** A client certificate from the front end's internal CA for an estate server's FQDN. */
  serverCertificate(fqdn: string): { certPem: string; keyPem: string };
  /** A raw TLS connection to the front end. */
  raw(): Promise<TLSSocket>;
  /** Resolves when the simulator has `n` open sockets (polling the simulator's own count, for readiness). */
  openSockets(): number;
  close(): Promise<void>;
}

const estatePath = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

/** Start the simulator and the front end. */
export async function startNtlmFront(
  o: {
    answer?: (req: IncomingMessage, res: ServerResponse, user: string) => boolean;
    /** The server this front end is: CAS2013-NY (its front listener), or MBX2013-NY (its mailbox listener). */
    server?: 'CAS2013-NY' | 'MBX2013-NY';
    /**
     * CAS2013-NY's and MBX2013-NY's `authentication` (docs/config.md "sites[].servers[].authentication"); null:
     * none (the estate file's).
     */
    authentication?: Server['authentication'] | null;
  } = {},
): Promise<NtlmFront> {
  const loaded = (await loadEstate(estatePath)).index;
  // Windows authentication offered on the front end's and the mailbox server's Outlook-facing directories,
  // as Exchange's defaults have it, unless the test says otherwise.
  const windows = ['negotiate', 'ntlm', 'basic'] as const;
  const authentication = o.authentication ?? {
    autodiscover: windows,
    ews: windows,
    mapi: windows,
    rpc: windows,
    oab: windows,
  };
  const index =
    o.authentication === null
      ? loaded
      : indexEstate({
          ...loaded.estate,
          sites: loaded.estate.sites.map((site) => ({
            ...site,
            servers: site.servers.map((x) =>
              x.name === 'CAS2013-NY' || x.name === 'MBX2013-NY' ? { ...x, authentication } : x,
            ),
          })),
        });
  const ca = createLabCa();
  const names = [
    ...index.estate.sites.flatMap((s) => s.servers.map((x) => x.fqdn)),
    ...index.estate.namespaces.map((n) => n.host),
    frontHost,
  ];
  const seen: SeenRequest[] = [];
  const sockets = new Map<number, SocketState & { open: boolean }>();
  const bySocket = new WeakMap<Socket, SocketState & { open: boolean }>();
  let ids = 0;
  const leaf = ca.issue([...new Set(names)]);
  const simulator = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const s = defined(bySocket.get(req.socket));
    const host = String(req.headers.host ?? '').replace(/:\d+$/, '');
    const auth = req.headers.authorization;
    const m = auth === undefined ? undefined : /^(NTLM|Negotiate) (.+)$/i.exec(auth);
    // Negotiate: the NTLMSSP message inside SPNEGO starts at its signature.
    const decoded = m ? Buffer.from(defined(m[2]), 'base64') : undefined;
    const at = decoded ? decoded.indexOf(NTLMSSP) : -1;
    const token = decoded && at >= 0 ? decoded.subarray(at) : undefined;
    const type = token ? ntlmType(token) : 0;
    const record = (status: number, user?: string): void => {
      const caller = req.headers['x-coexist-caller'];
      seen.push({
        socket: s.id,
        host,
        path: req.url ?? '',
        ntlm: type,
        status,
        ...(user ? { user } : {}),
        ...(typeof caller === 'string' ? { caller } : {}),
        ...(auth === undefined ? {} : { authorization: auth }),
      });
    };
    req.resume();
    req.once('end', () => {
      if (type === 1) {
        s.challenged = true;
        delete s.user;
        record(401);
        res.writeHead(401, {
          'www-authenticate': `NTLM ${ntlmChallenge().toString('base64')}`,
          'content-length': '0',
        });
        res.end();
        return;
      }
      if (type === 3 && s.challenged && token) {
        const { user, domain } = authenticateUser(token);
        s.user = domain ? `${domain}\\${user}` : user;
        s.users.add(s.user);
        s.challenged = false;
      }
      if (type === 0 && auth === undefined && s.user === undefined) {
        record(401);
        res.writeHead(401, { 'www-authenticate': ['Negotiate', 'NTLM'], 'content-length': '0' });
        res.end();
        return;
      }
      if (s.user === undefined) {
        record(401);
        res.writeHead(401, { 'www-authenticate': ['Negotiate', 'NTLM'], 'content-length': '0' });
        res.end();
        return;
      }
      record(200, s.user);
      if (o.answer?.(req, res, s.user)) return;
      const body = JSON.stringify({ user: s.user, host, socket: s.id });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    });
  });
  simulator.keepAliveTimeout = 120_000;
  simulator.on('secureConnection', (socket: Socket) => {
    const state = { id: ++ids, socket, challenged: false, users: new Set<string>(), open: true };
    sockets.set(state.id, state);
    bySocket.set(socket, state);
    socket.once('close', () => {
      state.open = false;
    });
  });
  await new Promise<void>((resolve) => simulator.listen(0, '127.0.0.1', resolve));
  const simulatorPort = (simulator.address() as AddressInfo).port;

  const server = index.server(o.server ?? 'CAS2013-NY');
  if (!server) throw new Error(`no ${o.server ?? 'CAS2013-NY'} in the demo estate`);
  // The name clients use: the namespace at a front end, the server's own name at a mailbox server.
  const host = o.server === 'MBX2013-NY' ? server.fqdn : frontHost;
  const log = new WatchedLog();
  const metrics = new Metrics({ server: server.name });
  const node = await startServerNode({
    index,
    server,
    listeners: [
      {
        name: 'front',
        role: o.server === 'MBX2013-NY' ? 'mailbox' : 'cas',
        host: '127.0.0.1',
        port: 0,
        certificates: [{ hosts: [host], ...ca.issue([host, server.fqdn]) }],
      },
    ],
    logger: createLogger({ level: 'info', destination: log }),
    metrics,
    upstreams: { ca: ca.certPem, resolve: () => ({ address: '127.0.0.1', port: simulatorPort }) },
    internalCa: ca.certPem,
    health: { probe: false },
  });
  const port = node.port('front');
  const clients: Client[] = [];
  const raws: TLSSocket[] = [];
  return {
    port,
    ca: ca.certPem,
    node,
    log,
    metrics,
    seen,
    sockets,
    serverCertificate: (fqdn) => ca.issue([fqdn], { serverAuth: false, clientAuth: true }),
    client(co = {}) {
      const connector = buildConnector({
        ca: ca.certPem,
        ...(co.certificate ? { cert: co.certificate.certPem, key: co.certificate.keyPem } : {}),
      });
      const c = new Client(`https://${host}:${port}`, {
        connect: (opts, cb) =>
          connector({ ...opts, hostname: '127.0.0.1', port: String(port), servername: host }, cb),
        keepAliveTimeout: 60_000,
        pipelining: 1,
      });
      clients.push(c);
      return c;
    },
    raw() {
      return new Promise((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, servername: host, ca: ca.certPem }, () =>
          resolve(socket),
        );
        socket.once('error', reject);
        raws.push(socket);
      });
    },
    openSockets: () => [...sockets.values()].filter((s) => s.open).length,
    async close() {
      for (const r of raws) r.destroy();
      await Promise.all(clients.map((c) => c.destroy().catch(() => undefined)));
      await node.close(0);
      simulator.closeAllConnections();
      await new Promise<void>((resolve) => simulator.close(() => resolve()));
    },
  };
}

/** Poll `check` until it holds (readiness only: a generous deadline bounds a failure, it decides nothing). */
export async function until(check: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`not reached in ${deadlineMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * The access line `server` wrote for request `reqId`, waited for (a server writes it when its answer ends,
 * which may be just after the client read that answer).
 */
export async function accessLineOf(
  sink: { records(): Record<string, unknown>[] },
  reqId: string,
  server: string,
): Promise<Record<string, unknown>> {
  const find = (): Record<string, unknown> | undefined =>
    sink.records().find((l) => l['msg'] === 'access' && l['reqId'] === reqId && l['server'] === server);
  await until(() => find() !== undefined, `the access line of ${server} for ${reqId}`);
  return find() ?? {};
}

/** An answer as a test reads it. */
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function send(
  client: Client,
  headers: Record<string, string> = {},
  path = '/EWS/Exchange.asmx',
): Promise<Answer> {
  // undici sends the Host of the client's origin.
  const res = await client.request({ path, method: 'GET', headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** NEGOTIATE, then AUTHENTICATE as `user`, on `client`'s one connection; the AUTHENTICATE's answer. */
export async function handshake(
  client: Client,
  user: { user: string; domain?: string },
  extra: Record<string, string> = {},
  scheme: 'NTLM' | 'Negotiate' = 'NTLM',
): Promise<{ challenge: Answer; done: Answer }> {
  const wrapIn = (t: Buffer, first: boolean): Buffer =>
    scheme === 'NTLM' ? t : first ? negTokenInit(t) : negTokenResp(t);
  const challenge = await send(client, {
    authorization: authorization(scheme, wrapIn(ntlmNegotiate(), true)),
    ...extra,
  });
  const done = await send(client, {
    authorization: authorization(scheme, wrapIn(ntlmAuthenticate(user), false)),
    ...extra,
  });
  return { challenge, done };
}
