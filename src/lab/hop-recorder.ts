/**
 * The lab's proof of the path: every server (coexist or simulator) reports what it did with each request,
 * and tests read the hop sequence from these reports, not from the engine (docs/flows.md "What reproducing a flow means").
 */
import type { HopObserver, HopRecord } from '../dataplane/index.ts';

/** Keeps the last `max` records, by request id. */
export class HopRecorder implements HopObserver {
  readonly #byRequest = new Map<string, HopRecord[]>();
  readonly #max: number;
  /** Who waits for a record (`waitFor`): woken by `record`, so no one polls. */
  readonly #waiters = new Set<(hop: HopRecord) => void>();

  constructor(max = 10_000) {
    this.#max = max;
  }

  record(hop: HopRecord): void {
    let list = this.#byRequest.get(hop.requestId);
    if (!list) {
      if (this.#byRequest.size >= this.#max) {
        const oldest = this.#byRequest.keys().next();
        if (!oldest.done) this.#byRequest.delete(oldest.value);
      }
      this.#byRequest.set(hop.requestId, (list = []));
    }
    list.push(hop);
    for (const wake of this.#waiters) wake(hop);
  }

  /** Every server's record of one request, in the order they were made (innermost server first). */
  records(requestId: string): readonly HopRecord[] {
    return this.#byRequest.get(requestId) ?? [];
  }

  /**
   * The servers the request went through, entry first: the server no other record proxied to, then each
   * record's `to`, as far as records go.
   */
  path(requestId: string): string[] {
    const list = this.records(requestId);
    const bySrv = new Map(list.map((r) => [r.server, r]));
    const targets = new Set(list.map((r) => r.to).filter((t): t is string => t !== undefined));
    let at = list.find((r) => !targets.has(r.server));
    const out: string[] = [];
    while (at && !out.includes(at.server)) {
      out.push(at.server);
      at = at.to === undefined ? undefined : bySrv.get(at.to);
    }
    return out;
  }

  /**
   * Wait until `server` has reported on the request (servers report when their part is done): resolved by
   * the record itself; the deadline only bounds a record that never comes.
   */
  waitFor(requestId: string, server: string, deadlineMs = 5_000): Promise<void> {
    if (this.records(requestId).some((r) => r.server === server)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = (hop: HopRecord): void => {
        if (hop.requestId !== requestId || hop.server !== server) return;
        this.#waiters.delete(wake);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(new Error(`no record from ${server} for request ${requestId}`));
      }, deadlineMs);
      this.#waiters.add(wake);
    });
  }
}
