import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BinaryMask } from '../../src/imaging/components.js';
import {
  convexHull,
  lungPair,
  maskAtSize,
  polygonArea,
  PSEUDO_VIEWS,
  pseudoMaskVerdict,
  unviewOf,
  viewOf,
  type PseudoMaskLimits,
} from '../../src/imaging/pseudo-mask.js';
import { grayImage } from '../../src/imaging/types.js';
import { dice } from '../../src/ml/metrics.js';

const LIMITS: PseudoMaskLimits = { minLungFraction: 0.1, maxLungFraction: 0.5, minLungBalance: 0.4, minViewAgreement: 0.9, minSolidity: 0.8 };

/** A size x size mask with the given rectangles [x0, y0, x1, y1) set. */
function rects(size: number, ...boxes: [number, number, number, number][]): BinaryMask {
  const data = new Uint8Array(size * size);
  for (const [x0, y0, x1, y1] of boxes) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * size + x] = 1;
  return { width: size, height: size, data };
}

test('convexHull drops interior and collinear points and polygonArea measures the hull', () => {
  const hull = convexHull([
    [0, 0],
    [2, 0],
    [4, 0],
    [4, 3],
    [0, 3],
    [2, 1],
  ]);
  assert.deepEqual(hull.map((p) => p.join(',')).sort(), ['0,0', '0,3', '4,0', '4,3']);
  assert.equal(polygonArea(hull), 12);
  // a right triangle
  assert.equal(
    polygonArea([
      [0, 0],
      [4, 0],
      [0, 3],
    ]),
    6,
  );
});

test('lungPair orders components by area with their centroids and solidity', () => {
  // left: a 4x8 block (solid); right: an L of a 2x8 bar and a 4x2 foot
  const m = rects(20, [2, 4, 6, 12], [12, 4, 14, 12], [14, 10, 18, 12]);
  const pair = lungPair(m);
  assert.deepEqual(pair.areas, [32, 24]);
  // pixel centres: the block's mean column 3.5, the L's (16 x 12.5 + 8 x 15.5) / 24 = 13.5
  assert.deepEqual(pair.centroidsX, [4 / 20, 14 / 20]);
  assert.equal(pair.solidities[0], 1);
  // the L's hull: the 6x8 box less the 4x6 triangle above the foot
  const hull = polygonArea([
    [12, 4],
    [14, 4],
    [18, 10],
    [18, 12],
    [12, 12],
  ]);
  assert.equal(hull, 36);
  assert.equal(pair.solidities[1], 24 / 36);
});

test('pseudoMaskVerdict accepts two balanced solid lungs, one each side, inside the frame', () => {
  const v = pseudoMaskVerdict(rects(20, [2, 4, 8, 16], [12, 4, 18, 16]), 0.95, LIMITS);
  assert.deepEqual(v.reasons, []);
  assert.equal(v.accepted, true);
  assert.equal(v.lungFraction, 144 / 400);
  assert.equal(v.balance, 1);
  assert.equal(v.solidity, 1);
});

test('pseudoMaskVerdict names each way a mask fails', () => {
  const reasons = (m: BinaryMask, agreement = 0.95) => pseudoMaskVerdict(m, agreement, LIMITS).reasons;
  assert.deepEqual(reasons(rects(20, [2, 4, 18, 12])), ['not_two_lungs']);
  assert.deepEqual(reasons(rects(20, [1, 2, 5, 18], [6, 2, 9, 18])), ['same_side']);
  assert.deepEqual(reasons(rects(20, [2, 2, 9, 18], [13, 8, 16, 11])), ['lopsided']);
  assert.deepEqual(reasons(rects(20, [2, 4, 8, 16], [12, 4, 14, 16], [14, 13, 19, 16])), ['irregular']);
  assert.deepEqual(reasons(rects(20, [3, 5, 6, 10], [14, 5, 17, 10])), ['lung_area_low']);
  assert.deepEqual(reasons(rects(20, [1, 1, 9, 19], [11, 1, 19, 19])), ['lung_area_high']);
  assert.deepEqual(reasons(rects(20, [0, 4, 8, 16], [12, 4, 18, 16])), ['touches_border']);
  assert.deepEqual(reasons(rects(20, [2, 4, 8, 16], [12, 4, 18, 16]), 0.89), ['unstable']);
  assert.deepEqual(reasons(rects(20, [2, 4, 8, 16], [12, 4, 18, 16]), Number.NaN), ['unstable']);
});

test('the view agreement (ml/metrics dice on 0/1 masks) counts overlap twice over the two areas, and two empty masks agree', () => {
  assert.equal(dice(rects(10, [0, 0, 4, 4]).data, rects(10, [2, 0, 6, 4]).data), (2 * 8) / 32);
  assert.equal(dice(rects(10).data, rects(10).data), 1);
  assert.throws(() => dice(rects(10).data, rects(8).data), RangeError);
});

test('a map seen under a view and brought back lands where it started, away from the edges', () => {
  const size = 64;
  const img = grayImage(size, size);
  for (let y = 20; y < 44; y++) for (let x = 16; x < 40; x++) img.data[y * size + x] = 1;
  for (const view of [
    { angleDeg: 5, scale: 1.05 },
    { angleDeg: -5, scale: 0.95 },
  ]) {
    const back = unviewOf(viewOf(img, view), view);
    let err = 0;
    for (let y = 8; y < 56; y++) for (let x = 8; x < 56; x++) err += Math.abs(back.data[y * size + x] - img.data[y * size + x]);
    // bilinear twice blurs the square's outline only: under 1.5 pixels' worth per edge pixel
    assert.ok(err / (4 * 24) < 1.5, `round-trip error ${err}`);
    assert.equal(back.data[32 * size + 28], 1);
  }
  assert.equal(viewOf(img, { angleDeg: 0, scale: 1 }), img);
});

test('the pseudo-label views are the first three TTA views, identity first', () => {
  assert.deepEqual(PSEUDO_VIEWS, [
    { angleDeg: 0, scale: 1 },
    { angleDeg: 5, scale: 1.05 },
    { angleDeg: -5, scale: 0.95 },
  ]);
});

test('maskAtSize draws a grid mask at a film size with a smooth cut at one half', () => {
  const m = rects(2, [0, 0, 1, 2]);
  const up = maskAtSize(m, 4, 4);
  assert.deepEqual(Array.from(up.data), [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]);
});
