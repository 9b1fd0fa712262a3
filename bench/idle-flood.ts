/**
 * The "Done when" of issue 13, shown: while 20 000 idle connections are attempted against the front end, a
 * normal ActiveSync request still gets 200. The lab runs here with the default edge limits
 * (docs/security.md "Limits and timeouts at the edge"); the attacker is a child process (file descriptors
 * are per process) that opens the connections from one or several loopback sources and sends nothing.
 * While the flood is held, bob's FolderSync goes in from the internal client address (127.0.0.3), a phone
 * that synced once before the flood (so its source is known, and the room kept for known sources is open to
 * it: `limits.reservedPercent`), and the front end's own counters say what it held and refused. Prints a
 * table; asserts nothing.
 *
 *   node --import tsx bench/idle-flood.ts [--connections 20000] [--sources 1,20]
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../src/config/index.ts';
import type { Lab } from '../src/lab/index.ts';
import { startLab } from '../src/lab/index.ts';
import { createLogger } from '../src/observability/log.ts';
import { labClient } from '../test/support/lab-client.ts';
import { formatInt, formatMs, printTable } from './table.ts';

const self = fileURLToPath(import.meta.url);
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};

interface Flood {
  readonly connections: number;
  readonly port: number;
  readonly sources: readonly string[];
}

/** The attacker: open every connection (at most 1 000 connecting at once), keep what stays open. */
async function attacker(f: Flood): Promise<void> {
  const held = new Set<Socket>();
  let next = 0;
  let failed = 0;
  const one = async (): Promise<void> => {
    while (next < f.connections) {
      const i = next++;
      const s = connect({ host: '127.0.0.1', port: f.port, localAddress: f.sources[i % f.sources.length] });
      s.on('error', () => undefined);
      s.on('close', () => held.delete(s));
      try {
        await Promise.race([
          once(s, 'connect'),
          once(s, 'close').then(() => {
            throw new Error('closed');
          }),
        ]);
        held.add(s);
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: 1_000 }, one));
  process.send?.({ attempted: f.connections, failedToConnect: failed });
  process.on('message', () => {
    const open = held.size;
    for (const s of held) s.destroy();
    process.send?.({ openAtEnd: open }, () => process.exit(0));
  });
}

async function metric(lab: Lab, name: string, label = ''): Promise<number> {
  const text = (await lab.metrics.get('CAS2013-NY')?.text()) ?? '';
  const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(label));
  return Number(line?.split(' ').pop() ?? 0);
}

async function folderSync(lab: Lab): Promise<{ status: string; ms: number }> {
  const client = labClient(lab, 'internal');
  const started = performance.now();
  try {
    const r = await client.fetch(
      'https://mail.o365info.com/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=bob&DeviceId=FLOOD1&DeviceType=Bench',
      {
        headers: { 'ms-asprotocolversion': '12.1', 'content-type': 'application/vnd.ms-sync.wbxml' },
        body: Uint8Array.from([0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01]),
        user: 'bob@o365info.com',
      },
    );
    return { status: String(r.status), ms: performance.now() - started };
  } catch (e) {
    return { status: `failed (${(e as Error).message})`, ms: performance.now() - started };
  } finally {
    await client.close();
  }
}

async function scenario(lab: Lab, connections: number, sourceCount: number): Promise<string[]> {
  const to = lab.resolve('mail.o365info.com', 443);
  if (!to) throw new Error('the lab does not resolve mail.o365info.com');
  const sources = Array.from(
    { length: sourceCount },
    (_, i) => `127.0.${10 + Math.floor(i / 250)}.${(i % 250) + 1}`,
  );
  const refusedNow = async (): Promise<number> =>
    (await metric(lab, 'coexist_edge_events_total', 'refused_per_source')) +
    (await metric(lab, 'coexist_edge_events_total', 'refused_reserved')) +
    (await metric(lab, 'coexist_edge_events_total', 'refused_total'));
  const before = await folderSync(lab);
  if (before.status !== '200') throw new Error(`the FolderSync before the flood got ${before.status}`);
  const refusedBefore = await refusedNow();
  const child = fork(self, ['--attacker'], { execArgv: ['--import', 'tsx'] });
  const started = performance.now();
  child.send({ connections, port: to.port, sources });
  const [done] = (await once(child, 'message')) as [{ attempted: number; failedToConnect: number }];
  const floodMs = performance.now() - started;
  const held = await metric(lab, 'coexist_client_connections');
  const refused = (await refusedNow()) - refusedBefore;
  const during = await folderSync(lab);
  child.send({ cmd: 'close' });
  await once(child, 'exit');
  return [
    `${formatInt(done.attempted)} from ${sourceCount} source${sourceCount > 1 ? 's' : ''}`,
    formatMs(floodMs),
    formatInt(held),
    formatInt(refused),
    `${during.status} in ${formatMs(during.ms)}`,
  ];
}

if (process.argv.includes('--attacker')) {
  process.once('message', (f: Flood) => void attacker(f));
} else {
  const connections = Number(arg('--connections', '20000'));
  const sourceCounts = arg('--sources', '1,20,40').split(',').map(Number);
  const file = fileURLToPath(new URL('../examples/o365info.yaml', import.meta.url));
  const { index } = parseEstate(await readFile(file, 'utf8'), file);
  const lab = await startLab({ index, logger: createLogger({ level: 'silent' }) });
  try {
    const rows: string[][] = [];
    for (const n of sourceCounts) rows.push(await scenario(lab, connections, n));
    printTable(
      'Idle-connection flood against the front end (default limits: 1 000 per source, 10 000 in total, the last 10 % kept for known sources)',
      [
        { header: 'attempted' },
        { header: 'flood took', align: 'right' },
        { header: 'held by the front end', align: 'right' },
        { header: 'refused at accept', align: 'right' },
        { header: 'FolderSync from 127.0.0.3 (known) meanwhile' },
      ],
      rows,
      [
        'Idle TCP connections that send nothing; the front end closes the ones it holds after the TLS handshake',
        'timeout (10 s). "held" and "refused" are the front end\'s own counters, read once the flood is in.',
      ],
    );
  } finally {
    await lab.close();
  }
}
