/** `classify`: one module per protocol path (docs/protocols.md §2.2), lookalike and unclean paths match none. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Protocol } from './protocol.ts';
import { protocolPath, protocols } from './protocol.ts';
import { classify, isCleanPath, modules } from './registry.ts';
import type { RequestHead } from './request-head.ts';

const at = (path: string): RequestHead => ({
  method: 'POST',
  host: 'mail.o365info.com',
  path,
  query: '',
  headers: {},
});
const guid = '3b4f7a2e-9c1d-4e8f-a6b5-0c2d1e3f4a5b';

test('one module per protocol, in a fixed order', () => {
  assert.deepEqual([...modules.map((m) => m.protocol)].sort(), [...protocols].sort());
});

test('each protocol path of protocol.ts classifies as that protocol', () => {
  for (const p of protocols) {
    const path = p === 'oab' ? `${protocolPath[p]}/${guid}/oab.xml` : protocolPath[p];
    assert.equal(classify(at(path))?.protocol, p, path);
  }
});

test('real paths classify, case-insensitively', () => {
  const cases: [string, Protocol][] = [
    ['/autodiscover/autodiscover.svc', 'autodiscover'],
    ['/autodiscover/autodiscover.json/v1.0/bob@o365info.com', 'autodiscover'],
    ['/microsoft-server-activesync', 'activesync'],
    ['/EWS/Services.wsdl', 'ews'],
    ['/mapi/nspi/', 'mapi'],
    ['/OWA/auth/logon.aspx', 'owa'],
    ['/ecp/', 'ecp'],
    ['/Rpc/RpcProxy.dll', 'rpc'],
  ];
  for (const [path, p] of cases) assert.equal(classify(at(path))?.protocol, p, path);
});

test('other and unclean paths classify as nothing', () => {
  for (const path of [
    '/',
    '/favicon.ico',
    '/owa2/',
    '/owa/../ecp/',
    '/owa/./x',
    '/ews//exchange.asmx',
    '/ews%2fexchange.asmx',
    '/owa/%2e%2e/ecp',
    '/owa\\..\\ecp',
    'owa/',
    '/ecp/%252e',
  ])
    assert.equal(classify(at(path)), undefined, path);
  assert.ok(isCleanPath('/owa/'));
});
