/**
 * What the lab's NTLM verifier (src/lab/samba/ntlm-verifier.ts, docs/lab.md §5.5) must refuse, against a
 * real Samba AD DC: an AUTHENTICATE replayed from an earlier handshake (captured from a real curl), an
 * anonymous logon (empty user, no NT response: MS-NLMP 3.2.5.1.2), an AUTHENTICATE with no NEGOTIATE before
 * it, a CHALLENGE sent back as if it were the client's, and bytes that are no NTLM message or are oversized.
 * Each is a `failed` step, never a throw and never a verified account; a malformed token never reaches a
 * helper. Samba must be installed (npm run setup), as root: without them these tests fail, they never skip.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { WindowsAuthHandshake } from '../../src/dataplane/contracts.ts';
import { demoPassword } from '../../src/lab/lab.ts';
import type { NtlmVerifier } from '../../src/lab/samba/ntlm-verifier.ts';
import { ntlmMessageType } from '../../src/lab/samba/ntlm-verifier.ts';
import type { SambaAd } from '../../src/lab/samba/samba.ts';
import { ntlmVerifierOn, startNtlmDc } from '../support/ntlm-dc.ts';

const flags = 0xa0088207;

/** A NEGOTIATE (MS-NLMP 2.2.1.1) with no domain or workstation. */
function negotiate(): Buffer {
  const m = Buffer.alloc(32);
  m.write('NTLMSSP\0', 0, 'latin1');
  m.writeUInt32LE(1, 8);
  m.writeUInt32LE(flags, 12);
  return m;
}

/** An anonymous AUTHENTICATE (MS-NLMP 2.2.1.3): a one-byte zero LM response, everything else empty. */
function anonymousAuthenticate(): Buffer {
  const m = Buffer.alloc(73);
  m.write('NTLMSSP\0', 0, 'latin1');
  m.writeUInt32LE(3, 8);
  m.writeUInt16LE(1, 12);
  m.writeUInt16LE(1, 14);
  m.writeUInt32LE(72, 16);
  for (const field of [20, 28, 36, 44, 52]) m.writeUInt32LE(72, field + 4);
  m.writeUInt32LE((flags | 0x800) >>> 0, 60);
  return m;
}

describe('the lab NTLM verifier refuses what it must', () => {
  let dc: SambaAd;
  let verifier: NtlmVerifier;
  let server: Server;
  let url: string;
  /** The AUTHENTICATE messages real clients sent, in order. */
  const authenticates: Buffer[] = [];

  before(async () => {
    dc = await startNtlmDc();
    verifier = ntlmVerifierOn(dc, 1);
    const handshakes = new Map<Socket, WindowsAuthHandshake>();
    server = createServer({ keepAlive: true }, (req, res) => {
      const m = /^NTLM ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
      if (!m) {
        res.writeHead(401, { 'www-authenticate': 'NTLM' }).end();
        return;
      }
      const token = Buffer.from(m[1] as string, 'base64');
      if (ntlmMessageType(token) === 3) authenticates.push(token);
      let h = handshakes.get(req.socket);
      if (!h) {
        h = verifier.begin();
        handshakes.set(req.socket, h);
      }
      void h.step(token).then((step) => {
        if (step.kind === 'continue') {
          res.writeHead(401, { 'www-authenticate': `NTLM ${step.token.toString('base64')}` }).end();
          return;
        }
        handshakes.delete(req.socket);
        h.close();
        res.writeHead(step.kind === 'done' ? 200 : 401).end(step.kind === 'done' ? step.account : '');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await verifier?.close();
    await dc?.close();
  });

  test("an AUTHENTICATE replayed on a new handshake is refused: it answers another connection's challenge", async () => {
    const status = await new Promise<string>((resolve, reject) => {
      const child = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--ntlm', '-K', '-', url]);
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.on('error', reject);
      child.on('close', () => resolve(out));
      child.stdin.end(`user = "O365INFO\\\\bob:${demoPassword}"\n`);
    });
    assert.equal(status, '200', 'the original handshake succeeded');
    const captured = authenticates.at(-1);
    assert.ok(captured);
    const h = verifier.begin();
    assert.equal((await h.step(negotiate())).kind, 'continue');
    const replay = await h.step(captured);
    assert.equal(replay.kind, 'failed');
    assert.match(replay.kind === 'failed' ? replay.reason : '', /NT_STATUS_/);
  });

  test('an anonymous logon is refused', async () => {
    const h = verifier.begin();
    try {
      assert.equal((await h.step(negotiate())).kind, 'continue');
      const step = await h.step(anonymousAuthenticate());
      assert.equal(step.kind, 'failed');
    } finally {
      h.close();
    }
  });

  test('an AUTHENTICATE with no NEGOTIATE before it is refused without asking a helper', async () => {
    const helpers = verifier.stats.helpers;
    const step = await verifier.begin().step(anonymousAuthenticate());
    assert.deepEqual(step, { kind: 'failed', reason: 'the first message is not NEGOTIATE' });
    assert.equal(verifier.stats.helpers, helpers);
  });

  test("the server's own CHALLENGE sent back as the client's next message is refused", async () => {
    const h = verifier.begin();
    const challenge = await h.step(negotiate());
    assert.equal(challenge.kind, 'continue');
    const step = await h.step(challenge.kind === 'continue' ? challenge.token : Buffer.alloc(0));
    assert.deepEqual(step, { kind: 'failed', reason: 'the second message is not AUTHENTICATE' });
    // The handshake has ended: a proper AUTHENTICATE now is not verified either.
    assert.equal((await h.step(anonymousAuthenticate())).kind, 'failed');
  });

  test('bytes that are no NTLM message, an empty token and an oversized one are refused', async () => {
    const oversized = Buffer.concat([negotiate(), Buffer.alloc(64 * 1024, 0x41)]);
    for (const token of [
      Buffer.from('KK dGVzdA==\nYR', 'latin1'),
      Buffer.alloc(0),
      Buffer.from('NTLMSSP\0', 'latin1'),
      oversized,
    ]) {
      const step = await verifier.begin().step(token);
      assert.deepEqual(step, { kind: 'failed', reason: 'not an NTLM message' });
    }
    // And the verifier still verifies.
    const h = verifier.begin();
    assert.equal((await h.step(negotiate())).kind, 'continue');
    h.close();
  });
});
