/**
 * deploy/coexist.service allows the service only AF_INET, AF_INET6 and AF_UNIX sockets
 * (RestrictAddressFamilies), so listing the machine's interfaces, which takes a netlink socket, fails there
 * (`uv_interface_addresses` returns EAFNOSUPPORT). The admin listener on loopback, as the unit runs it, must
 * not need them: it starts and its actions answer the operator. (Only a listener on every address asks, to
 * know its own Host names: src/observability/admin-actions.ts.)
 */
import assert from 'node:assert/strict';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import { afterEach, describe, mock, test } from 'node:test';
import { request } from 'undici';
import { Metrics, startAdminServer } from '../../src/observability/metrics.ts';

/** os.networkInterfaces() as it fails under the unit's RestrictAddressFamilies. */
function interfacesUnavailable(): { calls: () => number } {
  const m = mock.method(os, 'networkInterfaces', () => {
    throw new Error('A system error occurred: uv_interface_addresses returned Unknown system error 97');
  });
  syncBuiltinESMExports();
  return { calls: () => m.mock.callCount() };
}

describe('the admin listener without netlink (deploy/coexist.service)', () => {
  afterEach(() => {
    mock.restoreAll();
    syncBuiltinESMExports();
  });

  test('on loopback it starts without listing interfaces, and POST /reload runs', async () => {
    const interfaces = interfacesUnavailable();
    let reloads = 0;
    const admin = await startAdminServer({
      metrics: new Metrics({ server: 'CAS2013-NY' }),
      host: '127.0.0.1',
      actions: {
        reload: () => {
          reloads++;
          return Promise.resolve({ status: 200, body: { reloaded: true } });
        },
        drain: () => Promise.resolve({ status: 202, body: { draining: true } }),
      },
    });
    try {
      const r = await request(`http://127.0.0.1:${admin.port}/reload`, {
        method: 'POST',
        headers: { 'x-coexist-admin': '1' },
      });
      assert.equal(r.statusCode, 200, await r.body.text());
      assert.equal(reloads, 1);
      assert.equal(interfaces.calls(), 0);
    } finally {
      await admin.close();
    }
  });
});
