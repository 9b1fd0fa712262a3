/**
 * LdapDirectory against a real slapd (src/lab/slapd.ts) over StartTLS and LDAPS with a throwaway CA: the
 * Directory contract, then what only LDAP has: the transport rules, the shipped LDIF and schema, filter
 * injection, entries that are no mailbox of the estate, the pool's bound, and a server that drops
 * connections, stops, restarts or freezes. slapd must be installed (.ci/run does it): without it these
 * tests fail, they never skip.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type Server as NetServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { contractEstateIndex, demoPassword, directoryContract } from '../support/directory.contract.ts';
import { estateLdapLayout, estateLdif } from '../../src/directory/estate-ldif.ts';
import {
  DirectoryUnavailableError,
  escapeFilterValue,
  firstRdnValue,
  LdapDirectory,
  openLdapDirectory,
  readLdapSecrets,
} from '../../src/directory/ldap-directory.ts';
import type { LdapDirectoryOptions } from '../../src/directory/ldap-settings.ts';
import { ldapDirectorySchema } from '../../src/directory/ldap-settings.ts';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import { randomLabPassword, SlapdNotInstalledError, startSlapd, type Slapd } from '../../src/lab/slapd.ts';

const index = contractEstateIndex();
const layout = estateLdapLayout(index.estate);
const ca = createLabCa();
const leaf = ca.issue(['127.0.0.1']);
const servicePassword = randomLabPassword();
const ldif = estateLdif(index.estate, { password: demoPassword, servicePassword });

const exampleLdifFile = fileURLToPath(new URL('../../examples/ldap/o365info.ldif', import.meta.url));
const exampleLdifComment = [
  'The o365info estate (examples/o365info.yaml) as a directory, for OpenLDAP with coexist-exchange.schema',
  '(after core, cosine and inetorgperson). Written by src/directory/estate-ldif.ts; do not edit:',
  'test/directory/ldap-directory.contract.test.ts checks that it is what the generator makes.',
  '',
  'Users are under cn=Users,dc=o365info,dc=com; lookups bind as cn=coexist-svc,cn=Users,dc=o365info,dc=com.',
  'Every user and that service account have the demo password of the estate, Coexist-Lab-2026! ({SSHA}).',
];
const exampleLdif = (): string =>
  estateLdif(index.estate, { password: demoPassword, comment: exampleLdifComment });

/** Options for a directory on `url` with this file's service account and CA. */
function options(url: string, extra: Partial<LdapDirectoryOptions> = {}): LdapDirectoryOptions {
  return {
    url,
    baseDn: layout.usersDn,
    bindDn: layout.serviceAccountDn,
    bindPasswordEnv: 'COEXIST_TEST_LDAP_PASSWORD',
    impersonation: layout.impersonation,
    tls: { ca: ca.certPem },
    timeoutMs: 3000,
    ...extra,
  };
}

const tcpPort = (url: string): number => Number(new URL(url).port);

/** The first result of `fn` that does not throw, trying again until `withinMs` has passed. */
async function eventually<T>(fn: () => Promise<T>, withinMs = 10_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

directoryContract('LdapDirectory, StartTLS, mailbox server through homeMDB', async () => {
  const slapd = await startSlapd({ ldif, suffix: layout.suffix, tls: leaf });
  const directory = new LdapDirectory(index, options(slapd.url), { bindPassword: servicePassword });
  return {
    directory,
    close: async () => {
      await directory.close();
      await slapd.close();
    },
  };
});

directoryContract('LdapDirectory, LDAPS, mailbox server through msExchHomeServerName', async () => {
  const slapd = await startSlapd({ ldif, suffix: layout.suffix, tls: leaf, scheme: 'ldaps' });
  const directory = new LdapDirectory(
    index,
    options(slapd.url, { mapping: { mailboxLocation: 'homeServer' }, poolSize: 2 }),
    { bindPassword: servicePassword },
  );
  return {
    directory,
    close: async () => {
      await directory.close();
      await slapd.close();
    },
  };
});

/** A TCP relay to slapd that counts connections and can cut them all (a server's idle timeout, a firewall). */
interface Relay {
  readonly url: string;
  readonly current: number;
  readonly max: number;
  readonly total: number;
  resetMax(): void;
  dropAll(): void;
  close(): Promise<void>;
}

async function relayTo(targetPort: number): Promise<Relay> {
  const sockets = new Set<Socket>();
  let current = 0;
  let max = 0;
  let total = 0;
  const server: NetServer = createServer((client) => {
    current++;
    total++;
    max = Math.max(max, current);
    const upstream = connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    client.setNoDelay(true);
    sockets.add(client).add(upstream);
    let open = true;
    const end = (): void => {
      if (open) {
        open = false;
        current--;
      }
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `ldap://127.0.0.1:${port}`,
    get current() {
      return current;
    },
    get max() {
      return max;
    },
    get total() {
      return total;
    },
    resetMax: () => {
      max = current;
    },
    dropAll: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Entries that are not plain mailboxes of the estate, and addresses with filter syntax in them. */
function fixtureEntries(): string {
  const users = layout.usersDn;
  const db2013 = layout.databaseDn('DB2013-NY') as string;
  const fixtures = `cn=Fixtures,${layout.suffix}`;
  const home = (server: string): string =>
    `/o=${index.estate.organization}/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=${server}`;
  const user = (cn: string, mail: string, more: string[] = []): string =>
    [
      `dn: cn=${cn},${users}`,
      'objectClass: user',
      `cn: ${cn}`,
      `mail: ${mail}`,
      `proxyAddresses: SMTP:${mail}`,
      ...more,
    ].join('\n');
  return [
    `dn: ${fixtures}\nobjectClass: container\ncn: Fixtures`,
    `dn: cn=DB-ELSEWHERE,${fixtures}\nobjectClass: msExchPrivateMDB\ncn: DB-ELSEWHERE\nmsExchOwningServer: cn=EX-ELSEWHERE,${fixtures}`,
    user('No Mailbox', 'nomailbox@o365info.com'),
    user('Elsewhere', 'elsewhere@o365info.com', [
      `homeMDB: cn=DB-ELSEWHERE,${fixtures}`,
      `msExchHomeServerName: ${home('EX-ELSEWHERE')}`,
    ]),
    user('Dangling', 'dangling@o365info.com', [`homeMDB: cn=DB-GONE,${fixtures}`]),
    user('Twin One', 'twin@o365info.com', [`homeMDB: ${db2013}`]),
    user('Twin Two', 'twin.two@o365info.com', [
      'proxyAddresses: smtp:twin@o365info.com',
      `homeMDB: ${db2013}`,
    ]),
    user('Star', 'star*@o365info.com', [`homeMDB: ${db2013}`, `msExchHomeServerName: ${home('MBX2013-NY')}`]),
    user('Paren', 'p(a)ren@o365info.com', [`homeMDB: ${db2013}`]),
    user('Upn Person', 'upn.person@o365info.com', [
      'userPrincipalName: upn.person@corp.o365info.com',
      'sAMAccountName: upnperson',
      `homeMDB: ${layout.databaseDn('DB2007-LA') as string}`,
    ]),
  ].join('\n\n');
}

describe('LdapDirectory: files shipped in examples/ldap', () => {
  test('examples/ldap/o365info.ldif is what estateLdif generates from examples/o365info.yaml', () => {
    if (process.env.COEXIST_UPDATE_EXAMPLES === '1') writeFileSync(exampleLdifFile, exampleLdif());
    assert.equal(
      readFileSync(exampleLdifFile, 'utf8'),
      exampleLdif(),
      'examples/ldap/o365info.ldif is stale: run COEXIST_UPDATE_EXAMPLES=1 node --import tsx --test test/directory/ldap-directory.contract.test.ts and commit it',
    );
  });

  test('the shipped LDIF loads into slapd with the shipped schema, and its users and service account log in', async () => {
    const slapd = await startSlapd({
      ldif: readFileSync(exampleLdifFile, 'utf8'),
      suffix: layout.suffix,
      tls: leaf,
    });
    const directory = new LdapDirectory(index, options(slapd.url), { bindPassword: demoPassword });
    try {
      for (const u of index.estate.users) {
        const m = await directory.authenticate(u.login ?? u.address, demoPassword);
        assert.equal(m?.address, u.address);
      }
    } finally {
      await directory.close();
      await slapd.close();
    }
  });

  test('RFC 4515 escaping and RFC 4514 RDN values', () => {
    assert.equal(escapeFilterValue('*)(uid=*'), '\\2a\\29\\28uid=\\2a');
    assert.equal(escapeFilterValue('a\\b\0c'), 'a\\5cb\\00c');
    assert.equal(escapeFilterValue('josé@x'), 'josé@x');
    assert.equal(firstRdnValue('cn=MBX2007-NY,cn=Servers,dc=x'), 'MBX2007-NY');
    assert.equal(firstRdnValue('CN=Smith\\, John,CN=Users,DC=x'), 'Smith, John');
    assert.equal(firstRdnValue('cn=Caf\\C3\\A9,dc=x'), 'Café');
  });
});

describe('startSlapd', () => {
  test('a missing slapd is a clear error naming the packages to install', async () => {
    await assert.rejects(
      startSlapd({ ldif, suffix: layout.suffix, slapdPath: '/nonexistent/slapd' }),
      (e: unknown) =>
        e instanceof SlapdNotInstalledError && /apt-get install .*slapd ldap-utils/.test(e.message),
    );
  });

  test('a port that is taken is reported, not waited on', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const address = squatter.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      await assert.rejects(
        startSlapd({ ldif, suffix: layout.suffix, port }),
        /slapd exited .* before answering/,
      );
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });
});

describe('LdapDirectory: secrets the estate file points to', () => {
  test('the service password from a file or an environment variable, the CA from a file; errors name the place, not the secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coexist-ldap-secrets-'));
    try {
      const passwordFile = join(dir, 'bind-password');
      writeFileSync(passwordFile, `${servicePassword}\n`, { mode: 0o600 });
      const caFile = join(dir, 'ca.pem');
      writeFileSync(caFile, ca.certPem);
      const base = { url: 'ldaps://127.0.0.1:636', baseDn: layout.usersDn, bindDn: layout.serviceAccountDn };
      assert.deepEqual(await readLdapSecrets({ ...base, bindPasswordFile: passwordFile, tls: { caFile } }), {
        bindPassword: servicePassword,
        ca: ca.certPem,
      });
      assert.deepEqual(
        await readLdapSecrets({ ...base, bindPasswordEnv: 'SVC_PW' }, { SVC_PW: servicePassword }),
        {
          bindPassword: servicePassword,
        },
      );
      await assert.rejects(readLdapSecrets({ ...base, bindPasswordEnv: 'SVC_PW' }, {}), /SVC_PW is not set/);
      await assert.rejects(
        readLdapSecrets({ ...base, bindPasswordFile: join(dir, 'missing') }),
        /cannot read bindPasswordFile/,
      );
      const slapd = await startSlapd({ ldif, suffix: layout.suffix, tls: leaf, scheme: 'ldaps' });
      const directory = await openLdapDirectory(
        index,
        { ...base, url: slapd.url, bindPasswordEnv: 'SVC_PW', tls: { caFile } },
        { SVC_PW: servicePassword },
      );
      try {
        assert.equal((await directory.findMailbox('carol.white@o365info.com'))?.server.name, 'MBX2007-LA');
      } finally {
        await directory.close();
        await slapd.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('LdapDirectory: transport rules', () => {
  test('plain ldap:// is refused unless allowed, and allowed only to a loopback address', async () => {
    const plain = (url: string, extra: Partial<LdapDirectoryOptions> = {}): LdapDirectoryOptions =>
      options(url, { startTls: false, tls: {}, ...extra });
    for (const o of [
      plain('ldap://127.0.0.1:389'),
      plain('ldap://dc1.o365info.local', { allowPlainOnLoopback: true }),
      plain('ldap://localhost:389', { allowPlainOnLoopback: true }),
      plain('ldap://10.0.0.5', { allowPlainOnLoopback: true }),
    ]) {
      assert.throws(
        () => new LdapDirectory(index, o, { bindPassword: servicePassword }),
        /plain LDAP/,
        o.url,
      );
      const parsed = ldapDirectorySchema.safeParse(o);
      assert.equal(parsed.success, false, o.url);
      assert.match(parsed.error?.issues.map((i) => i.message).join() ?? '', /plain LDAP/);
    }
    assert.throws(
      () =>
        new LdapDirectory(index, options('ldaps://127.0.0.1:636', { startTls: true }), { bindPassword: 'x' }),
      /ldaps/,
    );
    assert.throws(
      () =>
        new LdapDirectory(
          index,
          { ...options('ldap://127.0.0.1'), bindPasswordFile: '/x' },
          { bindPassword: 'x' },
        ),
      /exactly one of bindPasswordFile or bindPasswordEnv/,
    );

    const slapd = await startSlapd({ ldif, suffix: layout.suffix, tls: leaf });
    const directory = new LdapDirectory(index, plain(slapd.url, { allowPlainOnLoopback: true }), {
      bindPassword: servicePassword,
    });
    try {
      assert.equal((await directory.findMailbox('bob@o365info.com'))?.server.name, 'MBX2007-NY');
      assert.equal(
        (await directory.authenticate('O365INFO\\bob', demoPassword))?.address,
        'bob@o365info.com',
      );
    } finally {
      await directory.close();
      await slapd.close();
    }
  });

  test('a certificate from another CA, or a wrong service password: unavailable, never "not found", no password in the error', async () => {
    const slapd = await startSlapd({ ldif, suffix: layout.suffix, tls: leaf });
    const strangerCa = createLabCa({ commonName: 'someone else' });
    const untrusting = new LdapDirectory(index, options(slapd.url, { tls: { ca: strangerCa.certPem } }), {
      bindPassword: servicePassword,
    });
    const wrongService = 'Wrong-Service-Password-1';
    const refused = new LdapDirectory(index, options(slapd.url), { bindPassword: wrongService });
    const noPassword = (error: unknown): boolean => {
      assert.ok(error instanceof DirectoryUnavailableError, inspect(error));
      const text = inspect(error, { depth: 10 }) + JSON.stringify(error);
      for (const secret of [servicePassword, wrongService, demoPassword]) {
        assert.ok(!text.includes(secret), `a password appears in: ${text}`);
      }
      return true;
    };
    try {
      await assert.rejects(untrusting.findMailbox('alice@o365info.com'), noPassword);
      await assert.rejects(untrusting.authenticate('alice@o365info.com', demoPassword), noPassword);
      await assert.rejects(refused.findMailbox('alice@o365info.com'), (e: unknown) => {
        noPassword(e);
        assert.match((e as Error).message, /refused the service account/);
        return true;
      });
      await assert.rejects(refused.authenticate('alice@o365info.com', demoPassword), noPassword);
    } finally {
      await untrusting.close();
      await refused.close();
      await slapd.close();
    }
  });
});

describe('LdapDirectory: lookups, the pool, password checks', () => {
  let slapd: Slapd;
  let relay: Relay;
  let directory: LdapDirectory;
  const warnings: string[] = [];

  before(async () => {
    slapd = await startSlapd({ ldif: `${ldif}\n${fixtureEntries()}\n`, suffix: layout.suffix, tls: leaf });
    relay = await relayTo(tcpPort(slapd.url));
    directory = new LdapDirectory(
      index,
      options(relay.url, { poolSize: 4 }),
      { bindPassword: servicePassword },
      {
        warn: (m) => warnings.push(m),
      },
    );
  });
  after(async () => {
    await directory.close();
    await relay.close();
    await slapd.close();
  });

  test('filter syntax in an identity is a value, never a filter', async () => {
    for (const identity of [
      '*)(uid=*',
      '*',
      '*@o365info.com',
      'st*@o365info.com',
      'alice*',
      'alice@o365info.com)(mail=*',
      '*)(|(objectClass=*',
      'O365INFO\\*',
      'O365INFO\\al*',
      'O365INFO\\alice)(sAMAccountName=*',
      '\\2a@o365info.com',
    ]) {
      assert.equal(await directory.findMailbox(identity), undefined, identity);
      assert.equal(await directory.authenticate(identity, demoPassword), undefined, identity);
    }
    // A literal star or parenthesis in an address matches that address only.
    assert.equal((await directory.findMailbox('STAR*@o365info.com'))?.address, 'star*@o365info.com');
    assert.equal((await directory.findMailbox('P(A)REN@o365info.com'))?.address, 'p(a)ren@o365info.com');
    assert.equal(await directory.findMailbox('star@o365info.com'), undefined);
  });

  test('a userPrincipalName that differs from the address finds the user (the estate has none)', async () => {
    for (const identity of [
      'upn.person@corp.o365info.com',
      'UPN.Person@CORP.o365info.com',
      'O365INFO\\UpnPerson',
    ]) {
      const m = await directory.findMailbox(identity);
      assert.equal(m?.address, 'upn.person@o365info.com', identity);
      assert.equal(m.server.name, 'MBX2007-LA');
      assert.equal(m.site.name, 'Los Angeles');
      assert.equal(m.user.upn, 'upn.person@corp.o365info.com');
      assert.equal(m.user.login, 'O365INFO\\upnperson');
      assert.equal(m.user.database, 'DB2007-LA');
    }
  });

  test('entries that are no mailbox of the estate are undefined, with a warning where it is a directory problem', async () => {
    warnings.length = 0;
    assert.equal(await directory.findMailbox('nomailbox@o365info.com'), undefined);
    assert.equal(await directory.findMailbox('elsewhere@o365info.com'), undefined);
    assert.equal(await directory.findMailbox('dangling@o365info.com'), undefined);
    assert.equal(await directory.findMailbox('twin@o365info.com'), undefined, 'two users answer to it');
    assert.equal((await directory.findMailbox('twin.two@o365info.com'))?.address, 'twin.two@o365info.com');
    assert.equal(await directory.authenticate('nomailbox@o365info.com', demoPassword), undefined);
    assert.ok(
      warnings.some((w) => /EX-ELSEWHERE is not in the estate/.test(w)),
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((w) => /DB-GONE/.test(w)),
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((w) => /more than one user answers to twin@o365info.com/.test(w)),
      warnings.join('\n'),
    );
  });

  test('the pool never holds more than poolSize connections, under 50 concurrent lookups', async () => {
    relay.resetMax();
    const users = index.estate.users;
    const asked = Array.from({ length: 50 }, (_, i) => users[i % users.length]?.address as string);
    const found = await Promise.all(asked.map((a) => directory.findMailbox(a)));
    assert.deepEqual(
      found.map((m) => m?.address),
      asked,
    );
    assert.ok(relay.max <= 4, `the relay saw ${relay.max} connections at once`);
    assert.ok(directory.poolStats().maxOpen <= 4, inspect(directory.poolStats()));
    assert.equal(directory.poolStats().waiting, 0);
  });

  test('a password check binds on a connection of its own, never on the pooled ones', async () => {
    await directory.findMailbox('alice@o365info.com');
    const pooled = directory.poolStats().open;
    const before = relay.total;
    assert.equal(
      (await directory.authenticate('alice@o365info.com', demoPassword))?.address,
      'alice@o365info.com',
    );
    assert.equal(await directory.authenticate('alice@o365info.com', 'wrong'), undefined);
    assert.equal(await directory.authenticate('nobody@o365info.com', demoPassword), undefined);
    assert.equal(relay.total - before, 3, 'one new connection per password check (unknown users included)');
    assert.equal(directory.poolStats().open, pooled);
  });

  test('connections the server dropped are replaced, and the lookup succeeds', async () => {
    await Promise.all(
      ['alice', 'bob', 'carol', 'diego'].map((u) => directory.findMailbox(`${u}@o365info.com`)),
    );
    relay.dropAll();
    assert.equal((await directory.findMailbox('carol@o365info.com'))?.server.name, 'MBX2007-LA');
    relay.dropAll();
    const again = await Promise.all(['alice', 'bob'].map((u) => directory.findMailbox(`${u}@o365info.com`)));
    assert.deepEqual(
      again.map((m) => m?.server.name),
      ['MBX2013-NY', 'MBX2007-NY'],
    );
  });

  test('throughput and latency of uncached lookups (printed, not asserted)', async (t) => {
    const users = index.estate.users.map((u) => u.address);
    const measure = async (
      d: LdapDirectory,
      call: (d: LdapDirectory, user: string) => Promise<unknown>,
      rounds: number,
    ): Promise<string> => {
      const latencies: number[] = [];
      for (let i = 0; i < rounds + 50; i++) {
        const t0 = performance.now();
        await call(d, users[i % users.length] as string);
        if (i >= 50) latencies.push(performance.now() - t0);
      }
      latencies.sort((a, b) => a - b);
      const at = (q: number): string =>
        (latencies[Math.floor(q * (latencies.length - 1))] as number).toFixed(2);
      const n = rounds * 4;
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < n) await call(d, users[next++ % users.length] as string);
        }),
      );
      const perSecond = Math.round(n / ((performance.now() - t0) / 1000));
      return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms one at a time; ${perSecond}/s with 16 callers`;
    };
    // Straight to slapd (not through the relay), pool of 4, StartTLS, nothing cached.
    for (const mailboxLocation of ['homeMDB', 'homeServer'] as const) {
      const direct = new LdapDirectory(
        index,
        options(slapd.url, { poolSize: 4, mapping: { mailboxLocation } }),
        {
          bindPassword: servicePassword,
        },
      );
      try {
        const lookups = await measure(direct, (d, u) => d.findMailbox(u), 1000);
        const searches = mailboxLocation === 'homeMDB' ? 'user + database: 2 searches' : '1 search';
        t.diagnostic(`LDAP findMailbox via ${mailboxLocation} (${searches}): ${lookups}`);
        if (mailboxLocation === 'homeMDB') {
          const checks = await measure(direct, (d, u) => d.authenticate(u, demoPassword), 100);
          t.diagnostic(`LDAP authenticate (lookup + StartTLS + bind on a new connection): ${checks}`);
        }
      } finally {
        await direct.close();
      }
    }
  });
});

describe('LdapDirectory: a server that stops, restarts or freezes', () => {
  let slapd: Slapd;
  before(async () => {
    slapd = await startSlapd({ ldif, suffix: layout.suffix, tls: leaf });
  });
  after(async () => {
    await slapd.close();
  });

  test(
    'stopped: DirectoryUnavailableError; restarted: the same directory answers again',
    { timeout: 30_000 },
    async () => {
      const directory = new LdapDirectory(
        index,
        options(slapd.url, { timeoutMs: 3000, connectTimeoutMs: 1000 }),
        {
          bindPassword: servicePassword,
        },
      );
      try {
        assert.equal((await directory.findMailbox('alice@o365info.com'))?.server.name, 'MBX2013-NY');
        await slapd.stop();
        await assert.rejects(directory.findMailbox('alice@o365info.com'), DirectoryUnavailableError);
        await assert.rejects(directory.findMailbox('O365INFO\\bob'), DirectoryUnavailableError);
        await assert.rejects(
          directory.authenticate('alice@o365info.com', demoPassword),
          DirectoryUnavailableError,
        );
        await slapd.start();
        assert.equal((await directory.findMailbox('alice@o365info.com'))?.server.name, 'MBX2013-NY');
        assert.equal(
          (await directory.authenticate('O365INFO\\bob', demoPassword))?.address,
          'bob@o365info.com',
        );
      } finally {
        await directory.close();
      }
    },
  );

  test(
    'frozen (accepts, never answers): DirectoryUnavailableError after timeoutMs, not a hang',
    { timeout: 30_000 },
    async () => {
      const directory = new LdapDirectory(
        index,
        options(slapd.url, { timeoutMs: 300, connectTimeoutMs: 200 }),
        {
          bindPassword: servicePassword,
        },
      );
      try {
        // 300 ms is short for a first connection (TLS handshake) on a busy machine: warm the pool up.
        const warm = await eventually(() => directory.findMailbox('diego@o365info.com'));
        assert.equal(warm?.server.name, 'MBX2007-MAD');
        await slapd.pause();
        await assert.rejects(directory.findMailbox('diego@o365info.com'), (e: unknown) => {
          assert.ok(e instanceof DirectoryUnavailableError);
          assert.match(e.message, /within 300 ms|timed out|timeout/i);
          return true;
        });
        await assert.rejects(
          directory.authenticate('diego@o365info.com', demoPassword),
          DirectoryUnavailableError,
        );
        const many = await Promise.allSettled(
          Array.from({ length: 10 }, () => directory.findMailbox('alice@o365info.com')),
        );
        assert.ok(
          many.every((r) => r.status === 'rejected' && r.reason instanceof DirectoryUnavailableError),
        );
        slapd.resume();
        // Lookups abandoned at their deadline may hold pooled connections a little longer (until their own
        // request timeouts): the directory answers again once they are gone.
        assert.equal(
          (await eventually(() => directory.findMailbox('diego@o365info.com')))?.server.name,
          'MBX2007-MAD',
        );
      } finally {
        slapd.resume();
        await directory.close();
      }
    },
  );
});
