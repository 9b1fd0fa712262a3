/**
 * What the subcommands share: where they print, the embedded default estate, option parsing helpers,
 * `--ca` and curl's `--connect-to`, and waiting for a signal. Commands import from here, never from
 * main.ts (which imports every command).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { CoexistError } from '../core/errors.ts';

/** Where a command prints: the process's stdout and stderr, or a test's buffers. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** The embedded default estate: the o365info demo of docs/flows.md. */
export const defaultEstatePath = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

/** Commander's reducer for a repeatable option. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Bad usage: main() prints the message and exits 2. */
export const usage = (message: string): CoexistError => new CoexistError('CX_CLI_USAGE', message);

/** The CA certificate (PEM) `--ca` names. */
export async function readCa(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw usage(`--ca ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** One `--connect-to HOST:PORT:ADDR:PORT` rule (curl's syntax; an empty part matches any / keeps the original). */
export interface ConnectTo {
  readonly host: string;
  readonly port: string;
  readonly toHost: string;
  readonly toPort: string;
}

export function parseConnectTo(spec: string): ConnectTo {
  const m = /^(\[[^\]]*\]|[^:[\]]*):(\d*):(\[[^\]]*\]|[^:[\]]*):(\d*)$/.exec(spec.trim());
  if (!m) throw usage(`--connect-to takes HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT, got "${spec}"`);
  const unbracket = (s: string): string => s.replace(/^\[(.*)\]$/, '$1');
  return {
    host: unbracket(m[1] ?? '').toLowerCase(),
    port: m[2] ?? '',
    toHost: unbracket(m[3] ?? ''),
    toPort: m[4] ?? '',
  };
}

/** Where `host:port` really is under the rules: the first rule that matches wins (curl's order). */
export function connectTarget(
  rules: readonly ConnectTo[],
  host: string,
  port: number,
): { host: string; port: number } | undefined {
  const h = host.toLowerCase();
  const rule = rules.find(
    (r) => (r.host === '' || r.host === h) && (r.port === '' || Number(r.port) === port),
  );
  if (!rule) return undefined;
  return { host: rule.toHost || host, port: rule.toPort ? Number(rule.toPort) : port };
}

/** Resolve on the first SIGINT or SIGTERM: long-running commands (serve, lab) then shut down gracefully. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
