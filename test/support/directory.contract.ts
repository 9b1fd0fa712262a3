/**
 * The contract every `Directory` keeps (issue 5), as node:test cases over the o365info estate
 * (examples/o365info.yaml): the embedded directory and the LDAP one run the same cases, so a lookup or a
 * password check answers the same whichever directory the estate uses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../src/config/index.ts';
import type { EstateIndex, Mailbox } from '../../src/core/estate/estate-index.ts';
import type { User } from '../../src/core/estate/estate.ts';
import type { Directory } from '../../src/directory/directory.ts';
import { accessOf, holdsImpersonationRole, mayImpersonate } from '../../src/directory/directory.ts';

/** The estate the contract is written against. */
export const contractEstateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

/** The demo password of every o365info user (the comment at the head of examples/o365info.yaml). */
export const demoPassword = 'Coexist-Lab-2026!';

/** The o365info estate, indexed. */
export function contractEstateIndex(): EstateIndex {
  return parseEstate(readFileSync(contractEstateFile, 'utf8'), 'examples/o365info.yaml').index;
}

/** Upper-case every other letter: a spelling no one stored. */
const mixedCase = (s: string): string =>
  [...s].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c.toLowerCase())).join('');

const sortedLower = (xs: readonly string[]): string[] => xs.map((x) => x.toLowerCase()).sort();

/** The mailbox found is the estate's mailbox of `user`: same person, and the estate's own server and site. */
function assertMailboxOf(actual: Mailbox | undefined, user: User, index: EstateIndex, asked: string): void {
  assert.ok(actual, `no mailbox for ${asked}`);
  const expected = index.mailbox(user.address);
  assert.ok(expected, `the estate has a mailbox for ${user.address}`);
  assert.equal(actual.address.toLowerCase(), user.address.toLowerCase(), `address of ${asked}`);
  assert.equal(actual.displayName, user.displayName, `display name of ${asked}`);
  assert.equal(actual.server.name, expected.server.name, `server of ${asked}`);
  assert.equal(actual.server.version, expected.server.version, `version of ${asked}`);
  assert.equal(actual.server.fqdn, expected.server.fqdn, `server FQDN of ${asked}`);
  assert.equal(actual.site.name, expected.site.name, `site of ${asked}`);
  assert.equal(actual.family, expected.family, `version family of ${asked}`);
  assert.deepEqual(sortedLower(actual.user.aliases), sortedLower(user.aliases), `aliases of ${asked}`);
  if (user.login !== undefined) assert.equal(actual.user.login?.toLowerCase(), user.login.toLowerCase());
  // The access grants on the mailbox, as the trustees' primary addresses (docs/security.md "Mailbox access").
  assert.deepEqual(
    sortedLower(actual.user.fullAccess ?? []),
    sortedLower(user.fullAccess ?? []),
    `full access to ${asked}`,
  );
  assert.deepEqual(
    sortedLower(actual.user.delegates ?? []),
    sortedLower(user.delegates ?? []),
    `delegates of ${asked}`,
  );
  // The ApplicationImpersonation role its user holds: every mailbox, a scope (primary addresses), or none.
  const role = (r: User['impersonation']): string | string[] | undefined =>
    r === 'all' || r === undefined ? r : sortedLower(r);
  assert.deepEqual(role(actual.user.impersonation), role(user.impersonation), `impersonation of ${asked}`);
}

/** Register the contract's cases for one directory, made once by `make` and closed after them. */
export function directoryContract(
  name: string,
  make: () => Promise<{ directory: Directory; close(): Promise<void> }>,
): void {
  const index = contractEstateIndex();
  const users = index.estate.users;
  const withUpn = users.filter((u) => u.upn !== undefined);
  const withLogin = users.filter((u) => u.login !== undefined);
  const withAliases = users.filter((u) => u.aliases.length > 0);

  describe(`Directory contract: ${name}`, () => {
    let made: { directory: Directory; close(): Promise<void> } | undefined;
    const directory = (): Directory => {
      assert.ok(made, 'the directory was made');
      return made.directory;
    };
    before(async () => {
      made = await make();
    });
    after(async () => {
      await made?.close();
    });

    test('the estate has the users the contract needs', () => {
      assert.ok(users.length >= 4, 'demo users');
      assert.ok(withAliases.length > 0, 'users with secondary addresses');
      assert.ok(withLogin.length > 0, 'users with DOMAIN\\login');
    });

    test('every user by primary address, with the estate’s server, version and site', async () => {
      for (const u of users) assertMailboxOf(await directory().findMailbox(u.address), u, index, u.address);
    });

    test('access grants: the owner, a user granted full access, and no one else', async () => {
      const granted = users.filter((u) => (u.fullAccess ?? []).length > 0);
      assert.ok(granted.length > 0, 'the contract estate grants someone full access to a mailbox');
      for (const owner of granted) {
        const mailbox = await directory().findMailbox(owner.address);
        assert.ok(mailbox);
        const ownerCaller = await directory().authenticate(owner.address, demoPassword);
        assert.ok(ownerCaller);
        assert.equal(accessOf(ownerCaller, mailbox), 'owner');
        for (const u of users) {
          if (u.address === owner.address) continue;
          const caller = await directory().authenticate(u.login ?? u.address, demoPassword);
          assert.ok(caller, u.address);
          const expected = owner.fullAccess?.includes(u.address) ? 'full-access' : 'none';
          assert.equal(accessOf(caller, mailbox), expected, `${u.address} on ${owner.address}`);
          // Grants are one way: the owner has no access to the trustee's mailbox.
          const theirs = await directory().findMailbox(u.address);
          assert.ok(theirs);
          if (!(u.fullAccess ?? []).includes(owner.address))
            assert.equal(accessOf(ownerCaller, theirs), 'none', `${owner.address} on ${u.address}`);
        }
      }
    });

    test('ApplicationImpersonation: over every mailbox, over a scope, and no one else', async () => {
      const all = users.filter((u) => u.impersonation === 'all');
      const scoped = users.filter((u) => Array.isArray(u.impersonation));
      assert.ok(all.length > 0 && scoped.length > 0, 'the contract estate has both kinds of role holders');
      const mailboxes = await Promise.all(users.map((u) => directory().findMailbox(u.address)));
      for (const u of users) {
        const caller = await directory().authenticate(u.login ?? u.address, demoPassword);
        assert.ok(caller, u.address);
        assert.equal(holdsImpersonationRole(caller), u.impersonation !== undefined, u.address);
        users.forEach((target, i) => {
          const mailbox = mailboxes[i];
          assert.ok(mailbox, target.address);
          const expected =
            u.impersonation === 'all' ||
            (Array.isArray(u.impersonation) && u.impersonation.includes(target.address));
          assert.equal(mayImpersonate(caller, mailbox), expected, `${u.address} as ${target.address}`);
        });
      }
    });

    test('every user by each secondary address (alias)', async () => {
      for (const u of withAliases) {
        for (const alias of u.aliases) assertMailboxOf(await directory().findMailbox(alias), u, index, alias);
      }
    });

    test('every user by userPrincipalName', async () => {
      assert.ok(withUpn.length > 0, 'the contract estate gives its users UPNs');
      for (const u of withUpn) {
        const upn = u.upn as string;
        assertMailboxOf(await directory().findMailbox(upn), u, index, upn);
      }
    });

    test('every user by DOMAIN\\login', async () => {
      for (const u of withLogin) {
        const login = u.login as string;
        assertMailboxOf(await directory().findMailbox(login), u, index, login);
      }
    });

    test('case does not matter: address, alias and login in upper and mixed case', async () => {
      for (const u of users) {
        const forms = [u.address, ...u.aliases, ...(u.login ? [u.login] : []), ...(u.upn ? [u.upn] : [])];
        for (const form of forms) {
          for (const spelled of [form.toUpperCase(), mixedCase(form)]) {
            assertMailboxOf(await directory().findMailbox(spelled), u, index, spelled);
          }
        }
      }
    });

    test('unknown users and identities that name no one are undefined', async () => {
      const domain = index.estate.domains[0] as string;
      const first = users[0] as User;
      const login = first.login ?? 'O365INFO\\x';
      const netbios = login.slice(0, login.indexOf('\\'));
      const unknown = [
        `nobody@${domain}`,
        `${first.address}.invalid`,
        `${netbios}\\nobody`,
        `OTHERDOMAIN\\${login.slice(login.indexOf('\\') + 1)}`,
        login.slice(login.indexOf('\\') + 1), // a bare login, no domain
        '',
        ' ',
        `${first.address} `,
        `smtp:${first.address}`,
        '*',
        `*@${domain}`,
        `${netbios}\\*`,
        `*)(mail=*`,
        `${first.address})(|(mail=*`,
      ];
      for (const identity of unknown) {
        assert.equal(await directory().findMailbox(identity), undefined, JSON.stringify(identity));
      }
    });

    test('concurrent lookups each get their own answer', async () => {
      const asked = Array.from({ length: 24 }, (_, i) => users[i % users.length] as User);
      const found = await Promise.all(asked.map((u) => directory().findMailbox(u.address)));
      found.forEach((m, i) => assertMailboxOf(m, asked[i] as User, index, (asked[i] as User).address));
    });

    test('authenticate: the right password gives the mailbox, by address, alias and login', async () => {
      for (const u of users) {
        assertMailboxOf(await directory().authenticate(u.address, demoPassword), u, index, u.address);
      }
      const u = withLogin.find((x) => x.aliases.length > 0) ?? (users[0] as User);
      for (const login of [...u.aliases, ...(u.login ? [u.login, mixedCase(u.login)] : [])]) {
        assertMailboxOf(await directory().authenticate(login, demoPassword), u, index, login);
      }
    });

    test('authenticate: a wrong, empty or wrongly-cased password gives undefined', async () => {
      const u = users[0] as User;
      for (const wrong of [
        'wrong',
        '',
        demoPassword.toLowerCase(),
        `${demoPassword} `,
        demoPassword.slice(0, -1),
      ]) {
        assert.equal(
          await directory().authenticate(u.address, wrong),
          undefined,
          `password ${JSON.stringify(wrong)}`,
        );
      }
      const other = users[1] as User;
      assertMailboxOf(
        await directory().authenticate(other.address, demoPassword),
        other,
        index,
        other.address,
      );
    });

    test('authenticate: an unknown user gives undefined, with any password', async () => {
      const domain = index.estate.domains[0] as string;
      for (const login of [`nobody@${domain}`, 'O365INFO\\nobody', '*', `*@${domain}`, '']) {
        assert.equal(await directory().authenticate(login, demoPassword), undefined, JSON.stringify(login));
        assert.equal(await directory().authenticate(login, 'wrong'), undefined, JSON.stringify(login));
      }
    });
  });
}
