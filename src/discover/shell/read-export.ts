/**
 * One Exchange Management Shell export read into records: `Export-Csv` (with or without
 * `-NoTypeInformation`) or `ConvertTo-Json`, in the encodings Windows PowerShell writes (UTF-8 with or
 * without a byte-order mark, and UTF-16 LE, what `ConvertTo-Json > file` gives in Windows PowerShell 5.1).
 * Each record remembers where it was (`file:line` for CSV) so later messages can point at it. A file that
 * is not well-formed is refused with its name, line and column (docs/discover.md "Reading the exports").
 */
import { readFile } from 'node:fs/promises';
import { parse as parseCsv, CsvError } from 'csv-parse/sync';
import { CoexistError } from '../../core/errors.ts';

export type ExportFormat = 'csv' | 'json';

export interface ExportRecord {
  /** Property name -> value: text for CSV; whatever JSON held for JSON. */
  readonly values: Readonly<Record<string, unknown>>;
  /** `file:line` (CSV) or `file[index]` (JSON). */
  readonly source: string;
}

export interface ShellExport {
  readonly file: string;
  readonly format: ExportFormat;
  /** Every property name seen, in first-seen order (CSV: the header). */
  readonly columns: readonly string[];
  readonly records: readonly ExportRecord[];
  /** The `#TYPE` line of an `Export-Csv` without `-NoTypeInformation`, e.g. `Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer`. */
  readonly typeName?: string;
}

/** A malformed or unreadable export: names the file and, when known, the line and column. */
export function exportError(file: string, message: string, line?: number, column?: number): CoexistError {
  const at = line === undefined ? file : `${file}:${line}${column === undefined ? '' : `:${column}`}`;
  return new CoexistError('CX_DISCOVER_INPUT', `${at}: ${message}`, {
    file,
    ...(line !== undefined && { line }),
    ...(column !== undefined && { column }),
  });
}

export async function readShellExport(file: string): Promise<ShellExport> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw exportError(file, `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseShellExport(decode(bytes), file);
}

/** Text from the bytes PowerShell wrote: a UTF-16 LE or UTF-8 byte-order mark decides, else UTF-8. */
function decode(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return bytes.subarray(3).toString('utf8');
  return bytes.toString('utf8');
}

/** Parse export text: JSON when it starts with `[` or `{`, CSV otherwise. */
export function parseShellExport(text: string, file: string): ShellExport {
  const trimmed = text.replace(/^\uFEFF/, '');
  const first = /\S/.exec(trimmed);
  // A cmdlet that found nothing (no MAPI virtual directory before Exchange 2013) may leave an empty file.
  if (!first) return { file, format: 'csv', columns: [], records: [] };
  return first[0] === '[' || first[0] === '{' ? parseJson(trimmed, file) : parseCsvExport(trimmed, file);
}

function parseJson(text: string, file: string): ShellExport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    // V8's message gives no position in every Node version: find the first error ourselves.
    const found = jsonError(text);
    const { line, column } = lineColumn(text, found?.offset ?? text.length);
    throw exportError(file, `not valid JSON: ${found?.message ?? (e as Error).message}`, line, column);
  }
  // ConvertTo-Json writes one object without brackets, several as an array.
  const items = Array.isArray(data) ? data : [data];
  const columns: string[] = [];
  const seen = new Set<string>();
  const records = items.map((item, i): ExportRecord => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw exportError(
        file,
        `item ${i} is not an object: expected ConvertTo-Json's output of a cmdlet's objects`,
      );
    }
    for (const key of Object.keys(item)) {
      if (!seen.has(key)) {
        seen.add(key);
        columns.push(key);
      }
    }
    return { values: item as Record<string, unknown>, source: `${file}[${i}]` };
  });
  return { file, format: 'json', columns, records };
}

/**
 * Where a JSON text first goes wrong (RFC 8259's grammar), and what is wrong there; undefined when it is
 * valid. Only run after JSON.parse refused the text, to say where.
 */
export function jsonError(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  class Stop extends Error {
    constructor(
      readonly offset: number,
      message: string,
    ) {
      super(message);
    }
  }
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i] ?? '')) i++;
  };
  const what = (): string => (i >= text.length ? 'the end of the file' : `"${text[i] ?? ''}"`);
  const fail = (expected: string): never => {
    throw new Stop(i, `expected ${expected}, found ${what()}`);
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('a property name in double quotes');
        string();
        ws();
        if (text[i] !== ':') fail('":"');
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail('"," or "}"');
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail('"," or "]"');
      }
    }
    if (c === '"') return string();
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 64));
    if (!m) fail('a value');
    i += m?.[0].length ?? 0;
  };
  const string = (): void => {
    i++;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') i += 2;
      else if (c !== undefined && c < ' ') fail('the string to end before the line does');
      else i++;
    }
    fail('the closing double quote of a string');
  };
  try {
    value();
    ws();
    if (i < text.length) fail('the end of the file');
    return undefined;
  } catch (e) {
    if (e instanceof Stop) return { offset: e.offset, message: e.message };
    throw e;
  }
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

function parseCsvExport(text: string, file: string): ShellExport {
  let body = text;
  let typeName: string | undefined;
  let lineOffset = 0;
  // Export-Csv without -NoTypeInformation (Windows PowerShell's default) starts with `#TYPE <type name>`.
  const typeLine = /^#TYPE ([^\r\n]*)\r?\n/.exec(body);
  if (typeLine) {
    typeName = typeLine[1]?.trim();
    body = body.slice(typeLine[0].length);
    lineOffset = 1;
  }
  let rows: { record: string[]; info: { bytes: number } }[];
  try {
    rows = parseCsv(body, { info: true, skip_empty_lines: true, bom: true }) as unknown as typeof rows;
  } catch (e) {
    if (e instanceof CsvError) throw csvError(e, body, file, lineOffset);
    throw e;
  }
  const header = rows[0]?.record;
  if (!header) throw exportError(file, 'no header line: expected the output of Export-Csv');
  const empty = header.findIndex((h) => h.trim() === '');
  if (empty >= 0) {
    throw exportError(
      file,
      `column ${empty + 1} of the header has no name`,
      1 + lineOffset,
      fieldStart(lineOf(body, 1), empty),
    );
  }
  // The line a record starts on, from the byte offset where the previous one ended (csv-parse's own line
  // count counts a quoted CRLF twice); blank lines between records are skipped as the parser skips them.
  // Offsets only grow, so one cursor counts the newlines once (a Get-Mailbox export may have 100 000 rows).
  const bytes = Buffer.from(body, 'utf8');
  let cursor = 0;
  let line = 1;
  const lineAt = (offset: number): number => {
    let start = offset;
    while (bytes[start] === 0x0d || bytes[start] === 0x0a) start++;
    for (; cursor < start; cursor++) if (bytes[cursor] === 0x0a) line++;
    return line;
  };
  const records = rows.slice(1).map(({ record }, i): ExportRecord => {
    const values: Record<string, string> = {};
    header.forEach((name, j) => (values[name] = record[j] ?? ''));
    return { values, source: `${file}:${lineAt(rows[i]?.info.bytes ?? 0) + lineOffset}` };
  });
  return { file, format: 'csv', columns: header, records, ...(typeName !== undefined && { typeName }) };
}

/** csv-parse's error as file:line:column: the line it names, the column where the offending field starts. */
function csvError(e: CsvError, body: string, file: string, lineOffset: number): CoexistError {
  const context = e as CsvError & { lines?: number; index?: number; column?: string | number };
  const line = context.lines;
  const what: Record<string, string> = {
    CSV_INVALID_CLOSING_QUOTE: 'a quoted field is followed by text before the next comma',
    CSV_QUOTE_NOT_CLOSED: 'a quoted field is never closed',
    CSV_RECORD_INCONSISTENT_FIELDS_LENGTH: 'this line has a different number of fields than the header',
    CSV_RECORD_INCONSISTENT_COLUMNS: 'this line has a different number of fields than the header',
    CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'a quoted field is followed by text before the next comma',
  };
  const reason = what[e.code] ?? e.message;
  if (line === undefined) return exportError(file, `not valid CSV: ${reason}`);
  const text = lineOf(body, line);
  let column: number | undefined;
  if (e.code === 'CSV_INVALID_CLOSING_QUOTE' || e.code === 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE') {
    column = afterClosingQuote(text);
  } else if (e.code === 'CSV_QUOTE_NOT_CLOSED') {
    column = openingQuote(text);
  } else if (typeof context.index === 'number') {
    column = fieldStart(text, context.index);
  }
  const record = (e as CsvError & { record?: unknown }).record;
  const header = lineOf(body, 1).split(',').length;
  const field =
    e.code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH' || e.code === 'CSV_RECORD_INCONSISTENT_COLUMNS'
      ? Array.isArray(record)
        ? ` (${record.length} fields; the header has ${header})`
        : ''
      : typeof context.column === 'string'
        ? ` (field ${context.column})`
        : '';
  return exportError(file, `not valid CSV: ${reason}${field}`, line + lineOffset, column);
}

const lineOf = (text: string, line: number): string => text.split(/\r?\n/)[line - 1] ?? '';

/** 1-based column where field `index` of a CSV line starts (quotes respected). */
function fieldStart(line: string, index: number): number {
  let field = 0;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    if (field === index) return i + 1;
    const c = line[i];
    if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) field++;
  }
  return line.length + 1;
}

/** 1-based column of the first character after a closing quote that is neither a comma nor the line's end. */
function afterClosingQuote(line: string): number | undefined {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c !== '"') continue;
    if (!quoted) {
      quoted = true;
      continue;
    }
    if (line[i + 1] === '"') {
      i++;
      continue;
    }
    quoted = false;
    const next = line[i + 1];
    if (next !== undefined && next !== ',' && next !== '\r') return i + 2;
  }
  return undefined;
}

/** 1-based column of the quote that opens the last quoted field left open on the line. */
function openingQuote(line: string): number | undefined {
  let open: number | undefined;
  for (let i = 0; i < line.length; i++) {
    if (line[i] !== '"') continue;
    if (open === undefined) open = i;
    else if (line[i + 1] === '"') i++;
    else open = undefined;
  }
  return open === undefined ? undefined : open + 1;
}
