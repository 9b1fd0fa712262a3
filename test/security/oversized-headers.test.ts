/**
 * Attack: request heads too large, or with too many fields. A head is held in memory whole while it is
 * parsed, for every connection; the front door accepts at most `limits.maxHeaderBytes` (16 KiB) and
 * `limits.maxHeaderCount` (100) fields (docs/security.md "Limits and timeouts at the edge", the defaults
 * here): past either, 431 with `Connection: close`, one access line with CX_HTTP_HEADERS_TOO_LARGE, a
 * count, and nothing reaches a back end; a normal request still works.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink } from '../support/lab-client.ts';
import { basic, labClient } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';
import { assertFolderSyncWorks, edgeCount, host, tls, untilClosed } from './edge-client.ts';

describe('attack: request heads too large', () => {
  let lab: Lab;
  let sink: LineSink;
  let client: LabClient;

  before(async () => {
    ({ lab, sink } = await loggedLab());
    client = labClient(lab);
  });
  after(async () => {
    await client.close();
    await lab.close();
  });

  const start =
    `GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: ${host}\r\n` +
    `Authorization: ${basic('bob@o365info.com')}\r\n`;

  for (const [title, head] of [
    ['a 20 KiB header field', `${start}X-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`],
    [
      '150 header fields',
      `${start}${Array.from({ length: 150 }, (_, i) => `X-Field-${i}: ${i}\r\n`).join('')}\r\n`,
    ],
  ] as const) {
    test(`${title}: 431, Connection: close, one access line`, async () => {
      const before = await edgeCount(lab, 'headers_too_large');
      const lines = sink.lines.length;
      const socket = await tls(lab);
      socket.write(head);
      const end = await untilClosed(socket, performance.now());
      assert.match(end.received, /^HTTP\/1\.1 431 /);
      assert.match(end.received, /\r\nconnection: close\r\n/i);
      assert.equal((await edgeCount(lab, 'headers_too_large')) - before, 1);
      const access = sink
        .records()
        .slice(lines)
        .filter((l) => l['msg'] === 'access' && l['code'] === 'CX_HTTP_HEADERS_TOO_LARGE');
      assert.equal(access.length, 1);
      assert.equal(access[0]?.['status'], 431);
      assert.equal(access[0]?.['server'], 'CAS2013-NY', 'refused at the front door, nowhere further');
      await assertFolderSyncWorks(client);
    });
  }
});
