/**
 * Problems of an estate file and the one error that carries them all. The loader never stops at the first
 * problem: a file that fails is reported whole, each problem with its file, line:column, path and code.
 */
import type { ErrorCode } from '../core/errors.ts';
import { CoexistError } from '../core/errors.ts';

/** One problem of an estate file. */
export interface ConfigProblem {
  /** The file as the caller named it (e.g. the `--estate` argument). */
  file: string;
  /** 1-based line of the offending YAML node; absent when unknown (e.g. the file cannot be read). */
  line?: number;
  /** 1-based column of the offending YAML node. */
  column?: number;
  /** Where in the estate, e.g. `sites[2].servers[0].urls.activesync.internal`; `''` for the file as a whole. */
  path: string;
  code: ErrorCode;
  /** One readable sentence saying what is wrong and how to fix it. */
  message: string;
}

/**
 * An estate file with one or more problems. `problems` are in file order (line, then column; problems
 * without a position last), and `code` is the code of the first of them. `message` is the whole report
 * as `formatConfigProblems` prints it, so that printing the error alone says everything.
 */
export class EstateConfigError extends CoexistError {
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[], options?: { cause?: unknown }) {
    if (problems.length === 0) throw new TypeError('EstateConfigError needs at least one problem');
    const sorted = [...problems].sort(byPosition);
    const first = sorted[0] as ConfigProblem;
    super(first.code, formatProblems(file, sorted).trimEnd(), { file, problems: sorted }, options);
    this.name = 'EstateConfigError';
    this.file = file;
    this.problems = sorted;
  }
}

/**
 * The human report of a broken estate file, without stack traces:
 *
 *     estate.yaml: 2 problems
 *       estate.yaml:12:9  sites[0].servers[0].version  2012 is not an Exchange version coexist knows: use one of 2007, 2010, 2013, 2016, 2019 [CX_CONFIG_SCHEMA]
 *       estate.yaml:40:7  users[0].mailbox.database  unknown database "DB2013-NX": did you mean "DB2013-NY"? [CX_CONFIG_REFERENCE]
 *
 * line:column is left out when unknown, and the path when the problem concerns the whole file.
 */
export function formatConfigProblems(err: Pick<EstateConfigError, 'file' | 'problems'>): string {
  return formatProblems(err.file, err.problems);
}

/** A report longer than this is cut (a file with a systematic mistake can have one problem per user). */
export const REPORT_LIMIT = 200;

function formatProblems(file: string, problems: readonly ConfigProblem[]): string {
  const lines = [`${file}: ${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}`];
  for (const p of problems.slice(0, REPORT_LIMIT)) {
    const where = p.line !== undefined ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file;
    lines.push(`  ${where}  ${p.path === '' ? '' : `${p.path}  `}${p.message} [${p.code}]`);
  }
  if (problems.length > REPORT_LIMIT) {
    lines.push(
      `  ... and ${problems.length - REPORT_LIMIT} more problems (the first ${REPORT_LIMIT} are shown; fix them and load again)`,
    );
  }
  return lines.join('\n') + '\n';
}

function byPosition(a: ConfigProblem, b: ConfigProblem): number {
  const la = a.line ?? Number.MAX_SAFE_INTEGER;
  const lb = b.line ?? Number.MAX_SAFE_INTEGER;
  return la - lb || (a.column ?? 0) - (b.column ?? 0);
}
