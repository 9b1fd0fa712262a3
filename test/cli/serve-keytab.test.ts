/**
 * `coexist serve --keytab` (docs/operations.md "Kerberos"): a keytab that cannot be read is a usage error naming
 * the file, before anything listens. The acceptor itself is proven with the lab's real KDC
 * (test/e2e/kerberos-lab.e2e.test.ts, test/security/kerberos-edge.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/run-cli.ts';
import { demoEstate, loopbackListeners } from '../support/serve-process.ts';

test('serve --keytab with a keytab that is not there: exit 2, the option and the file named', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coexist-keytab-'));
  try {
    const missing = join(dir, 'front-ends.keytab');
    const r = await runCli([
      'serve',
      '--estate',
      demoEstate,
      '--as',
      'CAS2013-NY',
      ...loopbackListeners,
      '--allow-http',
      '--workers',
      '1',
      '--keytab',
      missing,
    ]);
    assert.equal(r.code, 2);
    assert.ok(
      r.stderr.includes(`--keytab ${missing}: Kerberos: the keytab ${missing} cannot be read`),
      r.stderr,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
