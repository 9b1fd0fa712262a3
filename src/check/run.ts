/** `runCheck`: walk a user's flows protocol by protocol with real requests, and build the report. */
import { performance } from 'node:perf_hooks';
import type { CheckGroup, CheckProtocol, CheckReport } from './model.ts';
import { checkProtocols, worst } from './model.ts';
import { checkActiveSync, checkAutodiscover, checkEws, checkOwa } from './probes.ts';
import type { CheckOptions } from './session.ts';
import { Session } from './session.ts';

/** Run the check. Never throws for what a server does: every failure is a step of the report. */
export async function runCheck(o: CheckOptions): Promise<CheckReport> {
  const started = performance.now();
  const startedAt = (o.now ? o.now() : new Date()).toISOString();
  const wanted = new Set<CheckProtocol>(o.protocols);
  const protocols = checkProtocols.filter((p) => wanted.has(p));
  const s = new Session(o);
  const groups: CheckGroup[] = [];
  try {
    for (const p of protocols) {
      switch (p) {
        case 'autodiscover':
          groups.push(await checkAutodiscover(s));
          break;
        case 'activesync':
          groups.push(await checkActiveSync(s));
          break;
        case 'ews':
          groups.push(await checkEws(s, wanted.has('autodiscover')));
          break;
        case 'owa':
          groups.push(await checkOwa(s));
          break;
      }
    }
  } finally {
    await s.close();
  }
  return {
    user: o.user,
    from: o.from,
    estate: o.index.estate.name,
    protocols,
    ...(o.auth === undefined ? {} : { auth: o.auth }),
    verdict: worst(groups.map((g) => g.verdict)),
    groups,
    startedAt,
    ms: Math.round(performance.now() - started),
  };
}
