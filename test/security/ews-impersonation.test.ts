/**
 * Attack: reading another user's mailbox with EWS impersonation. The `ExchangeImpersonation` SOAP header
 * asks the mailbox server to act as someone else; only a caller holding the ApplicationImpersonation role
 * over that mailbox may (docs/security.md "Mailbox access"). Signed in as alice, a client sends the header
 * for bob with `X-AnchorMailbox: bob`: ErrorImpersonationDenied, nothing of bob's mailbox, and the mailbox
 * server's access line naming caller, anchor and the impersonation. A service account scoped to some
 * mailbox (svc-crm, examples/o365info.yaml) naming one outside its scope: ErrorImpersonateUserDenied. A
 * header naming another mailbox than the anchor the request was routed on: refused. The service account
 * over every mailbox (svc-archive) reads bob's inbox as bob, through the 2007 path and the 2013 one, and
 * every user still reads their own mailbox afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import type { LabClient, LineSink, Reply } from '../support/lab-client.ts';
import { labClient } from '../support/lab-client.ts';
import { accessLines as linesOf, loggedLab } from '../support/logged-lab.ts';

const ewsUrl = 'https://mail.o365info.com/EWS/Exchange.asmx';

/** A GetFolder of the inbox, with an ExchangeImpersonation header naming `who` in the `form` given. */
const getInbox = (who?: { form: string; value: string }): string =>
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header>' +
  '<t:RequestServerVersion Version="Exchange2007_SP1"/>' +
  (who
    ? `<t:ExchangeImpersonation><t:ConnectingSID><t:${who.form}>${who.value}</t:${who.form}>` +
      '</t:ConnectingSID></t:ExchangeImpersonation>'
    : '') +
  '</soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape>' +
  '<t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/>' +
  '</FolderIds></GetFolder></soap:Body></soap:Envelope>';

const smtp = (value: string): { form: string; value: string } => ({ form: 'PrimarySmtpAddress', value });

describe('attack: another user’s mailbox through EWS impersonation', () => {
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

  /** GetFolder inbox as `user`, anchored on `anchor`, impersonating `who` when given. */
  const getFolder = (user: string, anchor: string, who?: { form: string; value: string }): Promise<Reply> =>
    client.fetch(ewsUrl, {
      user,
      headers: { 'content-type': 'text/xml; charset=utf-8', 'x-anchormailbox': anchor },
      body: getInbox(who),
    });

  /** Whose inbox an answer holds: the simulator's folder ids carry server and mailbox. */
  function servedInbox(reply: Reply): { server: string; mailbox: string } | undefined {
    const id = /<t:FolderId Id="([^"]+)"/.exec(reply.body.toString('utf8'))?.[1];
    if (id === undefined) return undefined;
    const [, server, mailbox] = Buffer.from(id, 'base64').toString('utf8').split(':');
    return server === undefined || mailbox === undefined ? undefined : { server, mailbox };
  }

  /** The access line of one request at one server. */
  const lineAt = (reply: Reply, server: string): Record<string, unknown> | undefined =>
    linesOf(sink, reply.requestId).find((l) => l['server'] === server);

  /** A request-level fault with `code`, nothing of any mailbox, and the mailbox server's access line. */
  function assertRefused(
    reply: Reply,
    o: { code: string; caller: string; anchor: string; server: string; impersonation: string },
  ): Record<string, unknown> {
    const xml = reply.body.toString('utf8');
    assert.equal(reply.status, 500, xml);
    assert.match(xml, new RegExp(`<faultcode[^>]*>a:${o.code}</faultcode>`));
    assert.match(xml, new RegExp(`<e:ResponseCode[^>]*>${o.code}</e:ResponseCode>`));
    assert.doesNotMatch(xml, /NoError|<t:FolderId|<m:Folders>/);
    assert.equal(servedInbox(reply), undefined);
    assert.equal(reply.path.at(-1), o.server, reply.path.join(', '));
    const line = lineAt(reply, o.server);
    assert.ok(line, `an access line at ${o.server}`);
    assert.equal(line['user'], o.caller);
    assert.equal(line['anchor'], o.anchor);
    assert.equal(line['impersonation'], o.impersonation);
    assert.equal(line['code'], 'CX_AUTH_ACCESS_DENIED');
    assert.equal(line['outcome'], 'refused');
    return line;
  }

  test('alice impersonating bob, anchored on bob: ErrorImpersonationDenied at MBX2007-NY', async () => {
    const reply = await getFolder('alice@o365info.com', 'bob@o365info.com', smtp('bob@o365info.com'));
    const line = assertRefused(reply, {
      code: 'ErrorImpersonationDenied',
      caller: 'alice@o365info.com',
      anchor: 'bob@o365info.com',
      server: 'MBX2007-NY',
      impersonation: 'no-role',
    });
    assert.equal(line['impersonating'], 'bob@o365info.com');
    assert.deepEqual(reply.path, ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
  });

  test('without the role, a name that exists and one that does not get the same answer (no oracle)', async () => {
    for (const who of [smtp('nobody@o365info.com'), { form: 'PrincipalName', value: 'bob@o365info.local' }]) {
      const reply = await getFolder('bob@o365info.com', 'alice@o365info.com', who);
      assertRefused(reply, {
        code: 'ErrorImpersonationDenied',
        caller: 'bob@o365info.com',
        anchor: 'alice@o365info.com',
        server: 'MBX2013-NY',
        impersonation: 'no-role',
      });
    }
  });

  test('svc-crm, scoped to alice and bob, impersonating carol: ErrorImpersonateUserDenied', async () => {
    const reply = await getFolder('svc-crm@o365info.com', 'carol@o365info.com', smtp('carol@o365info.com'));
    const line = assertRefused(reply, {
      code: 'ErrorImpersonateUserDenied',
      caller: 'svc-crm@o365info.com',
      anchor: 'carol@o365info.com',
      server: 'MBX2007-LA',
      impersonation: 'out-of-scope',
    });
    assert.equal(line['impersonating'], 'carol@o365info.com');
  });

  test('a header naming another mailbox than the anchor is refused, even within the scope', async () => {
    const reply = await getFolder('svc-crm@o365info.com', 'alice@o365info.com', smtp('bob@o365info.com'));
    const line = assertRefused(reply, {
      code: 'ErrorInvalidExchangeImpersonationHeaderData',
      caller: 'svc-crm@o365info.com',
      anchor: 'alice@o365info.com',
      server: 'MBX2013-NY',
      impersonation: 'not-anchor',
    });
    assert.equal(line['impersonating'], 'bob@o365info.com');
  });

  test('the role holder naming no mailbox: ErrorNonExistentMailbox', async () => {
    const reply = await getFolder(
      'svc-archive@o365info.com',
      'nobody@o365info.com',
      smtp('nobody@o365info.com'),
    );
    assertRefused(reply, {
      code: 'ErrorNonExistentMailbox',
      caller: 'svc-archive@o365info.com',
      anchor: 'nobody@o365info.com',
      server: 'MBX2013-NY',
      impersonation: 'unknown',
    });
  });

  test('svc-archive, over every mailbox, reads bob’s and alice’s inboxes as them, by each ConnectingSID form', async () => {
    for (const [anchor, who, server] of [
      ['bob@o365info.com', smtp('bob@o365info.com'), 'MBX2007-NY'],
      ['bob@o365info.com', { form: 'SmtpAddress', value: 'bob.jones@o365info.com' }, 'MBX2007-NY'],
      ['alice@o365info.com', { form: 'PrincipalName', value: 'alice@o365info.local' }, 'MBX2013-NY'],
    ] as const) {
      const reply = await getFolder('svc-archive@o365info.com', anchor, who);
      assert.equal(reply.status, 200, reply.body.toString('utf8'));
      assert.deepEqual(servedInbox(reply), { server, mailbox: anchor });
      const line = lineAt(reply, server);
      assert.equal(line?.['user'], 'svc-archive@o365info.com');
      assert.equal(line?.['anchor'], anchor);
      assert.equal(line?.['impersonating'], anchor);
      assert.equal(line?.['impersonation'], 'allowed');
      assert.equal(line?.['code'], undefined);
      assert.equal(line?.['outcome'], 'answered');
    }
  });

  test('without the header, the service account is itself: bob’s mailbox is ErrorAccessDenied', async () => {
    const reply = await getFolder('svc-archive@o365info.com', 'bob@o365info.com');
    const xml = reply.body.toString('utf8');
    assert.equal(reply.status, 200, xml);
    assert.match(xml, /<m:ResponseCode>ErrorAccessDenied<\/m:ResponseCode>/);
    assert.equal(servedInbox(reply), undefined);
    assert.equal(lineAt(reply, 'MBX2007-NY')?.['impersonation'], undefined);
  });

  test('afterwards every user still reads their own mailbox', async () => {
    for (const [user, server] of [
      ['alice@o365info.com', 'MBX2013-NY'],
      ['bob@o365info.com', 'MBX2007-NY'],
      ['svc-crm@o365info.com', 'MBX2013-NY'],
    ] as const) {
      const own = await getFolder(user, user);
      assert.equal(own.status, 200);
      assert.deepEqual(servedInbox(own), { server, mailbox: user });
    }
  });
});
