/**
 * Unit tests of the pure routing engine `decide(at, input, index, policies)` against the proxy-vs-redirect
 * tables of docs/protocols.md (§2.2 Table A, §2.3 Table B, §2.4, §2.7, §6) and the flows of
 * docs/flows.md, which wins where the two differ. Each test is named after the table row it checks.
 *
 * Estates are read from YAML with the schema and `toEstate` only (not the full loader):
 * - examples/o365info.yaml, examples/o365info-2010.yaml: the demo estates of docs/flows.md;
 * - test/fixtures/estates/mixed.yaml: 2007, 2010 and 2013 mailboxes in five sites (including the 2010 OWA loop case);
 * - test/fixtures/estates/2010-owa-external.yaml: a 2010 CAS with OWA/ECP external URLs on a name of its own;
 * - test/fixtures/estates/two-cas-site.yaml: a site where only the second 2007 CAS is internet-facing.
 *
 * Where the engine disagrees with the spec, the test asserts the spec and is marked `todo`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { estateFileSchema } from '../../config/estate-schema.ts';
import { toEstate } from '../../config/to-estate.ts';
import type { AutodiscoverAnswer } from '../autodiscover/answer.ts';
import type { EstateIndex } from '../estate/estate-index.ts';
import { indexEstate } from '../estate/estate-index.ts';
import type { Policies } from '../estate/estate.ts';
import { hostOfUrl } from '../host.ts';
import type { Protocol } from '../protocols/protocol.ts';
import type { Role, RoutingInput, ServerRef } from './decide.ts';
import { decide } from './decide.ts';
import type { Decision, HopVia, RedirectDecision, RefuseCode } from './decision.ts';
import { roleAfter } from './decision.ts';

// ---------------------------------------------------------------------------------------------------------
// Estates

const root = new URL('../../../', import.meta.url);
const estateFiles = {
  o365info: 'examples/o365info.yaml',
  'o365info-2010': 'examples/o365info-2010.yaml',
  mixed: 'test/fixtures/estates/mixed.yaml',
  '2010-owa-external': 'test/fixtures/estates/2010-owa-external.yaml',
  'two-cas-site': 'test/fixtures/estates/two-cas-site.yaml',
} as const;
type EstateName = keyof typeof estateFiles;

const loaded = new Map<EstateName, EstateIndex>();
function estate(name: EstateName): EstateIndex {
  let index = loaded.get(name);
  if (!index) {
    const text = readFileSync(new URL(estateFiles[name], root), 'utf8');
    index = indexEstate(toEstate(estateFileSchema.parse(parse(text))));
    loaded.set(name, index);
  }
  return index;
}

// ---------------------------------------------------------------------------------------------------------
// Requests

const FRONT_END = 'CAS2013-NY';

/** One call of `decide`: where, for whom, what. */
interface Req {
  readonly estate: EstateName;
  /** The deciding server; default the front end CAS2013-NY. */
  readonly at?: string;
  /** Default `cas`. */
  readonly role?: Role;
  /** Local part (`bob`) or full address; `nobody` is not in any estate. */
  readonly user: string;
  readonly protocol: Protocol;
  /** Default `external`. */
  readonly client?: 'internal' | 'external';
  /** Default: `autodiscover.o365info.com` for Autodiscover at the front end, `mail.o365info.com` for the
   * rest at the front end, the server's own FQDN elsewhere. */
  readonly host?: string;
  readonly policies?: Partial<Policies>;
}

function ref(index: EstateIndex, name: string, role: Role): ServerRef {
  const server = index.server(name);
  assert.ok(server, `${name} is not in the estate`);
  return { server, role };
}

const address = (user: string): string => (user.includes('@') ? user : `${user}@o365info.com`);

function defaultHost(index: EstateIndex, r: Req): string {
  if (r.host !== undefined) return r.host;
  const at = r.at ?? FRONT_END;
  if (at !== FRONT_END) return ref(index, at, 'cas').server.fqdn;
  return r.protocol === 'autodiscover' ? 'autodiscover.o365info.com' : 'mail.o365info.com';
}

function inputOf(index: EstateIndex, r: Req, host: string): RoutingInput {
  return {
    protocol: r.protocol,
    mailbox: index.mailbox(address(r.user)),
    client: r.client ?? 'external',
    host,
  };
}

const policiesOf = (index: EstateIndex, r: Req): Policies => ({ ...index.estate.policies, ...r.policies });

function run(r: Req): Decision {
  const index = estate(r.estate);
  return decide(
    ref(index, r.at ?? FRONT_END, r.role ?? 'cas'),
    inputOf(index, r, defaultHost(index, r)),
    index,
    policiesOf(index, r),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Expectations

type Expect =
  | {
      readonly kind: 'proxy';
      readonly to: string;
      readonly via: HopVia;
      readonly url: string | undefined;
      readonly rule: string;
    }
  | {
      readonly kind: 'redirect';
      readonly status: 302 | 451;
      readonly location: string;
      readonly style: RedirectDecision['style'];
      readonly rule: string;
    }
  | { readonly kind: 'respond'; readonly answer: 'mailbox' | 'autodiscover'; readonly rule: string }
  | { readonly kind: 'refuse'; readonly code: RefuseCode; readonly status: number; readonly rule: string };

/** Virtual directory paths (docs/protocols.md §2.2 "workload (path)"), spelled out here, not taken from the engine. */
const vdir: Readonly<Record<Protocol, string>> = {
  autodiscover: '/Autodiscover/Autodiscover.xml',
  activesync: '/Microsoft-Server-ActiveSync',
  ews: '/EWS/Exchange.asmx',
  owa: '/owa',
  ecp: '/ecp',
  rpc: '/rpc/rpcproxy.dll',
  mapi: '/mapi/emsmdb',
  oab: '/OAB',
};

/** Every server of the test estates is `<name lower-cased>.o365info.local`. */
const fqdn = (server: string): string => `${server.toLowerCase()}.o365info.local`;

/** Proxy to a 2013+ mailbox server's back-end site, `https://<fqdn>:444/<vdir>` (docs/protocols.md §2.1 rule 3). */
const backend = (to: string, p: Protocol, rule: string): Expect => ({
  kind: 'proxy',
  to,
  via: 'backend',
  url: `https://${fqdn(to)}:444${vdir[p]}`,
  rule,
});
const internalUrl = (to: string, url: string, rule: string): Expect => ({
  kind: 'proxy',
  to,
  via: 'internal-url',
  url,
  rule,
});
const externalUrl = (to: string, url: string, rule: string): Expect => ({
  kind: 'proxy',
  to,
  via: 'external-url',
  url,
  rule,
});
/** A legacy CAS passing the request to its mailbox server (no HTTP URL). */
const store = (to: string, rule = 'legacy-cas.same-site.store'): Expect => ({
  kind: 'proxy',
  to,
  via: 'store',
  url: undefined,
  rule,
});
const redirect302 = (
  location: string,
  rule: string,
  style: RedirectDecision['style'] = 'http-302',
): Expect => ({ kind: 'redirect', status: 302, location, style, rule });
const eas451 = (location: string, rule: string): Expect => ({
  kind: 'redirect',
  status: 451,
  location,
  style: 'x-ms-location',
  rule,
});
const respond = (answer: 'mailbox' | 'autodiscover', rule: string): Expect => ({
  kind: 'respond',
  answer,
  rule,
});
/** HTTP status of each refusal, from the error catalogue (core/errors.ts), restated. */
const refuseStatus: Readonly<Partial<Record<RefuseCode, number>>> = {
  CX_ROUTE_UNKNOWN_MAILBOX: 404,
  CX_ROUTE_NOT_OFFERED: 404,
  CX_ROUTE_VERSION_MISMATCH: 421,
  CX_ROUTE_NOT_HERE: 421,
  CX_ROUTE_NO_CAS_IN_SITE: 503,
  CX_ROUTE_NO_URL: 503,
  CX_ROUTE_NO_REDIRECT_TARGET: 503,
};
const refuse = (code: RefuseCode, rule: string): Expect => ({
  kind: 'refuse',
  code,
  status: refuseStatus[code] ?? -1,
  rule,
});

/** The parts of a decision a row asserts, in the shape of `Expect`. */
function project(d: Decision): Expect {
  const rule = d.reasons[0]?.rule ?? '(no reason)';
  switch (d.kind) {
    case 'proxy':
      return { kind: 'proxy', to: d.to.name, via: d.via, url: d.url, rule };
    case 'redirect':
      return { kind: 'redirect', status: d.status, location: d.location, style: d.style, rule };
    case 'respond':
      return { kind: 'respond', answer: d.answer, rule };
    case 'refuse':
      return { kind: 'refuse', code: d.code, status: d.status, rule };
  }
}

function check(d: Decision, e: Expect): void {
  assert.ok(d.reasons.length > 0, 'a decision always carries its reasons');
  for (const r of d.reasons) {
    assert.ok(r.rule !== '' && r.text !== '' && r.source !== '', `incomplete reason ${JSON.stringify(r)}`);
  }
  assert.deepEqual(project(d), e);
  if (d.kind === 'proxy') assert.equal(d.credentials, 'passed-on', 'the credentials travel with the request');
}

interface Row extends Req {
  readonly name: string;
  readonly expect: Expect;
  /** Set when the engine disagrees with the spec: `engine disagrees: <why>`. */
  readonly todo?: string;
}

function rows(list: readonly Row[]): void {
  for (const r of list) {
    test(r.name, r.todo === undefined ? {} : { todo: r.todo }, () => check(run(r), r.expect));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Unfolding: follow proxy decisions hop by hop, as flow.ts does, but asserting on the engine only.

interface Hop {
  readonly from: string;
  readonly to: string;
  readonly via: HopVia;
  readonly url: string | undefined;
  readonly rule: string;
}
const hop = (from: string, to: string, via: HopVia, url: string | undefined, rule: string): Hop => ({
  from,
  to,
  via,
  url,
  rule,
});

function unfold(r: Req): { readonly hops: readonly Hop[]; readonly end: Decision; readonly endAt: string } {
  const index = estate(r.estate);
  const policies = policiesOf(index, r);
  let at = ref(index, r.at ?? FRONT_END, r.role ?? 'cas');
  let host = defaultHost(index, r);
  const hops: Hop[] = [];
  for (let i = 0; i < 8; i++) {
    const d = decide(at, inputOf(index, r, host), index, policies);
    if (d.kind !== 'proxy') return { hops, end: d, endAt: at.server.name };
    assert.ok(d.reasons.length > 0, `hop ${i + 1} has no reasons`);
    hops.push(hop(at.server.name, d.to.name, d.via, d.url, d.reasons[0]?.rule ?? ''));
    at = { server: d.to, role: roleAfter(d.via) };
    host = d.url ? hostOfUrl(d.url) : d.to.fqdn;
  }
  return assert.fail(`more than 8 hops: ${JSON.stringify(hops)}`);
}

function checkChain(r: Req, hops: readonly Hop[], end: Expect, endAt: string): Decision {
  const got = unfold(r);
  assert.deepEqual(got.hops, hops);
  check(got.end, end);
  assert.equal(got.endAt, endAt);
  return got.end;
}

function answerOf(d: Decision): AutodiscoverAnswer {
  assert.equal(d.kind, 'respond');
  assert.ok(d.kind === 'respond' && d.answer === 'autodiscover', 'expected an Autodiscover answer');
  return d.autodiscover;
}

// URLs of the demo estates, spelled out.
const LEGACY = 'https://legacy.mail.o365info.com';
const EUROPE = 'https://europe.mail.o365info.com';
const PRIMARY = 'https://mail.o365info.com';
const APAC = 'https://apac.mail.o365info.com';
const local = (server: string, p: Protocol): string => `https://${fqdn(server)}${vdir[p]}`;

// =========================================================================================================

describe('Table A (docs/protocols.md §2.2): mailbox in the front end site (New York), front end CAS2013-NY', () => {
  describe('Autodiscover', () => {
    test('Table A / Autodiscover / mailbox 2007 -> answered at the front end with the 2007 URLs (§2.8, EWS-1 step 3)', () => {
      const d = run({ estate: 'o365info', user: 'bob', protocol: 'autodiscover' });
      check(d, respond('autodiscover', 'autodiscover.2007.answer'));
      const a = answerOf(d);
      assert.equal(a.describes, 'CAS2007-NY');
      assert.equal(a.mailboxServer, 'MBX2007-NY');
      assert.equal(a.mailboxVersion, 2007);
      // "EWS/OAB/OWA on the legacy namespace externally"
      assert.equal(a.external.ews, `${LEGACY}/EWS/Exchange.asmx`);
      assert.equal(a.external.oab, `${LEGACY}/OAB`);
      assert.equal(a.external.owa, `${LEGACY}/owa`);
      // docs/flows.md "Autodiscover": the mobile schema too
      assert.equal(a.external.activesync, `${LEGACY}/Microsoft-Server-ActiveSync`);
      // §2.1 rule 7: legacy mailboxes never get MAPI/HTTP; 2007 has no ECP
      assert.equal(a.external.mapi, undefined);
      assert.equal(a.internal.mapi, undefined);
      assert.equal(a.external.ecp, undefined);
    });
    test('Autodiscover / diego (Madrid), mobileAutodiscover: regional namespace by default, primary on request (EAS-3B / EAS-3A)', () => {
      const answerOf = (d: Decision) => {
        assert.equal(d.kind, 'respond');
        assert.ok(d.kind === 'respond' && d.answer === 'autodiscover');
        return d;
      };
      const regional = answerOf(run({ estate: 'o365info', user: 'diego', protocol: 'autodiscover' }));
      assert.equal(
        regional.autodiscover.external.activesync,
        'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync',
      );
      const primary = answerOf(
        run({
          estate: 'o365info',
          user: 'diego',
          protocol: 'autodiscover',
          policies: { mobileAutodiscover: 'primary-namespace' },
        }),
      );
      assert.equal(
        primary.autodiscover.external.activesync,
        'https://mail.o365info.com/Microsoft-Server-ActiveSync',
      );
      // Only the mobile URL moves: EWS stays on the site's namespace.
      assert.equal(primary.autodiscover.external.ews, 'https://europe.mail.o365info.com/EWS/Exchange.asmx');
      assert.ok(primary.reasons.some((r) => r.rule === 'autodiscover.mobile.primary-namespace'));
      // Carol's site has no external URL: her answer is on the primary namespace either way, nothing to move.
      const carol = answerOf(
        run({
          estate: 'o365info',
          user: 'carol',
          protocol: 'autodiscover',
          policies: { mobileAutodiscover: 'primary-namespace' },
        }),
      );
      assert.ok(!carol.reasons.some((r) => r.rule === 'autodiscover.mobile.primary-namespace'));
    });
    test('Table A / Autodiscover / mailbox 2007, autodiscoverLegacy=proxy-to-mailbox -> proxy to MBX2013-NY ([4])', () => {
      check(
        run({
          estate: 'o365info',
          user: 'bob',
          protocol: 'autodiscover',
          policies: { autodiscoverLegacy: 'proxy-to-mailbox' },
        }),
        backend('MBX2013-NY', 'autodiscover', 'autodiscover.2007.proxy-mailbox'),
      );
    });
    rows([
      {
        name: 'Table A / Autodiscover / mailbox 2010 -> proxy to CAS2010-NY',
        estate: 'o365info-2010',
        user: 'bob',
        protocol: 'autodiscover',
        expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'autodiscover'), 'autodiscover.2010.proxy'),
      },
      {
        name: 'Table A / Autodiscover / mailbox 2013+ -> proxy to MBX2013-NY',
        estate: 'o365info',
        user: 'alice',
        protocol: 'autodiscover',
        expect: backend('MBX2013-NY', 'autodiscover', 'autodiscover.modern.proxy-backend'),
      },
    ]);
  });

  describe('ActiveSync', () => {
    rows([
      {
        name: 'Table A / ActiveSync / mailbox 2007 -> proxy via MBX2013-NY (EAS-1)',
        estate: 'o365info',
        user: 'bob',
        protocol: 'activesync',
        expect: backend('MBX2013-NY', 'activesync', 'activesync.2007.same-site.via-mailbox'),
      },
      {
        name: 'Table A / ActiveSync / mailbox 2010 -> proxy to CAS2010-NY (§6: directly)',
        estate: 'o365info-2010',
        user: 'bob',
        protocol: 'activesync',
        expect: internalUrl(
          'CAS2010-NY',
          local('CAS2010-NY', 'activesync'),
          'activesync.2010.proxy-internal',
        ),
      },
      {
        name: 'Table A / ActiveSync / mailbox 2013+ -> proxy to MBX2013-NY',
        estate: 'o365info',
        user: 'alice',
        protocol: 'activesync',
        expect: backend('MBX2013-NY', 'activesync', 'activesync.modern.proxy-backend'),
      },
    ]);
  });

  describe('EWS', () => {
    rows([
      {
        name: 'Table A / EWS / mailbox 2007, request reaches the front end -> proxy to CAS2007-NY (EWS-2)',
        estate: 'o365info',
        user: 'bob',
        protocol: 'ews',
        expect: internalUrl('CAS2007-NY', `${LEGACY}/EWS/Exchange.asmx`, 'ews.2007.proxy'),
      },
      {
        name: 'Table A / EWS / mailbox 2010 -> proxy to CAS2010-NY',
        estate: 'o365info-2010',
        user: 'bob',
        protocol: 'ews',
        expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'ews'), 'ews.2010.proxy'),
      },
      {
        name: 'Table A / EWS / mailbox 2013+ -> proxy to MBX2013-NY',
        estate: 'o365info',
        user: 'alice',
        protocol: 'ews',
        expect: backend('MBX2013-NY', 'ews', 'ews.modern.proxy-backend'),
      },
    ]);
  });

  describe('OWA', () => {
    rows([
      {
        name: 'Table A / OWA / mailbox 2007 -> redirect to the 2007 OWA ExternalUrl on the legacy namespace',
        estate: 'o365info',
        user: 'bob',
        protocol: 'owa',
        expect: redirect302(`${LEGACY}/owa`, 'owa.2007.redirect-site-external'),
      },
      {
        name: 'Table A / OWA / mailbox 2010, CAS2010 OWA ExternalUrl empty -> proxy to CAS2010-NY',
        estate: 'o365info-2010',
        user: 'bob',
        protocol: 'owa',
        expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'owa'), 'owa.2010.proxy'),
      },
      {
        name: 'Table A / OWA / mailbox 2010, CAS2010 OWA ExternalUrl set -> redirect there',
        estate: '2010-owa-external',
        user: 'bob',
        protocol: 'owa',
        expect: redirect302('https://mail2010.o365info.com/owa', 'owa.2010.redirect'),
      },
      {
        name: 'Table A / OWA / mailbox 2013+ -> proxy to MBX2013-NY',
        estate: 'o365info',
        user: 'alice',
        protocol: 'owa',
        expect: backend('MBX2013-NY', 'owa', 'owa.modern.proxy-backend'),
      },
    ]);
  });

  describe('ECP', () => {
    rows([
      {
        name: 'Table A / ECP / mailbox 2007 -> refused: n/a, 2007 has no ECP',
        estate: 'o365info',
        user: 'bob',
        protocol: 'ecp',
        expect: refuse('CX_ROUTE_NOT_OFFERED', 'ecp.not-offered'),
      },
      {
        name: 'Table A / ECP / mailbox 2010, CAS2010 ECP ExternalUrl empty -> proxy to CAS2010-NY',
        estate: 'o365info-2010',
        user: 'bob',
        protocol: 'ecp',
        expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'ecp'), 'ecp.2010.proxy'),
      },
      {
        name: 'Table A / ECP / mailbox 2010, CAS2010 ECP ExternalUrl set -> redirect there',
        estate: '2010-owa-external',
        user: 'bob',
        protocol: 'ecp',
        expect: redirect302('https://mail2010.o365info.com/ecp', 'ecp.2010.redirect'),
      },
      {
        name: 'Table A / ECP / mailbox 2013+ -> proxy to MBX2013-NY',
        estate: 'o365info',
        user: 'alice',
        protocol: 'ecp',
        expect: backend('MBX2013-NY', 'ecp', 'ecp.modern.proxy-backend'),
      },
    ]);
  });

  describe('Outlook Anywhere', () => {
    rows([
      {
        name: 'Table A / Outlook Anywhere / mailbox 2007 -> proxy to CAS2007-NY OA',
        estate: 'o365info',
        user: 'bob',
        protocol: 'rpc',
        expect: internalUrl('CAS2007-NY', local('CAS2007-NY', 'rpc'), 'rpc.2007.proxy'),
      },
      {
        name: 'Table A / Outlook Anywhere / mailbox 2010 -> proxy to CAS2010-NY OA',
        estate: 'o365info-2010',
        user: 'bob',
        protocol: 'rpc',
        expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'rpc'), 'rpc.2010.proxy'),
      },
      {
        name: 'Table A / Outlook Anywhere / mailbox 2013+ -> proxy to MBX2013-NY',
        estate: 'o365info',
        user: 'alice',
        protocol: 'rpc',
        expect: backend('MBX2013-NY', 'rpc', 'rpc.modern.proxy-backend'),
      },
    ]);
  });

  describe('MAPI/HTTP', () => {
    rows([
      {
        name: 'Table A / MAPI/HTTP / mailbox 2007 -> refused: not offered',
        estate: 'o365info',
        user: 'bob',
        protocol: 'mapi',
        expect: refuse('CX_ROUTE_NOT_OFFERED', 'mapi.not-offered'),
      },
      {
        name: 'Table A / MAPI/HTTP / mailbox 2010 -> refused: not offered',
        estate: 'o365info-2010',
        user: 'bob',
        protocol: 'mapi',
        expect: refuse('CX_ROUTE_NOT_OFFERED', 'mapi.not-offered'),
      },
      {
        name: 'Table A / MAPI/HTTP / mailbox 2013+ -> proxy to MBX2013-NY',
        estate: 'o365info',
        user: 'alice',
        protocol: 'mapi',
        expect: backend('MBX2013-NY', 'mapi', 'mapi.modern.proxy-backend'),
      },
    ]);
  });

  describe('OAB', () => {
    rows([
      {
        name: 'Table A / OAB / mailbox 2007 -> served by CAS2007-NY',
        estate: 'o365info',
        user: 'bob',
        protocol: 'oab',
        expect: internalUrl('CAS2007-NY', local('CAS2007-NY', 'oab'), 'oab.2007.proxy'),
      },
      {
        name: 'Table A / OAB / mailbox 2010 -> proxy to CAS2010-NY',
        estate: 'o365info-2010',
        user: 'bob',
        protocol: 'oab',
        expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'oab'), 'oab.2010.proxy'),
      },
      {
        // The estate does not model the OAB organization mailbox; in this estate it can only be on MBX2013-NY.
        name: 'Table A / OAB / mailbox 2013+ -> proxy to MBX2013-NY',
        estate: 'o365info',
        user: 'alice',
        protocol: 'oab',
        expect: backend('MBX2013-NY', 'oab', 'oab.modern.proxy-backend'),
      },
    ]);
  });
});

// =========================================================================================================

describe('Table B (docs/protocols.md §2.3): mailbox in another site, front end CAS2013-NY', () => {
  describe('Autodiscover', () => {
    test('Table B / Autodiscover / target internet-facing, mailbox 2007 (diego) -> answer carries the regional URLs', () => {
      const d = run({ estate: 'o365info', user: 'diego', protocol: 'autodiscover' });
      check(d, respond('autodiscover', 'autodiscover.2007.answer'));
      const a = answerOf(d);
      assert.equal(a.describes, 'CAS2007-MAD');
      assert.equal(a.external.activesync, `${EUROPE}/Microsoft-Server-ActiveSync`);
      assert.equal(a.external.ews, `${EUROPE}/EWS/Exchange.asmx`);
      assert.equal(a.external.owa, `${EUROPE}/owa`);
      assert.equal(a.external.oab, `${EUROPE}/OAB`);
      // CAS2007-MAD has no OA external host: Outlook Anywhere comes in through the 2013 namespace (§2.1 rule 6).
      assert.equal(a.external.rpc, `${PRIMARY}/rpc/rpcproxy.dll`);
      assert.equal(a.internal.activesync, local('CAS2007-MAD', 'activesync'));
    });
    test('Table B / Autodiscover / target intranet-only, mailbox 2007 (carol) -> answer carries URLs the client can reach', () => {
      const d = run({ estate: 'o365info', user: 'carol', protocol: 'autodiscover' });
      check(d, respond('autodiscover', 'autodiscover.2007.answer'));
      const a = answerOf(d);
      assert.equal(a.describes, 'CAS2007-LA');
      // the front end's namespace for what the front end proxies ...
      assert.equal(a.external.activesync, `${PRIMARY}/Microsoft-Server-ActiveSync`);
      assert.equal(a.external.ews, `${PRIMARY}/EWS/Exchange.asmx`);
      assert.equal(a.external.rpc, `${PRIMARY}/rpc/rpcproxy.dll`);
      // ... and the legacy namespace for 2007 OWA, which a 2013 front end cannot proxy (§2.3 OWA 2007 row)
      assert.equal(a.external.owa, `${LEGACY}/owa`);
      assert.equal(a.internal.ews, local('CAS2007-LA', 'ews'));
    });
    rows([
      {
        name: 'Table B / Autodiscover / target internet-facing, mailbox 2010 -> proxy to CAS2010-MAD',
        estate: 'o365info-2010',
        user: 'diego',
        protocol: 'autodiscover',
        expect: internalUrl('CAS2010-MAD', local('CAS2010-MAD', 'autodiscover'), 'autodiscover.2010.proxy'),
      },
      {
        name: 'Table B / Autodiscover / target intranet-only, mailbox 2010 -> proxy to CAS2010-LA',
        estate: 'o365info-2010',
        user: 'carol',
        protocol: 'autodiscover',
        expect: internalUrl('CAS2010-LA', local('CAS2010-LA', 'autodiscover'), 'autodiscover.2010.proxy'),
      },
      {
        name: 'Table B / Autodiscover / target internet-facing, mailbox 2013+ -> proxy to MBX2013-SYD',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'autodiscover',
        expect: backend('MBX2013-SYD', 'autodiscover', 'autodiscover.modern.proxy-backend'),
      },
      {
        name: 'Table B / Autodiscover / target intranet-only, mailbox 2013+ -> proxy to MBX2013-LA',
        estate: 'mixed',
        user: 'la2013',
        protocol: 'autodiscover',
        expect: backend('MBX2013-LA', 'autodiscover', 'autodiscover.modern.proxy-backend'),
      },
    ]);
    test('Table B / Autodiscover / target internet-facing, mailbox 2010 -> CAS2010-MAD answers with the regional URLs', () => {
      const end = checkChain(
        { estate: 'o365info-2010', user: 'diego', protocol: 'autodiscover' },
        [
          hop(
            'CAS2013-NY',
            'CAS2010-MAD',
            'internal-url',
            local('CAS2010-MAD', 'autodiscover'),
            'autodiscover.2010.proxy',
          ),
        ],
        respond('autodiscover', 'autodiscover.answer'),
        'CAS2010-MAD',
      );
      const a = answerOf(end);
      assert.equal(a.describes, 'CAS2010-MAD');
      assert.equal(a.external.activesync, `${EUROPE}/Microsoft-Server-ActiveSync`);
      assert.equal(a.external.owa, `${EUROPE}/owa`);
      assert.equal(a.external.mapi, undefined);
    });
    test('Table B / Autodiscover / target intranet-only, mailbox 2010 -> CAS2010-LA answers with front-end URLs', () => {
      const end = checkChain(
        { estate: 'o365info-2010', user: 'carol', protocol: 'autodiscover' },
        [
          hop(
            'CAS2013-NY',
            'CAS2010-LA',
            'internal-url',
            local('CAS2010-LA', 'autodiscover'),
            'autodiscover.2010.proxy',
          ),
        ],
        respond('autodiscover', 'autodiscover.answer'),
        'CAS2010-LA',
      );
      const a = answerOf(end);
      assert.equal(a.describes, 'CAS2010-LA');
      assert.equal(a.external.activesync, `${PRIMARY}/Microsoft-Server-ActiveSync`);
      assert.equal(a.external.owa, `${PRIMARY}/owa`);
      assert.equal(a.internal.owa, local('CAS2010-LA', 'owa'));
    });
    test('Table B / Autodiscover / target internet-facing, mailbox 2013+ -> MBX2013-SYD answers with the regional URLs', () => {
      const end = checkChain(
        { estate: 'mixed', user: 'syd2013', protocol: 'autodiscover' },
        [
          hop(
            'CAS2013-NY',
            'MBX2013-SYD',
            'backend',
            `https://${fqdn('MBX2013-SYD')}:444${vdir.autodiscover}`,
            'autodiscover.modern.proxy-backend',
          ),
        ],
        respond('autodiscover', 'autodiscover.answer'),
        'MBX2013-SYD',
      );
      const a = answerOf(end);
      assert.equal(a.describes, 'CAS2013-SYD');
      assert.equal(a.external.owa, `${APAC}/owa`);
      assert.equal(a.external.activesync, `${APAC}/Microsoft-Server-ActiveSync`);
      assert.equal(a.external.mapi, `${APAC}/mapi`);
    });
    test('Table B / Autodiscover / target intranet-only, mailbox 2013+ -> MBX2013-LA answers with front-end URLs', () => {
      const end = checkChain(
        { estate: 'mixed', user: 'la2013', protocol: 'autodiscover' },
        [
          hop(
            'CAS2013-NY',
            'MBX2013-LA',
            'backend',
            `https://${fqdn('MBX2013-LA')}:444${vdir.autodiscover}`,
            'autodiscover.modern.proxy-backend',
          ),
        ],
        respond('autodiscover', 'autodiscover.answer'),
        'MBX2013-LA',
      );
      const a = answerOf(end);
      assert.equal(a.external.owa, `${PRIMARY}/owa`);
      assert.equal(a.external.ews, `${PRIMARY}/EWS/Exchange.asmx`);
    });
  });

  describe('ActiveSync, 2013 front end', () => {
    rows([
      {
        name: 'Table B / ActiveSync 2013 FE / target internet-facing, mailbox 2007 -> proxy to the CAS2007-MAD ExternalUrl, no 451 (EAS-3A)',
        estate: 'o365info',
        user: 'diego',
        protocol: 'activesync',
        expect: externalUrl(
          'CAS2007-MAD',
          `${EUROPE}/Microsoft-Server-ActiveSync`,
          'activesync.2007.cross-site.proxy-external',
        ),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / target internet-facing, mailbox 2010 -> proxy to CAS2010-MAD, no 451 (§6)',
        estate: 'o365info-2010',
        user: 'diego',
        protocol: 'activesync',
        expect: internalUrl(
          'CAS2010-MAD',
          local('CAS2010-MAD', 'activesync'),
          'activesync.2010.proxy-internal',
        ),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / target internet-facing, mailbox 2013+ -> proxy to MBX2013-SYD',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'activesync',
        expect: backend('MBX2013-SYD', 'activesync', 'activesync.modern.proxy-backend'),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / target internet-facing, mailbox 2007, activesyncCrossSite=redirect-451 -> 451 X-MS-Location (EAS-legacy)',
        estate: 'o365info',
        user: 'diego',
        protocol: 'activesync',
        policies: { activesyncCrossSite: 'redirect-451' },
        expect: eas451(`${EUROPE}/Microsoft-Server-ActiveSync`, 'activesync.cross-site.451'),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / target internet-facing, mailbox 2010, activesyncCrossSite=redirect-451 -> 451 X-MS-Location (§2.6)',
        estate: 'o365info-2010',
        user: 'diego',
        protocol: 'activesync',
        policies: { activesyncCrossSite: 'redirect-451' },
        expect: eas451(`${EUROPE}/Microsoft-Server-ActiveSync`, 'activesync.cross-site.451'),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / target internet-facing, mailbox 2013+, activesyncCrossSite=redirect-451 -> still proxy (§2.6: no 451 for 2013+)',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'activesync',
        policies: { activesyncCrossSite: 'redirect-451' },
        expect: backend('MBX2013-SYD', 'activesync', 'activesync.modern.proxy-backend'),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / target intranet-only, mailbox 2007 -> proxy via MBX2013-NY (EAS-2)',
        estate: 'o365info',
        user: 'carol',
        protocol: 'activesync',
        expect: backend('MBX2013-NY', 'activesync', 'activesync.2007.intranet-site.via-mailbox'),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / target intranet-only, mailbox 2007, activesyncCrossSite=redirect-451 -> still proxy via MBX2013-NY',
        estate: 'o365info',
        user: 'carol',
        protocol: 'activesync',
        policies: { activesyncCrossSite: 'redirect-451' },
        expect: backend('MBX2013-NY', 'activesync', 'activesync.2007.intranet-site.via-mailbox'),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / target intranet-only, mailbox 2010 -> proxy to CAS2010-LA InternalUrl',
        estate: 'o365info-2010',
        user: 'carol',
        protocol: 'activesync',
        expect: internalUrl(
          'CAS2010-LA',
          local('CAS2010-LA', 'activesync'),
          'activesync.2010.proxy-internal',
        ),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / target intranet-only, mailbox 2013+ -> proxy to MBX2013-LA',
        estate: 'mixed',
        user: 'la2013',
        protocol: 'activesync',
        expect: backend('MBX2013-LA', 'activesync', 'activesync.modern.proxy-backend'),
      },
      {
        name: 'Table B / ActiveSync 2013 FE / same site, activesyncCrossSite=redirect-451 -> still EAS-1 (451 is cross-site only)',
        estate: 'o365info',
        user: 'bob',
        protocol: 'activesync',
        policies: { activesyncCrossSite: 'redirect-451' },
        expect: backend('MBX2013-NY', 'activesync', 'activesync.2007.same-site.via-mailbox'),
      },
    ]);
  });

  describe('ActiveSync, 2007/2010 front end (historical)', () => {
    rows([
      {
        name: 'Table B / ActiveSync 2007 FE / target internet-facing -> CAS2007-NY answers 451 X-MS-Location',
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'diego',
        protocol: 'activesync',
        expect: eas451(`${EUROPE}/Microsoft-Server-ActiveSync`, 'legacy-cas.activesync.cross-site.451'),
      },
      {
        name: 'Table B / ActiveSync 2007 FE / target intranet-only -> CAS2007-NY proxies to CAS2007-LA InternalUrl',
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'carol',
        protocol: 'activesync',
        expect: internalUrl('CAS2007-LA', local('CAS2007-LA', 'activesync'), 'legacy-cas.cross-site.proxy'),
      },
      {
        name: 'Table B / ActiveSync 2010 FE / target internet-facing -> CAS2010-NY answers 451 X-MS-Location',
        estate: 'o365info-2010',
        at: 'CAS2010-NY',
        user: 'diego',
        protocol: 'activesync',
        expect: eas451(`${EUROPE}/Microsoft-Server-ActiveSync`, 'legacy-cas.activesync.cross-site.451'),
      },
      {
        name: 'Table B / ActiveSync 2010 FE / target intranet-only -> CAS2010-NY proxies to CAS2010-LA InternalUrl',
        estate: 'o365info-2010',
        at: 'CAS2010-NY',
        user: 'carol',
        protocol: 'activesync',
        expect: internalUrl('CAS2010-LA', local('CAS2010-LA', 'activesync'), 'legacy-cas.cross-site.proxy'),
      },
    ]);
  });

  describe('EWS', () => {
    rows([
      {
        name: 'Table B / EWS / target internet-facing, mailbox 2007 -> proxy to CAS2007-MAD',
        estate: 'o365info',
        user: 'diego',
        protocol: 'ews',
        expect: internalUrl('CAS2007-MAD', local('CAS2007-MAD', 'ews'), 'ews.2007.proxy'),
      },
      {
        name: 'Table B / EWS / target internet-facing, mailbox 2010 -> proxy to CAS2010-MAD',
        estate: 'o365info-2010',
        user: 'diego',
        protocol: 'ews',
        expect: internalUrl('CAS2010-MAD', local('CAS2010-MAD', 'ews'), 'ews.2010.proxy'),
      },
      {
        name: 'Table B / EWS / target internet-facing, mailbox 2013+ -> proxy to MBX2013-SYD',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'ews',
        expect: backend('MBX2013-SYD', 'ews', 'ews.modern.proxy-backend'),
      },
      {
        name: 'Table B / EWS / target intranet-only, mailbox 2007 -> proxy to CAS2007-LA',
        estate: 'o365info',
        user: 'carol',
        protocol: 'ews',
        expect: internalUrl('CAS2007-LA', local('CAS2007-LA', 'ews'), 'ews.2007.proxy'),
      },
      {
        name: 'Table B / EWS / target intranet-only, mailbox 2010 -> proxy to CAS2010-LA',
        estate: 'o365info-2010',
        user: 'carol',
        protocol: 'ews',
        expect: internalUrl('CAS2010-LA', local('CAS2010-LA', 'ews'), 'ews.2010.proxy'),
      },
      {
        name: 'Table B / EWS / target intranet-only, mailbox 2013+ -> proxy to MBX2013-LA',
        estate: 'mixed',
        user: 'la2013',
        protocol: 'ews',
        expect: backend('MBX2013-LA', 'ews', 'ews.modern.proxy-backend'),
      },
    ]);
  });

  describe('OWA 2013 mailbox', () => {
    rows([
      {
        name: 'Table B / OWA 2013 mailbox / target internet-facing -> redirect to the target OWA ExternalUrl',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'owa',
        expect: redirect302(`${APAC}/owa`, 'owa.modern.cross-site.redirect'),
      },
      {
        name: 'Table B / OWA 2013 mailbox / target internet-facing, owaRedirectStyle=silent-fba -> silent FBA redirect',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'owa',
        policies: { owaRedirectStyle: 'silent-fba' },
        expect: redirect302(`${APAC}/owa`, 'owa.modern.cross-site.redirect', 'silent-fba'),
      },
      {
        name: 'Table B / OWA 2013 mailbox / target internet-facing, ExternalUrl host is the request host -> proxy',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'owa',
        host: 'apac.mail.o365info.com',
        expect: backend('MBX2013-SYD', 'owa', 'owa.modern.proxy-backend'),
      },
      {
        name: 'Table B / OWA 2013 mailbox / target intranet-only -> proxy to MBX2013-LA',
        estate: 'mixed',
        user: 'la2013',
        protocol: 'owa',
        expect: backend('MBX2013-LA', 'owa', 'owa.modern.proxy-backend'),
      },
    ]);
  });

  describe('OWA 2010 mailbox', () => {
    rows([
      {
        name: 'Table B / OWA 2010 mailbox / target internet-facing -> redirect to CAS2010-MAD ExternalUrl',
        estate: 'o365info-2010',
        user: 'diego',
        protocol: 'owa',
        expect: redirect302(`${EUROPE}/owa`, 'owa.2010.redirect'),
      },
      {
        name: 'Table B / OWA 2010 mailbox / target internet-facing (London) -> redirect to CAS2010-LON ExternalUrl',
        estate: 'mixed',
        user: 'lon2010',
        protocol: 'owa',
        expect: redirect302('https://uk.mail.o365info.com/owa', 'owa.2010.redirect'),
      },
      {
        name: 'Table B / OWA 2010 mailbox / target intranet-only -> proxy to CAS2010-LA',
        estate: 'o365info-2010',
        user: 'carol',
        protocol: 'owa',
        expect: internalUrl('CAS2010-LA', local('CAS2010-LA', 'owa'), 'owa.2010.proxy'),
      },
    ]);
  });

  describe('OWA 2007 mailbox', () => {
    rows([
      {
        name: 'Table B / OWA 2007 mailbox / target internet-facing -> redirect to europe.mail.o365info.com/owa',
        estate: 'o365info',
        user: 'diego',
        protocol: 'owa',
        expect: redirect302(`${EUROPE}/owa`, 'owa.2007.redirect-site-external'),
      },
    ]);
    test('Table B / OWA 2007 mailbox / target intranet-only -> redirect to the legacy namespace, then CAS2007-NY proxies to CAS2007-LA', () => {
      const first = run({ estate: 'o365info', user: 'carol', protocol: 'owa' });
      check(first, redirect302(`${LEGACY}/owa`, 'owa.2007.redirect-legacy-namespace'));
      // "the engine must name CAS2007-NY as the proxying hop"
      assert.ok(
        first.reasons.some((r) => r.text.includes('CAS2007-NY')),
        'the redirect names CAS2007-NY as the proxying hop',
      );
      const second = run({
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'carol',
        protocol: 'owa',
      });
      check(second, internalUrl('CAS2007-LA', local('CAS2007-LA', 'owa'), 'legacy-cas.cross-site.proxy'));
      assert.ok(second.reasons.some((r) => r.text.includes('CAS2007-NY')));
    });
  });

  describe('Outlook Anywhere', () => {
    rows([
      {
        name: 'Table B / Outlook Anywhere / target internet-facing, mailbox 2007 -> proxy to CAS2007-MAD',
        estate: 'o365info',
        user: 'diego',
        protocol: 'rpc',
        expect: internalUrl('CAS2007-MAD', local('CAS2007-MAD', 'rpc'), 'rpc.2007.proxy'),
      },
      {
        name: 'Table B / Outlook Anywhere / target internet-facing, mailbox 2010 -> proxy to CAS2010-MAD',
        estate: 'o365info-2010',
        user: 'diego',
        protocol: 'rpc',
        expect: internalUrl('CAS2010-MAD', local('CAS2010-MAD', 'rpc'), 'rpc.2010.proxy'),
      },
      {
        name: 'Table B / Outlook Anywhere / target internet-facing, mailbox 2013+ -> proxy to MBX2013-SYD',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'rpc',
        expect: backend('MBX2013-SYD', 'rpc', 'rpc.modern.proxy-backend'),
      },
      {
        name: 'Table B / Outlook Anywhere / target intranet-only, mailbox 2007 -> proxy to CAS2007-LA',
        estate: 'o365info',
        user: 'carol',
        protocol: 'rpc',
        expect: internalUrl('CAS2007-LA', local('CAS2007-LA', 'rpc'), 'rpc.2007.proxy'),
      },
      {
        name: 'Table B / Outlook Anywhere / target intranet-only, mailbox 2010 -> proxy to CAS2010-LA',
        estate: 'o365info-2010',
        user: 'carol',
        protocol: 'rpc',
        expect: internalUrl('CAS2010-LA', local('CAS2010-LA', 'rpc'), 'rpc.2010.proxy'),
      },
      {
        name: 'Table B / Outlook Anywhere / target intranet-only, mailbox 2013+ -> proxy to MBX2013-LA',
        estate: 'mixed',
        user: 'la2013',
        protocol: 'rpc',
        expect: backend('MBX2013-LA', 'rpc', 'rpc.modern.proxy-backend'),
      },
    ]);
  });

  describe('OAB', () => {
    rows([
      {
        name: 'Table B / OAB / target internet-facing, mailbox 2007 -> proxy to CAS2007-MAD',
        estate: 'o365info',
        user: 'diego',
        protocol: 'oab',
        expect: internalUrl('CAS2007-MAD', local('CAS2007-MAD', 'oab'), 'oab.2007.proxy'),
      },
      {
        name: 'Table B / OAB / target internet-facing, mailbox 2010 -> proxy to CAS2010-MAD',
        estate: 'o365info-2010',
        user: 'diego',
        protocol: 'oab',
        expect: internalUrl('CAS2010-MAD', local('CAS2010-MAD', 'oab'), 'oab.2010.proxy'),
      },
      {
        name: 'Table B / OAB / target internet-facing, mailbox 2013+ -> proxy to MBX2013-SYD',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'oab',
        expect: backend('MBX2013-SYD', 'oab', 'oab.modern.proxy-backend'),
      },
      {
        name: 'Table B / OAB / target intranet-only, mailbox 2007 -> proxy to CAS2007-LA',
        estate: 'o365info',
        user: 'carol',
        protocol: 'oab',
        expect: internalUrl('CAS2007-LA', local('CAS2007-LA', 'oab'), 'oab.2007.proxy'),
      },
      {
        name: 'Table B / OAB / target intranet-only, mailbox 2010 -> proxy to CAS2010-LA',
        estate: 'o365info-2010',
        user: 'carol',
        protocol: 'oab',
        expect: internalUrl('CAS2010-LA', local('CAS2010-LA', 'oab'), 'oab.2010.proxy'),
      },
      {
        name: 'Table B / OAB / target intranet-only, mailbox 2013+ -> proxy to MBX2013-LA',
        estate: 'mixed',
        user: 'la2013',
        protocol: 'oab',
        expect: backend('MBX2013-LA', 'oab', 'oab.modern.proxy-backend'),
      },
    ]);
  });

  describe('ECP 2013 mailbox (not a Table B row; §2.1 rule 2 and §2.6: only OWA redirects for 2013+)', () => {
    rows([
      {
        name: '§2.6 / ECP 2013 mailbox / target internet-facing -> proxy to MBX2013-SYD',
        estate: 'mixed',
        user: 'syd2013',
        protocol: 'ecp',
        expect: backend('MBX2013-SYD', 'ecp', 'ecp.modern.proxy-backend'),
      },
      {
        name: '§2.6 / ECP 2013 mailbox / target intranet-only -> proxy to MBX2013-LA',
        estate: 'mixed',
        user: 'la2013',
        protocol: 'ecp',
        expect: backend('MBX2013-LA', 'ecp', 'ecp.modern.proxy-backend'),
      },
    ]);
  });

  describe('Internet-facing is per site, not per first CAS (docs/protocols.md §1)', () => {
    rows([
      {
        name: '§1 / ActiveSync / mailbox 2007 in a site whose second CAS has the EAS ExternalUrl -> proxy to that ExternalUrl (EAS-3A)',
        estate: 'two-cas-site',
        user: 'diego',
        protocol: 'activesync',
        expect: externalUrl(
          'CAS2007-MAD',
          `${EUROPE}/Microsoft-Server-ActiveSync`,
          'activesync.2007.cross-site.proxy-external',
        ),
      },
      {
        name: '§1 / OWA / mailbox 2007 in a site whose second CAS has the OWA ExternalUrl -> redirect to that ExternalUrl',
        estate: 'two-cas-site',
        user: 'diego',
        protocol: 'owa',
        expect: redirect302(`${EUROPE}/owa`, 'owa.2007.redirect-site-external'),
      },
    ]);
  });
});

// =========================================================================================================

describe('§2.4 internal vs external clients (where it changes the decision)', () => {
  rows([
    {
      name: '§2.4 / OWA / mailbox 2007, external client -> redirect to the ExternalUrl (legacy namespace)',
      estate: 'o365info',
      user: 'bob',
      protocol: 'owa',
      client: 'external',
      expect: redirect302(`${LEGACY}/owa`, 'owa.2007.redirect-site-external'),
    },
    {
      name: '§2.4 / OWA / mailbox 2007, known internal client -> redirect to the InternalUrl of CAS2007-NY',
      estate: 'o365info',
      user: 'bob',
      protocol: 'owa',
      client: 'internal',
      host: 'cas2013-ny.o365info.local',
      expect: redirect302(local('CAS2007-NY', 'owa'), 'owa.2007.internal-client.redirect-internal'),
    },
    {
      name: '§2.4 / OWA / mailbox 2007 in an intranet site, known internal client -> redirect to the InternalUrl of CAS2007-LA',
      estate: 'o365info',
      user: 'carol',
      protocol: 'owa',
      client: 'internal',
      host: 'cas2013-ny.o365info.local',
      expect: redirect302(local('CAS2007-LA', 'owa'), 'owa.2007.internal-client.redirect-internal'),
    },
    {
      name: '§2.4 / ActiveSync / always external: a device marked internal gets the external decision (EAS-2)',
      estate: 'o365info',
      user: 'carol',
      protocol: 'activesync',
      client: 'internal',
      expect: backend('MBX2013-NY', 'activesync', 'activesync.2007.intranet-site.via-mailbox'),
    },
    {
      name: '§2.4 / EWS / mailbox 2007, external client on the primary namespace -> front-end proxy (EWS-2)',
      estate: 'o365info',
      user: 'bob',
      protocol: 'ews',
      client: 'external',
      expect: internalUrl('CAS2007-NY', `${LEGACY}/EWS/Exchange.asmx`, 'ews.2007.proxy'),
    },
  ]);
  test('§2.4 / Autodiscover / mailbox 2007: InternalUrl values for internal clients, ExternalUrl values for external ones', () => {
    const a = answerOf(
      run({ estate: 'o365info', user: 'bob', protocol: 'autodiscover', client: 'internal' }),
    );
    assert.equal(a.internal.activesync, local('CAS2007-NY', 'activesync'));
    assert.equal(a.external.activesync, `${LEGACY}/Microsoft-Server-ActiveSync`);
    assert.equal(a.internal.owa, local('CAS2007-NY', 'owa'));
    assert.equal(a.external.owa, `${LEGACY}/owa`);
    assert.equal(a.internal.rpc, local('CAS2007-NY', 'rpc'));
    assert.equal(a.external.rpc, `${PRIMARY}/rpc/rpcproxy.dll`);
  });
  test('§2.4 / EWS / mailbox 2007, internal client -> Autodiscover hands out the legacy EWS URL and CAS2007-NY serves it (EWS-1)', () => {
    const a = answerOf(
      run({ estate: 'o365info', user: 'bob', protocol: 'autodiscover', client: 'internal' }),
    );
    assert.equal(a.internal.ews, `${LEGACY}/EWS/Exchange.asmx`);
    const index = estate('o365info');
    assert.equal(index.serverForHost(hostOfUrl(a.internal.ews))?.name, 'CAS2007-NY');
    checkChain(
      {
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: hostOfUrl(a.internal.ews),
        user: 'bob',
        protocol: 'ews',
        client: 'internal',
      },
      [hop('CAS2007-NY', 'MBX2007-NY', 'store', undefined, 'legacy-cas.same-site.store')],
      respond('mailbox', 'mailbox.holds'),
      'MBX2007-NY',
    );
  });
});

// =========================================================================================================

describe('§2.7 the demo estate against the rules (o365info), unfolded hop by hop', () => {
  const mbx2013 = (p: Protocol): string => `https://${fqdn('MBX2013-NY')}:444${vdir[p]}`;
  for (const p of ['autodiscover', 'activesync', 'ews', 'owa', 'ecp', 'rpc', 'mapi', 'oab'] as const) {
    test(`§2.7 / alice (2013, NY) / ${p} -> proxy CAS2013-NY -> MBX2013-NY:444`, () => {
      checkChain(
        { estate: 'o365info', user: 'alice', protocol: p },
        [hop('CAS2013-NY', 'MBX2013-NY', 'backend', mbx2013(p), `${p}.modern.proxy-backend`)],
        p === 'autodiscover'
          ? respond('autodiscover', 'autodiscover.answer')
          : respond('mailbox', 'mailbox.holds'),
        'MBX2013-NY',
      );
    });
  }
  test('§2.7 / bob (2007, NY) / EAS -> CAS2013-NY -> MBX2013-NY -> CAS2007-NY InternalUrl -> MBX2007-NY (EAS-1)', () => {
    checkChain(
      { estate: 'o365info', user: 'bob', protocol: 'activesync' },
      [
        hop(
          'CAS2013-NY',
          'MBX2013-NY',
          'backend',
          mbx2013('activesync'),
          'activesync.2007.same-site.via-mailbox',
        ),
        hop(
          'MBX2013-NY',
          'CAS2007-NY',
          'internal-url',
          local('CAS2007-NY', 'activesync'),
          'backend.2007.proxy-internal',
        ),
        hop('CAS2007-NY', 'MBX2007-NY', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      respond('mailbox', 'mailbox.holds'),
      'MBX2007-NY',
    );
  });
  test('§2.7 / bob / OWA -> 302 https://legacy.mail.o365info.com/owa, then CAS2007-NY serves it', () => {
    check(
      run({ estate: 'o365info', user: 'bob', protocol: 'owa' }),
      redirect302(`${LEGACY}/owa`, 'owa.2007.redirect-site-external'),
    );
    checkChain(
      {
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'bob',
        protocol: 'owa',
      },
      [hop('CAS2007-NY', 'MBX2007-NY', 'store', undefined, 'legacy-cas.same-site.store')],
      respond('mailbox', 'mailbox.holds'),
      'MBX2007-NY',
    );
  });
  test('§2.7 / bob external / EWS -> CAS2013-NY -> CAS2007-NY (EWS-2)', () => {
    checkChain(
      { estate: 'o365info', user: 'bob', protocol: 'ews' },
      [
        hop('CAS2013-NY', 'CAS2007-NY', 'internal-url', `${LEGACY}/EWS/Exchange.asmx`, 'ews.2007.proxy'),
        hop('CAS2007-NY', 'MBX2007-NY', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      respond('mailbox', 'mailbox.holds'),
      'MBX2007-NY',
    );
  });
  test('§2.7 / bob / Outlook Anywhere -> CAS2013-NY -> CAS2007-NY /rpc -> MBX2007-NY', () => {
    checkChain(
      { estate: 'o365info', user: 'bob', protocol: 'rpc' },
      [
        hop('CAS2013-NY', 'CAS2007-NY', 'internal-url', local('CAS2007-NY', 'rpc'), 'rpc.2007.proxy'),
        hop('CAS2007-NY', 'MBX2007-NY', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      respond('mailbox', 'mailbox.holds'),
      'MBX2007-NY',
    );
  });
  test('§2.7 / carol (2007, LA intranet) / EAS -> CAS2013-NY -> MBX2013-NY -> CAS2007-LA InternalUrl -> MBX2007-LA (EAS-2)', () => {
    const got = unfold({ estate: 'o365info', user: 'carol', protocol: 'activesync' });
    assert.deepEqual(got.hops, [
      hop(
        'CAS2013-NY',
        'MBX2013-NY',
        'backend',
        mbx2013('activesync'),
        'activesync.2007.intranet-site.via-mailbox',
      ),
      hop(
        'MBX2013-NY',
        'CAS2007-LA',
        'internal-url',
        local('CAS2007-LA', 'activesync'),
        'backend.2007.proxy-internal',
      ),
      hop('CAS2007-LA', 'MBX2007-LA', 'store', undefined, 'legacy-cas.same-site.store'),
    ]);
    check(got.end, respond('mailbox', 'mailbox.holds'));
    assert.equal(got.endAt, 'MBX2007-LA');
    // docs/flows.md EAS-2 step 4 is the MBX2013 hop
    const step4 = run({
      estate: 'o365info',
      at: 'MBX2013-NY',
      role: 'mailbox',
      user: 'carol',
      protocol: 'activesync',
    });
    assert.match(step4.reasons[0]?.source ?? '', /EAS-2 step 4/);
  });
  test('§2.7 / carol / OWA -> 302 legacy.mail.o365info.com, then CAS2007-NY -> CAS2007-LA (2007 proxy)', () => {
    check(
      run({ estate: 'o365info', user: 'carol', protocol: 'owa' }),
      redirect302(`${LEGACY}/owa`, 'owa.2007.redirect-legacy-namespace'),
    );
    checkChain(
      {
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'carol',
        protocol: 'owa',
      },
      [
        hop(
          'CAS2007-NY',
          'CAS2007-LA',
          'internal-url',
          local('CAS2007-LA', 'owa'),
          'legacy-cas.cross-site.proxy',
        ),
        hop('CAS2007-LA', 'MBX2007-LA', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      respond('mailbox', 'mailbox.holds'),
      'MBX2007-LA',
    );
  });
  test('§2.7 / diego (2007, Madrid public) / EAS via primary -> CAS2013-NY -> europe ExternalUrl -> MBX2007-MAD (EAS-3A)', () => {
    checkChain(
      { estate: 'o365info', user: 'diego', protocol: 'activesync' },
      [
        hop(
          'CAS2013-NY',
          'CAS2007-MAD',
          'external-url',
          `${EUROPE}/Microsoft-Server-ActiveSync`,
          'activesync.2007.cross-site.proxy-external',
        ),
        hop('CAS2007-MAD', 'MBX2007-MAD', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      respond('mailbox', 'mailbox.holds'),
      'MBX2007-MAD',
    );
  });
  test('§2.7 / diego / EAS, legacy451 -> 451 X-MS-Location europe, then CAS2007-MAD directly (EAS-legacy -> EAS-3B)', () => {
    const d = run({
      estate: 'o365info',
      user: 'diego',
      protocol: 'activesync',
      policies: { activesyncCrossSite: 'redirect-451' },
    });
    check(d, eas451(`${EUROPE}/Microsoft-Server-ActiveSync`, 'activesync.cross-site.451'));
    checkChain(
      {
        estate: 'o365info',
        at: 'CAS2007-MAD',
        host: 'europe.mail.o365info.com',
        user: 'diego',
        protocol: 'activesync',
      },
      [hop('CAS2007-MAD', 'MBX2007-MAD', 'store', undefined, 'legacy-cas.same-site.store')],
      respond('mailbox', 'mailbox.holds'),
      'MBX2007-MAD',
    );
  });
  test('§2.7 / diego / OWA -> 302 https://europe.mail.o365info.com/owa, then CAS2007-MAD serves it', () => {
    check(
      run({ estate: 'o365info', user: 'diego', protocol: 'owa' }),
      redirect302(`${EUROPE}/owa`, 'owa.2007.redirect-site-external'),
    );
    checkChain(
      {
        estate: 'o365info',
        at: 'CAS2007-MAD',
        host: 'europe.mail.o365info.com',
        user: 'diego',
        protocol: 'owa',
      },
      [hop('CAS2007-MAD', 'MBX2007-MAD', 'store', undefined, 'legacy-cas.same-site.store')],
      respond('mailbox', 'mailbox.holds'),
      'MBX2007-MAD',
    );
  });
});

// =========================================================================================================

describe('§6 the 2010 variant of the demo estate (o365info-2010), unfolded', () => {
  const chains: readonly {
    readonly name: string;
    readonly user: string;
    readonly protocol: Protocol;
    readonly hops: readonly Hop[];
    readonly endAt: string;
  }[] = [
    {
      name: '§6 / bob (2010, NY) / EAS -> CAS2013-NY -> CAS2010-NY -> MBX2010-NY',
      user: 'bob',
      protocol: 'activesync',
      hops: [
        hop(
          'CAS2013-NY',
          'CAS2010-NY',
          'internal-url',
          local('CAS2010-NY', 'activesync'),
          'activesync.2010.proxy-internal',
        ),
        hop('CAS2010-NY', 'MBX2010-NY', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      endAt: 'MBX2010-NY',
    },
    {
      name: '§6 / bob (2010, NY) / OWA -> CAS2013-NY -> CAS2010-NY -> MBX2010-NY (no legacy namespace)',
      user: 'bob',
      protocol: 'owa',
      hops: [
        hop('CAS2013-NY', 'CAS2010-NY', 'internal-url', local('CAS2010-NY', 'owa'), 'owa.2010.proxy'),
        hop('CAS2010-NY', 'MBX2010-NY', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      endAt: 'MBX2010-NY',
    },
    {
      name: '§6 / carol (2010, LA) / EAS -> CAS2013-NY -> CAS2010-LA InternalUrl -> MBX2010-LA',
      user: 'carol',
      protocol: 'activesync',
      hops: [
        hop(
          'CAS2013-NY',
          'CAS2010-LA',
          'internal-url',
          local('CAS2010-LA', 'activesync'),
          'activesync.2010.proxy-internal',
        ),
        hop('CAS2010-LA', 'MBX2010-LA', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      endAt: 'MBX2010-LA',
    },
    {
      name: '§6 / carol (2010, LA) / OWA -> CAS2013-NY -> CAS2010-LA InternalUrl -> MBX2010-LA',
      user: 'carol',
      protocol: 'owa',
      hops: [
        hop('CAS2013-NY', 'CAS2010-LA', 'internal-url', local('CAS2010-LA', 'owa'), 'owa.2010.proxy'),
        hop('CAS2010-LA', 'MBX2010-LA', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      endAt: 'MBX2010-LA',
    },
    {
      name: '§6 / diego (2010, Madrid) / EAS -> proxy CAS2013-NY -> CAS2010-MAD -> MBX2010-MAD',
      user: 'diego',
      protocol: 'activesync',
      hops: [
        hop(
          'CAS2013-NY',
          'CAS2010-MAD',
          'internal-url',
          local('CAS2010-MAD', 'activesync'),
          'activesync.2010.proxy-internal',
        ),
        hop('CAS2010-MAD', 'MBX2010-MAD', 'store', undefined, 'legacy-cas.same-site.store'),
      ],
      endAt: 'MBX2010-MAD',
    },
  ];
  for (const c of chains) {
    test(c.name, () => {
      checkChain(
        { estate: 'o365info-2010', user: c.user, protocol: c.protocol },
        c.hops,
        respond('mailbox', 'mailbox.holds'),
        c.endAt,
      );
    });
  }
  rows([
    {
      name: '§6 / diego (2010, Madrid) / OWA -> redirect to europe.mail.o365info.com (ExternalUrl set)',
      estate: 'o365info-2010',
      user: 'diego',
      protocol: 'owa',
      expect: redirect302(`${EUROPE}/owa`, 'owa.2010.redirect'),
    },
  ]);
});

// =========================================================================================================

describe('Non-front-end servers', () => {
  describe('2013 mailbox server hop', () => {
    rows([
      {
        name: 'MBX2013 / 2013 mailbox it holds -> responds with the mailbox content',
        estate: 'o365info',
        at: 'MBX2013-NY',
        role: 'mailbox',
        user: 'alice',
        protocol: 'activesync',
        expect: respond('mailbox', 'mailbox.holds'),
      },
      {
        name: 'MBX2013 / 2013 mailbox it holds, Autodiscover -> answers Autodiscover',
        estate: 'o365info',
        at: 'MBX2013-NY',
        role: 'mailbox',
        user: 'alice',
        protocol: 'autodiscover',
        expect: respond('autodiscover', 'autodiscover.answer'),
      },
      {
        name: 'MBX2013 / 2013 mailbox on another 2013 server -> proxy to its back end (§2.1 rule 3)',
        estate: 'mixed',
        at: 'MBX2013-NY',
        role: 'mailbox',
        user: 'syd2013',
        protocol: 'ews',
        expect: backend('MBX2013-SYD', 'ews', 'backend.modern.other-server'),
      },
      {
        name: 'MBX2013 / 2007 mailbox in its own site, ActiveSync -> proxy to CAS2007-NY InternalUrl (EAS-1 step 4)',
        estate: 'o365info',
        at: 'MBX2013-NY',
        role: 'mailbox',
        user: 'bob',
        protocol: 'activesync',
        expect: internalUrl('CAS2007-NY', local('CAS2007-NY', 'activesync'), 'backend.2007.proxy-internal'),
      },
      {
        name: 'MBX2013 / 2007 mailbox in an intranet site, ActiveSync -> proxy to CAS2007-LA InternalUrl (EAS-2 step 4)',
        estate: 'o365info',
        at: 'MBX2013-NY',
        role: 'mailbox',
        user: 'carol',
        protocol: 'activesync',
        expect: internalUrl('CAS2007-LA', local('CAS2007-LA', 'activesync'), 'backend.2007.proxy-internal'),
      },
    ]);
    test('MBX2013 / 2007 mailbox, Autodiscover (autodiscoverLegacy=proxy-to-mailbox) -> builds the answer with the 2007 URLs', () => {
      const policies = { autodiscoverLegacy: 'proxy-to-mailbox' } as const;
      const end = checkChain(
        { estate: 'o365info', user: 'diego', protocol: 'autodiscover', policies },
        [
          hop(
            'CAS2013-NY',
            'MBX2013-NY',
            'backend',
            `https://${fqdn('MBX2013-NY')}:444${vdir.autodiscover}`,
            'autodiscover.2007.proxy-mailbox',
          ),
        ],
        respond('autodiscover', 'autodiscover.answer'),
        'MBX2013-NY',
      );
      const a = answerOf(end);
      assert.equal(a.describes, 'CAS2007-MAD');
      assert.equal(a.external.activesync, `${EUROPE}/Microsoft-Server-ActiveSync`);
      assert.equal(a.mailboxVersion, 2007);
    });
  });

  describe('2007/2010 CAS, mailbox in its own site: store hop', () => {
    for (const p of ['activesync', 'ews', 'owa', 'rpc', 'oab'] as const) {
      test(`CAS2007 same site / ${p} -> passes the request to MBX2007-NY (store, no URL)`, () => {
        check(
          run({
            estate: 'o365info',
            at: 'CAS2007-NY',
            host: 'legacy.mail.o365info.com',
            user: 'bob',
            protocol: p,
          }),
          store('MBX2007-NY'),
        );
      });
    }
    rows([
      {
        name: 'CAS2010 same site / activesync -> passes the request to MBX2010-NY (store, no URL)',
        estate: 'o365info-2010',
        at: 'CAS2010-NY',
        user: 'bob',
        protocol: 'activesync',
        expect: store('MBX2010-NY'),
      },
      {
        name: 'CAS2010 same site / ecp -> passes the request to MBX2010-NY (store, no URL)',
        estate: 'o365info-2010',
        at: 'CAS2010-NY',
        user: 'bob',
        protocol: 'ecp',
        expect: store('MBX2010-NY'),
      },
    ]);
  });

  describe('legacy CAS, mailbox in another site', () => {
    rows([
      {
        name: 'legacy CAS cross-site / ActiveSync, CAS2007 to an internet-facing site -> 451 X-MS-Location',
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'diego',
        protocol: 'activesync',
        expect: eas451(`${EUROPE}/Microsoft-Server-ActiveSync`, 'legacy-cas.activesync.cross-site.451'),
      },
      {
        name: 'legacy CAS cross-site / ActiveSync, CAS2010 to an internet-facing site -> 451 X-MS-Location',
        estate: 'mixed',
        at: 'CAS2010-NY',
        user: 'lon2010',
        protocol: 'activesync',
        expect: eas451(
          'https://uk.mail.o365info.com/Microsoft-Server-ActiveSync',
          'legacy-cas.activesync.cross-site.451',
        ),
      },
      {
        name: 'legacy CAS cross-site / OWA, CAS2007 to an internet-facing site -> 302 to that site ExternalUrl',
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'diego',
        protocol: 'owa',
        expect: redirect302(`${EUROPE}/owa`, 'legacy-cas.owa.cross-site.redirect'),
      },
      {
        name: 'legacy CAS cross-site / OWA, CAS2010 to an internet-facing site -> 302 to that site ExternalUrl',
        estate: 'o365info-2010',
        at: 'CAS2010-NY',
        user: 'diego',
        protocol: 'owa',
        expect: redirect302(`${EUROPE}/owa`, 'legacy-cas.owa.cross-site.redirect'),
      },
      {
        name: 'legacy CAS cross-site / OWA, CAS2007 to an intranet site -> CAS-to-CAS proxy to CAS2007-LA',
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'carol',
        protocol: 'owa',
        expect: internalUrl('CAS2007-LA', local('CAS2007-LA', 'owa'), 'legacy-cas.cross-site.proxy'),
      },
      {
        name: 'legacy CAS cross-site / EWS, CAS2007 to an intranet site -> CAS-to-CAS proxy to CAS2007-LA',
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'carol',
        protocol: 'ews',
        expect: internalUrl('CAS2007-LA', local('CAS2007-LA', 'ews'), 'legacy-cas.cross-site.proxy'),
      },
      {
        name: 'legacy CAS cross-site / OWA, CAS2010 to an intranet site -> CAS-to-CAS proxy to CAS2010-LA',
        estate: 'o365info-2010',
        at: 'CAS2010-NY',
        user: 'carol',
        protocol: 'owa',
        expect: internalUrl('CAS2010-LA', local('CAS2010-LA', 'owa'), 'legacy-cas.cross-site.proxy'),
      },
      {
        name: 'legacy CAS / Autodiscover for a mailbox of its version in another site -> answers itself',
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'carol',
        protocol: 'autodiscover',
        expect: respond('autodiscover', 'autodiscover.answer'),
      },
    ]);
  });

  describe('legacy mailbox server', () => {
    rows([
      {
        name: 'MBX2007 / holds the mailbox -> responds',
        estate: 'o365info',
        at: 'MBX2007-NY',
        role: 'mailbox',
        user: 'bob',
        protocol: 'activesync',
        expect: respond('mailbox', 'mailbox.holds'),
      },
      {
        name: 'MBX2007 / does not hold the mailbox -> refused: not here',
        estate: 'o365info',
        at: 'MBX2007-NY',
        role: 'mailbox',
        user: 'carol',
        protocol: 'activesync',
        expect: refuse('CX_ROUTE_NOT_HERE', 'mailbox.not-here'),
      },
      {
        name: 'MBX2010 / holds the mailbox -> responds',
        estate: 'o365info-2010',
        at: 'MBX2010-LA',
        role: 'mailbox',
        user: 'carol',
        protocol: 'owa',
        expect: respond('mailbox', 'mailbox.holds'),
      },
      {
        name: 'MBX2010 / does not hold the mailbox -> refused: not here',
        estate: 'o365info-2010',
        at: 'MBX2010-LA',
        role: 'mailbox',
        user: 'bob',
        protocol: 'owa',
        expect: refuse('CX_ROUTE_NOT_HERE', 'mailbox.not-here'),
      },
    ]);
  });

  describe('refusals', () => {
    rows([
      {
        name: 'version mismatch / CAS2007 asked for a 2013 mailbox -> refused',
        estate: 'o365info',
        at: 'CAS2007-NY',
        host: 'legacy.mail.o365info.com',
        user: 'alice',
        protocol: 'owa',
        expect: refuse('CX_ROUTE_VERSION_MISMATCH', 'legacy-cas.version-mismatch'),
      },
      {
        name: 'version mismatch / CAS2007 asked for a 2010 mailbox -> refused',
        estate: 'mixed',
        at: 'CAS2007-NY',
        user: 'ny2010',
        protocol: 'activesync',
        expect: refuse('CX_ROUTE_VERSION_MISMATCH', 'legacy-cas.version-mismatch'),
      },
      {
        name: 'version mismatch / CAS2010 asked for a 2007 mailbox -> refused',
        estate: 'mixed',
        at: 'CAS2010-NY',
        user: 'bob',
        protocol: 'ews',
        expect: refuse('CX_ROUTE_VERSION_MISMATCH', 'legacy-cas.version-mismatch'),
      },
      {
        name: 'unknown mailbox / at the front end -> refused',
        estate: 'o365info',
        user: 'nobody',
        protocol: 'activesync',
        expect: refuse('CX_ROUTE_UNKNOWN_MAILBOX', 'directory.unknown'),
      },
      {
        name: 'unknown mailbox / at MBX2013-NY -> refused',
        estate: 'o365info',
        at: 'MBX2013-NY',
        role: 'mailbox',
        user: 'nobody',
        protocol: 'owa',
        expect: refuse('CX_ROUTE_UNKNOWN_MAILBOX', 'directory.unknown'),
      },
      {
        name: 'unknown mailbox / at CAS2007-NY -> refused',
        estate: 'o365info',
        at: 'CAS2007-NY',
        user: 'nobody',
        protocol: 'ews',
        expect: refuse('CX_ROUTE_UNKNOWN_MAILBOX', 'directory.unknown'),
      },
      {
        name: 'unknown mailbox / at MBX2007-NY -> refused',
        estate: 'o365info',
        at: 'MBX2007-NY',
        role: 'mailbox',
        user: 'nobody',
        protocol: 'rpc',
        expect: refuse('CX_ROUTE_UNKNOWN_MAILBOX', 'directory.unknown'),
      },
      {
        name: 'MAPI/HTTP for a 2007 mailbox at CAS2007-NY -> refused: not offered',
        estate: 'o365info',
        at: 'CAS2007-NY',
        user: 'bob',
        protocol: 'mapi',
        expect: refuse('CX_ROUTE_NOT_OFFERED', 'mapi.not-offered'),
      },
      {
        name: 'MAPI/HTTP for a 2010 mailbox in another site -> refused: not offered',
        estate: 'o365info-2010',
        user: 'diego',
        protocol: 'mapi',
        expect: refuse('CX_ROUTE_NOT_OFFERED', 'mapi.not-offered'),
      },
      {
        name: 'ECP for a 2007 mailbox in another site -> refused: not offered',
        estate: 'o365info',
        user: 'diego',
        protocol: 'ecp',
        expect: refuse('CX_ROUTE_NOT_OFFERED', 'ecp.not-offered'),
      },
      {
        name: 'ECP for a 2007 mailbox at CAS2007-NY -> refused: not offered',
        estate: 'o365info',
        at: 'CAS2007-NY',
        user: 'bob',
        protocol: 'ecp',
        expect: refuse('CX_ROUTE_NOT_OFFERED', 'ecp.not-offered'),
      },
    ]);
    test('MAPI/HTTP refusal cites docs/protocols.md §2.1 rule 7', () => {
      const d = run({ estate: 'o365info', user: 'bob', protocol: 'mapi' });
      assert.match(d.reasons[0]?.source ?? '', /§2\.1 rule 7/);
    });
  });
});

// =========================================================================================================

describe('§2.4 note: the OWA same-host loop guard for 2010 (mixed: CAS2010-NY OWA/ECP ExternalUrl = mail.o365info.com)', () => {
  rows([
    {
      name: '§2.4 loop guard / OWA 2010, ExternalUrl host = request host mail.o365info.com -> proxy to CAS2010-NY',
      estate: 'mixed',
      user: 'ny2010',
      protocol: 'owa',
      host: 'mail.o365info.com',
      expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'owa'), 'owa.2010.proxy'),
    },
    {
      name: '§2.4 loop guard / OWA 2010, request host in upper case -> still proxy (host names are case-insensitive)',
      estate: 'mixed',
      user: 'ny2010',
      protocol: 'owa',
      host: 'MAIL.O365INFO.COM',
      expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'owa'), 'owa.2010.proxy'),
    },
    {
      name: '§2.4 loop guard / ECP 2010, ExternalUrl host = request host -> proxy to CAS2010-NY',
      estate: 'mixed',
      user: 'ny2010',
      protocol: 'ecp',
      host: 'mail.o365info.com',
      expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'ecp'), 'ecp.2010.proxy'),
    },
  ]);
  test('§2.4 loop guard / OWA 2010 -> the trace records why it did not redirect', () => {
    const d = run({ estate: 'mixed', user: 'ny2010', protocol: 'owa', host: 'mail.o365info.com' });
    assert.match(d.reasons[0]?.text ?? '', /loop/);
  });
});

// =========================================================================================================

describe('Policies', () => {
  rows([
    {
      name: 'policy owaRedirectStyle=silent-fba / OWA 2007 same site -> silent FBA redirect to the legacy namespace',
      estate: 'o365info',
      user: 'bob',
      protocol: 'owa',
      policies: { owaRedirectStyle: 'silent-fba' },
      expect: redirect302(`${LEGACY}/owa`, 'owa.2007.redirect-site-external', 'silent-fba'),
    },
    {
      name: 'policy owaRedirectStyle=silent-fba / OWA 2007 regional site -> silent FBA redirect to europe',
      estate: 'o365info',
      user: 'diego',
      protocol: 'owa',
      policies: { owaRedirectStyle: 'silent-fba' },
      expect: redirect302(`${EUROPE}/owa`, 'owa.2007.redirect-site-external', 'silent-fba'),
    },
    {
      name: 'policy owaRedirectStyle=silent-fba / OWA 2007 intranet site -> silent FBA redirect to the legacy namespace',
      estate: 'o365info',
      user: 'carol',
      protocol: 'owa',
      policies: { owaRedirectStyle: 'silent-fba' },
      expect: redirect302(`${LEGACY}/owa`, 'owa.2007.redirect-legacy-namespace', 'silent-fba'),
    },
    {
      name: 'policy owaRedirectStyle=silent-fba / OWA 2010 regional site -> silent FBA redirect to europe',
      estate: 'o365info-2010',
      user: 'diego',
      protocol: 'owa',
      policies: { owaRedirectStyle: 'silent-fba' },
      expect: redirect302(`${EUROPE}/owa`, 'owa.2010.redirect', 'silent-fba'),
    },
    {
      name: 'policy owaRedirectStyle=silent-fba does not change a 451 -> X-MS-Location',
      estate: 'o365info',
      user: 'diego',
      protocol: 'activesync',
      policies: { owaRedirectStyle: 'silent-fba', activesyncCrossSite: 'redirect-451' },
      expect: eas451(`${EUROPE}/Microsoft-Server-ActiveSync`, 'activesync.cross-site.451'),
    },
    {
      name: 'policy activesyncCrossSite=redirect-451 does not touch OWA -> 302',
      estate: 'o365info',
      user: 'diego',
      protocol: 'owa',
      policies: { activesyncCrossSite: 'redirect-451' },
      expect: redirect302(`${EUROPE}/owa`, 'owa.2007.redirect-site-external'),
    },
    {
      name: 'policy autodiscoverLegacy=proxy-to-mailbox / 2007 mailbox in an intranet site -> proxy to the local MBX2013-NY',
      estate: 'o365info',
      user: 'carol',
      protocol: 'autodiscover',
      policies: { autodiscoverLegacy: 'proxy-to-mailbox' },
      expect: backend('MBX2013-NY', 'autodiscover', 'autodiscover.2007.proxy-mailbox'),
    },
    {
      name: 'policy autodiscoverLegacy=proxy-to-mailbox does not apply to 2010 mailboxes -> proxy to CAS2010-NY',
      estate: 'o365info-2010',
      user: 'bob',
      protocol: 'autodiscover',
      policies: { autodiscoverLegacy: 'proxy-to-mailbox' },
      expect: internalUrl('CAS2010-NY', local('CAS2010-NY', 'autodiscover'), 'autodiscover.2010.proxy'),
    },
  ]);
});

describe('the server must have the role it is asked to act in', () => {
  test('a mailbox-only server asked to act as a Client Access server refuses (CX_ROUTE_NOT_HERE)', () => {
    const index = estate('o365info');
    const mbx = index.server('MBX2007-NY');
    assert.ok(mbx);
    const d = decide(
      { server: mbx, role: 'cas' },
      {
        protocol: 'owa',
        mailbox: index.mailbox('bob@o365info.com'),
        client: 'external',
        host: 'mail.o365info.com',
      },
      index,
      index.estate.policies,
    );
    assert.equal(d.kind, 'refuse');
    assert.equal(d.kind === 'refuse' && d.code, 'CX_ROUTE_NOT_HERE');
    assert.equal(d.reasons[0]?.rule, 'server.wrong-role');
  });
});
