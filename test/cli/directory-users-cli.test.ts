/**
 * `coexist trace` and `coexist check` with an estate whose users live in its directory (`users: []` plus
 * `directory.ldap`), against a real slapd loaded with the demo estate's users by the lab's own tooling
 * (estate-ldif.ts, src/lab/slapd.ts): users are looked up with the estate's service account, and every flow
 * of every user, protocol and client location is exactly what the estate file with its users prints.
 * Then the sample `--all` takes, `--users FILE`, a user the directory does not have (or has on a server
 * the estate does not), a wrong service password, and a directory that is down. slapd must be installed (npm run setup): without it these tests
 * fail, they never skip.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { CheckReport } from '../../src/check/index.ts';
import { loadEstate } from '../../src/config/index.ts';
import type { Site, User } from '../../src/core/estate/estate.ts';
import { protocols } from '../../src/core/protocols/protocol.ts';
import { estateLdapLayout, estateLdif } from '../../src/directory/estate-ldif.ts';
import type { Lab } from '../../src/lab/index.ts';
import { demoPassword, startLab } from '../../src/lab/index.ts';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import { randomLabPassword, startSlapd, type Slapd } from '../../src/lab/slapd.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { CliResult } from '../support/run-cli.ts';
import { runCli, runCliProcess } from '../support/run-cli.ts';

const demoFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

describe('trace and check over the estate directory (a real slapd)', () => {
  let slapd: Slapd;
  let dir: string;
  /** The demo estate with `users: []` and `directory.ldap` on slapd, with the right service password. */
  let ldapFile: string;
  let demoText: string;
  let zoeDn: string;
  const servicePassword = randomLabPassword();

  /** The demo estate file with its users moved to the directory: `users: []` and this `directory.ldap`. */
  async function ldapEstate(name: string, ldap: Record<string, unknown>): Promise<string> {
    const layout = estateLdapLayout((await loadEstate(demoFile)).index.estate);
    const settings = {
      url: slapd.url,
      tls: { caFile: join(dir, 'ca.pem') },
      baseDn: layout.usersDn,
      bindDn: layout.serviceAccountDn,
      bindPasswordFile: join(dir, 'service-password'),
      netbiosDomain: 'O365INFO',
      ...ldap,
    };
    const section = `directory:\n  ldap: ${JSON.stringify(settings)}\n`;
    const text = demoText
      .replace(/^namespaces:$/m, `${section}namespaces:`)
      .replace(/^users:\n[\s\S]*$/m, 'users: []\n');
    assert.ok(text.includes('users: []') && text.includes('directory:'));
    const file = join(dir, name);
    await writeFile(file, text);
    return file;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-directory-users-'));
    demoText = await readFile(demoFile, 'utf8');
    const { estate } = (await loadEstate(demoFile)).index;
    const layout = estateLdapLayout(estate);
    const ca = createLabCa();
    const leaf = ca.issue(['127.0.0.1']);
    await writeFile(join(dir, 'ca.pem'), ca.certPem);
    await writeFile(join(dir, 'service-password'), `${servicePassword}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'wrong-password'), 'not-the-service-password\n', { mode: 0o600 });
    // The directory also has zoe, whose mailbox is on a server the estate file does not list (a site
    // left out of it): a mailbox user of the directory, but no mailbox of the estate.
    const paris: Site = {
      name: 'Paris',
      internetFacing: false,
      servers: [
        {
          name: 'MBX2010-PAR',
          fqdn: 'mbx2010-par.o365info.local',
          version: 2010,
          roles: ['mailbox'],
          site: 'Paris',
          urls: {},
          databases: ['DB2010-PAR'],
        },
      ],
    };
    const zoe: User = {
      address: 'zoe@o365info.com',
      displayName: 'Zoe',
      aliases: [],
      mailboxServer: 'MBX2010-PAR',
      database: 'DB2010-PAR',
    };
    const inDirectory = { ...estate, sites: [...estate.sites, paris], users: [...estate.users, zoe] };
    zoeDn = estateLdapLayout(inDirectory).userDn(zoe.address) as string;
    slapd = await startSlapd({
      ldif: estateLdif(inDirectory, { password: demoPassword, servicePassword }),
      suffix: layout.suffix,
      tls: { certPem: leaf.certPem, keyPem: leaf.keyPem },
    });
    ldapFile = await ldapEstate('ldap.yaml', {});
  });
  after(async () => {
    await slapd?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const trace = (file: string, args: readonly string[]): Promise<CliResult> =>
    runCli(['trace', '--estate', file, ...args]);

  test('--all over the directory prints exactly what the estate file prints: every user, protocol and client location', async () => {
    for (const format of ['json', 'text', 'summary', 'mermaid']) {
      const overFile = await trace(demoFile, ['--all', '--format', format]);
      const overLdap = await trace(ldapFile, ['--all', '--format', format]);
      assert.equal(overFile.code, 0, overFile.stderr);
      assert.equal(overLdap.code, 0, overLdap.stderr);
      assert.equal(overLdap.stdout, overFile.stdout, `--format ${format}`);
      assert.equal(
        overLdap.stderr,
        `coexist trace: LDAP: ${zoeDn}: its mailbox server MBX2010-PAR is not in the estate\n` +
          `coexist trace: the directory ${slapd.url} has 7 mailbox users; tracing every one by primary SMTP address, less 1 that is no mailbox of the estate (above)\n`,
      );
      assert.equal(overFile.stderr, '');
    }
    const flows = JSON.parse((await trace(ldapFile, ['--all', '--format', 'json'])).stdout) as {
      user: string;
    }[];
    // 6 users x (7 protocols x 2 client locations + ActiveSync external only)
    assert.equal(flows.length, 6 * 15);
  });

  test('one flow at a time, asked by address, alias, UPN or DOMAIN\\login: the same as the estate file, never a password', async () => {
    const { estate } = (await loadEstate(demoFile)).index;
    let runs = 0;
    for (const user of estate.users) {
      const identities = [user.address, ...user.aliases, user.upn, user.login].filter(
        (i): i is string => i !== undefined,
      );
      for (const [i, protocol] of protocols.entries()) {
        for (const client of ['external', 'internal']) {
          const identity = identities[(i + (client === 'internal' ? 1 : 0)) % identities.length] as string;
          const args = ['--user', identity, '--protocol', protocol, '--client', client];
          const overFile = await trace(demoFile, args);
          const overLdap = await trace(ldapFile, args);
          assert.equal(overFile.code, 0, `${args.join(' ')}: ${overFile.stderr}`);
          assert.equal(overLdap.code, 0, `${args.join(' ')}: ${overLdap.stderr}`);
          assert.equal(overLdap.stdout, overFile.stdout, args.join(' '));
          assert.equal(overLdap.stderr, '');
          assert.ok(!overLdap.stdout.includes(servicePassword));
          runs++;
        }
      }
    }
    assert.equal(runs, estate.users.length * protocols.length * 2);
  });

  test('--all --sample N: the first N mailboxes by primary SMTP address, and says so', async () => {
    const r = await trace(ldapFile, ['--all', '--sample', '2', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const users = new Set((JSON.parse(r.stdout) as { user: string }[]).map((f) => f.user));
    assert.deepEqual([...users], ['alice@o365info.com', 'bob@o365info.com']);
    assert.match(
      r.stderr,
      /^coexist trace: the directory ldap:\/\/127\.0\.0\.1:\d+ has 7 mailbox users; tracing the first 2 by primary SMTP address \(--sample N for more, --users FILE to choose\)\n$/,
    );
    // The estate file's first two users are the same two.
    const overFile = await trace(demoFile, ['--all', '--sample', '2', '--format', 'json']);
    assert.equal(overFile.code, 0, overFile.stderr);
    assert.equal(r.stdout, overFile.stdout);
    const bad = await trace(ldapFile, ['--all', '--sample', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--sample takes a whole number above 0, not "0" \[CX_CLI_USAGE\]/);
  });

  test('--users FILE: those users in the file order, once each, the same over the directory as over the estate file', async () => {
    const list = join(dir, 'users.txt');
    await writeFile(
      list,
      [
        '# users to check after the move',
        'diego.garcia@o365info.com',
        '',
        'O365INFO\\alice',
        '  carol@o365info.com  ',
        'DIEGO@o365info.com',
      ].join('\n'),
    );
    for (const format of ['summary', 'json']) {
      const overFile = await trace(demoFile, ['--users', list, '--format', format]);
      const overLdap = await trace(ldapFile, ['--users', list, '--format', format]);
      assert.equal(overFile.code, 0, overFile.stderr);
      assert.equal(overLdap.code, 0, overLdap.stderr);
      assert.equal(overLdap.stdout, overFile.stdout);
      assert.equal(overLdap.stderr, '');
    }
    const flows = JSON.parse((await trace(ldapFile, ['--users', list, '--format', 'json'])).stdout) as {
      user: string;
    }[];
    assert.deepEqual(
      [...new Set(flows.map((f) => f.user))],
      ['diego@o365info.com', 'alice@o365info.com', 'carol@o365info.com'],
    );
    assert.equal(flows.length, 3 * 15);
  });

  test('a user the directory does not have: exit 2, naming the directory; in --users FILE, naming the line', async () => {
    const r = await trace(ldapFile, ['--user', 'nobody@o365info.com', '--protocol', 'owa']);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /^coexist: unknown user "nobody@o365info\.com": the directory ldap:\/\/127\.0\.0\.1:\d+ has no mailbox of the estate o365info for it .*\[CX_CLI_UNKNOWN_USER\]\n$/,
    );
    // Filter syntax in an identity is text, never a wildcard or a filter of its own (RFC 4515 escaping).
    for (const identity of ['*@o365info.com', 'a*', '*)(mail=*', 'alice@o365info.com)(|(mail=*)']) {
      const w = await trace(ldapFile, ['--user', identity, '--protocol', 'owa']);
      assert.equal(w.code, 2, identity);
      assert.equal(w.stdout, '', identity);
      assert.match(w.stderr, /\[CX_CLI_UNKNOWN_USER\]\n$/, identity);
    }
    // zoe is in the directory, on a server the estate does not have: no mailbox of this estate.
    const z = await trace(ldapFile, ['--user', 'zoe@o365info.com', '--protocol', 'owa']);
    assert.equal(z.code, 2);
    assert.equal(
      z.stderr.split('\n')[0],
      `coexist trace: LDAP: ${zoeDn}: its mailbox server MBX2010-PAR is not in the estate`,
    );
    assert.match(
      z.stderr,
      /coexist: unknown user "zoe@o365info\.com": the directory .*\[CX_CLI_UNKNOWN_USER\]\n$/,
    );
    const list = join(dir, 'some-unknown.txt');
    await writeFile(list, 'bob@o365info.com\nnobody@o365info.com\n');
    const l = await trace(ldapFile, ['--users', list]);
    assert.equal(l.code, 2);
    assert.equal(l.stdout, '');
    assert.ok(
      l.stderr.includes(
        `1 of the users listed in ${list} has no mailbox in the directory ${slapd.url}: ${list}:2 nobody@o365info.com [CX_CLI_UNKNOWN_USER]`,
      ),
      l.stderr,
    );
  });

  test('a wrong service password: exit 1, naming the server and the account, never a password', async () => {
    const file = await ldapEstate('wrong-password.yaml', { bindPasswordFile: join(dir, 'wrong-password') });
    for (const args of [['--user', 'bob@o365info.com', '--protocol', 'ews'], ['--all']]) {
      const r = await trace(file, args);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(
        r.stderr,
        /^coexist: LDAP at ldap:\/\/127\.0\.0\.1:\d+ refused the service account cn=coexist-svc,cn=Users,dc=o365info,dc=com \(invalid credentials\): check bindDn and its password \(directory\.ldap of .*wrong-password\.yaml\) \[CX_DIRECTORY_UNAVAILABLE\]\n$/,
      );
      assert.ok(!r.stderr.includes('not-the-service-password') && !r.stderr.includes(servicePassword));
    }
    const unset = await ldapEstate('unset-env.yaml', {
      bindPasswordFile: undefined,
      bindPasswordEnv: 'COEXIST_TEST_NO_SUCH_VARIABLE',
    });
    const u = await trace(unset, ['--user', 'bob@o365info.com', '--protocol', 'ews']);
    assert.equal(u.code, 1);
    assert.match(
      u.stderr,
      /^coexist: the directory ldap:\/\/127\.0\.0\.1:\d+ cannot be asked: LDAP: environment variable COEXIST_TEST_NO_SUCH_VARIABLE is not set \(directory\.ldap of .*unset-env\.yaml\) \[CX_DIRECTORY_UNAVAILABLE\]\n$/,
    );
  });

  test('the directory is down: trace and check stop with exit 1, naming the server and what failed', async () => {
    await slapd.stop();
    try {
      for (const args of [
        ['trace', '--estate', ldapFile, '--user', 'carol@o365info.com', '--protocol', 'activesync'],
        ['trace', '--estate', ldapFile, '--all'],
        ['check', '--estate', ldapFile, '--user', 'carol@o365info.com', '--password', demoPassword],
      ]) {
        const r = await runCli(args);
        assert.equal(r.code, 1, args.join(' '));
        assert.equal(r.stdout, '');
        assert.match(
          r.stderr,
          new RegExp(
            `^coexist: LDAP (lookup|listing) at ${slapd.url.replace(/[.]/g, '\\.')} failed: connect ECONNREFUSED 127\\.0\\.0\\.1:${slapd.port} \\(directory\\.ldap of .*ldap\\.yaml\\) \\[CX_DIRECTORY_UNAVAILABLE\\]\\n$`,
          ),
          args.join(' '),
        );
      }
    } finally {
      await slapd.start();
    }
    const back = await trace(ldapFile, ['--user', 'carol@o365info.com', '--protocol', 'activesync']);
    assert.equal(back.code, 0, back.stderr);
  });

  describe('check: the hops to expect from the directory, the probes with the user password', () => {
    let lab: Lab;
    before(async () => {
      lab = await startLab({
        index: (await loadEstate(demoFile)).index,
        logger: createLogger({ level: 'silent' }),
        maxPingHoldMs: 300,
      });
    });
    after(async () => {
      await lab?.close();
    });

    test('bob over ActiveSync and EWS with users: [] and directory.ldap: found by the service account, every hop as expected', async () => {
      const r = await runCliProcess(
        'check',
        lab,
        ['--estate', ldapFile, '--user', 'bob@o365info.com', '--protocol', 'activesync,ews', '--json'],
        { env: { COEXIST_PASSWORD: demoPassword } },
      );
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const report = JSON.parse(r.stdout) as CheckReport;
      assert.equal(report.verdict, 'pass');
      assert.deepEqual(
        report.groups.map((g) => [g.title, g.flow]),
        [
          ['ActiveSync', 'EAS-1'],
          ['EWS', 'EWS-2'],
        ],
      );
      assert.ok(!(r.stdout + r.stderr).includes(demoPassword));
      assert.ok(!(r.stdout + r.stderr).includes(servicePassword));
    });

    test('a user the directory does not have: exit 2 before any probe', async () => {
      const r = await runCli([
        'check',
        '--estate',
        ldapFile,
        '--user',
        'nobody@o365info.com',
        '--password',
        demoPassword,
      ]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(
        r.stderr,
        /^coexist: unknown user "nobody@o365info\.com": the directory ldap:\/\/127\.0\.0\.1:\d+ of the estate o365info \(.*ldap\.yaml\) has no such user, so the hops to expect are unknown .*\[CX_CLI_UNKNOWN_USER\]\n$/,
      );
    });
  });
});
