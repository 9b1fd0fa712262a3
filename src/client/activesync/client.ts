/**
 * An Exchange ActiveSync client: what a phone does in its first session (Autodiscover, OPTIONS,
 * Provision, FolderSync, Sync of the Inbox) and Ping, over undici. The documents and the query line are
 * built by the pure modules beside this one; this file is the I/O edge: HTTP, the 451 X-MS-Location
 * redirect (remembered for later commands, docs/protocols.md §4.1), HTTP 449 (provision once and retry),
 * Autodiscover redirects (at most 10) and typed errors that name the step. Credentials live only in a
 * private field and the Authorization header; no error, step or log line carries them.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { Agent, request } from 'undici';
import type { WbxmlElement } from '../../codec/wbxml.ts';
import { childElement, decodeWbxml, encodeWbxml, textOf, WbxmlError } from '../../codec/wbxml.ts';
import type { AutodiscoverServer } from './autodiscover.ts';
import {
  autodiscoverMaxRedirects,
  autodiscoverRequest,
  autodiscoverUrl,
  isAutodiscoverUrl,
  parseAutodiscoverAnswer,
} from './autodiscover.ts';
import type {
  DeviceInformation,
  Folder,
  FolderSyncResult,
  PingFolder,
  PingResult,
  SettingsResult,
  SyncRequestOptions,
  SyncResult,
} from './commands.ts';
import {
  CommandParseError,
  folderClass,
  folderSyncRequest,
  parseFolderSync,
  parsePing,
  parseProvision,
  parseSettings,
  parseSync,
  pingRequest,
  policyStatusMeaning,
  provisionRequest,
  provisionStatuses,
  settingsRequest,
  statusMeaning,
  syncRequest,
} from './commands.ts';
import {
  ActiveSyncAuthError,
  ActiveSyncClientError,
  ActiveSyncHttpError,
  ActiveSyncStatusError,
  safeUrl,
} from './errors.ts';
import type { QueryForm } from './query.ts';
import { encodeQuery, isDeviceId, QueryEncodingError } from './query.ts';

export type ProtocolVersion = '12.1' | '14.0' | '14.1' | '16.0' | '16.1';

/** The versions this client speaks, oldest first (2.5 and 12.0 lack the base64 form and AirSyncBase bodies). */
export const clientVersions: readonly ProtocolVersion[] = ['12.1', '14.0', '14.1', '16.0', '16.1'];

const version: string = (createRequire(import.meta.url)('../../../package.json') as { version: string })
  .version;
/** `User-Agent` of every request. */
export const userAgent = `coexist-eas/${version}`;

export interface ActiveSyncClientOptions {
  /** The user's address: Autodiscover's EMailAddress and the query's `User`. */
  readonly email: string;
  /** The login for Basic auth; default `email`. */
  readonly user?: string;
  readonly password: string;
  /** 1–32 letters or digits, the same on every request (MS-ASHTTP DeviceId). */
  readonly deviceId: string;
  /** Default `CoexistEAS`. */
  readonly deviceType?: string;
  /**
   * The newest version to speak (default 14.1). Once `options()` has run, the client speaks the newest
   * version both sides have (a 2007 server stops at 12.1).
   */
  readonly protocolVersion?: ProtocolVersion;
  /** The query form (default plain). */
  readonly queryForm?: QueryForm;
  /** Where requests go through (tests pass one that reaches the lab); default an Agent of the client's own, closed by `close()`. */
  readonly dispatcher?: Dispatcher;
  /** The ActiveSync URL (`https://host/Microsoft-Server-ActiveSync`); without it, `firstSession()` runs Autodiscover. */
  readonly url?: string;
  /** Follow HTTP 451 X-MS-Location (default true), at most twice per command. */
  readonly followRedirects?: boolean;
  /**
   * Keep connections open between requests (default false: every request asks for `Connection: close`,
   * since a real server such as SOGo closes every connection without saying so, docs/lab.md §3.4).
   */
  readonly keepAlive?: boolean;
  /** Told about each HTTP exchange as it ends. */
  readonly onStep?: (step: ActiveSyncStep) => void;
  /** Sync window and body options for `firstSession()` (WindowSize 25, FilterType 0, TruncationSize 500). */
  readonly sync?: Omit<SyncRequestOptions, 'collectionId' | 'syncKey'>;
  /** Sent with Provision (14.1+); default Model/OS naming coexist. */
  readonly deviceInformation?: DeviceInformation;
}

/** One HTTP exchange: what was asked, how it went, and the diagnostic headers of the answer. */
export interface ActiveSyncStep {
  /** `Autodiscover`, `OPTIONS`, or the command (`Provision`, `FolderSync`, `Sync`, `Ping`, `Settings`). */
  readonly command: string;
  readonly method: string;
  /** The URL, query included; never any credential. */
  readonly url: string;
  readonly status: number;
  /** Milliseconds from sending to the end of the answer. */
  readonly ms: number;
  /** Where a 451 (X-MS-Location) or an Autodiscover 30x (Location) pointed. */
  readonly redirect?: string;
  /** The protocol version the request said it speaks (commands only). */
  readonly protocolVersion?: string;
  readonly queryForm?: QueryForm;
  /** `X-Coexist-Path`: the servers the answer came back through. */
  readonly path: readonly string[];
  readonly feServer?: string;
  readonly beServer?: string;
  readonly calculatedBeTarget?: string;
  readonly requestId?: string;
  /** Bytes of the answer body. */
  readonly bytes: number;
}

export interface AutodiscoverResult {
  /** The MobileSync URL, now the client's URL. */
  readonly url: string;
  readonly email: string;
  readonly displayName?: string;
  readonly servers: readonly AutodiscoverServer[];
  /** Redirects followed on the way (addresses and URLs). */
  readonly redirects: number;
}

export interface OptionsResult {
  /** `MS-ASProtocolVersions`. */
  readonly versions: readonly string[];
  /** `MS-ASProtocolCommands`. */
  readonly commands: readonly string[];
  /** `MS-Server-ActiveSync` (informational). */
  readonly server?: string;
  /** The version the client speaks from now on. */
  readonly protocolVersion: ProtocolVersion;
}

export interface ProvisionResult {
  /** The final policy key, sent as X-MS-PolicyKey from now on; absent when the server sends none (SOGo). */
  readonly policyKey?: string;
  /** 1 when the server sent no key (nothing to acknowledge), else 2. */
  readonly phases: 1 | 2;
  readonly policyStatus?: number;
  /** The EASProvisionDoc of phase 1. */
  readonly policy?: Readonly<Record<string, string>>;
  readonly remoteWipe: boolean;
}

export interface FirstSession {
  /** The ActiveSync URL the session ended on (after Autodiscover and any 451). */
  readonly url: string;
  readonly autodiscover?: AutodiscoverResult;
  readonly options: OptionsResult;
  readonly protocolVersion: ProtocolVersion;
  readonly provision: ProvisionResult;
  readonly folderSyncKey: string;
  readonly folders: readonly Folder[];
  readonly inbox: Folder;
  /** The Inbox's sync key after the last Sync. */
  readonly inboxSyncKey: string;
  readonly items: SyncResult['items'];
  readonly steps: readonly ActiveSyncStep[];
}

/** Most bytes of an answer the client reads. */
const maxAnswerBytes = 32 * 1024 * 1024;
const maxLocationRedirects = 2;
const wbxmlType = 'application/vnd.ms-sync.wbxml';

interface Answer {
  readonly status: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly body: Uint8Array;
  readonly url: string;
}

const header = (h: Dispatcher.ResponseData['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

export class ActiveSyncClient {
  /** Every HTTP exchange so far, in order. */
  readonly steps: ActiveSyncStep[] = [];
  readonly email: string;
  readonly deviceId: string;
  readonly deviceType: string;
  readonly queryForm: QueryForm;
  /** The version in use: the preferred one until `options()` negotiates. */
  protocolVersion: ProtocolVersion;
  /** The ActiveSync URL in use (changes after Autodiscover and 451). */
  url: string | undefined;
  /** The policy key in use (X-MS-PolicyKey / base64 field). */
  policyKey: string | undefined;

  readonly #authorization: string;
  readonly #dispatcher: Dispatcher;
  readonly #ownDispatcher: Agent | undefined;
  readonly #preferred: ProtocolVersion;
  readonly #followRedirects: boolean;
  readonly #keepAlive: boolean;
  readonly #onStep: ((step: ActiveSyncStep) => void) | undefined;
  readonly #sync: Omit<SyncRequestOptions, 'collectionId' | 'syncKey'>;
  readonly #deviceInformation: DeviceInformation;

  constructor(o: ActiveSyncClientOptions) {
    if (!o.email) throw new ActiveSyncClientError('usage', 'setup', 'an email address is required');
    if (!o.password) throw new ActiveSyncClientError('usage', 'setup', 'a password is required');
    if (!isDeviceId(o.deviceId))
      throw new ActiveSyncClientError('usage', 'setup', 'the DeviceId must be 1 to 32 letters or digits');
    const preferred = o.protocolVersion ?? '14.1';
    if (!clientVersions.includes(preferred))
      throw new ActiveSyncClientError(
        'usage',
        'setup',
        `protocol version ${String(preferred)} is not one of ${clientVersions.join(', ')}`,
      );
    const user = o.user ?? o.email;
    if (user.includes(':'))
      throw new ActiveSyncClientError('usage', 'setup', 'a Basic user name cannot contain ":"');
    this.email = o.email;
    this.deviceId = o.deviceId;
    this.deviceType = o.deviceType ?? 'CoexistEAS';
    this.queryForm = o.queryForm ?? 'plain';
    this.protocolVersion = this.#preferred = preferred;
    this.url = o.url;
    this.#authorization = `Basic ${Buffer.from(`${user}:${o.password}`, 'utf8').toString('base64')}`;
    // HTTP/1.1, as devices speak ActiveSync (undici 8 would otherwise take h2 when a server offers it).
    this.#ownDispatcher = o.dispatcher ? undefined : new Agent({ allowH2: false });
    this.#dispatcher = o.dispatcher ?? (this.#ownDispatcher as Agent);
    this.#followRedirects = o.followRedirects ?? true;
    this.#keepAlive = o.keepAlive ?? false;
    this.#onStep = o.onStep;
    this.#sync = o.sync ?? {};
    this.#deviceInformation = o.deviceInformation ?? {
      model: 'coexist',
      friendlyName: 'coexist ActiveSync client',
      os: `Node.js ${process.versions.node}`,
      osLanguage: 'en-US',
      userAgent,
    };
  }

  /** Close the dispatcher the client made (a dispatcher passed in is the caller's to close). */
  async close(): Promise<void> {
    await this.#ownDispatcher?.close();
  }

  // ---- Autodiscover -----------------------------------------------------------------------------

  /**
   * POX mobilesync Autodiscover for the client's address, at `https://autodiscover.<domain>/Autodiscover/Autodiscover.xml`
   * (or the URL given). Follows Action/Redirect (another address), redirectUrl and HTTP 301/302/307/308 to
   * another https Autodiscover URL, at most 10 times. The MobileSync URL found becomes the client's URL.
   */
  async autodiscover(domainOrUrl: string = this.email): Promise<AutodiscoverResult> {
    const step = 'Autodiscover';
    let email = this.email;
    let url: string;
    try {
      url = autodiscoverUrl(domainOrUrl);
    } catch (e) {
      throw new ActiveSyncClientError('usage', step, (e as Error).message);
    }
    for (let redirects = 0; ; redirects++) {
      if (redirects > autodiscoverMaxRedirects)
        throw new ActiveSyncClientError(
          'autodiscover',
          step,
          `more than ${autodiscoverMaxRedirects} redirects`,
          { url },
        );
      const r = await this.#exchange(
        step,
        'POST',
        url,
        { 'content-type': 'text/xml; charset=utf-8' },
        autodiscoverRequest(email),
      );
      if ([301, 302, 303, 307, 308].includes(r.status)) {
        const location = this.#location(r, 'location');
        if (!location || !isAutodiscoverUrl(location))
          throw new ActiveSyncClientError(
            'autodiscover',
            step,
            `HTTP ${r.status} to ${location ?? 'nowhere'}, which is not an https Autodiscover URL`,
            { url, status: r.status },
          );
        url = location;
        continue;
      }
      if (r.status !== 200) throw this.#httpError(step, r);
      let answer;
      try {
        answer = parseAutodiscoverAnswer(new TextDecoder().decode(r.body));
      } catch (e) {
        throw new ActiveSyncClientError(
          'protocol',
          step,
          `the answer is not a mobilesync Autodiscover document: ${(e as Error).message}`,
          { url, status: 200, cause: e },
        );
      }
      switch (answer.kind) {
        case 'redirect-address':
          if (!answer.address.includes('@'))
            throw new ActiveSyncClientError(
              'autodiscover',
              step,
              `redirect to "${answer.address}", which is not an address`,
              { url },
            );
          email = answer.address;
          url = autodiscoverUrl(answer.address);
          continue;
        case 'redirect-url':
          if (!isAutodiscoverUrl(answer.url))
            throw new ActiveSyncClientError(
              'autodiscover',
              step,
              `redirect to ${answer.url}, which is not an https Autodiscover URL`,
              { url },
            );
          url = answer.url;
          continue;
        case 'error':
          throw new ActiveSyncClientError('autodiscover', step, `error ${answer.code}: ${answer.message}`, {
            url,
            status: 200,
          });
        case 'settings':
          if (!answer.mobileSyncUrl)
            throw new ActiveSyncClientError('autodiscover', step, 'the answer names no MobileSync server', {
              url,
              status: 200,
            });
          this.url = answer.mobileSyncUrl;
          return {
            url: answer.mobileSyncUrl,
            email: answer.email ?? email,
            ...(answer.displayName ? { displayName: answer.displayName } : {}),
            servers: answer.servers,
            redirects,
          };
      }
    }
  }

  // ---- OPTIONS ------------------------------------------------------------------------------------

  /** OPTIONS: the versions and commands the server offers; the client then speaks the newest common version. */
  async options(): Promise<OptionsResult> {
    const r = await this.#send('OPTIONS', 'OPTIONS');
    if (r.status !== 200) throw this.#httpError('OPTIONS', r);
    const list = (name: string): string[] =>
      (header(r.headers, name) ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    const versions = list('ms-asprotocolversions');
    const common = clientVersions.filter((v) => versions.includes(v) && Number(v) <= Number(this.#preferred));
    const chosen = common.at(-1);
    if (!chosen)
      throw new ActiveSyncClientError(
        'protocol',
        'OPTIONS',
        `the server offers ActiveSync ${versions.join(', ') || 'no version'}; this client speaks ${clientVersions[0]} to ${this.#preferred}`,
        { url: r.url, status: r.status },
      );
    this.protocolVersion = chosen;
    const server = header(r.headers, 'ms-server-activesync');
    return {
      versions,
      commands: list('ms-asprotocolcommands'),
      ...(server ? { server } : {}),
      protocolVersion: chosen,
    };
  }

  // ---- Provision ----------------------------------------------------------------------------------

  /**
   * MS-ASPROV in two phases: ask for the policy (with DeviceInformation from 14.1), then acknowledge the
   * temporary key with PolicyStatus 1 and keep the final key. A server that sends no key (SOGo) ends
   * after phase 1, and no X-MS-PolicyKey is sent afterwards.
   */
  async provision(): Promise<ProvisionResult> {
    const step = 'Provision';
    this.policyKey = undefined; // the first request carries no key (MS-ASPROV 3.1.5.1)
    const withInfo = Number(this.protocolVersion) >= 14.1;
    const first = await this.#command(
      step,
      provisionRequest(withInfo ? { deviceInformation: this.#deviceInformation } : {}),
    );
    const a1 = this.#parse(step, first, parseProvision);
    if (a1.status !== 1)
      throw new ActiveSyncStatusError(step, first.url, a1.status, statusMeaning(step, a1.status));
    const base = {
      ...(a1.policyStatus === undefined ? {} : { policyStatus: a1.policyStatus }),
      ...(a1.policy ? { policy: a1.policy } : {}),
      remoteWipe: a1.remoteWipe,
    };
    if (a1.policyKey === undefined) return { phases: 1, ...base };
    if (a1.policyStatus !== undefined && a1.policyStatus !== 1)
      throw new ActiveSyncStatusError(
        step,
        first.url,
        a1.policyStatus,
        `policy: ${policyStatusMeaning[a1.policyStatus] ?? 'unknown'}`,
      );
    this.policyKey = a1.policyKey; // the temporary key, acknowledged
    const second = await this.#command(
      step,
      provisionRequest({ ack: { policyKey: a1.policyKey, status: 1 } }),
    );
    const a2 = this.#parse(step, second, parseProvision);
    if (a2.status !== 1)
      throw new ActiveSyncStatusError(step, second.url, a2.status, statusMeaning(step, a2.status));
    if (a2.policyStatus !== undefined && a2.policyStatus !== 1)
      throw new ActiveSyncStatusError(
        step,
        second.url,
        a2.policyStatus,
        `policy: ${policyStatusMeaning[a2.policyStatus] ?? 'unknown'}`,
      );
    if (a2.policyKey === undefined) {
      this.policyKey = undefined;
      throw new ActiveSyncClientError(
        'protocol',
        step,
        'the acknowledgement was answered without a final PolicyKey',
        { url: second.url, status: 200 },
      );
    }
    this.policyKey = a2.policyKey;
    return { phases: 2, ...base, policyKey: a2.policyKey, ...(a2.remoteWipe ? { remoteWipe: true } : {}) };
  }

  // ---- FolderSync, Sync, Ping, Settings -----------------------------------------------------------

  /** FolderSync from `syncKey` (0: the whole hierarchy). */
  async folderSync(syncKey = '0'): Promise<FolderSyncResult> {
    const step = 'FolderSync';
    const a = await this.#command(step, folderSyncRequest(syncKey));
    const result = this.#parse(step, a, parseFolderSync);
    if (result.status !== 1)
      throw new ActiveSyncStatusError(step, a.url, result.status, statusMeaning(step, result.status));
    return result;
  }

  /** Sync one collection: key 0 gets the first key; later keys get changes (an empty answer: none). */
  async sync(
    collectionId: string,
    syncKey: string,
    o: Omit<SyncRequestOptions, 'collectionId' | 'syncKey'> = this.#sync,
  ): Promise<SyncResult> {
    const step = 'Sync';
    const a = await this.#command(step, syncRequest({ ...o, collectionId, syncKey }));
    const result = this.#parse(step, a, (doc) => parseSync(doc, collectionId, syncKey));
    if (result.status !== 1)
      throw new ActiveSyncStatusError(step, a.url, result.status, statusMeaning(step, result.status));
    return result;
  }

  /**
   * Ping: wait up to `heartbeatSeconds` for changes in `folders` (ids are taken as Email folders).
   * Status 1 (no changes), 2 (changes, with the folders), 5 (heartbeat out of range, with the server's
   * limit), 6 (too many folders) and 7 (run FolderSync) are answers; other statuses throw.
   */
  async ping(
    folders: readonly (string | PingFolder | Folder)[],
    heartbeatSeconds: number,
  ): Promise<PingResult> {
    const step = 'Ping';
    if (!Number.isInteger(heartbeatSeconds) || heartbeatSeconds < 1)
      throw new ActiveSyncClientError('usage', step, 'the heartbeat is a whole number of seconds');
    const watch = folders.map((f): PingFolder => {
      if (typeof f === 'string') return { id: f, class: 'Email' };
      if ('serverId' in f) return { id: f.serverId, class: folderClass(f.type) ?? 'Email' };
      return f;
    });
    // The answer may take the whole heartbeat: wait that long and a minute more.
    const a = await this.#command(step, pingRequest(heartbeatSeconds, watch), {
      timeoutMs: (heartbeatSeconds + 60) * 1000,
    });
    const result = this.#parse(step, a, parsePing);
    if (result.outcome === 'error')
      throw new ActiveSyncStatusError(step, a.url, result.status, statusMeaning(step, result.status));
    return result;
  }

  /** Settings UserInformation Get: the display name and addresses the server knows. */
  async settings(): Promise<SettingsResult> {
    const step = 'Settings';
    const a = await this.#command(step, settingsRequest());
    const result = this.#parse(step, a, parseSettings);
    if (result.status !== 1)
      throw new ActiveSyncStatusError(step, a.url, result.status, statusMeaning(step, result.status));
    return result;
  }

  // ---- the first session --------------------------------------------------------------------------

  /**
   * What a new device does: Autodiscover (unless the URL is known) → OPTIONS → Provision → FolderSync 0
   * → Sync of the Inbox with key 0, then with the key it gave until nothing more is available.
   */
  async firstSession(): Promise<FirstSession> {
    const start = this.steps.length;
    const autodiscover = this.url === undefined ? await this.autodiscover() : undefined;
    const options = await this.options();
    const provision = await this.provision();
    const hierarchy = await this.folderSync('0');
    const inbox = hierarchy.added.find((f) => f.kind === 'inbox');
    if (!inbox)
      throw new ActiveSyncClientError(
        'protocol',
        'FolderSync',
        'the folder hierarchy has no Inbox (Type 2)',
        { url: this.url },
      );
    let s = await this.sync(inbox.serverId, '0');
    const items: SyncResult['items'][number][] = [...s.items];
    // Follow MoreAvailable, within reason (a first session of a big mailbox is not the point here).
    for (let round = 0; round < 20; round++) {
      s = await this.sync(inbox.serverId, s.syncKey);
      items.push(...s.items);
      if (!s.moreAvailable) break;
    }
    return {
      url: this.url as string,
      ...(autodiscover ? { autodiscover } : {}),
      options,
      protocolVersion: this.protocolVersion,
      provision,
      folderSyncKey: hierarchy.syncKey,
      folders: hierarchy.added,
      inbox,
      inboxSyncKey: s.syncKey,
      items,
      steps: this.steps.slice(start),
    };
  }

  // ---- HTTP ---------------------------------------------------------------------------------------

  /** A WBXML command, provisioning once when the server asks (HTTP 449, or Status 142–144 from 14.0). */
  async #command(
    cmd: string,
    doc: WbxmlElement,
    o: { timeoutMs?: number } = {},
  ): Promise<Answer & { doc: WbxmlElement | undefined }> {
    for (let provisioned = false; ; provisioned = true) {
      const a = await this.#send(cmd, 'POST', doc, o.timeoutMs);
      if (a.status === 449 && cmd !== 'Provision' && !provisioned) {
        await this.provision();
        continue;
      }
      if (a.status !== 200) throw this.#httpError(cmd, a);
      let decoded: WbxmlElement | undefined;
      if (a.body.length > 0) {
        try {
          decoded = decodeWbxml(a.body);
        } catch (e) {
          const why = e instanceof WbxmlError ? e.message : String(e);
          throw new ActiveSyncClientError('protocol', cmd, `the answer is not WBXML: ${why}`, {
            url: a.url,
            status: 200,
            cause: e,
          });
        }
        const status = Number(textOf(childElement(decoded, 'Status')));
        if (cmd !== 'Provision' && provisionStatuses.has(status) && !provisioned) {
          await this.provision();
          continue;
        }
      }
      return { ...a, doc: decoded };
    }
  }

  /** One request to the ActiveSync URL, following 451 X-MS-Location (and remembering it). */
  async #send(
    cmd: string,
    method: 'POST' | 'OPTIONS',
    doc?: WbxmlElement,
    timeoutMs?: number,
  ): Promise<Answer> {
    const body = doc ? encodeWbxml(doc) : undefined;
    for (let redirects = 0; ; redirects++) {
      const base = this.url;
      if (base === undefined)
        throw new ActiveSyncClientError(
          'usage',
          cmd,
          'no ActiveSync URL: pass url, or run autodiscover() first',
        );
      let url = base;
      let headers: Record<string, string> = {};
      if (method === 'POST') {
        let q;
        try {
          q = encodeQuery(this.queryForm, {
            cmd,
            user: this.email,
            deviceId: this.deviceId,
            deviceType: this.deviceType,
            protocolVersion: this.protocolVersion,
            policyKey: this.policyKey,
          });
        } catch (e) {
          if (e instanceof QueryEncodingError)
            throw new ActiveSyncClientError('usage', cmd, e.message, { url: base });
          throw e;
        }
        url = `${base}${base.includes('?') ? '&' : '?'}${q.query}`;
        headers = { ...q.headers, 'content-type': wbxmlType };
      }
      const a = await this.#exchange(cmd, method, url, headers, body, timeoutMs, method === 'POST');
      if (a.status !== 451) return a;
      const location = this.#location(a, 'x-ms-location');
      if (!this.#followRedirects || !location || redirects >= maxLocationRedirects) {
        const why = !location
          ? 'HTTP 451 without X-MS-Location: run Autodiscover again'
          : !this.#followRedirects
            ? `HTTP 451: the server says to use ${location} (redirects not followed)`
            : `HTTP 451 more than ${maxLocationRedirects} times (last to ${location})`;
        throw new ActiveSyncClientError('redirect', cmd, why, { url, status: 451 });
      }
      const from = new URL(base);
      const to = new URL(location);
      if (to.protocol !== 'https:' && !(to.protocol === 'http:' && from.protocol === 'http:'))
        throw new ActiveSyncClientError('redirect', cmd, `HTTP 451 to ${location}, which is not https`, {
          url,
          status: 451,
        });
      this.url = location; // used for every later request too (MS-ASHTTP 451)
    }
  }

  /** A redirect header resolved against the request URL; undefined when absent or not a URL. */
  #location(a: Answer, name: string): string | undefined {
    const v = header(a.headers, name)?.trim();
    if (!v) return undefined;
    try {
      return new URL(v, a.url).toString();
    } catch {
      return undefined;
    }
  }

  #httpError(step: string, a: Answer): ActiveSyncClientError {
    if (a.status === 401) return new ActiveSyncAuthError(step, a.url);
    const retry = header(a.headers, 'retry-after');
    const seconds = retry !== undefined && /^\d{1,6}$/.test(retry.trim()) ? Number(retry) : undefined;
    return new ActiveSyncHttpError(step, a.url, a.status, seconds);
  }

  #parse<T>(
    step: string,
    a: Answer & { doc: WbxmlElement | undefined },
    parse: (doc: WbxmlElement | undefined) => T,
  ): T {
    try {
      return parse(a.doc);
    } catch (e) {
      if (e instanceof CommandParseError)
        throw new ActiveSyncClientError('protocol', step, e.message, {
          url: a.url,
          status: a.status,
          cause: e,
        });
      throw e;
    }
  }

  /** One HTTP exchange, recorded as a step. */
  async #exchange(
    command: string,
    method: 'POST' | 'OPTIONS',
    url: string,
    extra: Record<string, string>,
    body?: Uint8Array | string,
    timeoutMs?: number,
    isCommand = false,
  ): Promise<Answer> {
    const headers: Record<string, string> = {
      authorization: this.#authorization,
      'user-agent': userAgent,
      ...extra,
    };
    const started = performance.now();
    let r: Dispatcher.ResponseData;
    let bytes: Uint8Array;
    try {
      r = await request(url, {
        dispatcher: this.#dispatcher,
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        reset: !this.#keepAlive,
        ...(timeoutMs === undefined ? {} : { headersTimeout: timeoutMs, bodyTimeout: timeoutMs }),
      });
      bytes = await readAll(r.body);
    } catch (e) {
      throw new ActiveSyncClientError(
        'network',
        command,
        `the request to ${safeUrl(url)} failed: ${networkReason(e)}`,
        { url, cause: e },
      );
    }
    const ms = Math.round(performance.now() - started);
    const h = r.headers;
    const redirect =
      r.statusCode === 451
        ? header(h, 'x-ms-location')
        : r.statusCode >= 300 && r.statusCode < 400
          ? header(h, 'location')
          : undefined;
    const opt = (key: string, name: string): Record<string, string> => {
      const v = header(h, name);
      return v === undefined ? {} : { [key]: v };
    };
    const step: ActiveSyncStep = {
      command,
      method,
      url: safeUrl(url),
      status: r.statusCode,
      ms,
      ...(redirect === undefined ? {} : { redirect }),
      ...(isCommand ? { protocolVersion: this.protocolVersion, queryForm: this.queryForm } : {}),
      path: (header(h, 'x-coexist-path') ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
      ...opt('feServer', 'x-feserver'),
      ...opt('beServer', 'x-beserver'),
      ...opt('calculatedBeTarget', 'x-calculatedbetarget'),
      ...opt('requestId', 'request-id'),
      bytes: bytes.length,
    };
    this.steps.push(step);
    this.#onStep?.(step);
    return { status: r.statusCode, headers: h, body: bytes, url };
  }
}

async function readAll(body: Dispatcher.ResponseData['body']): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxAnswerBytes) {
      body.destroy();
      throw new Error(`the answer is larger than ${maxAnswerBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A network failure in a few words: the error code and message, never request headers. */
function networkReason(e: unknown): string {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.cause?.code ?? err.code;
  const message = err.cause?.message ?? err.message ?? String(e);
  return code && !message.includes(code) ? `${code} ${message}` : message;
}
