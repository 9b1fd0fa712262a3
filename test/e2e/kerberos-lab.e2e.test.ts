/**
 * Kerberos at the edge end to end through the lab on Active Directory (docs/security.md "Windows
 * authentication", Kerberos; docs/lab.md §5.6): `kinit` against the lab's Samba KDC, `curl --negotiate` at the
 * front door, CAS2013-NY accepting the ticket with the front ends' alternate service account's keytab (squid's
 * `negotiate_kerberos_auth`, MIT Kerberos) and handing the caller to MBX2013-NY, which answers from alice's
 * mailbox. Where the next hop is a legacy CAS (bob, EWS-2), the ticket cannot be handed on: 401 offering NTLM.
 * Real curl, real KDC, real acceptor; Samba, krb5-user and squid must be installed and the tests run as root
 * (npm run setup): without them they fail, never skip.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { demoPassword } from '../../src/lab/index.ts';
import type { KerberosLogon } from '../support/kerberos-lab.ts';
import {
  challengeSchemes,
  curlAt,
  ews,
  kerberosLogon,
  negotiateToken,
  soap,
} from '../support/kerberos-lab.ts';
import { labForTests } from '../support/logged-lab.ts';
import { accessLineOf } from '../support/ntlm-front.ts';

describe('Kerberos at the edge through the lab on Active Directory', () => {
  const demo = labForTests({ directory: 'ad' });
  let alice: KerberosLogon;
  let bob: KerberosLogon;

  before(async () => {
    alice = await kerberosLogon(demo.lab, 'alice@O365INFO.LOCAL', demoPassword);
    bob = await kerberosLogon(demo.lab, 'bob@O365INFO.LOCAL', demoPassword);
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
  });

  const accessLine = (reqId: string, server: string): Promise<Record<string, unknown>> =>
    accessLineOf(demo.sink, reqId, server);

  test('the lab made the front ends an ASA with the namespace SPNs, and its keytab', () => {
    assert.deepEqual(demo.lab.asa?.spns, ['HTTP/mail.o365info.com', 'HTTP/autodiscover.o365info.com']);
    assert.equal(demo.lab.asa?.realm, 'O365INFO.LOCAL');
  });

  test('a request without credentials: 401 offering Negotiate, NTLM and Basic, in that order', async () => {
    const r = await curlAt(demo.lab, ews, soap);
    assert.equal(r.status, 401);
    assert.deepEqual(challengeSchemes(r.head), ['Negotiate', 'NTLM', 'Basic']);
  });

  test('alice: curl --negotiate, 200 from her mailbox, CAS2013-NY -> MBX2013-NY, authMethod kerberos', async () => {
    const r = await curlAt(demo.lab, ews, ['--negotiate', '-u', ':', ...soap], alice.env);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /NoError/);
    const last = r.requestIds.at(-1);
    assert.ok(last, 'the answer carries a request id');
    await demo.lab.recorder.waitFor(last, 'MBX2013-NY');
    assert.deepEqual(demo.lab.recorder.path(last), ['CAS2013-NY', 'MBX2013-NY']);
    const front = demo.lab.recorder.records(last).find((h) => h.server === 'CAS2013-NY');
    assert.equal(front?.authMethod, 'kerberos');
    assert.equal(front?.user, 'alice@o365info.com');
    assert.equal(
      demo.lab.recorder.records(last).find((h) => h.server === 'MBX2013-NY')?.user,
      'alice@o365info.com',
    );
    const line = await accessLine(last, 'CAS2013-NY');
    assert.equal(line['authMethod'], 'kerberos');
    assert.equal(line['auth'], 'ok');
    // One leg (curl sends its ticket at once); the AP-REP (mutual authentication, RFC 4559) came back.
    assert.equal(r.heads.length, 1);
    assert.match(r.head, /^www-authenticate: Negotiate [A-Za-z0-9+/]+=*\r$/im);
  });

  test('alice with X-AnchorMailbox on her own mailbox: 200, routed by the anchor', async () => {
    const r = await curlAt(
      demo.lab,
      ews,
      ['--negotiate', '-u', ':', '-H', 'X-AnchorMailbox: alice@o365info.com', ...soap],
      alice.env,
    );
    assert.equal(r.status, 200, r.body);
    const last = r.requestIds.at(-1);
    assert.ok(last);
    await demo.lab.recorder.waitFor(last, 'MBX2013-NY');
    assert.equal(
      demo.lab.recorder.records(last).find((h) => h.server === 'CAS2013-NY')?.routedBy,
      'x-anchormailbox',
    );
  });

  test("Autodiscover on the ASA's second SPN: alice's ticket for HTTP/autodiscover, her settings", async () => {
    const body =
      '<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@o365info.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>';
    const r = await curlAt(
      demo.lab,
      'https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml',
      ['--negotiate', '-u', ':', '-H', 'Content-Type: text/xml', '--data-binary', body],
      alice.env,
    );
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /<Protocol>/);
    const last = r.requestIds.at(-1);
    assert.ok(last);
    const line = await accessLine(last, 'CAS2013-NY');
    assert.equal(line['authMethod'], 'kerberos');
    assert.equal(line['user'], 'alice@o365info.com');
  });

  test('a ticket for another service principal is refused: 401 with every method offered', async () => {
    // A real AP-REQ from MIT's initiator, for HTTP/autodiscover... is the ASA's too; the DC's own LDAP service
    // principal is not: the keytab has no key for it.
    const token = await negotiateToken(alice, demo.lab.samba?.dcName ?? 'dc1.o365info.local');
    const r = await curlAt(demo.lab, ews, ['-H', `Authorization: Negotiate ${token}`, ...soap]);
    assert.equal(r.status, 401);
    assert.deepEqual(challengeSchemes(r.head), ['Negotiate', 'NTLM', 'Basic']);
    const last = r.requestIds.at(-1);
    assert.ok(last);
    const line = await accessLine(last, 'CAS2013-NY');
    assert.equal(line['code'], 'CX_AUTH_FAILED');
    assert.equal(line['auth'], 'bad_credentials');
    assert.equal(line['authMethod'], 'kerberos');
    assert.ok(!demo.lab.recorder.path(last).includes('MBX2013-NY'), 'nothing reached the mailbox server');
    assert.ok(!JSON.stringify(demo.sink.records()).includes(token.slice(0, 40)), 'the token is never logged');
  });

  test('a ticket for the ASA accepted once is refused when replayed, and a tampered one too', async () => {
    const token = await negotiateToken(alice, 'mail.o365info.com');
    const first = await curlAt(demo.lab, ews, ['-H', `Authorization: Negotiate ${token}`, ...soap]);
    assert.equal(first.status, 200, first.body);
    const replayed = await curlAt(demo.lab, ews, ['-H', `Authorization: Negotiate ${token}`, ...soap]);
    assert.equal(replayed.status, 401, 'the replay cache refuses the same authenticator');
    // The AP-REQ's encrypted authenticator altered near the end: the token still reads as Kerberos, the
    // acceptor refuses it.
    const bytes = Buffer.from(await negotiateToken(alice, 'mail.o365info.com'), 'base64');
    bytes[bytes.length - 20] = (bytes[bytes.length - 20] ?? 0) ^ 0xff;
    const tampered = await curlAt(demo.lab, ews, [
      '-H',
      `Authorization: Negotiate ${bytes.toString('base64')}`,
      ...soap,
    ]);
    assert.equal(tampered.status, 401);
    const last = tampered.requestIds.at(-1);
    assert.ok(last);
    assert.equal((await accessLine(last, 'CAS2013-NY'))['code'], 'CX_AUTH_FAILED');
  });

  test('bob (EWS-2, behind CAS2007-NY) with Negotiate: 401 offering NTLM and Basic, not Negotiate', async () => {
    const r = await curlAt(
      demo.lab,
      ews,
      ['--negotiate', '-u', ':', '-H', 'X-AnchorMailbox: bob@o365info.com', ...soap],
      bob.env,
    );
    assert.equal(r.status, 401);
    assert.deepEqual(challengeSchemes(r.head), ['NTLM', 'Basic']);
    const last = r.requestIds.at(-1);
    assert.ok(last);
    const line = await accessLine(last, 'CAS2013-NY');
    assert.equal(line['code'], 'CX_AUTH_KERBEROS_NOT_FORWARDABLE');
    assert.equal(line['authMethod'], 'kerberos');
    assert.ok(
      !demo.sink.records().some((l) => l['reqId'] === last && l['server'] === 'CAS2007-NY'),
      'nothing was passed to the legacy CAS',
    );
  });

  test('bob falls back: curl --anyauth with his ticket and password ends in NTLM through CAS2007-NY, 200', async () => {
    const r = await curlAt(
      demo.lab,
      ews,
      [
        '--anyauth',
        '-u',
        `O365INFO\\bob:${demoPassword}`,
        '-H',
        'X-AnchorMailbox: bob@o365info.com',
        ...soap,
      ],
      bob.env,
    );
    assert.equal(r.status, 200, r.body);
    const last = r.requestIds.at(-1);
    assert.ok(last);
    await demo.lab.recorder.waitFor(last, 'MBX2007-NY');
    assert.deepEqual(demo.lab.recorder.path(last), ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
    // curl chose Negotiate first (Kerberos, with bob's ticket), was offered NTLM instead, and took it.
    const codes = await Promise.all(
      r.requestIds.slice(0, -1).map(async (id) => (await accessLine(id, 'CAS2013-NY'))['code']),
    );
    assert.ok(codes.includes('CX_AUTH_KERBEROS_NOT_FORWARDABLE'), JSON.stringify(codes));
    assert.ok(r.heads.some((h) => challengeSchemes(h).join() === 'NTLM,Basic'));
  });
});
