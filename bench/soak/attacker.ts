/**
 * The soak's attackers (a child process), during the attack phase only: a slowloris (connections that send a
 * request head a byte at a time and never finish it, reopened as soon as the server cuts them) and a brute
 * force (wrong Basic passwords for one account, one after another) from a source of its own each. What the
 * server answered them is counted: the slowloris must be cut with 408, the guesses refused with 401.
 *
 *   forked by bench/soak/run.ts: { cmd: 'start', lab, slowloris, bruteForce } then { cmd: 'stop' }
 */
import type { TLSSocket } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { connect } from 'node:tls';
import type { LabEndpoint } from './ipc.ts';
import { serve } from './ipc.ts';
import { rawExchange } from './raw.ts';

interface Start {
  readonly lab: LabEndpoint;
  readonly host: string;
  readonly slowloris: { readonly connections: number; readonly source: string };
  readonly bruteForce: { readonly user: string; readonly source: string; readonly perSecond: number };
}

let running = false;
const sockets = new Set<TLSSocket>();
/** Those whose head has begun: only they get the next byte. */
const trickling = new Set<TLSSocket>();
const slow = { opened: 0, cut408: 0, cutOther: 0, openAtStop: 0, otherCuts: {} as Record<string, number> };
const brute = { attempts: 0, refused401: 0, busy503: 0, other: {} as Record<string, number> };
let trickle: NodeJS.Timeout | undefined;
let bruteLoop: Promise<void> | undefined;

function slowConnection(s: Start): void {
  if (!running) return;
  const port = s.lab.ports[s.host];
  const tcp = netConnect({ host: '127.0.0.1', port: port ?? 0, localAddress: s.slowloris.source });
  tcp.on('error', () => undefined);
  const socket = connect({ socket: tcp, servername: s.host, ca: s.lab.caPem });
  slow.opened++;
  sockets.add(socket);
  let received = '';
  socket.on('data', (b: Buffer) => (received += b.toString('latin1')));
  socket.on('error', () => undefined);
  socket.once('secureConnect', () => {
    socket.write(`GET /owa/ HTTP/1.1\r\nHost: ${s.host}\r\nX-Slow: `);
    trickling.add(socket);
  });
  socket.once('close', () => {
    trickling.delete(socket);
    if (!sockets.delete(socket)) return; // closed by stop()
    if (received.startsWith('HTTP/1.1 408 ')) slow.cut408++;
    else {
      slow.cutOther++;
      const k = received === '' ? `nothing (${tlsState(socket)})` : received.slice(0, 12);
      slow.otherCuts[k] = (slow.otherCuts[k] ?? 0) + 1;
    }
    slowConnection(s);
  });
}

const tlsState = (s: TLSSocket): string => (s.encrypted && s.authorized ? 'after TLS' : 'before TLS');

async function bruteForce(s: Start): Promise<void> {
  const { user, source, perSecond } = s.bruteForce;
  while (running) {
    const started = performance.now();
    const guess = `Soak-Guess-${brute.attempts}!`;
    brute.attempts++;
    const a = await rawExchange(s.lab, {
      host: s.host,
      method: 'OPTIONS',
      target: '/Microsoft-Server-ActiveSync',
      headers: { authorization: `Basic ${Buffer.from(`${user}:${guess}`).toString('base64')}` },
      source,
      timeoutMs: 30_000,
    });
    if (a.status === 401 && /^Basic /.test(a.headers['www-authenticate'] ?? '')) brute.refused401++;
    else if (a.status === 503 && a.headers['retry-after'] !== undefined) brute.busy503++;
    else {
      const k = a.status === undefined ? (a.error ?? 'no answer') : String(a.status);
      brute.other[k] = (brute.other[k] ?? 0) + 1;
    }
    const left = 1000 / perSecond - (performance.now() - started);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
  }
}

serve(async (q) => {
  if (q.cmd === 'start') {
    const s = q as unknown as Start;
    running = true;
    // A new cycle (the warm-up's, then the load's): counted afresh.
    Object.assign(slow, { opened: 0, cut408: 0, cutOther: 0, openAtStop: 0, otherCuts: {} });
    Object.assign(brute, { attempts: 0, refused401: 0, busy503: 0, other: {} });
    for (let i = 0; i < s.slowloris.connections; i++) slowConnection(s);
    // One more byte of the head on every connection each half second: never the end of it.
    trickle = setInterval(() => {
      for (const socket of trickling) if (socket.writable) socket.write('a');
    }, 500);
    bruteLoop = bruteForce(s);
    return {};
  }
  if (q.cmd === 'stop') {
    running = false;
    clearInterval(trickle);
    slow.openAtStop = sockets.size;
    for (const socket of [...sockets]) {
      sockets.delete(socket);
      socket.destroy();
    }
    await bruteLoop;
    return { slowloris: slow, bruteForce: brute };
  }
  throw new Error(`unknown command ${q.cmd}`);
});
