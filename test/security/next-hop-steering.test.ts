/**
 * Attack: choosing which equivalent server a request reaches (docs/security.md "Next hops"). With two 2007
 * CASes in New York (test/fixtures/estates/equivalent-cas.yaml), which one takes a mailbox's requests is the
 * rule's alone: the routed mailbox, hashed (docs/operations.md "Next hops"). A client that names the other
 * one in Exchange's back-end headers (`X-BEServer`, `X-CalculatedBETarget`, the `X-BackEndCookie` affinity
 * cookie), in coexist's own hop headers, `X-Forwarded-Host` or the query still reaches the server the rule
 * gives its mailbox (a `Host` the front end does not answer for is refused before routing:
 * host-misdirected.test.ts). And the server's state is the operator's: `/status` answers only on the admin
 * listener; the client listener answers 404, and the document carries no credential.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { parseEstate } from '../../src/config/index.ts';
import { nodeStatus } from '../../src/dataplane/index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { AdminServer } from '../../src/observability/metrics.ts';
import { startAdminServer } from '../../src/observability/metrics.ts';
import type { LabClient, Reply } from '../support/lab-client.ts';
import { demoPassword, labClient, LineSink } from '../support/lab-client.ts';

const estateFile = fileURLToPath(new URL('../fixtures/estates/equivalent-cas.yaml', import.meta.url));
const front = 'CAS2013-NY';
const ewsUrl = 'https://mail.o365info.com/EWS/Exchange.asmx';
const getInbox =
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header>' +
  '<t:RequestServerVersion Version="Exchange2007_SP1"/></soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape>' +
  '<t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/>' +
  '</FolderIds></GetFolder></soap:Body></soap:Envelope>';
const users = ['bob', 'erin', 'gina', 'hugo'].map((u) => `${u}@o365info.com`);

describe('attack: steering a request to an equivalent server of the client’s choice', () => {
  let lab: Lab;
  let client: LabClient;
  let admin: AdminServer;
  /** The 2007 CAS the rule gives each user, as the lab answered without any steering. */
  const home = new Map<string, string>();

  const getFolder = (user: string, url = ewsUrl, headers: Record<string, string> = {}): Promise<Reply> =>
    client.fetch(url, {
      user,
      headers: { 'content-type': 'text/xml; charset=utf-8', ...headers },
      body: getInbox,
    });
  const casOf = (r: Reply): string | undefined => r.path.find((s) => s.startsWith('CAS2007-'));

  before(async () => {
    const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile);
    lab = await startLab({ index, logger: createLogger({ level: 'warn', destination: new LineSink() }) });
    client = labClient(lab);
    const node = lab.nodes.get(front);
    const metrics = lab.metrics.get(front);
    assert.ok(node && metrics);
    admin = await startAdminServer({ metrics, status: () => nodeStatus(node) });
    for (const user of users) {
      const r = await getFolder(user);
      assert.equal(r.status, 200);
      home.set(user, casOf(r) ?? '');
    }
    assert.deepEqual(new Set(home.values()), new Set(['CAS2007-NY', 'CAS2007-NY2']));
  });
  after(async () => {
    await client.close();
    await admin?.close();
    await lab?.close();
  });

  test('back-end headers, the affinity cookie, hop headers and the query naming the other CAS change nothing', async () => {
    for (const user of users) {
      const mine = home.get(user) ?? '';
      const other = mine === 'CAS2007-NY' ? 'CAS2007-NY2' : 'CAS2007-NY';
      const otherFqdn = `${other.toLowerCase()}.o365info.local`;
      const attempts: [string, string, Record<string, string>][] = [
        ['X-BEServer', ewsUrl, { 'x-beserver': otherFqdn }],
        ['X-CalculatedBETarget', ewsUrl, { 'x-calculatedbetarget': otherFqdn }],
        ['X-BackEndCookie', ewsUrl, { cookie: `X-BackEndCookie=${otherFqdn}~${other}` }],
        ['X-Coexist-Hops', ewsUrl, { 'x-coexist-hops': `${front},${other}` }],
        ['X-Forwarded-Host', ewsUrl, { 'x-forwarded-host': otherFqdn }],
        ['query', `${ewsUrl}?server=${other}&backend=${otherFqdn}`, {}],
      ];
      for (const [what, url, headers] of attempts) {
        const r = await getFolder(user, url, headers);
        assert.equal(r.status, 200, `${user} ${what}`);
        assert.equal(casOf(r), mine, `${user} with ${what} naming ${other}`);
      }
    }
  });

  test('/status is the admin listener’s only: the client listener answers 404, even signed in', async () => {
    for (const user of [undefined, users[0]]) {
      const r = await client.fetch('https://mail.o365info.com/status', user === undefined ? {} : { user });
      assert.equal(r.status, 404, `signed in: ${user !== undefined}`);
      assert.doesNotMatch(r.body.toString(), /hops|CAS2007|consecutive/);
    }
    const a = await request(`http://127.0.0.1:${admin.port}/status`);
    assert.equal(a.statusCode, 200);
    const text = await a.body.text();
    assert.match(text, /"hops":\[/);
    // Requests with credentials went through every hop: none of them is in the document.
    assert.ok(!text.includes(demoPassword) && !/basic /i.test(text) && !text.includes('authorization'));
  });
});
