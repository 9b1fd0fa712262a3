/**
 * The ApplicationImpersonation role in the estate file (docs/security.md "Mailbox access"):
 * `applicationImpersonation` on a service account's entry, `all` or a scope naming users by any of their
 * identities; the Estate carries `all` or the scope's primary addresses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { EstateConfigError } from './config-error.ts';
import { parseEstate } from './load-estate.ts';

const demo = readFileSync(new URL('../../examples/o365info.yaml', import.meta.url), 'utf8');
/** The demo estate with svc-crm's scope line replaced by `line`. */
const withScope = (line: string): string => {
  const scope = '    applicationImpersonation: [alice@o365info.com, bob@o365info.com]\n';
  assert.ok(demo.includes(scope), 'the demo estate scopes svc-crm to alice and bob');
  return demo.replace(scope, line);
};

const problemsOf = (text: string): { code: string; path: string }[] => {
  try {
    parseEstate(text, 'impersonation.yaml');
  } catch (err) {
    if (err instanceof EstateConfigError) return err.problems.map((p) => ({ code: p.code, path: p.path }));
    throw err;
  }
  return [];
};

describe('applicationImpersonation in the estate file', () => {
  test('the demo estate: svc-archive over every mailbox, svc-crm over alice and bob, no one else', () => {
    const { index } = parseEstate(demo, 'o365info.yaml');
    assert.equal(index.user('svc-archive@o365info.com')?.impersonation, 'all');
    assert.deepEqual(index.user('svc-crm@o365info.com')?.impersonation, [
      'alice@o365info.com',
      'bob@o365info.com',
    ]);
    for (const u of ['alice', 'bob', 'carol', 'diego'])
      assert.equal(index.user(`${u}@o365info.com`)?.impersonation, undefined, u);
  });

  test('a scope names users by alias, UPN or DOMAIN\\user; the Estate holds primary addresses, once each', () => {
    const { index } = parseEstate(
      withScope(
        "    applicationImpersonation: [carol.white@o365info.com, 'O365INFO\\diego', diego@o365info.local]\n",
      ),
      'impersonation.yaml',
    );
    assert.deepEqual(index.user('svc-crm@o365info.com')?.impersonation, [
      'carol@o365info.com',
      'diego@o365info.com',
    ]);
  });

  test('a scope naming no user of the estate is a problem with its path', () => {
    assert.deepEqual(
      problemsOf(withScope('    applicationImpersonation: [alice@o365info.com, nobody@o365info.com]\n')),
      [{ code: 'CX_CONFIG_REFERENCE', path: 'users[5].applicationImpersonation[1]' }],
    );
  });

  test('anything but all or a non-empty list is refused by the schema', () => {
    for (const bad of ['everyone', '[]', 'true']) {
      const problems = problemsOf(withScope(`    applicationImpersonation: ${bad}\n`));
      assert.ok(
        problems.some((p) => p.path.startsWith('users[5].applicationImpersonation')),
        `${bad}: ${JSON.stringify(problems)}`,
      );
    }
  });
});
