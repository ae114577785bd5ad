import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gaussianBlurInPlace, boxRadiiForSigma, smoothBlurInPlace } from '../../src/imaging/blur.js';
import { fillPolygons } from '../../src/imaging/polygon-fill.js';
import { maskOutline } from '../../src/imaging/overlay.js';
import { grayImage } from '../../src/imaging/types.js';
import { fillNormal, rngFor, Rng } from '../../src/data/rng.js';

test('polygon fill includes exactly the pixels whose centres are inside', () => {
  // square from (1,1) to (3,3): centres 1.5 and 2.5 are inside, 0.5 and 3.5 are not
  const m = fillPolygons(5, 5, [[1, 1, 3, 1, 3, 3, 1, 3]]);
  const inside = [...m].flatMap((v, i) => (v ? [i] : []));
  assert.deepEqual(inside, [6, 7, 11, 12]);
  // triangle (0,0)-(4,0)-(0,4): inside where x + y < 4; centres exactly on the hypotenuse
  // (x + y = 4) are outside, as the right edge of a span is exclusive
  const t = fillPolygons(4, 4, [[0, 0, 4, 0, 0, 4]], undefined, 255);
  assert.deepEqual(Array.from(t), [255, 255, 255, 0, 255, 255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0]);
});

test('the three-box Gaussian keeps a flat field flat and has about the requested spread', () => {
  const w = 201;
  const d = new Float32Array(w * 101).fill(0.25);
  gaussianBlurInPlace(d, w, 101, 5);
  for (const v of d) assert.ok(Math.abs(v - 0.25) < 1e-6);
  const imp = new Float32Array(w * 101);
  imp[50 * w + 100] = 1;
  gaussianBlurInPlace(imp, w, 101, 5);
  let sum = 0;
  let varx = 0;
  for (let x = 0; x < w; x++) {
    sum += imp[50 * w + x];
    varx += imp[50 * w + x] * (x - 100) ** 2;
  }
  assert.ok(Math.abs(Math.sqrt(varx / sum) - 5) < 0.5, `spread ${Math.sqrt(varx / sum)}`);
  assert.deepEqual(boxRadiiForSigma(0), [0, 0, 0]);
  const flat = new Float32Array(64 * 64).fill(0.5);
  smoothBlurInPlace(flat, 64, 64, 12);
  for (const v of flat) assert.ok(Math.abs(v - 0.5) < 1e-5);
});

test('mask outlines mark inside pixels that touch the outside', () => {
  const m = grayImage(4, 4, Float32Array.from([0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0]));
  assert.deepEqual(Array.from(maskOutline(m)), [0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
  const full = grayImage(3, 3, new Float32Array(9).fill(1));
  assert.deepEqual(Array.from(maskOutline(full)), [1, 1, 1, 1, 0, 1, 1, 1, 1]);
});

test('seeded generators repeat and fast normal deviates have unit spread', () => {
  assert.equal(rngFor([1, 'a']).next(), rngFor([1, 'a']).next());
  assert.notEqual(rngFor([1, 'a']).next(), rngFor([1, 'b']).next());
  const n = new Float32Array(200000);
  fillNormal(new Rng(1, 2, 3, 4), n);
  let s = 0;
  let s2 = 0;
  for (const v of n) {
    s += v;
    s2 += v * v;
  }
  const mean = s / n.length;
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(Math.sqrt(s2 / n.length - mean * mean) - 1) < 0.02);
});
