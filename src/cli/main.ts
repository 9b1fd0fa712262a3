/**
 * The `coexist` command line. `main(argv)` returns the exit code: 0 success, 1 internal failure,
 * 2 bad input (unknown user, protocol or namespace; a broken estate file; a bad option; a malformed
 * discover export): `exitCodeOf` in core/errors.ts, docs/errors.md "Exit codes".
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { CoexistError, exitCodeOf } from '../core/errors.ts';
import { EstateConfigError, formatConfigProblems } from '../config/index.ts';
import { registerTrace } from './commands/trace.ts';
import { registerHashPassword } from './commands/hash-password.ts';
import { registerLab } from './commands/lab.ts';
import { registerServe } from './commands/serve.ts';
import { registerActiveSync } from './commands/activesync.ts';
import { registerCheck } from './commands/check.ts';
import { registerStatus } from './commands/status.ts';
import { registerDiscover } from './commands/discover.ts';
import type { Io } from './common.ts';
import { processIo } from './common.ts';

export type { Io } from './common.ts';

export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const program = new Command('coexist')
    .description('Client access front door for Exchange estates in coexistence and migration.')
    .version(packageVersion(), '-V, --version', 'print the version of coexist')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run coexist --help for usage)');
  registerTrace(program, io);
  registerHashPassword(program, io);
  registerServe(program, io);
  registerLab(program, io);
  registerActiveSync(program, io);
  registerCheck(program, io);
  registerStatus(program, io);
  registerDiscover(program, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    return report(e, io);
  }
}

/** The version in the package's own package.json, read at run time (from src/ and from dist/ alike). */
function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  const version = (JSON.parse(text) as { version?: unknown }).version;
  return typeof version === 'string' ? version : 'unknown';
}

function report(e: unknown, io: Io): number {
  if (e instanceof CommanderError) {
    // Commander has printed its own message; help and version exit 0, its usage errors 2. A command that
    // ran and failed (a check or a client session; it printed why) throws one with a `coexist.` code and
    // its own exit code.
    if (e.code.startsWith('coexist.')) return e.exitCode;
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof EstateConfigError) {
    io.err(formatConfigProblems(e));
    return 2;
  }
  if (e instanceof CoexistError) {
    io.err(`coexist: ${e.message} [${e.code}]\n`);
    return exitCodeOf(e.code);
  }
  io.err(`coexist: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
  return 1;
}
