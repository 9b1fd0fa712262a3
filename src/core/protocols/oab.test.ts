/** OAB (docs/protocols.md §3 OAB row): the GUID of the path, plus the Basic user. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { oab } from './oab.ts';
import type { RequestHead } from './request-head.ts';

const get = (path: string, headers: Record<string, string> = {}): RequestHead => ({
  method: 'GET',
  host: 'legacy.mail.o365info.com',
  path,
  query: '',
  headers,
});
const guid = '3b4f7a2e-9c1d-4e8f-a6b5-0c2d1e3f4a5b';

test('oab.xml and its files name the address book by GUID', () => {
  assert.deepEqual(oab.identify(get(`/OAB/${guid.toUpperCase()}/oab.xml`)), { kind: 'oab', guid });
  const auth = `Basic ${Buffer.from('bob@o365info.com:pw').toString('base64')}`;
  assert.deepEqual(oab.identify(get(`/oab/${guid}/2f6c4e8a-data-1.lzx`, { authorization: auth })), {
    kind: 'oab',
    guid,
    basicUser: 'bob@o365info.com',
  });
});

test('refuses paths without a GUID', () => {
  for (const path of ['/OAB', '/OAB/', '/OAB/oab.xml', '/OAB/not-a-guid/oab.xml']) {
    const id = oab.identify(get(path));
    assert.equal(id.kind === 'invalid' && id.code, 'CX_IDENTITY_PATH_MALFORMED', path);
  }
});

test('matches /OAB only', () => {
  assert.ok(oab.matches(get(`/OAB/${guid}/oab.xml`)));
  assert.ok(!oab.matches(get('/OABx/')));
});
