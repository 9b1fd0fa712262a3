/**
 * The holding back end of the long-poll bench: HTTPS on loopback (it stands in for MBX2013-NY's back-end
 * listener, port 444). Every request is held until the parent says `release` (or `maxHoldMs` passes),
 * then answered 200 with a Ping body; requests whose DeviceId starts with `WARM` are answered at once.
 *
 *   node --import tsx bench/longpoll/holdback.ts   (then IPC: { cmd: 'start', certPem, keyPem, maxHoldMs })
 */
import { createServer } from 'node:https';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onAsk, pingResponseBody, tell } from './ipc.ts';

const held = new Set<ServerResponse>();
let answered = 0;
let arrived = 0;

const answer = (res: ServerResponse): void => {
  held.delete(res);
  if (res.destroyed) return;
  answered++;
  res.writeHead(200, {
    'content-type': 'application/vnd.ms-sync.wbxml',
    'content-length': pingResponseBody.length,
  });
  res.end(pingResponseBody);
};

onAsk((ask) => {
  if (ask.cmd === 'start') {
    const maxHoldMs = Number(ask['maxHoldMs']);
    const server = createServer(
      {
        cert: String(ask['certPem']),
        key: String(ask['keyPem']),
        requestTimeout: 0,
        keepAliveTimeout: 60_000,
      },
      (req, res) => {
        arrived++;
        req.resume();
        if (/[?&]DeviceId=WARM/.test(req.url ?? '')) {
          answer(res);
          return;
        }
        held.add(res);
        const timer = setTimeout(() => answer(res), maxHoldMs);
        res.once('close', () => {
          clearTimeout(timer);
          held.delete(res);
        });
      },
    );
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
      tell({ type: 'ready', port: (server.address() as AddressInfo).port });
    });
    return {};
  }
  if (ask.cmd === 'release') {
    const n = held.size;
    for (const res of [...held]) answer(res);
    return { released: n };
  }
  return { held: held.size, arrived, answered };
});
