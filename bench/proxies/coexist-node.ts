/**
 * coexist doing its real work for bench/proxies.ts: CAS2013-NY of examples/o365info.yaml on one plain-HTTP
 * listener; the estate's next hop (MBX2013-NY's back-end site, https://mbx2013-ny.o365info.local:444) is
 * sent to the bench back end's HTTPS port by `upstreams.resolve`. argv: back-end HTTPS port, CA file, log
 * level (`silent`, or `info`: pino to standard output, which the parent points at /dev/null).
 * Reports its port over IPC.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../src/config/index.ts';
import { startServerNode } from '../../src/dataplane/index.ts';
import { createLogger } from '../../src/observability/log.ts';

const backendPort = Number(process.argv[2]);
const ca = readFileSync(process.argv[3] ?? '', 'utf8');
const level = process.argv[4] ?? 'silent';
const file = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));
const { index } = parseEstate(readFileSync(file, 'utf8'), file);
const server = index.server('CAS2013-NY');
if (!server) throw new Error('CAS2013-NY is not in examples/o365info.yaml');
const node = await startServerNode({
  index,
  server,
  listeners: [{ name: 'front', role: 'cas', host: '127.0.0.1', port: 0 }],
  logger: createLogger({ level }),
  upstreams: {
    ca,
    resolve: (hostname, port) =>
      hostname === 'mbx2013-ny.o365info.local' && port === 444
        ? { address: '127.0.0.1', port: backendPort }
        : undefined,
  },
});
process.send?.({ ready: true, http: node.port('front') });
process.on('disconnect', () => {
  void node.close(0).then(() => process.exit(0));
});
