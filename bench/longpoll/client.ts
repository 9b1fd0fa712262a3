/**
 * The raw-socket client of the long-poll bench: opens `n` TCP connections to `port` at `ratePerSecond`,
 * sends one ActiveSync Ping on each (HTTP/1.1, Basic credentials) and waits for the status line.
 * `allowed` caps how many are opened so far (raised by the parent as the back end reports them held).
 * Counts answers by status, connections closed without an answer, and errors.
 *
 *   node --import tsx bench/longpoll/client.ts   (then IPC: { cmd: 'start', port, n, ratePerSecond, device, auth })
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { onAsk, pingRequestBody } from './ipc.ts';

const sockets = new Set<Socket>();
const statuses: Record<string, number> = {};
let opened = 0;
let connected = 0;
let closedWithoutAnswer = 0;
let errors = 0;
let settled = 0;
const errorCodes: Record<string, number> = {};
/** Open no more than this many so far: the parent keeps the proxy's accept queue short (see longpoll.ts). */
let allowed = 0;

function one(port: number, device: string, auth: string): void {
  const head =
    `POST /Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=${device}&DeviceType=BenchPhone HTTP/1.1\r\n` +
    'Host: mail.o365info.com\r\n' +
    `Authorization: ${auth}\r\n` +
    'MS-ASProtocolVersion: 14.1\r\n' +
    'Content-Type: application/vnd.ms-sync.wbxml\r\n' +
    `Content-Length: ${pingRequestBody.length}\r\n\r\n`;
  const socket = connect({ host: '127.0.0.1', port });
  opened++;
  sockets.add(socket);
  let answered = false;
  let first = '';
  socket.once('connect', () => {
    connected++;
    socket.write(head);
    socket.write(pingRequestBody);
  });
  socket.on('data', (chunk: Buffer) => {
    if (answered) return;
    first += chunk.toString('latin1');
    const eol = first.indexOf('\r\n');
    if (eol < 0) return;
    answered = true;
    const status = first.slice(9, 12);
    statuses[status] = (statuses[status] ?? 0) + 1;
    socket.destroy();
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    if (answered) return;
    errors++;
    const code = e.code ?? 'other';
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
  });
  socket.on('close', (hadError) => {
    sockets.delete(socket);
    settled++;
    if (!answered && !hadError) closedWithoutAnswer++;
  });
}

onAsk((ask) => {
  if (ask.cmd === 'start') {
    const port = Number(ask['port']);
    const n = Number(ask['n']);
    const perTick = Math.max(1, Math.round(Number(ask['ratePerSecond']) / 100));
    const device = String(ask['device']);
    const auth = String(ask['auth']);
    allowed = Number(ask['allowed'] ?? n);
    let i = 0;
    const tick = setInterval(() => {
      for (let k = 0; k < perTick && i < n && i < allowed; k++, i++) one(port, `${device}${i}`, auth);
      if (i >= n) clearInterval(tick);
    }, 10);
    return {};
  }
  if (ask.cmd === 'allow') {
    allowed = Number(ask['allowed']);
    return {};
  }
  if (ask.cmd === 'stop') {
    for (const s of sockets) s.destroy();
    return {};
  }
  return {
    opened,
    connected,
    statuses,
    closedWithoutAnswer,
    errors,
    errorCodes,
    settled,
    open: sockets.size,
  };
});
