import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEstate } from './load-estate.ts';
import { readFileSync } from 'node:fs';

test('references in any case resolve to the names as declared', () => {
  const text = readFileSync(new URL('../../examples/o365info.yaml', import.meta.url), 'utf8')
    .replace('server: CAS2007-MAD }', 'server: cas2007-mad }')
    .replace('mailbox: { database: DB2013-NY }', 'mailbox: { server: mbx2013-NY }');
  const { estate } = parseEstate(text, 'o365info.yaml');
  assert.equal(estate.namespaces.find((n) => n.kind === 'regional')?.server, 'CAS2007-MAD');
  assert.equal(estate.users.find((u) => u.address === 'alice@o365info.com')?.mailboxServer, 'MBX2013-NY');
});
