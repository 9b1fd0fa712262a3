/**
 * The estate file loader: read, parse YAML, validate against the schema, run the semantic checks, and
 * build the core's Estate. A broken file is reported whole: `EstateConfigError` lists every problem with
 * its file, line:column, path and code (docs/config.md, "Error reports").
 *
 * Two paths, one answer:
 * - The fast path parses with js-yaml (about 15 times faster than `yaml` on large files: a 100 000-user
 *   estate loads in about 2 s instead of 15 s), validates and checks. A valid file never leaves it.
 * - Anything else (a YAML error, a schema issue, a semantic problem) goes to the reference path, which
 *   parses again with the `yaml` package (`parseDocument` + `LineCounter`) to put a line and column on
 *   every problem, and reports every YAML error. The `yaml` package is the reference: should the two
 *   parsers disagree on a file, the reference path decides. Both read YAML 1.2 with the core schema.
 *   Positions are computed only for problems.
 */
import { readFile } from 'node:fs/promises';
import { load as fastLoad } from 'js-yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { LineCounter, isMap, isNode, isScalar, parseDocument } from 'yaml';
import { z } from 'zod';
import type { Estate } from '../core/estate/estate.ts';
import type { EstatePath, EstateProblem, LooseEstateFile } from './check-estate.ts';
import { checkEstate, closest, pathToString } from './check-estate.ts';
import type { ConfigProblem } from './config-error.ts';
import { EstateConfigError } from './config-error.ts';
import type { EstateFile } from './estate-schema.ts';
import { estateFileSchema } from './estate-schema.ts';
import { toEstate } from './to-estate.ts';

/** Read and load an estate file. Throws `EstateConfigError` (CX_CONFIG_READ when the file cannot be read). */
export async function loadEstateFile(path: string): Promise<Estate> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const message = `cannot read the estate file: ${osReason(e)}`;
    throw new EstateConfigError(path, [{ file: path, path: '', code: 'CX_CONFIG_READ', message }], { cause: e });
  }
  return parseEstate(text, path);
}

/** Load an estate from YAML text; `fileName` is only used in problems. Throws `EstateConfigError`. */
export function parseEstate(text: string, fileName: string): Estate {
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let data: unknown;
  try {
    data = fastLoad(source, { filename: fileName });
  } catch {
    return parseReference(source, fileName);
  }
  const parsed = estateFileSchema.safeParse(data);
  if (parsed.success && checkEstate(parsed.data).length === 0) return toEstate(parsed.data);
  return parseReference(source, fileName);
}

/** The reference path: `yaml` with positions, every problem collected. Returns only if there is none. */
function parseReference(source: string, file: string): Estate {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false });
  const position = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  if (doc.errors.length > 0) {
    throw new EstateConfigError(
      file,
      doc.errors.map((e) => ({ file, ...position(e.pos[0]), path: '', code: 'CX_CONFIG_SYNTAX', message: e.message })),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (e) {
    // e.g. too many aliases (a "billion laughs" file)
    const message = `the YAML cannot be read: ${e instanceof Error ? e.message : String(e)}`;
    throw new EstateConfigError(file, [{ file, ...position(0), path: '', code: 'CX_CONFIG_SYNTAX', message }]);
  }

  const locate = (path: EstatePath, keyOf?: string): { line?: number; column?: number } => {
    const offset = offsetOf(doc, path, keyOf);
    return offset === undefined ? {} : position(offset);
  };
  const problems: ConfigProblem[] = [];
  const parsed = estateFileSchema.safeParse(data);
  let checked: LooseEstateFile | undefined;
  const invalid: EstatePath[] = [];
  const unknownKeys: EstatePath[] = [];
  if (parsed.success) {
    checked = parsed.data;
  } else {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        unknownKeys.push(issue.path as EstatePath);
        for (const key of issue.keys) {
          const path = [...(issue.path as EstatePath), key];
          const message = unknownKeyMessage(issue.path as EstatePath, key);
          problems.push({ file, ...locate(issue.path as EstatePath, key), path: pathToString(path), code: 'CX_CONFIG_SCHEMA', message });
        }
        continue;
      }
      const path = issue.path as EstatePath;
      invalid.push(path);
      const message = issueMessage(issue, path, data);
      problems.push({ file, ...locate(path), path: pathToString(path), code: 'CX_CONFIG_SCHEMA', message });
    }
    // Check what is left, without the values the schema rejected (see check-estate.ts).
    if (isRecord(data) && !invalid.some((p) => p.length === 0)) {
      for (const path of invalid) removeAt(data, path);
      checked = data as LooseEstateFile;
    }
  }
  if (checked) {
    for (const p of checkEstate(checked, { invalid, unknownKeys })) problems.push(semanticProblem(p, file, locate));
  }
  if (problems.length > 0) throw new EstateConfigError(file, problems);
  // Only reached when the fast parser and `yaml` disagree: the reference decides.
  return toEstate(parsed.data as EstateFile);
}

function semanticProblem(
  p: EstateProblem,
  file: string,
  locate: (path: EstatePath) => { line?: number; column?: number },
): ConfigProblem {
  let message = p.message;
  if (p.related) {
    const { line } = locate(p.related);
    if (line !== undefined) message += ` (line ${line})`;
  }
  return { file, ...locate(p.path), path: pathToString(p.path), code: p.code, message };
}

// --- Positions ---------------------------------------------------------------------------------------

/**
 * The source offset of the node at `path`, or of its nearest existing ancestor (a missing required field
 * points at the mapping that lacks it). With `keyOf`, the offset of that key in the mapping at `path`.
 */
function offsetOf(doc: Document, path: EstatePath, keyOf?: string): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (!isNode(node)) continue;
    if (keyOf !== undefined && n === path.length && isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === keyOf);
      const key = pair?.key as YamlNode | undefined;
      if (key?.range) return key.range[0];
    }
    if (node.range) return node.range[0];
  }
  return undefined;
}

// --- Messages for schema issues ----------------------------------------------------------------------

type Issue = z.core.$ZodIssue;

function issueMessage(issue: Issue, path: EstatePath, data: unknown): string {
  const { found, value } = valueAt(data, path);
  const field = lastKey(path);
  if (path.length === 0) {
    const expected = 'an estate file is a mapping with name, organization, domains, namespaces, sites and users';
    return value === undefined || value === null ? `the file is empty: ${expected}` : `${expected}; this file is ${describeValue(value)}`;
  }
  if (!found) {
    const description = descriptionAt(path);
    return `missing required field ${field}: add ${field}: <${expectedNoun(issue)}>${description ? `. ${description}` : ''}`;
  }
  switch (issue.code) {
    case 'invalid_type': {
      if (value === null) return `${field} has no value: expected ${nounOf(issue.expected)} after "${field}:"`;
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
    case 'invalid_union': {
      const literals = unionLiterals(issue);
      if (literals) return notOneOf(value, literals);
      return `${describeValue(value)} does not match any of the allowed forms: ${issue.message}`;
    }
    case 'too_small':
      if (issue.origin === 'array') {
        return `${field} needs at least ${String(issue.minimum)} ${Number(issue.minimum) === 1 ? 'entry' : 'entries'}`;
      }
      if (issue.origin === 'string') return `${field} must not be empty`;
      return issue.message;
    case 'invalid_format':
    case 'custom':
      return issue.message.startsWith('must') ? `${preview(value)} ${issue.message}` : `${preview(value)}: ${issue.message}`;
    default:
      return issue.message;
  }
}

function notOneOf(value: unknown, allowed: readonly unknown[]): string {
  const list = allowed.map((v) => String(v)).join(', ');
  if (typeof value === 'string' && allowed.some((v) => typeof v === 'number' && String(v) === value.trim())) {
    return `${preview(value)} is text: write the number without quotes (one of ${list})`;
  }
  const near = typeof value === 'string' ? closest(value, allowed.map((v) => String(v))) : undefined;
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
      return { string: 'text', boolean: 'true|false', array: 'list', object: 'mapping' }[issue.expected as string] ?? issue.expected;
    case 'invalid_value':
      return issue.values.map(String).join('|');
    case 'invalid_union':
      return unionLiterals(issue)?.map(String).join('|') ?? 'value';
    default:
      return 'value';
  }
}

/** The allowed values of a union of literals (e.g. the Exchange versions), or undefined for other unions. */
function unionLiterals(issue: z.core.$ZodIssueInvalidUnion): unknown[] | undefined {
  return issue.errors.length > 0 && issue.errors.every((branch) => branch.length === 1 && branch[0]?.code === 'invalid_value')
    ? issue.errors.flatMap((branch) => (branch[0] as z.core.$ZodIssueInvalidValue).values)
    : undefined;
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
  while (t instanceof z.ZodOptional || t instanceof z.ZodNullable || t instanceof z.ZodDefault) t = t.unwrap() as z.ZodType;
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
  else if (isRecord(parent)) delete parent[last];
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
