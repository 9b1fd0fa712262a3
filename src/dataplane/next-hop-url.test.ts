import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { endpointUrl, nextHopUrl } from './next-hop-url.ts';

describe('nextHopUrl: the decision names the virtual directory, the client keeps the rest', () => {
  test('ActiveSync: path and query unchanged under the target vdir', () => {
    assert.equal(
      nextHopUrl('https://cas2007-ny.o365info.local/Microsoft-Server-ActiveSync', {
        path: '/Microsoft-Server-ActiveSync',
        query: 'Cmd=Sync&User=bob&DeviceId=D1&DeviceType=Phone',
      }),
      'https://cas2007-ny.o365info.local/Microsoft-Server-ActiveSync?Cmd=Sync&User=bob&DeviceId=D1&DeviceType=Phone',
    );
  });
  test('OWA: the rest of the path goes under the target vdir; a bare origin keeps the whole path', () => {
    assert.equal(
      nextHopUrl('https://legacy.mail.o365info.com/owa', { path: '/owa/auth/logon.aspx', query: '' }),
      'https://legacy.mail.o365info.com/owa/auth/logon.aspx',
    );
    assert.equal(
      nextHopUrl('https://mbx2007-ny.o365info.local/', { path: '/EWS/Exchange.asmx', query: '' }),
      'https://mbx2007-ny.o365info.local/EWS/Exchange.asmx',
    );
  });
});

describe('endpointUrl: a stand-in endpoint replaces the client vdir with its whole path', () => {
  const sogo = 'http://127.0.0.1:21000/SOGo/Microsoft-Server-ActiveSync';
  test('the exact-case SOGo path, the query unchanged', () => {
    assert.equal(
      endpointUrl(sogo, { path: '/microsoft-server-activesync', query: 'Cmd=Ping&User=bob&DeviceId=D1' }),
      'http://127.0.0.1:21000/SOGo/Microsoft-Server-ActiveSync?Cmd=Ping&User=bob&DeviceId=D1',
    );
  });
  test('a base64 query and no query', () => {
    assert.equal(
      endpointUrl(sogo, { path: '/Microsoft-Server-ActiveSync', query: 'jQkJBAgBI0VniavN7wA=' }),
      `${sogo}?jQkJBAgBI0VniavN7wA=`,
    );
    assert.equal(endpointUrl(sogo, { path: '/Microsoft-Server-ActiveSync', query: '' }), sogo);
  });
  test('more path after the vdir is kept, without a doubled slash', () => {
    assert.equal(
      endpointUrl('http://127.0.0.1:9/store/', { path: '/EWS/Exchange.asmx', query: '' }),
      'http://127.0.0.1:9/store/Exchange.asmx',
    );
  });
});
