/**
 * coexist's reader of Windows authentication tokens (src/core/protocols/windows-auth.ts) against the tokens a real
 * client sends: `curl --ntlm` talks to a server in this test that answers its NEGOTIATE with a CHALLENGE
 * (Unicode, and OEM), and the AUTHENTICATE curl sends back must give the user and domain curl was given; the
 * same tokens wrapped in SPNEGO as a Negotiate client wraps them, and tokens per MS-NLMP's tables.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { WindowsAuthToken } from '../../src/core/protocols/windows-auth.ts';
import {
  isWindowsAuthInvalid,
  negTokenResp as coexistNegTokenResp,
  parseWindowsAuthorization,
} from '../../src/core/protocols/windows-auth.ts';
import {
  authorization,
  kerberosApReq,
  negTokenInit,
  negTokenResp,
  ntlmAuthenticate,
  ntlmChallenge,
  ntlmNegotiate,
  ntlmType,
  oids,
} from '../support/ntlm.ts';
import { defined } from '../support/ntlm.ts';

const run = promisify(execFile);

/** What curl sent, per attempt. */
const seen: { unicode: boolean; authorizations: string[] }[] = [];

function read(value: string | undefined): WindowsAuthToken {
  const t = parseWindowsAuthorization(value);
  assert.ok(t !== undefined && !isWindowsAuthInvalid(t), `not read: ${JSON.stringify(t)}`);
  return t;
}

describe('Windows authentication tokens, as curl --ntlm sends them', () => {
  // An IIS-like server: NEGOTIATE gets a CHALLENGE (Unicode unless the path says /oem), AUTHENTICATE gets 200.
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const unicode = !req.url?.startsWith('/oem');
    const auth = req.headers.authorization;
    if (auth === undefined) {
      res.writeHead(401, { 'www-authenticate': 'NTLM', 'content-length': '0' }).end();
      return;
    }
    seen.at(-1)?.authorizations.push(auth);
    const type = ntlmType(Buffer.from(auth.replace(/^NTLM /, ''), 'base64'));
    if (type === 1) {
      const challenge = ntlmChallenge({ unicode }).toString('base64');
      res.writeHead(401, { 'www-authenticate': `NTLM ${challenge}`, 'content-length': '0' }).end();
      return;
    }
    res.writeHead(200, { 'content-length': '2' }).end('ok');
  });
  let port = 0;

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function curl(user: string, path: string): Promise<string[]> {
    seen.push({ unicode: !path.startsWith('/oem'), authorizations: [] });
    const { stdout } = await run('curl', [
      '--silent',
      '--show-error',
      '--ntlm',
      '--user',
      `${user}:Passw0rd!`,
      `http://127.0.0.1:${port}${path}`,
    ]);
    assert.equal(stdout, 'ok');
    return defined(seen.at(-1)).authorizations;
  }

  test('DOMAIN\\user, Unicode: NEGOTIATE then AUTHENTICATE naming the user and domain', async () => {
    const [first, second] = await curl('O365INFO\\bob', '/ews');
    const negotiate = read(first);
    assert.equal(negotiate.mechanism, 'ntlm');
    assert.equal(negotiate.mechanism === 'ntlm' && negotiate.message, 'negotiate');
    const auth = read(second);
    assert.ok(auth.mechanism === 'ntlm');
    assert.equal(auth.message, 'authenticate');
    assert.equal(auth.user, 'bob');
    assert.equal(auth.domain, 'O365INFO');
    assert.equal(auth.scheme, 'ntlm');
    assert.equal(auth.wrapping, 'raw');
  });

  test('a UPN, OEM: the user as curl was given it, no domain', async () => {
    const [, second] = await curl('bob@o365info.com', '/oem');
    const auth = read(second);
    assert.ok(auth.mechanism === 'ntlm');
    assert.equal(auth.user, 'bob@o365info.com');
    assert.equal(auth.domain, undefined);
  });

  test("curl's tokens inside SPNEGO, as a Negotiate client sends them, read the same", async () => {
    const [first, second] = await curl('O365INFO\\alice', '/ews');
    const type1 = Buffer.from(defined(first).slice(5), 'base64');
    const type3 = Buffer.from(defined(second).slice(5), 'base64');
    const init = read(authorization('Negotiate', negTokenInit(type1)));
    assert.deepEqual(
      { ...init, ntlm: undefined },
      { scheme: 'negotiate', mechanism: 'ntlm', wrapping: 'spnego', message: 'negotiate', ntlm: undefined },
    );
    const resp = read(authorization('Negotiate', negTokenResp(type3)));
    assert.ok(resp.mechanism === 'ntlm');
    assert.equal(resp.wrapping, 'spnego');
    assert.equal(resp.user, 'alice');
    assert.equal(resp.domain, 'O365INFO');
    // The inner NTLMSSP message is handed on exactly (a verifier needs it whole).
    assert.ok(Buffer.from(resp.ntlm).equals(type3));
    // Raw NTLMSSP under the Negotiate scheme (what Windows sends when it falls back).
    const raw = read(authorization('Negotiate', type3));
    assert.ok(raw.mechanism === 'ntlm' && raw.wrapping === 'raw' && raw.user === 'alice');
  });
});

describe('Windows authentication tokens per MS-NLMP and RFC 4178', () => {
  test('AUTHENTICATE, Unicode, with a workstation', () => {
    const t = read(
      authorization('NTLM', ntlmAuthenticate({ user: 'User', domain: 'Domain', workstation: 'COMPUTER' })),
    );
    assert.ok(t.mechanism === 'ntlm');
    assert.deepEqual([t.user, t.domain, t.workstation], ['User', 'Domain', 'COMPUTER']);
  });

  test('AUTHENTICATE, OEM, with non-ASCII Latin-1 letters', () => {
    const t = read(
      authorization('NTLM', ntlmAuthenticate({ user: 'josé', domain: 'MADRID', unicode: false })),
    );
    assert.ok(t.mechanism === 'ntlm' && t.user === 'josé' && t.domain === 'MADRID');
  });

  test('an anonymous AUTHENTICATE (empty user, no NT response)', () => {
    const t = read(authorization('NTLM', ntlmAuthenticate({ user: '', ntResponse: Buffer.alloc(0) })));
    assert.ok(t.mechanism === 'ntlm' && t.anonymous === true && t.user === undefined);
  });

  test('CHALLENGE, as a server sends it', () => {
    const t = read(authorization('NTLM', ntlmChallenge()));
    assert.ok(t.mechanism === 'ntlm' && t.message === 'challenge');
  });

  test('Kerberos: raw GSS-API AP-REQ, and inside a NegTokenInit, either OID', () => {
    for (const token of [
      kerberosApReq(),
      kerberosApReq(300, oids.msKerberos),
      negTokenInit(kerberosApReq(2000), oids.kerberos),
    ]) {
      const t = read(authorization('Negotiate', token));
      assert.equal(t.mechanism, 'kerberos');
    }
  });

  test('a NegTokenResp without a token (accept-completed)', () => {
    const t = read(authorization('Negotiate', negTokenResp()));
    assert.deepEqual(t, { scheme: 'negotiate', mechanism: 'none', wrapping: 'spnego' });
  });

  test("coexist's own NegTokenResp around a CHALLENGE reads back as that CHALLENGE", () => {
    const challenge = ntlmChallenge();
    const t = read(
      authorization('Negotiate', Buffer.from(coexistNegTokenResp('accept-incomplete', challenge))),
    );
    assert.ok(t.mechanism === 'ntlm' && t.message === 'challenge' && Buffer.from(t.ntlm).equals(challenge));
  });

  test('Basic, Bearer and no header are not Windows authentication', () => {
    for (const v of [undefined, 'Basic Ym9iOnB3', 'Bearer abc', 'NTLMX abc', 'Negotiated abc'])
      assert.equal(parseWindowsAuthorization(v), undefined, String(v));
  });

  test('the scheme is case-insensitive', () => {
    const t = read(`ntlm ${ntlmNegotiate().toString('base64')}`);
    assert.equal(t.scheme, 'ntlm');
  });
});
