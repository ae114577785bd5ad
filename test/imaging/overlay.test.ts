import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grayImage } from '../../src/imaging/types.js';
import { maskOutline, maskOverlay, heatmapOverlay, jet } from '../../src/imaging/overlay.js';

test('the outline is the mask minus its erosion (image edges count as outside)', () => {
  const mask = grayImage(5, 4, Float32Array.from([0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]));
  assert.deepEqual(Array.from(maskOutline(mask, 1)), [0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
});

test('mask overlay: grey outside, solid colour on the outline, tint inside', () => {
  const img = grayImage(3, 3, new Float32Array(9).fill(0.5)); // grey 128
  const mask = grayImage(3, 3, Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1]));
  const o = maskOverlay(img, mask, { color: [0, 255, 0], radius: 1, fill: 0.5 });
  assert.deepEqual(Array.from(o.data.subarray(0, 3)), [0, 255, 0]); // corner: outline
  assert.deepEqual(Array.from(o.data.subarray(12, 15)), [64, 192, 64]); // centre: half tint
  const none = maskOverlay(img, grayImage(3, 3), { radius: 1 });
  assert.deepEqual(Array.from(none.data), new Array(27).fill(128));
  assert.throws(() => maskOverlay(img, grayImage(2, 3)), RangeError);
});

test('jet runs blue -> green -> red', () => {
  assert.deepEqual(jet(0), [0, 0, 128]);
  assert.deepEqual(jet(0.5), [128, 255, 128]);
  assert.deepEqual(jet(1), [128, 0, 0]);
});

test('heatmap overlay leaves cold pixels grey and colours hot ones in proportion', () => {
  const img = grayImage(2, 1, Float32Array.from([0.5, 0.5]));
  const heat = grayImage(2, 1, Float32Array.from([0.05, 1]));
  const o = heatmapOverlay(img, heat, { alpha: 0.5, floor: 0.1 });
  assert.deepEqual(Array.from(o.data.subarray(0, 3)), [128, 128, 128]);
  // heat 1: half-way between grey 128 and jet(1) = (128,0,0)
  assert.deepEqual(Array.from(o.data.subarray(3, 6)), [128, 64, 64]);
});
