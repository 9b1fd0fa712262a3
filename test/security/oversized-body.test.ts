/**
 * Attack: a body that never ends. The front end reads a request body only where it must know who the
 * request is for (Autodiscover's EMailAddress, the OWA logon form), and only up to that protocol's cap. A
 * client that streams a chunked body past the cap, or declares one larger than the cap, must get
 * 413 CX_IDENTITY_BODY_TOO_LARGE with `Connection: close`, and the server must close the connection rather
 * than read (or keep) what follows; nothing reaches a back end. Raw TLS, so the client controls every byte.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { basic } from '../support/lab-client.ts';
import { answerId, loggedLab, refusedAccessLine } from '../support/logged-lab.ts';
import { host, tls } from './edge-client.ts';

/** The most the attacking client sends before the test calls the server's reading unbounded. */
const clientLimit = 64 * 1024 * 1024;

describe('attack: a request body past the cap', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab());
  });
  after(() => lab.close());

  /** Everything the server sent until it closed the connection, and how many body bytes went out. */
  async function attack(
    head: string,
    body: 'endless-chunks' | 'none',
  ): Promise<{ answer: string; sent: number }> {
    // From the external client address, as a phone on the internet would come.
    const socket = await tls(lab);
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => (answer += s));
    socket.on('error', () => undefined); // the server's close can reset a write in flight
    // Not events.once: it rejects on 'error', and the server's close may fail a write in flight (EPIPE).
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let sent = 0;
    socket.write(head);
    if (body === 'endless-chunks') {
      const chunk = `4000\r\n${'<a>'.repeat(5461)}x\r\n`; // 16 KiB a chunk, and never the last chunk
      // Write while the server reads; stop when it closes (or, failing the test, at the client's limit).
      while (!socket.destroyed && sent < clientLimit) {
        sent += 0x4000;
        if (!socket.write(chunk)) {
          await Promise.race([once(socket, 'drain').catch(() => undefined), closed]);
        }
      }
    }
    await closed;
    return { answer, sent };
  }

  const accessLine = (answer: string): Record<string, unknown> | undefined =>
    refusedAccessLine(lab, sink, answerId(answer));

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
