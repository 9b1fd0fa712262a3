/** The ActiveSync Pings a mailbox store is holding, and the last HeartbeatInterval of each device. */
import type { ServerResponse } from 'node:http';

/** A held Ping; calling it answers the Ping now. */
type Release = () => void;

/** The Pings being held, and the last heartbeat per device. */
export class PingHolder {
  readonly held = new Set<Release>();
  /** The last Ping per device, reused by an empty Ping (MS-ASCMD Ping: the server caches the request). */
  readonly lastHeartbeat = new Map<string, number>();
  private closed = false;

  constructor(
    /** The longest a Ping is held, in milliseconds. */
    readonly maxHoldMs: number,
    /** The accepted HeartbeatInterval, in seconds. */
    readonly range: readonly [number, number],
  ) {}

  /** Wait `ms`, or until `close()`; 'gone' when the client disconnects first (no timer is left behind). */
  hold(ms: number, res: ServerResponse): Promise<'expired' | 'gone'> {
    if (res.destroyed) return Promise.resolve('gone');
    if (this.closed) return Promise.resolve('expired');
    return new Promise((resolve) => {
      const done = (outcome: 'expired' | 'gone'): void => {
        clearTimeout(timer);
        res.off('close', gone);
        this.held.delete(release);
        resolve(outcome);
      };
      const release = (): void => done('expired');
      const gone = (): void => done('gone');
      const timer = setTimeout(release, ms);
      res.once('close', gone);
      this.held.add(release);
    });
  }

  /** Answer every held Ping now (heartbeat expired) and go on holding new ones; how many were answered. */
  releaseAll(): number {
    const all = [...this.held];
    for (const release of all) release();
    return all.length;
  }

  /** Answer every held Ping now and hold no new ones. */
  close(): void {
    this.closed = true;
    for (const release of [...this.held]) release();
  }
}
