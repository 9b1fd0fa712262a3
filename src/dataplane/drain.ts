/**
 * Drain (docs/operations.md "Drain"): the ActiveSync Pings a server is holding, answered early the way
 * Exchange ends a Ping that has nothing to report (HTTP 200, Ping `Status` 1: the heartbeat expired with no
 * change, MS-ASCMD Ping; docs/protocols.md §4.1 "Ping and long polls"), so each device issues its next Ping at
 * once, to another front end, instead of waiting out its heartbeat against a server that is going away.
 */
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { encodeWbxml, wbxmlElement } from '../codec/wbxml.ts';
import { parseActiveSyncQuery } from '../core/protocols/activesync.ts';
import type { RequestHead } from '../core/protocols/request-head.ts';
import { isInvalid } from '../core/protocols/request-head.ts';

/** `<Ping><Status>1</Status></Ping>`: nothing changed before the heartbeat ran out. */
export const pingExpiredBody: Uint8Array = encodeWbxml(
  wbxmlElement('Ping', 'Ping', wbxmlElement('Ping', 'Status', 1)),
);

/** Whether a request is an ActiveSync Ping (plain or base64 query). */
export function isPing(head: RequestHead): boolean {
  if (head.method !== 'POST') return false;
  const request = parseActiveSyncQuery(head);
  return !isInvalid(request) && request.cmd === 'Ping';
}

/** One Ping being proxied: what forward() is cancelled with, and whether the drain answered it. */
export interface HeldPing {
  /** Emits `abort` once the early answer is written: the next hop's request is cancelled (forward.ts). */
  readonly cancel: EventEmitter;
  /** The drain answered the Ping here (the access line says `answered`, 200). */
  readonly answered: boolean;
  /** The Ping ended (answered by its next hop, or here): it is no longer held. */
  done(): void;
}

/** The Pings a server is proxying, and their early answer when it drains. */
export class HeldPings {
  readonly #held = new Map<HeldPing, () => boolean>();
  /** From `close` on, Pings are answered at once: none is held by a server on its way out. */
  #released = false;

  get size(): number {
    return this.#held.size;
  }

  /**
   * Hold a Ping whose answer goes to `res`; `answer` writes the early answer (status 200, `pingExpiredBody`)
   * when the drain asks for it and nothing of the next hop's answer has been written yet.
   */
  hold(res: ServerResponse, answer: () => void): HeldPing {
    const cancel = new EventEmitter();
    const ping = {
      cancel,
      answered: false,
      done: () => {
        this.#held.delete(ping);
      },
    };
    const release = (): boolean => {
      // The next hop's answer has started (or the client is gone): it is no longer a held Ping.
      if (res.headersSent || res.destroyed) return false;
      ping.answered = true;
      this.#held.delete(ping);
      answer();
      // Once the answer is handed to the socket, the next hop's request is cancelled; before, a cancel
      // would let forward() destroy the connection under it.
      if (res.writableFinished) cancel.emit('abort');
      else res.once('finish', () => cancel.emit('abort'));
      return true;
    };
    this.#held.set(ping, release);
    // Registered after a drain began: answered once forward() is listening on `cancel`.
    if (this.#released) queueMicrotask(release);
    return ping;
  }

  /**
   * Answer every held Ping now; how many were answered. Pings that come later are held as usual: during a
   * drain's grace the balancer may still send a device here, and a Ping answered at once would only come
   * back at once.
   */
  releaseAll(): number {
    let n = 0;
    for (const release of [...this.#held.values()]) if (release()) n++;
    return n;
  }

  /** Answer every held Ping now and every later one at once (the listeners stop accepting); how many now. */
  close(): number {
    this.#released = true;
    return this.releaseAll();
  }
}
