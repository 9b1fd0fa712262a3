/**
 * Latency added per hop in the lab: the same ActiveSync FolderSync sent along paths of one to four
 * servers over real HTTPS on loopback, one request at a time, so each figure is a hop's own cost and not
 * queueing. The baseline is the mailbox simulator asked directly, in the same run.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../src/config/index.ts';
import { startLab } from '../src/lab/index.ts';
import { createLogger } from '../src/observability/log.ts';
import { formatMs, formatRatio, printTable } from './table.ts';
import { basicOf, easQuery, labAgent, timedFolderSync } from './lab-client.ts';

export interface HopRow {
  readonly path: string;
  readonly servers: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ratioToDirect: number;
  /** (p50 - direct p50) / (servers - 1): what each extra server adds at the median. */
  readonly addedPerHopP50Ms?: number;
  readonly addedPerHopP99Ms?: number;
}

const auth = basicOf('bob@o365info.com');
const authDiego = basicOf('diego@o365info.com');

const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** Run the hop benchmark and print its table; `requests` per path after as many warm-up requests. */
export async function benchHops(requests: number): Promise<HopRow[]> {
  const file = fileURLToPath(new URL('../examples/o365info.yaml', import.meta.url));
  const { index } = parseEstate(readFileSync(file, 'utf8'), file);
  const lab = await startLab({ index, logger: createLogger({ level: 'silent' }) });
  const agent = labAgent(lab);
  const q = easQuery;
  const paths: readonly [string, number, string, string][] = [
    [
      'direct: client -> MBX2007-NY (the mailbox simulator alone)',
      1,
      `https://mbx2007-ny.o365info.local${q}`,
      auth,
    ],
    ['legacy namespace: CAS2007-NY -> MBX2007-NY', 2, `https://legacy.mail.o365info.com${q}`, auth],
    ['EAS-3A: CAS2013-NY -> CAS2007-MAD -> MBX2007-MAD', 3, `https://mail.o365info.com${q}`, authDiego],
    ['EAS-1: CAS2013-NY -> MBX2013-NY -> CAS2007-NY -> MBX2007-NY', 4, `https://mail.o365info.com${q}`, auth],
  ];
  const send = (url: string, authorization: string): Promise<number> =>
    timedFolderSync(agent, url, authorization);

  const samples = new Map<string, number[]>(paths.map(([p]) => [p, []]));
  try {
    for (const [, , url, a] of paths) for (let i = 0; i < Math.min(requests, 200); i++) await send(url, a);
    // Interleaved: request i of every path, then i + 1, so drift on a shared machine hits all paths alike.
    for (let i = 0; i < requests; i++) {
      for (const [name, , url, a] of paths) samples.get(name)?.push(await send(url, a));
    }
  } finally {
    await agent.close();
    await lab.close();
  }
  const sorted = paths.map(([name, servers]) => {
    const s = [...(samples.get(name) ?? [])].sort((x, y) => x - y);
    return { name, servers, p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
  });
  const direct = sorted[0] as (typeof sorted)[number];
  const rows: HopRow[] = sorted.map((r) => ({
    path: r.name,
    servers: r.servers,
    p50Ms: r.p50,
    p99Ms: r.p99,
    ratioToDirect: r.p50 / direct.p50,
    ...(r.servers > 1
      ? {
          addedPerHopP50Ms: (r.p50 - direct.p50) / (r.servers - 1),
          addedPerHopP99Ms: (r.p99 - direct.p99) / (r.servers - 1),
        }
      : {}),
  }));
  printTable(
    `Latency added per hop: ActiveSync FolderSync over HTTPS through the lab, ${requests} requests per path, one at a time`,
    [
      { header: 'path' },
      { header: 'servers', align: 'right' },
      { header: 'p50', align: 'right' },
      { header: 'p99', align: 'right' },
      { header: 'p50 vs direct', align: 'right' },
      { header: 'added/hop p50', align: 'right' },
      { header: 'added/hop p99', align: 'right' },
    ],
    rows.map((r) => [
      r.path,
      String(r.servers),
      formatMs(r.p50Ms),
      formatMs(r.p99Ms),
      formatRatio(r.ratioToDirect),
      r.addedPerHopP50Ms === undefined ? '-' : formatMs(r.addedPerHopP50Ms),
      r.addedPerHopP99Ms === undefined ? '-' : formatMs(r.addedPerHopP99Ms),
    ]),
    [
      'Every server is a real HTTPS listener on loopback in one Node process (the lab), and so is the client: a hop',
      'here costs TLS termination, the pipeline (identify, Basic auth from cache, look up, decide), a pooled TLS',
      'connection to the next server and both bodies streamed. Paths interleaved request by request; keep-alive throughout.',
      'added/hop = (path - direct) / (servers - 1).',
    ],
  );
  return rows;
}
