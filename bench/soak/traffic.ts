/**
 * The soak's mixed traffic (a child process): a few clients, each from a loopback source of its own, sending
 * ActiveSync, EWS, Autodiscover, OWA, Outlook Anywhere and OAB requests for every user of the estate through
 * the front door, one at a time with a seeded pause between them, over kept-alive HTTPS (undici). Every
 * answer is kept for the soak to judge.
 *
 *   forked by bench/soak/run.ts: { cmd: 'warm-up' | 'start' | 'stop' | 'observations', lab, sources, users, seed,
 *   pauseMs }
 */
import { Agent, buildConnector, request } from 'undici';
import type { Dispatcher } from 'undici';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseEstate } from '../../src/config/index.ts';
import type { EstateIndex } from '../../src/core/estate/estate-index.ts';
import type { Observation } from './classify.ts';
import type { LabEndpoint } from './ipc.ts';
import { serve } from './ipc.ts';
import { seeded } from './plan.ts';
import { pathOf } from './raw.ts';
import type { RequestSpec } from './requests.ts';
import { requestSpec, trafficKinds } from './requests.ts';

interface Start {
  readonly lab: LabEndpoint;
  readonly sources: readonly string[];
  readonly users: readonly string[];
  readonly authorization: Record<string, string>;
  readonly seed: number;
  /** The pause between two requests of one client, at most (ms). */
  readonly pauseMs: number;
}

const demoEstate = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

function agentFrom(lab: LabEndpoint, source: string): Agent {
  // A front door busy opening thousands of Ping connections may take a while to finish a handshake.
  const base = buildConnector({ ca: lab.caPem, timeout: 60_000 });
  return new Agent({
    localAddress: source,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
    connect: (opts, cb) => {
      const port = lab.ports[opts.hostname];
      return base({ ...opts, hostname: '127.0.0.1', port: String(port ?? 0), servername: opts.hostname }, cb);
    },
  });
}

/** Send one request and note what came back; never throws. */
async function send(
  s: Start,
  agent: Agent,
  source: string,
  spec: RequestSpec,
): Promise<Observation & { readonly ms: number }> {
  const own = spec.ownConnection ? agentFrom(s.lab, source) : undefined;
  const startMs = Date.now();
  const t0 = performance.now();
  const base = { kind: spec.kind, user: spec.user, host: spec.host, startMs };
  try {
    const r = await request(spec.url, {
      dispatcher: own ?? agent,
      method: spec.method as Dispatcher.HttpMethod,
      headers: { ...spec.headers, authorization: s.authorization[spec.user] ?? '' },
      ...(spec.body === undefined ? {} : { body: spec.body }),
    });
    const body = await r.body.text();
    const h = r.headers;
    const one = (name: string): string | undefined => {
      const v = h[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const adError =
      spec.kind === 'autodiscover' ? /<ErrorCode>(\d+)<\/ErrorCode>/.exec(body)?.[1] : undefined;
    const beServer = one('x-beserver');
    const location = one('location');
    const retryAfter = one('retry-after');
    return {
      ...base,
      endMs: Date.now(),
      ms: performance.now() - t0,
      status: r.statusCode,
      path: pathOf(h),
      ...(beServer === undefined ? {} : { beServer }),
      ...(location === undefined ? {} : { location }),
      ...(retryAfter === undefined ? {} : { retryAfter }),
      ...(adError === undefined ? {} : { autodiscoverError: adError }),
    };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return {
      ...base,
      endMs: Date.now(),
      ms: performance.now() - t0,
      path: [],
      error: typeof code === 'string' ? code : (e as Error).message,
    };
  } finally {
    await own?.destroy();
  }
}

let index: EstateIndex | undefined;
const agents: Agent[] = [];
const observations: (Observation & { readonly ms: number })[] = [];
let running = false;
const loops: Promise<void>[] = [];

async function loadIndex(file: string): Promise<EstateIndex> {
  index ??= parseEstate(await readFile(file, 'utf8'), file).index;
  return index;
}

async function client(s: Start, i: number, agent: Agent, random: () => number): Promise<void> {
  const source = s.sources[i] ?? '127.0.0.1';
  const idx = await loadIndex(demoEstate);
  let n = 0;
  while (running) {
    const kind = trafficKinds[Math.floor(random() * trafficKinds.length)] ?? 'activesync';
    const user = s.users[Math.floor(random() * s.users.length)] ?? '';
    observations.push(await send(s, agent, source, requestSpec(idx, kind, user, `SOAK${i}x${n++}`)));
    await new Promise((r) => setTimeout(r, random() * s.pauseMs));
  }
}

serve(async (q) => {
  const s = q as unknown as Start;
  if (q.cmd === 'warm-up') {
    // Every client, every kind, every user, once: warms the pools and caches, and makes each client's
    // source familiar to each account (docs/security.md "Extranet smart lockout").
    const idx = await loadIndex(demoEstate);
    const seen: Observation[] = [];
    await Promise.all(
      s.sources.map(async (source, i) => {
        const agent = agentFrom(s.lab, source);
        for (const user of s.users)
          for (const kind of trafficKinds)
            seen.push(await send(s, agent, source, requestSpec(idx, kind, user, `WARM${i}`)));
        await agent.close();
      }),
    );
    return { observations: seen };
  }
  if (q.cmd === 'start') {
    running = true;
    observations.length = 0;
    const random = seeded(s.seed);
    s.sources.forEach((source, i) => {
      const agent = agentFrom(s.lab, source);
      agents.push(agent);
      loops.push(client(s, i, agent, seeded(Math.floor(random() * 2 ** 32))));
    });
    return {};
  }
  if (q.cmd === 'stop') {
    running = false;
    await Promise.all(loops.splice(0));
    await Promise.all(agents.splice(0).map((a) => a.close()));
    return {};
  }
  // Asked for after the soak's last reading, so what it judges is not in the lab process's heap then.
  if (q.cmd === 'observations') return { observations };
  throw new Error(`unknown command ${q.cmd}`);
});
