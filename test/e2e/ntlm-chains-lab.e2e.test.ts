/**
 * NTLM and Negotiate on the demo estate's remaining chains (docs/auth.md "The demo estate's chains"): `curl
 * --ntlm` and, after `kinit` against the lab's Samba KDC, `curl --negotiate` at the front door for
 * Autodiscover (POX, bob and alice), MAPI (alice's `MailboxId` through CAS2013-NY -> MBX2013-NY) and OAB
 * (anchored and not). Real curl, real Samba, real TLS; Samba, krb5-user and squid must be installed and the
 * tests run as root (npm run setup): without them they fail, never skip.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mailboxGuid } from '../../src/dataplane/autodiscover/exchange.ts';
import { demoPassword } from '../../src/lab/index.ts';
import { curlUserConfig } from '../support/curl.ts';
import type { CurlAnswer, KerberosLogon } from '../support/kerberos-lab.ts';
import { curlAt, kerberosLogon } from '../support/kerberos-lab.ts';
import { labForTests } from '../support/logged-lab.ts';
import { accessLineOf } from '../support/ntlm-front.ts';

const autodiscoverUrl = 'https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml';
const pox = (address: string): string =>
  '<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request>' +
  `<EMailAddress>${address}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`;
const mapiHeaders = [
  'Content-Type: application/mapi-http',
  'X-RequestType: Connect',
  'X-RequestId: {C715155F-2BE8-44E0-BD34-2960065754C8}:1',
  'X-ClientInfo: {2F94A2BF-A2E6-4CCC-BF98-B5F22C542226}',
];
const oabUrl = 'https://mail.o365info.com/OAB/7f1d5c8e-2b3a-4c5d-9e8f-0a1b2c3d4e5f/oab.xml';

describe('NTLM and Negotiate on Autodiscover, MAPI and OAB through the lab on Active Directory', () => {
  const demo = labForTests({ directory: 'ad' });
  let alice: KerberosLogon;

  before(async () => {
    alice = await kerberosLogon(demo.lab, 'alice@O365INFO.LOCAL', demoPassword);
  });
  after(async () => {
    await alice?.close();
  });

  const accessLine = (reqId: string, server: string): Promise<Record<string, unknown>> =>
    accessLineOf(demo.sink, reqId, server);
  /** `curl --ntlm` with the credentials on stdin (no password on a command line). */
  const curlNtlm = (url: string, user: string, args: string[]): Promise<CurlAnswer> =>
    curlAt(demo.lab, url, ['--ntlm', '-K', '-', ...args], process.env, curlUserConfig(user, demoPassword));
  const lastId = (r: CurlAnswer): string => {
    const id = r.requestIds.at(-1);
    assert.ok(id, 'the answer carries a request id');
    return id;
  };

  test("Autodiscover, bob with NTLM: 200, CAS2013-NY answers with his 2007 CAS's legacy URLs", async () => {
    const r = await curlNtlm(autodiscoverUrl, 'O365INFO\\bob', [
      '-H',
      'Content-Type: text/xml',
      '-H',
      'X-AnchorMailbox: bob@o365info.com',
      '--data-binary',
      pox('bob@o365info.com'),
    ]);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /https:\/\/legacy\.mail\.o365info\.com\/EWS\/Exchange\.asmx/);
    const line = await accessLine(lastId(r), 'CAS2013-NY');
    assert.equal(line['authMethod'], 'ntlm');
    assert.equal(line['user'], 'bob@o365info.com');
  });

  test('Autodiscover, alice with NTLM, no anchor: routed on the body, 200 built at MBX2013-NY', async () => {
    const r = await curlNtlm(autodiscoverUrl, 'alice@o365info.local', [
      '-H',
      'Content-Type: text/xml',
      '--data-binary',
      pox('alice@o365info.com'),
    ]);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /https:\/\/mail\.o365info\.com\/EWS\/Exchange\.asmx/);
    assert.doesNotMatch(r.body, /legacy\.mail/);
    const id = lastId(r);
    await demo.lab.recorder.waitFor(id, 'MBX2013-NY');
    assert.deepEqual(demo.lab.recorder.path(id), ['CAS2013-NY', 'MBX2013-NY']);
    assert.equal(
      demo.lab.recorder.records(id).find((h) => h.server === 'MBX2013-NY')?.user,
      'alice@o365info.com',
    );
  });

  test('MAPI, alice with NTLM: her MailboxId routes CAS2013-NY -> MBX2013-NY, 200 at her mailbox server', async () => {
    const r = await curlNtlm(
      `https://mail.o365info.com/mapi/emsmdb/?MailboxId=${mailboxGuid('alice@o365info.com')}@o365info.com`,
      'alice@o365info.local',
      [...mapiHeaders.flatMap((h) => ['-H', h]), '--data-binary', '12345678'],
    );
    assert.equal(r.status, 200, r.body);
    const id = lastId(r);
    await demo.lab.recorder.waitFor(id, 'MBX2013-NY');
    assert.deepEqual(demo.lab.recorder.path(id), ['CAS2013-NY', 'MBX2013-NY']);
    const front = demo.lab.recorder.records(id).find((h) => h.server === 'CAS2013-NY');
    assert.equal(front?.routedBy, 'mapi-mailboxid');
    assert.equal(front?.authMethod, 'ntlm');
    assert.equal(
      demo.lab.recorder.records(id).find((h) => h.server === 'MBX2013-NY')?.user,
      'alice@o365info.com',
    );
  });

  test('MAPI, alice with curl --negotiate (Kerberos at the edge): 200 at MBX2013-NY', async () => {
    const r = await curlAt(
      demo.lab,
      `https://mail.o365info.com/mapi/emsmdb/?MailboxId=${mailboxGuid('alice@o365info.com')}@o365info.com`,
      ['--negotiate', '-u', ':', ...mapiHeaders.flatMap((h) => ['-H', h]), '--data-binary', '12345678'],
      alice.env,
    );
    assert.equal(r.status, 200, r.body);
    const id = lastId(r);
    await demo.lab.recorder.waitFor(id, 'MBX2013-NY');
    assert.deepEqual(demo.lab.recorder.path(id), ['CAS2013-NY', 'MBX2013-NY']);
    assert.equal((await accessLine(id, 'CAS2013-NY'))['authMethod'], 'kerberos');
    // The front end handed the caller over with its method: the mailbox role's line says kerberos too.
    const mailbox = await accessLine(id, 'MBX2013-NY');
    assert.equal(mailbox['authMethod'], 'kerberos');
    assert.equal(mailbox['user'], 'alice@o365info.com');
  });

  test("OAB, bob with NTLM anchored: 200 from his 2007 CAS's chain (OAB-1)", async () => {
    const r = await curlNtlm(oabUrl, 'O365INFO\\bob', ['-H', 'X-AnchorMailbox: bob@o365info.com']);
    assert.equal(r.status, 200, r.body);
    const id = lastId(r);
    await demo.lab.recorder.waitFor(id, 'MBX2007-NY');
    assert.deepEqual(demo.lab.recorder.path(id), ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
    assert.equal(
      demo.lab.recorder.records(id).find((h) => h.server === 'MBX2007-NY')?.user,
      'bob@o365info.com',
    );
    assert.equal((await accessLine(r.requestIds[0] ?? '', 'CAS2013-NY'))['routedBy'], 'x-anchormailbox');
    // CAS2007-NY terminated NTLM and handed bob over with the method: MBX2007-NY's line says ntlm.
    assert.equal((await accessLine(id, 'MBX2007-NY'))['authMethod'], 'ntlm');
  });

  test('OAB, bob with NTLM, no anchor: the URL names no mailbox, 401 CX_AUTH_WINDOWS_REROUTED', async () => {
    const r = await curlNtlm(oabUrl, 'O365INFO\\bob', []);
    assert.equal(r.status, 401);
    const line = await accessLine(lastId(r), 'CAS2013-NY');
    assert.equal(line['code'], 'CX_AUTH_WINDOWS_REROUTED');
    assert.equal(line['routedBy'], 'ntlm-user');
  });

  test('OAB, alice with NTLM, no anchor: the default next hop holds her mailbox, 200 at MBX2013-NY', async () => {
    const r = await curlNtlm(oabUrl, 'alice@o365info.local', []);
    assert.equal(r.status, 200, r.body);
    const id = lastId(r);
    await demo.lab.recorder.waitFor(id, 'MBX2013-NY');
    assert.deepEqual(demo.lab.recorder.path(id), ['CAS2013-NY', 'MBX2013-NY']);
  });
});
