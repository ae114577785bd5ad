import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  filmHistogram,
  filmQuantileFunction,
  HISTOGRAM_BINS,
  isQuantileFunction,
  matchCrop,
  matchIntensity,
  meanQuantiles,
  quantileFunction,
  type IntensityMatch,
} from '../../src/imaging/intensity-match.js';
import { grayImage, toGray, type GrayImage, type IndexedImage } from '../../src/imaging/types.js';

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

/** Rows `top`..`top + rows - 1` of `film`, as a crop cut without resampling. */
function rowsOf(film: GrayImage, top: number, rows: number): GrayImage {
  return grayImage(film.width, rows, film.data.slice(top * film.width, (top + rows) * film.width));
}

test('filmHistogram counts an indexed film in place as its float copy counts it, and filmQuantileFunction reads bin middles at ranks (k + 0.5) / levels', () => {
  const indexed: IndexedImage = { width: 3, height: 2, codes: Uint16Array.from([0, 1, 1, 2, 2, 2]), values: Float32Array.from([0, 0.5, 1]) };
  assert.deepEqual(filmHistogram(indexed), filmHistogram(toGray(indexed)));
  const counts = filmHistogram(indexed);
  assert.deepEqual([counts[0], counts[HISTOGRAM_BINS / 2], counts[HISTOGRAM_BINS - 1]], [1, 2, 3]);
  // ranks 1/4 and 3/4 of six pixels: the second and fifth smallest, at their bins' middles
  const mid = (b: number) => (b + 0.5) / HISTOGRAM_BINS;
  assert.deepEqual(Array.from(filmQuantileFunction(indexed, 2)), [mid(HISTOGRAM_BINS / 2), mid(HISTOGRAM_BINS - 1)]);
});

test('film scope: a crop pixel takes the reference at its rank in the whole film, and any increasing map of the film leaves the matched crop as it was', () => {
  const film = eightBitCrop();
  const reference = Array.from({ length: 256 }, (_, k) => ((k + 0.5) / 256) ** 1.3);
  const byFilm: IntensityMatch = { quantiles: reference, scope: 'film' };
  const crop = rowsOf(film, 16, 32);
  const matched = matchCrop(crop, film, byFilm).data;
  // the crop's pixels are placed among the film's: the same as matching the film, then cutting
  assert.deepEqual(matched, rowsOf(matchIntensity(film, reference), 16, 32).data);
  for (const [name, f] of [
    ['gamma 0.7', (x: number) => x ** 0.7],
    ['gamma 1.4', (x: number) => x ** 1.4],
    ['contrast 0.75', (x: number) => (x - 0.5) * 0.75 + 0.5],
    ['brightness -0.02', (x: number) => x - 0.02],
  ] as const) {
    const moved = grayImage(64, 64, film.data.map(f));
    assert.deepEqual(matchCrop(rowsOf(moved, 16, 32), moved, byFilm).data, matched, name);
  }
});

test('film scope interpolates a resampled value the film does not hold between the matched values of its neighbours', () => {
  // a film of two values; the crop holds one half way between them (a bilinear edge)
  const film = grayImage(2, 1, Float32Array.from([0.25, 0.75]));
  const crop = grayImage(3, 1, Float32Array.from([0.25, 0.5, 0.75]));
  const out = matchCrop(crop, film, { quantiles: [0, 0.2, 0.8, 1], scope: 'film' }).data;
  assert.equal(out[0], Math.fround(0.1));
  assert.equal(out[2], Math.fround(0.9));
  assert.ok(Math.abs(out[1] - 0.5) < 1e-3, String(out[1]));
});

test('crop scope gives a denser lung field the same histogram as a clear one; film scope keeps it denser', () => {
  const film = eightBitCrop();
  // the same film with its lung rows 0.04 whiter (an opacity), everything else as it was
  const dense = grayImage(
    64,
    64,
    Float32Array.from(film.data, (v, i) => (i >= 16 * 64 && i < 48 * 64 ? v + 0.04 : v)),
  );
  const reference = Array.from({ length: 256 }, (_, k) => (k + 0.5) / 256);
  const mean = (d: Float32Array) => d.reduce((a, b) => a + b, 0) / d.length;
  const sorted = (d: Float32Array) => Array.from(d).sort((a, b) => a - b);
  const byCrop: IntensityMatch = { quantiles: reference, scope: 'crop' };
  const byFilm: IntensityMatch = { quantiles: reference, scope: 'film' };
  const clearCrop = matchCrop(rowsOf(film, 16, 32), film, byCrop).data;
  const denseCrop = matchCrop(rowsOf(dense, 16, 32), dense, byCrop).data;
  assert.ok(Math.abs(mean(denseCrop) - mean(clearCrop)) < 2e-3, `${mean(denseCrop)} vs ${mean(clearCrop)}`);
  assert.deepEqual(
    sorted(denseCrop).filter((_, i) => i % 64 === 0),
    sorted(clearCrop).filter((_, i) => i % 64 === 0),
  );
  const clearByFilm = mean(matchCrop(rowsOf(film, 16, 32), film, byFilm).data);
  const denseByFilm = mean(matchCrop(rowsOf(dense, 16, 32), dense, byFilm).data);
  assert.ok(denseByFilm - clearByFilm > 0.02, `film scope: ${denseByFilm} vs ${clearByFilm}`);
});
