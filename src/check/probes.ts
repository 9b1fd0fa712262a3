/**
 * The protocol probes of `coexist check`, each a group of real requests: Autodiscover (POX for Outlook
 * and for mobile devices, SOAP GetUserSettings), ActiveSync (the client's first session and a Ping), EWS
 * (GetFolder of the Inbox at the URL Autodiscover gave and at the primary namespace) and OWA (the forms
 * logon, and the redirect to another namespace when the estate says so, followed).
 */
import { createHash } from 'node:crypto';
import type { ActiveSyncStep, FirstSession, PingResult } from '../client/activesync/index.ts';
import {
  ActiveSyncClient,
  ActiveSyncClientError,
  ActiveSyncHttpError,
  autodiscoverRequest as mobileRequest,
  parseAutodiscoverAnswer as parseMobileAnswer,
} from '../client/activesync/index.ts';
import { hostOfUrl } from '../core/host.ts';
import { protocolPath } from '../core/protocols/protocol.ts';
import {
  cookieHeader,
  getFolderRequest,
  getUserSettingsRequest,
  logonBody,
  outlookRequest,
  pageTitle,
  parseGetFolder,
  parseLogonForm,
  parseOutlookAnswer,
  parseUserSettings,
} from './answers.ts';
import type { Expectation } from './expect.ts';
import { flowLabel, sameUrl } from './expect.ts';
import { connectFix, credentialsFix, judgeAnswer, judgeSuccess, redirect451Fix } from './fixes.ts';
import type { CheckGroup, CheckStep, Hops } from './model.ts';
import type { HttpAnswer } from './net.ts';
import type { Accepted, Session } from './session.ts';
import { GroupRun, locationOf } from './session.ts';

const xmlHeaders = { 'content-type': 'text/xml; charset=utf-8' };
const maxAutodiscoverRedirects = 10;

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** The URLs a flow's Autodiscover answer lists (`EWS: https://...`), by protocol title. */
function answeredUrls(e: Expectation): Map<string, string> {
  const out = new Map<string, string>();
  const answer = e.flow?.steps.find((s) => s.kind === 'answer' && s.details && s.details.length > 0);
  for (const line of answer?.details ?? []) {
    const i = line.indexOf(': ');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 2));
  }
  return out;
}

/** The primary namespace's URL for a protocol. */
function primaryUrl(s: Session, path: string): string | undefined {
  const host = s.index.namespaceOfKind('primary')?.host;
  return host ? `https://${host}${path}` : undefined;
}

function isHttps(url: string): boolean {
  try {
    return new URL(url).protocol === 'https:';
  } catch {
    return false;
  }
}

// ---- Autodiscover ---------------------------------------------------------------------------------

export function autodiscoverStartUrl(s: Session): string {
  return s.o.autodiscoverUrl ?? `https://autodiscover.${domainOf(s.o.user)}/Autodiscover/Autodiscover.xml`;
}

/**
 * POX for Outlook: following redirects (redirectAddr, redirectUrl, HTTP 302) as Outlook does, at most 10;
 * keeps the EWS URLs in `s.discovered`. Used by the Autodiscover group, and by the EWS group when it runs
 * alone.
 */
export async function outlookAutodiscover(g: GroupRun, title = 'POST'): Promise<void> {
  const s = g.s;
  let url = autodiscoverStartUrl(s);
  let email = s.o.user;
  for (let redirects = 0; redirects <= maxAutodiscoverRedirects; redirects++) {
    if (!(await g.connect(url))) return;
    let next: string | undefined;
    const expectation = s.expect('autodiscover', hostOfUrl(url));
    const expected = answeredUrls(expectation);
    await g.exchange({
      title: `${title} ${new URL(url).pathname} (outlook 2006a)`,
      url,
      protocol: 'autodiscover',
      credentials: true,
      expectation,
      init: { method: 'POST', headers: xmlHeaders, body: outlookRequest(email) },
      accept: (a): Accepted | undefined => {
        if ([301, 302, 303, 307, 308].includes(a.status)) {
          const location = locationOf(a).location;
          if (!location || !isHttps(location))
            return {
              verdict: 'fail',
              fix: `Autodiscover redirected to ${location ?? 'nowhere'}, which is not an https URL: fix the redirect on ${hostOfUrl(url)}.`,
            };
          next = location;
          return { note: `-> ${location}` };
        }
        if (a.status !== 200) return undefined;
        let answer;
        try {
          answer = parseOutlookAnswer(a.body);
        } catch (e) {
          return {
            verdict: 'fail',
            fix: `The answer is not an Outlook Autodiscover document (${(e as Error).message}): is ${hostOfUrl(url)} an Exchange Autodiscover endpoint?`,
          };
        }
        switch (answer.kind) {
          case 'error':
            return {
              verdict: 'fail',
              note: `error ${answer.code}`,
              fix:
                answer.code === '500'
                  ? `Autodiscover does not know ${email} (error 500: ${answer.message}): check the address, and that the directory has the mailbox.`
                  : `Autodiscover answered error ${answer.code} (${answer.message}).`,
            };
          case 'redirect-address':
            if (!answer.address.includes('@'))
              return {
                verdict: 'fail',
                fix: `Autodiscover redirected to "${answer.address}", not an address.`,
              };
            email = answer.address;
            next = `https://autodiscover.${domainOf(answer.address)}/Autodiscover/Autodiscover.xml`;
            return { note: `redirectAddr -> ${answer.address}` };
          case 'redirect-url':
            if (!isHttps(answer.url))
              return { verdict: 'fail', fix: `Autodiscover redirected to ${answer.url}, not an https URL.` };
            next = answer.url;
            return { note: `redirectUrl -> ${answer.url}` };
          case 'settings': {
            s.discovered.ewsInternal = answer.ewsInternal;
            s.discovered.ewsExternal = answer.ewsExternal;
            const details = [
              ...(answer.ewsInternal ? [`EWS internal: ${answer.ewsInternal}`] : []),
              ...(answer.ewsExternal ? [`EWS external: ${answer.ewsExternal}`] : []),
              ...(answer.owaInternal ? [`OWA internal: ${answer.owaInternal}`] : []),
              ...(answer.owaExternal ? [`OWA external: ${answer.owaExternal}`] : []),
            ];
            const given = s.o.from === 'internal' ? answer.ewsInternal : answer.ewsExternal;
            const want = expected.get('EWS');
            if (want !== undefined && given !== undefined && !sameUrl(want, given))
              return {
                verdict: 'warn',
                details,
                fix: `Autodiscover gives the ${s.o.from} EWS URL ${given}, but the estate says ${want}: the servers' EWS URLs differ from the estate file.`,
              };
            if (given === undefined)
              return {
                verdict: 'warn',
                details,
                fix: `Autodiscover gives no ${s.o.from} EWS URL (no ${s.o.from === 'internal' ? 'EXCH' : 'EXPR'} EwsUrl): Outlook cannot find EWS ${s.o.from === 'internal' ? 'inside' : 'outside'} the network.`,
              };
            return { details };
          }
        }
      },
    });
    if (next === undefined) return;
    url = next;
  }
  g.add({
    title: 'Autodiscover redirects',
    verdict: 'fail',
    fix: `More than ${maxAutodiscoverRedirects} Autodiscover redirects: the redirects go round in a circle.`,
  });
}

/** POX for mobile devices: the MobileSync URL a phone is given. */
async function mobileAutodiscover(g: GroupRun, url: string): Promise<void> {
  const s = g.s;
  if (!(await g.connect(url))) return;
  const host = hostOfUrl(url);
  // Phones are external: they are given the external ActiveSync URL, else the internal one.
  const want =
    answeredUrls(s.expect('autodiscover', host, 'external')).get('ActiveSync') ??
    answeredUrls(s.expect('autodiscover', host, 'internal')).get('ActiveSync');
  await g.exchange({
    title: `POST ${new URL(url).pathname} (mobilesync)`,
    url,
    protocol: 'autodiscover',
    credentials: true,
    init: { method: 'POST', headers: xmlHeaders, body: mobileRequest(s.o.user) },
    accept: (a): Accepted | undefined => {
      if ([301, 302, 307, 308].includes(a.status))
        return { note: `-> ${locationOf(a).location ?? '?'} (not followed here)` };
      if (a.status !== 200) return undefined;
      let answer;
      try {
        answer = parseMobileAnswer(a.body);
      } catch (e) {
        return {
          verdict: 'fail',
          fix: `The answer is not a mobilesync Autodiscover document: ${(e as Error).message}`,
        };
      }
      if (answer.kind === 'error')
        return {
          verdict: 'fail',
          note: `error ${answer.code}`,
          fix: `Autodiscover for mobile devices answered error ${answer.code} (${answer.message}): phones cannot set themselves up.`,
        };
      if (answer.kind !== 'settings') return { note: `redirect (${answer.kind}, not followed here)` };
      if (!answer.mobileSyncUrl)
        return {
          verdict: 'fail',
          fix: 'The answer names no MobileSync server: give a CAS of the mailbox site an ActiveSync URL.',
        };
      s.discovered.mobileSync = answer.mobileSyncUrl;
      const details = [`MobileSync: ${answer.mobileSyncUrl}`];
      if (want !== undefined && !sameUrl(want, answer.mobileSyncUrl))
        return {
          verdict: 'warn',
          details,
          fix: `Autodiscover gives phones ${answer.mobileSyncUrl}, but the estate says ${want}.`,
        };
      return { details };
    },
  });
}

/** SOAP GetUserSettings (Outlook 2010+, EWS applications): optional, so a failure is a warning. */
async function soapAutodiscover(g: GroupRun, poxUrl: string): Promise<void> {
  const s = g.s;
  const url = poxUrl.replace(/\/autodiscover\.xml$/i, '/autodiscover.svc');
  if (url === poxUrl || !(await g.connect(url))) return;
  const { step } = await g.exchange({
    title: `POST ${new URL(url).pathname} (SOAP GetUserSettings, optional)`,
    url,
    protocol: 'autodiscover',
    credentials: true,
    init: { method: 'POST', headers: xmlHeaders, body: getUserSettingsRequest(s.o.user) },
    accept: (a): Accepted | undefined => {
      if (a.status !== 200) return undefined;
      let answer;
      try {
        answer = parseUserSettings(a.body);
      } catch (e) {
        return { verdict: 'warn', fix: `The SOAP answer is unreadable (${(e as Error).message}).` };
      }
      if (answer.errorCode !== 'NoError')
        return {
          verdict: 'warn',
          note: answer.errorCode,
          fix: `SOAP Autodiscover answered ${answer.errorCode}${answer.errorMessage ? ` (${answer.errorMessage})` : ''}: Outlook 2010+ and EWS applications fall back to POX.`,
        };
      const ews = answer.settings.get(s.o.from === 'internal' ? 'InternalEwsUrl' : 'ExternalEwsUrl');
      return {
        details: [...answer.settings].filter(([, v]) => v !== '').map(([k, v]) => `${k}: ${v}`),
        ...(ews ? {} : { verdict: 'warn', fix: `SOAP Autodiscover gives no ${s.o.from} EWS URL.` }),
      };
    },
  });
  // Optional: what would fail the check elsewhere is a warning here (a 401 still stops the others).
  if (step.verdict === 'fail') {
    const i = g.steps.indexOf(step);
    g.steps[i] = { ...step, verdict: 'warn' };
  }
}

export async function checkAutodiscover(s: Session): Promise<CheckGroup> {
  const g = new GroupRun(s, 'autodiscover');
  const url = autodiscoverStartUrl(s);
  await outlookAutodiscover(g);
  await mobileAutodiscover(g, url);
  await soapAutodiscover(g, url);
  return g.finish();
}

// ---- ActiveSync -----------------------------------------------------------------------------------

/** A DeviceId of the check's own per user (1-32 letters or digits). */
export const checkDeviceId = (user: string): string =>
  `COEXISTCHK${createHash('sha256').update(user.toLowerCase()).digest('hex').slice(0, 16).toUpperCase()}`;

/** Few words per ActiveSync exchange, from what the session found. */
interface EasNotes {
  session?: FirstSession;
  options?: { versions: readonly string[]; protocolVersion: string };
  folders?: number;
  ping?: PingResult;
  heartbeat?: number;
}

function easTitle(x: ActiveSyncStep, nth: number, heartbeat: number | undefined): string {
  switch (x.command) {
    case 'Provision':
      return nth === 0 ? 'Provision (policy)' : 'Provision (acknowledge)';
    case 'Sync':
      return 'Sync Inbox';
    case 'Ping':
      return `Ping (heartbeat ${heartbeat ?? '?'} s)`;
    default:
      return x.command;
  }
}

function easNote(x: ActiveSyncStep, isLast: (c: string) => boolean, n: EasNotes): string | undefined {
  if (x.status !== 200) return undefined;
  switch (x.command) {
    case 'OPTIONS': {
      const v = n.options?.versions ?? n.session?.options.versions;
      const speak = n.options?.protocolVersion ?? n.session?.protocolVersion;
      return v && v.length > 0
        ? `versions ${v[0]}..${v.at(-1)}${speak ? `, speaking ${speak}` : ''}`
        : undefined;
    }
    case 'FolderSync': {
      const count = n.session?.folders.length ?? n.folders;
      return count === undefined ? undefined : `${count} folders`;
    }
    case 'Sync':
      return isLast('Sync') && n.session ? `${n.session.items.length} items` : undefined;
    case 'Ping': {
      const p = n.ping;
      if (!p) return undefined;
      if (p.outcome === 'heartbeat-out-of-range')
        return `Status 5: the server's limit is ${p.heartbeatInterval ?? '?'} s, answered at once`;
      return `Status ${p.status} (${p.outcome})`;
    }
    default:
      return undefined;
  }
}

/** One ActiveSync exchange as a judged step. */
function easStep(
  s: Session,
  x: ActiveSyncStep,
  title: string,
  note: string | undefined,
  retryAfter: number | undefined,
): CheckStep {
  const host = hostOfUrl(x.url);
  const e = s.expect('activesync', host);
  const diagnostics = {
    ...(x.requestId ? { requestId: x.requestId } : {}),
    ...(x.feServer ? { feServer: x.feServer } : {}),
    ...(x.beServer ? { beServer: x.beServer } : {}),
    ...(x.calculatedBeTarget ? { calculatedBeTarget: x.calculatedBeTarget } : {}),
  };
  const base = {
    title,
    ms: x.ms,
    status: x.status,
    url: x.url,
    ...(Object.keys(diagnostics).length > 0 ? { diagnostics } : {}),
  };
  if (x.status === 200 || x.status === 449) {
    const j = judgeSuccess(x.path, e);
    const n = x.status === 449 ? 'the server wants Provision first (done, then retried)' : note;
    return {
      ...base,
      verdict: j.verdict,
      hops: j.hops,
      ...(n ? { note: n } : {}),
      ...(j.fix ? { fix: j.fix } : {}),
    };
  }
  if (x.status === 451) {
    const j = judgeSuccess(x.path, e);
    const o = e.outcome;
    const expected = o?.kind === 'redirected' && o.status === 451 && sameUrl(o.location, x.redirect);
    // Redirected where the estate proxies: another path, not one that stopped.
    const hops: Hops =
      j.hops.comparison.kind === 'stopped'
        ? { ...j.hops, comparison: { kind: 'different', index: x.path.length } }
        : j.hops;
    return {
      ...base,
      verdict: expected ? j.verdict : 'warn',
      hops,
      note: `-> X-MS-Location ${x.redirect ?? '(none)'}${expected ? ' (as the estate says; followed)' : ''}`,
      ...(expected ? {} : { fix: redirect451Fix(x.redirect) }),
    };
  }
  const j = judgeAnswer({
    user: s.login,
    host,
    status: x.status,
    path: x.path,
    expectation: e,
    ...(retryAfter === undefined ? {} : { retryAfter: String(retryAfter) }),
    ...(x.redirect ? { location: x.redirect } : {}),
  });
  return {
    ...base,
    verdict: j.verdict,
    hops: j.hops,
    ...(j.fix ? { fix: j.fix } : {}),
    ...(j.code ? { code: j.code } : {}),
  };
}

/**
 * A device at `url`: the first session and a Ping (`full`), or OPTIONS and FolderSync (a second URL).
 * Exchanges are told to the progress display as they end and kept, with their notes, once the session is over.
 */
async function easSession(g: GroupRun, url: string, full: boolean, suffix: string): Promise<void> {
  const s = g.s;
  if (!(await g.connect(url))) return;
  if (g.skipIfRefused(`ActiveSync session${suffix}`)) return;
  const exchanges: ActiveSyncStep[] = [];
  const notes: EasNotes = {};
  const heartbeat = s.o.heartbeatSeconds ?? 10;
  const client = new ActiveSyncClient({
    email: s.o.user,
    ...(s.o.login ? { user: s.o.login } : {}),
    password: s.revealPassword(),
    deviceId: checkDeviceId(s.o.user),
    deviceType: 'CoexistCheck',
    dispatcher: s.net.dispatcher,
    url,
    keepAlive: true,
    onStep: (x) => {
      const nth = exchanges.filter((e) => e.command === x.command).length;
      exchanges.push(x);
      // The progress display sees each exchange as it ends; the tree gets it with its notes below.
      s.o.onStep?.(g.title, easStep(s, x, easTitle(x, nth, heartbeat) + suffix, undefined, undefined));
    },
  });
  let failure: ActiveSyncClientError | undefined;
  try {
    if (full) {
      notes.session = await client.firstSession();
      notes.heartbeat = heartbeat;
      notes.ping = await client.ping([notes.session.inbox], heartbeat);
    } else {
      const o = await client.options();
      notes.options = { versions: o.versions, protocolVersion: o.protocolVersion };
      notes.folders = (await client.folderSync('0')).added.length;
    }
  } catch (e) {
    if (!(e instanceof ActiveSyncClientError)) throw e;
    failure = e;
  } finally {
    await client.close();
  }
  const counts = new Map<string, number>();
  const lastIndex = new Map<string, number>();
  exchanges.forEach((x, i) => lastIndex.set(x.command, i));
  const retryAfter = failure instanceof ActiveSyncHttpError ? failure.retryAfterSeconds : undefined;
  exchanges.forEach((x, i) => {
    const nth = counts.get(x.command) ?? 0;
    counts.set(x.command, nth + 1);
    const note = easNote(x, (c) => lastIndex.get(c) === i, notes);
    const last = i === exchanges.length - 1;
    let step = easStep(s, x, easTitle(x, nth, heartbeat) + suffix, note, last ? retryAfter : undefined);
    // The exchange answered 200 but the command failed (a Status, bad WBXML): the step fails with the reason.
    if (last && failure && step.verdict !== 'fail' && failure.kind !== 'network')
      step = {
        ...step,
        verdict: 'fail',
        fix: failure.kind === 'redirect' ? redirect451Fix(x.redirect) : `${failure.message}.`,
      };
    g.steps.push(step);
  });
  if (failure?.kind === 'auth') s.refused = true;
  if (failure?.kind === 'network') {
    const host = hostOfUrl(failure.url ?? url);
    const target = g.targetOf(failure.url ?? url) ?? { host, port: 443 };
    const cause = failure.cause as { code?: unknown; cause?: { code?: unknown } } | undefined;
    const code =
      typeof cause?.cause?.code === 'string'
        ? cause.cause.code
        : typeof cause?.code === 'string'
          ? cause.code
          : undefined;
    const f = connectFix(host, target, s.serverFor(host), code, s.timeoutMs);
    g.add({
      title: `${failure.step}${suffix}`,
      verdict: 'fail',
      note: code ?? 'network error',
      fix: f.fix,
      code: f.code,
      ...(failure.url ? { url: failure.url } : {}),
    });
  }
}

export async function checkActiveSync(s: Session): Promise<CheckGroup> {
  const g = new GroupRun(s, 'activesync');
  const flow = s.expect('activesync').flow;
  const primary = primaryUrl(s, protocolPath.activesync) ?? s.discovered.mobileSync;
  if (!primary) {
    g.skip('ActiveSync', 'the estate has no primary namespace and Autodiscover gave no URL');
    return g.finish();
  }
  await easSession(g, primary, true, '');
  const other = s.discovered.mobileSync;
  if (other && !sameUrl(other, primary)) await easSession(g, other, false, ` at ${hostOfUrl(other)}`);
  return g.finish(flow && flowLabel(flow));
}

// ---- EWS ------------------------------------------------------------------------------------------

export async function checkEws(s: Session, autodiscoverRan: boolean): Promise<CheckGroup> {
  const g = new GroupRun(s, 'ews');
  const flow = s.expect('ews').flow;
  if (!autodiscoverRan) await outlookAutodiscover(g, 'Autodiscover: POST');
  const d = s.discovered;
  const discovered =
    s.o.from === 'internal' ? (d.ewsInternal ?? d.ewsExternal) : (d.ewsExternal ?? d.ewsInternal);
  const primary = primaryUrl(s, protocolPath.ews);
  const targets: [url: string, why: string][] = [];
  if (discovered) targets.push([discovered, "Autodiscover's URL"]);
  if (primary && !targets.some(([u]) => sameUrl(u, primary))) targets.push([primary, 'primary namespace']);
  if (targets.length === 0) g.skip('GetFolder inbox', 'neither Autodiscover nor the estate gives an EWS URL');
  for (const [url, why] of targets) {
    if (!(await g.connect(url))) continue;
    await g.exchange({
      title: `GetFolder inbox at ${hostOfUrl(url)} (${why})`,
      url,
      protocol: 'ews',
      credentials: true,
      init: {
        method: 'POST',
        headers: { ...xmlHeaders, 'x-anchormailbox': s.o.user },
        body: getFolderRequest('inbox'),
      },
      accept: (a) => ewsAccept(a),
    });
  }
  return g.finish(flow && flowLabel(flow));
}

function ewsAccept(a: HttpAnswer): Accepted | undefined {
  const soap = a.status === 200 || (a.status === 500 && /<(\w+:)?Envelope\b/.test(a.body));
  if (!soap) return undefined;
  let answer;
  try {
    answer = parseGetFolder(a.body);
  } catch (e) {
    return { verdict: 'fail', fix: `The answer is not an EWS SOAP answer (${(e as Error).message}).` };
  }
  if (answer.kind === 'error')
    return {
      verdict: 'fail',
      note: answer.code,
      fix:
        answer.code === 'ErrorInvalidServerVersion'
          ? 'The server does not serve EWS schema Exchange2007_SP1: it is not an Exchange 2007 SP1 or later EWS.'
          : `EWS answered ${answer.code}${answer.message ? ` (${answer.message})` : ''}.`,
    };
  const items = answer.totalCount === undefined ? '' : `: ${answer.totalCount} items`;
  return {
    note: `${answer.displayName ?? 'Inbox'}${items}${answer.serverVersion ? ` (${answer.serverVersion})` : ''}`,
  };
}

// ---- OWA ------------------------------------------------------------------------------------------

const maxOwaRedirects = 3;

/**
 * A browser at `origin`: the logon page, the forms logon, then /owa/ with the session. Returns where the
 * server redirected the browser when the estate says it should.
 */
async function owaVisit(g: GroupRun, origin: string, suffix: string): Promise<string | undefined> {
  const s = g.s;
  const start = `${origin}/owa/`;
  if (!(await g.connect(start))) return undefined;
  const host = hostOfUrl(start);
  const expected = s.expect('owa', host);
  const entryOnly: Expectation = expected.hops?.[0] ? { hops: [expected.hops[0]] } : {};

  // 1. Unauthenticated: the forms logon page (or a Basic challenge).
  const first = await s.net.http(start, { headers: { 'user-agent': 'coexist-check' } });
  let basic = false;
  let form: ReturnType<typeof parseLogonForm>;
  let logonPageUrl = start;
  if (
    first.kind === 'answer' &&
    first.status === 401 &&
    /basic/i.test(first.headers['www-authenticate'] ?? '')
  ) {
    basic = true;
    g.add({
      title: `GET /owa/${suffix}`,
      verdict: 'pass',
      status: 401,
      ms: first.ms,
      note: 'Basic authentication (no forms logon)',
    });
  } else {
    // The logon page where /owa/ redirects to (or /owa/ itself); a failure of the first request shows here.
    const redirected = first.kind === 'answer' && first.status >= 300 && first.status < 400;
    logonPageUrl = redirected ? (locationOf(first).location ?? start) : start;
    const page = new URL(logonPageUrl).pathname;
    const r = await g.exchange({
      title: `GET /owa/${suffix}${redirected ? ` -> ${page}` : ''}`,
      url: logonPageUrl,
      protocol: 'owa',
      credentials: false,
      expectation: entryOnly,
      accept: (a) => {
        if (a.status !== 200) return undefined;
        form = parseLogonForm(a.body);
        return form
          ? { note: `forms logon page (posts to ${form.action || '?'})` }
          : { verdict: 'fail', fix: `${page} has no logon form with a password field.` };
      },
    });
    const prev = g.steps.indexOf(r.step);
    if (redirected && prev >= 0 && r.step.ms !== undefined)
      g.steps[prev] = { ...r.step, ms: r.step.ms + first.ms };
    if (!form) return undefined;
  }

  // 2. The forms logon.
  let cookie: string | undefined;
  if (!basic && form) {
    const action = new URL(form.action || '/owa/auth.owa', logonPageUrl).toString();
    if (g.skipIfRefused(`POST ${new URL(action).pathname}${suffix} (forms logon)`)) return undefined;
    const logonForm = form;
    await g.exchange({
      title: `POST ${new URL(action).pathname}${suffix} (forms logon)`,
      url: action,
      protocol: 'owa',
      credentials: false,
      expectation: entryOnly,
      init: {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: logonBody(logonForm, s.login, s.revealPassword()),
      },
      accept: (a) => {
        if (a.status < 300 || a.status >= 400) return undefined;
        const location = locationOf(a).location ?? '';
        cookie = cookieHeader(a.setCookies);
        if (/logon\.aspx/i.test(location) || !cookie) {
          s.refused = true;
          cookie = undefined;
          return {
            verdict: 'fail',
            note: 'logon refused',
            code: 'CX_AUTH_FAILED',
            fix: credentialsFix(s.login, host),
          };
        }
        return { note: 'session cookie' };
      },
    });
    if (!cookie) return undefined;
  }

  // 3. The mailbox with the session: the page, or the redirect the estate says.
  const outcome = expected.outcome;
  let next: string | undefined;
  await g.exchange({
    title: `GET /owa/${suffix}`,
    url: start,
    protocol: 'owa',
    credentials: basic,
    init: { headers: cookie ? { cookie } : {} },
    accept: (a) => {
      const location = locationOf(a).location;
      if (a.status >= 300 && a.status < 400 && location) {
        if (/logon\.aspx/i.test(location))
          return {
            verdict: 'fail',
            note: '-> logon page again',
            fix: `${host} did not accept its own session cookie: check that the servers behind ${host} share the session key.`,
          };
        if (outcome?.kind === 'redirected' && sameUrl(outcome.location, location)) {
          next = location;
          return { note: `-> ${location} (a redirect, as the estate says)` };
        }
        const other = s.o.from === 'internal' ? 'external' : 'internal';
        const otherOutcome = s.expect('owa', host, other).outcome;
        if (otherOutcome?.kind === 'redirected' && sameUrl(otherOutcome.location, location))
          return {
            verdict: 'fail',
            note: `-> ${location}`,
            fix: `${host} redirects to ${location}, where the estate sends ${other} clients: the server sees this client as ${other}, not ${s.o.from} (check --from, and the address it connects from: --local-address).`,
          };
        return {
          verdict: 'fail',
          note: `-> ${location}`,
          fix:
            outcome?.kind === 'redirected'
              ? `${host} redirects to ${location}, but the estate says ${outcome.location}: the OWA URLs of the servers differ from the estate file.`
              : `${host} redirects to ${location}, but the estate says ${outcome?.kind === 'answered' ? `${outcome.by} answers` : 'it is not redirected'}.`,
        };
      }
      if (a.status !== 200) return undefined;
      const title = pageTitle(a.body);
      if (outcome?.kind === 'redirected')
        return {
          verdict: 'warn',
          note: title ? `"${title}"` : 'a page',
          fix: `The estate says ${host} redirects ${s.o.user} to ${outcome.location}, but it answered with a page.`,
        };
      return { note: title ? `"${title}"` : 'mailbox page' };
    },
  });
  return next;
}

export async function checkOwa(s: Session): Promise<CheckGroup> {
  const g = new GroupRun(s, 'owa');
  const primary = primaryUrl(s, '');
  if (!primary) {
    g.skip('OWA', 'the estate has no primary namespace');
    return g.finish();
  }
  let origin: string | undefined = primary;
  for (let i = 0; origin && i <= maxOwaRedirects; i++) {
    const next = await owaVisit(g, origin, i === 0 ? '' : ` at ${hostOfUrl(origin)}`);
    origin = next ? new URL(next).origin : undefined;
  }
  return g.finish();
}
