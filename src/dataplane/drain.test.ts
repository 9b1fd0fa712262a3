import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { request } from 'undici';
import { decodeWbxml } from '../codec/wbxml.ts';
import { parsePing } from '../client/activesync/commands.ts';
import type { HeldPing } from './drain.ts';
import { HeldPings, isPing, pingExpiredBody } from './drain.ts';

const head = (method: string, query: string) => ({
  method,
  host: 'mail.o365info.com',
  path: '/Microsoft-Server-ActiveSync',
  query,
  headers: {},
  listener: 'front',
});

describe('isPing', () => {
  test('a POST whose command is Ping, in the plain or the base64 query', () => {
    assert.equal(isPing(head('POST', 'Cmd=Ping&User=bob&DeviceId=A1&DeviceType=iPhone')), true);
    assert.equal(isPing(head('POST', 'Cmd=Sync&User=bob&DeviceId=A1&DeviceType=iPhone')), false);
    assert.equal(isPing(head('OPTIONS', 'Cmd=Ping&User=bob&DeviceId=A1&DeviceType=iPhone')), false);
    // MS-ASHTTP base64 form: version 141, command 18 (Ping), locale, device id "A1", no policy key, type "T".
    const b64 = Buffer.from([141, 18, 0x09, 0x04, 2, 0x41, 0x31, 0, 1, 0x54]).toString('base64');
    assert.equal(isPing(head('POST', b64)), true);
  });

  test('the early answer is a WBXML Ping with Status 1 (the heartbeat expired with nothing to report)', () => {
    assert.equal(parsePing(decodeWbxml(pingExpiredBody)).status, 1);
  });
});

describe('HeldPings', () => {
  let server: Server;
  let port = 0;
  const pings = new HeldPings();
  const held: { res: ServerResponse; ping: HeldPing; aborted: boolean }[] = [];
  const arrived: (() => void)[] = [];

  before(async () => {
    server = createServer((_req: IncomingMessage, res: ServerResponse) => {
      const entry = { res, aborted: false } as { res: ServerResponse; ping: HeldPing; aborted: boolean };
      entry.ping = pings.hold(res, () => {
        res.writeHead(200, { 'content-type': 'application/vnd.ms-sync.wbxml' });
        res.end(pingExpiredBody);
      });
      entry.ping.cancel.once('abort', () => (entry.aborted = true));
      held.push(entry);
      arrived.shift()?.();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const send = async (): Promise<{ answer: Promise<number> }> => {
    const came = new Promise<void>((r) => arrived.push(r));
    const answer = request(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x' }).then(async (r) => {
      await r.body.dump();
      return r.statusCode;
    });
    await came;
    return { answer };
  };

  test('releaseAll answers what is held, cancels its next hop once the answer is out; later ones wait', async () => {
    const a = await send();
    const b = await send();
    // b's next hop answered first: no longer held.
    const second = held[1] as (typeof held)[number];
    second.res.writeHead(200);
    second.res.end();
    second.ping.done();
    assert.equal(await b.answer, 200);
    assert.equal(pings.releaseAll(), 1);
    assert.equal(await a.answer, 200);
    const first = held[0] as (typeof held)[number];
    if (!first.aborted) await once(first.ping.cancel, 'abort');
    assert.equal(held[0]?.aborted, true);
    assert.equal(held[0]?.ping.answered, true);
    assert.equal(second.aborted, false);
    assert.equal(second.ping.answered, false);

    // A Ping that comes after a releaseAll (during the grace) is held.
    await send();
    assert.equal(pings.size, 1);
  });

  test('close answers what is held and every later Ping at once', async () => {
    const before = held.length;
    assert.equal(pings.close(), 1);
    const c = await send();
    assert.equal(await c.answer, 200);
    assert.equal(held[before]?.ping.answered, true);
    assert.equal(pings.size, 0);
  });
});
