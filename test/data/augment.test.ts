import { test } from 'node:test';
import assert from 'node:assert/strict';
import { augmentPair, jpegLike, sampleAugment, NO_AUGMENT } from '../../src/data/augment.js';
import { rngFor } from '../../src/data/rng.js';
import { grayImage, type GrayImage } from '../../src/imaging/types.js';

/** An irregular binary shape (two blobs) on a 64x48 grid. */
function shape(): GrayImage {
  const w = 64;
  const h = 48;
  const d = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const a = ((x - 18) / 10) ** 2 + ((y - 22) / 15) ** 2 < 1;
      const b = ((x - 44) / 8) ** 2 + ((y - 26) / 12) ** 2 < 1;
      d[y * w + x] = a || b ? 1 : 0;
    }
  return grayImage(w, h, d);
}

test('augmenting an image that is its own mask leaves them aligned', () => {
  const m = shape();
  for (let k = 0; k < 20; k++) {
    const p = { ...sampleAugment(rngFor(['aug', k]), { flipProbability: 0.5 }), brightness: 0, contrast: 1, gamma: 1, noiseStd: 0, blurSigma: 0, blockMix: 0 };
    const out = augmentPair(m, m, p);
    let moved = 0;
    for (let i = 0; i < m.data.length; i++) {
      assert.equal(out.image.data[i] >= 0.5 ? 1 : 0, out.mask!.data[i], `pixel ${i} of draw ${k}`);
      if (out.mask!.data[i] !== m.data[i]) moved++;
    }
    assert.ok(moved > 0, 'the geometry changed something');
  }
});

test('photometric changes touch the image only and stay in [0,1]', () => {
  const m = shape();
  const img = grayImage(
    m.width,
    m.height,
    m.data.map((v) => 0.2 + 0.6 * v),
  );
  const p = { ...NO_AUGMENT, brightness: 0.1, contrast: 1.5, gamma: 0.8, noiseStd: 0.05, noiseSeed: 3 };
  const out = augmentPair(img, m, p);
  assert.deepEqual(Array.from(out.mask!.data), Array.from(m.data));
  for (const v of out.image.data) assert.ok(v >= 0 && v <= 1);
  // without noise the mapping is exact: ((x^gamma - 0.5) * contrast + 0.5 + brightness)
  const exact = augmentPair(img, null, { ...p, noiseStd: 0 });
  const x = 0.2;
  assert.ok(Math.abs(exact.image.data[0] - ((x ** 0.8 - 0.5) * 1.5 + 0.6)) < 1e-6);
  assert.equal(exact.mask, null);
});

test('no augmentation returns the same pixels, and a flip mirrors columns', () => {
  const m = shape();
  assert.deepEqual(Array.from(augmentPair(m, null, NO_AUGMENT).image.data), Array.from(m.data));
  const flipped = augmentPair(m, m, { ...NO_AUGMENT, flip: true });
  for (let y = 0; y < m.height; y++)
    for (let x = 0; x < m.width; x++) assert.equal(flipped.mask!.data[y * m.width + x], m.data[y * m.width + (m.width - 1 - x)]);
});

test('parameter draws are deterministic for a seed, and flips are off by default', () => {
  assert.deepEqual(sampleAugment(rngFor(['s', 1])), sampleAugment(rngFor(['s', 1])));
  assert.notDeepEqual(sampleAugment(rngFor(['s', 1])), sampleAugment(rngFor(['s', 2])));
  for (let k = 0; k < 200; k++) {
    const p = sampleAugment(rngFor(['f', k]));
    assert.equal(p.flip, false);
    assert.ok(Math.abs(p.angleDeg) <= 8 && p.scale >= 0.9 && p.scale <= 1.1);
  }
  let u = 0;
  const fromFunction = sampleAugment(() => ((u = (u + 0.37) % 1), u));
  assert.ok(Number.isFinite(fromFunction.angleDeg));
});

test('a crop stretches its box over the whole image: on a ramp each output pixel reads its exact input position', () => {
  // v(x, y) = x on 16x16; the left half (cropW 0.5), full height
  const ramp = grayImage(
    16,
    16,
    Float32Array.from({ length: 256 }, (_, k) => (k % 16) / 16),
  );
  const p = { ...NO_AUGMENT, cropX: 0, cropY: 0, cropW: 0.5, cropH: 1 };
  const out = augmentPair(ramp, null, p).image;
  // output x reads input x_in = (x + 0.5) * 0.5 - 0.5; bilinear on a ramp is exact (x_in >= 0)
  for (const x of [1, 5, 9, 15]) {
    const xin = (x + 0.5) * 0.5 - 0.5;
    assert.ok(Math.abs(out.data[3 * 16 + x] - xin / 16) < 1e-6, `x ${x}: ${out.data[3 * 16 + x]} vs ${xin / 16}`);
  }
  // a crop offset moves the box: cropX 0.5 reads the right half
  const right = augmentPair(ramp, null, { ...p, cropX: 0.5 }).image;
  assert.ok(Math.abs(right.data[7] - (8 + (7 + 0.5) * 0.5 - 0.5) / 16) < 1e-6);
});

test('the JPEG-like step pulls pixels towards their 8x8 block mean by exactly blockMix', () => {
  // block (0,0) of a 16x8 image holds 0..63 / 64; its mean is 31.5 / 64
  const d = Float32Array.from({ length: 128 }, (_, k) => (k % 16 < 8 ? Math.floor(k / 16) * 8 + (k % 16) : 0) / 64);
  jpegLike(d, 16, 8, { blurSigma: 0, blockMix: 0.25 });
  assert.ok(Math.abs(d[0] - 0.75 * 0 - 0.25 * (31.5 / 64)) < 1e-6);
  assert.ok(Math.abs(d[7 * 16 + 7] - (0.75 * 63 + 0.25 * 31.5) / 64) < 1e-6);
  assert.equal(d[8], 0); // the right block is all zero and stays so
  // blur alone keeps the mean of a constant image and smooths a step
  const step = Float32Array.from({ length: 256 }, (_, k) => (k % 16 < 8 ? 0 : 1));
  jpegLike(step, 16, 16, { blurSigma: 1, blockMix: 0 });
  assert.ok(step[8 * 16 + 7] > 0 && step[8 * 16 + 7] < 0.5 && step[8 * 16 + 8] > 0.5 && step[8 * 16 + 8] < 1);
});

test('new augmentation draws come after the old ones: a seed keeps its rotation, zoom, photometry and noise seed', () => {
  const p = sampleAugment(rngFor(['s', 1]));
  const old = sampleAugment(rngFor(['s', 1]), { minCrop: 1, maxBlurSigma: 0, maxBlockMix: 0 });
  for (const k of ['angleDeg', 'scale', 'shiftX', 'shiftY', 'brightness', 'contrast', 'gamma', 'noiseStd', 'noiseSeed'] as const) assert.equal(p[k], old[k]);
  assert.ok(p.cropW >= 0.85 && p.cropW <= 1 && p.cropX >= 0 && p.cropX + p.cropW <= 1 + 1e-12);
  assert.equal(old.cropW, 1);
  assert.equal(old.blurSigma, 0);
});
