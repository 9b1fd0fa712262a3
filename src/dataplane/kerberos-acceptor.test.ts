import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KerberosAcceptor, KerberosAcceptorError, parseAnswer } from './kerberos-acceptor.ts';

test("the helper's answers: OK with token and user, the older AF form, refusals", () => {
  assert.deepEqual(
    parseAnswer('OK token=oRQwEqADCgEAoQsGCSqGSIb3EgECAg== user=alice@O365INFO.LOCAL group=AQUA'),
    {
      kind: 'done',
      account: 'alice@O365INFO.LOCAL',
      token: Buffer.from('oRQwEqADCgEAoQsGCSqGSIb3EgECAg==', 'base64'),
    },
  );
  assert.deepEqual(parseAnswer('AF oRQw alice@O365INFO.LOCAL'), {
    kind: 'done',
    account: 'alice@O365INFO.LOCAL',
    token: Buffer.from('oRQw', 'base64'),
  });
  assert.deepEqual(parseAnswer('OK user=bob%40O365INFO.LOCAL'), {
    kind: 'done',
    account: 'bob@O365INFO.LOCAL',
  });
  for (const line of [
    'BH gss_accept_sec_context() failed: Request is a replay',
    'ERR',
    'NA',
    'OK token=abc',
    'OK user=HTTP/mail.o365info.com@O365INFO.LOCAL',
    'OK user=no-realm',
    '',
  ])
    assert.equal(parseAnswer(line).kind, 'failed', line);
});

test('a keytab that cannot be read, a helper that is missing: KerberosAcceptorError naming it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coexist-kerberos-'));
  try {
    assert.throws(() => new KerberosAcceptor({ keytab: join(dir, 'none') }), KerberosAcceptorError);
    const keytab = join(dir, 'k');
    await writeFile(keytab, '');
    assert.throws(
      () => new KerberosAcceptor({ keytab, helperPath: join(dir, 'no-helper') }),
      /the acceptor .*no-helper is missing/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a helper that ends without answering: the step throws (the caller answers 503), the next spawns anew', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coexist-kerberos-'));
  const keytab = join(dir, 'k');
  await writeFile(keytab, '');
  const acceptor = new KerberosAcceptor({ keytab, helperPath: '/bin/false' });
  try {
    for (let i = 0; i < 2; i++) {
      const h = acceptor.begin();
      await assert.rejects(h.step(Buffer.from('YIIB')), /Kerberos helper/);
      h.close();
    }
  } finally {
    await acceptor.close();
    await rm(dir, { recursive: true, force: true });
  }
});
