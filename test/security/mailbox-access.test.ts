/**
 * Attack: reading another user's mailbox by naming it. Signed in as alice, a client sends
 * `X-AnchorMailbox: bob@...` on an EWS GetFolder. The front end routes on the anchor (Exchange does), but
 * the mailbox end must serve only the caller's own mailbox, or another one the directory grants the caller
 * (docs/security.md "Mailbox access"): anything else is EWS's own ErrorAccessDenied. The answer is checked
 * through the 2007 path (CAS2013-NY, CAS2007-NY, MBX2007-NY) and through coexist's own 2013 mailbox role
 * (MBX2013-NY), with the access lines naming caller and anchor at every hop. A user granted full access
 * (carol on bob's mailbox, examples/o365info.yaml) reads it; an anchor naming no one is no oracle: the
 * caller's own mailbox answers, as if there were no anchor.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink, Reply } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';
import { accessLines as linesOf, loggedLab } from '../support/logged-lab.ts';

const ewsUrl = 'https://mail.o365info.com/EWS/Exchange.asmx';
const getInbox =
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header>' +
  '<t:RequestServerVersion Version="Exchange2007_SP1"/></soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape>' +
  '<t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/>' +
  '</FolderIds></GetFolder></soap:Body></soap:Envelope>';

describe('attack: another user’s mailbox through X-AnchorMailbox', () => {
  let lab: Lab;
  let sink: LineSink;
  let client: LabClient;

  before(async () => {
    ({ lab, sink } = await loggedLab());
    client = labClient(lab);
  });
  after(async () => {
    await client.close();
    await lab.close();
  });

  /** An EWS GetFolder of the inbox as `user`, anchored on `anchor` when given. */
  const getFolder = (user: string, anchor?: string): Promise<Reply> =>
    client.fetch(ewsUrl, {
      user,
      headers: {
        'content-type': 'text/xml; charset=utf-8',
        ...(anchor ? { 'x-anchormailbox': anchor } : {}),
      },
      body: getInbox,
    });

  /** Whose inbox an answer holds: the simulator's folder ids carry server and mailbox. */
  function servedInbox(reply: Reply): { server: string; mailbox: string } | undefined {
    const id = /<t:FolderId Id="([^"]+)"/.exec(reply.body.toString('utf8'))?.[1];
    if (id === undefined) return undefined;
    const [, server, mailbox] = Buffer.from(id, 'base64').toString('utf8').split(':');
    return server === undefined || mailbox === undefined ? undefined : { server, mailbox };
  }

  /** The access lines of one request, one per server it went through, by server. */
  function accessLines(reply: Reply): Map<string, Record<string, unknown>> {
    return new Map(linesOf(sink, reply.requestId).map((l) => [String(l['server']), l]));
  }

  function assertDenied(reply: Reply, caller: string, anchor: string, mailboxServer: string): void {
    const xml = reply.body.toString('utf8');
    // A per-item error, HTTP 200 (docs/protocols.md §4.6), and nothing of the mailbox.
    assert.equal(reply.status, 200, xml);
    assert.match(xml, /<m:ResponseCode>ErrorAccessDenied<\/m:ResponseCode>/);
    assert.match(xml, /ResponseClass="Error"/);
    assert.doesNotMatch(xml, /NoError|<t:FolderId|<m:Folders>/);
    assert.equal(servedInbox(reply), undefined);
    // Routing on the anchor is right: the request still ends at the anchor's mailbox server, which refuses.
    assert.equal(reply.path.at(-1), mailboxServer, `answered by ${mailboxServer}: ${reply.path.join(', ')}`);
    const lines = accessLines(reply);
    assert.deepEqual([...lines.keys()].sort(), [...reply.path].sort(), 'one access line per hop');
    for (const [server, line] of lines) {
      assert.equal(line['user'], caller, `${server}: the caller`);
      assert.equal(line['anchor'], anchor, `${server}: the anchor`);
    }
    const end = lines.get(mailboxServer);
    assert.equal(end?.['code'], 'CX_AUTH_ACCESS_DENIED', JSON.stringify(end));
    assert.equal(end?.['outcome'], 'refused');
  }

  test('alice naming bob (2007): ErrorAccessDenied from MBX2007-NY, through CAS2013-NY and CAS2007-NY', async () => {
    const reply = await getFolder('alice@o365info.com', 'bob@o365info.com');
    assertDenied(reply, 'alice@o365info.com', 'bob@o365info.com', 'MBX2007-NY');
    assert.deepEqual(reply.path, ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
  });

  test('bob naming alice (2013): ErrorAccessDenied from coexist’s own mailbox role, MBX2013-NY', async () => {
    const reply = await getFolder('bob@o365info.com', 'alice@o365info.com');
    assertDenied(reply, 'bob@o365info.com', 'alice@o365info.com', 'MBX2013-NY');
    assert.deepEqual(reply.path, ['CAS2013-NY', 'MBX2013-NY']);
  });

  test('an alias of the other user is the same mailbox: still denied', async () => {
    const reply = await getFolder('diego@o365info.com', 'bob.jones@o365info.com');
    assertDenied(reply, 'diego@o365info.com', 'bob.jones@o365info.com', 'MBX2007-NY');
  });

  test('carol, granted full access to bob’s mailbox, reads it', async () => {
    const reply = await getFolder('carol@o365info.com', 'bob@o365info.com');
    assert.equal(reply.status, 200);
    assert.deepEqual(servedInbox(reply), { server: 'MBX2007-NY', mailbox: 'bob@o365info.com' });
    const end = accessLines(reply).get('MBX2007-NY');
    assert.equal(end?.['user'], 'carol@o365info.com');
    assert.equal(end?.['anchor'], 'bob@o365info.com');
    assert.equal(end?.['code'], undefined);
  });

  test('the grant is one way: bob may not read carol’s mailbox', async () => {
    const reply = await getFolder('bob@o365info.com', 'carol@o365info.com');
    assertDenied(reply, 'bob@o365info.com', 'carol@o365info.com', 'MBX2007-LA');
  });

  test('an anchor that names no one is no oracle: the caller’s own mailbox answers, not 404', async () => {
    for (const [user, server] of [
      ['alice@o365info.com', 'MBX2013-NY'],
      ['bob@o365info.com', 'MBX2007-NY'],
    ] as const) {
      const reply = await getFolder(user, 'nobody@o365info.com');
      assert.equal(reply.status, 200, reply.body.toString('utf8'));
      assert.deepEqual(servedInbox(reply), { server, mailbox: user });
      const line = accessLines(reply).get('CAS2013-NY');
      assert.equal(line?.['anchor'], 'nobody@o365info.com');
      assert.equal(line?.['code'], undefined);
    }
  });

  test('afterwards every user still reads their own mailbox', async () => {
    for (const [user, server] of [
      ['alice@o365info.com', 'MBX2013-NY'],
      ['bob@o365info.com', 'MBX2007-NY'],
      ['carol@o365info.com', 'MBX2007-LA'],
    ] as const) {
      const own = await getFolder(user);
      assert.equal(own.status, 200);
      assert.deepEqual(servedInbox(own), { server, mailbox: user });
      const anchored = await getFolder(user, user);
      assert.deepEqual(servedInbox(anchored), { server, mailbox: user });
    }
  });
});
