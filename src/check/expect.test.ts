import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../config/index.ts';
import { expectRequest, flowLabel, hopUrl, sameUrl } from './expect.ts';

const file = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const { index } = parseEstate(readFileSync(file, 'utf8'), file);
const ext = (user: string, protocol: Parameters<typeof expectRequest>[1]['protocol'], host?: string) =>
  expectRequest(index, { user, protocol, client: 'external', ...(host ? { host } : {}) });

test('the hops of one request are the first leg of the traced flow', () => {
  assert.deepEqual(ext('bob@o365info.com', 'activesync').hops, [
    'CAS2013-NY',
    'MBX2013-NY',
    'CAS2007-NY',
    'MBX2007-NY',
  ]);
  assert.deepEqual(ext('carol@o365info.com', 'activesync').hops, [
    'CAS2013-NY',
    'MBX2013-NY',
    'CAS2007-LA',
    'MBX2007-LA',
  ]);
  assert.deepEqual(ext('diego@o365info.com', 'activesync').hops, [
    'CAS2013-NY',
    'CAS2007-MAD',
    'MBX2007-MAD',
  ]);
  assert.deepEqual(ext('bob@o365info.com', 'ews').hops, ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
  assert.deepEqual(ext('alice@o365info.com', 'ews').hops, ['CAS2013-NY', 'MBX2013-NY']);
  assert.deepEqual(ext('bob@o365info.com', 'autodiscover').hops, ['CAS2013-NY']);
  // At the URL Autodiscover hands out, the legacy namespace: CAS2007-NY directly.
  assert.deepEqual(ext('bob@o365info.com', 'ews', 'legacy.mail.o365info.com').hops, [
    'CAS2007-NY',
    'MBX2007-NY',
  ]);
});

test('a redirect ends the first leg: OWA for a 2007 mailbox is redirected, as trace says', () => {
  const owa = ext('bob@o365info.com', 'owa');
  assert.deepEqual(owa.hops, ['CAS2013-NY']);
  assert.deepEqual(owa.outcome, {
    kind: 'redirected',
    status: 302,
    location: 'https://legacy.mail.o365info.com/owa',
  });
  const inside = expectRequest(index, { user: 'bob@o365info.com', protocol: 'owa', client: 'internal' });
  assert.deepEqual(inside.outcome, {
    kind: 'redirected',
    status: 302,
    location: 'https://cas2007-ny.o365info.local/owa',
  });
  // Where the redirect goes, the mailbox answers (carol: through CAS2007-NY's CAS-to-CAS proxy).
  const there = ext('carol@o365info.com', 'owa', 'legacy.mail.o365info.com');
  assert.deepEqual(there.hops, ['CAS2007-NY', 'CAS2007-LA', 'MBX2007-LA']);
  assert.deepEqual(there.outcome, { kind: 'answered', by: 'MBX2007-LA' });
});

test('under the legacy policy, EAS-3A becomes a 451 to the regional namespace', () => {
  const e = expectRequest(
    index,
    { user: 'diego@o365info.com', protocol: 'activesync', client: 'external' },
    { ...index.estate.policies, activesyncCrossSite: 'redirect-451' },
  );
  assert.deepEqual(e.outcome, {
    kind: 'redirected',
    status: 451,
    location: 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync',
  });
  assert.deepEqual(e.hops, ['CAS2013-NY']);
});

test('a refusal is the outcome of the leg, with its status and code', () => {
  assert.deepEqual(ext('bob@o365info.com', 'ecp').outcome, {
    kind: 'refused',
    by: 'CAS2013-NY',
    status: 404,
    code: 'CX_ROUTE_NOT_OFFERED',
  });
});

test('no expectation for a host or a user the estate does not know', () => {
  const host = ext('bob@o365info.com', 'ews', 'mail.example.net');
  assert.equal(host.hops, undefined);
  assert.match(host.unknown ?? '', /mail\.example\.net is neither a namespace nor a server/);
  assert.match(ext('nobody@o365info.com', 'ews').unknown ?? '', /no mailbox for nobody@o365info\.com/);
});

test('flowLabel: the numbered flow of docs/flows.md, only from the protocol family', () => {
  const label = (
    user: string,
    protocol: 'activesync' | 'ews',
    client: 'internal' | 'external' = 'external',
  ) => {
    const flow = expectRequest(index, { user, protocol, client }).flow;
    return flow && flowLabel(flow);
  };
  assert.equal(label('bob@o365info.com', 'activesync'), 'EAS-1');
  assert.equal(label('carol@o365info.com', 'activesync'), 'EAS-2');
  assert.equal(label('diego@o365info.com', 'activesync'), 'EAS-3A');
  assert.equal(label('bob@o365info.com', 'ews'), 'EWS-2');
  assert.equal(label('bob@o365info.com', 'ews', 'internal'), 'EWS-1');
  assert.equal(label('alice@o365info.com', 'activesync'), undefined);
  // OWA's legacy hop cites EAS-1 (the store hop): not an OWA flow name.
  const owa = ext('bob@o365info.com', 'owa', 'legacy.mail.o365info.com').flow;
  assert.ok(owa);
  assert.equal(flowLabel(owa), undefined);
});

test('hopUrl: the URL one server uses to reach the next; none for a store hop', () => {
  const flow = ext('bob@o365info.com', 'activesync').flow;
  assert.equal(
    hopUrl(flow, 'MBX2013-NY', 'CAS2007-NY'),
    'https://cas2007-ny.o365info.local/Microsoft-Server-ActiveSync',
  );
  assert.equal(hopUrl(flow, 'CAS2007-NY', 'MBX2007-NY'), undefined);
  assert.equal(hopUrl(undefined, 'A', 'B'), undefined);
});

test('sameUrl: scheme, host and path; case of the host and a trailing slash do not matter', () => {
  assert.ok(sameUrl('https://Legacy.Mail.o365info.com/owa/', 'https://legacy.mail.o365info.com/owa'));
  assert.ok(!sameUrl('https://legacy.mail.o365info.com/owa', 'https://mail.o365info.com/owa'));
  assert.ok(!sameUrl(undefined, 'https://mail.o365info.com/owa'));
});
