/**
 * One coexist process of the long-poll bench: `startServerNode` as CAS2013-NY of examples/o365info.yaml on
 * plain HTTP (127.0.0.1, a free port), its next hop (MBX2013-NY's back end, https://mbx2013-ny...:444)
 * resolved to the holding back end at `backPort`, logger silent.
 *
 *   node --import tsx bench/longpoll/coexist-node.ts   (then IPC: { cmd: 'start', backPort, caPem })
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { parseEstate } from '../../src/config/index.ts';
import { startServerNode } from '../../src/dataplane/server-node.ts';
import type { ServerNode } from '../../src/dataplane/server-node.ts';
import { createLogger } from '../../src/observability/log.ts';
import { onAsk, tell } from './ipc.ts';

const file = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const { index } = parseEstate(readFileSync(file, 'utf8'), file);
const server = index.estate.sites.flatMap((s) => s.servers).find((s) => s.name === 'CAS2013-NY');
if (!server) throw new Error('examples/o365info.yaml has no CAS2013-NY');
const mailboxServer = index.estate.sites.flatMap((s) => s.servers).find((s) => s.name === 'MBX2013-NY');
if (!mailboxServer) throw new Error('examples/o365info.yaml has no MBX2013-NY');
const nextHop = mailboxServer.fqdn.toLowerCase();
let node: ServerNode | undefined;

onAsk((ask) => {
  if (ask.cmd === 'start') {
    const backPort = Number(ask['backPort']);
    void startServerNode({
      index,
      server,
      listeners: [{ name: 'front', role: 'cas', host: '127.0.0.1', port: 0 }],
      logger: createLogger({ level: 'silent' }),
      // Every held poll of a lane comes from one client address, as from a load balancer: the per-source
      // cap (docs/security.md "Limits and timeouts at the edge") is off, the total stays at its default.
      limits: { maxConnectionsPerSource: 0 },
      upstreams: {
        ca: String(ask['caPem']),
        resolve: (hostname) =>
          hostname.toLowerCase() === nextHop ? { address: '127.0.0.1', port: backPort } : undefined,
      },
    }).then(
      (n) => {
        node = n;
        tell({ type: 'ready', port: n.port('front') });
      },
      (err: unknown) => {
        process.stderr.write(`coexist-node: ${String(err)}\n`);
        process.exit(1);
      },
    );
    return {};
  }
  if (ask.cmd === 'heapsnapshot') {
    // `{ cmd: 'heapsnapshot', file }`: for attributing the heap per held request (docs/lab.md §4.2).
    return { file: writeHeapSnapshot(String(ask['file'])) };
  }
  if (ask.cmd === 'close') {
    void node?.close(0).finally(() => process.exit(0));
    return {};
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
});
