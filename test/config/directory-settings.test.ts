/** The estate file's `directory.ldap` section: read with the estate, checked like the rest of the file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EstateConfigError, loadEstate } from '../../src/config/index.ts';

const demo = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

async function withDirectory(section: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'coexist-dir-settings-'));
  const file = join(dir, 'estate.yaml');
  const text = (await readFile(demo, 'utf8')).replace(/^namespaces:$/m, `${section}\nnamespaces:`);
  await writeFile(file, text);
  return file;
}

test('an estate without a directory section uses its embedded users', async () => {
  const { settings } = await loadEstate(demo);
  assert.equal(settings.directory, undefined);
});

test('directory.ldap is read with the estate, defaults filled in', async () => {
  const file = await withDirectory(
    [
      'directory:',
      '  ldap:',
      '    url: ldaps://dc1.o365info.local',
      '    baseDn: CN=Users,DC=o365info,DC=local',
      '    bindDn: CN=svc-coexist,CN=Users,DC=o365info,DC=local',
      '    bindPasswordEnv: COEXIST_LDAP_PASSWORD',
    ].join('\n'),
  );
  const { index, settings } = await loadEstate(file);
  assert.equal(index.estate.name, 'o365info');
  assert.equal(settings.directory?.ldap?.url, 'ldaps://dc1.o365info.local');
  assert.equal(settings.directory?.ldap?.bindPasswordEnv, 'COEXIST_LDAP_PASSWORD');
});

test('a bad directory.ldap section is reported with its paths, like any other problem of the file', async () => {
  const file = await withDirectory(
    [
      'directory:',
      '  ldap:',
      '    url: ldap://dc1.o365info.local',
      '    startTls: false',
      '    baseDn: CN=Users,DC=o365info,DC=local',
      '    bindDn: CN=svc-coexist,CN=Users,DC=o365info,DC=local',
      '    bindPassword: Coexist-Lab-2026!',
    ].join('\n'),
  );
  await assert.rejects(loadEstate(file), (e: unknown) => {
    assert.ok(e instanceof EstateConfigError);
    const paths = e.problems.map((p) => p.path);
    assert.ok(
      paths.some((p) => p.startsWith('directory.ldap')),
      paths.join(', '),
    );
    // The report never repeats a password the file should not have held.
    assert.ok(!e.problems.some((p) => p.message.includes('Coexist-Lab-2026!')));
    return true;
  });
});
