/** The viewer's pixel math with exact values: window table, painting, presets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paint, presets, windowTable, type Film } from '../../src/web/film.js';

test('the window table maps codes through a LINEAR window in modality units, inverted for MONOCHROME1', () => {
  // codes span [0, 65535] exactly, so a code is its modality value
  const f = { min: 0, max: 65535, invert: false };
  const lut = windowTable(f, { center: 1000.5, width: 1001 });
  assert.equal(lut[0], 0);
  assert.equal(lut[500], 0);
  assert.equal(lut[1000], 128); // (1000 - 1000) / 1000 + 0.5 → 127.5 rounds up
  assert.equal(lut[1500], 255);
  assert.equal(lut[65535], 255);
  const inverted = windowTable({ ...f, invert: true }, { center: 1000.5, width: 1001 });
  assert.equal(inverted[0], 255);
  assert.equal(inverted[1500], 0);
});

test('painting writes one opaque grey RGBA pixel per code', () => {
  const film: Film = { width: 2, height: 2, codes: Uint16Array.from([0, 1, 2, 3]), min: 0, max: 65535, invert: false };
  const lut = new Uint8Array(65536);
  lut.set([0, 10, 200, 255]);
  const rgba = new Uint8ClampedArray(16);
  paint(film, lut, rgba);
  assert.deepEqual([...rgba], [0, 0, 0, 255, 10, 10, 10, 255, 200, 200, 200, 255, 255, 255, 255, 255]);
});

test('presets start from the stored window and keep a full-range one', () => {
  const p = presets({ min: -1000, max: 3000 }, { center: -600, width: 1500 });
  assert.deepEqual(
    p.map((x) => [x.name, x.window.center, x.window.width]),
    [
      ['Default', -600, 1500],
      ['Full range', 1000, 4000],
      ['Soft', -600, 2400],
      ['Sharp', -600, 900],
    ],
  );
});
