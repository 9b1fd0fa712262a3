/**
 * `coexist trace` with the demo estate's users in a real Active Directory (the lab's Samba AD domain
 * controller, src/lab/samba, loaded with the estate as Exchange writes it): `users: []` plus `directory.ldap`
 * searched from the domain root over LDAPS, as an admin would configure it. Every flow of every user,
 * protocol and client location is what the estate file with its users prints; users named by alias, UPN or
 * DOMAIN\user in `--users FILE` too. Samba must be installed (npm run setup): without it this fails, it
 * never skips.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadEstate } from '../../src/config/index.ts';
import { demoPassword } from '../../src/lab/index.ts';
import { sambaDirectorySettings, startSambaAd, type SambaAd } from '../../src/lab/samba/samba.ts';
import { randomLabPassword } from '../../src/lab/slapd.ts';
import type { CliResult } from '../support/run-cli.ts';
import { runCli } from '../support/run-cli.ts';

const demoFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

describe('trace over the estate directory (Samba AD)', () => {
  let dc: SambaAd;
  let dir: string;
  let adFile: string;
  // Mixed classes of characters, as a real AD password policy would want them.
  const servicePassword = `Svc-${randomLabPassword()}-9`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coexist-trace-ad-'));
    const { estate } = (await loadEstate(demoFile)).index;
    dc = await startSambaAd({ estate, password: demoPassword, servicePassword, maxRuntimeSeconds: 900 });
    await writeFile(join(dir, 'service-password'), `${servicePassword}\n`, { mode: 0o600 });
    // The lab's settings, with the service password in a file instead of a variable (JSON drops undefined).
    const ldap = {
      ...sambaDirectorySettings(dc),
      bindPasswordEnv: undefined,
      bindPasswordFile: join(dir, 'service-password'),
      netbiosDomain: 'O365INFO',
    };
    const text = (await readFile(demoFile, 'utf8'))
      .replace(/^namespaces:$/m, `directory:\n  ldap: ${JSON.stringify(ldap)}\nnamespaces:`)
      .replace(/^users:\n[\s\S]*$/m, 'users: []\n');
    adFile = join(dir, 'ad.yaml');
    await writeFile(adFile, text);
  });
  after(async () => {
    await dc?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const trace = (file: string, args: readonly string[]): Promise<CliResult> =>
    runCli(['trace', '--estate', file, ...args]);

  test('--all over AD prints exactly what the estate file prints, and says which users it traced', async () => {
    for (const format of ['json', 'summary']) {
      const overFile = await trace(demoFile, ['--all', '--format', format]);
      const overAd = await trace(adFile, ['--all', '--format', format]);
      assert.equal(overFile.code, 0, overFile.stderr);
      assert.equal(overAd.code, 0, overAd.stderr);
      assert.equal(overAd.stdout, overFile.stdout, `--format ${format}`);
      assert.equal(
        overAd.stderr,
        `coexist trace: the directory ${dc.ldapsUrl} has 6 mailbox users; tracing every one by primary SMTP address\n`,
      );
    }
  });

  test('--users FILE with aliases, UPNs and DOMAIN\\user: the same flows as the estate file', async () => {
    const list = join(dir, 'users.txt');
    await writeFile(
      list,
      ['carol.white@o365info.com', 'bob@o365info.local', 'O365INFO\\diego', 'svc-crm@o365info.com'].join(
        '\r\n',
      ),
    );
    const overFile = await trace(demoFile, ['--users', list, '--format', 'json']);
    const overAd = await trace(adFile, ['--users', list, '--format', 'json']);
    assert.equal(overFile.code, 0, overFile.stderr);
    assert.equal(overAd.code, 0, overAd.stderr);
    assert.equal(overAd.stdout, overFile.stdout);
    const users = (JSON.parse(overAd.stdout) as { user: string }[]).map((f) => f.user);
    assert.deepEqual(
      [...new Set(users)],
      ['carol@o365info.com', 'bob@o365info.com', 'diego@o365info.com', 'svc-crm@o365info.com'],
    );
  });
});
