/**
 * Debian's Chromium, driven by playwright-core, pointed at a running lab: the estate's host names mapped to
 * the lab's ports (`--host-resolver-rules`, built from the lab's DNS as `coexist lab` prints it for
 * `--connect-to`), and the lab CA trusted through an NSS database in a throwaway HOME given to Chromium
 * alone: no certificate error is ignored, so what a user's browser would refuse, this one refuses too.
 * Nothing is downloaded: the browser is /usr/bin/chromium, and the flags keep it off the network (the
 * machine is closed; without them Chromium keeps calling Google's services).
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';
import type { Lab } from '../../src/lab/index.ts';
import { hostsByServer } from '../../src/lab/index.ts';

/** Where Debian's chromium package puts the browser (scripts/preflight.mjs lists it). */
export const chromiumPath = '/usr/bin/chromium';

/** A browser of its own, with the HOME that holds its NSS database; `close` removes both. */
export interface LabBrowser {
  readonly browser: Browser;
  close(): Promise<void>;
}

/**
 * `--host-resolver-rules`: each host name of the estate on port 443 to the lab listener that answers it,
 * and every other name to nowhere, so that a stray request fails at once instead of leaving the machine.
 */
export function hostResolverRules(lab: Lab): string {
  const rules: string[] = [];
  for (const hosts of hostsByServer(lab.index).values())
    for (const host of hosts) {
      const to = lab.resolve(host, 443);
      if (to) rules.push(`MAP ${host}:443 ${to.address}:${to.port}`);
    }
  rules.push('MAP * ~NOTFOUND');
  return rules.join(', ');
}

/** certutil, failing with its own words. */
function certutil(args: readonly string[]): void {
  const r = spawnSync('certutil', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error || r.status !== 0)
    throw new Error(
      `certutil ${args.join(' ')} failed (Debian package libnss3-tools; npm run setup installs it): ` +
        `${r.error?.message ?? ''}${r.stderr}`,
    );
}

/** Start Chromium for `lab`: the lab's names resolve to its ports, and its CA is trusted (and nothing else is relaxed). */
export async function launchForLab(lab: Lab): Promise<LabBrowser> {
  const home = await mkdtemp(join(tmpdir(), 'coexist-browser-'));
  try {
    const nssdb = join(home, '.pki', 'nssdb');
    await mkdir(nssdb, { recursive: true });
    certutil(['-d', `sql:${nssdb}`, '-N', '--empty-password']);
    certutil(['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'coexist-lab', '-i', lab.caPath]);
    const browser = await chromium.launch({
      executablePath: chromiumPath,
      // playwright-core starts Chromium with a new, empty --user-data-dir of its own (it refuses one in args).
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--host-resolver-rules=${hostResolverRules(lab)}`,
      ],
      // Chromium reads the NSS database of $HOME/.pki/nssdb: the throwaway one, holding the lab CA only.
      env: { ...process.env, HOME: home },
      timeout: 60_000,
    });
    return {
      browser,
      async close() {
        await browser.close();
        await rm(home, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(home, { recursive: true, force: true });
    throw err;
  }
}
