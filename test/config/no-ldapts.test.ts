/**
 * Reading an estate file never loads the LDAP client: `coexist trace`, `check` and the lab read estates
 * and must not pay for ldapts (nor fail without it). A fresh Node process registers a module hook that
 * refuses any module of ldapts, loads estates through src/config (one with a `directory.ldap` section
 * and a user filter, so the settings' checks run too), and also looks at CommonJS's cache. A second
 * process importing the LDAP directory shows the hook does catch ldapts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const demo = join(root, 'examples/o365info.yaml');

/** Refuses ldapts by name or by path, after the loaders before it (tsx) resolved the specifier. */
const hook = `
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (specifier === 'ldapts' || specifier.startsWith('ldapts/') || /[\\\\/]node_modules[\\\\/]ldapts[\\\\/]/.test(resolved.url))
    throw new Error('ldapts loaded: ' + resolved.url + ' (from ' + context.parentURL + ')');
  return resolved;
}`;

/** Run `body` (an async function's text, given `imp` to import a repository file) with the hook. */
function runWithHook(body: string): { status: number | null; stderr: string; stdout: string } {
  const script = `
import { register, createRequire } from 'node:module';
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});
const imp = (path) => import(new URL(path, ${JSON.stringify(pathToFileURL(root).href)}).href);
${body}
const cached = Object.keys(createRequire(import.meta.url).cache).filter((p) => /[\\\\/]ldapts[\\\\/]/.test(p));
if (cached.length > 0) throw new Error('ldapts loaded: ' + cached.join(', '));
console.log('no ldapts');
`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: child.status, stderr: child.stderr, stdout: child.stdout };
}

test('loading an estate file (with a directory.ldap section) does not load ldapts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coexist-no-ldapts-'));
  const withLdap = join(dir, 'estate.yaml');
  const section = [
    'directory:',
    '  ldap:',
    '    url: ldaps://dc1.o365info.local',
    '    baseDn: CN=Users,DC=o365info,DC=local',
    '    bindDn: CN=svc-coexist,CN=Users,DC=o365info,DC=local',
    '    bindPasswordEnv: COEXIST_LDAP_PASSWORD',
    '    mapping:',
    "      userFilter: '(!(userAccountControl:1.2.840.113556.1.4.803:=2))'",
  ].join('\n');
  await writeFile(
    withLdap,
    (await readFile(demo, 'utf8')).replace(/^namespaces:$/m, `${section}\nnamespaces:`),
  );
  const r = runWithHook(`
const { loadEstate } = await imp('src/config/index.ts');
const plain = await loadEstate(${JSON.stringify(demo)});
if (plain.index.estate.name !== 'o365info') throw new Error('not loaded');
const ldap = await loadEstate(${JSON.stringify(withLdap)});
if (!ldap.settings.directory?.ldap?.mapping?.userFilter) throw new Error('no directory.ldap settings');
`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'no ldapts');
});

test('the same check sees ldapts when the LDAP directory is imported', () => {
  const r = runWithHook(`await imp('src/directory/ldap-directory.ts');`);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /ldapts loaded: .*from .*ldap-directory\.ts/);
});
