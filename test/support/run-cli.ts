/** Run the coexist CLI in-process and capture what it prints; or as a process against a lab. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { main } from '../../src/cli/main.ts';
import type { Lab } from '../../src/lab/index.ts';
import { hostsByServer } from '../../src/lab/index.ts';

const run = promisify(execFile);
const entry = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runCli(args: readonly string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (t) => void (stdout += t), err: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

/** The `--connect-to` arguments that reach every host name of `lab` on port 443 (what `coexist lab` prints). */
export function labConnectTo(lab: Lab): string[] {
  return [...hostsByServer(lab.index).values()].flatMap((hosts) =>
    [...hosts].flatMap((h) => {
      const to = lab.resolve(h, 443);
      return to ? ['--connect-to', `${h}:443:${to.address}:${to.port}`] : [];
    }),
  );
}

/**
 * Run `coexist COMMAND --ca <lab CA> --connect-to ... ARGS` as a separate process (this checkout's entry
 * point under tsx), as a user would against the lab; never rejects.
 */
export async function runCliProcess(
  command: string,
  lab: Lab,
  args: readonly string[],
  o: { readonly env?: Record<string, string>; readonly timeoutMs?: number } = {},
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', entry, command, '--ca', lab.caPath, ...labConnectTo(lab), ...args],
      { env: { ...process.env, ...o.env }, timeout: o.timeoutMs ?? 30_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}
