/**
 * Real clients against the lab (issue 4, "Tests with real clients"): Debian's python3-exchangelib and
 * npm's ews-javascript-api run as child processes whose DNS is the lab's (test/support/clients), trust
 * only the lab CA and connect from the lab's internal or external client address. What they discover is
 * compared with the estate file (autodiscoverAnswer), and the path of every EWS request they send is read
 * from the servers' own records (hop recorder, access log), compared with docs/flows.md EWS-1 and EWS-2.
 *
 * DNS: the test starts the lab and hands each child the lab's host map as JSON (`"host:443"` -> the port
 * of the listener that name reaches, COEXIST_LAB_HOSTS). exchangelib-driver.py replaces
 * socket.getaddrinfo (a mapped name and port become 127.0.0.1 and the lab port; anything else does not
 * resolve), answers exchangelib's dnspython A checks from the same map and has no SRV records, binds the
 * source address for internal runs and trusts the lab CA (REQUESTS_CA_BUNDLE), with its own TMPDIR for
 * the autodiscover cache. lab-dns-preload.ts does the same for Node (net.connect, net.createConnection,
 * tls.connect, dns.lookup, dns.resolveSrv), keeping the TLS server name, with NODE_EXTRA_CA_CERTS. The
 * machine's DNS and /etc/hosts are never read or changed; certificates are checked against the real names.
 *
 * What each client sent (one run; every test prints its own list under it, from the drivers' record of
 * each exchange joined by request-id with the access line of the server the request entered):
 *
 * python3-exchangelib 4.9.0, bob, internal (127.0.0.3), POX Autodiscover, auth_type BASIC (EWS-1):
 *   DNS o365info.com A: no answer                                  (step 1 skipped: the lab has no such name)
 *   DNS autodiscover.o365info.com A: lab
 *   POST https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml  no credentials,
 *        request schema outlook/requestschema/2006, AcceptableResponseSchema outlook/responseschema/2006a
 *                                                                  -> 401 at CAS2013-NY (it reads WWW-Authenticate)
 *   POST the same, Basic                                           -> 200 answered by CAS2013-NY (EXPR EwsUrl
 *                                                                     legacy.mail, ServerVersion 8.3.83: no probe)
 *   POST https://legacy.mail.o365info.com/EWS/Exchange.asmx  ResolveNames "bob", RequestServerVersion
 *        Exchange2007_SP1                                          -> 200 CAS2007-NY -> MBX2007-NY
 *   POST legacy.mail .../EWS/Exchange.asmx  GetFolder root: IdOnly + AdditionalProperties folder:ChildFolderCount,
 *        DisplayName, EffectiveRights, FolderClass, FolderId, ParentFolderId, TotalCount, UnreadCount;
 *        DistinguishedFolderId with the Mailbox; TimeZoneContext UTC  -> 200 CAS2007-NY -> MBX2007-NY
 *   POST legacy.mail .../EWS/Exchange.asmx  GetFolder inbox, the same plus folder:PermissionSet
 *                                                                  -> 200 CAS2007-NY -> MBX2007-NY
 *   No plain-HTTP or SRV step (discovery succeeded at step 2); CAS2013-NY saw no EWS request.
 *
 * python3-exchangelib, bob, external (127.0.0.1), service_endpoint https://mail.o365info.com/EWS/Exchange.asmx,
 * autodiscover off (EWS-2), so no version is known and exchangelib probes:
 *   POST https://mail.o365info.com/EWS/Exchange.asmx  ConvertId DestinationFormat=EntryId, AlternateId
 *        Format=EwsId Id=DUMMY Mailbox=DUMMY, RequestServerVersion Exchange2019, Exchange2016,
 *        Exchange2015_SP1, Exchange2015, Exchange2013_SP1, Exchange2013, Exchange2010_SP2, Exchange2010_SP1,
 *        Exchange2010: 500 ErrorInvalidServerVersion each; Exchange2007_SP1: 200 (ErrorInvalidIdMalformed,
 *        ServerVersionInfo 8.3.83.6 Exchange2007_SP1)
 *   then ResolveNames, GetFolder root, GetFolder inbox as above; all 13 CAS2013-NY -> CAS2007-NY -> MBX2007-NY.
 *
 * python3-exchangelib, alice, external: DNS o365info.com (none), autodiscover.o365info.com; POX POST 401, then
 *   200 (CAS2013-NY -> MBX2013-NY, ServerVersion 15.0.847); ResolveNames, GetFolder root, GetFolder inbox as
 *   Exchange2013_SP1 to mail.o365info.com, CAS2013-NY -> MBX2013-NY.
 *
 * ews-javascript-api 0.15.3, AutodiscoverService(Exchange2013), external, each user:
 *   GET  https://autodiscover.o365info.com/autodiscover/autodiscover.xml  no credentials, no redirects
 *        -> 401 at CAS2013-NY with X-SOAP-Enabled: True (without that header the library gives up on the
 *           host, then tries https://o365info.com/... (not a lab name), http://autodiscover... (no port 80)
 *           and the SRV record (none), and fails with AutodiscoverLocalException)
 *   POST https://autodiscover.o365info.com/autodiscover/autodiscover.svc  Basic sent up front (no challenge),
 *        GetUserSettingsRequestMessage, RequestedServerVersion Exchange2013, wsa:Action .../GetUserSettings,
 *        Mailbox <user>, Settings ExternalEwsUrl, InternalEwsUrl, UserDisplayName, EwsSupportedSchemas,
 *        CasVersion                          -> 200 (alice: CAS2013-NY -> MBX2013-NY; bob, carol, diego: CAS2013-NY)
 *   POST <ExternalEwsUrl>  ResolveNames ReturnFullContactData=false SearchScope=ActiveDirectory, then
 *        GetFolder inbox AllProperties, RequestServerVersion Exchange2013 (alice) or Exchange2007_SP1:
 *        alice CAS2013-NY -> MBX2013-NY; bob legacy.mail CAS2007-NY -> MBX2007-NY; carol mail.o365info.com
 *        CAS2013-NY -> CAS2007-LA -> MBX2007-LA; diego europe.mail CAS2007-MAD -> MBX2007-MAD.
 *   A new connection for each Autodiscover request, one for both EWS requests.
 *
 * Neither client sends SOAPAction.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { after, before, describe, test } from 'node:test';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../src/config/index.ts';
import type { AutodiscoverAnswer } from '../../src/core/autodiscover/answer.ts';
import { autodiscoverAnswer } from '../../src/core/autodiscover/answer.ts';
import type { Mailbox } from '../../src/core/estate/estate-index.ts';
import type { Lab } from '../../src/lab/index.ts';
import { hostsByServer, labAddresses, startLab } from '../../src/lab/index.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { ClientEvent, ClientRun } from '../support/clients/run-client.ts';
import { debianPython, runEwsJs, runExchangelib } from '../support/clients/run-client.ts';
import { demoPassword, LineSink } from '../support/lab-client.ts';

const estateFile = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const ewsPath = '/ews/exchange.asmx';

/** The access line of one request at one server. */
interface AccessLine {
  readonly reqId: string;
  readonly server: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly status?: number;
  readonly protocol?: string;
  readonly user?: string;
  readonly clientAddress?: string;
}

describe('real clients against the o365info lab: python3-exchangelib and ews-javascript-api', () => {
  let lab: Lab;
  let sink: LineSink;
  let caDir: string;

  before(async () => {
    const { index } = parseEstate(await readFile(estateFile, 'utf8'), estateFile);
    sink = new LineSink();
    caDir = await mkdtemp(join(tmpdir(), 'coexist-clients-ca-'));
    lab = await startLab({ index, logger: createLogger({ level: 'info', destination: sink }), caDir });
  });
  after(async () => {
    await lab.close();
    await rm(caDir, { recursive: true, force: true });
  });

  const mailbox = (address: string): Mailbox => {
    const m = lab.index.mailbox(address);
    assert.ok(m, `${address} is in the estate`);
    return m;
  };
  const answerFor = (address: string): AutodiscoverAnswer => {
    const a = autodiscoverAnswer(mailbox(address), lab.index);
    assert.ok(a, `the estate has an Autodiscover answer for ${address}`);
    return a;
  };
  /** The server a host name reaches (the estate's DNS). */
  const serverOfHost = (url: string): string => {
    const host = new URL(url).hostname.toLowerCase();
    const found = [...hostsByServer(lab.index)].find(([, hosts]) => hosts.has(host));
    assert.ok(found, `${host} reaches a server of the estate`);
    return found[0];
  };

  /** The access lines written since `from` by the server each client request entered. */
  const entryLines = (from: number): AccessLine[] =>
    sink
      .records()
      .slice(from)
      .filter((r) => r['msg'] === 'access' && r['clientAddress'] !== labAddresses.servers)
      .map((r) => r as unknown as AccessLine);

  /** Run a client, show what it sent (from the lab's access log), and insist that it worked. */
  async function client(
    t: TestContext,
    go: () => Promise<ClientRun>,
  ): Promise<ClientRun & { lines: AccessLine[] }> {
    const from = sink.lines.length;
    const run = await go();
    // A server writes its access line once its part is done, which can be just after the client has read
    // the answer: wait (polling, with a deadline) until every request the client saw answered is logged.
    const seen = run.result.events.filter((e) => e.kind === 'http' && e.requestId !== undefined);
    const logged = (): boolean => {
      const ids = new Set(entryLines(from).map((l) => l.reqId));
      return seen.every((e) => ids.has(e.requestId as string));
    };
    for (const end = Date.now() + 5_000; !logged() && Date.now() < end;)
      await new Promise((resolve) => setTimeout(resolve, 5));
    const lines = entryLines(from);
    // The request list shows under the test in the report (the header comment above is one run of it).
    for (const line of requestList(run.result.events, lines)) t.diagnostic(line);
    assert.ok(
      run.result.ok,
      `${run.result.client} failed: ${JSON.stringify(run.result.error)} (its requests are listed under the test)\n${run.stderr.slice(-3000)}`,
    );
    assert.equal(run.code, 0);
    // Every answer the client got from the lab is one request the lab logged where it entered.
    assert.deepEqual(
      seen.map((e) => e.requestId).sort(),
      lines.map((l) => l.reqId).sort(),
      'the client saw exactly the requests the lab logged',
    );
    return { ...run, lines };
  }

  const ewsRequests = (events: readonly ClientEvent[]): ClientEvent[] =>
    events.filter(
      (e) => e.kind === 'http' && e.url !== undefined && new URL(e.url).pathname.toLowerCase() === ewsPath,
    );

  /** Every EWS request went exactly along `hops`, by the servers' own records. */
  async function assertEwsPaths(events: readonly ClientEvent[], hops: readonly string[]): Promise<void> {
    const requests = ewsRequests(events);
    assert.ok(requests.length > 0, 'the client sent EWS requests');
    for (const e of requests) {
      assert.ok(e.requestId, `${e.operation ?? 'EWS'} answer carries a request-id`);
      const entry = hops[0] as string;
      await lab.recorder.waitFor(e.requestId, entry);
      assert.deepEqual(lab.recorder.path(e.requestId), hops, `${e.operation} went ${hops.join(' -> ')}`);
      assert.equal(e.path, hops.join(', '), 'X-Coexist-Path: the answer came back the same way');
    }
  }

  /**
   * The version exchangelib settled on: from the POX <ServerVersion> when there is one (no revision:
   * 8.3.83.0), else from the ServerVersionInfo of its ConvertId probe. Only the product (major.minor) and
   * the schema are asserted: the Autodiscover answer and the mailbox simulator model different updates
   * of 2013 (15.0.847 and 15.0.1497).
   */
  const assertVersion = (version: unknown, product: string, api: string): void => {
    const v = version as { build: string; api: string };
    assert.ok(v.build.startsWith(`${product}.`), `build ${v.build} is Exchange ${product}`);
    assert.equal(v.api, api);
  };

  test('python3-exchangelib is installed for Debian python3 (.ci/run installs it)', async () => {
    const version = await new Promise<string>((resolve, reject) =>
      execFile(
        debianPython,
        ['-c', 'import exchangelib; print(exchangelib.__version__)'],
        (err, out, errOut) =>
          err
            ? reject(
                new Error(
                  `${debianPython} cannot import exchangelib (apt-get install python3-exchangelib): ${errOut}`,
                ),
              )
            : resolve(out.trim()),
      ),
    );
    assert.match(version, /^\d+\.\d+/);
  });

  test('EWS-1 with exchangelib: bob, internal, POX Autodiscover, then EWS straight to CAS2007-NY', async (t) => {
    const bob = 'bob@o365info.com';
    const { result, lines } = await client(t, () =>
      runExchangelib(lab, { email: bob, password: demoPassword, resolve: ['bob'] }, 'internal'),
    );
    const expected = answerFor(bob);
    // exchangelib takes the EXPR block's EwsUrl; for bob EXCH and EXPR both name the legacy namespace.
    assert.equal(expected.external.ews, 'https://legacy.mail.o365info.com/EWS/Exchange.asmx');
    const ad = result['autodiscover'] as { ewsUrl: string; smtpAddress: string; protocolType: string };
    assert.equal(ad.ewsUrl, expected.external.ews);
    assert.equal(ad.smtpAddress, bob);
    assert.equal(result['endpoint'], expected.external.ews);
    // Autodiscover was answered by the front end itself (EWS-1 steps 1-3), after the Basic challenge.
    const discovery = result.events.filter((e) => e.kind === 'http' && ewsRequests([e]).length === 0);
    const answered = discovery.filter((e) => e.status === 200);
    assert.ok(answered.length > 0 && answered.every((e) => e.authorization === 'Basic' && e.requestId));
    for (const e of answered) {
      await lab.recorder.waitFor(e.requestId as string, 'CAS2013-NY');
      assert.deepEqual(lab.recorder.path(e.requestId as string), ['CAS2013-NY']);
    }
    // Then every EWS request went to CAS2007-NY on the legacy namespace, never through CAS2013-NY (step 5).
    await assertEwsPaths(result.events, ['CAS2007-NY', 'MBX2007-NY']);
    for (const e of ewsRequests(result.events))
      assert.ok(!lab.recorder.records(e.requestId as string).some((r) => r.server === 'CAS2013-NY'));
    const ewsLines = lines.filter((l) => l.protocol === 'ews');
    assert.ok(ewsLines.length > 0);
    for (const l of ewsLines) {
      assert.equal(l.server, 'CAS2007-NY', `${l.reqId} entered at CAS2007-NY`);
      assert.equal(l.clientAddress, labAddresses.internalClient, 'from the internal client address');
      assert.equal(l.user, bob);
    }
    assertVersion(result['version'], '8.3', 'Exchange2007_SP1');
    assert.deepEqual(result['resolveNames'], [{ name: mailbox(bob).displayName, emailAddress: bob }]);
    assert.deepEqual(result['inbox'], { name: 'Inbox', totalCount: 2, unreadCount: 2 });
  });

  test('EWS-2 with exchangelib: bob, external, EWS on mail.o365info.com is proxied CAS2013-NY -> CAS2007-NY', async (t) => {
    const bob = 'bob@o365info.com';
    const endpoint = 'https://mail.o365info.com/EWS/Exchange.asmx';
    assert.equal(serverOfHost(endpoint), 'CAS2013-NY');
    const { result, lines } = await client(t, () =>
      runExchangelib(lab, { email: bob, password: demoPassword, endpoint, resolve: ['bob'] }, 'external'),
    );
    assert.equal(result['endpoint'], endpoint);
    await assertEwsPaths(result.events, ['CAS2013-NY', 'CAS2007-NY', 'MBX2007-NY']);
    for (const l of lines) {
      assert.equal(l.server, 'CAS2013-NY');
      assert.equal(l.clientAddress, labAddresses.externalClient);
    }
    assertVersion(result['version'], '8.3', 'Exchange2007_SP1');
    assert.deepEqual(result['inbox'], { name: 'Inbox', totalCount: 2, unreadCount: 2 });
  });

  test('exchangelib: alice (2013), Autodiscover then EWS CAS2013-NY -> MBX2013-NY', async (t) => {
    const alice = 'alice@o365info.com';
    const { result } = await client(t, () =>
      runExchangelib(lab, { email: alice, password: demoPassword, resolve: ['alice'] }, 'external'),
    );
    const expected = answerFor(alice);
    assert.equal(expected.external.ews, 'https://mail.o365info.com/EWS/Exchange.asmx');
    assert.equal((result['autodiscover'] as { ewsUrl: string }).ewsUrl, expected.external.ews);
    await assertEwsPaths(result.events, ['CAS2013-NY', 'MBX2013-NY']);
    assertVersion(result['version'], '15.0', 'Exchange2013_SP1');
    assert.deepEqual(result['resolveNames'], [{ name: mailbox(alice).displayName, emailAddress: alice }]);
    assert.deepEqual(result['inbox'], { name: 'Inbox', totalCount: 2, unreadCount: 2 });
  });

  // What docs/flows.md and docs/protocols.md §2.4 say each user is given; the estate must say the same.
  const ewsUrls: readonly [user: string, external: string, internal: string][] = [
    [
      'alice',
      'https://mail.o365info.com/EWS/Exchange.asmx',
      'https://cas2013-ny.o365info.local/EWS/Exchange.asmx',
    ],
    [
      'bob',
      'https://legacy.mail.o365info.com/EWS/Exchange.asmx',
      'https://legacy.mail.o365info.com/EWS/Exchange.asmx',
    ],
    // Los Angeles has no external URL: outside, carol goes through the front end.
    [
      'carol',
      'https://mail.o365info.com/EWS/Exchange.asmx',
      'https://cas2007-la.o365info.local/EWS/Exchange.asmx',
    ],
    [
      'diego',
      'https://europe.mail.o365info.com/EWS/Exchange.asmx',
      'https://cas2007-mad.o365info.local/EWS/Exchange.asmx',
    ],
  ];
  for (const [user, external, internal] of ewsUrls) {
    test(`ews-javascript-api: GetUserSettings (SOAP, Exchange2013) for ${user}, then EWS at ExternalEwsUrl`, async (t) => {
      const address = `${user}@o365info.com`;
      const expected = answerFor(address);
      assert.deepEqual(
        [expected.external.ews, expected.internal.ews],
        [external, internal],
        'the estate file',
      );
      const m = mailbox(address);
      const { result } = await client(t, () =>
        runEwsJs(
          lab,
          {
            email: address,
            password: demoPassword,
            autodiscoverVersion: 'Exchange2013',
            settings: [
              'ExternalEwsUrl',
              'InternalEwsUrl',
              'UserDisplayName',
              'EwsSupportedSchemas',
              'CasVersion',
            ],
            // ews-javascript-api speaks the mailbox's schema: Exchange2007_SP1 to a 2007 mailbox server.
            ews: {
              url: 'ExternalEwsUrl',
              version: m.server.version >= 2013 ? 'Exchange2013' : 'Exchange2007_SP1',
              resolve: user,
            },
          },
          'external',
        ),
      );
      const ad = result['autodiscover'] as { errorCode: string; settings: Record<string, string> };
      assert.equal(ad.errorCode, 'NoError');
      assert.equal(ad.settings['ExternalEwsUrl'], expected.external.ews);
      assert.equal(ad.settings['InternalEwsUrl'], expected.internal.ews);
      assert.equal(ad.settings['UserDisplayName'], m.displayName);
      // The unauthenticated GET that finds the SOAP endpoint saw X-SOAP-Enabled.
      const probe = result.events.find((e) => e.kind === 'http' && e.method === 'GET' && e.requestId);
      assert.equal(probe?.soapEnabled, 'True');
      // EWS entered where the URL's host points and ended at the user's mailbox server.
      const requests = ewsRequests(result.events);
      assert.ok(requests.length > 0);
      for (const e of requests) {
        assert.ok(e.requestId, `${e.operation ?? 'EWS'} answer carries a request-id`);
        const entry = serverOfHost(e.url as string);
        await lab.recorder.waitFor(e.requestId, entry);
        const path = lab.recorder.path(e.requestId);
        assert.equal(path[0], entry);
        assert.equal(path.at(-1), m.server.name);
      }
    });
  }
});

/** One readable line per thing the client did, with the lab's own account of each request. */
function requestList(events: readonly ClientEvent[], lines: readonly AccessLine[]): string[] {
  return events.map((e) => {
    if (e.kind === 'dns') return `DNS ${e.query}: ${e.found ? 'lab' : 'no answer'}`;
    const what = [
      e.authorization ? e.authorization : 'no credentials',
      e.soapAction ? `SOAPAction ${e.soapAction}` : undefined,
      e.operation,
      e.action?.replace(/^.*\//, 'Action '),
      e.requestServerVersion,
      e.folders?.join('+'),
      e.shape,
      e.settings?.join(','),
      e.acceptableResponseSchema?.replace(
        /^https?:\/\/schemas\.microsoft\.com\/exchange\/autodiscover\//,
        '',
      ),
    ]
      .filter((x) => x !== undefined && x !== '')
      .join(' ');
    const line = lines.find((l) => l.reqId === e.requestId);
    const outcome =
      e.error !== undefined
        ? `-> ${e.error}`
        : `-> ${e.status}${line ? ` at ${line.server} (${line.protocol ?? 'no protocol'})` : ''}${e.path ? ` via ${e.path}` : ''}`;
    return `${e.method} ${e.url} [${what}] ${outcome}`;
  });
}
