/**
 * Attack: a body that never ends. The front end reads a request body only where it must know who the
 * request is for (Autodiscover's EMailAddress, the OWA logon form), and only up to that protocol's cap. A
 * client that streams a chunked body past the cap, or declares one larger than the cap, must get
 * 413 CX_IDENTITY_BODY_TOO_LARGE with `Connection: close`, and the server must close the connection rather
 * than read (or keep) what follows; nothing reaches a back end. Raw TLS, so the client controls every byte.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { parseEstate } from '../../src/config/index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses, startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import { basic, LineSink } from '../support/lab-client.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const host = 'mail.o365info.com';
/** The most the attacking client sends before the test calls the server's reading unbounded. */
const clientLimit = 64 * 1024 * 1024;

describe('attack: a request body past the cap', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile);
    sink = new LineSink();
    lab = await startLab({ index, logger: createLogger({ level: 'info', destination: sink }) });
  });
  after(() => lab.close());

  async function open(): Promise<TLSSocket> {
    const to = lab.resolve(host, 443);
    assert.ok(to, 'the lab resolves the primary namespace');
    // From the external client address, as a phone on the internet would come.
    const tcp = netConnect({ host: to.address, port: to.port, localAddress: labAddresses.externalClient });
    const socket = connect({ socket: tcp, servername: host, ca: lab.ca.certPem });
    await once(socket, 'secureConnect');
    return socket;
  }

  /** Everything the server sent until it closed the connection, and how many body bytes went out. */
  async function attack(
    head: string,
    body: 'endless-chunks' | 'none',
  ): Promise<{ answer: string; sent: number }> {
    const socket = await open();
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => (answer += s));
    socket.on('error', () => undefined); // the server's close can reset a write in flight
    const closed = once(socket, 'close');
    let sent = 0;
    socket.write(head);
    if (body === 'endless-chunks') {
      const chunk = `4000\r\n${'<a>'.repeat(5461)}x\r\n`; // 16 KiB a chunk, and never the last chunk
      // Write while the server reads; stop when it closes (or, failing the test, at the client's limit).
      while (!socket.destroyed && sent < clientLimit) {
        sent += 0x4000;
        if (!socket.write(chunk)) {
          await Promise.race([once(socket, 'drain'), closed]);
        }
      }
    }
    await closed;
    return { answer, sent };
  }

  function accessLine(answer: string): Record<string, unknown> | undefined {
    const id = /\r\nrequest-id: ([^\r]+)\r\n/i.exec(answer)?.[1];
    assert.ok(id, `the answer carries a request id:\n${answer.slice(0, 400)}`);
    assert.deepEqual(
      lab.recorder.records(id),
      [],
      'refused at the front door: no server of the estate acted on it',
    );
    return sink.records().find((l) => l['reqId'] === id && l['msg'] === 'access');
  }

  test('a chunked Autodiscover body that never ends: 413 and Connection: close, then the server hangs up', async () => {
    const { answer, sent } = await attack(
      `POST /Autodiscover/Autodiscover.xml HTTP/1.1\r\nHost: ${host}\r\n` +
        `Authorization: ${basic('bob@o365info.com')}\r\nContent-Type: text/xml\r\n` +
        'Transfer-Encoding: chunked\r\n\r\n',
      'endless-chunks',
    );
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /\r\nconnection: close\r\n/i);
    assert.ok(
      sent < clientLimit,
      `the server closed the connection (it read ${sent} bytes of an endless body)`,
    );
    const line = accessLine(answer);
    assert.equal(line?.['code'], 'CX_IDENTITY_BODY_TOO_LARGE');
    assert.equal(line?.['status'], 413);
  });

  test('a declared Content-Length over the cap: 413 before a byte of the body is read', async () => {
    const { answer } = await attack(
      `POST /Autodiscover/Autodiscover.xml HTTP/1.1\r\nHost: ${host}\r\n` +
        `Authorization: ${basic('bob@o365info.com')}\r\nContent-Type: text/xml\r\n` +
        `Content-Length: ${1024 * 1024 * 1024}\r\n\r\n`,
      'none',
    );
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /\r\nconnection: close\r\n/i);
    assert.equal(accessLine(answer)?.['code'], 'CX_IDENTITY_BODY_TOO_LARGE');
  });
});
