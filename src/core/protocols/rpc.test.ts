/** Outlook Anywhere (docs/protocols.md §3, §4.7): the RPC target of the rpcproxy.dll query. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestHead } from './request-head.ts';
import { rpc } from './rpc.ts';

const guid = '7f1d5c8e-0b6a-4c5e-9d7e-1a2b3c4d5e6f';
const auth = `Basic ${Buffer.from('O365INFO\\bob:pw').toString('base64')}`;
const channel = (query: string, headers: Record<string, string> = { authorization: auth }): RequestHead => ({
  method: 'RPC_IN_DATA',
  host: 'mail.o365info.com',
  path: '/rpc/rpcproxy.dll',
  query,
  headers,
});

test('2013: <mailbox guid>@<domain> is a mailbox', () => {
  assert.deepEqual(rpc.identify(channel(`${guid}@o365info.com:6001`)), {
    kind: 'mailbox-guid',
    guid,
    domain: 'o365info.com',
    source: 'rpc-server',
    port: 6001,
    basicUser: 'O365INFO\\bob',
  });
  const id = rpc.identify(channel(`${guid.toUpperCase()}%40o365info.com:6004`));
  assert.equal(id.kind === 'mailbox-guid' && id.guid, guid);
});

test('2007/2010: the mailbox server FQDN or CAS array is a server', () => {
  assert.deepEqual(rpc.identify(channel('MBX2007-NY.o365info.local:6001', {})), {
    kind: 'server',
    server: 'mbx2007-ny.o365info.local',
    port: 6001,
  });
  const id = rpc.identify(channel('outlook.o365info.local:6002'));
  assert.equal(id.kind === 'server' && id.port, 6002);
});

test('a probe without a target is identified by the credentials alone', () => {
  assert.equal(rpc.identify(channel('')).kind, 'user');
  assert.deepEqual(rpc.identify(channel('', {})), { kind: 'anonymous' });
});

test('refuses other ports and malformed targets', () => {
  const cases: [string, string][] = [
    [`${guid}@o365info.com:593`, 'CX_IDENTITY_RPC_PORT'],
    ['mbx2007-ny.o365info.local:3389', 'CX_IDENTITY_RPC_PORT'],
    ['mbx2007-ny.o365info.local', 'CX_IDENTITY_QUERY_MALFORMED'],
    ['mbx2007-ny.o365info.local:', 'CX_IDENTITY_QUERY_MALFORMED'],
    ['bob@o365info.com:6001', 'CX_IDENTITY_QUERY_MALFORMED'],
    ['evil.com/x:6001', 'CX_IDENTITY_QUERY_MALFORMED'],
    ['%zz:6001', 'CX_IDENTITY_QUERY_MALFORMED'],
  ];
  for (const [query, code] of cases) {
    const id = rpc.identify(channel(query));
    assert.equal(id.kind === 'invalid' && id.code, code, query);
  }
});

test('matches rpcproxy.dll only', () => {
  assert.ok(rpc.matches({ ...channel(''), path: '/RPC/RpcProxy.dll' }));
  assert.ok(!rpc.matches({ ...channel(''), path: '/rpc/' }));
});
