/**
 * The verdict on an EWS ExchangeImpersonation header (docs/security.md "Mailbox access"), over the demo
 * estate's directory: svc-archive holds ApplicationImpersonation over every mailbox, svc-crm over alice
 * and bob, and no one else holds it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseEstate } from '../config/load-estate.ts';
import type { Mailbox } from '../core/estate/estate-index.ts';
import type { Directory } from '../directory/directory.ts';
import { DirectoryUnavailableError, FileDirectory } from '../directory/directory.ts';
import type { ConnectingSid } from './contracts.ts';
import { decideImpersonation } from './impersonation.ts';

const { index } = parseEstate(
  readFileSync(new URL('../../examples/o365info.yaml', import.meta.url), 'utf8'),
  'o365info.yaml',
);
const directory = new FileDirectory(index);
const mailbox = (address: string): Mailbox => {
  const m = index.mailbox(address);
  assert.ok(m, address);
  return m;
};
const smtp = (value: string): ConnectingSid => ({ kind: 'PrimarySmtpAddress', value });

describe('decideImpersonation', () => {
  test('a caller without the role: no-role, whether the name exists or not, even its own', async () => {
    for (const target of [
      smtp('bob@o365info.com'),
      smtp('nobody@o365info.com'),
      smtp('alice@o365info.com'),
    ]) {
      const verdict = await decideImpersonation(
        directory,
        mailbox('alice@o365info.com'),
        mailbox('bob@o365info.com'),
        target,
      );
      assert.deepEqual(verdict, { kind: 'no-role' }, target.value);
    }
  });

  test('the role over every mailbox: allowed for the routed mailbox, by each form that names it', async () => {
    for (const target of [
      smtp('bob@o365info.com'),
      { kind: 'SmtpAddress', value: 'Bob.Jones@o365info.com' },
      { kind: 'PrincipalName', value: ' bob@o365info.local ' },
    ] as const) {
      assert.deepEqual(
        await decideImpersonation(
          directory,
          mailbox('svc-archive@o365info.com'),
          mailbox('bob@o365info.com'),
          target,
        ),
        { kind: 'allowed', mailbox: { address: 'bob@o365info.com', displayName: 'Bob' } },
        target.value,
      );
    }
  });

  test('unknown names, an empty one and SIDs: unknown', async () => {
    for (const target of [
      smtp('nobody@o365info.com'),
      smtp('   '),
      { kind: 'SID', value: 'S-1-5-21-1004336348-1177238915-682003330-1105' },
    ] as const) {
      assert.deepEqual(
        await decideImpersonation(
          directory,
          mailbox('svc-archive@o365info.com'),
          mailbox('alice@o365info.com'),
          target,
        ),
        { kind: 'unknown' },
        target.value,
      );
    }
  });

  test('a scoped role: out-of-scope outside it; not-anchor for a mailbox in scope but not routed to', async () => {
    const crm = mailbox('svc-crm@o365info.com');
    const carol = mailbox('carol@o365info.com');
    assert.deepEqual(await decideImpersonation(directory, crm, carol, smtp('carol@o365info.com')), {
      kind: 'out-of-scope',
    });
    assert.deepEqual(
      await decideImpersonation(directory, crm, mailbox('alice@o365info.com'), smtp('bob@o365info.com')),
      { kind: 'not-anchor' },
    );
    assert.equal(
      (await decideImpersonation(directory, crm, mailbox('alice@o365info.com'), smtp('alice@o365info.com')))
        .kind,
      'allowed',
    );
  });

  test('a directory that cannot be asked: unavailable, never allowed', async () => {
    const down: Directory = {
      findMailbox: () => Promise.reject(new DirectoryUnavailableError('LDAP down')),
      authenticate: () => Promise.reject(new DirectoryUnavailableError('LDAP down')),
    };
    assert.deepEqual(
      await decideImpersonation(
        down,
        mailbox('svc-archive@o365info.com'),
        mailbox('bob@o365info.com'),
        smtp('bob@o365info.com'),
      ),
      { kind: 'unavailable' },
    );
  });
});
