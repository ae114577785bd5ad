import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACQUISITION_SHIFTS, applyShift, parseShifts, shiftNames, type AcquisitionShift } from '../../src/data/acquisition-shifts.js';
import { augmentPair, NO_AUGMENT } from '../../src/data/augment.js';
import { isCxrError } from '../../src/errors.js';
import { grayImage, type GrayImage } from '../../src/imaging/types.js';

const named = (name: string): AcquisitionShift => parseShifts(name)[0];
const row = (values: number[]): GrayImage => grayImage(values.length, 1, Float32Array.from(values));
/** The photometric step of augmentation on one value, stored as float32 as the image is. */
const photo = (x: number, gamma: number, contrast: number, brightness: number) =>
  Math.fround(Math.min(1, Math.max(0, (x ** gamma - 0.5) * contrast + 0.5 + brightness)));

test('the look-up-curve, contrast and brightness shifts map each pixel as the augmentation formula says, clipped to [0, 1]', () => {
  const img = row([0, 0.25, 0.5, 1]);
  const cases: [string, number, number, number][] = [
    ['gamma-0.7', 0.7, 1, 0],
    ['gamma-1.4', 1.4, 1, 0],
    ['contrast-0.75', 1, 0.75, 0],
    ['contrast-1.3', 1, 1.3, 0],
    ['brighter-0.08', 1, 1, 0.08],
    ['darker-0.08', 1, 1, -0.08],
  ];
  for (const [name, g, c, b] of cases)
    assert.deepEqual(
      Array.from(applyShift(img, named(name)).data),
      [0, 0.25, 0.5, 1].map((x) => photo(x, g, c, b)),
      name,
    );
  assert.deepEqual(Array.from(applyShift(img, named('contrast-0.75')).data), [0.125, 0.3125, 0.5, 0.875]);
  assert.deepEqual(Array.from(applyShift(img, named('brighter-0.08')).data), [0.08, 0.33, 0.58, 1].map(Math.fround));
});

test('a shift returns a new image of the same size and leaves the film it was given untouched', () => {
  // 256 wide: blur-3 is then sigma 0.75 px, which the three box passes can express
  const values = Array.from({ length: 256 * 48 }, (_, i) => (i % 7) / 7);
  const img = grayImage(256, 48, Float32Array.from(values));
  for (const s of ACQUISITION_SHIFTS) {
    const out = applyShift(img, s);
    assert.equal(out.width, 256, s.name);
    assert.equal(out.height, 48, s.name);
    assert.notEqual(out.data, img.data, s.name);
    assert.ok(
      out.data.some((v, i) => v !== img.data[i]),
      `${s.name} changed nothing`,
    );
  }
  assert.deepEqual(Array.from(img.data), values.map(Math.fround));
});

test('blur is scaled to the film width: sigma 3 px per 1,024, so 1.5 px on a 512-pixel film', () => {
  const img = grayImage(
    512,
    8,
    Float32Array.from({ length: 512 * 8 }, (_, i) => (i % 512 < 256 ? 0 : 1)),
  );
  const expected = augmentPair(img, null, { ...NO_AUGMENT, blurSigma: 1.5 }).image;
  assert.deepEqual(applyShift(img, named('blur-3')).data, expected.data);
});

test('the low-resolution export averages each 4x4 block: alternating columns become flat grey', () => {
  const img = grayImage(
    16,
    16,
    Float32Array.from({ length: 256 }, (_, i) => i % 2),
  );
  assert.deepEqual(Array.from(applyShift(img, named('downsample-4')).data), new Array(256).fill(0.5));
});

test('the noise shift is the same noise every time (a fixed seed), so two runs compare like with like', () => {
  const img = grayImage(32, 32, new Float32Array(1024).fill(0.5));
  assert.deepEqual(applyShift(img, named('noise-0.03')).data, applyShift(img, named('noise-0.03')).data);
});

test('parseShifts takes all, or named shifts in the order given, and refuses unknown or repeated names with E_BAD_ARGUMENT', () => {
  assert.deepEqual(
    parseShifts('all').map((s) => s.name),
    shiftNames(),
  );
  assert.deepEqual(
    parseShifts(' rotate-10, gamma-0.7 ').map((s) => s.name),
    ['rotate-10', 'gamma-0.7'],
  );
  for (const bad of ['', 'gamma-0.5', 'blur-3,blur-3', 'all,blur-3'])
    assert.throws(
      () => parseShifts(bad),
      (e: unknown) => isCxrError(e) && e.code === 'E_BAD_ARGUMENT',
      bad,
    );
});
