/**
 * Run a real client (Debian's python3-exchangelib, npm's ews-javascript-api) as a child process whose name
 * resolution is the lab's: the child gets the lab's host map (`"host:443"` -> the port of the listener that
 * name reaches) as JSON in COEXIST_LAB_HOSTS and applies it itself (exchangelib-driver.py patches
 * getaddrinfo and exchangelib's dnspython checks; lab-dns-preload.ts wraps net/tls.connect), so neither the
 * machine's DNS nor /etc/hosts is touched. The child trusts only the lab CA, connects from the lab's
 * internal or external client address, and prints one JSON result as its last line.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../../src/lab/index.ts';
import { hostsByServer, labAddresses } from '../../../src/lab/index.ts';

/** Debian's interpreter: the python3 on PATH may be a pyenv shim that cannot import Debian's packages. */
export const debianPython = '/usr/bin/python3';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/** One thing a client did: a DNS question or an HTTP exchange (with the lab's request id, if it got one). */
export interface ClientEvent {
  readonly kind: 'dns' | 'http';
  readonly query?: string;
  readonly found?: boolean;
  readonly method?: string;
  readonly url?: string;
  readonly status?: number;
  readonly error?: string;
  readonly requestId?: string;
  readonly path?: string;
  readonly authorization?: string | null;
  readonly soapAction?: string | null;
  /** The WS-Addressing Action of a SOAP Autodiscover request. */
  readonly action?: string;
  readonly operation?: string;
  readonly requestServerVersion?: string;
  readonly settings?: readonly string[];
  readonly folders?: readonly string[];
  /** GetFolder's BaseShape (exchangelib: with its AdditionalProperties). */
  readonly shape?: string;
  /** The ExchangeImpersonation header's ConnectingSID, `Form=value` (exchangelib). */
  readonly impersonation?: string;
  /** The X-AnchorMailbox header sent (exchangelib). */
  readonly anchor?: string;
  readonly acceptableResponseSchema?: string;
  readonly soapEnabled?: string;
}

/** What a driver printed. */
export interface ClientResult {
  readonly client: string;
  readonly ok: boolean;
  readonly error?: { readonly type: string; readonly message: string; readonly where?: string };
  /** How many events belong to discovery (Autodiscover and, for exchangelib, the version probe). */
  readonly discoveryEnd?: number;
  readonly events: readonly ClientEvent[];
  readonly [key: string]: unknown;
}

export interface ClientRun {
  readonly code: number | null;
  readonly result: ClientResult;
  readonly stderr: string;
}

/** The lab's DNS as the clients get it: every estate host name on port 443. */
export function labHosts(lab: Lab): Record<string, number> {
  const out: Record<string, number> = {};
  for (const hosts of hostsByServer(lab.index).values()) {
    for (const host of hosts) {
      const to = lab.resolve(host, 443);
      if (to) out[`${host}:443`] = to.port;
    }
  }
  return out;
}

export type ClientLocation = 'internal' | 'external';

async function run(
  lab: Lab,
  file: string,
  args: readonly string[],
  env: Record<string, string>,
  job: unknown,
  from: ClientLocation,
): Promise<ClientRun> {
  const tmp = await mkdtemp(join(tmpdir(), 'coexist-client-'));
  try {
    const childEnv: Record<string, string> = {
      // A clean environment: no proxies, no NODE_OPTIONS or test-runner variables from this process.
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      HOME: tmp,
      TMPDIR: tmp,
      COEXIST_LAB_HOSTS: JSON.stringify(labHosts(lab)),
      COEXIST_LAB_LISTEN: labAddresses.listen,
      COEXIST_LAB_SOURCE: from === 'internal' ? labAddresses.internalClient : labAddresses.externalClient,
      COEXIST_LAB_JOB: JSON.stringify(job),
      ...env,
    };
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      // The timeout only stops a hung client; no assertion depends on time.
      execFile(
        file,
        args,
        { cwd: repoRoot, env: childEnv, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
        (err, out, errOut) => {
          // err.code is the exit status, or a string (ENOENT) when the program could not be started.
          const exit = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
          resolve({
            code: exit,
            stdout: out,
            stderr: exit === null && err ? `${errOut}\n${err.message}` : errOut,
          });
        },
      );
    });
    const last = stdout.trim().split('\n').at(-1) ?? '';
    let result: ClientResult;
    try {
      result = { client: file, events: [], ...(JSON.parse(last) as Partial<ClientResult>) } as ClientResult;
    } catch {
      result = {
        client: file,
        ok: false,
        error: {
          type: 'NoResult',
          message: `the driver printed no JSON result; stderr: ${stderr.slice(-2000)}`,
        },
        events: [],
      };
    }
    return { code, result, stderr };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export interface ExchangelibJob {
  readonly email: string;
  readonly password: string;
  /** Talk to this EWS URL with autodiscover off; absent: POX Autodiscover first. */
  readonly endpoint?: string;
  /** ResolveNames entries. */
  readonly resolve: readonly string[];
  /** Open this mailbox with access_type=IMPERSONATION (the ExchangeImpersonation header); needs `endpoint`. */
  readonly impersonate?: string;
  /** `auth_type`: Basic (the default) or NTLM (python3-requests-ntlm; needs `OPENSSL_CONF` with OpenSSL's legacy provider). */
  readonly auth?: 'basic' | 'ntlm';
  /** The user name to sign in with, when not `email` (NTLM: `DOMAIN\\user`). */
  readonly login?: string;
  /** Configuration's `version` (with `endpoint`): exchangelib then sends no version probe. */
  readonly version?: 'Exchange2007_SP1';
}

/** python3-exchangelib through exchangelib-driver.py; `env` adds to the child's environment (`OPENSSL_CONF`). */
export function runExchangelib(
  lab: Lab,
  job: ExchangelibJob,
  from: ClientLocation,
  env: Record<string, string> = {},
): Promise<ClientRun> {
  return run(
    lab,
    debianPython,
    [here('./exchangelib-driver.py')],
    { ...env, REQUESTS_CA_BUNDLE: lab.caPath },
    job,
    from,
  );
}

export interface EwsJsJob {
  readonly email: string;
  readonly password: string;
  /** UserSettingName names. */
  readonly settings: readonly string[];
  /** The AutodiscoverService's ExchangeVersion (SOAP Autodiscover needs Exchange2010 or later). */
  readonly autodiscoverVersion?: string;
  /** One EWS call (ResolveName, then bind the inbox) at the URL of this setting, as this ExchangeVersion. */
  readonly ews?: { readonly url: string; readonly version: string; readonly resolve: string };
}

/** ews-javascript-api through ewsjs-driver.ts, with lab-dns-preload.ts as the process's DNS. */
export function runEwsJs(lab: Lab, job: EwsJsJob, from: ClientLocation): Promise<ClientRun> {
  return run(
    lab,
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      new URL('./lab-dns-preload.ts', import.meta.url).href,
      here('./ewsjs-driver.ts'),
    ],
    { NODE_EXTRA_CA_CERTS: lab.caPath },
    job,
    from,
  );
}
