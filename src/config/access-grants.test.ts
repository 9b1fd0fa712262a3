/**
 * Access grants in the estate file (docs/security.md "Mailbox access"): `fullAccess` and `delegates` name
 * other users of the estate by any of their identities, and the Estate carries their primary addresses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { EstateConfigError } from './config-error.ts';
import { parseEstate } from './load-estate.ts';

const demo = readFileSync(new URL('../../examples/o365info.yaml', import.meta.url), 'utf8');
/** The demo estate with bob's grant line replaced by `grants`. */
const withGrants = (grants: string): string => {
  const line = '    fullAccess: [carol@o365info.com]\n';
  assert.ok(demo.includes(line), 'the demo estate grants carol full access to bob');
  return demo.replace(line, grants);
};

describe('access grants in the estate file', () => {
  test('any identity of a trustee becomes its primary address', () => {
    const { index } = parseEstate(
      withGrants(
        "    fullAccess: [carol.white@o365info.com, 'O365INFO\\diego']\n    delegates: [alice@o365info.local]\n",
      ),
      'grants.yaml',
    );
    const bob = index.user('bob@o365info.com');
    assert.deepEqual(bob?.fullAccess, ['carol@o365info.com', 'diego@o365info.com']);
    assert.deepEqual(bob?.delegates, ['alice@o365info.com']);
    assert.equal(index.user('alice@o365info.com')?.fullAccess, undefined, 'no grant: owner only');
  });

  for (const [what, grants, code] of [
    ['a trustee who is no user', '    fullAccess: [nobody@o365info.com]\n', 'CX_CONFIG_REFERENCE'],
    [
      'the owner granted their own mailbox',
      '    delegates: [bob.jones@o365info.com]\n',
      'CX_CONFIG_INCONSISTENT',
    ],
  ] as const) {
    test(`${what} is a problem with its path`, () => {
      assert.throws(
        () => parseEstate(withGrants(grants), 'grants.yaml'),
        (err: unknown) =>
          err instanceof EstateConfigError &&
          err.problems.some((p) => p.code === code && /users\[1\]\.(fullAccess|delegates)\[0\]/.test(p.path)),
      );
    });
  }
});
