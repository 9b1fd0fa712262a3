/** What the discover tests share: the fixture sets of test/fixtures/shell/ and a discovered estate per set. */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LoadedEstate } from '../../src/config/index.ts';
import { parseEstate } from '../../src/config/index.ts';
import type { Organisation } from '../../src/discover/organisation.ts';
import { organisationFromShellFiles } from '../../src/discover/shell/from-shell.ts';
import type { WrittenEstate } from '../../src/discover/write-estate.ts';
import { writeEstate } from '../../src/discover/write-estate.ts';

export const fixtures = fileURLToPath(new URL('../fixtures/shell/', import.meta.url));

/** Every export file of one estate in one format, e.g. exportsOf('o365info', 'csv'). */
export function exportsOf(estate: 'o365info' | 'fabrikam', format: 'csv' | 'json'): string[] {
  const dir = `${fixtures}${estate}/${format}`;
  return readdirSync(dir)
    .sort()
    .map((f) => `${dir}/${f}`);
}

export interface Discovered {
  readonly org: Organisation;
  readonly written: WrittenEstate;
  readonly loaded: LoadedEstate;
}

/** Exports -> organisation -> estate YAML -> coexist's own loader (which throws on any problem). */
export async function discover(files: readonly string[]): Promise<Discovered> {
  const org = await organisationFromShellFiles(files);
  const written = writeEstate(org, files);
  return { org, written, loaded: parseEstate(written.yaml, 'discovered.yaml') };
}

/** The organisation without where each part was read (`source`) and without the reader's notes. */
export function withoutSources(org: Organisation): unknown {
  return JSON.parse(
    JSON.stringify({ ...org, notes: [] }, (key, value: unknown) => (key === 'source' ? undefined : value)),
  ) as unknown;
}
