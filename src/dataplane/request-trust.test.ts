import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { parseEstate } from '../config/index.ts';
import type { Server } from '../core/estate/estate.ts';
import type { RequestHead } from '../core/protocols/request-head.ts';
import { restoreMethod, rewriteRpcLine } from './listener.ts';
import { crossSiteRequest, hostRefusal, owaRedirectHosts, servedHosts } from './request-trust.ts';

const file = new URL('../../examples/o365info.yaml', import.meta.url);
const { index } = parseEstate(readFileSync(file, 'utf8'), file.pathname);
const server = (name: string): Server => index.server(name) as Server;

/** A request as the host check sees it: raw headers, the first Host, and the socket's SNI. */
function request(rawHeaders: string[], servername?: string | false): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    headers[name] ??= rawHeaders[i + 1] as string;
  }
  const socket = servername === undefined ? {} : { servername };
  return { rawHeaders, headers, socket } as unknown as IncomingMessage;
}

const head = (method: string, host: string, headers: Record<string, string>): RequestHead => ({
  method,
  host,
  path: '/owa/auth.owa',
  query: '',
  headers,
});

describe('the hosts a server answers for', () => {
  test('FQDN, URL hosts and the namespaces that resolve to it; nothing of other servers', () => {
    const front = servedHosts(index, server('CAS2013-NY'));
    for (const h of ['cas2013-ny.o365info.local', 'mail.o365info.com', 'autodiscover.o365info.com'])
      assert.ok(front.has(h), h);
    assert.ok(!front.has('legacy.mail.o365info.com'));
    assert.ok(servedHosts(index, server('CAS2007-NY')).has('legacy.mail.o365info.com'));
    assert.deepEqual([...servedHosts(index, server('MBX2013-NY'))], ['mbx2013-ny.o365info.local']);
  });

  test('OWA may send a browser to the namespaces and OWA URL hosts of the estate only', () => {
    const owa = owaRedirectHosts(index);
    for (const h of ['mail.o365info.com', 'legacy.mail.o365info.com', 'europe.mail.o365info.com'])
      assert.ok(owa.has(h), h);
    assert.ok(!owa.has('evil.example.com'));
  });

  test('hostRefusal: 421 for another host or an SNI that disagrees, 400 for two Hosts', () => {
    const front = server('CAS2013-NY');
    assert.equal(
      hostRefusal(request(['Host', 'mail.o365info.com'], 'mail.o365info.com'), index, front),
      undefined,
    );
    assert.equal(hostRefusal(request(['Host', 'Mail.O365info.com:443']), index, front), undefined);
    assert.equal(hostRefusal(request(['Host', 'mail.o365info.com'], false), index, front), undefined);
    assert.equal(hostRefusal(request(['Host', 'evil.example.com']), index, front), 'CX_HTTP_MISDIRECTED');
    assert.equal(hostRefusal(request([]), index, front), 'CX_HTTP_MISDIRECTED');
    assert.equal(
      hostRefusal(request(['Host', 'cas2013-ny.o365info.local'], 'mail.o365info.com'), index, front),
      'CX_HTTP_MISDIRECTED',
    );
    assert.equal(
      hostRefusal(request(['Host', 'mail.o365info.com', 'host', 'evil.example.com']), index, front),
      'CX_HTTP_MALFORMED',
    );
  });
});

describe('cross-site requests (login CSRF)', () => {
  const host = 'mail.o365info.com';
  test('absent headers, the same origin, safe methods and same-origin fetches pass', () => {
    assert.equal(crossSiteRequest(head('POST', host, {})), false);
    assert.equal(crossSiteRequest(head('POST', host, { origin: 'https://mail.o365info.com' })), false);
    assert.equal(
      crossSiteRequest(head('POST', `${host}:443`, { origin: 'https://mail.o365info.com' })),
      false,
    );
    assert.equal(
      crossSiteRequest(head('POST', `${host}:8443`, { origin: 'https://MAIL.o365info.com:8443' })),
      false,
    );
    assert.equal(crossSiteRequest(head('POST', host, { 'sec-fetch-site': 'same-origin' })), false);
    assert.equal(crossSiteRequest(head('GET', host, { origin: 'https://evil.example.com' })), false);
  });
  test('another origin, an opaque one, another port, or Sec-Fetch-Site: cross-site are refused', () => {
    for (const origin of [
      'https://evil.example.com',
      'null',
      'https://mail.o365info.com:8443',
      'ftp://mail.o365info.com',
    ])
      assert.equal(crossSiteRequest(head('POST', host, { origin })), true, origin);
    assert.equal(crossSiteRequest(head('POST', host, { 'sec-fetch-site': 'cross-site' })), true);
    assert.equal(crossSiteRequest(head('DELETE', host, { 'sec-fetch-site': 'Cross-Site' })), true);
  });
});

describe('the RPC method marker is believed on the rewritten request only', () => {
  /** A request on `socket` parsed from `line` + headers, as Node would hand it over. */
  function parsed(socket: Socket, bytes: Buffer): IncomingMessage {
    const text = bytes.toString('latin1');
    const [start = '', ...lines] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
    const rawHeaders = lines.flatMap((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
    const headers: Record<string, string> = {};
    for (let i = 0; i < rawHeaders.length; i += 2)
      headers[(rawHeaders[i] as string).toLowerCase()] = rawHeaders[i + 1] as string;
    return { method: start.split(' ')[0], rawHeaders, headers, socket } as unknown as IncomingMessage;
  }

  test('the marker a client sends itself is stripped and never believed', () => {
    const socket = new Socket();
    const req = parsed(
      socket,
      Buffer.from('POST /owa/ HTTP/1.1\r\nx-coexist-method: RPC_OUT_DATA\r\nHost: a\r\n\r\n'),
    );
    restoreMethod(req);
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['x-coexist-method'], undefined);
  });

  test('rewriteRpcLine puts the marker first, before anything the client wrote', () => {
    const out = rewriteRpcLine(Buffer.from('RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\n\r\n'));
    assert.match(
      String(out),
      /^POST \/rpc\/rpcproxy\.dll HTTP\/1\.1\r\nx-coexist-method: RPC_IN_DATA\r\nHost: a\r\n/,
    );
  });
});
