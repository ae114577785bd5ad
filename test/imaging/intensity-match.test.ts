import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isQuantileFunction, matchIntensity, meanQuantiles, quantileFunction } from '../../src/imaging/intensity-match.js';
import { grayImage, type GrayImage } from '../../src/imaging/types.js';

test('quantileFunction reads the order statistics at ranks (k + 0.5) / levels, linear between them', () => {
  assert.deepEqual(Array.from(quantileFunction([1, 0.25, 0, 0.5], 4)), [0, 0.25, 0.5, 1]);
  // ranks 0.25 and 0.75 of four values fall half way between the first two and the last two
  assert.deepEqual(Array.from(quantileFunction([1, 0.25, 0, 0.5], 2)), [0.125, 0.75]);
  assert.deepEqual(Array.from(quantileFunction([0.3], 3)), [0.3, 0.3, 0.3]);
  assert.throws(() => quantileFunction([], 4), RangeError);
});

test('meanQuantiles averages point by point and refuses functions of different lengths', () => {
  assert.deepEqual(
    Array.from(
      meanQuantiles([
        [0, 0.5],
        [0.5, 1],
      ]),
    ),
    [0.25, 0.75],
  );
  assert.throws(
    () =>
      meanQuantiles([
        [0, 1],
        [0, 0.5, 1],
      ]),
    RangeError,
  );
  assert.throws(() => meanQuantiles([]), RangeError);
});

test('isQuantileFunction wants at least two finite nondecreasing values in [0, 1]', () => {
  assert.ok(isQuantileFunction([0, 0, 0.5, 1]));
  for (const bad of [[0.5], [0.2, 0.1], [0, 1.5], [-0.1, 0.5], [0, Number.NaN]]) assert.ok(!isQuantileFunction(bad), JSON.stringify(bad));
});

test('matchIntensity puts each pixel at the reference value of its rank in its own image', () => {
  const img = grayImage(2, 2, Float32Array.from([0.4, 0.1, 0.3, 0.2]));
  // four distinct values: ranks 1/8, 3/8, 5/8, 7/8 are exactly the reference's four points
  assert.deepEqual(Array.from(matchIntensity(img, [0, 0.25, 0.5, 1]).data), [1, 0, 0.5, 0.25]);
  // a flat image sits at the middle rank: half way between the reference's two middle points
  const flat = grayImage(3, 3, new Float32Array(9).fill(0.7));
  assert.deepEqual(Array.from(matchIntensity(flat, [0, 0.2, 0.6, 1]).data), new Array(9).fill(Math.fround(0.4)));
});

/** A 64x64 crop of 8-bit values (as PNG and JPEG films give). */
function eightBitCrop(): GrayImage {
  const d = new Float32Array(64 * 64);
  for (let i = 0; i < d.length; i++) d[i] = Math.round(255 * (0.5 + 0.45 * Math.sin(i * 0.37) * Math.cos(i * 0.011))) / 255;
  return grayImage(64, 64, d);
}

test('a look-up curve or contrast change (any increasing map) does not change the matched crop: the network sees the same input', () => {
  const crop = eightBitCrop();
  const reference = Array.from({ length: 256 }, (_, k) => ((k + 0.5) / 256) ** 1.3);
  const matched = matchIntensity(crop, reference).data;
  const mapped = (f: (x: number) => number) => grayImage(64, 64, crop.data.map(f));
  for (const [name, f] of [
    ['gamma 0.7', (x: number) => x ** 0.7],
    ['gamma 1.4', (x: number) => x ** 1.4],
    ['contrast 0.75', (x: number) => (x - 0.5) * 0.75 + 0.5],
    ['brightness -0.02', (x: number) => x - 0.02],
  ] as const)
    assert.deepEqual(matchIntensity(mapped(f), reference).data, matched, name);
  // where the as-cut crop does change under the same map
  assert.notDeepEqual(mapped((x) => x ** 0.7).data, crop.data);
});
