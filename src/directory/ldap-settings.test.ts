/**
 * The settings' filter check answers as ldapts's parser does, without loading it: the estate file is
 * checked by ldap-settings.ts, the filter is then parsed by ldapts at search time, and the two must agree.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FilterParser } from 'ldapts';
import { isLdapFilter, ldapDirectorySchema } from './ldap-settings.ts';

const byLdapts = (f: string): boolean => {
  try {
    FilterParser.parseString(f);
    return true;
  } catch {
    return false;
  }
};

const written = [
  '(!(userAccountControl:1.2.840.113556.1.4.803:=2))',
  '(objectClass=user)',
  '(&(objectClass=user)(mail=*))',
  '(|(mail=a@b)(proxyAddresses=smtp:a@b))',
  '(cn=Bob*)',
  '(cn=*o*b*)',
  '(cn=\\2a)',
  '(cn=\\2)',
  '(cn=\\zz)',
  '(cn=a(b)',
  '(cn>=5)',
  '(cn<=5)',
  '(cn~=bob)',
  '(cn:=bob)',
  '(:dn:2.4.6.8.10:=Dino)',
  '(cn:dn:=bob)',
  '(cn:rule:x:=bob)',
  '(cn:rule:x)',
  '(cn)',
  '(=bob)',
  '(&)',
  '(|)',
  '(!)',
  '(&(a=b)',
  '(!(a=b)x',
  '(a=b))',
  '(a=b)(c=d)',
  'a=b',
  '',
  '()',
  '((a=b))',
  '(a=b',
  '(&(a=b)(c=d)))',
  '(&(a=b)x)',
  '(!(a=b))',
  '(!!(a=b))',
];

test('isLdapFilter accepts exactly what ldapts parses, on filters as written', () => {
  for (const f of written) assert.equal(isLdapFilter(f), byLdapts(f), f);
});

test('isLdapFilter accepts exactly what ldapts parses, on generated filters', () => {
  // A fixed-seed generator (xorshift) over the characters that matter to the grammar: the same cases each run.
  let seed = 0x2545f491;
  const next = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const alphabet = [
    '(',
    ')',
    '&',
    '|',
    '!',
    '=',
    '*',
    ':',
    '<',
    '>',
    '~',
    '\\',
    'a',
    'cn',
    '2a',
    'dn',
    '-',
    ' ',
  ];
  for (let i = 0; i < 20_000; i++) {
    const length = 1 + next(14);
    let f = '';
    for (let j = 0; j < length; j++) f += alphabet[next(alphabet.length)];
    assert.equal(isLdapFilter(f), byLdapts(f), f);
  }
});

test('a userFilter the parser rejects is reported by the schema, at mapping.userFilter', () => {
  const settings = {
    url: 'ldaps://dc1.o365info.local',
    baseDn: 'CN=Users,DC=o365info,DC=local',
    bindDn: 'CN=svc-coexist,CN=Users,DC=o365info,DC=local',
    bindPasswordEnv: 'COEXIST_LDAP_PASSWORD',
  };
  assert.ok(ldapDirectorySchema.safeParse({ ...settings, mapping: { userFilter: '(mail=*)' } }).success);
  const bad = ldapDirectorySchema.safeParse({ ...settings, mapping: { userFilter: '(mail=*' } });
  assert.ok(!bad.success);
  assert.deepEqual(
    bad.error.issues.map((i) => i.path.join('.')),
    ['mapping.userFilter'],
  );
});
