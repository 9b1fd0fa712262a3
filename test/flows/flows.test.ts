/**
 * The connectivity flows of docs/flows.md, printed by `coexist trace` and compared with golden files that a
 * reviewer can read against the article. Each flow of the article also has its path and step count
 * asserted here, independently of the golden text, so a golden refreshed by mistake cannot hide a change.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli } from '../support/run-cli.ts';
import { assertGolden } from '../support/golden.ts';
import type { Flow } from '../../src/core/routing/flow.ts';

const estates = {
  o365info: 'examples/o365info.yaml',
  'o365info-2010': 'examples/o365info-2010.yaml',
} as const;

interface FlowCase {
  readonly id: string;
  readonly estate: keyof typeof estates;
  readonly user: string;
  readonly protocol: string;
  readonly client: 'internal' | 'external';
  readonly namespace?: string;
  readonly policy?: string;
  /** From docs/flows.md: the servers the request passes through, and the number of numbered steps. */
  readonly path?: readonly string[];
  readonly steps?: number;
  readonly outcome?: Flow['outcome']['kind'];
}

async function trace(c: FlowCase, format: 'text' | 'json'): Promise<string> {
  const args = [
    'trace',
    '--estate',
    estates[c.estate],
    '--user',
    c.user,
    '--protocol',
    c.protocol,
    '--client',
    c.client,
    '--format',
    format,
  ];
  if (c.namespace) args.push('--namespace', c.namespace);
  if (c.policy) args.push('--policy', c.policy);
  const r = await runCli(args);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  return r.stdout;
}

const articleFlows: readonly FlowCase[] = [
  {
    id: 'EAS-1',
    estate: 'o365info',
    user: 'bob@o365info.com',
    protocol: 'activesync',
    client: 'external',
    path: ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY'],
    steps: 9,
    outcome: 'answered',
  },
  {
    id: 'EAS-2',
    estate: 'o365info',
    user: 'carol@o365info.com',
    protocol: 'activesync',
    client: 'external',
    path: ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-LA', 'MBX2007-LA'],
    steps: 9,
    outcome: 'answered',
  },
  {
    id: 'EAS-3A',
    estate: 'o365info',
    user: 'diego@o365info.com',
    protocol: 'activesync',
    client: 'external',
    path: ['CAS2013-NY', 'CAS2007-MAD', 'MBX2007-MAD'],
    steps: 7,
    outcome: 'answered',
  },
  {
    id: 'EAS-3B',
    estate: 'o365info',
    user: 'diego@o365info.com',
    protocol: 'activesync',
    client: 'external',
    namespace: 'europe.mail.o365info.com',
    path: ['CAS2007-MAD', 'MBX2007-MAD'],
    outcome: 'answered',
  },
  {
    id: 'EAS-legacy',
    estate: 'o365info',
    user: 'diego@o365info.com',
    protocol: 'activesync',
    client: 'external',
    policy: 'activesyncCrossSite=redirect-451',
    path: ['CAS2013-NY', 'CAS2007-MAD', 'MBX2007-MAD'],
    outcome: 'answered',
  },
  {
    id: 'EWS-1',
    estate: 'o365info',
    user: 'bob@o365info.com',
    protocol: 'ews',
    client: 'internal',
    path: ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY'],
    outcome: 'answered',
  },
  {
    id: 'EWS-2',
    estate: 'o365info',
    user: 'bob@o365info.com',
    protocol: 'ews',
    client: 'external',
    path: ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY'],
    steps: 7,
    outcome: 'answered',
  },
];

describe('flows of docs/flows.md', () => {
  for (const c of articleFlows) {
    test(`${c.id}: ${c.user} ${c.protocol} (${c.client}${c.namespace ? ` via ${c.namespace}` : ''}${c.policy ? `, ${c.policy}` : ''})`, async () => {
      assertGolden(`flows/${c.id}.txt`, await trace(c, 'text'));
      const flow = JSON.parse(await trace(c, 'json')) as Flow;
      assert.deepEqual(flow.path, c.path);
      if (c.steps !== undefined) assert.equal(flow.steps.length, c.steps);
      assert.equal(flow.outcome.kind, c.outcome);
    });
  }
});

describe('docs/flows.md EAS-3B and EWS-1: the front end is not in the path', () => {
  test('EAS-3B: the device talks to CAS2007-MAD directly', async () => {
    const flow = JSON.parse(await trace(articleFlows[3] as FlowCase, 'json')) as Flow;
    assert.equal(flow.frontEndInvolved, false);
  });
  test('EWS-1: after Autodiscover, EWS goes to the legacy namespace, not to CAS2013-NY', async () => {
    const flow = JSON.parse(await trace(articleFlows[5] as FlowCase, 'json')) as Flow;
    const connects = flow.steps.filter((s) => s.kind === 'connect');
    assert.deepEqual(
      connects.map((s) => [s.to, s.url]),
      [
        ['CAS2013-NY', 'https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml'],
        ['CAS2007-NY', 'https://legacy.mail.o365info.com/EWS/Exchange.asmx'],
      ],
    );
  });
  test('EAS-legacy: CAS2013-NY answers 451 with X-MS-Location on the regional namespace', async () => {
    const flow = JSON.parse(await trace(articleFlows[4] as FlowCase, 'json')) as Flow;
    const redirect = flow.steps.find((s) => s.kind === 'redirect');
    assert.equal(redirect?.from, 'CAS2013-NY');
    assert.equal(redirect?.url, 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync');
    assert.match(redirect?.text ?? '', /HTTP 451 and X-MS-Location/);
  });
});

/** Autodiscover, OWA, Outlook Anywhere and MAPI for each demo user, on both estates, from both client locations. */
const users = ['alice', 'bob', 'carol', 'diego'] as const;
const perUser: FlowCase[] = [];
for (const estate of Object.keys(estates) as (keyof typeof estates)[]) {
  for (const u of users) {
    for (const protocol of ['autodiscover', 'owa', 'rpc', 'mapi', 'ews', 'oab', 'ecp'] as const) {
      for (const client of ['external', 'internal'] as const) {
        perUser.push({
          id: `${estate}/${protocol}-${u}-${client}`,
          estate,
          user: `${u}@o365info.com`,
          protocol,
          client,
        });
      }
    }
    perUser.push({
      id: `${estate}/activesync-${u}-external`,
      estate,
      user: `${u}@o365info.com`,
      protocol: 'activesync',
      client: 'external',
    });
  }
}

describe('every demo user and protocol (golden)', () => {
  for (const c of perUser) {
    test(c.id, async () => {
      assertGolden(`flows/${c.id}.txt`, await trace(c, 'text'));
    });
  }
});
