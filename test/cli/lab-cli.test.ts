/**
 * `coexist lab` as a newcomer runs it: a separate process that prints how to try each flow, and the curl
 * lines it prints work, run as printed by bash and curl; for the article's estate and for another one. Its
 * ports: --port-base moves all of them (two labs side by side), and a port in use ends it at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';

const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
const fabrikam = fileURLToPath(new URL('../fixtures/estates/fabrikam-lab.yaml', import.meta.url));
const run = promisify(execFile);

/** `coexist lab` running as a process: what it printed so far (stdout and stderr) and its exit. */
interface LabProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything printed so far. */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  readonly exit: Promise<number | null>;
  /** Resolves once `text` has been printed; rejects if the process exits first. */
  printed(text: string): Promise<void>;
}

async function startLabProcess(args: readonly string[]): Promise<LabProcess> {
  const caDir = await mkdtemp(join(tmpdir(), 'coexist-lab-cli-'));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', entry, 'lab', '--ca-dir', caDir, '--log-level', 'warn', ...args],
    { stdio: 'pipe' },
  );
  let out = '';
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // Waits on the process's own events: printed, or exited without printing it (no deadline to race).
  const printed = (text: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const look = (): void => {
        if (!out.includes(text)) return;
        child.stdout.off('data', look);
        child.stderr.off('data', look);
        resolve();
      };
      child.stdout.on('data', look);
      child.stderr.on('data', look);
      look();
      void exit.then((code) => {
        if (!out.includes(text))
          reject(new Error(`the lab exited (${code}) before printing ${text}:\n${out}`));
      });
    });
  return { child, output: () => out, exit, printed };
}

/** Run the printed `LAB=` line and the curl line whose comment is `# flow`, as printed, with bash. */
async function runPrintedCurl(out: string, flow: string): Promise<string> {
  const lab = /^ {2}LAB=.*$/m.exec(out)?.[0].trim();
  const line = out.split('\n').find((l) => l.trimStart().startsWith('curl ') && l.includes(`# ${flow}`));
  assert.ok(lab && line, `a LAB= line and a curl line for ${flow}`);
  const { stdout } = await run('bash', ['-c', `${lab}\n${line.trim()}`], { timeout: 20_000 });
  return stdout;
}

/** Run the printed `CX=` line and the `npx coexist <command>` line, with this checkout's entry point. */
async function runPrintedCoexist(out: string, command: string): Promise<string> {
  const cx = /^ {2}CX=.*$/m.exec(out)?.[0].trim();
  const line = out.split('\n').find((l) => l.trimStart().startsWith(`npx coexist ${command} `));
  assert.ok(cx && line, `a CX= line and a coexist ${command} line`);
  // As printed, with this checkout's entry point for `npx coexist`.
  const script = `${cx}\n${line.trim().replace('npx coexist', `'${process.execPath}' --import tsx '${entry}'`)}`;
  const { stdout } = await run('bash', ['-c', script], { timeout: 30_000 });
  return stdout;
}

const listenOn = (port: number): Promise<Server> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });

const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => server.close(() => resolve()));

/**
 * `count` consecutive loopback ports nobody listens on now, below the OS's ephemeral range (32768 on
 * Linux) so that the other tests' ephemeral ports do not land in it meanwhile.
 */
async function freeRange(count: number, exclude: readonly number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * (32_000 - 10_000 - count));
    if (exclude.some((b) => Math.abs(b - base) < 100)) continue;
    const held: Server[] = [];
    try {
      for (let p = base; p < base + count; p++) held.push(await listenOn(p));
      return base;
    } catch {
      // taken: try another range
    } finally {
      await Promise.all(held.map(closeServer));
    }
  }
  throw new Error(`no ${count} free consecutive ports`);
}

/** The article's estate: 8 server listeners, then the admin listener. */
const o365infoPorts = 8 + 1;

describe('coexist lab', () => {
  let lab: LabProcess;
  let out = '';

  before(async () => {
    lab = await startLabProcess(['--port-base', '0', '--admin', '0']);
    await lab.printed('/metrics');
    out = lab.output();
  });
  after(() => {
    if (lab.child.exitCode === null) lab.child.kill('SIGKILL');
  });

  test('prints every server, what it runs as, the CA and the demo credentials', () => {
    for (const name of ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY', 'CAS2007-LA', 'MBX2007-MAD'])
      assert.match(out, new RegExp(`^  ${name} `, 'm'));
    assert.match(out, /CAS2013-NY +coexist /);
    assert.match(out, /CAS2007-LA +simulator: Exchange 2007 CAS /);
    assert.match(out, /CA certificate: .*ca\.pem/);
    assert.match(out, /password Coexist-Lab-2026!/);
  });

  const expected: readonly [string, string][] = [
    ['EAS-1', 'CAS2013-NY, MBX2013-NY, CAS2007-NY, MBX2007-NY'],
    ['EAS-2', 'CAS2013-NY, MBX2013-NY, CAS2007-LA, MBX2007-LA'],
    ['EAS-3A', 'CAS2013-NY, CAS2007-MAD, MBX2007-MAD'],
    ['EWS-2', 'CAS2013-NY, CAS2007-NY, MBX2007-NY'],
    ['alice', 'CAS2013-NY, MBX2013-NY'],
    ['EWS-1', 'CAS2013-NY'],
  ];
  for (const [flow, path] of expected) {
    test(`the printed curl line for ${flow} works and comes back through ${path}`, async () => {
      const stdout = await runPrintedCurl(out, flow);
      assert.match(stdout, /^HTTP\/1\.1 200 /);
      assert.match(stdout, new RegExp(`^x-coexist-path: ${path}\\r?$`, 'mi'));
    });
  }

  for (const [command, expect] of [
    ['check', /^PASS: 4 protocols/m],
    ['activesync', /^Inbox \[1\]: 2 items/m],
  ] as const) {
    test(`the printed coexist ${command} line works against the lab`, async () => {
      assert.match(await runPrintedCoexist(out, command), expect);
    });
  }

  test('the front end metrics are served; Ctrl-C (SIGINT) stops the lab', async () => {
    const url = /Metrics of CAS2013-NY: (http:\S+)/.exec(out)?.[1];
    assert.ok(url);
    const r = await request(url);
    assert.match(await r.body.text(), /coexist_requests_total\{[^}]*server="CAS2013-NY"/);
    lab.child.kill('SIGINT');
    assert.equal(await lab.exit, 0);
    assert.match(lab.output(), /coexist lab: stopping/);
  });
});

describe('coexist lab --estate: the banner speaks for that estate', () => {
  let lab: LabProcess;
  let out = '';

  before(async () => {
    lab = await startLabProcess(['--estate', fabrikam, '--port-base', '0', '--admin', '0']);
    await lab.printed('/metrics');
    out = lab.output();
  });
  after(() => {
    if (lab.child.exitCode === null) lab.child.kill('SIGKILL');
  });

  test("names that estate's servers, namespaces and users, nothing of the article's", () => {
    assert.match(out, /^coexist lab: estate fabrikam-lab on loopback$/m);
    for (const name of ['FE13-HQ', 'BE13-HQ', 'CAS07-HQ', 'MB07-HQ', 'CAS10-WH', 'MB10-WH'])
      assert.match(out, new RegExp(`^  ${name} `, 'm'));
    assert.match(out, /^Namespaces: webmail\.fabrikam\.example \(primary, FE13-HQ\), /m);
    for (const user of ['nora', 'pia', 'quentin'])
      assert.match(out, new RegExp(`^Users, password Coexist-Lab-2026!: .*${user}@fabrikam\\.example`, 'm'));
    assert.doesNotMatch(out, /o365info|alice|bob|carol|diego/);
    const curls = out.split('\n').filter((l) => l.trimStart().startsWith('curl '));
    assert.ok(curls.length >= 3, curls.join('\n'));
    for (const l of curls) assert.match(l, /https:\/\/(webmail|autodiscover)\.fabrikam\.example\//);
  });

  test('the demo password only for the users who have it: omar has his own', () => {
    assert.match(out, /^Users with a password of their own from the estate: omar@fabrikam\.example /m);
    const lines = out.split('\n').filter((l) => /^ {2}(curl|npx coexist) /.test(l));
    assert.ok(!lines.some((l) => l.includes('omar@')), 'no printed line uses omar');
  });

  test('one curl line per kind of ActiveSync flow: the 2013, 2007 (EAS-1) and 2010 mailboxes', () => {
    const eas = out.split('\n').filter((l) => l.trimStart().startsWith('curl ') && l.includes('-X OPTIONS'));
    assert.equal(eas.length, 3, eas.join('\n'));
    assert.match(
      eas[0] ?? '',
      /'nora@fabrikam\.example:Coexist-Lab-2026!'.*# nora: ActiveSync, 2013, BE13-HQ$/,
    );
    assert.match(eas[1] ?? '', /'pia@fabrikam\.example:Coexist-Lab-2026!'.*# EAS-1$/);
    assert.match(
      eas[2] ?? '',
      /'quentin@fabrikam\.example:Coexist-Lab-2026!'.*# quentin: ActiveSync, 2010, MB10-WH$/,
    );
  });

  test('the printed EAS-1 curl line works and comes back through the 2013 mailbox server', async () => {
    const stdout = await runPrintedCurl(out, 'EAS-1');
    assert.match(stdout, /^HTTP\/1\.1 200 /);
    assert.match(stdout, /^x-coexist-path: FE13-HQ, BE13-HQ, CAS07-HQ, MB07-HQ\r?$/im);
  });

  test('the printed coexist check line works against the lab', async () => {
    assert.match(
      out,
      /^ {2}npx coexist check --estate '.*fabrikam-lab\.yaml' --user pia@fabrikam\.example /m,
    );
    assert.match(await runPrintedCoexist(out, 'check'), /^PASS: 4 protocols/m);
  });

  test('the printed coexist activesync line works against the lab', async () => {
    assert.match(
      out,
      /^ {2}npx coexist activesync --user quentin@fabrikam\.example .*webmail\.fabrikam\.example/m,
    );
    assert.match(await runPrintedCoexist(out, 'activesync'), /^Inbox \[1\]: 2 items/m);
  });
});

describe('coexist lab --port-base', () => {
  test('moves every port, the admin listener included: two labs run side by side', async () => {
    const a = await freeRange(o365infoPorts);
    const b = await freeRange(o365infoPorts, [a]);
    const labs = await Promise.all([a, b].map((base) => startLabProcess(['--port-base', String(base)])));
    try {
      await Promise.all(labs.map((l) => l.printed('/metrics')));
      for (const [i, base] of [a, b].entries()) {
        const out = labs[i]?.output() ?? '';
        const ports = [...out.matchAll(/^ {2}\S+ +.+ (?:front|mailbox) 127\.0\.0\.1:(\d+)$/gm)].map((m) =>
          Number(m[1]),
        );
        assert.deepEqual(
          ports.sort((x, y) => x - y),
          Array.from({ length: o365infoPorts - 1 }, (_, k) => base + k),
          out,
        );
        const url = /Metrics of CAS2013-NY: (http:\S+)/.exec(out)?.[1];
        assert.equal(url, `http://127.0.0.1:${base + o365infoPorts - 1}/metrics`);
        const r = await request(url);
        assert.equal(r.statusCode, 200);
        await r.body.dump();
      }
    } finally {
      for (const l of labs) l.child.kill('SIGINT');
      assert.deepEqual(await Promise.all(labs.map((l) => l.exit)), [0, 0]);
    }
  });

  // Each waits for the process's exit event: a lab that stayed up half-started (its servers still
  // listening) would never exit by itself and fail the test at its timeout.
  for (const [what, offset, purpose] of [
    ['the admin port', o365infoPorts - 1, 'admin'],
    ["a server's port", 2, 'CAS2007-NY front'],
  ] as const) {
    test(`${what} in use: exit 1 at once, naming the port and --port-base`, { timeout: 60_000 }, async () => {
      const base = await freeRange(o365infoPorts);
      const taken = await listenOn(base + offset);
      try {
        const lab = await startLabProcess(['--port-base', String(base)]);
        assert.equal(await lab.exit, 1, lab.output());
        assert.match(
          lab.output(),
          new RegExp(
            `^coexist lab: port ${base + offset} \\(${purpose}\\) is in use; choose other ports with --port-base$`,
            'm',
          ),
        );
        assert.doesNotMatch(lab.output(), /Try it/, 'no banner for a lab that did not start');
      } finally {
        await closeServer(taken);
      }
    });
  }
});
