/**
 * The soak's phones (a child process): each device sends an ActiveSync Ping that the mailbox simulator holds,
 * and, as devices do, sends the next one when it is answered, or after `Retry-After` (or a short back-off)
 * when it gets a temporary error. A device sends a new Ping only while its hold can end before the load
 * phase does, so at the end every Ping has been answered one way or another. Every answer is kept for the
 * soak to judge.
 *
 *   forked by bench/soak/run.ts: { cmd: 'start', lab, devices, ratePerSecond, holdMs, loadEndMs, seed, once }
 */
import { decodeWbxml, childElement, textOf } from '../../src/codec/wbxml.ts';
import type { Observation } from './classify.ts';
import type { LabEndpoint } from './ipc.ts';
import { serve } from './ipc.ts';
import { seeded } from './plan.ts';
import { rawExchange, pathOf } from './raw.ts';
import { easPath, pingBody } from './requests.ts';

/** One phone. */
export interface Device {
  readonly id: string;
  readonly user: string;
  readonly host: string;
  readonly source: string;
}

interface Start {
  readonly lab: LabEndpoint;
  readonly devices: readonly Device[];
  readonly ratePerSecond: number;
  readonly holdMs: number;
  readonly loadEndMs: number;
  readonly seed: number;
  readonly authorization: Record<string, string>;
  /**
   * The warm-up: each device sends Pings until one is answered (the soak answers them all at once,
   * Lab.releasePings), then stops; `loadEndMs` does not apply.
   */
  readonly once?: boolean;
}

const observations: Observation[] = [];
let inFlight = 0;
let sent = 0;
let answered = 0;
let rampDoneMs: number | undefined;
let draining = false;
const idle: (() => void)[] = [];

/** The Ping's Status, from its WBXML answer. */
function pingStatus(body: Buffer): string | undefined {
  try {
    const doc = decodeWbxml(body);
    return textOf(childElement(doc, 'Status'));
  } catch {
    return undefined;
  }
}

async function run(s: Start, d: Device, random: () => number): Promise<void> {
  for (;;) {
    // A new Ping only when its whole hold fits before the end (with a margin for a loaded machine).
    if (draining || (!s.once && Date.now() + s.holdMs + 2_000 > s.loadEndMs)) return;
    inFlight++;
    sent++;
    const startMs = Date.now();
    const a = await rawExchange(s.lab, {
      host: d.host,
      method: 'POST',
      target: easPath(d.user, 'Ping', d.id),
      headers: {
        authorization: s.authorization[d.user] ?? '',
        'ms-asprotocolversion': '12.1',
        'content-type': 'application/vnd.ms-sync.wbxml',
      },
      body: pingBody,
      source: d.source,
      timeoutMs: s.holdMs + 120_000,
    });
    inFlight--;
    const o: Observation = {
      kind: 'ping',
      user: d.user,
      host: d.host,
      startMs,
      endMs: Date.now(),
      path: pathOf(a.headers),
      ...(a.status === undefined ? { error: a.error ?? 'no answer' } : { status: a.status }),
      ...(a.headers['x-beserver'] === undefined ? {} : { beServer: a.headers['x-beserver'] }),
      ...(a.headers['retry-after'] === undefined ? {} : { retryAfter: a.headers['retry-after'] }),
      ...(a.status === 200 ? { pingStatus: pingStatus(a.body) ?? '?' } : {}),
    };
    observations.push(o);
    if (inFlight === 0) for (const wake of idle.splice(0)) wake();
    if (a.status === 200) {
      answered++;
      if (s.once) return;
      continue;
    }
    // A temporary error: wait as told (Retry-After), or back off 1-3 s, before the next Ping.
    const waitS = Number(a.headers['retry-after'] ?? 1);
    await new Promise((r) => setTimeout(r, (Number.isFinite(waitS) ? waitS : 1) * 1000 * (1 + 2 * random())));
  }
}

serve(async (q) => {
  if (q.cmd === 'start') {
    const s = q as unknown as Start;
    // A new cycle (the warm-up's, then the load's): what the last one counted is gone.
    draining = false;
    sent = answered = 0;
    rampDoneMs = undefined;
    observations.length = 0;
    const random = seeded(s.seed);
    const perTick = Math.max(1, Math.round(s.ratePerSecond / 20));
    let i = 0;
    const tick = setInterval(() => {
      for (let k = 0; k < perTick && i < s.devices.length; k++, i++) {
        const d = s.devices[i];
        if (d) void run(s, d, seeded(Math.floor(random() * 2 ** 32)));
      }
      if (i >= s.devices.length) {
        clearInterval(tick);
        rampDoneMs = Date.now();
      }
    }, 50);
    return {};
  }
  if (q.cmd === 'count') return { sent, answered, inFlight, rampDoneMs };
  if (q.cmd === 'drain') {
    // No new Pings; resolve once every one in flight has been answered.
    draining = true;
    if (inFlight > 0) await new Promise<void>((r) => idle.push(r));
    return { rampDoneMs };
  }
  // Asked for after the soak's last reading, so what it judges is not in the lab process's heap then.
  if (q.cmd === 'observations') return { observations };
  throw new Error(`unknown command ${q.cmd}`);
});
