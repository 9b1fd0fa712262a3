/**
 * A real EWS client with NTLM through the front door on the lab's Active Directory (docs/auth.md, docs/security.md
 * "Windows authentication"): Debian's python3-exchangelib with `auth_type=NTLM` (python3-requests-ntlm) signs in as
 * bob at https://mail.o365info.com/EWS/Exchange.asmx, autodiscover off, and reads his Inbox: CAS2013-NY passes the
 * handshake through pinned, CAS2007-NY terminates it with Samba's verifier and hands the caller to MBX2007-NY
 * (docs/flows.md EWS-2). requests-ntlm computes MD4, which OpenSSL 3 keeps in its legacy provider: the test writes
 * an OpenSSL configuration that activates the default and legacy providers in its own temporary directory and
 * points the client's OPENSSL_CONF at it. Real exchangelib, real Samba AD, real TLS; without them it fails, never
 * skips.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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

/** OpenSSL 3's configuration with the legacy provider (MD4) next to the default one. */
const legacyOpenSsl = `openssl_conf = openssl_init

[openssl_init]
providers = provider_sect

[provider_sect]
default = default_sect
legacy = legacy_sect

[default_sect]
activate = 1

[legacy_sect]
activate = 1
`;

describe('python3-exchangelib with auth_type=NTLM through the lab on Active Directory', () => {
  let lab: Lab;
  let sink: LineSink;
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-exchangelib-ntlm-'));
    const conf = join(dir, 'openssl-legacy.cnf');
    await writeFile(conf, legacyOpenSsl);
    env = { OPENSSL_CONF: conf };
    ({ lab, sink } = await loggedLab({ directory: 'ad' }));
  });
  after(async () => {
    await lab?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const lineAt = (id: string | undefined, server: string): Record<string, unknown> | undefined =>
    sink.records().find((r) => r['msg'] === 'access' && r['reqId'] === id && r['server'] === server);

  const show = (t: TestContext, events: readonly ClientEvent[]): void => {
    for (const e of events)
      if (e.kind === 'http')
        t.diagnostic(
          `${e.operation ?? e.method ?? ''} ${e.requestServerVersion ?? ''} auth ${e.authorization ?? '-'} anchor ${e.anchor ?? '-'} -> ${e.status ?? e.error ?? ''} ${e.path ?? ''}`,
        );
  };

  const exchangelib = (job: { email: string; login: string; version?: 'Exchange2007_SP1' }) =>
    runExchangelib(
      lab,
      { ...job, password: demoPassword, endpoint, resolve: [], auth: 'ntlm' },
      'external',
      env,
    );

  /** The GetFolder requests of the inbox that were answered 200, each through `path` to `user`'s mailbox. */
  const assertInboxRead = async (events: readonly ClientEvent[], user: string, path: string[]) => {
    const http = events.filter((e) => e.kind === 'http');
    // exchangelib authenticated with NTLM, never Basic.
    assert.ok(http.some((e) => e.authorization === 'NTLM'));
    assert.ok(!http.some((e) => e.authorization === 'Basic'));
    const inbox = http.filter((e) => e.operation === 'GetFolder' && e.folders?.includes('inbox'));
    const answered = inbox.filter((e) => e.status === 200);
    assert.ok(answered.length > 0, 'the Inbox was read');
    // exchangelib's account services (GetFolder) send X-AnchorMailbox: the account's address.
    for (const e of inbox) assert.equal(e.anchor, user, 'exchangelib anchors its account services');
    const store = path.at(-1) ?? '';
    for (const e of answered) {
      const id = e.requestId;
      assert.ok(id);
      await lab.recorder.waitFor(id, store);
      assert.deepEqual(lab.recorder.path(id), path);
      assert.equal(lab.recorder.records(id).find((h) => h.server === store)?.user, user);
      assert.equal(lineAt(id, 'CAS2013-NY')?.['authMethod'], 'ntlm');
    }
  };

  test('bob (version configured, no probe) reads his Inbox: CAS2013-NY -> CAS2007-NY -> MBX2007-NY', async (t) => {
    const run = await exchangelib({
      email: 'bob@o365info.com',
      login: 'O365INFO\\bob',
      version: 'Exchange2007_SP1',
    });
    show(t, run.result.events);
    assert.equal(run.result.ok, true, JSON.stringify(run.result.error ?? run.stderr));
    assert.deepEqual(run.result['inbox'], { name: 'Inbox', totalCount: 2, unreadCount: 2 });
    await assertInboxRead(run.result.events, 'bob@o365info.com', ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
  });

  test("alice, with exchangelib's version probe (unanchored): her mailbox is at the default next hop, 200", async (t) => {
    const run = await exchangelib({ email: 'alice@o365info.com', login: 'O365INFO\\alice' });
    show(t, run.result.events);
    assert.equal(run.result.ok, true, JSON.stringify(run.result.error ?? run.stderr));
    assert.deepEqual(run.result['inbox'], { name: 'Inbox', totalCount: 2, unreadCount: 2 });
    const probes = run.result.events.filter((e) => e.kind === 'http' && e.operation === 'ConvertId');
    assert.ok(probes.length > 0, 'exchangelib probed the version');
    for (const e of probes) assert.equal(e.anchor, undefined, 'the version probe carries no X-AnchorMailbox');
    await assertInboxRead(run.result.events, 'alice@o365info.com', ['CAS2013-NY', 'MBX2013-NY']);
  });

  test('bob, with the version probe: unanchored, his AUTHENTICATE routes elsewhere than the NEGOTIATE went: 401', async (t) => {
    // docs/auth.md: the probe names no mailbox, so the NEGOTIATE goes to the default next hop (MBX2013-NY); the
    // AUTHENTICATE names bob, whose mailbox is behind CAS2007-NY. coexist cannot move a handshake (the AUTHENTICATE
    // answers the first next hop's challenge) and says so: CX_AUTH_WINDOWS_REROUTED. exchangelib does not retry a 401.
    const run = await exchangelib({ email: 'bob@o365info.com', login: 'O365INFO\\bob' });
    show(t, run.result.events);
    assert.equal(run.result.ok, false);
    assert.equal(run.result.error?.type, 'UnauthorizedError');
    const refused = run.result.events.filter(
      (e) =>
        e.kind === 'http' && e.operation === 'ConvertId' && e.authorization === 'NTLM' && e.status === 401,
    );
    const last = refused.at(-1)?.requestId;
    assert.ok(last, 'the AUTHENTICATE was answered with a request id');
    const line = lineAt(last, 'CAS2013-NY');
    assert.equal(line?.['code'], 'CX_AUTH_WINDOWS_REROUTED');
    assert.equal(line?.['routedBy'], 'ntlm-user');
  });
});
