/**
 * Exchange ActiveSync (`/Microsoft-Server-ActiveSync`): the command line in the query, in the plain form
 * or the base64 form of MS-ASHTTP §2.2.1.1.1 (docs/protocols.md §3.1), and the identity: the Basic user
 * authorizes; the `User` value is only a loggable claim (docs/protocols.md §3).
 */
import { basicUser } from './basic-auth.ts';
import type { Identity, Invalid, ProtocolModule, Query, RequestHead } from './request-head.ts';
import {
  decodeBase64,
  decodeUtf8,
  invalid,
  isInvalid,
  parseQuery,
  percentDecode,
  single,
  underPath,
} from './request-head.ts';

/** One ActiveSync command line, the same whichever form it came in. */
export interface ActiveSyncRequest {
  readonly form: 'plain' | 'base64';
  /** Command name, e.g. `Sync`, `Ping`, `Provision`. */
  readonly cmd: string;
  readonly deviceId: string;
  readonly deviceType: string;
  /** `User` (plain) or parameter tag 8 (base64): informational. */
  readonly user?: string;
  /** `14.0`…: base64 version byte, or the `MS-ASProtocolVersion` header for the plain form. */
  readonly protocolVersion?: string;
  /** LCID of the base64 form (0x0409 = en-US). */
  readonly locale?: number;
  /** Policy key as a decimal string: base64 field or the `X-MS-PolicyKey` header; absent before Provision. */
  readonly policyKey?: string;
  /** Command parameters by their plain-form names (`CollectionId`, `ItemId`, `SaveInSent`…). */
  readonly params: Readonly<Record<string, string>>;
}

/** Command codes of the base64 form (docs/protocols.md §3.1 [26f]). */
export const commandCodes: Readonly<Record<number, string>> = {
  0: 'Sync',
  1: 'SendMail',
  2: 'SmartForward',
  3: 'SmartReply',
  4: 'GetAttachment',
  9: 'FolderSync',
  10: 'FolderCreate',
  11: 'FolderDelete',
  12: 'FolderUpdate',
  13: 'MoveItems',
  14: 'GetItemEstimate',
  15: 'MeetingResponse',
  16: 'Search',
  17: 'Settings',
  18: 'Ping',
  19: 'ItemOperations',
  20: 'Provision',
  21: 'ResolveRecipients',
  22: 'ValidateCert',
};

/** Plain-form commands: the base64 table plus the 2.5-era ones of MS-ASProtocolCommands (§4.1). */
const plainCommands = new Map(
  [
    ...Object.values(commandCodes),
    'GetHierarchy',
    'CreateCollection',
    'DeleteCollection',
    'MoveCollection',
  ].map((c) => [c.toLowerCase(), c]),
);

/** Parameter tags of the base64 form (docs/protocols.md §3.1 [26g]); 7 (Options) is a bitmask. */
const paramTags: Readonly<Record<number, string>> = {
  0: 'AttachmentName',
  1: 'CollectionId',
  3: 'ItemId',
  4: 'LongId',
  6: 'Occurrence',
  8: 'User',
};

/** Protocol versions that may use the base64 form (12.1, 14.0, 14.1, 16.0, 16.1). */
const base64Versions = new Set([121, 140, 141, 160, 161]);

const deviceIdOk = (s: string): boolean => /^[A-Za-z0-9]{1,32}$/.test(s);
const bad = (detail: string): Invalid => invalid('CX_IDENTITY_QUERY_MALFORMED', detail);
const badDevice = (): Invalid =>
  invalid('CX_IDENTITY_DEVICE_ID', 'DeviceId must be 1 to 32 letters or digits');

/** Parse the query of an ActiveSync POST in either form (§3.1 parser rules). */
export function parseActiveSyncQuery(head: RequestHead): ActiveSyncRequest | Invalid {
  // "a query value that contains =/& pairs with Cmd= is the plain form" (§3.1)
  return /(?:^|&)cmd=/i.test(head.query) ? parsePlain(head) : parseBase64(head.query);
}

function parsePlain(head: RequestHead): ActiveSyncRequest | Invalid {
  const q = parseQuery(head.query);
  if (!q) return bad('query has a malformed percent escape');
  const fields: Record<string, string | undefined> = {};
  for (const name of ['Cmd', 'User', 'DeviceId', 'DeviceType']) {
    const v = single(q, name, 'CX_IDENTITY_QUERY_MALFORMED');
    if (isInvalid(v)) return v;
    fields[name] = v;
  }
  const { Cmd: cmd, User: user, DeviceId: deviceId, DeviceType: deviceType } = fields;
  const command = cmd === undefined ? undefined : plainCommands.get(cmd.toLowerCase());
  if (!command) return bad('Cmd is not an ActiveSync command');
  if (deviceId === undefined || !deviceIdOk(deviceId)) return badDevice();
  if (deviceType === undefined || !/^[\x21-\x7e]{1,64}$/.test(deviceType))
    return bad('DeviceType is missing or not printable');
  const params = otherParams(q);
  if (isInvalid(params)) return params;
  const version = head.headers['ms-asprotocolversion'];
  const policyKey = head.headers['x-ms-policykey'];
  return {
    form: 'plain',
    cmd: command,
    deviceId,
    deviceType,
    ...(user ? { user } : {}),
    ...(version ? { protocolVersion: version.trim() } : {}),
    ...(policyKey ? { policyKey: policyKey.trim() } : {}),
    params,
  };
}

const plainParams = ['AttachmentName', 'CollectionId', 'ItemId', 'LongId', 'Occurrence', 'SaveInSent'];

function otherParams(q: Query): Record<string, string> | Invalid {
  const params: Record<string, string> = {};
  for (const name of plainParams) {
    const v = single(q, name, 'CX_IDENTITY_QUERY_MALFORMED');
    if (isInvalid(v)) return v;
    if (v !== undefined) params[name] = v;
  }
  return params;
}

function parseBase64(query: string): ActiveSyncRequest | Invalid {
  const text = percentDecode(query, false); // percent-decode first (§3.1); `+` is base64 here
  if (!text) return bad('query is neither the plain nor the base64 form');
  const b = decodeBase64(text);
  if (!b) return bad('query is not base64');
  let at = 0;
  const byte = (what: string): number | Invalid =>
    at < b.length ? (b[at++] ?? 0) : bad(`${what} overruns the query`);
  const bytes = (n: number, what: string): Uint8Array | Invalid => {
    if (at + n > b.length) return bad(`${what} overruns the query`);
    at += n;
    return b.subarray(at - n, at);
  };
  const text8 = (n: number, what: string): string | Invalid => {
    const v = bytes(n, what);
    if (isInvalid(v)) return v;
    return decodeUtf8(v) ?? bad(`${what} is not UTF-8`);
  };

  const version = byte('version');
  if (isInvalid(version)) return version;
  if (!base64Versions.has(version)) return bad(`protocol version byte ${version} cannot use the base64 form`);
  const code = byte('command code');
  if (isInvalid(code)) return code;
  const cmd = commandCodes[code];
  if (!cmd) return bad(`unknown command code ${code}`);
  const locale = bytes(2, 'locale');
  if (isInvalid(locale)) return locale;
  const idLength = byte('device ID length');
  if (isInvalid(idLength)) return idLength;
  const deviceId = text8(idLength, 'device ID');
  if (isInvalid(deviceId)) return deviceId;
  if (!deviceIdOk(deviceId)) return badDevice();
  const keyLength = byte('policy key length');
  if (isInvalid(keyLength)) return keyLength;
  if (keyLength !== 0 && keyLength !== 4) return bad('policy key length is neither 0 nor 4');
  const key = bytes(keyLength, 'policy key');
  if (isInvalid(key)) return key;
  const typeLength = byte('device type length');
  if (isInvalid(typeLength)) return typeLength;
  const deviceType = text8(typeLength, 'device type');
  if (isInvalid(deviceType)) return deviceType;
  if (deviceType === '') return bad('device type is empty');

  const params: Record<string, string> = {};
  while (at < b.length) {
    const tag = byte('parameter tag');
    if (isInvalid(tag)) return tag;
    const length = byte('parameter length');
    if (isInvalid(length)) return length;
    if (tag === 7) {
      const options = bytes(length, 'Options');
      if (isInvalid(options)) return options;
      const mask = options[0] ?? 0;
      params['SaveInSent'] = mask & 0x01 ? 'T' : 'F';
      params['AcceptMultiPart'] = mask & 0x02 ? 'T' : 'F';
      continue;
    }
    const name = paramTags[tag] ?? `Tag${tag}`;
    const value = text8(length, name);
    if (isInvalid(value)) return value;
    if (name in params) return bad(`parameter ${name} is repeated`);
    params[name] = value;
  }
  const { User: user, ...rest } = params;
  const [lo = 0, hi = 0] = locale;
  return {
    form: 'base64',
    cmd,
    deviceId,
    deviceType,
    ...(user ? { user } : {}),
    protocolVersion: `${Math.floor(version / 10)}.${version % 10}`,
    locale: lo | (hi << 8),
    ...(keyLength === 4
      ? { policyKey: String(new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true)) }
      : {}),
    params: rest,
  };
}

/** ActiveSync's identity: the Basic user, else the claimed `User` (docs/protocols.md §3), with the claim kept. */
export function activeSyncIdentity(head: RequestHead, request: ActiveSyncRequest | undefined): Identity {
  const basic = basicUser(head);
  if (isInvalid(basic)) return basic;
  const claimed = request?.user;
  if (basic !== undefined)
    return {
      kind: 'user',
      user: basic,
      source: 'basic-auth',
      basicUser: basic,
      ...(claimed ? { claimed } : {}),
    };
  if (claimed) return { kind: 'user', user: claimed, source: 'activesync-query', claimed };
  return { kind: 'anonymous' };
}

/** ActiveSync: OPTIONS carries no command line; every other method must. */
export const activeSync: ProtocolModule = {
  protocol: 'activesync',
  matches: (head) => underPath(head.path, '/microsoft-server-activesync'),
  identify(head) {
    if (head.method.toUpperCase() === 'OPTIONS' && head.query === '')
      return activeSyncIdentity(head, undefined);
    const request = parseActiveSyncQuery(head);
    return isInvalid(request) ? request : activeSyncIdentity(head, request);
  },
};
