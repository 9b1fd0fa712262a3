/** MAPI over HTTP (docs/protocols.md §4.8): MailboxId=<guid>@<domain> on both endpoints. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mapi } from './mapi.ts';
import type { RequestHead } from './request-head.ts';

const guid = '7f1d5c8e-0b6a-4c5e-9d7e-1a2b3c4d5e6f';
const post = (path: string, query: string, headers: Record<string, string> = {}): RequestHead => ({
  method: 'POST',
  host: 'mail.o365info.com',
  path,
  query,
  headers: { 'content-type': 'application/mapi-http', 'x-requesttype': 'Execute', ...headers },
});

test('the mailbox endpoint and the address book endpoint', () => {
  for (const path of ['/mapi/emsmdb/', '/mapi/nspi/', '/MAPI/EMSMDB']) {
    const head = post(path, `MailboxId=${guid}@o365info.com`);
    assert.ok(mapi.matches(head), path);
    assert.deepEqual(mapi.identify(head), {
      kind: 'mailbox-guid',
      guid,
      domain: 'o365info.com',
      source: 'mailbox-id',
    });
  }
});

test('percent-encoded @ and the Basic user', () => {
  const auth = `Basic ${Buffer.from('bob@o365info.com:pw').toString('base64')}`;
  const id = mapi.identify(
    post('/mapi/emsmdb/', `mailboxid=${guid}%40o365info.com`, { authorization: auth }),
  );
  assert.equal(id.kind === 'mailbox-guid' && id.basicUser, 'bob@o365info.com');
});

test('without MailboxId: the Basic user, else anonymous', () => {
  assert.deepEqual(mapi.identify(post('/mapi/nspi/', '')), { kind: 'anonymous' });
});

test('refuses a malformed or repeated MailboxId', () => {
  for (const q of [
    'MailboxId=bob@o365info.com',
    `MailboxId=${guid}`,
    `MailboxId=${guid}@o365info.com&MailboxId=${guid}@evil.com`,
    'MailboxId=%zz',
  ]) {
    const id = mapi.identify(post('/mapi/emsmdb/', q));
    assert.equal(id.kind === 'invalid' && id.code, 'CX_IDENTITY_MAILBOX_ID', q);
  }
});

test('does not match other /mapi paths', () => {
  assert.ok(!mapi.matches(post('/mapi/', '')));
  assert.ok(!mapi.matches(post('/mapi/emsmdbx/', '')));
});
