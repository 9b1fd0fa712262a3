/**
 * The estate's OWA hosts as a browser meets them (owa-targets.ts): the redirect targets a logon page's CSP
 * allows, the groups a logoff goes through, and the logoff chain's steps, on the demo estate
 * (examples/o365info.yaml, whose flows docs/flows.md draws) and on a variant of it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseEstate } from '../config/index.ts';
import type { EstateIndex } from '../core/estate/estate-index.ts';
import type { Server } from '../core/estate/estate.ts';
import type { ClientLocation } from './owa-targets.ts';
import { nextLogoffHop, owaRedirectTargets, owaSessionGroup } from './owa-targets.ts';

const file = new URL('../../examples/o365info.yaml', import.meta.url);
const text = readFileSync(file, 'utf8');
const { index } = parseEstate(text, file.pathname);
const server = (i: EstateIndex, name: string): Server => i.server(name) as Server;
const sorted = (s: ReadonlySet<string>): string[] => [...s].sort();

const mail = 'mail.o365info.com';
const legacy = 'legacy.mail.o365info.com';
const europe = 'europe.mail.o365info.com';

/** Every host a logoff chain started at `start` visits, in order, and where it ends. */
function walk(i: EstateIndex, start: string, client: ClientLocation): { visited: string[]; end: string } {
  const visited = [start];
  let here = start;
  let started: string | undefined;
  for (let n = 0; n < 20; n++) {
    const hop = nextLogoffHop(i, here, started, client);
    if ('done' in hop) return { visited, end: hop.done };
    visited.push(hop.next);
    ({ started } = hop);
    here = hop.next;
  }
  throw new Error('the chain does not end');
}

describe('owaRedirectTargets: what a logon page’s form-action allows', () => {
  test('the front door: the legacy and regional namespaces outside, the 2007 CAS internal URLs inside', () => {
    assert.deepEqual(sorted(owaRedirectTargets(index, server(index, 'CAS2013-NY'))), [
      'cas2007-la.o365info.local',
      'cas2007-mad.o365info.local',
      'cas2007-ny.o365info.local',
      europe,
      legacy,
    ]);
  });

  test('the legacy CAS sends Madrid’s users to the regional namespace; Madrid sends New York’s to legacy', () => {
    assert.deepEqual(sorted(owaRedirectTargets(index, server(index, 'CAS2007-NY'))), [europe]);
    assert.deepEqual(sorted(owaRedirectTargets(index, server(index, 'CAS2007-MAD'))), [legacy]);
  });

  test('a mailbox server shows no logon page to browsers: no targets', () => {
    assert.deepEqual(sorted(owaRedirectTargets(index, server(index, 'MBX2013-NY'))), []);
  });

  test('from the estate only: without the regional namespace’s OWA URL, europe is no target', () => {
    const variant = text.replace('external: https://europe.mail.o365info.com/owa,', '');
    assert.notEqual(variant, text);
    const other = parseEstate(variant, file.pathname).index;
    assert.ok(!owaRedirectTargets(other, server(other, 'CAS2013-NY')).has(europe));
  });

  test('a target on another port keeps its port (URL.host), as the CSP must name it', () => {
    const variant = text.replace(
      'external: https://legacy.mail.o365info.com/owa,',
      'external: https://legacy.mail.o365info.com:8443/owa,',
    );
    assert.notEqual(variant, text);
    const other = parseEstate(variant, file.pathname).index;
    assert.ok(owaRedirectTargets(other, server(other, 'CAS2013-NY')).has(`${legacy}:8443`));
  });
});

describe('owaSessionGroup: the hosts a browser can hold sessions on together', () => {
  test('outside: the public OWA names, never an internal one a browser outside cannot resolve', () => {
    for (const h of [mail, legacy, europe])
      assert.deepEqual(owaSessionGroup(index, h, 'external'), [europe, legacy, mail]);
  });

  test('inside: the internal URLs join them (split DNS)', () => {
    assert.deepEqual(owaSessionGroup(index, 'cas2007-ny.o365info.local', 'internal'), [
      'cas2007-la.o365info.local',
      'cas2007-mad.o365info.local',
      'cas2007-ny.o365info.local',
      'cas2013-ny.o365info.local',
      europe,
      legacy,
      mail,
    ]);
  });

  test('a host no OWA redirect touches is alone: Autodiscover’s namespace, a name off the estate', () => {
    assert.deepEqual(owaSessionGroup(index, 'autodiscover.o365info.com', 'external'), [
      'autodiscover.o365info.com',
    ]);
    assert.deepEqual(owaSessionGroup(index, 'Evil.Example.com', 'external'), ['evil.example.com']);
  });
});

describe('nextLogoffHop: the logoff chain', () => {
  test('from legacy: through every other host of the group once, then back to legacy', () => {
    assert.deepEqual(walk(index, legacy, 'external'), { visited: [legacy, mail, europe], end: legacy });
  });

  test('from the front door: the same hosts, and back to the front door', () => {
    assert.deepEqual(walk(index, mail, 'external'), { visited: [mail, europe, legacy], end: mail });
  });

  test('inside, every internal and public OWA host once', () => {
    const { visited, end } = walk(index, mail, 'internal');
    assert.equal(end, mail);
    assert.deepEqual([...visited].sort(), owaSessionGroup(index, mail, 'internal'));
  });

  test('a chain parameter off the group is not believed: a new chain starts here', () => {
    for (const started of ['evil.example.com', 'https://evil.example.com/', 'cas2007-la.o365info.local', ''])
      assert.deepEqual(nextLogoffHop(index, legacy, started, 'external'), { next: mail, started: legacy });
  });

  test('a chain that began at a host of the group goes on, and every next host is one of the group', () => {
    assert.deepEqual(nextLogoffHop(index, mail, legacy, 'external'), { next: europe, started: legacy });
    assert.deepEqual(nextLogoffHop(index, europe, legacy, 'external'), { done: legacy });
  });

  test('a host alone in its group is done at once', () => {
    assert.deepEqual(nextLogoffHop(index, 'autodiscover.o365info.com', undefined, 'external'), {
      done: 'autodiscover.o365info.com',
    });
  });
});
