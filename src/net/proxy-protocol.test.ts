import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  Command,
  IPv4Address,
  IPv4ProxyAddress,
  IPv6Address,
  IPv6ProxyAddress,
  TransportProtocol,
  V2ProxyProtocol,
} from 'proxy-protocol-js';
import { parseProxyHeader, ProxyHeaderError, proxyHeaderLength, readProxyHeader } from './proxy-protocol.ts';

const v2 = (command: Command, address: IPv4ProxyAddress | IPv6ProxyAddress): Buffer =>
  Buffer.from(new V2ProxyProtocol(command, TransportProtocol.STREAM, address).build());
const v4 = new IPv4ProxyAddress(
  IPv4Address.createFrom([192, 0, 2, 7]),
  40000,
  IPv4Address.createFrom([10, 0, 0, 11]),
  443,
);
const v6 = new IPv6ProxyAddress(
  IPv6Address.createFrom([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05]),
  40001,
  IPv6Address.createFrom([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]),
  443,
);

describe('PROXY protocol headers', () => {
  test('version 2: IPv4 and IPv6 clients, LOCAL (the balancer itself) has no client', () => {
    const a = v2(Command.PROXY, v4);
    assert.equal(proxyHeaderLength(a), a.length);
    assert.deepEqual(parseProxyHeader(a), { address: '192.0.2.7', port: 40000 });
    const b = v2(Command.PROXY, v6);
    assert.deepEqual(parseProxyHeader(b.subarray(0, proxyHeaderLength(b))), {
      address: '2001:db8::5',
      port: 40001,
    });
    assert.deepEqual(parseProxyHeader(v2(Command.LOCAL, v4)), {});
  });

  test('version 1: TCP4, TCP6 and UNKNOWN', () => {
    const one = Buffer.from('PROXY TCP4 198.51.100.3 10.0.0.11 5555 443\r\n\x16\x03\x01');
    assert.equal(proxyHeaderLength(one), 44);
    assert.deepEqual(parseProxyHeader(one.subarray(0, 44)), { address: '198.51.100.3', port: 5555 });
    const six = Buffer.from('PROXY TCP6 2001:db8::9 2001:db8::1 6000 443\r\n');
    assert.deepEqual(parseProxyHeader(six), { address: '2001:db8::9', port: 6000 });
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), {});
  });

  test('incomplete headers ask for more bytes; anything else is refused, never guessed at', () => {
    const full = v2(Command.PROXY, v4);
    for (const n of [1, 11, 12, 15, 16, full.length - 1])
      assert.equal(proxyHeaderLength(full.subarray(0, n)), 0);
    assert.equal(proxyHeaderLength(Buffer.from('PROX')), 0);
    assert.equal(proxyHeaderLength(Buffer.from('PROXY TCP4 1.2.3.4')), 0);
    for (const junk of [
      Buffer.from('GET / HTTP/1.1\r\n'),
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), // a TLS ClientHello: a client that skipped the balancer
      Buffer.from(`PROXY ${'x'.repeat(120)}`), // v1 without CRLF in 107 bytes
      Buffer.concat([full.subarray(0, 14), Buffer.from([0xff, 0xff])]), // a 64 KiB v2 header
    ]) {
      assert.throws(() => proxyHeaderLength(junk), ProxyHeaderError);
    }
    assert.throws(
      () => parseProxyHeader(Buffer.from('PROXY TCP4 999.1.1.1 10.0.0.1 1 443\r\n')),
      ProxyHeaderError,
    );
    assert.throws(() => parseProxyHeader(Buffer.from('PROXY TCP4 x y z w\r\n')), ProxyHeaderError);
  });
});

describe('readProxyHeader on a real socket', () => {
  let server: Server;
  let port = 0;
  const accepted: Socket[] = [];
  const waiting: ((s: Socket) => void)[] = [];
  before(async () => {
    server = createServer((s) => {
      const w = waiting.shift();
      if (w) w(s);
      else accepted.push(s);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());
  const nextAccepted = (): Promise<Socket> =>
    new Promise((resolve) => {
      const s = accepted.shift();
      if (s) resolve(s);
      else waiting.push(resolve);
    });
  const dial = async (): Promise<[Socket, Socket]> => {
    const client = connect(port, '127.0.0.1');
    await once(client, 'connect');
    return [client, await nextAccepted()];
  };

  test('a header sent a byte at a time, then the rest of the stream is read as if it came first', async () => {
    const [client, socket] = await dial();
    const reading = readProxyHeader(socket, 10_000);
    const header = v2(Command.PROXY, v4);
    for (const byte of header) {
      client.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    client.write('hello after the header');
    assert.deepEqual(await reading, { address: '192.0.2.7', port: 40000 });
    const got: Buffer[] = [];
    socket.on('data', (d: Buffer) => got.push(d));
    socket.resume();
    client.end();
    await once(socket, 'end');
    assert.equal(Buffer.concat(got).toString(), 'hello after the header');
    socket.destroy();
  });

  test('the header and the first bytes after it in one segment', async () => {
    const [client, socket] = await dial();
    const reading = readProxyHeader(socket, 10_000);
    client.end(
      Buffer.concat([Buffer.from('PROXY TCP4 198.51.100.3 10.0.0.11 5555 443\r\n'), Buffer.from('rest')]),
    );
    assert.deepEqual(await reading, { address: '198.51.100.3', port: 5555 });
    const got: Buffer[] = [];
    socket.on('data', (d: Buffer) => got.push(d));
    socket.resume();
    await once(socket, 'end');
    assert.equal(Buffer.concat(got).toString(), 'rest');
    socket.destroy();
  });

  test('no header, a closed connection, a header that never completes: refused', async () => {
    const [c1, s1] = await dial();
    const r1 = readProxyHeader(s1, 10_000);
    c1.write('GET / HTTP/1.1\r\n\r\n');
    await assert.rejects(r1, ProxyHeaderError);
    s1.destroy();
    c1.destroy();

    const [c2, s2] = await dial();
    const r2 = readProxyHeader(s2, 10_000);
    c2.end('PROXY TCP4');
    await assert.rejects(r2, /closed before a complete PROXY header/);
    s2.destroy();

    const [c3, s3] = await dial();
    const r3 = readProxyHeader(s3, 50);
    c3.write('PROXY TCP4 ');
    await assert.rejects(r3, /no complete PROXY header within 50 ms/);
    s3.destroy();
    c3.destroy();
  });
});
