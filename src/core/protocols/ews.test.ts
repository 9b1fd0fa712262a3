/** EWS identity (docs/protocols.md §3 EWS row, §4.6): X-AnchorMailbox first, else the Basic user. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ews } from './ews.ts';
import type { RequestHead } from './request-head.ts';

const auth = `Basic ${Buffer.from('O365INFO\\svc-crm:pw').toString('base64')}`;
const post = (headers: Record<string, string>, path = '/EWS/Exchange.asmx'): RequestHead => ({
  method: 'POST',
  host: 'mail.o365info.com',
  path,
  query: '',
  headers: { 'content-type': 'text/xml; charset=utf-8', ...headers },
});

test('X-AnchorMailbox wins over the Basic user (impersonation)', () => {
  const id = ews.identify(
    post({ authorization: auth, 'x-anchormailbox': 'bob@o365info.com', 'x-preferserveraffinity': 'true' }),
  );
  assert.deepEqual(id, {
    kind: 'user',
    user: 'bob@o365info.com',
    source: 'anchor-header',
    basicUser: 'O365INFO\\svc-crm',
  });
});

test('without the anchor, the Basic user', () => {
  assert.deepEqual(ews.identify(post({ authorization: auth })), {
    kind: 'user',
    user: 'O365INFO\\svc-crm',
    source: 'basic-auth',
    basicUser: 'O365INFO\\svc-crm',
  });
});

test('anonymous without either (NTLM handshake in progress)', () => {
  assert.deepEqual(ews.identify(post({ authorization: 'NTLM TlRMTVNTUAABAAAA' })), { kind: 'anonymous' });
});

test('refuses an anchor that is not an SMTP address', () => {
  for (const anchor of ['bob', 'SMTP:bob@o365info.com', 'bob@o365info.com/../x', '<bob@o365info.com>']) {
    const id = ews.identify(post({ 'x-anchormailbox': anchor }));
    assert.equal(id.kind === 'invalid' && id.code, 'CX_IDENTITY_ADDRESS', anchor);
  }
});

test('refuses malformed Basic credentials', () => {
  const id = ews.identify(post({ authorization: 'Basic !!!', 'x-anchormailbox': 'bob@o365info.com' }));
  assert.equal(id.kind === 'invalid' && id.code, 'CX_IDENTITY_BASIC_MALFORMED');
});

test('matches the EWS vdir, any file, any case', () => {
  for (const path of ['/EWS/Exchange.asmx', '/ews/exchange.asmx', '/EWS/Services.wsdl', '/EWS/mrsproxy.svc'])
    assert.ok(ews.matches(post({}, path)), path);
  assert.ok(!ews.matches(post({}, '/EWSx/Exchange.asmx')));
});
