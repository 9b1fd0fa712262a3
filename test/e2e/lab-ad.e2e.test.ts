/**
 * `coexist lab --directory ad`: the whole lab on a real Active Directory, a throwaway Samba domain
 * controller loaded with examples/o365info.yaml as Exchange would have written it (docs/lab.md §5). Every
 * server finds its users there (LDAPS, the service account, homeMDB -> database -> owning server) and
 * checks their passwords by a bind: ActiveSync for a 2007 mailbox and EWS for a 2013 one take their flows'
 * hops, a down-level login and a UPN are found, a wrong password is a 401. Real sockets, real Samba, real
 * TLS; Samba must be installed (npm run setup): without it these tests fail, they never skip.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labBanner } from '../../src/lab/banner.ts';
import type { LabClient } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';
import { labForTests } from '../support/logged-lab.ts';

const primary = 'https://mail.o365info.com';
const eas = (user: string): string =>
  `/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=${user}&DeviceId=AD${user.toUpperCase()}1&DeviceType=TestDevice`;
const folderSync = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01,
]);
const easHeaders = { 'ms-asprotocolversion': '12.1', 'content-type': 'application/vnd.ms-sync.wbxml' };
const getFolder =
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder>' +
  '</soap:Body></soap:Envelope>';

describe('the o365info lab on Active Directory (Samba)', () => {
  const demo = labForTests({ directory: 'ad' });
  let client: LabClient;

  before(async () => {
    client = labClient(demo.lab);
  });
  after(async () => {
    await client?.close();
  });

  async function pathOf(requestId: string): Promise<string[]> {
    await demo.lab.recorder.waitFor(requestId, 'CAS2013-NY');
    return demo.lab.recorder.path(requestId);
  }

  test('the banner names the domain controller; it listens on a loopback address of its own', async () => {
    const samba = demo.lab.samba;
    assert.ok(samba, 'the lab runs a Samba AD DC');
    assert.equal(demo.lab.slapd, undefined);
    assert.match(samba.host, /^127\./);
    assert.notEqual(samba.host, '127.0.0.1');
    assert.match(
      await labBanner(demo.lab),
      new RegExp(
        `^Directory: Samba Active Directory at ldaps://${samba.host.replace(/\./g, '\\.')} \\(o365info\\.local;`,
        'm',
      ),
    );
  });

  test('EAS-1 for a 2007 mailbox found in AD: CAS2013-NY -> MBX2013-NY -> CAS2007-NY -> MBX2007-NY', async () => {
    const r = await client.fetch(primary + eas('bob'), {
      headers: easHeaders,
      body: folderSync,
      user: 'bob@o365info.com',
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await pathOf(r.requestId), ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
  });

  test('EWS for a 2013 mailbox found in AD: CAS2013-NY -> MBX2013-NY', async () => {
    const r = await client.fetch(primary + '/EWS/Exchange.asmx', {
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body: getFolder,
      user: 'alice@o365info.com',
    });
    assert.equal(r.status, 200);
    assert.match(r.body.toString('utf8'), /NoError/);
    assert.deepEqual(await pathOf(r.requestId), ['CAS2013-NY', 'MBX2013-NY']);
  });

  test('AD logins: O365INFO\\carol and carol@o365info.local (EAS-2), a wrong password is a 401', async () => {
    for (const user of ['O365INFO\\carol', 'carol@o365info.local']) {
      const r = await client.fetch(primary + eas('carol'), { headers: easHeaders, body: folderSync, user });
      assert.equal(r.status, 200, user);
      assert.deepEqual(await pathOf(r.requestId), ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-LA', 'MBX2007-LA']);
    }
    const wrong = await client.fetch(primary + eas('diego'), {
      headers: easHeaders,
      body: folderSync,
      user: 'diego@o365info.com',
      password: 'not-the-password',
    });
    assert.equal(wrong.status, 401);
  });
});
