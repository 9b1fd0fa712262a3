import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../config/index.ts';
import { expectRequest } from './expect.ts';
import type { AnswerFacts, PeerCertificateFacts } from './fixes.ts';
import {
  bodyCode,
  connectFix,
  daysLeft,
  dnsFix,
  judgeAnswer,
  judgeCertificate,
  judgeSuccess,
  redirect451Fix,
  upstreamReason,
} from './fixes.ts';

const file = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const { index } = parseEstate(readFileSync(file, 'utf8'), file);
const bobEas = expectRequest(index, { user: 'bob@o365info.com', protocol: 'activesync', client: 'external' });
const bobEws = expectRequest(index, { user: 'bob@o365info.com', protocol: 'ews', client: 'external' });

const facts = (o: Partial<AnswerFacts>): AnswerFacts => ({
  user: 'bob@o365info.com',
  host: 'mail.o365info.com',
  status: 200,
  path: [],
  expectation: bobEas,
  ...o,
});

test('401: a credentials fix naming the server that refused and the user', () => {
  const j = judgeAnswer(facts({ status: 401, path: ['CAS2013-NY'] }));
  assert.equal(j.verdict, 'fail');
  assert.equal(j.code, 'CX_AUTH_FAILED');
  assert.equal(
    j.fix,
    'CAS2013-NY refused the credentials of bob@o365info.com (HTTP 401): check the user name and password (--password or COEXIST_PASSWORD), and that the account is enabled and not locked out.',
  );
  // Without a path header, the host is named.
  assert.match(judgeAnswer(facts({ status: 401 })).fix ?? '', /^mail\.o365info\.com refused/);
});

test('503 with a path that stops early: the first expected server that did not answer, who tried, and the URL', () => {
  const j = judgeAnswer(facts({ status: 503, path: ['CAS2013-NY', 'MBX2013-NY'], retryAfter: '30' }));
  assert.equal(j.verdict, 'fail');
  assert.deepEqual(j.hops.comparison, { kind: 'stopped', at: 'MBX2013-NY', next: 'CAS2007-NY' });
  assert.equal(
    j.fix,
    'CAS2007-NY did not answer MBX2013-NY (it could not be reached: HTTP 503 with Retry-After). Check that CAS2007-NY is running and reachable from MBX2013-NY at https://cas2007-ny.o365info.local/Microsoft-Server-ActiveSync.',
  );
  assert.equal(j.code, 'CX_UPSTREAM_ERROR');
});

test('502 with the catalogue code in the body: the reason in words, and that code', () => {
  const j = judgeAnswer(
    facts({
      status: 502,
      path: ['CAS2013-NY'],
      expectation: bobEws,
      body: 'The next hop refused the connection. (CX_UPSTREAM_CONNECT_REFUSED)\n',
    }),
  );
  assert.equal(j.code, 'CX_UPSTREAM_CONNECT_REFUSED');
  assert.equal(
    j.fix,
    'CAS2007-NY did not answer CAS2013-NY (connection refused). Check that CAS2007-NY is running and reachable from CAS2013-NY at https://legacy.mail.o365info.com/EWS/Exchange.asmx.',
  );
  // A store hop has no URL: the sentence ends without one.
  const store = judgeAnswer(
    facts({
      status: 502,
      path: ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY'],
      body: '... (CX_UPSTREAM_CONNECT_TIMEOUT)',
    }),
  );
  assert.equal(
    store.fix,
    'MBX2007-NY did not answer CAS2007-NY (the connection timed out). Check that MBX2007-NY is running and reachable from CAS2007-NY.',
  );
});

test('the directory down, a 5xx at the end of the path, a refusal code, an unexpected redirect', () => {
  const dir = judgeAnswer(
    facts({ status: 503, path: ['CAS2013-NY'], body: 'x (CX_DIRECTORY_UNAVAILABLE)\n' }),
  );
  assert.equal(dir.code, 'CX_DIRECTORY_UNAVAILABLE');
  assert.match(dir.fix ?? '', /^CAS2013-NY could not ask the directory/);
  const end = judgeAnswer(facts({ status: 500, path: bobEas.hops ?? [] }));
  assert.match(
    end.fix ?? '',
    /^MBX2007-NY answered HTTP 500; the request reached every server the estate names/,
  );
  const refused = judgeAnswer(
    facts({ status: 404, path: ['CAS2013-NY'], body: 'Not offered. (CX_ROUTE_NOT_OFFERED)' }),
  );
  assert.equal(refused.code, 'CX_ROUTE_NOT_OFFERED');
  assert.match(refused.fix ?? '', /HTTP 404 \(CX_ROUTE_NOT_OFFERED\): The protocol is not offered/);
  const moved = judgeAnswer(
    facts({ status: 302, path: ['CAS2013-NY'], location: 'https://elsewhere.example/' }),
  );
  assert.match(
    moved.fix ?? '',
    /redirected the request \(HTTP 302\) to https:\/\/elsewhere\.example\/, which the estate does not expect \(it says MBX2007-NY answers\)/,
  );
});

test('451: the device must follow X-MS-Location', () => {
  const loc = 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync';
  const j = judgeAnswer(facts({ status: 451, path: ['CAS2013-NY'], location: loc }));
  assert.equal(j.fix, redirect451Fix(loc));
  assert.match(j.fix ?? '', /must follow X-MS-Location to https:\/\/europe\.mail\.o365info\.com/);
  assert.match(redirect451Fix(undefined), /without X-MS-Location: the device has to run Autodiscover again/);
});

test('a success through other servers than the estate says is a warning that says both paths', () => {
  const ok = judgeSuccess(bobEas.hops ?? [], bobEas);
  assert.equal(ok.verdict, 'pass');
  assert.equal(ok.fix, undefined);
  const other = judgeSuccess(['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY'], bobEas);
  assert.equal(other.verdict, 'warn');
  assert.match(
    other.fix ?? '',
    /^The answer came back through CAS2013-NY -> CAS2007-NY -> MBX2007-NY, but the estate says CAS2013-NY -> MBX2013-NY -> CAS2007-NY -> MBX2007-NY/,
  );
  // No X-Coexist-Path (a server that is not coexist): nothing to compare, not a warning.
  assert.equal(judgeSuccess([], bobEas).verdict, 'pass');
});

const now = new Date('2026-06-01T12:00:00Z');
const cert = (o: Partial<PeerCertificateFacts> = {}): PeerCertificateFacts => ({
  subjectCn: 'mail.o365info.com',
  altNames: ['mail.o365info.com'],
  issuer: 'coexist lab CA',
  validFrom: new Date('2026-05-01T00:00:00Z'),
  validTo: new Date('2027-01-01T00:00:00Z'),
  authorized: true,
  nameMatches: true,
  ...o,
});

test('TLS: names, issuer, expiry and days left in the title; a pass', () => {
  const j = judgeCertificate('mail.o365info.com', cert(), now, 30);
  assert.equal(j.verdict, 'pass');
  assert.equal(
    j.title,
    'TLS certificate mail.o365info.com (CN/SAN match, issuer coexist lab CA, expires 2027-01-01, 214 days)',
  );
});

test('TLS: fewer days left than the threshold is a warning with the date', () => {
  const j = judgeCertificate(
    'mail.o365info.com',
    cert({ validTo: new Date('2026-06-20T00:00:00Z') }),
    now,
    30,
  );
  assert.equal(j.verdict, 'warn');
  assert.equal(
    j.fix,
    'The certificate for mail.o365info.com expires on 2026-06-20, in 19 days: renew it before then.',
  );
  // A 30-day certificate issued a moment ago has 30 days: not under 30.
  assert.equal(daysLeft(new Date(now.getTime() + 30 * 86_400_000 - 5_000), now), 30);
  assert.equal(
    judgeCertificate('h', cert({ validTo: new Date(now.getTime() + 30 * 86_400_000 - 5_000) }), now, 30)
      .verdict,
    'pass',
  );
});

test('TLS: expired, not yet valid, a name mismatch, an untrusted issuer', () => {
  const expired = judgeCertificate(
    'mail.o365info.com',
    cert({ validTo: new Date('2026-05-30T00:00:00Z') }),
    now,
    30,
  );
  assert.equal(expired.verdict, 'fail');
  assert.equal(expired.code, 'CX_UPSTREAM_TLS');
  assert.equal(
    expired.fix,
    'The certificate for mail.o365info.com expired on 2026-05-30: renew it and bind the new one on the server.',
  );
  const early = judgeCertificate('h.example', cert({ validFrom: new Date('2026-07-01T00:00:00Z') }), now, 30);
  assert.match(early.fix ?? '', /not valid before 2026-07-01/);
  const wrong = judgeCertificate(
    'mail.o365info.com',
    cert({
      subjectCn: 'cas2007-ny.o365info.local',
      altNames: ['cas2007-ny.o365info.local', 'legacy.mail.o365info.com'],
      nameMatches: false,
    }),
    now,
    30,
  );
  assert.equal(wrong.verdict, 'fail');
  assert.match(wrong.title, /\(name mismatch, /);
  assert.equal(
    wrong.fix,
    "The certificate served for mail.o365info.com names CN=cas2007-ny.o365info.local, legacy.mail.o365info.com, not mail.o365info.com: add mail.o365info.com to the certificate's Subject Alternative Names, or point mail.o365info.com at a server whose certificate has it.",
  );
  const untrusted = judgeCertificate(
    'mail.o365info.com',
    cert({ authorized: false, authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }),
    now,
    30,
  );
  assert.match(
    untrusted.fix ?? '',
    /not trusted by this client \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): give its CA with --ca/,
  );
});

test('connecting: refused, timed out, DNS, reset, TLS, and anything else', () => {
  const target = { host: '127.0.0.1', port: 8443 };
  const refused = connectFix('legacy.mail.o365info.com', target, 'CAS2007-NY', 'ECONNREFUSED', 1000);
  assert.equal(refused.code, 'CX_UPSTREAM_CONNECT_REFUSED');
  assert.equal(
    refused.fix,
    'Nothing accepts connections for legacy.mail.o365info.com (CAS2007-NY in the estate) at 127.0.0.1:8443: check that CAS2007-NY is running, and that legacy.mail.o365info.com points at it.',
  );
  assert.match(
    connectFix('h', target, undefined, 'UND_ERR_CONNECT_TIMEOUT', 1500).fix,
    /within 1500 ms: a firewall/,
  );
  assert.equal(connectFix('h', target, undefined, 'ENOTFOUND', 1).code, 'CX_UPSTREAM_DNS');
  assert.equal(connectFix('h', target, undefined, 'ECONNRESET', 1).code, 'CX_UPSTREAM_CONNECTION_RESET');
  assert.equal(
    connectFix('h', target, undefined, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 1).code,
    'CX_UPSTREAM_TLS',
  );
  assert.equal(
    connectFix('h', target, undefined, 'UND_ERR_HEADERS_TIMEOUT', 1).code,
    'CX_UPSTREAM_HEADERS_TIMEOUT',
  );
  assert.equal(connectFix('h', target, undefined, 'EWHATEVER', 1).code, 'CX_UPSTREAM_ERROR');
});

test('DNS: the name, the reason, and the way out', () => {
  assert.equal(
    dnsFix('legacy.mail.o365info.com', 'ENOTFOUND'),
    'legacy.mail.o365info.com does not resolve (ENOTFOUND: no such name): add it to DNS (for an internal client, check the split-DNS zone), or point the check at the server with --connect-to legacy.mail.o365info.com:443:ADDRESS:PORT.',
  );
  assert.match(dnsFix('h', 'EAI_AGAIN'), /the DNS server did not answer/);
});

test('bodyCode and upstreamReason read coexist error answers', () => {
  assert.equal(
    bodyCode('The next hop refused the connection. (CX_UPSTREAM_CONNECT_REFUSED)\n'),
    'CX_UPSTREAM_CONNECT_REFUSED',
  );
  assert.equal(bodyCode('(CX_NOT_A_CODE)'), undefined);
  assert.equal(bodyCode(undefined), undefined);
  assert.equal(upstreamReason('CX_UPSTREAM_DNS'), 'its host name does not resolve');
  assert.equal(upstreamReason(undefined), 'no reason given');
  assert.equal(
    upstreamReason('CX_UPSTREAM_LOCAL_EXHAUSTED'),
    'coexist ran out of file descriptors or local ports to connect to the next hop',
  );
});
