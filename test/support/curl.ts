/**
 * curl as the tests' real HTTP client: run with its arguments, the password given on its stdin (a `-K -` config),
 * never on a command line, where any process of the machine could read it.
 */
import { spawn } from 'node:child_process';

/** What one curl run gave: its exit code, the status it printed last, and everything it wrote before. */
export interface CurlRun {
  readonly code: number | null;
  readonly status: number;
  readonly out: string;
}

/** A curl config, read with `-K -`, giving `user:password` (quoted as curl's config syntax wants). */
export const curlUserConfig = (user: string, password: string): string =>
  `user = "${`${user}:${password}`.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\n`;

/** `curl -sS <args> -w '\n%{http_code}'`, `stdin` written to it (and closed). */
export function runCurl(
  args: readonly string[],
  options: { readonly env?: NodeJS.ProcessEnv; readonly stdin?: string } = {},
): Promise<CurlRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', ...args, '-w', '\n%{http_code}'], {
      env: options.env ?? process.env,
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      const nl = out.lastIndexOf('\n');
      resolve({ code, status: Number(out.slice(nl + 1)), out: out.slice(0, Math.max(0, nl)) });
    });
    child.stdin.end(options.stdin ?? '');
  });
}
