/**
 * The proxy's header rules: RFC 9110 §7.6.1 hop-by-hop removal, the headers an Exchange front end refuses
 * to copy (docs/protocols.md §4.10), X-Forwarded-* with trusted peers, the hop record, and the diagnostics
 * added to responses.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import type { ForwardContext, HeaderRecord, ResponseContext } from './headers.ts';
import { forwardRequestHeaders, parseHops, responseHeaders } from './headers.ts';

const client = '203.0.113.7';
const balancer = '10.0.0.5';
const ctx: ForwardContext = {
  peerAddress: client,
  scheme: 'https',
  listenerPort: 443,
  upstreamHost: 'mbx2013-ny.o365info.local:444',
  serverName: 'cas2013-ny',
  requestId: 'req-1',
};
/** A load balancer listed by address (peer-trust.ts decides; these rules only read the verdict). */
const fromBalancer: ForwardContext = { ...ctx, peerAddress: balancer, peer: { kind: 'proxy' } };
/** Another server of the estate, proven by its client certificate. */
const fromServer: ForwardContext = {
  ...ctx,
  peerAddress: '10.0.0.20',
  peer: { kind: 'server', server: 'CAS2013-NY' },
};
const base = { host: 'mail.o365info.com', authorization: 'Basic ZGllZ286cHc=' };
const fwd = (headers: HeaderRecord, c: ForwardContext = ctx) => forwardRequestHeaders(headers, c);

describe('forwardRequestHeaders: hop-by-hop headers (RFC 9110 §7.6.1)', () => {
  const hopByHop = [
    ['connection', 'keep-alive'],
    ['keep-alive', 'timeout=5'],
    ['proxy-connection', 'keep-alive'],
    ['te', 'gzip'],
    ['trailer', 'x-checksum'],
    ['transfer-encoding', 'chunked'],
    ['upgrade', 'websocket'],
    ['proxy-authenticate', 'Basic realm="lb"'],
    ['proxy-authorization', 'Basic Zm9vOmJhcg=='],
  ] as const;
  for (const [name, value] of hopByHop) {
    test(`${name} is not forwarded`, () => {
      assert.equal(fwd({ ...base, [name]: value })[name], undefined);
    });
  }

  const named: readonly [string, HeaderRecord, readonly string[], readonly string[]][] = [
    ['Connection: close, foo drops foo', { connection: 'close, foo', foo: '1', bar: '2' }, ['foo'], ['bar']],
    [
      'options are case-insensitive and may repeat as an array',
      { connection: ['close', ' X-Foo '], 'x-foo': '1', 'x-bar': '2' },
      ['x-foo'],
      ['x-bar'],
    ],
    ['empty options are ignored', { connection: ' , ,close', foo: '1' }, [], ['foo']],
    [
      'a client naming Authorization drops its own credentials',
      { connection: 'authorization' },
      ['authorization'],
      [],
    ],
  ];
  for (const [title, headers, dropped, kept] of named) {
    test(title, () => {
      const out = fwd({ ...base, ...headers });
      assert.equal(out['connection'], undefined);
      for (const n of dropped) assert.equal(out[n], undefined, n);
      for (const n of kept) assert.notEqual(out[n], undefined, n);
    });
  }

  test('Connection cannot strip the headers the proxy sets itself', () => {
    const out = fwd({
      ...base,
      connection: 'x-forwarded-for, x-forwarded-proto, x-coexist-hops, x-coexist-request-id, host',
    });
    assert.equal(out['x-forwarded-for'], client);
    assert.equal(out['x-forwarded-proto'], 'https');
    assert.equal(out['x-coexist-hops'], 'cas2013-ny');
    assert.equal(out['x-coexist-request-id'], 'req-1');
    assert.equal(out['host'], 'mbx2013-ny.o365info.local:444');
  });

  const te: readonly [string, string | string[], string | undefined][] = [
    ['trailers alone', 'trailers', 'trailers'],
    ['trailers among codings', 'gzip, trailers, deflate;q=0.5', 'trailers'],
    ['trailers as a repeated header', ['gzip', 'Trailers'], 'trailers'],
    ['codings only', 'gzip, deflate', undefined],
    ['a coding named like trailers', 'trailersx', undefined],
  ];
  for (const [title, value, expected] of te) {
    test(`TE: ${title} -> ${expected ?? 'dropped'} (RFC 9110 §10.1.4, RFC 9113 §8.2.2)`, () => {
      assert.equal(fwd({ ...base, connection: 'te', te: value })['te'], expected);
    });
  }

  test('Transfer-Encoding with Content-Length: both removed (RFC 9112 §6.3)', () => {
    const out = fwd({ ...base, 'transfer-encoding': 'chunked', 'content-length': '10' });
    assert.equal(out['content-length'], undefined);
    assert.equal(out['transfer-encoding'], undefined);
  });

  test('Content-Length alone is kept as sent: the 1 GiB RPC_IN_DATA reservation (§4.7)', () => {
    const out = fwd({
      ...base,
      'content-length': '1073741824',
      pragma: 'no-cache',
      accept: 'application/rpc',
    });
    assert.equal(out['content-length'], '1073741824');
    assert.equal(out['pragma'], 'no-cache');
  });
});

describe('forwardRequestHeaders: headers a client must not set (docs/protocols.md §4.10)', () => {
  const spoofable = [
    'x-commonaccesstoken',
    'x-isfromcafe',
    'x-sourcecafeserver',
    'msexchproxyuri',
    'x-msexchangeactivityctx',
    'return-client-request-id',
    'x-backend-diag-anything',
    'x-backend-diag-',
    'x-coexist-identity',
    'x-coexist-anything',
    'x-fe-clientip',
    'x-ms-edgeip',
    'expect',
  ];
  for (const name of spoofable) {
    test(`${name} from a client is dropped`, () => {
      assert.equal(fwd({ ...base, [name]: 'spoofed' })[name], undefined);
    });
    test(`${name} from a trusted load balancer is dropped too`, () => {
      assert.equal(fwd({ ...base, [name]: 'spoofed' }, fromBalancer)[name], undefined);
    });
  }

  test('mixed-case names are matched too (hand-made records)', () => {
    const out = fwd({ ...base, 'X-CommonAccessToken': 'spoofed', 'X-Anchormailbox': 'diego@o365info.com' });
    assert.equal(out['x-commonaccesstoken'], undefined);
    assert.equal(out['X-CommonAccessToken'], undefined);
    assert.equal(out['x-anchormailbox'], 'diego@o365info.com');
  });

  const kept: readonly [string, string][] = [
    ['authorization', 'Basic ZGllZ286cHc='], // "request + user credentials" (§5.2, §5.3)
    ['cookie', 'cadata=abc'],
    ['content-type', 'application/vnd.ms-sync.wbxml'],
    ['ms-asprotocolversion', '14.1'],
    ['x-ms-policykey', '3942919513'],
    ['x-anchormailbox', 'diego@o365info.com'],
    ['client-request-id', '5b3f0a1e-0000-4000-8000-000000000000'],
    ['user-agent', 'Apple-iPhone9C1/1602.92'],
    ['x-backend-diag', 'not the prefix'],
    ['x-coexistence', 'not our prefix'],
  ];
  for (const [name, value] of kept) {
    test(`${name} is forwarded unchanged`, () => {
      assert.equal(fwd({ ...base, [name]: value })[name], value);
    });
  }
});

describe('forwardRequestHeaders: X-Forwarded-* and Host', () => {
  const xff: readonly [string, HeaderRecord, ForwardContext, string | undefined][] = [
    ['client without XFF: the peer', {}, ctx, client],
    ['client with a spoofed XFF: replaced by the peer', { 'x-forwarded-for': '1.2.3.4' }, ctx, client],
    ['trusted balancer: appended', { 'x-forwarded-for': client }, fromBalancer, `${client}, ${balancer}`],
    [
      'trusted balancer, repeated XFF: joined then appended',
      { 'x-forwarded-for': ['198.51.100.1', client] },
      fromBalancer,
      `198.51.100.1, ${client}, ${balancer}`,
    ],
    ['trusted balancer without XFF: the peer', {}, fromBalancer, balancer],
    ['trusted balancer, empty XFF: the peer', { 'x-forwarded-for': '' }, fromBalancer, balancer],
    [
      'IPv4-mapped trusted peer is written as IPv4',
      { 'x-forwarded-for': client },
      { ...fromBalancer, peerAddress: `::ffff:${balancer}` },
      `${client}, ${balancer}`,
    ],
    [
      'trusted IPv6 peer',
      { 'x-forwarded-for': client },
      { ...fromBalancer, peerAddress: '::1' },
      `${client}, ::1`,
    ],
    ['a proven server: appended', { 'x-forwarded-for': client }, fromServer, `${client}, 10.0.0.20`],
    [
      'the address of a trusted balancer, but the peer proved nothing: a client',
      { 'x-forwarded-for': '1.2.3.4' },
      { ...fromBalancer, peer: { kind: 'client' } },
      balancer,
    ],
    [
      'peer unknown (socket gone): none, spoofed one dropped',
      { 'x-forwarded-for': '1.2.3.4' },
      { ...ctx, peerAddress: undefined },
      undefined,
    ],
  ];
  for (const [title, headers, c, expected] of xff) {
    test(`X-Forwarded-For, ${title}`, () => {
      assert.equal(fwd({ ...base, ...headers }, c)['x-forwarded-for'], expected);
    });
  }

  const spoofed = {
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'evil.example',
    'x-forwarded-port': '8080',
    forwarded: 'for=1.2.3.4',
  };
  test('an untrusted client cannot set proto, host, port or Forwarded: this listener says', () => {
    const out = fwd({ ...base, ...spoofed });
    assert.equal(out['x-forwarded-proto'], 'https');
    assert.equal(out['x-forwarded-host'], 'mail.o365info.com');
    assert.equal(out['x-forwarded-port'], '443');
    assert.equal(out['forwarded'], undefined);
  });

  test('a trusted balancer saw the client: its proto, host, port and Forwarded are kept', () => {
    const out = fwd({ ...base, ...spoofed }, fromBalancer);
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-forwarded-host'], 'evil.example');
    assert.equal(out['x-forwarded-port'], '8080');
    assert.equal(out['forwarded'], 'for=1.2.3.4');
  });

  test('X-Forwarded-Host from HTTP/2 :authority; pseudo-headers are not forwarded', () => {
    const out = fwd({ ':authority': 'mail.o365info.com', ':method': 'POST', ':path': '/EWS/Exchange.asmx' });
    assert.equal(out['x-forwarded-host'], 'mail.o365info.com');
    assert.deepEqual(
      Object.keys(out).filter((k) => k.startsWith(':')),
      [],
    );
  });

  test('no Host at all (HTTP/1.0): no X-Forwarded-Host', () => {
    assert.equal(fwd({})['x-forwarded-host'], undefined);
  });

  test('Host is the next hop, whatever the client sent', () => {
    assert.equal(fwd({ host: 'evil.example' })['host'], 'mbx2013-ny.o365info.local:444');
  });

  test('plain-HTTP listener on another port', () => {
    const out = fwd(base, { ...ctx, scheme: 'http', listenerPort: 8080 });
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-forwarded-port'], '8080');
  });
});

describe('forwardRequestHeaders: hop record and request id', () => {
  const hops: readonly [string, HeaderRecord, ForwardContext, string][] = [
    ['first hop', {}, ctx, 'cas2013-ny'],
    ['spoofed by a client: replaced', { 'x-coexist-hops': 'cas2007-ny' }, ctx, 'cas2013-ny'],
    [
      'from a proven coexist server: appended',
      { 'x-coexist-hops': 'cas2013-ny' },
      { ...fromServer, serverName: 'mbx2013-ny' },
      'cas2013-ny, mbx2013-ny',
    ],
    [
      'repeated header from a proven server: joined then appended',
      { 'x-coexist-hops': ['cas2013-ny', 'mbx2013-ny'] },
      { ...fromServer, serverName: 'cas2007-ny' },
      'cas2013-ny, mbx2013-ny, cas2007-ny',
    ],
    ['empty from a proven server', { 'x-coexist-hops': '' }, fromServer, 'cas2013-ny'],
    // A load balancer passes on whatever its client wrote: hops are believed from proven servers only.
    [
      'from a trusted load balancer: replaced',
      { 'x-coexist-hops': 'cas2007-ny' },
      fromBalancer,
      'cas2013-ny',
    ],
  ];
  for (const [title, headers, c, expected] of hops) {
    test(`X-Coexist-Hops, ${title}`, () => {
      assert.equal(fwd({ ...base, ...headers }, c)['x-coexist-hops'], expected);
    });
  }

  test('the request id is ours, even from a trusted peer', () => {
    assert.equal(fwd({ ...base, 'x-coexist-request-id': 'spoofed' })['x-coexist-request-id'], 'req-1');
    assert.equal(fwd({ ...base, 'x-coexist-request-id': 'up' }, fromServer)['x-coexist-request-id'], 'req-1');
  });

  const parsed: readonly [string | string[] | undefined, string[]][] = [
    [undefined, []],
    ['', []],
    ['cas2013-ny', ['cas2013-ny']],
    ['cas2013-ny, mbx2013-ny ,, cas2007-ny', ['cas2013-ny', 'mbx2013-ny', 'cas2007-ny']],
    [
      ['a', 'b, c'],
      ['a', 'b', 'c'],
    ],
  ];
  for (const [value, expected] of parsed) {
    test(`parseHops(${JSON.stringify(value)})`, () => assert.deepEqual(parseHops(value), expected));
  }
});

describe('forwardRequestHeaders: odd input never throws', () => {
  test('undefined values, empty values, empty and repeated arrays', () => {
    const input = { ...base, 'x-a': undefined, 'x-b': '', 'x-c': [], 'set-cookie': ['a=1', 'b=2'] };
    const out = fwd(input);
    assert.equal('x-a' in out, false);
    assert.equal(out['x-b'], '');
    assert.equal('x-c' in out, false);
    assert.deepEqual(out['set-cookie'], ['a=1', 'b=2']);
    assert.notEqual(out['set-cookie'], input['set-cookie'], 'arrays are copied, not shared');
  });

  test('an own __proto__ key does not change the output prototype', () => {
    const input = JSON.parse('{"__proto__": {"polluted": "yes"}, "accept": "*/*"}') as HeaderRecord;
    const out = fwd(input);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal((out as Record<string, unknown>)['polluted'], undefined);
    assert.equal(out['accept'], '*/*');
  });

  test('a number where a string belongs (hand-made record) is sent as a string', () => {
    const input = { ...base, 'content-length': 42 } as unknown as HeaderRecord;
    assert.equal(fwd(input)['content-length'], '42');
    const conn = { ...base, connection: 7 } as unknown as HeaderRecord;
    assert.doesNotThrow(() => fwd(conn));
  });

  test('the input record is not modified', () => {
    const input = { ...base, connection: 'close, foo', foo: '1', 'x-forwarded-for': '1.2.3.4' };
    const copy = structuredClone(input);
    fwd(input);
    assert.deepEqual(input, copy);
  });

  test('a full ActiveSync request', () => {
    const out = fwd({
      host: 'mail.o365info.com',
      authorization: 'Basic ZGllZ286cHc=',
      'content-type': 'application/vnd.ms-sync.wbxml',
      'content-length': '13',
      'ms-asprotocolversion': '14.1',
      'x-ms-policykey': '3942919513',
      'user-agent': 'Apple-iPhone9C1/1602.92',
      connection: 'keep-alive',
      'x-commonaccesstoken': 'spoofed',
    });
    assert.deepEqual(out, {
      authorization: 'Basic ZGllZ286cHc=',
      'content-type': 'application/vnd.ms-sync.wbxml',
      'content-length': '13',
      'ms-asprotocolversion': '14.1',
      'x-ms-policykey': '3942919513',
      'user-agent': 'Apple-iPhone9C1/1602.92',
      host: 'mbx2013-ny.o365info.local:444',
      'x-forwarded-for': client,
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'mail.o365info.com',
      'x-forwarded-port': '443',
      'x-coexist-hops': 'cas2013-ny',
      'x-coexist-request-id': 'req-1',
    });
  });
});

describe('responseHeaders', () => {
  const rctx: ResponseContext = {
    requestId: 'req-1',
    serverName: 'cas2013-ny',
    backendTarget: 'mbx2013-ny.o365info.local',
    upstreamStatus: 401,
  };

  test('adds request-id, X-FEServer, X-CalculatedBETarget, X-BackEndHttpStatus (§4.10)', () => {
    const out = responseHeaders({ 'content-type': 'text/html', 'www-authenticate': 'Basic realm="x"' }, rctx);
    assert.deepEqual(out, {
      'content-type': 'text/html',
      'www-authenticate': 'Basic realm="x"',
      'x-coexist-path': 'cas2013-ny',
      'request-id': 'req-1',
      'x-feserver': 'cas2013-ny',
      'x-calculatedbetarget': 'mbx2013-ny.o365info.local',
      'x-backendhttpstatus': '401',
    });
  });

  test("keeps the back end's X-BEServer and X-DiagInfo", () => {
    const out = responseHeaders({ 'x-beserver': 'MBX2013-NY', 'x-diaginfo': 'MBX2013-NY' }, rctx);
    assert.equal(out['x-beserver'], 'MBX2013-NY');
    assert.equal(out['x-diaginfo'], 'MBX2013-NY');
  });

  test("replaces a downstream front end's diagnostics with this one's", () => {
    const out = responseHeaders(
      {
        'request-id': 'other',
        'x-feserver': 'mbx2013-ny',
        'x-backendhttpstatus': '200',
        'x-calculatedbetarget': 'x',
      },
      rctx,
    );
    assert.equal(out['request-id'], 'req-1');
    assert.equal(out['x-feserver'], 'cas2013-ny');
    assert.equal(out['x-backendhttpstatus'], '401');
    assert.equal(out['x-calculatedbetarget'], 'mbx2013-ny.o365info.local');
  });

  test('without a back-end target or status those two are omitted', () => {
    const out = responseHeaders({}, { requestId: 'r', serverName: 'cas2013-ny' });
    assert.deepEqual(out, { 'x-coexist-path': 'cas2013-ny', 'request-id': 'r', 'x-feserver': 'cas2013-ny' });
  });

  test('extends the path the answer came back along (X-Coexist-Path), this server first', () => {
    const out = responseHeaders({ 'x-coexist-path': 'MBX2013-NY, CAS2007-NY, MBX2007-NY' }, rctx);
    assert.equal(out['x-coexist-path'], 'cas2013-ny, MBX2013-NY, CAS2007-NY, MBX2007-NY');
  });

  test('an answer without a path of its own ends the path with the server that gave it (nextServer)', () => {
    const plain = responseHeaders({}, { requestId: 'r', serverName: 'CAS2007-NY', nextServer: 'MBX2007-NY' });
    assert.equal(plain['x-coexist-path'], 'CAS2007-NY, MBX2007-NY');
    const named = responseHeaders(
      { 'x-coexist-path': 'MBX2007-NY' },
      { requestId: 'r', serverName: 'CAS2007-NY', nextServer: 'MBX2007-LA' },
    );
    assert.equal(named['x-coexist-path'], 'CAS2007-NY, MBX2007-NY', 'the answer says who answered');
  });

  const dropped: readonly [string, HeaderRecord, string[]][] = [
    [
      'hop-by-hop',
      {
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        trailer: 'x-sum',
        upgrade: 'h2c',
        'proxy-authenticate': 'Basic',
        'proxy-connection': 'close',
        te: 'trailers',
      },
      [
        'connection',
        'keep-alive',
        'transfer-encoding',
        'trailer',
        'upgrade',
        'proxy-authenticate',
        'proxy-connection',
        'te',
      ],
    ],
    ['named in Connection', { connection: 'close, x-internal', 'x-internal': '1' }, ['x-internal']],
    [
      'Content-Length beside Transfer-Encoding',
      { 'transfer-encoding': 'chunked', 'content-length': '5' },
      ['content-length'],
    ],
    [
      "coexist's internal headers",
      { 'x-coexist-identity': 'token', 'x-coexist-hops': 'a' },
      ['x-coexist-identity', 'x-coexist-hops'],
    ],
    ['HTTP/2 pseudo-headers', { ':status': '200' }, [':status']],
  ];
  for (const [title, headers, names] of dropped) {
    test(`drops ${title}`, () => {
      const out = responseHeaders(headers, rctx);
      for (const n of names) assert.equal(out[n], undefined, n);
    });
  }

  test('keeps Set-Cookie as an array, Content-Length alone, and Exchange headers', () => {
    const out = responseHeaders(
      {
        'set-cookie': ['a=1; Secure', 'b=2; HttpOnly'],
        'content-length': '0',
        'ms-server-activesync': '14.3',
        'x-ms-location': 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync',
        'cache-control': 'private',
      },
      rctx,
    );
    assert.deepEqual(out['set-cookie'], ['a=1; Secure', 'b=2; HttpOnly']);
    assert.equal(out['content-length'], '0');
    assert.equal(out['ms-server-activesync'], '14.3');
    assert.equal(out['x-ms-location'], 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync');
    assert.equal(out['cache-control'], 'private');
  });

  test('odd input does not throw', () => {
    const odd = { 'x-a': undefined, 'x-b': [], 'x-c': '', 'X-Mixed': 'v', n: 5 } as unknown as HeaderRecord;
    const out = responseHeaders(odd, rctx);
    assert.equal('x-a' in out, false);
    assert.equal('x-b' in out, false);
    assert.equal(out['x-c'], '');
    assert.equal(out['x-mixed'], 'v');
    assert.equal(out['n'], '5');
  });
});

describe('over real sockets', () => {
  const listen = async (server: Server): Promise<number> => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  };

  test('a raw client request through a node:http proxy using both functions', async () => {
    let seen: IncomingMessage['headers'] = {};
    const backend = createServer((req, res) => {
      seen = req.headers;
      res.writeHead(401, {
        'x-beserver': 'MBX2013-NY',
        'www-authenticate': 'Basic realm="o365info"',
        connection: 'close',
      });
      res.end();
    });
    const backendPort = await listen(backend);
    const proxy = createServer((req, res) => {
      const headers = forwardRequestHeaders(req.headers, {
        ...ctx,
        peerAddress: req.socket.remoteAddress,
        peer: { kind: 'client' },
        upstreamHost: `127.0.0.1:${backendPort}`,
      });
      const up = request({
        host: '127.0.0.1',
        port: backendPort,
        method: req.method,
        path: req.url,
        headers,
      });
      up.on('response', (r) => {
        const status = r.statusCode ?? 502;
        res.writeHead(
          status,
          responseHeaders(r.headers, {
            requestId: 'req-1',
            serverName: 'cas2013-ny',
            upstreamStatus: status,
          }),
        );
        r.pipe(res);
      });
      req.pipe(up);
    });
    const proxyPort = await listen(proxy);
    try {
      const socket = connect(proxyPort, '127.0.0.1');
      // write, not end: a half-closed client may be dropped before the answer.
      socket.write(
        [
          'POST /Microsoft-Server-ActiveSync?Cmd=Sync HTTP/1.1',
          'Host: mail.o365info.com',
          'Authorization: Basic ZGllZ286cHc=',
          'Connection: close, X-Foo',
          'X-Foo: hop',
          'X-CommonAccessToken: spoofed',
          'X-Forwarded-For: 1.2.3.4',
          'X-Coexist-Hops: cas2007-ny',
          'Content-Length: 2',
          '',
          'ok',
        ].join('\r\n'),
      );
      let raw = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (raw += d));
      await once(socket, 'close');

      assert.equal(seen['authorization'], 'Basic ZGllZ286cHc=');
      assert.equal(seen['x-foo'], undefined);
      assert.equal(seen['x-commonaccesstoken'], undefined);
      assert.equal(seen['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen['x-coexist-hops'], 'cas2013-ny');
      assert.equal(seen['host'], `127.0.0.1:${backendPort}`);
      assert.equal(seen['content-length'], '2');

      const head = raw.split('\r\n\r\n')[0]?.toLowerCase() ?? '';
      assert.match(head, /^http\/1\.1 401 /);
      assert.match(head, /\r\nx-feserver: cas2013-ny\r\n/);
      assert.match(head, /\r\nx-beserver: mbx2013-ny\r\n/);
      assert.match(head, /\r\nx-backendhttpstatus: 401\r\n/);
      assert.match(head, /\r\nrequest-id: req-1\r\n/);
    } finally {
      proxy.close();
      backend.close();
    }
  });
});
