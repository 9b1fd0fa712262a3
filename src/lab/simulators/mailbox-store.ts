/**
 * The lab's mailbox store simulator: what answers at the end of every path in the lab. Exchange 2007 and
 * 2010 cannot run here, so this stands in for their mailbox servers (MBX2007-NY & co.) and for the 2013+
 * mailbox role. The pipeline has already authenticated and routed the request; the store answers for
 * `ctx.mailbox` in each protocol's wire shape (docs/protocols.md §4): ActiveSync WBXML commands, EWS SOAP,
 * OWA/ECP pages, Outlook Anywhere channels, MAPI/HTTP and the OAB manifest, one module each in `store/`.
 * Autodiscover is rendered by the pipeline, not here. Every answer names the server in `X-BEServer` and
 * `X-DiagInfo` (§4.10). A simulator: shapes follow the specifications and captures, contents are made up.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { activeSync } from './store/activesync.ts';
import type { StoreContext } from './store/common.ts';
import { accessDenied, ClientGone, refuse, send } from './store/common.ts';
import { ews } from './store/ews.ts';
import { mapiHttp } from './store/mapi.ts';
import { offlineAddressBook } from './store/oab.ts';
import { owaPage } from './store/owa.ts';
import { PingHolder } from './store/ping-holder.ts';
import { outlookAnywhere } from './store/rpc.ts';

export type { StoreContext, StoreMailbox } from './store/common.ts';
export { rpcOutBytesHeader, rpcOutDataByte } from './store/rpc.ts';

/** Tuning for tests. */
export interface MailboxStoreOptions {
  /** Longest a Ping is held before "heartbeat expired" (default: the whole HeartbeatInterval). */
  readonly maxPingHoldMs?: number;
  /** Accepted Ping HeartbeatInterval in seconds (default 60–3540, Exchange's, docs/protocols.md §4.1). */
  readonly heartbeatRangeSeconds?: readonly [min: number, max: number];
}

/** The lab's mailbox store simulator (see the file comment). */
export class MailboxStore {
  private readonly pings: PingHolder;

  constructor(o: MailboxStoreOptions = {}) {
    this.pings = new PingHolder(o.maxPingHoldMs ?? 3540_000, o.heartbeatRangeSeconds ?? [60, 3540]);
  }

  /** How many Pings are being held right now. */
  get pendingPings(): number {
    return this.pings.held.size;
  }

  /** Answer one request for `ctx.mailbox`; resolves when the answer is written or the client left. */
  async handle(req: IncomingMessage, res: ServerResponse, ctx: StoreContext): Promise<void> {
    res.setHeader('X-BEServer', ctx.serverName);
    res.setHeader('X-DiagInfo', ctx.serverName);
    try {
      // EWS says "access denied" per item, in its own envelope (store/ews.ts); every other protocol with 403.
      if (ctx.access === 'denied' && ctx.protocol !== 'ews') return await accessDenied(req, res, ctx);
      switch (ctx.protocol) {
        case 'activesync':
          return await activeSync(req, res, ctx, this.pings);
        case 'ews':
          return await ews(req, res, ctx);
        case 'owa':
        case 'ecp':
          return await owaPage(req, res, ctx);
        case 'rpc':
          return await outlookAnywhere(req, res);
        case 'mapi':
          return await mapiHttp(req, res, ctx);
        case 'oab':
          return await offlineAddressBook(req, res);
        case 'autodiscover':
          // The pipeline renders Autodiscover from the directory (docs/architecture.md).
          return await refuse(req, res, 404, 'Autodiscover is answered by the pipeline, not the store');
      }
    } catch (err) {
      if (err instanceof ClientGone || res.destroyed) return;
      if (res.headersSent) res.destroy();
      else send(res, 500, { 'Content-Type': 'text/plain; charset=utf-8' }, 'mailbox store simulator error');
    }
  }

  /** Answer every held Ping now (heartbeat expired) and go on holding new ones; how many were answered. */
  releasePings(): number {
    return this.pings.releaseAll();
  }

  /** Answer every held Ping now (heartbeat expired) and stop holding new ones. */
  close(): void {
    this.pings.close();
  }
}
