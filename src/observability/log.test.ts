import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import type { ForwardOutcome } from '../dataplane/forward.ts';
import { upstreamOutcomes } from '../dataplane/upstream-errors.ts';
import type { AccessOutcome, AccessRecord } from './log.ts';
import {
  accessLine,
  accessOutcomes,
  capField,
  createLogger,
  logAccess,
  maxLoggedField,
  redactPaths,
  redactedText,
} from './log.ts';

/** An in-memory destination: every line pino wrote, as text and parsed. */
function memory(): { readonly stream: Writable; text(): string; lines(): Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const text = (): string => chunks.join('');
  return {
    stream,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const record: AccessRecord = {
  reqId: '6f1c2a',
  listener: 'front',
  server: 'cas2013-ny',
  method: 'POST',
  host: 'mail.o365info.com',
  path: '/Microsoft-Server-ActiveSync',
  protocol: 'activesync',
  user: 'diego@o365info.com',
  auth: 'ok',
  decision: 'proxy',
  hops: ['cas2013-ny', 'mbx2013-ny'],
  status: 200,
  outcome: 'proxied',
  upstreamStatus: 200,
  bytesIn: 312,
  bytesOut: 4096,
  timings: { totalMs: 12.5, authMs: 1.25, lookupMs: 0.5, upstreamMs: 10 },
  clientAddress: '203.0.113.7',
};

describe('access line', () => {
  test('one JSON line at info with msg "access" and every field of the record', () => {
    const out = memory();
    logAccess(createLogger({ destination: out.stream, name: 'coexist' }), record);
    const lines = out.lines();
    assert.equal(lines.length, 1);
    const line = lines[0] ?? {};
    assert.equal(line['msg'], 'access');
    assert.equal(line['level'], 30);
    assert.equal(line['name'], 'coexist');
    for (const [key, value] of Object.entries(record)) assert.deepEqual(line[key], value, key);
  });

  test('the query string never reaches the line, even when a caller leaves it on the path', () => {
    const out = memory();
    const policyKey = '3942919513';
    const query = `Cmd=Sync&User=diego&DeviceId=ABC123&DeviceType=iPhone&PolicyKey=${policyKey}`;
    logAccess(createLogger({ destination: out.stream }), { ...record, path: `${record.path}?${query}` });
    assert.equal(out.lines()[0]?.['path'], '/Microsoft-Server-ActiveSync');
    assert.doesNotMatch(out.text(), new RegExp(policyKey));
    assert.doesNotMatch(out.text(), /DeviceId/);
  });

  test('accessLine returns the record itself when there is nothing to cut (no copy per request)', () => {
    assert.equal(accessLine(record), record);
    assert.deepEqual(accessLine({ ...record, path: '/owa/?ae=Item' }), { ...record, path: '/owa/' });
  });

  test('every string field is capped at maxLoggedField with a marker; the long query goes first', () => {
    const user = 'u'.repeat(8_000);
    const line = accessLine({ ...record, user, host: 'h'.repeat(300), path: `/owa/${'p'.repeat(400)}?q=1` });
    assert.equal(line.user, `${'u'.repeat(maxLoggedField)}…[+${8_000 - maxLoggedField} chars]`);
    assert.equal(line.host, `${'h'.repeat(maxLoggedField)}…[+44 chars]`);
    assert.equal(line.path, capField(`/owa/${'p'.repeat(400)}`));
    assert.equal(capField('short'), 'short');
    const out = memory();
    logAccess(createLogger({ destination: out.stream }), { ...record, user });
    assert.ok(out.text().length < 1_500, 'the 8 000-character user name is not written in full');
  });

  test('absent optional fields are absent from the line', () => {
    const out = memory();
    const refused: AccessRecord = {
      reqId: 'r2',
      listener: 'front',
      server: 'cas2013-ny',
      method: 'GET',
      host: 'mail.o365info.com',
      path: '/nothing-here',
      outcome: 'refused',
      code: 'CX_HTTP_NOT_FOUND',
      status: 404,
      timings: { totalMs: 0.2 },
    };
    logAccess(createLogger({ destination: out.stream }), refused);
    const line = out.lines()[0] ?? {};
    assert.equal(line['code'], 'CX_HTTP_NOT_FOUND');
    for (const key of [
      'protocol',
      'user',
      'decision',
      'hops',
      'upstreamStatus',
      'bytesIn',
      'clientAddress',
    ]) {
      assert.equal(key in line, false, key);
    }
  });

  test('below the logger level nothing is written', () => {
    const out = memory();
    logAccess(createLogger({ destination: out.stream, level: 'warn' }), record);
    assert.equal(out.text(), '');
  });

  test('the outcome set holds every outcome the forwarder reports', () => {
    for (const o of upstreamOutcomes) assert.ok((accessOutcomes as readonly string[]).includes(o), o);
    // Compile-time: a forward result's outcome is an access outcome.
    const fromForward: AccessOutcome = 'proxied' satisfies ForwardOutcome;
    assert.equal(fromForward, 'proxied');
  });
});

describe('redaction', () => {
  const password = 'Pa55-w0rd-NEVER-LOGGED';
  const basic = `Basic ${Buffer.from(`o365info\\diego:${password}`).toString('base64')}`;
  const cookie = 'cadata=SESSION-COOKIE-VALUE; UserContext=USER-CONTEXT-VALUE';
  const setCookie = 'cadata=SET-COOKIE-VALUE; path=/; secure; HttpOnly';
  const identity = 'IDENTITY-TOKEN-VALUE';
  const policyKey = 'POLICYKEY-3942919513';
  const secrets = [
    password,
    basic.slice('Basic '.length),
    'SESSION-COOKIE-VALUE',
    'USER-CONTEXT-VALUE',
    'SET-COOKIE-VALUE',
    identity,
    policyKey,
    'BEARER-TOKEN-VALUE',
    'COMMON-ACCESS-TOKEN',
    'BIND-SECRET',
    'BODY-CONTENT',
  ];

  function assertClean(text: string): void {
    for (const s of secrets) assert.equal(text.includes(s), false, `"${s}" leaked: ${text}`);
  }

  test('secrets at the top level, in headers, nested, in arrays and in any letter case are censored', () => {
    const out = memory();
    const logger = createLogger({ destination: out.stream });
    const headers = {
      host: 'mail.o365info.com',
      authorization: basic,
      cookie,
      'x-coexist-identity': identity,
      'x-ms-policykey': policyKey,
      'x-commonaccesstoken': 'COMMON-ACCESS-TOKEN',
      'proxy-authorization': 'Bearer BEARER-TOKEN-VALUE',
    };
    logger.info({ password, authorization: basic, cookie, user: 'diego' }, 'top level');
    logger.info({ headers }, 'headers');
    logger.info({ req: { method: 'GET', headers } }, 'req headers');
    logger.info({ res: { statusCode: 200, headers: { 'set-cookie': [setCookie] } } }, 'res headers');
    logger.info({ credentials: { user: 'diego', password } }, 'credentials');
    logger.info({ user: { name: 'diego', password } }, 'nested password');
    logger.info({ directory: { ldap: { url: 'ldaps://dc1', bindPassword: 'BIND-SECRET' } } }, 'config');
    logger.info({ upstream: { request: { headers: { Authorization: basic, Cookie: cookie } } } }, 'case');
    logger.info({ attempts: [{ credential: { password } }, { headers: { cookie } }] }, 'array');
    logger.info({ head: { path: '/Microsoft-Server-ActiveSync', query: `PolicyKey=${policyKey}` } }, 'head');
    logger.info({ rawHeaders: ['Authorization', basic, 'Cookie', cookie] }, 'raw');
    logger.info({ body: 'BODY-CONTENT', upstream: { body: 'BODY-CONTENT' } }, 'body');
    logger.info('interpolated %j', { password, headers });
    const text = out.text();
    assertClean(text);
    // The lines were written, with what is not secret kept.
    assert.equal(out.lines().length, 13);
    assert.match(text, /"user":"diego"/);
    assert.match(text, /"host":"mail\.o365info\.com"/);
    assert.match(text, /"path":"\/Microsoft-Server-ActiveSync"/);
    assert.ok(text.includes(`"password":"${redactedText}"`));
  });

  test('errors keep their message and stack, and lose the headers and passwords they carry', () => {
    const out = memory();
    const logger = createLogger({ destination: out.stream });
    const cause = Object.assign(new Error('bind failed'), { password });
    const err = Object.assign(new Error('upstream said 401', { cause }), {
      code: 'UND_ERR_RESPONSE',
      headers: { 'set-cookie': setCookie, 'content-type': 'text/html' },
    });
    logger.error({ err }, 'failed');
    logger.error(err, 'failed directly');
    logger.warn(
      { error: new AggregateError([Object.assign(new Error('x'), { password })], 'all failed') },
      'agg',
    );
    assertClean(out.text());
    const line = out.lines()[0] ?? {};
    const e = line['err'] as Record<string, unknown>;
    assert.equal(e['type'], 'Error');
    assert.equal(e['message'], 'upstream said 401');
    assert.equal(e['code'], 'UND_ERR_RESPONSE');
    assert.match(String(e['stack']), /upstream said 401/);
    assert.equal((e['cause'] as Record<string, unknown>)['message'], 'bind failed');
    assert.equal((e['headers'] as Record<string, unknown>)['content-type'], 'text/html');
  });

  test('child bindings are censored too', () => {
    const out = memory();
    const child = createLogger({ destination: out.stream }).child({
      reqId: 'r1',
      password,
      req: { headers: { authorization: basic } },
    });
    child.info('from a child');
    assertClean(out.text());
    assert.equal(out.lines()[0]?.['reqId'], 'r1');
  });

  test('a real request and response are logged without credentials, cookies or the query', async () => {
    const out = memory();
    const logger = createLogger({ destination: out.stream });
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('set-cookie', setCookie);
      logger.info({ req, res }, 'request');
      res.end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const req = request({
        host: '127.0.0.1',
        port,
        path: `/Microsoft-Server-ActiveSync?Cmd=Ping&PolicyKey=${policyKey}`,
        headers: { authorization: basic, cookie },
        agent: false,
      });
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      res.resume();
      await once(res, 'end');
    } finally {
      server.close();
    }
    assertClean(out.text());
    const line = out.lines()[0] ?? {};
    const req = line['req'] as Record<string, unknown>;
    assert.equal(req['method'], 'GET');
    assert.equal(req['path'], '/Microsoft-Server-ActiveSync');
    assert.equal((req['headers'] as Record<string, unknown>)['authorization'], redactedText);
    assert.equal((line['res'] as Record<string, unknown>)['statusCode'], 200);
  });

  test('the logged objects are not modified', () => {
    const logger = createLogger({ destination: memory().stream });
    const headers = { authorization: basic };
    const logged = { req: { headers }, password };
    logger.info(logged, 'x');
    assert.equal(logged.password, password);
    assert.equal(headers.authorization, basic);
  });

  test('a cyclic object is written without hanging', () => {
    const out = memory();
    const a: Record<string, unknown> = { name: 'a' };
    const b: Record<string, unknown> = { name: 'b', a, password };
    a['b'] = b;
    a['self'] = a;
    createLogger({ destination: out.stream }).info({ a }, 'cycle');
    assertClean(out.text());
    assert.equal(out.lines().length, 1);
  });

  test('redact paths are literal: no leading wildcard on the hot path', () => {
    assert.ok(redactPaths.includes('password'));
    assert.ok(redactPaths.includes('headers["authorization"]'));
    for (const p of redactPaths) assert.equal(p.includes('*'), false, p);
  });
});
