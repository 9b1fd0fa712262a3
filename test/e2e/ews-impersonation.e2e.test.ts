/**
 * A real client impersonating through the front door (docs/security.md "Mailbox access"): Debian's
 * python3-exchangelib with `access_type=IMPERSONATION`, signed in as the service account svc-archive (the
 * ApplicationImpersonation role over every mailbox, examples/o365info.yaml), opens alice's mailbox at
 * https://mail.o365info.com/EWS/Exchange.asmx and reads her Inbox. exchangelib sends the
 * `ExchangeImpersonation` header with `ConnectingSID/PrimarySmtpAddress` and `X-AnchorMailbox` of the
 * impersonated mailbox, so CAS2013-NY routes to MBX2013-NY, whose access line names the service account,
 * the anchor and the impersonation. svc-crm, scoped to alice and bob, gets Exchange's
 * ErrorImpersonateUserDenied for carol, which exchangelib raises as such.
 *
 * What exchangelib 4.9 sent (one run), svc-archive impersonating alice, external, autodiscover off:
 *   ConvertId version probe, without ExchangeImpersonation or X-AnchorMailbox, so routed on the caller to
 *   svc-archive's own MBX2013-NY: Exchange2019, 2016, 2015_SP1, 2015 -> 500 ErrorInvalidServerVersion,
 *   Exchange2013_SP1 -> 200; then GetFolder inbox (twice) with ExchangeImpersonation
 *   ConnectingSID/PrimarySmtpAddress=alice and X-AnchorMailbox alice: CAS2013-NY -> MBX2013-NY, 200.
 * For a 2007 mailbox (bob, carol) the GetFolder as Exchange2013_SP1 is ErrorInvalidServerVersion at the
 * 2007 mailbox server, and exchangelib steps down again, the header on every try, to Exchange2007_SP1.
 * The service accounts sign in with Basic at every hop; the header is read only at the mailbox server.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { ClientEvent } from '../support/clients/run-client.ts';
import { runExchangelib } from '../support/clients/run-client.ts';
import type { LineSink } from '../support/lab-client.ts';
import { demoPassword } from '../support/lab-client.ts';
import { loggedLab } from '../support/logged-lab.ts';

const endpoint = 'https://mail.o365info.com/EWS/Exchange.asmx';

describe('python3-exchangelib with access_type=IMPERSONATION through the front door', () => {
  let lab: Lab;
  let sink: LineSink;
  let caDir: string;

  before(async () => {
    caDir = await mkdtemp(join(tmpdir(), 'coexist-impersonation-ca-'));
    ({ lab, sink } = await loggedLab({ caDir }));
  });
  after(async () => {
    await lab.close();
    await rm(caDir, { recursive: true, force: true });
  });

  /** exchangelib signed in as `account` (the demo password), impersonating `target`; what it sent, as diagnostics. */
  const impersonate = async (account: string, target: string, t?: TestContext) => {
    const run = await runExchangelib(
      lab,
      { email: account, password: demoPassword, endpoint, resolve: [], impersonate: target },
      'external',
    );
    if (t)
      for (const e of run.result.events)
        if (e.kind === 'http')
          t.diagnostic(
            `${e.operation ?? e.method ?? ''} ${e.requestServerVersion ?? ''} ${e.impersonation ?? '-'} anchor ${e.anchor ?? '-'} -> ${e.status ?? e.error ?? ''} ${e.path ?? ''}`,
          );
    return run;
  };

  /** The access line of request `id` at `server`. */
  const lineAt = (id: string | undefined, server: string): Record<string, unknown> | undefined =>
    sink.records().find((r) => r['msg'] === 'access' && r['reqId'] === id && r['server'] === server);

  /** The client's GetFolder requests of the inbox. */
  const inboxRequests = (events: readonly ClientEvent[]): ClientEvent[] =>
    events.filter((e) => e.operation === 'GetFolder' && e.folders?.includes('inbox'));

  test('svc-archive opens alice’s Inbox as alice', async (t) => {
    const run = await impersonate('svc-archive@o365info.com', 'alice@o365info.com', t);
    assert.equal(run.result.ok, true, JSON.stringify(run.result.error ?? run.stderr));
    assert.deepEqual(run.result['inbox'], { name: 'Inbox', totalCount: 2, unreadCount: 2 });
    const [inbox] = inboxRequests(run.result.events);
    assert.ok(inbox, 'exchangelib read the inbox');
    assert.equal(inbox.impersonation, 'PrimarySmtpAddress=alice@o365info.com');
    assert.equal(inbox.anchor, 'alice@o365info.com');
    assert.equal(inbox.status, 200);
    assert.equal(inbox.path, 'CAS2013-NY, MBX2013-NY');
    const line = lineAt(inbox.requestId, 'MBX2013-NY');
    assert.equal(line?.['user'], 'svc-archive@o365info.com');
    assert.equal(line?.['anchor'], 'alice@o365info.com');
    assert.equal(line?.['impersonating'], 'alice@o365info.com');
    assert.equal(line?.['impersonation'], 'allowed');
    assert.equal(line?.['outcome'], 'answered');
  });

  test('svc-crm, scoped to alice and bob, is refused carol’s mailbox: ErrorImpersonateUserDenied', async (t) => {
    const run = await impersonate('svc-crm@o365info.com', 'carol@o365info.com', t);
    assert.equal(run.result.ok, false);
    assert.equal(run.result.error?.type, 'ErrorImpersonateUserDenied', JSON.stringify(run.result.error));
    // exchangelib steps its RequestServerVersion down to what the 2007 mailbox server serves (each step an
    // ErrorInvalidServerVersion fault, before any impersonation is decided); the last request is refused.
    const sent = run.result.events.filter((e) => e.impersonation !== undefined);
    const last = sent.at(-1);
    assert.ok(last, 'exchangelib sent the header');
    assert.equal(last.requestServerVersion, 'Exchange2007_SP1');
    assert.equal(last.status, 500);
    assert.equal(last.path, 'CAS2013-NY, CAS2007-LA, MBX2007-LA');
    const line = lineAt(last.requestId, 'MBX2007-LA');
    assert.equal(line?.['user'], 'svc-crm@o365info.com');
    assert.equal(line?.['anchor'], 'carol@o365info.com');
    assert.equal(line?.['impersonating'], 'carol@o365info.com');
    assert.equal(line?.['impersonation'], 'out-of-scope');
    assert.equal(line?.['code'], 'CX_AUTH_ACCESS_DENIED');
    for (const e of sent.slice(0, -1))
      assert.equal(lineAt(e.requestId, 'MBX2007-LA')?.['impersonation'], undefined, e.requestServerVersion);
  });

  test('svc-archive opens bob’s Inbox (Exchange 2007) as bob, through CAS2007-NY', async () => {
    const run = await impersonate('svc-archive@o365info.com', 'bob@o365info.com');
    assert.equal(run.result.ok, true, JSON.stringify(run.result.error ?? run.stderr));
    assert.deepEqual(run.result['inbox'], { name: 'Inbox', totalCount: 2, unreadCount: 2 });
    const inbox = inboxRequests(run.result.events).find((e) => e.status === 200);
    assert.ok(inbox, 'exchangelib read the inbox');
    assert.equal(inbox.requestServerVersion, 'Exchange2007_SP1');
    assert.equal(inbox.impersonation, 'PrimarySmtpAddress=bob@o365info.com');
    assert.equal(inbox.path, 'CAS2013-NY, CAS2007-NY, MBX2007-NY');
    const line = lineAt(inbox.requestId, 'MBX2007-NY');
    assert.equal(line?.['user'], 'svc-archive@o365info.com');
    assert.equal(line?.['impersonating'], 'bob@o365info.com');
    assert.equal(line?.['impersonation'], 'allowed');
  });
});
