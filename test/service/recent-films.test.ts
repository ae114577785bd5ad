/**
 * The in-memory hand-over of accepted films to this process's workers: each film is taken
 * once, the oldest go first past the byte budget, and a film larger than the budget is never held.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecentFilms } from '../../src/service/recent-films.js';

const film = (n: number, fill: number) => new Uint8Array(n).fill(fill);

test('a kept film is taken once, then the store is asked again', () => {
  const r = new RecentFilms(100);
  const a = film(40, 1);
  r.keep('a', a);
  assert.equal(r.size, 40);
  assert.equal(r.take('a'), a);
  assert.equal(r.take('a'), undefined);
  assert.equal(r.size, 0);
});

test('past the byte budget the oldest films are pushed out, newest kept', () => {
  const r = new RecentFilms(100);
  r.keep('a', film(40, 1));
  r.keep('b', film(40, 2));
  r.keep('c', film(40, 3));
  assert.equal(r.size, 80);
  assert.equal(r.take('a'), undefined);
  assert.deepEqual([r.take('b')?.[0], r.take('c')?.[0]], [2, 3]);
});

test('a film over the whole budget, a budget of 0 and a film kept twice hold nothing extra', () => {
  const r = new RecentFilms(100);
  r.keep('big', film(101, 1));
  assert.equal(r.take('big'), undefined);
  r.keep('a', film(30, 1));
  r.keep('a', film(30, 9));
  assert.equal(r.size, 30);
  assert.equal(r.take('a')?.[0], 1);
  const none = new RecentFilms(0);
  none.keep('a', film(1, 1));
  assert.equal(none.take('a'), undefined);
});

test('a film that is a view of a larger body (a STOW-RS part) is held as a copy of its own bytes, not the whole body', () => {
  const r = new RecentFilms(100);
  const body = new Uint8Array(1000).fill(7);
  const part = body.subarray(10, 50);
  r.keep('part', part);
  const held = r.take('part');
  assert.equal(held?.buffer.byteLength, 40, 'the body is not kept alive');
  assert.deepEqual(held, part);
  const whole = film(40, 1);
  r.keep('whole', whole);
  assert.equal(r.take('whole'), whole, 'a film with a buffer of its own is held without a copy');
});
