/**
 * Kerberos clients against the lab on Active Directory (docs/lab.md §5.6): `kinit` into a credential cache of
 * the test's own, `curl --negotiate` at the lab's front door with it, and a Negotiate token made by MIT
 * Kerberos's own GSS-API initiator (squid's `negotiate_kerberos_auth_test`) for a service name of the test's
 * choosing. Real KDC (Samba's), real client library, real curl.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/index.ts';
import { labAddresses } from '../../src/lab/index.ts';
import { kinit } from '../../src/lab/samba/kerberos.ts';
import { run } from '../../src/lab/daemon.ts';
import { runCurl } from './curl.ts';

/** What curl received: the last answer's status, body and headers, and every answer's request id. */
export interface CurlAnswer {
  readonly status: number;
  readonly body: string;
  /** The last answer's head, as curl wrote it. */
  readonly head: string;
  /** Every head curl wrote (one per answer). */
  readonly heads: string[];
  readonly requestIds: string[];
}

/** A user's Kerberos logon: a credential cache in a temp dir of its own, removed by `close`. */
export interface KerberosLogon {
  readonly env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** `kinit principal` against the lab's DC; the environment curl and the initiator then need. */
export async function kerberosLogon(lab: Lab, principal: string, password: string): Promise<KerberosLogon> {
  const samba = lab.samba;
  assert.ok(samba?.kerberos, 'the lab runs its DC with the KDC');
  const dir = await mkdtemp(join(tmpdir(), 'coexist-krb5cc-'));
  const ccache = join(dir, 'cc');
  try {
    await kinit(samba, principal, password, ccache);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    env: { ...process.env, KRB5_CONFIG: samba.krb5ConfFile, KRB5CCNAME: `FILE:${ccache}` },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * A Negotiate token (SPNEGO around a Kerberos AP-REQ) for `HTTP@<host>` from MIT's initiator with the logon's
 * ticket: base64, as it goes after `Authorization: Negotiate`.
 */
export async function negotiateToken(logon: KerberosLogon, host: string): Promise<string> {
  const out = await run('/usr/lib/squid/negotiate_kerberos_auth_test', [host], { env: logon.env });
  const token = /Token:\s*([A-Za-z0-9+/]+=*)\s*$/m.exec(out.output)?.[1];
  assert.ok(token, `negotiate_kerberos_auth_test ${host} made a token (exit ${String(out.code)})`);
  return token;
}

/**
 * curl at the lab's front door for `url` (https://mail.o365info.com/...), with `args` and the logon's env;
 * `stdin` for what curl reads there (`-K -`: a password, never on the command line).
 */
export async function curlAt(
  lab: Lab,
  url: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  stdin?: string,
): Promise<CurlAnswer> {
  const host = new URL(url).hostname;
  const to = lab.resolve(host, 443);
  assert.ok(to, `the lab resolves ${host}`);
  const run = await runCurl(
    [
      '--interface',
      labAddresses.externalClient,
      '--cacert',
      lab.caPath,
      '--connect-to',
      `${host}:443:${to.address}:${to.port}`,
      '-D',
      '-',
      ...args,
      url,
    ],
    { env, ...(stdin === undefined ? {} : { stdin }) },
  );
  const text = run.out;
  const requestIds = [...text.matchAll(/^request-id: (\S+)\r?$/gim)].map((m) => m[1] ?? '');
  const heads = [...text.matchAll(/^HTTP\/[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n/gm)].map((m) => m[0]);
  const lastHead = text.lastIndexOf('\r\n\r\n');
  return {
    status: run.status,
    body: text.slice(lastHead + 4),
    head: heads.at(-1) ?? '',
    heads,
    requestIds,
  };
}

/** The `WWW-Authenticate` schemes of a head, in order (`Negotiate`, `NTLM`, `Basic`). */
export const challengeSchemes = (head: string): string[] =>
  [...head.matchAll(/^www-authenticate:\s*(\S+)/gim)].map((m) => m[1] ?? '');

/** The lab's EWS URL. */
export const ews = 'https://mail.o365info.com/EWS/Exchange.asmx';
/** curl's arguments for an EWS GetFolder of the caller's Inbox (its answer names the mailbox). */
const getFolder =
  '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2007_SP1"/></soap:Header><soap:Body>' +
  '<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder>' +
  '</soap:Body></soap:Envelope>';
export const soap = ['-H', 'Content-Type: text/xml; charset=utf-8', '--data-binary', getFolder];
