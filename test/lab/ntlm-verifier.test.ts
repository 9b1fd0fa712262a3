/**
 * NTLM verified by the lab's domain controller (src/lab/samba/ntlm-verifier.ts, docs/lab.md §5.5): a real
 * Samba AD DC from the lab's template, serving NTLM (winbindd), each helper seeing the DC's winbind socket in
 * a mount namespace of its own, and a small HTTP server in this file that runs each connection's handshake
 * through the verifier and answers 200 with the verified account. Real clients: curl --ntlm, with a down-level
 * login and with a UPN, for two users; a wrong password and an unknown user are refused; five handshakes at
 * once each complete; a helper killed in the middle of a handshake fails that handshake only. Two DCs serve
 * NTLM at the same time, each verifying against its own domain. Samba must be installed (npm run setup) and
 * the tests run as root (a mount namespace per helper): without them these tests fail, they never skip.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Attribute, Client } from 'ldapts';
import type { WindowsAuthHandshake } from '../../src/dataplane/contracts.ts';
import { demoPassword } from '../../src/lab/lab.ts';
import { NtlmVerifier, ntlmMessageType } from '../../src/lab/samba/ntlm-verifier.ts';
import type { SambaAd } from '../../src/lab/samba/samba.ts';
import { mountRoots, winbindSocketDir } from '../../src/lab/samba/winbind-socket.ts';
import { curlUserConfig, runCurl } from '../support/curl.ts';
import { ntlmVerifierOn, startNtlmDc } from '../support/ntlm-dc.ts';

/** How a DC's socket directory shows as a mount's root in mountinfo (its end: the filesystem's root may differ). */
const dcSocketRoot = (dc: SambaAd): string => `${basename(dc.dir)}/run/winbindd`;

/** What a helper process has on /run/samba/winbindd, as DC socket roots (`dcSocketRoot`); the last is on top. */
function helperSocketDirs(pid: number): string[] {
  return mountRoots(winbindSocketDir, readFileSync(`/proc/${pid}/mountinfo`, 'utf8')).map((root) =>
    root.split('/').slice(-3).join('/'),
  );
}

/** The mounts on /run/samba/winbindd of this machine's (this process's) namespace that are `dc`'s. */
const machineMountsOf = (dc: SambaAd): string[] =>
  mountRoots(winbindSocketDir).filter((root) => root.includes(basename(dc.dir)));

/**
 * A NEGOTIATE message (MS-NLMP 2.2.1.1) with no domain or workstation: Unicode, OEM, request target, NTLM,
 * always sign, extended session security, 128- and 56-bit.
 */
function negotiate(): Buffer {
  const m = Buffer.alloc(32);
  m.write('NTLMSSP\0', 0, 'latin1');
  m.writeUInt32LE(1, 8);
  m.writeUInt32LE(0xa0088207, 12);
  return m;
}

/** curl's exit code, the status it printed last and the body. */
interface CurlResult {
  readonly code: number | null;
  readonly status: number;
  readonly body: string;
}

/** `curl --ntlm -u USER:PASSWORD URL` (the password through a config on stdin, never on the command line). */
async function curlNtlm(url: string, user: string, password: string): Promise<CurlResult> {
  const r = await runCurl(['--ntlm', '-K', '-', url], { stdin: curlUserConfig(user, password) });
  return { code: r.code, status: r.status, body: r.out };
}

/**
 * The test server: Windows authentication the way an Exchange virtual directory does it, one handshake per
 * connection, kept alive; 200 with the verified account as the body.
 */
class NtlmTestServer {
  readonly server: Server;
  readonly handshakes = new Map<Socket, WindowsAuthHandshake>();
  /** Per connection: how many handshakes it began and what it answered. */
  readonly connections: { begun: number; outcomes: string[] }[] = [];
  readonly #perSocket = new Map<Socket, { begun: number; outcomes: string[] }>();
  /** Called with each step's token type before it is verified (the helper-kill test hooks in here). */
  beforeStep: ((type: number | undefined) => Promise<void>) | undefined;

  constructor(readonly verifier: NtlmVerifier) {
    this.server = createServer({ keepAlive: true }, (req, res) => void this.#handle(req, res));
    this.server.on('connection', (socket: Socket) => {
      const record = { begun: 0, outcomes: [] as string[] };
      this.connections.push(record);
      this.#perSocket.set(socket, record);
      socket.once('close', () => {
        this.handshakes.get(socket)?.close();
        this.handshakes.delete(socket);
      });
    });
  }

  listen(): Promise<string> {
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => {
        resolve(`http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`);
      }),
    );
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket;
    const record = this.#perSocket.get(socket) as { begun: number; outcomes: string[] };
    const header = req.headers.authorization ?? '';
    const m = /^NTLM ([A-Za-z0-9+/=]+)$/.exec(header);
    const challenge = (token?: Buffer): void => {
      res.writeHead(401, { 'www-authenticate': token ? `NTLM ${token.toString('base64')}` : 'NTLM' });
      res.end();
    };
    if (!m) {
      challenge();
      return;
    }
    const token = Buffer.from(m[1] as string, 'base64');
    let handshake = this.handshakes.get(socket);
    if (!handshake) {
      handshake = this.verifier.begin();
      record.begun++;
      this.handshakes.set(socket, handshake);
    }
    await this.beforeStep?.(ntlmMessageType(token));
    const step = await handshake.step(token);
    if (step.kind === 'continue') {
      challenge(step.token);
      return;
    }
    this.handshakes.delete(socket);
    handshake.close();
    record.outcomes.push(step.kind === 'done' ? `done ${step.account}` : `failed ${step.reason}`);
    if (step.kind === 'done') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(step.account);
    } else challenge();
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('NTLM verified by the lab DC (ntlm_auth helpers)', () => {
  let dc: SambaAd;
  let verifier: NtlmVerifier;
  let http: NtlmTestServer;
  let url: string;

  before(async () => {
    dc = await startNtlmDc();
    verifier = ntlmVerifierOn(dc, 3);
    http = new NtlmTestServer(verifier);
    url = await http.listen();
  });

  after(async () => {
    await http?.close();
    await verifier?.close();
    await dc?.close();
  });

  test("each helper sees the DC's winbind socket directory in its own mount namespace, and the machine nothing", async () => {
    assert.equal(dc.ntlm, true);
    const h = verifier.begin();
    try {
      assert.equal((await h.step(negotiate())).kind, 'continue');
      const pids = verifier.helperPids();
      assert.ok(pids.length >= 1);
      for (const pid of pids) assert.equal(helperSocketDirs(pid).at(-1), dcSocketRoot(dc));
      assert.deepEqual(machineMountsOf(dc), []);
    } finally {
      h.close();
    }
  });

  for (const [user, mailbox] of [
    ['O365INFO\\alice', 'O365INFO\\alice'],
    ['alice@o365info.local', 'O365INFO\\alice'],
    ['O365INFO\\bob', 'O365INFO\\bob'],
    ['bob@o365info.local', 'O365INFO\\bob'],
  ] as const) {
    test(`curl --ntlm as ${user}: 200 with the account the DC verified, one handshake on one connection`, async () => {
      const before = http.connections.length;
      const r = await curlNtlm(url, user, demoPassword);
      assert.equal(r.code, 0);
      assert.equal(r.status, 200);
      assert.equal(r.body.toLowerCase(), mailbox.toLowerCase());
      const used = http.connections.slice(before);
      assert.equal(used.length, 1, 'curl kept its one connection through the handshake');
      assert.equal(used[0]?.begun, 1);
      assert.deepEqual(
        used[0]?.outcomes.map((o) => o.toLowerCase()),
        [`done ${mailbox.toLowerCase()}`],
      );
    });
  }

  test('a wrong password is refused by the domain', async () => {
    const before = http.connections.length;
    const r = await curlNtlm(url, 'O365INFO\\alice', `${demoPassword}-wrong`);
    assert.equal(r.status, 401);
    const outcomes = http.connections.slice(before).flatMap((c) => c.outcomes);
    assert.ok(outcomes.length >= 1);
    for (const o of outcomes) assert.match(o, /^failed the domain refused the logon: NT_STATUS_/);
  });

  test('an unknown user is refused by the domain', async () => {
    const before = http.connections.length;
    const r = await curlNtlm(url, 'O365INFO\\mallory', demoPassword);
    assert.equal(r.status, 401);
    const outcomes = http.connections.slice(before).flatMap((c) => c.outcomes);
    assert.ok(outcomes.length >= 1);
    for (const o of outcomes) assert.match(o, /^failed the domain refused the logon: NT_STATUS_/);
  });

  test('five handshakes at once each complete, on a pool of three helpers', async () => {
    const users = ['alice', 'bob', 'carol', 'diego', 'alice'];
    const results = await Promise.all(users.map((u) => curlNtlm(url, `O365INFO\\${u}`, demoPassword)));
    results.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.body.toLowerCase(), `o365info\\${users[i] ?? ''}`);
    });
    assert.ok(verifier.stats.helpers <= 3, `at most three helpers ran (${verifier.stats.helpers})`);
    assert.equal(verifier.stats.waiting, 0);
  });

  test('a helper killed in the middle of a handshake fails that handshake, and the next one succeeds', async () => {
    // One helper only in the pool for this: serialise behind it so the killed one is the handshake's.
    const solo = ntlmVerifierOn(dc, 1);
    const soloServer = new NtlmTestServer(solo);
    const soloUrl = await soloServer.listen();
    soloServer.beforeStep = async (type) => {
      if (type !== 3) return;
      soloServer.beforeStep = undefined;
      const [pid] = solo.helperPids();
      assert.ok(pid !== undefined, 'the handshake holds a helper');
      process.kill(pid, 'SIGKILL');
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (!solo.helperPids().includes(pid)) resolve();
          else setImmediate(check);
        };
        check();
      });
    };
    try {
      const failed = await curlNtlm(soloUrl, 'O365INFO\\alice', demoPassword);
      assert.equal(failed.status, 401);
      const outcomes = soloServer.connections.flatMap((c) => c.outcomes);
      assert.match(outcomes[0] ?? '', /^failed ntlm_auth exited/);
      const next = await curlNtlm(soloUrl, 'O365INFO\\alice', demoPassword);
      assert.equal(next.status, 200);
      assert.equal(next.body.toLowerCase(), 'o365info\\alice');
      assert.equal(solo.stats.helpers, 1, 'the dead helper was replaced');
    } finally {
      await soloServer.close();
      await solo.close();
    }
  });

  test('a handshake abandoned after its CHALLENGE gives its helper back, and the helper serves the next', async () => {
    const solo = ntlmVerifierOn(dc, 1);
    const soloServer = new NtlmTestServer(solo);
    const soloUrl = await soloServer.listen();
    try {
      const first = await curlNtlm(soloUrl, 'O365INFO\\bob', demoPassword);
      assert.equal(first.status, 200);
      const [pid] = solo.helperPids();
      // Begin a handshake by hand with a NEGOTIATE and close it after the CHALLENGE.
      const h = solo.begin();
      const step = await h.step(negotiate());
      assert.equal(step.kind, 'continue');
      assert.equal(step.kind === 'continue' ? ntlmMessageType(step.token) : undefined, 2);
      h.close();
      assert.deepEqual(solo.helperPids(), [pid], 'the same helper, given back');
      const next = await curlNtlm(soloUrl, 'O365INFO\\bob', demoPassword);
      assert.equal(next.status, 200);
      assert.equal(next.body.toLowerCase(), 'o365info\\bob');
      assert.deepEqual(solo.helperPids(), [pid]);
    } finally {
      await soloServer.close();
      await solo.close();
    }
  });

  test('close() ends every helper', async () => {
    const v = ntlmVerifierOn(dc, 2);
    const h = v.begin();
    assert.equal((await h.step(negotiate())).kind, 'continue');
    const pids = v.helperPids();
    assert.equal(pids.length, 1);
    await v.close();
    assert.equal(v.stats.helpers, 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    const after = await h.step(negotiate());
    assert.equal(after.kind, 'failed');
  });
});

/** Add an enabled user with `password` to `dc` only, as its administrator over LDAPS. */
async function addUser(dc: SambaAd, name: string, password: string): Promise<void> {
  const client = new Client({ url: dc.ldapsUrl, timeout: 30_000, tlsOptions: { ca: dc.caPem } });
  try {
    await client.bind(dc.administrator.upn, dc.administrator.password);
    await client.add(`CN=${name},CN=Users,${dc.ad.domain.dn}`, [
      new Attribute({ type: 'objectClass', values: ['top', 'person', 'organizationalPerson', 'user'] }),
      new Attribute({ type: 'sAMAccountName', values: [name] }),
      new Attribute({ type: 'userPrincipalName', values: [`${name}@${dc.ad.domain.dnsName}`] }),
      // AD's unicodePwd: the password in double quotes, UTF-16LE, with the account enabled in the same add.
      new Attribute({ type: 'unicodePwd', values: [Buffer.from(`"${password}"`, 'utf16le')] }),
      new Attribute({ type: 'userAccountControl', values: ['512'] }),
    ]);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/** A promise and its resolve, for the test's barriers. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('two lab DCs serve NTLM at the same time', () => {
  const dcs: SambaAd[] = [];
  const verifiers: NtlmVerifier[] = [];
  const servers: NtlmTestServer[] = [];
  const urls: string[] = [];
  // A user in one domain only: same template, so every other account is in both.
  const only = ['only-on-a', 'only-on-b'] as const;
  const passwords = [
    `A-${randomBytes(9).toString('base64url')}`,
    `B-${randomBytes(9).toString('base64url')}`,
  ];

  before(async () => {
    for (const i of [0, 1]) {
      const dc = await startNtlmDc();
      dcs.push(dc);
      await addUser(dc, only[i] as string, passwords[i] as string);
      const verifier = ntlmVerifierOn(dc);
      verifiers.push(verifier);
      const server = new NtlmTestServer(verifier);
      servers.push(server);
      urls.push(await server.listen());
    }
  });

  after(async () => {
    for (const s of servers) await s.close();
    for (const v of verifiers) await v.close();
    for (const dc of dcs) await dc.close();
  });

  test("handshakes on both at once, each verified by its own DC, each helper on its own DC's socket", async () => {
    // Both AUTHENTICATEs are held until both have arrived: both handshakes then hold a helper that issued
    // their CHALLENGE, on two DCs at once.
    const bothArrived = deferred();
    const gate = deferred();
    let arrived = 0;
    const hold = async (type: number | undefined): Promise<void> => {
      if (type !== 3) return;
      if (++arrived === 2) bothArrived.resolve();
      await gate.promise;
    };
    for (const s of servers) s.beforeStep = hold;
    const curls = Promise.all(
      [0, 1].map((i) => curlNtlm(urls[i] as string, `O365INFO\\${only[i] ?? ''}`, passwords[i] as string)),
    );
    try {
      await Promise.race([
        bothArrived.promise,
        curls.then(() => assert.fail('a handshake ended before both AUTHENTICATEs arrived')),
      ]);
      for (const i of [0, 1]) {
        const pids = (verifiers[i] as NtlmVerifier).helperPids();
        assert.equal(pids.length, 1, 'one helper holds the handshake');
        assert.equal(helperSocketDirs(pids[0] as number).at(-1), dcSocketRoot(dcs[i] as SambaAd));
        assert.deepEqual(
          machineMountsOf(dcs[i] as SambaAd),
          [],
          'nothing of this DC is mounted on the machine',
        );
      }
    } finally {
      gate.resolve();
      for (const s of servers) s.beforeStep = undefined;
    }
    const results = await curls;
    results.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.body.toLowerCase(), `o365info\\${only[i] ?? ''}`);
    });
  });

  test('a user of one DC only is refused by the other DC, both at once, and alice works on both', async () => {
    const before = servers.map((s) => s.connections.length);
    const [aOnB, bOnA, aliceA, aliceB] = await Promise.all([
      curlNtlm(urls[1] as string, `O365INFO\\${only[0]}`, passwords[0] as string),
      curlNtlm(urls[0] as string, `O365INFO\\${only[1]}`, passwords[1] as string),
      curlNtlm(urls[0] as string, 'O365INFO\\alice', demoPassword),
      curlNtlm(urls[1] as string, 'O365INFO\\alice', demoPassword),
    ]);
    assert.equal(aOnB?.status, 401);
    assert.equal(bOnA?.status, 401);
    assert.equal(aliceA?.status, 200);
    assert.equal(aliceB?.status, 200);
    assert.equal(aliceA?.body.toLowerCase(), 'o365info\\alice');
    assert.equal(aliceB?.body.toLowerCase(), 'o365info\\alice');
    const refusals = servers
      .flatMap((s, i) => s.connections.slice(before[i]))
      .flatMap((c) => c.outcomes)
      .filter((o) => o.startsWith('failed'));
    assert.ok(refusals.length >= 2);
    for (const o of refusals) assert.match(o, /^failed the domain refused the logon: NT_STATUS_/);
  });
});

/**
 * A helper that misbehaves, which the real one cannot be made to do on purpose: a shell script in its place
 * that answers every line with something that is not the protocol (a fault injected, named as such).
 */
describe('a helper that answers garbage', () => {
  let dir: string;
  let helper: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-ntlm-garbage-'));
    helper = join(dir, 'garbage-ntlm-auth');
    await writeFile(helper, '#!/bin/sh\nwhile read line; do echo "ZZ not the helper protocol"; done\n');
    await chmod(helper, 0o755);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('fails its handshake with a reason, never a throw, and is replaced by a new helper', async () => {
    const v = new NtlmVerifier({
      confFile: join(dir, 'smb.conf'),
      winbindSocketDir: dir,
      ntlmAuthPath: helper,
      maxHelpers: 1,
    });
    try {
      const first = v.begin();
      const step = await first.step(negotiate());
      assert.deepEqual(step, { kind: 'failed', reason: 'ntlm_auth answered something unexpected' });
      first.close();
      const next = v.begin();
      const again = await next.step(negotiate());
      assert.equal(again.kind, 'failed');
      assert.ok(v.stats.helpers <= 1, 'the garbage helper was not kept beside its replacement');
    } finally {
      await v.close();
    }
    assert.equal(v.stats.helpers, 0);
  });

  test("a DC socket directory that cannot be mounted fails the handshake, naming it and mount's complaint", async () => {
    const missing = join(dir, 'no-such-dc', 'run', 'winbindd');
    const v = new NtlmVerifier({
      confFile: join(dir, 'smb.conf'),
      winbindSocketDir: missing,
      ntlmAuthPath: helper,
    });
    try {
      const step = await v.begin().step(negotiate());
      assert.equal(step.kind, 'failed');
      const reason = step.kind === 'failed' ? step.reason : '';
      assert.match(reason, /^ntlm_auth could not run: bind-mounting .* at \/run\/samba\/winbindd .*failed/);
      assert.ok(reason.includes(missing), reason);
      assert.match(reason, /mount/);
    } finally {
      await v.close();
    }
  });

  test('a helper program that cannot run fails the handshake with a reason', async () => {
    const v = new NtlmVerifier({
      confFile: join(dir, 'smb.conf'),
      winbindSocketDir: dir,
      ntlmAuthPath: join(dir, 'missing'),
    });
    try {
      const step = await v.begin().step(negotiate());
      assert.equal(step.kind, 'failed');
      assert.match(step.kind === 'failed' ? step.reason : '', /ntlm_auth (could not run|exited)/);
    } finally {
      await v.close();
    }
  });
});
