/**
 * The lab on a real directory (issue 5): every server asks a throwaway OpenLDAP slapd, loaded with the
 * estate, through its own cache. The flows keep their hops; slapd stopped mid-run leaves known users
 * routing from the cache and gives unknown ones a temporary error (not a 500, not a 401); slapd back,
 * everything recovers without a restart. Real sockets, real slapd, real TLS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabClient } from '../support/lab-client.ts';
import { demoPassword, labClient } from '../support/lab-client.ts';
import { labForTests } from '../support/logged-lab.ts';

const primary = 'https://mail.o365info.com';
const eas = (user: string): string =>
  `/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=${user}&DeviceId=LDAP${user.toUpperCase()}1&DeviceType=TestDevice`;
const folderSync = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01,
]);
const easHeaders = { 'ms-asprotocolversion': '12.1', 'content-type': 'application/vnd.ms-sync.wbxml' };
const getFolder =
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2007_SP1"/></soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder>' +
  '</soap:Body></soap:Envelope>';

describe('the o365info lab on LDAP (slapd)', () => {
  const demo = labForTests({ directory: 'ldap', retryAfterSeconds: 9 });
  let client: LabClient;

  before(async () => {
    client = labClient(demo.lab);
  });
  after(async () => {
    await client.close();
  });

  async function pathOf(requestId: string): Promise<string[]> {
    await demo.lab.recorder.waitFor(requestId, 'CAS2013-NY');
    return demo.lab.recorder.path(requestId);
  }

  const flows: readonly [string, string, string, string[]][] = [
    ['EAS-1', 'bob@o365info.com', eas('bob'), ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY']],
    ['EAS-3A', 'diego@o365info.com', eas('diego'), ['CAS2013-NY', 'CAS2007-MAD', 'MBX2007-MAD']],
    ['EWS-2', 'bob@o365info.com', '/EWS/Exchange.asmx', ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']],
  ];
  for (const [flow, user, path, hops] of flows) {
    test(`${flow} with the directory in LDAP: ${hops.join(' -> ')}`, async () => {
      const ews = path.startsWith('/EWS');
      const r = await client.fetch(primary + path, {
        headers: ews ? { 'content-type': 'text/xml; charset=utf-8' } : easHeaders,
        body: ews ? getFolder : folderSync,
        user,
      });
      assert.equal(r.status, 200);
      assert.deepEqual(await pathOf(r.requestId), hops);
    });
  }

  test('a down-level login (O365INFO\\carol) and a UPN are found in LDAP (EAS-2)', async () => {
    for (const user of ['O365INFO\\carol', 'carol@o365info.local']) {
      const r = await client.fetch(primary + eas('carol'), { headers: easHeaders, body: folderSync, user });
      assert.equal(r.status, 200, user);
      assert.deepEqual(await pathOf(r.requestId), ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-LA', 'MBX2007-LA']);
    }
  });

  test('a wrong password is a 401, checked by an LDAP bind', async () => {
    const r = await client.fetch(primary + eas('bob'), {
      headers: easHeaders,
      body: folderSync,
      user: 'bob@o365info.com',
      password: 'not-the-password',
    });
    assert.equal(r.status, 401);
  });

  test('slapd stopped: known users keep routing from the cache; unknown ones get 503, never 401 or 500', async () => {
    const slapd = demo.lab.slapd;
    assert.ok(slapd, 'the lab runs a slapd');
    await slapd.stop();
    try {
      const known = await client.fetch(primary + eas('bob'), {
        headers: easHeaders,
        body: folderSync,
        user: 'bob@o365info.com',
      });
      assert.equal(known.status, 200, 'bob was checked and looked up before: served from the cache');
      assert.deepEqual(known.path, ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
      const unknown = await client.fetch(primary + eas('alice'), {
        headers: easHeaders,
        body: folderSync,
        user: 'alice@o365info.com',
      });
      assert.equal(unknown.status, 503, 'alice was never seen: the directory must be asked, and cannot be');
      assert.equal(unknown.headers['retry-after'], '9');
      assert.equal(unknown.body.length, 0);
    } finally {
      await slapd.start();
    }
    // Back without restarting anything: the same servers ask slapd again.
    const recovered = await client.fetch(primary + eas('alice'), {
      headers: easHeaders,
      body: folderSync,
      user: 'alice@o365info.com',
    });
    assert.equal(recovered.status, 200);
    assert.deepEqual(await pathOf(recovered.requestId), ['CAS2013-NY', 'MBX2013-NY']);
  });

  test('no password reaches the log; the outage is in it', () => {
    const text = demo.sink.lines.join('\n');
    assert.ok(!text.includes(demoPassword));
    assert.ok(!text.includes('not-the-password'));
    assert.ok(
      demo.sink
        .records()
        .some((l) => l['code'] === 'CX_DIRECTORY_UNAVAILABLE' && l['server'] === 'CAS2013-NY'),
    );
  });
});
