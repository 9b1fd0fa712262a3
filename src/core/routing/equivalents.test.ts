/**
 * Equivalent servers in the engine and the trace (docs/config.md "Equivalent servers"): a proxy to a server that
 * has others of its version and role in its site lists them, each at its own URL of the same kind; the trace
 * shows them under the step in every format; an estate with one server per site, version and role has none.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { estateFileSchema } from '../../config/estate-schema.ts';
import { toEstate } from '../../config/to-estate.ts';
import type { EstateIndex } from '../estate/estate-index.ts';
import { indexEstate } from '../estate/estate-index.ts';
import { protocols } from '../protocols/protocol.ts';
import { traceFlow } from './flow.ts';
import { renderFlow } from './render-flow.ts';

const root = new URL('../../../', import.meta.url);
const load = (file: string): EstateIndex =>
  indexEstate(toEstate(estateFileSchema.parse(parse(readFileSync(new URL(file, root), 'utf8')))));
const equivalent = load('test/fixtures/estates/equivalent-cas.yaml');
const demo = load('examples/o365info.yaml');

describe('equivalent servers in the trace', () => {
  test('EWS for a 2007 New York mailbox: CAS2007-NY, or CAS2007-NY2, in text, JSON and Mermaid', () => {
    const flow = traceFlow(equivalent, { user: 'gina@o365info.com', protocol: 'ews', client: 'external' });
    const step = flow.steps.find((s) => s.kind === 'proxy');
    assert.equal(step?.to, 'CAS2007-NY');
    assert.deepEqual(step?.alternatives, [
      { server: 'CAS2007-NY2', url: 'https://cas2007-ny2.o365info.local/EWS/Exchange.asmx' },
    ]);
    const text = renderFlow(flow, 'text');
    assert.match(
      text,
      /url: https:\/\/legacy\.mail\.o365info\.com\/EWS\/Exchange\.asmx\n {7}or: CAS2007-NY2 at https:\/\/cas2007-ny2\.o365info\.local\/EWS\/Exchange\.asmx \(equivalent server\)\n/,
    );
    assert.deepEqual(
      (JSON.parse(renderFlow(flow, 'json')) as { steps: { alternatives?: unknown }[] }).steps.find(
        (s) => s.alternatives !== undefined,
      )?.alternatives,
      step?.alternatives,
    );
    assert.match(
      renderFlow(flow, 'mermaid'),
      /proxy https:\/\/legacy\.mail\.o365info\.com\/EWS\/Exchange\.asmx or CAS2007-NY2/,
    );
  });

  test('ActiveSync: the 2013 mailbox server picks among both 2007 CASes (EAS-1 step 4)', () => {
    const flow = traceFlow(equivalent, {
      user: 'gina@o365info.com',
      protocol: 'activesync',
      client: 'external',
    });
    const steps = flow.steps.filter((s) => s.kind === 'proxy');
    assert.deepEqual(
      steps.map((s) => [s.from, s.to, s.alternatives?.map((a) => a.server) ?? []]),
      [
        ['CAS2013-NY', 'MBX2013-NY', []],
        ['MBX2013-NY', 'CAS2007-NY', ['CAS2007-NY2']],
        ['CAS2007-NY', 'MBX2007-NY', []],
      ],
    );
  });

  test('a protocol the second CAS does not publish (Outlook Anywhere, OAB) has no alternative', () => {
    for (const protocol of ['rpc', 'oab'] as const) {
      const flow = traceFlow(equivalent, { user: 'gina@o365info.com', protocol, client: 'external' });
      assert.ok(
        flow.steps.every((s) => s.alternatives === undefined),
        protocol,
      );
    }
  });

  test('two 2013 mailbox servers in New York: either hands a 2007 ActiveSync request on; a 2013 mailbox has its own', () => {
    const text = readFileSync(new URL('test/fixtures/estates/equivalent-cas.yaml', root), 'utf8').replace(
      '      - name: CAS2007-NY\n',
      '      - { name: MBX2013-NY2, fqdn: mbx2013-ny2.o365info.local, version: 2013, roles: [mailbox], databases: [DB2013-NY2] }\n' +
        '      - name: CAS2007-NY\n',
    );
    const index = indexEstate(toEstate(estateFileSchema.parse(parse(text))));
    const eas = traceFlow(index, { user: 'gina@o365info.com', protocol: 'activesync', client: 'external' });
    const first = eas.steps.find((s) => s.kind === 'proxy');
    assert.equal(first?.to, 'MBX2013-NY');
    assert.deepEqual(first?.alternatives, [
      { server: 'MBX2013-NY2', url: 'https://mbx2013-ny2.o365info.local:444/Microsoft-Server-ActiveSync' },
    ]);
    const own = traceFlow(index, { user: 'alice@o365info.com', protocol: 'activesync', client: 'external' });
    assert.ok(own.steps.every((s) => s.alternatives === undefined));
  });

  test('the demo estate (one server per site, version and role): no step of any flow has alternatives', () => {
    for (const user of demo.estate.users)
      for (const protocol of protocols)
        for (const client of ['internal', 'external'] as const) {
          const flow = traceFlow(demo, { user: user.address, protocol, client });
          assert.ok(
            flow.steps.every((s) => s.alternatives === undefined),
            `${user.address} ${protocol} ${client}`,
          );
          assert.doesNotMatch(renderFlow(flow, 'json'), /alternatives/);
        }
  });
});
