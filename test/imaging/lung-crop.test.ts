import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lungBox, lungCrop } from '../../src/imaging/lung-crop.js';
import { grayImage } from '../../src/imaging/types.js';

function mask(w: number, h: number, x0: number, y0: number, x1: number, y1: number): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * w + x] = 1;
  return { width: w, height: h, data };
}

test('lungBox is the mask bounding box grown by the margin and scaled to the image', () => {
  const m = mask(10, 10, 2, 3, 8, 7); // x 2..7, y 3..6 inclusive: 6 x 4 pixels
  assert.deepEqual(lungBox(m, 10, 10, 0), { x0: 2, y0: 3, x1: 8, y1: 7 });
  // margin 0.5: 3 px left/right, 2 px top/bottom, clamped to the image
  assert.deepEqual(lungBox(m, 10, 10, 0.5), { x0: 0, y0: 1, x1: 10, y1: 9 });
  // a 10x10 mask on a 100x50 image: x scaled by 10, y by 5
  assert.deepEqual(lungBox(m, 100, 50, 0), { x0: 20, y0: 15, x1: 80, y1: 35 });
  // margin 0.1 on 6 x 4: 0.6 and 0.4 mask pixels, rounded outwards after scaling
  assert.deepEqual(lungBox(m, 100, 50, 0.1), { x0: 14, y0: 13, x1: 86, y1: 37 });
  assert.equal(lungBox(mask(4, 4, 0, 0, 0, 0), 4, 4), null);
  // 0/255 masks and probabilities count from 0.5 up
  const probs = { width: 3, height: 1, data: Float32Array.from([0.2, 0.7, 0.4]) };
  assert.deepEqual(lungBox(probs, 3, 1, 0), { x0: 1, y0: 0, x1: 2, y1: 1 });
});

test('lungCrop cuts the box and resizes it; no box means the whole image', () => {
  const img = grayImage(
    4,
    4,
    Float32Array.from({ length: 16 }, (_, i) => i),
  );
  const c = lungCrop(img, { x0: 1, y0: 1, x1: 3, y1: 3 }, 2);
  assert.deepEqual(Array.from(c.data), [5, 6, 9, 10]);
  const whole = lungCrop(img, null, 2);
  assert.deepEqual(Array.from(whole.data), [(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4, (8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]);
});
