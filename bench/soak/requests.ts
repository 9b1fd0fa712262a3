/**
 * The soak's normal requests, one kind per protocol, as clients send them (the same bodies as the lab's flow
 * tests), and what each must get back, taken from the routing engine: the servers its answer comes back
 * through (`traceFlow`, the first leg), the mailbox server that answers it, or the redirect it gets.
 */
import type { EstateIndex } from '../../src/core/estate/estate-index.ts';
import type { Protocol } from '../../src/core/protocols/protocol.ts';
import { traceFlow } from '../../src/core/routing/flow.ts';

/** The protocols of the mixed traffic. */
export const trafficKinds = ['activesync', 'ews', 'autodiscover', 'owa', 'rpc', 'oab'] as const;
export type TrafficKind = (typeof trafficKinds)[number];

/** One request to send. */
export interface RequestSpec {
  readonly kind: TrafficKind;
  readonly user: string;
  readonly host: string;
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string;
  /** Outlook Anywhere: each channel on a connection of its own (MS-RPCH). */
  readonly ownConnection: boolean;
}

/** What a right answer is. */
export interface Expected {
  /** `X-Coexist-Path`: the servers the answer came back through. */
  readonly path: readonly string[];
  readonly status: number;
  /** The mailbox server that answered (`X-BEServer`), when a mailbox server answers. */
  readonly beServer?: string;
  /** The redirect's target, when the entry server redirects. */
  readonly location?: string;
}

export const primaryHost = 'mail.o365info.com';
export const autodiscoverHost = 'autodiscover.o365info.com';

/** FolderSync with SyncKey 0 (MS-ASWBXML code page 7). */
export const folderSync = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01,
]);
/** A Ping with HeartbeatInterval 3540 s, Exchange's maximum (MS-ASCMD, code page 13). */
export const pingBody = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x48, 0x03, 0x33, 0x35, 0x34, 0x30, 0x00, 0x01, 0x01,
]);
const easHeaders = { 'ms-asprotocolversion': '12.1', 'content-type': 'application/vnd.ms-sync.wbxml' };
/** An EWS GetFolder of the inbox (docs/protocols.md §4.6). */
const getFolder =
  `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Header><t:RequestServerVersion Version="Exchange2007_SP1"/></soap:Header><soap:Body>` +
  `<GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FolderShape><t:BaseShape>Default</t:BaseShape></FolderShape><FolderIds><t:DistinguishedFolderId Id="inbox"/></FolderIds></GetFolder>` +
  `</soap:Body></soap:Envelope>`;
const poxRequest = (address: string): string =>
  `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${address}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`;
const oabGuid = '7f1d5c8e-2b3a-4c5d-9e8f-0a1b2c3d4e5f';

/** The ActiveSync query of a device. */
export function easPath(user: string, cmd: string, deviceId: string): string {
  const local = user.slice(0, user.indexOf('@'));
  return `/Microsoft-Server-ActiveSync?Cmd=${cmd}&User=${local}&DeviceId=${deviceId}&DeviceType=SoakPhone`;
}

/** The request of `kind` for `user`; `device` tells the soak's devices apart. */
export function requestSpec(
  index: EstateIndex,
  kind: TrafficKind,
  user: string,
  device: string,
): RequestSpec {
  const base = { kind, user, ownConnection: false };
  const at = (host: string, path: string): { host: string; url: string } => ({
    host,
    url: `https://${host}${path}`,
  });
  switch (kind) {
    case 'activesync':
      return {
        ...base,
        ...at(primaryHost, easPath(user, 'FolderSync', device)),
        method: 'POST',
        headers: easHeaders,
        body: folderSync,
      };
    case 'ews':
      return {
        ...base,
        ...at(primaryHost, '/EWS/Exchange.asmx'),
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8' },
        body: getFolder,
      };
    case 'autodiscover':
      return {
        ...base,
        ...at(autodiscoverHost, '/Autodiscover/Autodiscover.xml'),
        method: 'POST',
        headers: { 'content-type': 'text/xml' },
        body: poxRequest(user),
      };
    case 'owa':
      return { ...base, ...at(primaryHost, '/owa/'), method: 'GET', headers: {} };
    case 'rpc': {
      // The RPC endpoint is the mailbox server (Outlook's RpcProxy target), from the estate.
      const fqdn = index.mailbox(user)?.server.fqdn ?? 'unknown';
      return {
        ...base,
        ...at(primaryHost, `/rpc/rpcproxy.dll?${fqdn}:6001`),
        method: 'RPC_OUT_DATA',
        headers: { 'x-lab-out-bytes': '2048', 'content-length': '76' },
        body: new Uint8Array(76),
        ownConnection: true,
      };
    }
    case 'oab':
      return { ...base, ...at(primaryHost, `/OAB/${oabGuid}/oab.xml`), method: 'GET', headers: {} };
  }
}

/** The right answer to `protocol` for `user` sent to `host`, from the engine. */
export function expectedAnswer(index: EstateIndex, protocol: Protocol, user: string, host: string): Expected {
  const flow = traceFlow(index, { user, protocol, client: 'external', host });
  const path = flow.legs[0] ?? [];
  if (flow.legs.length > 1) {
    // The entry server redirected and the client followed: the soak's client does not follow.
    const redirect = flow.steps.find((s) => s.kind === 'redirect');
    // A redirect is a 302, or ActiveSync's legacy 451 (core/routing/decision.ts).
    return {
      path,
      status: protocol === 'activesync' ? 451 : 302,
      ...(redirect?.url === undefined ? {} : { location: redirect.url }),
    };
  }
  // Autodiscover is answered by the server's own pipeline, not the mailbox store: no X-BEServer.
  const by = flow.outcome.kind === 'answered' && protocol !== 'autodiscover' ? flow.outcome.by : undefined;
  const mailboxServer = index.mailbox(user)?.server.name;
  return {
    path,
    status: flow.outcome.kind === 'refused' ? flow.outcome.status : 200,
    ...(by !== undefined && by === mailboxServer ? { beServer: by } : {}),
  };
}
