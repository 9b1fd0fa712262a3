/**
 * DNS rebinding against the admin listener's read-only pages (docs/security.md "The admin listener"): a page
 * on attacker.example, its name then rebound to 127.0.0.1, makes the browser on the admin host fetch
 * `http://attacker.example:<admin port>/status` as a same-origin request and read the answer: every next hop,
 * its URL and last error, the certificates, every counter. The browser sends the attacker's name as `Host`;
 * `/status`, `/metrics` and `/readyz` refuse it (403), as the actions do. The listener's own address passes,
 * and so does a request with no Host (an HTTP/1.0 health checker; no browser sends one). `/healthz` says only
 * "ok" and is open.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'undici';
import type { AdminServer } from '../../src/observability/metrics.ts';
import { Metrics, startAdminServer } from '../../src/observability/metrics.ts';

/** One raw HTTP exchange (the Host header exactly as given, or none), its status and body. */
function raw(port: number, head: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.write(head));
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => {
      const [headers = '', body = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(headers.slice(9, 12)), body });
    });
  });
}

describe('the admin listener: its read-only pages refuse a rebound name', () => {
  let admin: AdminServer;
  let own = '';

  before(async () => {
    const metrics = new Metrics({ server: 'CAS2013-NY' });
    metrics.healthObserver().hopState({ server: 'CAS2007-NY' }, new Set(['ews'] as const), false);
    admin = await startAdminServer({
      metrics,
      readiness: () => ({ ready: false, down: [{ protocol: 'ews', hops: ['CAS2007-NY'] }] }),
      status: () => ({
        hops: [{ server: 'CAS2007-NY', url: 'https://cas2007-ny.o365info.local/EWS', state: 'down' }],
      }),
    });
    own = `127.0.0.1:${admin.port}`;
  });
  after(() => admin?.close());

  for (const path of ['/status', '/metrics', '/readyz']) {
    test(`${path}: the attacker's name as Host is 403 and reveals nothing; the listener's own address is answered`, async () => {
      const attack = await request(`http://127.0.0.1:${admin.port}${path}`, {
        headers: { host: `attacker.example:${admin.port}` },
      });
      const text = await attack.body.text();
      assert.equal(attack.statusCode, 403);
      assert.deepEqual(JSON.parse(text), {
        error: "Host is not this listener's own address",
        reason: 'host',
      });
      assert.ok(!text.includes('CAS2007'), 'nothing of the server in the refusal');
      // A name that resolves to loopback is still a name: DNS rebinding brings names.
      const named = await request(`http://127.0.0.1:${admin.port}${path}`, {
        headers: { host: `localhost:${admin.port}` },
      });
      await named.body.dump();
      assert.equal(named.statusCode, 403);

      const mine = await request(`http://${own}${path}`);
      const body = await mine.body.text();
      assert.equal(mine.statusCode, path === '/readyz' ? 503 : 200);
      assert.ok(body.includes('CAS2007-NY'), `${path} answered for its own address`);
    });
  }

  test('no Host at all (an HTTP/1.0 checker) is answered; /healthz is open whatever the Host', async () => {
    const noHost = await raw(admin.port, 'GET /readyz HTTP/1.0\r\n\r\n');
    assert.equal(noHost.status, 503);
    assert.match(noHost.body, /"ready":false/);
    const metrics = await raw(admin.port, 'GET /metrics HTTP/1.0\r\n\r\n');
    assert.equal(metrics.status, 200);
    const healthz = await raw(
      admin.port,
      `GET /healthz HTTP/1.1\r\nHost: attacker.example:${admin.port}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(healthz.status, 200);
    assert.equal(healthz.body, 'ok');
  });
});
