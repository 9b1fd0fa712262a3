/**
 * Who a peer is and the client's address behind it (docs/security.md "How servers authenticate each other"):
 * the one X-Forwarded-For rule that both the client's location and the lockout's source use, and the SAN
 * reading that names a server. The certificates themselves are checked over real TLS in
 * test/security/server-trust.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClientAddressInput, PeerTrust } from './peer-trust.ts';
import { clientAddress, isTrustedAddress, serverNamed } from './peer-trust.ts';

const client: PeerTrust = { kind: 'client' };
const proxy: PeerTrust = { kind: 'proxy' };
const server: PeerTrust = { kind: 'server', server: 'MBX2013-NY' };
const balancer = '10.0.0.5';
const proxies = new Set([balancer]);

describe('clientAddress: the right-most X-Forwarded-For entry no trusted peer added', () => {
  const cases: readonly [string, ClientAddressInput, string | undefined][] = [
    [
      'a client: its own X-Forwarded-For is never read',
      { peer: client, peerAddress: '198.51.100.9', forwardedFor: '10.1.2.3', hops: 3, proxies },
      '198.51.100.9',
    ],
    [
      'a load balancer: the entry it appended',
      { peer: proxy, peerAddress: balancer, forwardedFor: '203.0.113.7', hops: 0, proxies },
      '203.0.113.7',
    ],
    [
      'a load balancer, a spoofed left-most internal entry: the right-most one',
      { peer: proxy, peerAddress: balancer, forwardedFor: '10.1.2.3, 203.0.113.7', hops: 0, proxies },
      '203.0.113.7',
    ],
    [
      'two load balancers in a row: both skipped',
      {
        peer: proxy,
        peerAddress: balancer,
        forwardedFor: '10.1.2.3, 203.0.113.7, 10.0.0.6',
        hops: 0,
        proxies: new Set([balancer, '10.0.0.6']),
      },
      '203.0.113.7',
    ],
    [
      'a load balancer cannot make hops skip entries: hops count from servers only',
      { peer: proxy, peerAddress: balancer, forwardedFor: '10.1.2.3, 203.0.113.7', hops: 5, proxies },
      '203.0.113.7',
    ],
    [
      'the first server behind the front end (hops: the front end): the entry it appended',
      { peer: server, peerAddress: '10.0.0.20', forwardedFor: '203.0.113.7', hops: 1 },
      '203.0.113.7',
    ],
    [
      'two servers on (hops: two): the front end address the second appended is skipped',
      { peer: server, peerAddress: '10.0.0.21', forwardedFor: '203.0.113.7, 10.0.0.20', hops: 2 },
      '203.0.113.7',
    ],
    [
      'servers behind a load balancer: the servers, then the balancer, are skipped',
      {
        peer: server,
        peerAddress: '10.0.0.21',
        forwardedFor: '10.1.2.3, 203.0.113.7, 10.0.0.5, 10.0.0.20',
        hops: 2,
        proxies,
      },
      '203.0.113.7',
    ],
    [
      'every entry trusted: the left-most',
      { peer: proxy, peerAddress: balancer, forwardedFor: `${balancer}, ${balancer}`, hops: 0, proxies },
      balancer,
    ],
    [
      'fewer entries than server hops: the left-most',
      { peer: server, peerAddress: '10.0.0.21', forwardedFor: '10.0.0.20', hops: 4 },
      '10.0.0.20',
    ],
    [
      'no X-Forwarded-For: the peer',
      { peer: server, peerAddress: '10.0.0.20', forwardedFor: undefined, hops: 1 },
      '10.0.0.20',
    ],
    [
      'an empty one: the peer',
      { peer: proxy, peerAddress: balancer, forwardedFor: ' , ', hops: 0, proxies },
      balancer,
    ],
    [
      'repeated headers: read as one list',
      { peer: proxy, peerAddress: balancer, forwardedFor: ['10.1.2.3', '203.0.113.7'], hops: 0, proxies },
      '203.0.113.7',
    ],
    [
      'an IPv4-mapped balancer entry is the balancer',
      {
        peer: proxy,
        peerAddress: balancer,
        forwardedFor: `203.0.113.7, ::ffff:${balancer}`,
        hops: 0,
        proxies,
      },
      '203.0.113.7',
    ],
  ];
  for (const [title, input, expected] of cases) {
    test(title, () => assert.equal(clientAddress(input), expected));
  }
});

describe('serverNamed: a SAN dNSName naming a server of the estate', () => {
  const servers = new Map([
    ['cas2013-ny.o365info.local', 'CAS2013-NY'],
    ['mbx2013-ny.o365info.local', 'MBX2013-NY'],
  ]);
  const cases: readonly [string, string | undefined, string | undefined][] = [
    ['one name', 'DNS:mbx2013-ny.o365info.local', 'MBX2013-NY'],
    ['upper case', 'DNS:MBX2013-NY.o365info.local', 'MBX2013-NY'],
    ['the first server among several', 'DNS:mail.o365info.com, DNS:cas2013-ny.o365info.local', 'CAS2013-NY'],
    ['a host that is no server', 'DNS:mail.o365info.com', undefined],
    ['an IP address', 'IP Address:127.0.0.2', undefined],
    ['a quoted value smuggling a second name', 'DNS:"evil, DNS:cas2013-ny.o365info.local"', undefined],
    ['a wildcard', 'DNS:*.o365info.local', undefined],
    ['no SAN at all', undefined, undefined],
  ];
  for (const [title, san, expected] of cases) {
    test(title, () => assert.equal(serverNamed(san, servers), expected));
  }
});

test('isTrustedAddress: an IPv4-mapped address matches its IPv4 entry; nothing without a list', () => {
  assert.equal(isTrustedAddress(proxies, `::ffff:${balancer}`), true);
  assert.equal(isTrustedAddress(proxies, '10.0.0.6'), false);
  assert.equal(isTrustedAddress(undefined, balancer), false);
});
