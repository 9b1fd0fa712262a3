/**
 * The bench's back end (bench/proxies.ts): node:http on 127.0.0.1, plain HTTP and HTTPS (a throwaway lab CA,
 * certificate for mbx2013-ny.o365info.local) from one process, answering like the protocols by path:
 * ActiveSync 4 KiB, EWS 10 KiB, anything else (OWA) 100 KiB. Request bodies are read to the end first.
 * Reports its ports over IPC; writes the CA certificate to argv[2].
 */
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createLabCa } from '../../src/lab/lab-ca.ts';

const caFile = process.argv[2] ?? '';
const answers = {
  eas: Buffer.alloc(4 * 1024, 0x61),
  ews: Buffer.alloc(10 * 1024, 0x62),
  owa: Buffer.alloc(100 * 1024, 0x63),
};

const handle = (req: IncomingMessage, res: ServerResponse): void => {
  const path = (req.url ?? '/').toLowerCase();
  const body = path.startsWith('/microsoft-server-activesync')
    ? answers.eas
    : path.startsWith('/ews/')
      ? answers.ews
      : answers.owa;
  const type = body === answers.eas ? 'application/vnd.ms-sync.wbxml' : 'text/xml; charset=utf-8';
  req.on('data', () => undefined);
  req.on('end', () => {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length });
    res.end(body);
  });
};

const tune = <T extends { keepAliveTimeout: number; headersTimeout: number; requestTimeout: number }>(
  s: T,
): T => {
  s.keepAliveTimeout = 120_000;
  s.headersTimeout = 60_000;
  s.requestTimeout = 0;
  return s;
};

const ca = createLabCa({ commonName: 'coexist bench CA' });
const leaf = ca.issue(['mbx2013-ny.o365info.local', '127.0.0.1']);
writeFileSync(caFile, ca.certPem);
const plain = tune(createServer(handle));
const tls = tune(createTlsServer({ cert: leaf.certPem, key: leaf.keyPem }, handle));
const listen = (s: typeof plain | typeof tls): Promise<number> =>
  new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
const ports = { http: await listen(plain), https: await listen(tls) };
process.send?.({ ready: true, ...ports });
process.on('disconnect', () => process.exit(0));
