/**
 * `POST /reload` and `POST /drain` are no new way in (docs/security.md "The admin listener"): only the admin
 * listener has them, only as `POST`, and never for a web page a browser on the admin host is made to load:
 * a cross-site form POST (Origin), DNS rebinding (a Host that is not the listener's address), a simple
 * request without the custom header, a CORS preflight. The client listeners answer 404 for both paths.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import { parseEstate } from '../../src/config/index.ts';
import type { ServerNode } from '../../src/dataplane/index.ts';
import { startServerNode } from '../../src/dataplane/index.ts';
import type { AdminServer } from '../../src/observability/metrics.ts';
import { Metrics, startAdminServer } from '../../src/observability/metrics.ts';
import { createLogger } from '../../src/observability/log.ts';
import { LineSink } from '../support/lab-client.ts';
import { demoEstateFile } from '../support/logged-lab.ts';

describe('the admin listener: POST /reload and /drain only from the operator', () => {
  let admin: AdminServer;
  const ran = { reload: 0, drain: 0 };
  let base = '';

  before(async () => {
    admin = await startAdminServer({
      metrics: new Metrics({ server: 'CAS2013-NY' }),
      actions: {
        reload: () => {
          ran.reload++;
          return Promise.resolve({ status: 200, body: { reloaded: true } });
        },
        drain: () => {
          ran.drain++;
          return Promise.resolve({ status: 202, body: { draining: true } });
        },
      },
    });
    base = `http://127.0.0.1:${admin.port}`;
  });
  after(() => admin?.close());

  const attempt = async (
    path: string,
    method: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; headers: Record<string, unknown>; text: string }> => {
    const r = await request(`${base}${path}`, {
      method: method as 'POST',
      headers,
      ...(body === undefined ? {} : { body }),
    });
    return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
  };

  test('a cross-site form POST (Origin, form content type, no custom header) runs nothing', async () => {
    for (const path of ['/reload', '/drain']) {
      const r = await attempt(
        path,
        'POST',
        { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
        'a=1',
      );
      assert.equal(r.status, 403, path);
      assert.equal((JSON.parse(r.text) as { reason: string }).reason, 'origin');
    }
    assert.deepEqual(ran, { reload: 0, drain: 0 });
  });

  test('DNS rebinding: the header and no Origin, but Host is the attacker name', async () => {
    const r = await attempt('/drain', 'POST', {
      host: `rebind.evil.example:${admin.port}`,
      'x-coexist-admin': '1',
    });
    assert.equal(r.status, 403);
    assert.equal((JSON.parse(r.text) as { reason: string }).reason, 'host');
    assert.deepEqual(ran, { reload: 0, drain: 0 });
  });

  test('a simple request without the custom header (text/plain, as a no-cors fetch sends it)', async () => {
    const r = await attempt('/reload', 'POST', { 'content-type': 'text/plain' }, '{}');
    assert.equal(r.status, 403);
    assert.equal((JSON.parse(r.text) as { reason: string }).reason, 'header');
    assert.deepEqual(ran, { reload: 0, drain: 0 });
  });

  test('other methods: 405 with Allow: POST; a CORS preflight gets no Access-Control-Allow-*', async () => {
    for (const method of ['GET', 'HEAD', 'PUT', 'DELETE']) {
      const r = await attempt('/reload', method, { 'x-coexist-admin': '1' });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers['allow'], 'POST');
    }
    const preflight = await attempt('/drain', 'OPTIONS', {
      origin: 'https://evil.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'x-coexist-admin',
    });
    assert.equal(preflight.status, 405);
    assert.ok(!Object.keys(preflight.headers).some((h) => h.startsWith('access-control-')));
    assert.deepEqual(ran, { reload: 0, drain: 0 });
  });

  test("the operator's request (its own address, the header, no Origin) runs the action once", async () => {
    const r = await attempt('/reload', 'POST', { 'x-coexist-admin': '1' });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { reloaded: true });
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(ran, { reload: 1, drain: 0 });
  });
});

describe('the client listeners have no /reload or /drain', () => {
  let node: ServerNode;

  before(async () => {
    const { index } = parseEstate(await readFile(demoEstateFile, 'utf8'), demoEstateFile);
    const server = index.server('CAS2013-NY');
    assert.ok(server);
    node = await startServerNode({
      index,
      server,
      listeners: [{ name: 'front', role: 'cas', host: '127.0.0.1', port: 0 }],
      logger: createLogger({ level: 'warn', destination: new LineSink() }),
      health: { probe: false },
    });
  });
  after(() => node?.close(0));

  test('POST /reload and /drain with the admin header: 404, nothing reloaded or drained', async () => {
    for (const path of ['/reload', '/drain']) {
      const r = await request(`http://127.0.0.1:${node.port('front')}${path}`, {
        method: 'POST',
        headers: { host: 'mail.o365info.com', 'x-coexist-admin': '1' },
      });
      await r.body.dump();
      assert.equal(r.statusCode, 404, path);
    }
    assert.equal(node.generation, 1);
    const page = await request(
      `http://127.0.0.1:${node.port('front')}/Microsoft-Server-ActiveSync/healthcheck.htm`,
      { headers: { host: 'mail.o365info.com' } },
    );
    await page.body.dump();
    assert.equal(page.statusCode, 200, 'not draining');
  });
});
