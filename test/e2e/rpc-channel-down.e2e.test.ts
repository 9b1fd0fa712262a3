/**
 * An Outlook Anywhere channel whose next hop is down: the client gets the data plane's 502, and the channel's
 * own upstream client (Upstreams.channel, one connection per channel as MS-RPCH wants) is let go, so that
 * stopping the server afterwards works. Found by the soak (docs/security.md "Soak"): the client that never
 * connected stayed in the channel set, and closing the server failed with ClientDestroyedError.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labClient } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';

test('an RPC channel to a stopped 2007 CAS gets 502, and the lab still closes cleanly', async () => {
  const { lab } = await loggedLab();
  let closed = false;
  try {
    await lab.stopServer('CAS2007-NY');
    const client = labClient(lab);
    try {
      const r = await client.fetch(
        'https://mail.o365info.com/rpc/rpcproxy.dll?mbx2007-ny.o365info.local:6001',
        {
          method: 'RPC_OUT_DATA',
          headers: { 'content-length': '76' },
          body: new Uint8Array(76),
          user: 'bob@o365info.com',
        },
      );
      assert.equal(r.status, 502);
      assert.deepEqual(r.path, ['CAS2013-NY']);
    } finally {
      await client.close();
    }
    await lab.startServer('CAS2007-NY');
    await lab.close();
    closed = true;
  } finally {
    if (!closed) await lab.close().catch(() => undefined);
  }
});
