import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareAddresses, FirstAddresses } from './first-addresses.ts';

test('keeps the first N addresses case-insensitively, whatever order they come in, and counts them all', () => {
  const all = ['dave@x.com', 'Alice@x.com', 'carol@x.com', 'bob@x.com', 'erin@x.com', 'alice@x.com'];
  const expected = [...all].sort(compareAddresses);
  assert.deepEqual(expected, [
    'Alice@x.com',
    'alice@x.com',
    'bob@x.com',
    'carol@x.com',
    'dave@x.com',
    'erin@x.com',
  ]);
  // Every rotation of the input gives the same first three.
  for (let r = 0; r < all.length; r++) {
    const first = new FirstAddresses(3);
    for (const a of [...all.slice(r), ...all.slice(0, r)]) first.add(a);
    assert.deepEqual(first.values(), expected.slice(0, 3));
    assert.equal(first.seen, all.length);
  }
});

test('a limit above the count keeps everything; a limit of 0 keeps nothing but still counts', () => {
  const many = new FirstAddresses(10);
  const none = new FirstAddresses(0);
  for (const a of ['b@x', 'a@x']) {
    many.add(a);
    none.add(a);
  }
  assert.deepEqual(many.values(), ['a@x', 'b@x']);
  assert.deepEqual(none.values(), []);
  assert.equal(none.seen, 2);
  assert.throws(() => new FirstAddresses(-1), RangeError);
});
