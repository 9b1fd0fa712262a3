/**
 * The estate file loader: read, parse YAML, validate against the schema, run the semantic checks, and
 * build the core's Estate. A broken file is reported whole: `EstateConfigError` lists every problem with
 * its file, line:column, path and code (docs/config.md, "Error reports").
 *
 * Two YAML parsers, one answer:
 * - js-yaml parses first: about 15 times faster than `yaml` on large files (a 100 000-user estate, 28 MB,
 *   loads in about 1.4 s instead of 15 s). A valid file is then validated and checked, and never takes
 *   another path. For a file with schema or semantic problems, js-yaml's event stream (with source
 *   offsets) gives their line:column; positions are computed only for problems, and only along their paths.
 * - When js-yaml rejects the text, the `yaml` package (`parseDocument` + `LineCounter`) parses it again and
 *   reports every YAML error with its position (js-yaml stops at the first), or, if it finds none, its
 *   reading of the file is validated and checked the same way. Both parsers read YAML 1.2 with the core
 *   schema (no timestamps, no merge keys).
 */
import { readFile } from 'node:fs/promises';
import type { ScalarEvent } from 'js-yaml';
import { EVENT_ID, SCALAR_STYLE, load as fastLoad, getScalarValue, parseEvents } from 'js-yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { LineCounter, isMap, isNode, isScalar, parseDocument } from 'yaml';
import { z } from 'zod';
import type { ErrorCode } from '../core/errors.ts';
import type { Estate } from '../core/estate/estate.ts';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import { indexEstate } from '../core/estate/estate-index.ts';
import type { EstatePath, LooseEstateFile } from './check-estate.ts';
import { appendSegment, checkEstate, closest, pathToString } from './check-estate.ts';
import type { ConfigProblem } from './config-error.ts';
import { EstateConfigError } from './config-error.ts';
import type { EstateFile } from './estate-schema.ts';
import { estateFileSchema } from './estate-schema.ts';
import { toEstate } from './to-estate.ts';
import type { LdapDirectoryOptions } from '../directory/ldap-settings.ts';

/** The settings an estate file carries besides the estate itself: where its users live. */
export interface EstateSettings {
  readonly directory?: { readonly ldap?: LdapDirectoryOptions };
  /** The extranet smart lockout (docs/security.md); `LockoutSettings` in dataplane/lockout.ts. */
  readonly lockout?: EstateFile['lockout'];
  /** The edge's limits (docs/security.md "Limits and timeouts at the edge"); `EdgeLimits` in dataplane/edge-limits.ts. */
  readonly limits?: EstateFile['limits'];
  /** The health pages' probes (docs/operations.md "Health pages"); `HealthSettings` in dataplane/health.ts. */
  readonly health?: EstateFile['health'];
}

/** A loaded estate file: the estate, its index (what the engine and servers use) and its settings. */
export interface LoadedEstate {
  readonly estate: Estate;
  readonly index: EstateIndex;
  readonly settings: EstateSettings;
}

/**
 * Read, load and index an estate file. Throws `EstateConfigError` listing every problem (CX_CONFIG_READ
 * when the file cannot be read).
 */
export async function loadEstate(path: string): Promise<LoadedEstate> {
  return finish(compile(await readEstateText(path), path));
}

/**
 * Load and index an estate from YAML (or JSON) text; `fileName` is only used in problems. Throws
 * `EstateConfigError`.
 */
export function parseEstate(text: string, fileName: string): LoadedEstate {
  return finish(compile(text, fileName));
}

/** A checked estate and the identity map the checks built, which the index reuses. */
interface Loaded {
  readonly estate: Estate;
  readonly identities?: Map<string, number>;
  readonly settings: EstateSettings;
}

/** Index the estate, reusing the identity map the checks built. */
function finish(loaded: Loaded): LoadedEstate {
  const { estate, identities, settings } = loaded;
  return { estate, index: indexEstate(estate, identities ? { identities } : {}), settings };
}

/** The happy path: a valid file is checked once and converted; anything else is reported. */
function accept(data: unknown): Loaded | undefined {
  const parsed = estateFileSchema.safeParse(data);
  if (!parsed.success) return undefined;
  const identities = new Map<string, number>();
  if (checkEstate(parsed.data, { identities }).length > 0) return undefined;
  const { directory, lockout, limits, health } = parsed.data;
  const settings = {
    ...(directory ? { directory } : {}),
    ...(lockout ? { lockout } : {}),
    ...(limits ? { limits } : {}),
    ...(health ? { health } : {}),
  };
  return { estate: toEstate(parsed.data), identities, settings };
}

async function readEstateText(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const message = `cannot read the estate file: ${osReason(e)}`;
    throw new EstateConfigError(path, [{ file: path, path: '', code: 'CX_CONFIG_READ', message }], {
      cause: e,
    });
  }
  return text;
}

function compile(text: string, fileName: string): Loaded {
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let data: unknown = jsonFastPath(source);
  if (data === undefined) {
    try {
      // At most 100 aliases, like `yaml`'s default: nested aliases would blow up validation ("billion laughs").
      data = fastLoad(source, { filename: fileName, maxAliases: 100 });
    } catch {
      return parseWithYaml(source, fileName);
    }
  }
  const loaded = accept(data);
  if (loaded) return loaded;
  throw new EstateConfigError(fileName, locateAll(fileName, findProblems(data), eventLocator(source)));
}

/**
 * JSON is YAML 1.2, and `JSON.parse` reads it about three times faster than js-yaml (large generated
 * estates are often JSON). Anything that is not valid JSON takes the YAML path, which also locates problems.
 */
function jsonFastPath(source: string): unknown {
  let i = 0;
  while (
    i < source.length &&
    (source[i] === ' ' || source[i] === '\n' || source[i] === '\r' || source[i] === '\t')
  )
    i++;
  if (source[i] !== '{') return undefined;
  try {
    return JSON.parse(source) as unknown;
  } catch {
    return undefined;
  }
}

/** js-yaml rejected the text: `yaml` reports every syntax error, or reads the file itself. */
function parseWithYaml(source: string, file: string): Loaded {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false });
  const position = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    throw new EstateConfigError(
      file,
      doc.errors.map((e) => ({
        file,
        ...position(e.pos[0]),
        path: '',
        code: 'CX_CONFIG_SYNTAX',
        message: syntaxMessage(source, e.code, e.pos[0], e.message),
      })),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (e) {
    // e.g. too many aliases (a "billion laughs" file)
    const message = `the YAML cannot be read: ${e instanceof Error ? e.message : String(e)}`;
    throw new EstateConfigError(file, [
      { file, ...position(0), path: '', code: 'CX_CONFIG_SYNTAX', message },
    ]);
  }
  const loaded = accept(data);
  if (loaded) return loaded;
  const locator: Locator = {
    offset: (path, atKey) => offsetInDocument(doc, path, atKey),
    position,
  };
  throw new EstateConfigError(
    file,
    locateAll(file, findProblems(data), () => locator),
  );
}

// --- Problems ----------------------------------------------------------------------------------------

/** A problem before it has a position. */
interface Found {
  readonly path: EstatePath;
  readonly code: ErrorCode;
  readonly message: string;
  /** Point at the key (the last segment of `path`) rather than at its value: for unknown keys. */
  readonly atKey?: boolean;
  /** Another place the message names; its line is added to the message. */
  readonly related?: EstatePath;
}

/**
 * Every schema and semantic problem of parsed YAML. The semantic checks also run when the schema fails,
 * on what is left once the rejected values are removed (check-estate.ts explains how that avoids
 * follow-up problems).
 */
function findProblems(data: unknown): Found[] {
  const found: Found[] = [];
  const parsed = estateFileSchema.safeParse(data);
  const invalid: EstatePath[] = [];
  const unknownKeys: EstatePath[] = [];
  let checked: LooseEstateFile | undefined;
  if (parsed.success) {
    checked = parsed.data;
  } else {
    for (const issue of parsed.error.issues) {
      const path = issue.path as EstatePath;
      if (issue.code === 'unrecognized_keys') {
        unknownKeys.push(path);
        for (const key of issue.keys) {
          found.push({
            path: [...path, key],
            code: 'CX_CONFIG_SCHEMA',
            message: unknownKeyMessage(path, key),
            atKey: true,
          });
        }
      } else {
        invalid.push(path);
        found.push({ path, code: 'CX_CONFIG_SCHEMA', message: issueMessage(issue, path, data) });
      }
    }
    if (isRecord(data) && !invalid.some((p) => p.length === 0)) {
      for (const path of invalid) removeAt(data, path);
      checked = data as LooseEstateFile;
    }
  }
  if (checked) found.push(...checkEstate(checked, { invalid, unknownKeys }));
  return found;
}

interface Locator {
  /** Source offset of the node at `path` (or of its key), else of its nearest ancestor. */
  offset(path: EstatePath, atKey: boolean): number | undefined;
  position(offset: number): { line: number; column: number };
}

/** Give each problem its line:column; `makeLocator` learns every path that will be asked for first. */
function locateAll(
  file: string,
  found: readonly Found[],
  makeLocator: (paths: EstatePath[]) => Locator,
): ConfigProblem[] {
  const paths = found.flatMap((f) => (f.related ? [f.path, f.related] : [f.path]));
  const locator = makeLocator(paths);
  const at = (path: EstatePath, atKey = false): { line?: number; column?: number } => {
    const offset = locator.offset(path, atKey);
    return offset === undefined ? {} : locator.position(offset);
  };
  return found.map((f) => {
    let message = f.message;
    if (f.related) {
      const { line } = at(f.related);
      if (line !== undefined) message += ` (line ${line})`;
    }
    return { file, ...at(f.path, f.atKey), path: pathToString(f.path), code: f.code, message };
  });
}

/** yaml's message, with the key named for a duplicate key. */
function syntaxMessage(source: string, code: string, offset: number, message: string): string {
  if (code === 'DUPLICATE_KEY') {
    const key = /^\s*["']?([^"':\n]+)/.exec(source.slice(offset, offset + 200))?.[1]?.trim();
    if (key) return `duplicate key "${key}": a key appears once per mapping (${message})`;
  }
  return message;
}

// --- Positions ---------------------------------------------------------------------------------------

/**
 * Line:column of each path (at its key when `atKey`), as the loader would report it, with either parser.
 * For tests: the two must agree.
 */
export function positionsOf(
  source: string,
  paths: readonly { path: EstatePath; atKey?: boolean }[],
  parser: 'js-yaml' | 'yaml',
): ({ line: number; column: number } | undefined)[] {
  let locator: Locator;
  if (parser === 'js-yaml') {
    locator = eventLocator(source)(paths.map((p) => p.path));
  } else {
    const lineCounter = new LineCounter();
    const doc = parseDocument(source, { lineCounter });
    locator = {
      offset: (path, atKey) => offsetInDocument(doc, path, atKey),
      position: (offset) => {
        const { line, col } = lineCounter.linePos(offset);
        return { line, column: col };
      },
    };
  }
  return paths.map(({ path, atKey = false }) => {
    const offset = locator.offset(path, atKey);
    return offset === undefined ? undefined : locator.position(offset);
  });
}

/** With `yaml`'s document: `getIn` along the path, up to the nearest node that exists. */
function offsetInDocument(doc: Document, path: EstatePath, atKey: boolean): number | undefined {
  const key = atKey ? path[path.length - 1] : undefined;
  const target = atKey ? path.slice(0, -1) : path;
  for (let n = target.length; n >= 0; n--) {
    const node: unknown = n === 0 ? doc.contents : doc.getIn(target.slice(0, n), true);
    if (!isNode(node)) continue;
    if (key !== undefined && n === target.length && isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(key));
      const keyNode = pair?.key as YamlNode | undefined;
      if (keyNode?.range) return keyNode.range[0];
    }
    if (node.range) return node.range[0];
  }
  return undefined;
}

interface Frame {
  readonly kind: 'map' | 'seq';
  readonly path: string;
  /** Whether some wanted path goes through this collection (else its children are not recorded). */
  readonly wanted: boolean;
  index: number;
  expectingKey: boolean;
  key: string | undefined;
  keyOffset: number;
}

/**
 * With js-yaml's event stream: one pass that records the offsets of the nodes (and keys) on the wanted
 * paths only: locating a problem in a 100 000-user file takes about a second.
 */
function eventLocator(source: string): (paths: EstatePath[]) => Locator {
  return (paths) => {
    const prefixes = new Set<string>();
    for (const p of paths) for (let n = 0; n <= p.length; n++) prefixes.add(pathToString(p.slice(0, n)));
    const nodes = new Map<string, number>();
    const keys = new Map<string, number>();
    const stack: Frame[] = [];
    let events: ReturnType<typeof parseEvents>;
    try {
      events = parseEvents(source, {});
    } catch {
      events = []; // cannot happen after a successful load; the problems are then reported without positions
    }
    for (const event of events) {
      if (event.type === EVENT_ID.DOCUMENT) continue;
      if (event.type === EVENT_ID.POP) {
        stack.pop();
        continue;
      }
      let offset =
        event.type === EVENT_ID.SCALAR
          ? scalarOffset(source, event)
          : event.type === EVENT_ID.ALIAS
            ? event.anchorStart - 1
            : event.start;
      const parent = stack[stack.length - 1];
      // An empty value (`name:`) has no offset of its own: point at its key.
      if (offset < 0 && parent?.kind === 'map' && !parent.expectingKey) offset = parent.keyOffset;
      let path: string | undefined;
      let wanted = false;
      if (!parent) {
        path = '';
        wanted = true;
      } else if (parent.kind === 'map' && parent.expectingKey) {
        // A key: remember it (its offset too, for unknown keys); a complex key is never on a path.
        parent.expectingKey = false;
        parent.key = event.type === EVENT_ID.SCALAR ? getScalarValue(source, event) : undefined;
        parent.keyOffset = offset;
        if (parent.wanted && parent.key !== undefined)
          keys.set(appendSegment(parent.path, parent.key), offset);
      } else {
        if (parent.wanted) {
          const segment = parent.kind === 'seq' ? parent.index : parent.key;
          if (segment !== undefined) path = appendSegment(parent.path, segment);
          wanted = path !== undefined && prefixes.has(path);
        }
        if (parent.kind === 'seq') parent.index++;
        else parent.expectingKey = true;
      }
      if (path !== undefined && wanted && offset >= 0 && !nodes.has(path)) nodes.set(path, offset);
      if (event.type === EVENT_ID.SEQUENCE || event.type === EVENT_ID.MAPPING) {
        stack.push({
          kind: event.type === EVENT_ID.SEQUENCE ? 'seq' : 'map',
          path: path ?? '',
          wanted,
          index: 0,
          expectingKey: true,
          key: undefined,
          keyOffset: -1,
        });
      }
    }
    let lineStarts: number[] | undefined;
    return {
      offset(path, atKey) {
        if (atKey) {
          const k = keys.get(pathToString(path));
          if (k !== undefined) return k;
        }
        for (let n = path.length - (atKey ? 1 : 0); n >= 0; n--) {
          const o = nodes.get(pathToString(path.slice(0, n)));
          if (o !== undefined) return o;
        }
        return undefined;
      },
      position(offset) {
        lineStarts ??= startsOfLines(source);
        let lo = 0;
        let hi = lineStarts.length - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if ((lineStarts[mid] as number) <= offset) lo = mid;
          else hi = mid - 1;
        }
        return { line: lo + 1, column: offset - (lineStarts[lo] as number) + 1 };
      },
    };
  };
}

/** Where a scalar starts as written: at its opening quote, or at the `|`/`>` of a block scalar. */
function scalarOffset(source: string, event: ScalarEvent): number {
  switch (event.style) {
    case SCALAR_STYLE.SINGLE_QUOTED:
    case SCALAR_STYLE.DOUBLE_QUOTED:
      return event.valueStart - 1;
    case SCALAR_STYLE.LITERAL_BLOCK:
    case SCALAR_STYLE.FOLDED_BLOCK: {
      const indicator = Math.max(
        source.lastIndexOf('|', event.valueStart),
        source.lastIndexOf('>', event.valueStart),
      );
      return indicator >= 0 ? indicator : event.valueStart;
    }
    default:
      return event.valueStart;
  }
}

function startsOfLines(source: string): number[] {
  const starts = [0];
  for (let i = source.indexOf('\n'); i >= 0; i = source.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

// --- Messages for schema issues ----------------------------------------------------------------------

type Issue = z.core.$ZodIssue;

function issueMessage(issue: Issue, path: EstatePath, data: unknown): string {
  const { found, value } = valueAt(data, path);
  const field = lastKey(path);
  if (path.length === 0) {
    const expected =
      'an estate file is a mapping with name, organization, domains, namespaces, sites and users';
    return value === undefined || value === null
      ? `the file is empty: ${expected}`
      : `${expected}; this file is ${describeValue(value)}`;
  }
  if (!found) {
    const description = descriptionAt(path);
    return `missing required field ${field}: add ${field}: <${expectedNoun(issue)}>${description ? `. ${description}` : ''}`;
  }
  switch (issue.code) {
    case 'invalid_type': {
      if (value === null)
        return `${field} has no value: expected ${nounOf(issue.expected)} after "${field}:"`;
      let hint = '';
      if (issue.expected === 'string' && (typeof value === 'number' || typeof value === 'boolean')) {
        hint = `: quote it ('${String(value)}') to make it text`;
      } else if (issue.expected === 'boolean' && typeof value === 'string') {
        hint = ': write true or false';
      }
      return `expected ${nounOf(issue.expected)}, got ${describeValue(value)}${hint}`;
    }
    case 'invalid_value':
      return notOneOf(value, issue.values);
    case 'invalid_union':
      return `${describeValue(value)} does not match any of the allowed forms: ${issue.message}`;
    case 'too_small':
      if (issue.origin === 'array') {
        return `${field} needs at least ${String(issue.minimum)} ${Number(issue.minimum) === 1 ? 'entry' : 'entries'}`;
      }
      if (issue.origin === 'string') return `${field} must not be empty`;
      return issue.message;
    case 'invalid_format':
    case 'custom':
      return issue.message.startsWith('must')
        ? `${preview(value)} ${issue.message}`
        : `${preview(value)}: ${issue.message}`;
    default:
      return issue.message;
  }
}

function notOneOf(value: unknown, allowed: readonly unknown[]): string {
  const list = allowed.map((v) => String(v)).join(', ');
  if (typeof value === 'string' && allowed.some((v) => typeof v === 'number' && String(v) === value.trim())) {
    return `${preview(value)} is text: write the number without quotes (one of ${list})`;
  }
  const near =
    typeof value === 'string'
      ? closest(
          value,
          allowed.map((v) => String(v)),
        )
      : undefined;
  return `${preview(value)} is not allowed here: use one of ${list}${near !== undefined ? ` (did you mean ${near}?)` : ''}`;
}

function unknownKeyMessage(parent: EstatePath, key: string): string {
  const allowed = allowedKeys(parent);
  const near = closest(key, allowed);
  const where = parent.length === 0 ? 'at the top level' : `in ${pathToString(parent)}`;
  return `unknown key "${key}" ${where}${near ? `: did you mean ${near}?` : ''} (allowed: ${allowed.join(', ')})`;
}

function expectedNoun(issue: Issue): string {
  switch (issue.code) {
    case 'invalid_type':
      return (
        { string: 'text', boolean: 'true|false', array: 'list', object: 'mapping' }[
          issue.expected as string
        ] ?? issue.expected
      );
    case 'invalid_value':
      return issue.values.map(String).join('|');
    default:
      return 'value';
  }
}

function nounOf(expected: string): string {
  switch (expected) {
    case 'string':
      return 'text';
    case 'boolean':
      return 'true or false';
    case 'number':
      return 'a number';
    case 'object':
      return 'a mapping (key: value lines or { key: value })';
    case 'array':
      return 'a list (- item lines or [a, b])';
    default:
      return expected;
  }
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the text ${preview(value)}`;
  return `the ${typeof value} ${String(value)}`;
}

/** A value as it would be written: text quoted and shortened, numbers and booleans as they are. */
function preview(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') return describeValue(value);
  const s = value.replace(/\n/g, '\\n');
  return s.length > 70 ? `"${s.slice(0, 66)}..."` : `"${s}"`;
}

// --- The schema and the data at a path ---------------------------------------------------------------

function schemaAt(path: EstatePath): z.ZodType | undefined {
  let s: z.ZodType | undefined = estateFileSchema;
  for (const seg of path) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodType>)[String(seg)];
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else return undefined;
    if (!s) return undefined;
  }
  return s;
}

function unwrap(s: z.ZodType): z.ZodType {
  let t = s;
  while (t instanceof z.ZodOptional || t instanceof z.ZodNullable || t instanceof z.ZodDefault)
    t = t.unwrap() as z.ZodType;
  return t;
}

function descriptionAt(path: EstatePath): string | undefined {
  const s = schemaAt(path);
  return s?.description ?? (s ? unwrap(s).description : undefined);
}

function allowedKeys(path: EstatePath): string[] {
  const s = schemaAt(path);
  const obj = s ? unwrap(s) : undefined;
  return obj instanceof z.ZodObject ? Object.keys(obj.shape) : [];
}

function valueAt(data: unknown, path: EstatePath): { found: boolean; value: unknown } {
  let cur: unknown = data;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === 'number' && seg < cur.length) cur = cur[seg];
    else if (isRecord(cur) && Object.hasOwn(cur, seg)) cur = cur[seg];
    else return { found: false, value: undefined };
  }
  return { found: true, value: cur };
}

function removeAt(data: unknown, path: EstatePath): void {
  const parent = valueAt(data, path.slice(0, -1)).value;
  const last = path[path.length - 1];
  if (last === undefined) return;
  if (Array.isArray(parent) && typeof last === 'number') parent[last] = undefined;
  else if (isRecord(parent)) Reflect.deleteProperty(parent, last);
}

function isRecord(v: unknown): v is Record<PropertyKey, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function lastKey(path: EstatePath): string {
  for (let i = path.length - 1; i >= 0; i--) if (typeof path[i] === 'string') return path[i] as string;
  return 'value';
}

function osReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const reasons: Record<string, string> = {
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EISDIR: 'it is a directory, not a file',
    ENOTDIR: 'a part of the path is not a directory',
    EMFILE: 'too many open files',
  };
  const reason = err.code !== undefined ? reasons[err.code] : undefined;
  if (reason) return `${reason} (${err.code})`;
  return err.message ?? String(e);
}
