/**
 * `servers[].authentication` (docs/config.md "authentication"): what each virtual directory lets clients
 * authenticate with, loaded into the estate's servers; absent by default (Basic only); a bad method, an
 * empty or repeated list, an unknown protocol, or a protocol the server has no virtual directory for is a
 * problem of the file with its path, line and column.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { EstateConfigError, formatConfigProblems, parseEstate } from '../../src/config/index.ts';

const demo = fileURLToPath(new URL('../../examples/o365info.yaml', import.meta.url));

interface ServerFile {
  name: string;
  authentication?: unknown;
}
interface EstateFileText {
  sites: { servers: ServerFile[] }[];
}

/** The demo estate with `authentication` set on some servers, as YAML text. */
async function withAuthentication(by: Record<string, unknown>): Promise<string> {
  const file = parseYaml(await readFile(demo, 'utf8')) as EstateFileText;
  for (const site of file.sites)
    for (const s of site.servers) if (by[s.name] !== undefined) s.authentication = by[s.name];
  return stringifyYaml(file, { lineWidth: 0 });
}

/** The problems of `text`, which must not load. */
function problemsOf(text: string): EstateConfigError {
  try {
    parseEstate(text, 'estate.yaml');
  } catch (error) {
    assert.ok(error instanceof EstateConfigError, String(error));
    return error;
  }
  assert.fail('the estate loaded');
}

const pathOf = (server: string, text: string): string => {
  const file = parseYaml(text) as EstateFileText;
  for (const [i, site] of file.sites.entries()) {
    const j = site.servers.findIndex((s) => s.name === server);
    if (j >= 0) return `sites[${i}].servers[${j}].authentication`;
  }
  throw new Error(`no ${server}`);
};

test('no authentication: the servers carry none, so every virtual directory offers Basic only', async () => {
  const { index } = parseEstate(await readFile(demo, 'utf8'), demo);
  for (const s of index.estate.sites.flatMap((site) => site.servers))
    assert.equal(s.authentication, undefined);
});

test('authentication is read per virtual directory, on a CAS and on a 2013 mailbox server (its back end)', async () => {
  const text = await withAuthentication({
    'CAS2007-NY': { ews: ['basic', 'ntlm', 'negotiate'], rpc: ['basic', 'ntlm'] },
    'MBX2013-NY': { mapi: ['ntlm', 'negotiate'], ews: ['negotiate'] },
  });
  const { index } = parseEstate(text, 'estate.yaml');
  assert.deepEqual(index.server('CAS2007-NY')?.authentication, {
    ews: ['basic', 'ntlm', 'negotiate'],
    rpc: ['basic', 'ntlm'],
  });
  assert.deepEqual(index.server('MBX2013-NY')?.authentication, {
    mapi: ['ntlm', 'negotiate'],
    ews: ['negotiate'],
  });
  assert.equal(index.server('CAS2013-NY')?.authentication, undefined);
});

test('a bad method, an empty list, a repeated method and an unknown protocol are problems with their paths', async () => {
  const text = await withAuthentication({
    'CAS2007-NY': { ews: ['basic', 'kerberos'], rpc: [], oab: ['ntlm', 'ntlm'], webdav: ['basic'] },
  });
  const at = pathOf('CAS2007-NY', text);
  const e = problemsOf(text);
  const byPath = new Map(e.problems.map((p) => [p.path, p]));
  assert.ok(byPath.has(`${at}.ews[1]`), JSON.stringify(e.problems));
  assert.match(byPath.get(`${at}.rpc`)?.message ?? '', /at least 1/);
  assert.match(byPath.get(`${at}.oab`)?.message ?? '', /twice/);
  assert.ok(
    e.problems.some((p) => p.path.startsWith(at) && /webdav/.test(p.message)),
    JSON.stringify(e.problems),
  );
  // Each with the file, line and column of its node.
  const lines = text.split('\n');
  const ews = byPath.get(`${at}.ews[1]`);
  assert.ok(ews?.line !== undefined && ews.column !== undefined);
  assert.match(lines[ews.line - 1] ?? '', /kerberos/);
  assert.match(
    formatConfigProblems(e),
    /estate\.yaml:\d+:\d+ {2}sites\[\d+\]\.servers\[\d+\]\.authentication\.ews\[1\]/,
  );
});

test('a protocol the server has no URL for may not be listed, and the message says why', async () => {
  // CAS2007-NY has no mapi URL (Exchange 2007 has no MAPI/HTTP); MBX2007-NY has no virtual directory at all.
  const text = await withAuthentication({
    'CAS2007-NY': { mapi: ['ntlm'], ews: ['ntlm'] },
    'MBX2007-NY': { ews: ['ntlm'] },
  });
  const e = problemsOf(text);
  assert.deepEqual(
    e.problems.map((p) => p.path),
    [`${pathOf('CAS2007-NY', text)}.mapi`, `${pathOf('MBX2007-NY', text)}.ews`],
  );
  for (const p of e.problems) {
    assert.equal(p.code, 'CX_CONFIG_INCONSISTENT');
    assert.match(p.message, /has no URL for (mapi|ews), so no (mapi|ews) virtual directory/);
    assert.ok(p.line !== undefined && p.column !== undefined);
  }
});
