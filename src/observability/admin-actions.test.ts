import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ownHosts } from './admin-actions.ts';

test('a listener on one address: that address and port is its only own Host', () => {
  assert.deepEqual(ownHosts('127.0.0.1', 9464), ['127.0.0.1:9464']);
  assert.deepEqual(ownHosts('::1', 9464), ['[::1]:9464']);
  assert.deepEqual(ownHosts('10.0.0.11', 9464, ['10.0.0.12']), ['10.0.0.11:9464'], 'other addresses are not');
});

test("a listener on every address: each of the machine's addresses, loopback included, and never a name", () => {
  const own = ownHosts('0.0.0.0', 9464, ['127.0.0.1', '10.0.0.11', '2001:DB8::11']);
  assert.deepEqual(own.sort(), ['10.0.0.11:9464', '127.0.0.1:9464', '[2001:db8::11]:9464', '[::1]:9464']);
  assert.ok(!own.includes('localhost:9464'), 'a name is what DNS rebinding brings');
  assert.deepEqual(ownHosts('::', 1, []).sort(), ['127.0.0.1:1', '[::1]:1']);
});
