/**
 * The data plane under the lab's real HTTPS: streaming without buffering (Outlook Anywhere's large
 * channels), a held ActiveSync Ping, a back end that goes away and comes back, and bad input that is
 * refused with the protocol's status before anything reaches a back end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseEstate } from '../../src/config/index.ts';
import { decodeWbxml, encodeWbxml, textOf, childElement, wbxmlElement } from '../../src/codec/wbxml.ts';
import type { Lab } from '../../src/lab/index.ts';
import { startLab } from '../../src/lab/index.ts';
import { rpcOutBytesHeader } from '../../src/lab/simulators/mailbox-store.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { LabClient } from '../support/lab-client.ts';
import { basic, labClient, LineSink } from '../support/lab-client.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const primary = 'https://mail.o365info.com';
const MiB = 1024 * 1024;
// A full collection on demand, without a command-line flag (V8's own switch, read when a context is made).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const easQuery = (user: string, cmd: string): string =>
  `/Microsoft-Server-ActiveSync?Cmd=${cmd}&User=${user}&DeviceId=DP${user.toUpperCase()}1&DeviceType=TestDevice`;
const easHeaders = { 'ms-asprotocolversion': '12.1', 'content-type': 'application/vnd.ms-sync.wbxml' };
const folderSync = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01,
]);

describe('the data plane through the lab', () => {
  let lab: Lab;
  let sink: LineSink;
  let client: LabClient;
  const pingHoldMs = 300;

  before(async () => {
    const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile);
    sink = new LineSink();
    lab = await startLab({
      index,
      logger: createLogger({ level: 'info', destination: sink }),
      maxPingHoldMs: pingHoldMs,
      retryAfterSeconds: 7,
    });
    client = labClient(lab);
  });
  after(async () => {
    await client.close();
    await lab.close();
  });

  /**
   * Memory the whole lab process retains while `work` runs: the largest growth, over the start, of live
   * JS heap plus Buffer memory, each sample taken right after a full garbage collection (so buffers
   * already passed on and dropped do not count; RSS would count them until the collector ran).
   */
  async function peakGrowth(work: () => Promise<void>): Promise<number> {
    const retained = (): number => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const start = retained();
    let peak = start;
    const timer = setInterval(() => {
      peak = Math.max(peak, retained());
    }, 25);
    try {
      await work();
    } finally {
      clearInterval(timer);
    }
    return peak - start;
  }

  /** An upload source made on the fly, so the test itself holds no 50 MiB buffer. */
  function pattern(total: number, hash: ReturnType<typeof createHash>): Readable {
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    let sent = 0;
    return new Readable({
      read() {
        if (sent >= total) {
          this.push(null);
          return;
        }
        const n = Math.min(chunk.length, total - sent);
        const piece = chunk.subarray(0, n);
        hash.update(piece);
        sent += n;
        this.push(piece);
      },
    });
  }

  const rpcUrl = `${primary}/rpc/rpcproxy.dll?mbx2007-ny.o365info.local:6001`;

  test('Outlook Anywhere: a 50 MiB RPC_IN_DATA upload streams through three servers, memory flat', async () => {
    // Warm the path (TLS sessions, pools, auth caches) so the measurement sees only the transfer.
    await client.fetch(rpcUrl, {
      method: 'RPC_OUT_DATA',
      headers: { [rpcOutBytesHeader]: '1024' },
      user: 'bob@o365info.com',
    });
    const total = 50 * MiB;
    const hash = createHash('sha256');
    let status = 0;
    let answer = '';
    let requestId = '';
    const growth = await peakGrowth(async () => {
      const r = await client.fetch(rpcUrl, {
        method: 'RPC_IN_DATA',
        headers: { 'content-length': String(total), 'content-type': 'application/rpc' },
        body: pattern(total, hash),
        user: 'bob@o365info.com',
      });
      status = r.status;
      answer = r.body.toString();
      requestId = r.requestId;
    });
    assert.equal(status, 200, answer);
    assert.match(answer, new RegExp(String(total)));
    assert.match(answer, new RegExp(hash.digest('hex')));
    await lab.recorder.waitFor(requestId, 'CAS2013-NY');
    assert.deepEqual(lab.recorder.path(requestId), ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
    assert.ok(growth < 16 * MiB, `retained memory grew ${Math.round(growth / MiB)} MiB for a 50 MiB upload`);
  });

  test('Outlook Anywhere: a 50 MiB RPC_OUT_DATA download streams back, memory flat', async () => {
    const total = 50 * MiB;
    let received = 0;
    let requestId = '';
    const growth = await peakGrowth(async () => {
      const r = await client.stream(rpcUrl, {
        method: 'RPC_OUT_DATA',
        headers: { [rpcOutBytesHeader]: String(total), 'content-length': '76' },
        body: Buffer.alloc(76),
        user: 'bob@o365info.com',
      });
      assert.equal(r.status, 200);
      requestId = r.requestId;
      for await (const chunk of r.body) received += (chunk as Buffer).length;
    });
    assert.equal(received, total);
    await lab.recorder.waitFor(requestId, 'CAS2013-NY');
    assert.ok(
      growth < 16 * MiB,
      `retained memory grew ${Math.round(growth / MiB)} MiB for a 50 MiB download`,
    );
  });

  test('ActiveSync Ping: held by the mailbox through every hop, then answered', async () => {
    const ping = encodeWbxml(
      wbxmlElement(
        'Ping',
        'Ping',
        wbxmlElement('Ping', 'HeartbeatInterval', 60),
        wbxmlElement(
          'Ping',
          'Folders',
          wbxmlElement(
            'Ping',
            'Folder',
            wbxmlElement('Ping', 'Id', '1'),
            wbxmlElement('Ping', 'Class', 'Email'),
          ),
        ),
      ),
    );
    const started = Date.now();
    const r = await client.fetch(primary + easQuery('bob', 'Ping'), {
      headers: easHeaders,
      body: ping,
      user: 'bob@o365info.com',
    });
    const held = Date.now() - started;
    assert.equal(r.status, 200);
    assert.ok(held >= pingHoldMs, `held ${held} ms`);
    const answer = decodeWbxml(r.body);
    assert.equal(answer.tag, 'Ping');
    assert.equal(textOf(childElement(answer, 'Status')), '1', 'heartbeat expired, no changes');
    assert.deepEqual(r.path, ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
  });

  test('a stopped back end gives 503 with Retry-After; the path recovers by itself when it returns', async () => {
    await lab.stopServer('CAS2007-NY');
    try {
      const down = await client.fetch(primary + easQuery('bob', 'FolderSync'), {
        headers: easHeaders,
        body: folderSync,
        user: 'bob@o365info.com',
      });
      assert.equal(down.status, 503);
      assert.equal(down.headers['retry-after'], '7');
      assert.equal(down.body.length, 0, 'ActiveSync errors have empty bodies');
    } finally {
      await lab.startServer('CAS2007-NY');
    }
    const up = await client.fetch(primary + easQuery('bob', 'FolderSync'), {
      headers: easHeaders,
      body: folderSync,
      user: 'bob@o365info.com',
    });
    assert.equal(up.status, 200);
    assert.deepEqual(up.path, ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
  });

  const bad: readonly [
    string,
    string,
    Record<string, string>,
    string | Uint8Array | undefined,
    number,
    string,
  ][] = [
    [
      'malformed ActiveSync query (no DeviceId)',
      '/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=bob',
      easHeaders,
      folderSync,
      400,
      'CX_IDENTITY_DEVICE_ID',
    ],
    [
      'malformed base64 query',
      '/Microsoft-Server-ActiveSync?jAAJBAp2MTQwRGV2aWNl%%%',
      easHeaders,
      folderSync,
      400,
      'CX_IDENTITY_QUERY_MALFORMED',
    ],
    [
      'missing credentials',
      easQuery('bob', 'FolderSync'),
      { ...easHeaders, authorization: '' },
      folderSync,
      401,
      'CX_AUTH_REQUIRED',
    ],
    [
      'oversized Autodiscover body',
      '/Autodiscover/Autodiscover.xml',
      { 'content-type': 'text/xml' },
      '<Autodiscover>' + 'x'.repeat(70 * 1024) + '</Autodiscover>',
      413,
      'CX_IDENTITY_BODY_TOO_LARGE',
    ],
  ];
  for (const [title, path, headers, body, status, code] of bad) {
    test(`bad input: ${title} -> ${status} ${code}, and nothing reaches a back end`, async () => {
      const h = { ...headers };
      const withAuth =
        h['authorization'] === '' ? (delete h['authorization'], undefined) : 'bob@o365info.com';
      const r = await client.fetch(primary + path, {
        headers: h,
        ...(body === undefined ? {} : { body }),
        ...(withAuth ? { user: withAuth } : {}),
      });
      assert.equal(r.status, status);
      assert.deepEqual(lab.recorder.records(r.requestId), []);
      const line = sink.records().find((l) => l['reqId'] === r.requestId && l['msg'] === 'access');
      assert.equal(line?.['code'], code);
      assert.equal(line?.['outcome'], 'refused');
      assert.equal(line?.['server'], 'CAS2013-NY');
    });
  }

  test('bad input: Content-Length with Transfer-Encoding is refused by the front end (400) and logged', async () => {
    const to = lab.resolve('mail.o365info.com', 443);
    assert.ok(to);
    const before = sink.lines.length;
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(
        { host: to.address, port: to.port, servername: 'mail.o365info.com', ca: lab.ca.certPem },
        () => {
          socket.write(
            'POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=bob&DeviceId=SMUGGLE1&DeviceType=T HTTP/1.1\r\n' +
              'Host: mail.o365info.com\r\n' +
              `Authorization: ${basic('bob@o365info.com')}\r\n` +
              'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
          );
        },
      );
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400 /);
    const lines = sink.records().slice(before);
    assert.ok(lines.some((l) => l['code'] === 'CX_HTTP_MALFORMED' && l['server'] === 'CAS2013-NY'));
    assert.ok(
      !lines.some((l) => l['msg'] === 'access' && l['server'] !== 'CAS2013-NY'),
      'no back end saw it',
    );
  });

  test('the metrics and log of a run carry no credential', () => {
    const text = sink.lines.join('\n');
    assert.ok(!text.includes('Coexist-Lab-2026!'));
    assert.ok(!/authorization/i.test(text) || text.includes('[redacted]'));
  });
});
