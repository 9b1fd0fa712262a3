/**
 * The lookup service of nginx `auth_request` (bench/proxies.ts): node:http on 127.0.0.1. Reads the user from
 * the Basic credentials and answers 200 with the name of the user's back end (an nginx upstream group) in
 * `X-Backend`, 403 for an unknown user. One Map lookup among 10 000 mailboxes; no password check (coexist's
 * check is a cached HMAC, so both are a hash-map hit per request). Reports its port over IPC.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const mailboxes = new Map<string, string>();
for (let i = 0; i < 10_000; i++) mailboxes.set(`user${i}@o365info.com`, `mbx${i % 10}`);
mailboxes.set('alice@o365info.com', 'mbx2013_ny');

const server = createServer((req, res) => {
  const auth = req.headers.authorization ?? '';
  const decoded = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8') : '';
  const user = decoded.slice(0, Math.max(0, decoded.indexOf(':'))).toLowerCase();
  const backend = mailboxes.get(user);
  if (backend === undefined) {
    res.writeHead(403, { 'content-length': 0 });
    res.end();
    return;
  }
  res.writeHead(200, { 'x-backend': backend, 'content-length': 0 });
  res.end();
});
server.keepAliveTimeout = 120_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ ready: true, http: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
