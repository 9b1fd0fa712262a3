/**
 * The messages between bench/longpoll.ts and its child processes (back end, client, coexist node): the
 * parent asks with an `id`, the child answers with the same `id`. Children also say `ready` once listening.
 */
export interface Ask {
  readonly id: number;
  readonly cmd: string;
  readonly [key: string]: unknown;
}

export interface Answer {
  readonly id?: number;
  readonly type?: 'ready';
  readonly [key: string]: unknown;
}

/** Send an answer to the parent; a child started without IPC has nobody to tell. */
export function tell(answer: Answer): void {
  process.send?.(answer);
}

/** Call `handle` for each question from the parent and send back what it returns. */
export function onAsk(handle: (ask: Ask) => Record<string, unknown>): void {
  process.on('message', (m: Ask) => {
    tell({ id: m.id, ...handle(m) });
  });
  // The parent went away (crash, Ctrl-C): do not outlive it.
  process.on('disconnect', () => process.exit(0));
}

/** A small WBXML Ping: HeartbeatInterval 300 (MS-ASCMD, code page 13). */
export const pingRequestBody = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x48, 0x03, 0x33, 0x30, 0x30, 0x00, 0x01, 0x01,
]);

/** The Ping answer the back end sends: Status 1 (the heartbeat expired, nothing changed). */
export const pingResponseBody = Uint8Array.from([
  0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x47, 0x03, 0x31, 0x00, 0x01, 0x01,
]);
