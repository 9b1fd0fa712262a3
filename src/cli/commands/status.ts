/**
 * `coexist status`: ask a running server's admin listener (`GET /status`) for its state and print every next
 * hop: server, protocols, URL, up / down / ejected, since when, the last error and the consecutive failures
 * (docs/operations.md "Next hops"). Exit 0 when every hop is up, 1 when one is down or ejected (or the server
 * is not ready), 2 for a usage error, 3 when the admin listener cannot be asked.
 */
import type { Command } from 'commander';
import { CommanderError } from 'commander';
import { request } from 'undici';
import type { HopStatus, NodeStatus } from '../../dataplane/index.ts';
import type { Io } from '../common.ts';
import { usage } from '../common.ts';
import { certificatesText } from '../certificates.ts';

interface StatusOptions {
  admin: string;
  json?: boolean;
  timeoutMs: string;
}

/** Exit codes, as `--help` says them. */
const exit = { allUp: 0, notAllUp: 1, unreachable: 3 } as const;

export function registerStatus(program: Command, io: Io): void {
  program
    .command('status')
    .description(
      "Print a running server's next hops and their state, from its admin listener (GET /status). " +
        'Exit code 0 when every next hop is up, 1 when one is down or ejected or the server is not ready, ' +
        '2 for a usage error, 3 when the admin listener cannot be asked.',
    )
    .option('--admin <host:port>', "the server's admin listener (serve --admin)", '127.0.0.1:9464')
    .option('--json', 'print the status document as the server gives it')
    .option('--timeout-ms <ms>', 'longest wait for the answer', '5000')
    .action(async (o: StatusOptions) => {
      const { host, port } = adminAddress(o.admin);
      const timeoutMs = Number(o.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
        throw usage(`--timeout-ms takes a positive whole number, not "${o.timeoutMs}"`);
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/status`;
      let status: NodeStatus;
      try {
        const r = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
        const text = await r.body.text();
        if (r.statusCode !== 200) throw new Error(`HTTP ${r.statusCode}`);
        status = parseStatus(text);
      } catch (e) {
        const why = (e as { code?: string }).code ?? (e as Error).message;
        io.err(`coexist status: cannot get ${url}: ${why}\n`);
        throw new CommanderError(exit.unreachable, 'coexist.status.unreachable', why);
      }
      io.out(o.json ? `${JSON.stringify(status, null, 2)}\n` : statusText(status) + certificatesText(status));
      const allUp = status.ready && status.hops.every((h) => h.state === 'up');
      if (!allUp)
        throw new CommanderError(exit.notAllUp, 'coexist.status.not-all-up', 'a next hop is not up');
    });
}

/** `host:port` or `[v6]:port`. */
function adminAddress(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw usage(`--admin takes host:port, not "${s}"`);
  return { host: m[1] ?? m[2] ?? '', port };
}

/** The document, checked for what this command reads (an older or other server gives a clear error). */
function parseStatus(text: string): NodeStatus {
  const doc = JSON.parse(text) as Partial<NodeStatus>;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.hops) || typeof doc.server !== 'string')
    throw new Error('the answer is not a coexist status document');
  return doc as NodeStatus;
}

/** The document as a table, one row per hop, under a line about the server. */
export function statusText(s: NodeStatus): string {
  const counts = new Map<string, number>();
  for (const h of s.hops) counts.set(h.state, (counts.get(h.state) ?? 0) + 1);
  const summary = ['up', 'down', 'ejected']
    .filter((k) => counts.has(k))
    .map((k) => `${counts.get(k) ?? 0} ${k}`)
    .join(', ');
  const lines = [
    `${s.server}: ${s.ready ? 'ready' : 'NOT READY'}, directory ${s.directory}, ` +
      `${s.hops.length} next hop${s.hops.length === 1 ? '' : 's'}${summary ? ` (${summary})` : ''}`,
  ];
  for (const u of s.unavailable ?? []) lines.push(`  cannot serve ${u.protocol} (${u.role} role) now`);
  if (s.hops.length === 0) return `${lines.join('\n')}\n`;
  const header = ['SERVER', 'PROTOCOLS', 'STATE', 'SINCE', 'FAILURES', 'PROBE FAILURES', 'URL', 'LAST ERROR'];
  const rows = s.hops.map((h: HopStatus) => [
    h.server,
    h.protocols.join(','),
    h.state,
    h.since,
    String(h.consecutiveFailures),
    String(h.consecutiveProbeFailures),
    h.url,
    h.lastError ? `${h.lastError.error} (${h.lastError.by}, ${h.lastError.at})` : '-',
  ]);
  const widths = header.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  lines.push('', line(header), ...rows.map(line));
  return `${lines.join('\n')}\n`;
}
