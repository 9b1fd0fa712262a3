/**
 * What the lab scenarios of the bench share: an undici agent that reaches the lab's host names (its DNS,
 * its CA, the external client address, one connection so requests go one at a time), and one timed
 * ActiveSync FolderSync.
 */
import { performance } from 'node:perf_hooks';
import { Agent, buildConnector, request } from 'undici';
import type { Lab } from '../src/lab/index.ts';
import { demoPassword, labAddresses } from '../src/lab/index.ts';

/** FolderSync with SyncKey 0 (MS-ASWBXML code page 7). */
const folderSync = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01,
]);

/** The query of the bench's ActiveSync requests. */
export const easQuery = '/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=x&DeviceId=BENCH1&DeviceType=Bench';

/** `Authorization: Basic` of a demo user. */
export const basicOf = (address: string): string =>
  `Basic ${Buffer.from(`${address}:${demoPassword}`).toString('base64')}`;

/** One connection to the lab, from the external client address. */
export function labAgent(lab: Lab): Agent {
  const base = buildConnector({ ca: lab.ca.certPem });
  return new Agent({
    localAddress: labAddresses.externalClient,
    connections: 1,
    connect: (opts, cb) => {
      const to = lab.resolve(opts.hostname, Number(opts.port) || 443);
      return to
        ? base({ ...opts, hostname: to.address, port: String(to.port), servername: opts.hostname }, cb)
        : base(opts, cb);
    },
  });
}

/** Send one FolderSync and read the whole answer; its time in ms. Throws unless the answer is 200. */
export async function timedFolderSync(agent: Agent, url: string, authorization: string): Promise<number> {
  const started = performance.now();
  const r = await request(url, {
    dispatcher: agent,
    method: 'POST',
    headers: {
      authorization,
      'ms-asprotocolversion': '12.1',
      'content-type': 'application/vnd.ms-sync.wbxml',
    },
    body: folderSync,
  });
  await r.body.dump();
  if (r.statusCode !== 200) throw new Error(`${url}: HTTP ${r.statusCode}`);
  return performance.now() - started;
}
