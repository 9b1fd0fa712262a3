/**
 * What the lab on Active Directory offers (lab-ad.ts `labAuthentication`, docs/lab.md §5.5), without a DC:
 * Exchange's default Windows authentication on the virtual directories each server has, Basic kept on
 * everywhere, the estate file's own setting winning, and every flow of both example estates unchanged.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../config/index.ts';
import type { EstateIndex } from '../../core/estate/estate-index.ts';
import { protocols } from '../../core/protocols/protocol.ts';
import { traceFlow } from '../../core/routing/flow.ts';
import { labAuthentication, offersWindowsAuth } from './lab-ad.ts';

const load = (name: string, edit: (text: string) => string = (t) => t): EstateIndex => {
  const text = readFileSync(fileURLToPath(new URL(`../../../examples/${name}`, import.meta.url)), 'utf8');
  return parseEstate(edit(text), `examples/${name}`).index;
};

test('the o365info lab on AD: Windows authentication where Exchange has it on, Basic kept everywhere', () => {
  const index = labAuthentication(load('o365info.yaml'));
  const auth = (server: string): unknown => index.server(server)?.authentication;
  const windows = ['basic', 'ntlm', 'negotiate'];
  // A 2007 CAS: its own virtual directories only; Outlook Anywhere with NTLM (Negotiate came with 2013).
  assert.deepEqual(auth('CAS2007-NY'), {
    autodiscover: windows,
    ews: windows,
    rpc: ['basic', 'ntlm'],
    oab: windows,
  });
  assert.deepEqual(auth('CAS2007-LA'), auth('CAS2007-NY'));
  // The 2013 front end and mailbox role (its back end serves every protocol).
  for (const s of ['CAS2013-NY', 'MBX2013-NY']) {
    assert.deepEqual(auth(s), {
      autodiscover: windows,
      ews: windows,
      rpc: windows,
      mapi: windows,
      oab: windows,
    });
  }
  // 2007 mailbox servers have no virtual directory (the CAS hands on to the store).
  assert.equal(auth('MBX2007-NY'), undefined);
  for (const server of index.estate.sites.flatMap((s) => s.servers)) {
    assert.equal(offersWindowsAuth(server), !server.name.startsWith('MBX2007'), server.name);
    for (const p of ['activesync', 'owa', 'ecp'] as const)
      assert.equal(server.authentication?.[p], undefined);
    for (const methods of Object.values(server.authentication ?? {})) assert.ok(methods?.includes('basic'));
  }
});

test("the estate file's own authentication wins over the lab's defaults", () => {
  const index = labAuthentication(
    load('o365info.yaml', (t) =>
      t
        .replace(
          '        databases: [DB2007-MAD]',
          '        databases: [DB2007-MAD]\n        authentication: {}',
        )
        .replace(
          '      - name: CAS2007-MAD\n        fqdn: cas2007-mad.o365info.local\n        version: 2007\n        roles: [cas]\n',
          '      - name: CAS2007-MAD\n        fqdn: cas2007-mad.o365info.local\n        version: 2007\n        roles: [cas]\n        authentication: { ews: [basic] }\n',
        ),
    ),
  );
  assert.deepEqual(index.server('CAS2007-MAD')?.authentication, { ews: ['basic'] });
  assert.equal(offersWindowsAuth(index.server('CAS2007-MAD') as never), false);
});

test('routing does not change: every flow of both example estates is the same with the lab on AD', () => {
  for (const name of ['o365info.yaml', 'o365info-2010.yaml']) {
    const plain = load(name);
    const onAd = labAuthentication(plain);
    let flows = 0;
    for (const user of plain.estate.users) {
      for (const protocol of protocols) {
        for (const client of ['internal', 'external'] as const) {
          const req = { user: user.address, protocol, client };
          assert.deepEqual(
            traceFlow(onAd, req),
            traceFlow(plain, req),
            `${name} ${user.address} ${protocol} ${client}`,
          );
          flows++;
        }
      }
    }
    assert.ok(flows > 0);
  }
});
