/**
 * The upstream failure mapping: every undici and system error code, the client-aborted flag, the answer per
 * protocol (ActiveSync 503 + Retry-After, docs/protocols.md §4.1), and when a request may be sent again.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { catalogue } from '../core/errors.ts';
import { protocols } from '../core/protocols/protocol.ts';
import type { UpstreamFailure, UpstreamOutcome } from './upstream-errors.ts';
import { classifyUpstreamError, failureResponse, retryable } from './upstream-errors.ts';

const coded = (code: string, message = code): Error => Object.assign(new Error(message), { code });

type Row = readonly [errorCode: string, outcome: UpstreamOutcome, reached: boolean, code: string];
const rows: readonly Row[] = [
  ['ECONNREFUSED', 'upstream_unreachable', false, 'CX_UPSTREAM_CONNECT_REFUSED'],
  ['UND_ERR_CONNECT_TIMEOUT', 'upstream_unreachable', false, 'CX_UPSTREAM_CONNECT_TIMEOUT'],
  ['EHOSTUNREACH', 'upstream_unreachable', false, 'CX_UPSTREAM_HOST_UNREACHABLE'],
  ['ENETUNREACH', 'upstream_unreachable', false, 'CX_UPSTREAM_HOST_UNREACHABLE'],
  ['EHOSTDOWN', 'upstream_unreachable', false, 'CX_UPSTREAM_HOST_UNREACHABLE'],
  ['ENETDOWN', 'upstream_unreachable', false, 'CX_UPSTREAM_HOST_UNREACHABLE'],
  ['ENOTFOUND', 'upstream_unreachable', false, 'CX_UPSTREAM_DNS'],
  ['EAI_AGAIN', 'upstream_unreachable', false, 'CX_UPSTREAM_DNS'],
  ['EAI_FAIL', 'upstream_unreachable', false, 'CX_UPSTREAM_DNS'],
  ['EAI_NODATA', 'upstream_unreachable', false, 'CX_UPSTREAM_DNS'],
  ['EAI_NONAME', 'upstream_unreachable', false, 'CX_UPSTREAM_DNS'],
  ['EMFILE', 'upstream_unreachable', false, 'CX_UPSTREAM_LOCAL_EXHAUSTED'],
  ['ENFILE', 'upstream_unreachable', false, 'CX_UPSTREAM_LOCAL_EXHAUSTED'],
  ['EADDRNOTAVAIL', 'upstream_unreachable', false, 'CX_UPSTREAM_LOCAL_EXHAUSTED'],
  ['ENOBUFS', 'upstream_unreachable', false, 'CX_UPSTREAM_LOCAL_EXHAUSTED'],
  ['EPROTO', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['ERR_SSL_WRONG_VERSION_NUMBER', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['CERT_HAS_EXPIRED', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['CERT_NOT_YET_VALID', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['HOSTNAME_MISMATCH', 'upstream_unreachable', false, 'CX_UPSTREAM_TLS'],
  ['UND_ERR_CLOSED', 'upstream_unreachable', false, 'CX_UPSTREAM_POOL_CLOSED'],
  ['UND_ERR_DESTROYED', 'upstream_error', true, 'CX_UPSTREAM_POOL_CLOSED'],
  ['UND_ERR_HEADERS_TIMEOUT', 'upstream_timeout', true, 'CX_UPSTREAM_HEADERS_TIMEOUT'],
  ['UND_ERR_BODY_TIMEOUT', 'upstream_timeout', true, 'CX_UPSTREAM_BODY_TIMEOUT'],
  ['ETIMEDOUT', 'upstream_timeout', true, 'CX_UPSTREAM_TIMEOUT'],
  ['ECONNRESET', 'upstream_error', true, 'CX_UPSTREAM_CONNECTION_RESET'],
  ['EPIPE', 'upstream_error', true, 'CX_UPSTREAM_CONNECTION_RESET'],
  ['ECONNABORTED', 'upstream_error', true, 'CX_UPSTREAM_CONNECTION_RESET'],
  ['UND_ERR_SOCKET', 'upstream_error', true, 'CX_UPSTREAM_CONNECTION_RESET'],
  ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'upstream_error', true, 'CX_UPSTREAM_PROTOCOL'],
  ['UND_ERR_HEADERS_OVERFLOW', 'upstream_error', true, 'CX_UPSTREAM_PROTOCOL'],
  ['UND_ERR_RES_EXCEEDED_MAX_SIZE', 'upstream_error', true, 'CX_UPSTREAM_PROTOCOL'],
  ['UND_ERR_INFO', 'upstream_error', true, 'CX_UPSTREAM_PROTOCOL'],
  ['HPE_INVALID_CONSTANT', 'upstream_error', true, 'CX_UPSTREAM_PROTOCOL'],
  ['HPE_UNEXPECTED_CONTENT_LENGTH', 'upstream_error', true, 'CX_UPSTREAM_PROTOCOL'],
  ['UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'upstream_error', true, 'CX_UPSTREAM_REQUEST_BODY'],
  ['UND_ERR_INVALID_ARG', 'upstream_error', false, 'CX_UPSTREAM_REQUEST_REJECTED'],
  ['UND_ERR_NOT_SUPPORTED', 'upstream_error', false, 'CX_UPSTREAM_REQUEST_REJECTED'],
  ['UND_ERR_INVALID_RETURN_VALUE', 'upstream_error', false, 'CX_UPSTREAM_REQUEST_REJECTED'],
  ['ERR_INVALID_HTTP_TOKEN', 'upstream_error', false, 'CX_UPSTREAM_REQUEST_REJECTED'],
  ['ERR_INVALID_CHAR', 'upstream_error', false, 'CX_UPSTREAM_REQUEST_REJECTED'],
  ['UND_ERR_ABORTED', 'client_aborted', true, 'CX_UPSTREAM_CLIENT_ABORTED'],
  ['UND_ERR_ABORT', 'client_aborted', true, 'CX_UPSTREAM_CLIENT_ABORTED'],
  ['ABORT_ERR', 'client_aborted', true, 'CX_UPSTREAM_CLIENT_ABORTED'],
  ['ERR_STREAM_PREMATURE_CLOSE', 'upstream_error', true, 'CX_UPSTREAM_ERROR'],
  ['SOMETHING_NEW', 'upstream_error', true, 'CX_UPSTREAM_ERROR'],
];

describe('classifyUpstreamError: by error code', () => {
  for (const [errorCode, outcome, reachedUpstream, code] of rows) {
    test(`${errorCode} -> ${outcome}, ${reachedUpstream ? 'reached' : 'not reached'}, ${code}`, () => {
      assert.deepEqual(classifyUpstreamError(coded(errorCode)), {
        outcome,
        reachedUpstream,
        code,
        errorCode,
      });
    });
  }

  test('every CX_UPSTREAM_* code of the catalogue is produced by some error', () => {
    const produced = new Set(rows.map((r) => r[3]));
    const catalogued = Object.keys(catalogue).filter((c) => c.startsWith('CX_UPSTREAM_'));
    assert.deepEqual([...produced].sort(), catalogued.sort());
  });

  test('only connect-phase and pre-dispatch failures count as not reached', () => {
    for (const [errorCode, outcome, reached, code] of rows)
      if (!reached)
        assert.ok(outcome === 'upstream_unreachable' || code === 'CX_UPSTREAM_REQUEST_REJECTED', errorCode);
  });
});

describe('classifyUpstreamError: wrapped errors', () => {
  test("fetch's TypeError('fetch failed') is looked through to its cause", () => {
    const err = new TypeError('fetch failed', { cause: coded('ECONNREFUSED') });
    assert.equal(classifyUpstreamError(err).code, 'CX_UPSTREAM_CONNECT_REFUSED');
  });

  test('a cause two levels down, behind an unknown code', () => {
    const err = Object.assign(
      new Error('outer', { cause: new Error('mid', { cause: coded('UND_ERR_SOCKET') }) }),
      {
        code: 'ERR_WRAPPED',
      },
    );
    assert.deepEqual(classifyUpstreamError(err), {
      outcome: 'upstream_error',
      reachedUpstream: true,
      code: 'CX_UPSTREAM_CONNECTION_RESET',
      errorCode: 'UND_ERR_SOCKET',
    });
  });

  test('an AggregateError of connect attempts with ETIMEDOUT is a connect timeout (happy eyeballs)', () => {
    const err = Object.assign(new AggregateError([coded('ETIMEDOUT'), coded('ETIMEDOUT')], ''), {
      code: 'ETIMEDOUT',
    });
    assert.deepEqual(classifyUpstreamError(err), {
      outcome: 'upstream_unreachable',
      reachedUpstream: false,
      code: 'CX_UPSTREAM_CONNECT_TIMEOUT',
      errorCode: 'ETIMEDOUT',
    });
  });

  test('an AggregateError without its own code takes the first attempt with one', () => {
    const err = new AggregateError([new Error('no code'), coded('ECONNREFUSED'), coded('EHOSTUNREACH')], '');
    assert.equal(classifyUpstreamError(err).code, 'CX_UPSTREAM_CONNECT_REFUSED');
  });

  test('DOMException AbortError: client aborted; TimeoutError (AbortSignal.timeout): timeout', () => {
    assert.equal(classifyUpstreamError(new DOMException('aborted', 'AbortError')).outcome, 'client_aborted');
    assert.deepEqual(classifyUpstreamError(new DOMException('late', 'TimeoutError')), {
      outcome: 'upstream_timeout',
      reachedUpstream: true,
      code: 'CX_UPSTREAM_TIMEOUT',
      errorCode: 'TimeoutError',
    });
  });

  test('the first code seen is kept for the log when nothing maps', () => {
    const err = Object.assign(new Error('x', { cause: coded('ALSO_UNKNOWN') }), { code: 'UNKNOWN_OUTER' });
    assert.equal(classifyUpstreamError(err).errorCode, 'UNKNOWN_OUTER');
  });
});

describe('classifyUpstreamError: the client-aborted flag', () => {
  for (const errorCode of [
    'ECONNRESET',
    'ECONNREFUSED',
    'UND_ERR_HEADERS_TIMEOUT',
    'ERR_STREAM_PREMATURE_CLOSE',
  ]) {
    test(`${errorCode} while the client was gone -> client_aborted`, () => {
      assert.deepEqual(classifyUpstreamError(coded(errorCode), { clientAborted: true }), {
        outcome: 'client_aborted',
        reachedUpstream: true,
        code: 'CX_UPSTREAM_CLIENT_ABORTED',
        errorCode,
      });
    });
  }

  test('with no error at all', () => {
    assert.deepEqual(classifyUpstreamError(undefined, { clientAborted: true }), {
      outcome: 'client_aborted',
      reachedUpstream: true,
      code: 'CX_UPSTREAM_CLIENT_ABORTED',
    });
  });

  test('clientAborted: false changes nothing', () => {
    assert.equal(
      classifyUpstreamError(coded('ECONNRESET'), { clientAborted: false }).outcome,
      'upstream_error',
    );
  });
});

describe('classifyUpstreamError: odd input never throws', () => {
  const cyclic = new Error('cycle');
  (cyclic as { cause?: unknown }).cause = cyclic;
  const odd: readonly [string, unknown][] = [
    ['undefined', undefined],
    ['null', null],
    ['a string', 'ECONNREFUSED'],
    ['a number', 42],
    ['an empty object', {}],
    ['an Error without code', new Error('boom')],
    ['a numeric code', Object.assign(new Error('x'), { code: 20 })],
    ['a cause cycle', cyclic],
    ['a getter for name', Object.defineProperty({}, 'name', { get: () => 'plain' })],
  ];
  for (const [title, err] of odd) {
    test(title, () => {
      const f = classifyUpstreamError(err);
      assert.equal(f.outcome, 'upstream_error');
      assert.equal(f.code, 'CX_UPSTREAM_ERROR');
      assert.equal(f.reachedUpstream, true);
    });
  }
});

const failure = (errorCode: string): UpstreamFailure => classifyUpstreamError(coded(errorCode));

describe('failureResponse', () => {
  const cases: readonly [errorCode: string, protocol: (typeof protocols)[number], status: number][] = [
    // docs/protocols.md §4.1: ActiveSync connect failures -> 503 + Retry-After
    ['ECONNREFUSED', 'activesync', 503],
    ['UND_ERR_CONNECT_TIMEOUT', 'activesync', 503],
    ['EHOSTUNREACH', 'activesync', 503],
    ['ENOTFOUND', 'activesync', 503],
    ['CERT_HAS_EXPIRED', 'activesync', 503],
    ['UND_ERR_CLOSED', 'activesync', 503],
    ['EMFILE', 'activesync', 503],
    // ... the proxy's 502 for other clients
    ['ECONNREFUSED', 'ews', 502],
    ['ECONNREFUSED', 'autodiscover', 502],
    ['UND_ERR_CONNECT_TIMEOUT', 'ews', 502],
    ['ENOTFOUND', 'owa', 502],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'rpc', 502],
    ['EMFILE', 'ews', 503],
    ['UND_ERR_CLOSED', 'mapi', 503],
    // timeouts: 504 everywhere
    ['UND_ERR_HEADERS_TIMEOUT', 'activesync', 504],
    ['UND_ERR_HEADERS_TIMEOUT', 'ews', 504],
    ['UND_ERR_BODY_TIMEOUT', 'owa', 504],
    ['ETIMEDOUT', 'rpc', 504],
    // reached, then failed: 502 everywhere
    ['ECONNRESET', 'activesync', 502],
    ['ECONNRESET', 'ews', 502],
    ['HPE_INVALID_CONSTANT', 'ecp', 502],
    ['SOMETHING_NEW', 'oab', 502],
    ['UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'ews', 400],
    ['UND_ERR_INVALID_ARG', 'activesync', 500],
  ];
  for (const [errorCode, protocol, status] of cases) {
    test(`${errorCode} for ${protocol} -> ${status}${status === 503 ? ' + Retry-After' : ''}`, () => {
      const r = failureResponse(failure(errorCode), protocol);
      assert.ok(r);
      assert.equal(r.status, status);
      assert.equal(r.headers['retry-after'], status === 503 ? '30' : undefined);
      assert.equal(r.headers['cache-control'], 'no-store');
    });
  }

  test('ActiveSync answers carry no body (Content-Length: 0), as Exchange does', () => {
    const r = failureResponse(failure('ECONNREFUSED'), 'activesync');
    assert.deepEqual(r, {
      status: 503,
      headers: { 'cache-control': 'no-store', 'retry-after': '30', 'content-length': '0' },
    });
  });

  test('other protocols get a one-line text naming the code, with its length', () => {
    const r = failureResponse(failure('ECONNREFUSED'), 'ews');
    assert.ok(r?.body);
    assert.equal(r.body, 'The next hop refused the connection. (CX_UPSTREAM_CONNECT_REFUSED)\n');
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
  });

  test('Retry-After can be set', () => {
    assert.equal(
      failureResponse(failure('ECONNREFUSED'), 'activesync', { retryAfterSeconds: 120 })?.headers[
        'retry-after'
      ],
      '120',
    );
  });

  for (const protocol of protocols) {
    test(`client gone: no response for ${protocol}`, () => {
      assert.equal(
        failureResponse(classifyUpstreamError(coded('ECONNRESET'), { clientAborted: true }), protocol),
        null,
      );
      assert.equal(failureResponse(failure('UND_ERR_ABORTED'), protocol), null);
    });
  }
});

describe('retryable', () => {
  const cases: readonly [errorCode: string, method: string, expected: boolean][] = [
    // never reached: any method, an EAS or EWS POST included
    ['ECONNREFUSED', 'POST', true],
    ['UND_ERR_CONNECT_TIMEOUT', 'POST', true],
    ['EHOSTUNREACH', 'RPC_IN_DATA', true],
    ['ENOTFOUND', 'GET', true],
    ['CERT_HAS_EXPIRED', 'POST', true],
    ['EMFILE', 'POST', true],
    ['UND_ERR_CLOSED', 'POST', true],
    // refused before dispatch, but sending it again would fail the same way
    ['UND_ERR_INVALID_ARG', 'GET', false],
    ['UND_ERR_NOT_SUPPORTED', 'POST', false],
    // reached: never a POST (ActiveSync and EWS are not idempotent)
    ['ECONNRESET', 'POST', false],
    ['UND_ERR_SOCKET', 'POST', false],
    ['UND_ERR_HEADERS_TIMEOUT', 'POST', false],
    ['UND_ERR_DESTROYED', 'POST', false],
    ['ECONNRESET', 'RPC_OUT_DATA', false],
    ['ECONNRESET', 'PUT', false],
    // reached, dropped connection, bodiless safe method: the stale keep-alive race
    ['ECONNRESET', 'GET', true],
    ['UND_ERR_SOCKET', 'head', true],
    ['EPIPE', 'OPTIONS', true],
    // but not after a timeout, a bad response or an abort
    ['UND_ERR_HEADERS_TIMEOUT', 'GET', false],
    ['ETIMEDOUT', 'GET', false],
    ['HPE_INVALID_CONSTANT', 'GET', false],
    ['UND_ERR_ABORTED', 'GET', false],
    ['SOMETHING_NEW', 'GET', false],
  ];
  for (const [errorCode, method, expected] of cases) {
    test(`${errorCode} ${method} -> ${expected ? 'retry' : 'no retry'}`, () => {
      assert.equal(retryable(failure(errorCode), method), expected);
    });
  }

  test('a client that went away is never retried for', () => {
    assert.equal(
      retryable(classifyUpstreamError(coded('ECONNREFUSED'), { clientAborted: true }), 'GET'),
      false,
    );
  });
});

describe('over real sockets (Node fetch, undici inside)', () => {
  const listen = async (server: Server): Promise<number> => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  };

  test('a closed port: refused, not reached, POST retryable, EAS 503', async () => {
    const probe = createServer();
    const port = await listen(probe);
    probe.close();
    await once(probe, 'close');
    const err = await fetch(`http://127.0.0.1:${port}/Microsoft-Server-ActiveSync`, {
      method: 'POST',
      body: 'x',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const f = classifyUpstreamError(err);
    assert.equal(f.code, 'CX_UPSTREAM_CONNECT_REFUSED');
    assert.equal(f.reachedUpstream, false);
    assert.equal(retryable(f, 'POST'), true);
    assert.equal(failureResponse(f, 'activesync')?.status, 503);
  });

  test('a server that drops the connection mid-request: reached, POST not retryable, GET retryable', async () => {
    const server = createServer((req) => req.socket.destroy());
    const port = await listen(server);
    try {
      const err = await fetch(`http://127.0.0.1:${port}/EWS/Exchange.asmx`, {
        method: 'POST',
        body: '<x/>',
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const f = classifyUpstreamError(err);
      assert.equal(f.code, 'CX_UPSTREAM_CONNECTION_RESET');
      assert.equal(f.reachedUpstream, true);
      assert.equal(retryable(f, 'POST'), false);
      assert.equal(retryable(f, 'GET'), true);
      assert.equal(failureResponse(f, 'ews')?.status, 502);
    } finally {
      server.close();
    }
  });

  test('an aborted request: client_aborted, no response', async () => {
    const server = createServer(() => undefined); // never answers
    const port = await listen(server);
    try {
      const controller = new AbortController();
      const pending = fetch(`http://127.0.0.1:${port}/Microsoft-Server-ActiveSync?Cmd=Ping`, {
        method: 'POST',
        body: 'x',
        signal: controller.signal,
      });
      setImmediate(() => controller.abort());
      const err = await pending.then(
        () => undefined,
        (e: unknown) => e,
      );
      const f = classifyUpstreamError(err);
      assert.equal(f.outcome, 'client_aborted');
      assert.equal(failureResponse(f, 'activesync'), null);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
