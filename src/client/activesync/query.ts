/**
 * The command line of an ActiveSync request (MS-ASHTTP §2.2.1.1.1, docs/protocols.md §3.1), in the plain form
 * `Cmd=..&User=..&DeviceId=..&DeviceType=..` with its MS-ASProtocolVersion and X-MS-PolicyKey headers, or
 * in the base64 form (MS-ASHTTP 2.2.1.1.1.1) that carries version, policy key and parameters itself.
 * Pure: what `src/core/protocols/activesync.ts` parses on the server side, this writes.
 */
import { commandCodes } from '../../core/protocols/activesync.ts';

export type QueryForm = 'plain' | 'base64';

/** One request's command line. */
export interface CommandLine {
  /** `Sync`, `FolderSync`, `Ping`, `Provision`, `Settings`… */
  readonly cmd: string;
  /** The loggable user (`User=`, base64 tag 8); the credential is what authorizes. */
  readonly user: string;
  /** 1–32 letters or digits (MS-ASHTTP DeviceId). */
  readonly deviceId: string;
  readonly deviceType: string;
  /** `12.1`, `14.0`, `14.1`, `16.0`, `16.1`. */
  readonly protocolVersion: string;
  /** The policy key, a 32-bit unsigned integer as decimal text; absent before Provision. */
  readonly policyKey?: string | undefined;
  /** LCID of the base64 form; default 0x0409 (en-US). */
  readonly locale?: number;
  /** Command parameters by their plain-form names: CollectionId, ItemId, AttachmentName, LongId, Occurrence, SaveInSent, AcceptMultiPart. */
  readonly params?: Readonly<Record<string, string>>;
}

/** The query (without `?`) and the headers that go with it. */
export interface EncodedQuery {
  readonly query: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** A command line that cannot be written (bad DeviceId, a version the base64 form has no byte for…). */
export class QueryEncodingError extends Error {
  override name = 'QueryEncodingError';
}

const codeOf = new Map(Object.entries(commandCodes).map(([code, cmd]) => [cmd, Number(code)]));

/** Parameter tags of the base64 form (docs/protocols.md §3.1 [26g]); 7 (Options) is built from two flags. */
const paramTags: Readonly<Record<string, number>> = {
  AttachmentName: 0,
  CollectionId: 1,
  ItemId: 3,
  LongId: 4,
  Occurrence: 6,
};

/** The versions that may use the base64 form, with their version byte. */
const versionBytes: Readonly<Record<string, number>> = {
  '12.1': 121,
  '14.0': 140,
  '14.1': 141,
  '16.0': 160,
  '16.1': 161,
};

export const isDeviceId = (s: string): boolean => /^[A-Za-z0-9]{1,32}$/.test(s);

/** Write `line` in `form`. */
export function encodeQuery(form: QueryForm, line: CommandLine): EncodedQuery {
  if (!isDeviceId(line.deviceId)) throw new QueryEncodingError('DeviceId must be 1 to 32 letters or digits');
  if (!/^[\x21-\x7e]{1,64}$/.test(line.deviceType))
    throw new QueryEncodingError('DeviceType must be 1 to 64 printable ASCII characters');
  // The base64 alphabet (A-Z a-z 0-9 + / =) is legal in a query as it is, and devices send it so (the
  // MS-ASHTTP examples); SOGo does not percent-decode it (`%3D` padding gave HTTP 500 from it).
  return form === 'plain' ? encodePlain(line) : { query: base64Query(line), headers: {} };
}

function encodePlain(line: CommandLine): EncodedQuery {
  const pairs: [string, string][] = [
    ['Cmd', line.cmd],
    ['User', line.user],
    ['DeviceId', line.deviceId],
    ['DeviceType', line.deviceType],
    ...Object.entries(line.params ?? {}).filter(([name]) => name !== 'AcceptMultiPart'),
  ];
  const headers: Record<string, string> = { 'MS-ASProtocolVersion': line.protocolVersion };
  if (line.policyKey !== undefined) headers['X-MS-PolicyKey'] = line.policyKey;
  // MS-ASAcceptMultiPart is a header in the plain form (docs/protocols.md §4.1).
  if (line.params?.['AcceptMultiPart'] !== undefined)
    headers['MS-ASAcceptMultiPart'] = line.params['AcceptMultiPart'];
  return {
    query: pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&'),
    headers,
  };
}

/** The base64 blob (not yet percent-encoded): version, command, locale, DeviceId, policy key, DeviceType, parameters. */
export function base64Query(line: CommandLine): string {
  const version = versionBytes[line.protocolVersion];
  if (version === undefined)
    throw new QueryEncodingError(`protocol version ${line.protocolVersion} cannot use the base64 query form`);
  const code = codeOf.get(line.cmd);
  if (code === undefined) throw new QueryEncodingError(`${line.cmd} has no base64 command code`);
  const utf8 = new TextEncoder();
  const out: number[] = [];
  const field = (bytes: Uint8Array, what: string): void => {
    if (bytes.length > 255) throw new QueryEncodingError(`${what} is longer than 255 bytes`);
    out.push(bytes.length, ...bytes);
  };
  const locale = line.locale ?? 0x0409;
  out.push(version, code, locale & 0xff, (locale >> 8) & 0xff);
  field(utf8.encode(line.deviceId), 'DeviceId');
  out.push(...policyKeyBytes(line.policyKey));
  field(utf8.encode(line.deviceType), 'DeviceType');
  let options = 0;
  let hasOptions = false;
  for (const [name, value] of Object.entries(line.params ?? {})) {
    if (name === 'SaveInSent' || name === 'AcceptMultiPart') {
      hasOptions = true;
      if (value === 'T') options |= name === 'SaveInSent' ? 0x01 : 0x02;
      continue;
    }
    const tag = paramTags[name];
    if (tag === undefined) throw new QueryEncodingError(`parameter ${name} has no base64 tag`);
    out.push(tag);
    field(utf8.encode(value), name);
  }
  if (hasOptions) out.push(7, 1, options);
  out.push(8);
  field(utf8.encode(line.user), 'User');
  let binary = '';
  for (const b of out) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** The policy key field: length 0, or 4 and the key as a little-endian unsigned 32-bit integer. */
function policyKeyBytes(key: string | undefined): number[] {
  if (key === undefined) return [0];
  const n = /^\d{1,10}$/.test(key) ? Number(key) : NaN;
  if (!(n >= 0 && n <= 0xffffffff))
    throw new QueryEncodingError(
      'the policy key is not a 32-bit unsigned integer, so the base64 form cannot carry it',
    );
  return [4, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}
