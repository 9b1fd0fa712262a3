/**
 * The attacks on the two routing inputs of a Windows handshake added for Autodiscover and OAB (docs/auth.md
 * "The demo estate's chains"; docs/security.md "Windows authentication"): a POST leg without its body is routed
 * on its head, and an OAB request on its `X-AnchorMailbox`. Neither may answer anything before the caller is
 * verified, nor let a caller read another user's mailbox by naming it. Real curl, real Samba (the lab on AD);
 * without Samba and root (npm run setup) they fail, never skip.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { demoPassword } from '../../src/lab/index.ts';
import { curlUserConfig } from '../support/curl.ts';
import { challengeSchemes, curlAt } from '../support/kerberos-lab.ts';
import { labForTests } from '../support/logged-lab.ts';
import { authorization, ntlmNegotiate } from '../support/ntlm.ts';
import { accessLineOf } from '../support/ntlm-front.ts';

const autodiscoverUrl = 'https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml';
const oabUrl = 'https://mail.o365info.com/OAB/7f1d5c8e-2b3a-4c5d-9e8f-0a1b2c3d4e5f/oab.xml';

describe('bodiless handshake legs and the OAB anchor, attacked', () => {
  const demo = labForTests({ directory: 'ad' });

  const accessLine = (reqId: string, server: string): Promise<Record<string, unknown>> =>
    accessLineOf(demo.sink, reqId, server);

  test("an empty Autodiscover POST with an NTLM NEGOTIATE naming bob: a CHALLENGE, none of bob's settings", async () => {
    const r = await curlAt(demo.lab, autodiscoverUrl, [
      '-H',
      `Authorization: ${authorization('NTLM', ntlmNegotiate())}`,
      '-H',
      'X-AnchorMailbox: bob@o365info.com',
      '-H',
      'Content-Type: text/xml',
      '--data-binary',
      '',
    ]);
    assert.equal(r.status, 401);
    assert.match(r.head, /^www-authenticate: NTLM [A-Za-z0-9+/]+=*\r$/im, 'the CHALLENGE leg');
    assert.doesNotMatch(r.body, /legacy\.mail|<Protocol>|<Server>/);
    const id = r.requestIds.at(-1);
    assert.ok(id);
    const line = await accessLine(id, 'CAS2013-NY');
    assert.equal(line['routedBy'], 'x-anchormailbox');
    assert.notEqual(line['auth'], 'ok');
  });

  test('an empty Autodiscover POST without Windows authentication keeps the schema error, nothing routed', async () => {
    const r = await curlAt(demo.lab, autodiscoverUrl, [
      '-H',
      'X-AnchorMailbox: bob@o365info.com',
      '-H',
      'Content-Type: text/xml',
      '--data-binary',
      '',
    ]);
    const id = r.requestIds.at(-1);
    assert.ok(id);
    const line = await accessLine(id, 'CAS2013-NY');
    assert.equal(line['code'], 'CX_IDENTITY_BODY_MALFORMED');
    assert.equal(line['routedBy'], undefined);
    assert.deepEqual(demo.lab.recorder.records(id), []);
  });

  test("a client's X-Coexist-Caller naming bob with method=kerberos: dropped, alice's Basic line says basic", async () => {
    const r = await curlAt(
      demo.lab,
      'https://mail.o365info.com/EWS/Exchange.asmx',
      [
        '-K',
        '-',
        '-H',
        'X-Coexist-Caller: bob@o365info.com; method=kerberos',
        '-H',
        'Content-Type: text/xml',
        '--data-binary',
        '<x/>',
      ],
      process.env,
      curlUserConfig('alice@o365info.com', demoPassword),
    );
    const id = r.requestIds.at(-1);
    assert.ok(id);
    await demo.lab.recorder.waitFor(id, 'MBX2013-NY');
    const line = await accessLine(id, 'MBX2013-NY');
    assert.equal(line['user'], 'alice@o365info.com');
    assert.equal(line['authMethod'], 'basic');
    assert.ok(!demo.lab.recorder.records(id).some((h) => h.user === 'bob@o365info.com'));
  });

  test("alice anchoring her OAB download on bob's mailbox is verified as alice: never bob's mailbox", async () => {
    const r = await curlAt(
      demo.lab,
      oabUrl,
      ['--ntlm', '-K', '-', '-H', 'X-AnchorMailbox: bob@o365info.com'],
      process.env,
      curlUserConfig('alice@o365info.local', demoPassword),
    );
    for (const id of r.requestIds) {
      const records = demo.lab.recorder.records(id);
      assert.ok(!records.some((h) => h.user === 'bob@o365info.com'), `${id}: ${JSON.stringify(records)}`);
    }
    const last = r.requestIds.at(-1);
    assert.ok(last);
    const terminated = await accessLine(last, 'CAS2007-NY');
    assert.equal(terminated['user'], 'alice@o365info.com', 'the terminating hop verified alice');
    // The 2007 CAS does not serve a 2013 mailbox (docs/errors.md), as after Basic.
    assert.equal(terminated['code'], 'CX_ROUTE_VERSION_MISMATCH');
    assert.equal(r.status, 421, r.body);
    assert.ok(r.heads.length >= 2, 'the handshake ran');
    assert.ok(challengeSchemes(r.heads[0] ?? '').includes('NTLM'));
  });
});
