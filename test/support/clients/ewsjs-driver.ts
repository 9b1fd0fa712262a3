/**
 * Drive ews-javascript-api (npm) against the coexist lab: AutodiscoverService.GetUserSettings, then
 * optionally one EWS call at the URL it found. Run as `node --import tsx --import ./lab-dns-preload.ts
 * ewsjs-driver.ts` with NODE_EXTRA_CA_CERTS = the lab CA, so the lab is the process's DNS.
 *
 * Input: COEXIST_LAB_JOB, JSON {email, password, settings: UserSettingName names, autodiscoverVersion?,
 * ews?: {url: 'ExternalEwsUrl' | 'InternalEwsUrl', version, resolve}}. Output: one JSON line on stdout
 * (the last line), with every HTTP exchange as the library made it (request-id and X-Coexist-Path of each
 * answer). Exit status 0 when every step worked, 1 otherwise.
 */
import { createRequire } from 'node:module';
import type * as EwsModule from 'ews-javascript-api';
import { labEvents } from './lab-dns-preload.ts';

const require = createRequire(import.meta.url);
// The package is CommonJS; require() gives all of its exports.
const ews = require('ews-javascript-api') as typeof EwsModule;
const version = (require('ews-javascript-api/package.json') as { version: string }).version;

interface Job {
  readonly email: string;
  readonly password: string;
  readonly settings: readonly string[];
  readonly autodiscoverVersion?: string;
  readonly ews?: { readonly url: string; readonly version: string; readonly resolve: string };
}
const job = JSON.parse(process.env['COEXIST_LAB_JOB'] ?? '{}') as Job;

type Event = Record<string, unknown>;
/** DNS answers (from the preload) and HTTP exchanges, in the order they happened. */
const events: Event[] = labEvents;

/** What a request body asks: the SOAP operation, the schema version, the settings, the folders. */
function describe(body: unknown): Event {
  if (typeof body !== 'string' || body === '') return {};
  const out: Event = {};
  const op = /<(?:[\w-]+:)?Body\b[^>]*>\s*<(?:[\w-]+:)?([\w-]+)/.exec(body)?.[1];
  if (op) out['operation'] = op;
  const requested =
    /RequestServerVersion\b[^>]*\bVersion="([^"]+)"/.exec(body)?.[1] ??
    /<(?:[\w-]+:)?RequestedServerVersion>([^<]+)</.exec(body)?.[1];
  if (requested) out['requestServerVersion'] = requested;
  const action = /<(?:[\w-]+:)?Action\b[^>]*>([^<]+)</.exec(body)?.[1];
  if (action) out['action'] = action;
  const settings = [...body.matchAll(/<(?:[\w-]+:)?Setting>([^<]+)</g)].map((m) => m[1]);
  if (settings.length > 0) out['settings'] = settings;
  const mailboxes = [...body.matchAll(/<(?:[\w-]+:)?Mailbox>([^<]+)</g)].map((m) => m[1]);
  if (mailboxes.length > 0) out['mailboxes'] = mailboxes;
  const shape = /<(?:[\w-]+:)?BaseShape>([^<]+)</.exec(body)?.[1];
  if (shape) out['shape'] = shape;
  const folders = [...body.matchAll(/DistinguishedFolderId\b[^>]*\bId="([^"]+)"/g)].map((m) => m[1]);
  if (folders.length > 0) out['folders'] = folders;
  return out;
}

interface XhrAnswer {
  readonly status?: number;
  readonly code?: string;
  readonly message?: string;
  getResponseHeader?(name: string): string | null;
}

function answered(event: Event, r: XhrAnswer | undefined): void {
  if (r?.status !== undefined) event['status'] = r.status;
  else event['error'] = `${r?.code ?? ''} ${r?.message ?? String(r)}`.trim();
  const header = (name: string): string | undefined => r?.getResponseHeader?.(name) ?? undefined;
  for (const [name, key] of [
    ['request-id', 'requestId'],
    ['x-coexist-path', 'path'],
    ['x-beserver', 'beServer'],
    ['x-soap-enabled', 'soapEnabled'],
  ] as const) {
    const v = header(name);
    if (v !== undefined) event[key] = v;
  }
}

// Every exchange goes through the library's XHR helper: record it there.
const helper = ews.XHRFactory.XHRApi;
ews.ConfigurationApi.ConfigureXHR({
  apiName: 'lab-recording',
  async xhr(o, progress) {
    const headers = (o.headers ?? {}) as Record<string, string>;
    const auth = Object.entries(headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
    const event: Event = {
      kind: 'http',
      method: o.type ?? 'GET',
      url: o.url,
      authorization: auth?.split(' ')[0] ?? null,
      soapAction: Object.entries(headers).find(([k]) => k.toLowerCase() === 'soapaction')?.[1] ?? null,
      ...describe(o.data),
    };
    // Logged when answered, so the DNS questions asked on the way come first.
    try {
      const r = await helper.xhr(o, progress);
      answered(event, r as unknown as XhrAnswer);
      return r;
    } catch (err) {
      answered(event, err as XhrAnswer);
      throw err;
    } finally {
      events.push(event);
    }
  },
  xhrStream: (o, progress) => helper.xhrStream(o, progress),
  disconnect: () => helper.disconnect(),
});

function failure(err: unknown): Event {
  if (err === undefined) return { type: 'undefined', message: 'rejected with undefined' };
  const e = err as { constructor?: { name?: string }; message?: string; Message?: string; stack?: string };
  return {
    type: e.constructor?.name ?? typeof err,
    message: String(e.message ?? e.Message ?? err).slice(0, 2000),
  };
}

async function run(): Promise<Event> {
  const result: Event = { client: `ews-javascript-api ${version}`, node: process.version, ok: false };
  try {
    const adVersion = ews.ExchangeVersion[job.autodiscoverVersion as keyof typeof ews.ExchangeVersion];
    const autod = new ews.AutodiscoverService(adVersion ?? ews.ExchangeVersion.Exchange2013);
    autod.Credentials = new ews.WebCredentials(job.email, job.password);
    autod.RedirectionUrlValidationCallback = (url: string) => url.startsWith('https://');
    const names = job.settings.map((n) => ews.UserSettingName[n as keyof typeof ews.UserSettingName]);
    const r = await autod.GetUserSettings(job.email, names);
    const settings: Record<string, unknown> = {};
    for (const k of r.Settings.Keys) settings[ews.UserSettingName[k]] = r.Settings.get(k);
    result['autodiscover'] = {
      url: autod.Url?.ToString(),
      errorCode: ews.AutodiscoverErrorCode[r.ErrorCode],
      errorMessage: r.ErrorMessage,
      settings,
      settingErrors: (r.UserSettingErrors ?? []).map((e) => ({
        setting: e.SettingName,
        errorCode: ews.AutodiscoverErrorCode[e.ErrorCode],
      })),
    };
    result['discoveryEnd'] = events.length;
    if (job.ews) {
      const url = settings[job.ews.url];
      if (typeof url !== 'string') throw new Error(`Autodiscover returned no ${job.ews.url}`);
      const ewsVersion = ews.ExchangeVersion[job.ews.version as keyof typeof ews.ExchangeVersion];
      const svc = new ews.ExchangeService(ewsVersion);
      svc.Credentials = new ews.WebCredentials(job.email, job.password);
      svc.Url = new ews.Uri(url);
      const resolved = await svc.ResolveName(
        job.ews.resolve,
        ews.ResolveNameSearchLocation.DirectoryOnly,
        false,
      );
      const inbox = await ews.Folder.Bind(svc, ews.WellKnownFolderName.Inbox);
      result['ews'] = {
        url,
        serverInfo: svc.ServerInfo
          ? {
              build: `${svc.ServerInfo.MajorVersion}.${svc.ServerInfo.MinorVersion}.${svc.ServerInfo.MajorBuildNumber}.${svc.ServerInfo.MinorBuildNumber}`,
              version: svc.ServerInfo.VersionString,
            }
          : undefined,
        resolveName: resolved
          .GetEnumerator()
          .map((n) => ({ name: n.Mailbox.Name, address: n.Mailbox.Address })),
        inbox: { name: inbox.DisplayName, totalCount: inbox.TotalCount },
      };
    }
    result['ok'] = true;
  } catch (err) {
    result['error'] = failure(err);
  }
  result['events'] = events;
  return result;
}

const out = await run();
process.stdout.write(`\n${JSON.stringify(out)}\n`);
process.exitCode = out['ok'] === true ? 0 : 1;
