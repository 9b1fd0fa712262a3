/**
 * The round trip of docs/discover.md for the 2013/2010 estate (examples/o365info-2010.yaml): its Active
 * Directory objects as Exchange 2010 and 2013 write them (2010 databases under CN=Databases, 2010 server
 * roles and builds) on the lab's Samba AD, read back by `coexist discover --ldap` into an estate whose
 * `trace --all` is identical to the example's. A DC of its own (its own template: another estate); Samba
 * must be installed (npm run setup): without it this test fails, it never skips.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { allFlows } from '../../src/cli/commands/trace.ts';
import { loadEstate } from '../../src/config/index.ts';
import { randomLabPassword } from '../../src/lab/slapd.ts';
import { startSambaAd, type SambaAd } from '../../src/lab/samba/samba.ts';
import { demoPassword } from '../support/directory.contract.ts';
import { runCli } from '../support/run-cli.ts';

const examplePath = fileURLToPath(new URL('../../examples/o365info-2010.yaml', import.meta.url));
const servicePassword = `Svc-${randomLabPassword()}-9`;

describe('coexist discover --ldap against Samba AD (o365info-2010)', () => {
  let dc: SambaAd;
  let dir: string;

  before(async () => {
    const { estate } = await loadEstate(examplePath);
    dc = await startSambaAd({ estate, password: demoPassword, servicePassword, maxRuntimeSeconds: 1800 });
    dir = await mkdtemp(join(tmpdir(), 'coexist-discover-ad-2010-'));
  });
  after(async () => {
    await dc?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('trace --all of the discovered estate is identical to examples/o365info-2010.yaml', async (t) => {
    t.diagnostic(
      `template ${dc.timings.templateMs === 0 ? 'reused' : `built in ${Math.round(dc.timings.templateMs)} ms`}; start ${Math.round(dc.timings.startMs)} ms`,
    );
    const caFile = join(dir, 'ca.pem');
    const out = join(dir, 'discovered.yaml');
    await writeFile(caFile, dc.caPem);
    // StartTLS, the account by its DN, the password from the environment (the other file uses LDAPS,
    // the UPN and a password file).
    process.env.COEXIST_DISCOVER_TEST_PASSWORD = servicePassword;
    const r = await runCli([
      'discover',
      '--ldap',
      dc.ldapUrl,
      '--bind-dn',
      dc.serviceAccount.dn,
      '--password-env',
      'COEXIST_DISCOVER_TEST_PASSWORD',
      '--ca',
      caFile,
      '--out',
      out,
    ]).finally(() => {
      delete process.env.COEXIST_DISCOVER_TEST_PASSWORD;
    });
    assert.equal(r.code, 0, r.stderr);
    const example = await loadEstate(examplePath);
    const loaded = await loadEstate(out);
    const servers = loaded.estate.sites.flatMap((s) => s.servers);
    assert.deepEqual(
      servers
        .filter((s) => s.version === 2010)
        .map((s) => s.name)
        .sort(),
      ['CAS2010-LA', 'CAS2010-MAD', 'CAS2010-NY', 'MBX2010-LA', 'MBX2010-MAD', 'MBX2010-NY'],
    );
    assert.deepEqual(
      loaded.estate.users.map((u) => u.address),
      example.estate.users.map((u) => u.address),
    );
    const expected = allFlows(example.index, example.estate.policies);
    const actual = allFlows(loaded.index, loaded.estate.policies);
    assert.ok(expected.length >= 4 * 8, `a flow per user, protocol and client (${expected.length})`);
    assert.equal(JSON.stringify(actual, null, 1), JSON.stringify(expected, null, 1));
  });
});
