/**
 * A directory that cannot be asked (LDAP down and nothing cached): every protocol gets a temporary error
 * in its own dialect, never a 401 (the credentials may well be right) and never a 500, and the front end
 * keeps serving. Real sockets; the directory is a stand-in that fails, the front end is the real one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { parseEstate } from '../../src/config/index.ts';
import type { Mailbox } from '../../src/core/estate/estate-index.ts';
import type { ServerNode } from '../../src/dataplane/index.ts';
import { startServerNode } from '../../src/dataplane/index.ts';
import type { Directory } from '../../src/directory/directory.ts';
import { createLogger } from '../../src/observability/log.ts';
import { basic, LineSink } from '../support/lab-client.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

/** A directory whose server is down: every question fails. */
class DownDirectory implements Directory {
  calls = 0;
  findMailbox(): Promise<Mailbox | undefined> {
    this.calls++;
    return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:389'));
  }
  authenticate(): Promise<Mailbox | undefined> {
    this.calls++;
    return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:389'));
  }
}

describe('the directory is down', () => {
  let node: ServerNode;
  let base = '';
  const sink = new LineSink();
  const directory = new DownDirectory();

  before(async () => {
    const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile);
    const server = index.server('CAS2013-NY');
    assert.ok(server);
    node = await startServerNode({
      index,
      server,
      listeners: [{ name: 'front', role: 'cas', host: '127.0.0.1', port: 0 }],
      logger: createLogger({ destination: sink }),
      directory,
      retryAfterSeconds: 11,
    });
    base = `http://127.0.0.1:${node.port('front')}`;
  });
  after(() => node.close(0));

  async function send(path: string, body: string | Uint8Array, contentType: string) {
    const r = await request(base + path, {
      method: 'POST',
      headers: {
        host: 'mail.o365info.com',
        authorization: basic('bob@o365info.com'),
        'content-type': contentType,
      },
      body,
    });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  }

  test('ActiveSync: 503 with Retry-After and an empty body', async () => {
    const r = await send(
      '/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=bob&DeviceId=DOWN1&DeviceType=T',
      Uint8Array.from([0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01]),
      'application/vnd.ms-sync.wbxml',
    );
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '11');
    assert.equal(r.body, '');
  });

  test('EWS: 503 with Retry-After, not 401 or 500', async () => {
    const r = await send('/EWS/Exchange.asmx', '<x/>', 'text/xml');
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '11');
    assert.match(r.body, /CX_DIRECTORY_UNAVAILABLE/);
  });

  test("Autodiscover: the schema's own 'server busy' answer (POX 603)", async () => {
    const r = await send(
      '/Autodiscover/Autodiscover.xml',
      '<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>bob@o365info.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>',
      'text/xml',
    );
    assert.equal(r.status, 200);
    assert.match(r.body, /<ErrorCode>603<\/ErrorCode>/);
    assert.equal(r.headers['x-soap-enabled'], 'True');
  });

  test('every request was logged as the directory being unavailable, and asked the directory', () => {
    const access = sink.records().filter((l) => l['msg'] === 'access');
    assert.equal(access.length, 3);
    assert.ok(access.every((l) => l['code'] === 'CX_DIRECTORY_UNAVAILABLE' && l['auth'] === 'error'));
    assert.ok(directory.calls >= 3);
    assert.ok(!sink.lines.join('\n').includes('Coexist-Lab-2026!'));
  });
});
