/**
 * Attack: claiming the RPC method marker on a later request of a kept-alive connection. The listener
 * rewrites an Outlook Anywhere first line (`RPC_IN_DATA`) to `POST` with the real method in
 * `X-Coexist-Method`, which the pipeline restores (docs/security.md "Trust per request"). The marker must be
 * believed on that one request only: a later `POST /owa/` on the same connection carrying
 * `X-Coexist-Method: RPC_OUT_DATA` is a POST, at the front end and at every hop after it, and the header
 * goes nowhere.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LineSink } from '../support/lab-client.ts';
import { basic } from '../support/lab-client.ts';
import { accessLines as linesOf, assertEasOptionsWorks, loggedLab } from '../support/logged-lab.ts';
import { rawRequest, requestIds, statuses } from '../support/raw-tls.ts';

const host = 'mail.o365info.com';

describe('attack: the RPC method marker on a later request of the connection', () => {
  let lab: Lab;
  let sink: LineSink;

  before(async () => {
    ({ lab, sink } = await loggedLab());
  });
  after(() => lab.close());

  const accessLines = (id: string): Record<string, unknown>[] => linesOf(sink, id);

  test('a POST after a rewritten RPC_IN_DATA stays a POST, everywhere', async () => {
    const answer = await rawRequest(
      lab,
      host,
      // The rewritten request: bob's RPC IN channel, empty, so it is answered at once and the connection lives.
      `RPC_IN_DATA /rpc/rpcproxy.dll?mbx2007-ny.o365info.local:6001 HTTP/1.1\r\nHost: ${host}\r\n` +
        `Authorization: ${basic('bob@o365info.com')}\r\nContent-Length: 0\r\n\r\n` +
        // The attack: the client's own marker on the next request of the same connection.
        `POST /owa/ HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${basic('alice@o365info.com')}\r\n` +
        'X-Coexist-Method: RPC_OUT_DATA\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(statuses(answer).length, 2, answer.slice(0, 600));
    const [rpc, post] = requestIds(answer);
    assert.ok(rpc && post, 'both answers carry a request id');

    // The rewritten request itself is still RPC_IN_DATA (the rewrite works for the request it made).
    assert.equal(accessLines(rpc)[0]?.['method'], 'RPC_IN_DATA');
    assert.equal(statuses(answer)[0], 200);

    // The later request: a POST at the front end and at every server it reached.
    const lines = accessLines(post);
    assert.ok(lines.length >= 1, 'the POST has access lines');
    for (const l of lines)
      assert.equal(l['method'], 'POST', `${String(l['server'])} logged ${String(l['method'])}`);
    assert.ok(lab.recorder.records(post).length >= 1, 'the POST was served as OWA (the hops recorded it)');
  });

  test('a normal request still works afterwards', async () => {
    await assertEasOptionsWorks(lab);
  });
});
