/**
 * The lab on Active Directory serves NTLM (src/lab/samba/lab-ad.ts, docs/lab.md §5.5): its DC runs winbindd
 * with its socket in its own directory, the servers offer Windows authentication as Exchange does, one pool
 * of `ntlm_auth` helpers on the DC (each in a mount namespace of its own) verifies a real `curl --ntlm`
 * handshake, and closing the lab ends the helpers; nothing is mounted on the machine, during or after. The
 * embedded-directory lab offers none of it. Samba must be installed (npm run setup) and the tests run as
 * root: without them these tests fail, they never skip.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../src/config/index.ts';
import type { WindowsAuthHandshake, WindowsAuthVerifier } from '../../src/dataplane/contracts.ts';
import type { Lab } from '../../src/lab/index.ts';
import { demoPassword, startLab } from '../../src/lab/index.ts';
import { mountRoots, winbindSocketDir } from '../../src/lab/samba/winbind-socket.ts';
import { createLogger } from '../../src/observability/log.ts';
import { curlUserConfig, runCurl } from '../support/curl.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

/** A keep-alive HTTP server that answers 200 with the account `verifier` verified, NTLM per connection. */
async function ntlmServer(verifier: WindowsAuthVerifier): Promise<{ url: string; server: Server }> {
  const handshakes = new Map<Socket, WindowsAuthHandshake>();
  const server = createServer({ keepAlive: true }, (req, res) => {
    const m = /^NTLM ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
    if (!m) {
      res.writeHead(401, { 'www-authenticate': 'NTLM' }).end();
      return;
    }
    let h = handshakes.get(req.socket);
    if (!h) {
      h = verifier.begin();
      handshakes.set(req.socket, h);
      req.socket.once('close', () => h?.close());
    }
    void h.step(Buffer.from(m[1] as string, 'base64')).then((step) => {
      if (step.kind === 'continue') {
        res.writeHead(401, { 'www-authenticate': `NTLM ${step.token.toString('base64')}` }).end();
        return;
      }
      handshakes.delete(req.socket);
      h.close();
      if (step.kind === 'done') res.writeHead(200).end(step.account);
      else res.writeHead(401, { 'www-authenticate': 'NTLM' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

/** `curl --ntlm`, the credentials on stdin; the status and body. */
async function curlNtlm(
  url: string,
  user: string,
  password: string,
): Promise<{ status: number; body: string }> {
  const r = await runCurl(['--ntlm', '-K', '-', url], { stdin: curlUserConfig(user, password) });
  return { status: r.status, body: r.out };
}

/** The mounts on /run/samba/winbindd of this machine's (this process's) namespace from the lab DC in `dir`. */
const machineMountsFrom = (dir: string): string[] =>
  mountRoots(winbindSocketDir).filter((root) => root.includes(basename(dir)));

describe('the lab on Active Directory serves NTLM', () => {
  let lab: Lab;

  before(async () => {
    const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile);
    lab = await startLab({ index, logger: createLogger({ level: 'silent' }), directory: 'ad' });
  });
  after(async () => {
    await lab?.close();
  });

  test('its DC runs winbindd with its socket in its own directory, and mounts nothing on the machine', () => {
    const samba = lab.samba;
    assert.ok(samba);
    assert.equal(samba.ntlm, true);
    assert.equal(samba.winbindSocketDir, join(samba.dir, 'run', 'winbindd'));
    assert.ok(existsSync(join(samba.winbindSocketDir, 'pipe')));
    assert.deepEqual(machineMountsFrom(samba.dir), []);
  });

  test('its servers offer Windows authentication as Exchange does, and the lab has a verifier for them', () => {
    assert.ok(lab.windowsAuth);
    assert.deepEqual(lab.index.server('CAS2007-NY')?.authentication?.rpc, ['basic', 'ntlm']);
    assert.deepEqual(lab.index.server('MBX2013-NY')?.authentication?.mapi, ['basic', 'ntlm', 'negotiate']);
    assert.equal(lab.index.server('CAS2007-NY')?.authentication?.activesync, undefined);
  });

  test("the lab's verifier verifies a real curl --ntlm handshake on its DC", async () => {
    const { url, server } = await ntlmServer(lab.windowsAuth as WindowsAuthVerifier);
    try {
      const ok = await curlNtlm(url, 'carol@o365info.local', demoPassword);
      assert.equal(ok.status, 200);
      assert.equal(ok.body.toLowerCase(), 'o365info\\carol');
      const wrong = await curlNtlm(url, 'O365INFO\\carol', 'not-her-password');
      assert.equal(wrong.status, 401);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('closing the lab ends the helpers, and nothing of it is left mounted', async () => {
    const verifier = lab.windowsAuth;
    const dir = lab.samba?.dir;
    assert.ok(verifier && verifier.stats.helpers > 0 && dir !== undefined);
    const pids = verifier.helperPids();
    // Each helper had the DC's socket directory on /run/samba/winbindd, in its namespace only.
    for (const pid of pids) {
      const roots = mountRoots(winbindSocketDir, readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
      assert.ok(
        roots.at(-1)?.endsWith(`${basename(dir)}/run/winbindd`),
        `helper ${pid}: ${roots.join(', ')}`,
      );
    }
    assert.deepEqual(machineMountsFrom(dir), []);
    await lab.close();
    assert.equal(verifier.stats.helpers, 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    assert.deepEqual(machineMountsFrom(dir), []);
    assert.equal(existsSync(dir), false);
  });
});

test('the lab on the estate file offers no Windows authentication and has no verifier', async () => {
  const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile);
  const lab = await startLab({ index, logger: createLogger({ level: 'silent' }) });
  try {
    assert.equal(lab.windowsAuth, undefined);
    for (const s of lab.index.estate.sites.flatMap((site) => site.servers))
      assert.equal(s.authentication, undefined);
  } finally {
    await lab.close();
  }
});
