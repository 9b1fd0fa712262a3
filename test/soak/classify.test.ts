/**
 * How the soak judges an answer (bench/soak/classify.ts): the engine's path and mailbox make it right, another
 * way or mailbox misroutes it, a temporary error counts only while a fault was on its path, anything else is
 * lost.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FaultWindow, Observation } from '../../bench/soak/classify.ts';
import { judge } from '../../bench/soak/classify.ts';
import type { Expected } from '../../bench/soak/requests.ts';

const bobEas: Expected = {
  path: ['CAS2013-NY', 'MBX2013-NY', 'CAS2007-NY', 'MBX2007-NY'],
  status: 200,
  beServer: 'MBX2007-NY',
};
const seen = (o: Partial<Observation>): Observation => ({
  kind: 'activesync',
  user: 'bob@o365info.com',
  host: 'mail.o365info.com',
  startMs: 1_000,
  endMs: 1_100,
  path: bobEas.path,
  status: 200,
  beServer: 'MBX2007-NY',
  ...o,
});
const casDown: FaultWindow = { name: 'CAS2007-NY stopped', server: 'CAS2007-NY', fromMs: 1_050, toMs: 5_000 };
const laDown: FaultWindow = { name: 'CAS2007-LA stopped', server: 'CAS2007-LA', fromMs: 0, toMs: 5_000 };
const ldapDown: FaultWindow = { name: 'LDAP directory restarted', fromMs: 0, toMs: 5_000 };

describe('the soak judges an answer', () => {
  test("the engine's path and mailbox: right", () => {
    assert.equal(judge(seen({}), bobEas, []).verdict, 'right');
  });

  test('another path or another mailbox: misrouted, fault or not', () => {
    const short = seen({ path: ['CAS2013-NY', 'MBX2013-NY'], beServer: 'MBX2013-NY' });
    assert.equal(judge(short, bobEas, [casDown]).verdict, 'misrouted');
    assert.equal(judge(seen({ beServer: 'MBX2007-LA' }), bobEas, []).verdict, 'misrouted');
    const redirect: Expected = {
      path: ['CAS2013-NY'],
      status: 302,
      location: 'https://legacy.mail.o365info.com/owa',
    };
    const owa = seen({ kind: 'owa', path: ['CAS2013-NY'], status: 302 });
    assert.equal(
      judge({ ...owa, location: 'https://legacy.mail.o365info.com/owa?reason=20' }, redirect, []).verdict,
      'right',
    );
    assert.equal(
      judge({ ...owa, location: 'https://europe.mail.o365info.com/owa' }, redirect, []).verdict,
      'misrouted',
    );
  });

  test('503 with Retry-After, 502, 504: temporary only while a fault is on the path', () => {
    const busy = seen({ status: 503, retryAfter: '2', path: ['CAS2013-NY', 'MBX2013-NY'] });
    assert.equal(judge(busy, bobEas, [casDown]).verdict, 'temporary');
    assert.equal(judge(busy, bobEas, [ldapDown]).verdict, 'temporary', 'the directory is on every path');
    assert.equal(judge(busy, bobEas, [laDown]).verdict, 'lost', 'CAS2007-LA is not on the path');
    assert.equal(judge(busy, bobEas, []).verdict, 'lost');
    assert.equal(
      judge({ ...busy, startMs: 6_000, endMs: 6_100 }, bobEas, [casDown]).verdict,
      'lost',
      'after it',
    );
    assert.equal(judge(seen({ status: 502, path: ['CAS2013-NY'] }), bobEas, [casDown]).verdict, 'temporary');
    assert.equal(
      judge(seen({ status: 503, path: ['CAS2013-NY'] }), bobEas, [casDown]).verdict,
      'lost',
      'no Retry-After',
    );
    assert.equal(judge(seen({ status: 401, path: ['CAS2013-NY'] }), bobEas, [ldapDown]).verdict, 'lost');
  });

  test("a restarted server's recovery: the hop in front of it may give up connecting to it, nothing else", () => {
    // CAS2007-NY back at 5 000; new connections to it complete their handshake within the connect deadline
    // again from 9 000 (measured by run.ts): a Ping that MBX2013-NY could not connect on meanwhile is the fault's.
    const restarted: FaultWindow = { ...casDown, recoveredMs: 9_000 };
    const gaveUp = seen({
      kind: 'ping',
      status: 503,
      retryAfter: '2',
      path: ['CAS2013-NY', 'MBX2013-NY'],
      startMs: 5_800,
      endMs: 16_000,
    });
    assert.equal(judge(gaveUp, bobEas, [casDown]).verdict, 'lost', 'without the recovery: after the window');
    assert.equal(judge(gaveUp, bobEas, [restarted]).verdict, 'temporary');
    assert.equal(
      judge({ ...gaveUp, startMs: 9_500, endMs: 19_500 }, bobEas, [restarted]).verdict,
      'lost',
      'started once it had recovered',
    );
    assert.equal(
      judge({ ...gaveUp, path: ['CAS2013-NY'] }, bobEas, [restarted]).verdict,
      'lost',
      'CAS2013-NY does not connect to CAS2007-NY: its error is not the restart',
    );
    assert.equal(
      judge({ ...gaveUp, status: 401 }, bobEas, [restarted]).verdict,
      'lost',
      'only a temporary error',
    );
    const legacy: Expected = { path: ['CAS2007-NY', 'MBX2007-NY'], status: 200, beServer: 'MBX2007-NY' };
    const timedOut = seen({ path: [], error: 'timeout', startMs: 5_800, endMs: 20_000 });
    delete (timedOut as { status?: number }).status;
    assert.equal(judge(timedOut, legacy, [restarted]).verdict, 'temporary', 'the entry server itself');
    assert.equal(judge(timedOut, legacy, [casDown]).verdict, 'lost');
  });

  test("Autodiscover's server busy (603) during a directory fault; no answer only when the entry server is down", () => {
    const ad: Expected = { path: ['CAS2013-NY'], status: 200 };
    const busy = seen({ kind: 'autodiscover', path: ['CAS2013-NY'], autodiscoverError: '603' });
    assert.equal(judge(busy, ad, [ldapDown]).verdict, 'temporary');
    assert.equal(judge(busy, ad, []).verdict, 'lost');
    const legacy: Expected = { path: ['CAS2007-NY', 'MBX2007-NY'], status: 200, beServer: 'MBX2007-NY' };
    const refused = seen({ path: [], error: 'ECONNREFUSED' });
    delete (refused as { status?: number }).status;
    assert.equal(judge(refused, legacy, [casDown]).verdict, 'temporary');
    assert.equal(judge(refused, bobEas, [casDown]).verdict, 'lost', 'the front door was up: it must answer');
  });
});
