/**
 * The sliding idle expiry over a real proxied answer (docs/security.md "OWA sessions"): a session cookie
 * past half its idle time is re-sealed on the answer, alongside the cookies the next hop sets itself (as
 * Exchange's OWA sets `UserContext`), never replaced by them; a fresh one is not re-sealed. The next hop is a
 * simulator of the 2013 mailbox server: an HTTPS server on loopback with the lab CA's certificate for its
 * names, answering OWA with a cookie of its own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { parseEstate } from '../../src/config/index.ts';
import type { ServerNode } from '../../src/dataplane/index.ts';
import { startServerNode } from '../../src/dataplane/index.ts';
import { basicAuthorization, OwaSessions } from '../../src/dataplane/owa-session.ts';
import { hostsByServer } from '../../src/lab/index.ts';
import { createLabCa } from '../../src/lab/lab-ca.ts';
import { createLogger } from '../../src/observability/log.ts';
import { demoPassword, LineSink } from '../support/lab-client.ts';
import { demoEstateFile } from '../support/logged-lab.ts';

const minute = 60_000;

describe('OWA: a re-sealed session cookie travels with the next hop’s own cookies', () => {
  const ca = createLabCa();
  const key = randomBytes(32);
  let mailbox: Server;
  let node: ServerNode;
  let base = '';
  const sink = new LineSink();

  before(async () => {
    const { index } = parseEstate(await readFile(demoEstateFile, 'utf8'), demoEstateFile);
    const names = [...(hostsByServer(index).get('MBX2013-NY') ?? [])];
    assert.ok(names.length > 0);
    // The mailbox server simulator: OWA's page with a cookie of its own, as Exchange sets UserContext.
    const tls = ca.issue(names);
    mailbox = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      res.writeHead(200, {
        'content-type': 'text/html',
        'set-cookie': 'UserContext=simulated; path=/owa; secure; HttpOnly',
      });
      res.end(`<p>mailbox for ${req.headers.authorization === undefined ? 'nobody' : 'the user'}</p>`);
    });
    await new Promise<void>((resolve) => mailbox.listen(0, '127.0.0.1', resolve));
    const mailboxPort = (mailbox.address() as AddressInfo).port;
    const server = index.server('CAS2013-NY');
    assert.ok(server);
    node = await startServerNode({
      index,
      server,
      listeners: [{ name: 'front', role: 'cas', host: '127.0.0.1', port: 0 }],
      logger: createLogger({ destination: sink }),
      upstreams: { ca: ca.certPem, resolve: () => ({ address: '127.0.0.1', port: mailboxPort }) },
      sessionKeys: [key],
      health: { probe: false },
    });
    base = `http://127.0.0.1:${node.port('front')}`;
  });
  after(async () => {
    await node?.close(0);
    await new Promise((resolve) => mailbox?.close(resolve));
  });

  /** A cookie sealed with the front end's key, last seen `ago` ms ago. */
  function cookieSeen(ago: number): string {
    const sessions = new OwaSessions({ keys: [key], now: () => Date.now() - ago });
    const setCookie = sessions.create(
      'alice@o365info.com',
      basicAuthorization('alice@o365info.com', demoPassword),
    );
    return setCookie.split(';')[0] as string;
  }

  const get = async (cookie: string) => {
    const r = await request(`${base}/owa/`, { headers: { host: 'mail.o365info.com', cookie } });
    await r.body.text();
    const setCookie = r.headers['set-cookie'];
    return { status: r.statusCode, cookies: setCookie === undefined ? [] : [setCookie].flat() };
  };

  test('a fresh cookie: the next hop’s cookie only, no re-sealing', async () => {
    const r = await get(cookieSeen(1 * minute));
    assert.equal(r.status, 200, sink.lines.join('\n'));
    assert.deepEqual(r.cookies, ['UserContext=simulated; path=/owa; secure; HttpOnly']);
  });

  test('past half the idle time: both cookies, the session re-sealed with a new last-seen time', async () => {
    const old = cookieSeen(10 * minute);
    const r = await get(old);
    assert.equal(r.status, 200);
    assert.equal(r.cookies.length, 2, JSON.stringify(r.cookies));
    assert.ok(r.cookies.some((c) => c.startsWith('UserContext=simulated')));
    const resealed = r.cookies.find((c) => c.startsWith('coexist-session='));
    assert.ok(resealed);
    assert.match(resealed, /; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
    const value = resealed.split(';')[0] as string;
    assert.notEqual(value, old);
    // Fresh now: the next request with it is not re-sealed again.
    assert.deepEqual((await get(value)).cookies, ['UserContext=simulated; path=/owa; secure; HttpOnly']);
  });
});
