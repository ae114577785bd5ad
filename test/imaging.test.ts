import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grayImage } from '../src/imaging/types.js';
import { resizeBilinear, resizeArea, crop } from '../src/imaging/resize.js';
import { warpAffine, rotateScaleShift, IDENTITY } from '../src/imaging/affine.js';
import { encodeGrayPng, decodeDisplayImage, toGray8 } from '../src/imaging/png.js';

const ramp = grayImage(4, 2, Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]));

test('bilinear resize uses half-pixel centres like PyTorch align_corners=false', () => {
  // 4x2 -> 2x1: output centres fall at source (0.5+2*0)... x=0.5,2.5 ; y=0.5
  const r = resizeBilinear(ramp, 2, 1);
  assert.deepEqual(Array.from(r.data), [2.5, 4.5]);
  // upsampling 2 -> 4 along x clamps at the edges: 0, 0.25, 0.75, 1
  const up = resizeBilinear(grayImage(2, 1, Float32Array.from([0, 1])), 4, 1);
  assert.deepEqual(Array.from(up.data), [0, 0.25, 0.75, 1]);
});

test('area resize averages the covered source pixels', () => {
  const r = resizeArea(ramp, 2, 1);
  assert.deepEqual(Array.from(r.data), [(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4]);
  const third = resizeArea(grayImage(3, 1, Float32Array.from([3, 6, 9])), 2, 1);
  // each output covers 1.5 source pixels: (3 + 0.5*6)/1.5 and (0.5*6 + 9)/1.5
  assert.ok(Math.abs(third.data[0] - 4) < 1e-6 && Math.abs(third.data[1] - 8) < 1e-6);
});

test('crop copies the clamped rectangle', () => {
  const c = crop(ramp, 1, 0, 3, 2);
  assert.deepEqual([c.width, c.height, ...c.data], [2, 2, 1, 2, 5, 6]);
  const clamped = crop(ramp, -5, 1, 2, 9);
  assert.deepEqual([clamped.width, clamped.height, ...clamped.data], [2, 1, 4, 5]);
});

test('identity warp returns the image and a 90 degree turn moves corners', () => {
  const id = warpAffine(ramp, IDENTITY);
  assert.deepEqual(Array.from(id.data), Array.from(ramp.data));
  const sq = grayImage(3, 3, Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0]));
  const turned = warpAffine(sq, rotateScaleShift(3, 3, 90, 1), { interpolation: 'nearest' });
  // counter-clockwise on screen: top-left goes to bottom-left
  assert.equal(turned.data[6], 1);
  assert.equal(turned.data.reduce((a, b) => a + b, 0), 1);
});

test('samples outside the source take the fill value', () => {
  const shifted = warpAffine(ramp, rotateScaleShift(4, 2, 0, 1, 10, 0), { fill: -1 });
  assert.ok(shifted.data.every((v) => v === -1));
});

test('gray PNG round-trips at round(255*y)', async () => {
  const img = grayImage(3, 1, Float32Array.from([0, 0.5, 1]));
  assert.deepEqual(Array.from(toGray8(img)), [0, 128, 255]);
  const back = await decodeDisplayImage(await encodeGrayPng(img));
  assert.deepEqual(Array.from(back.data).map((v) => Math.round(v * 255)), [0, 128, 255]);
});

test('an unreadable image is a typed E_BAD_IMAGE error', async () => {
  await assert.rejects(decodeDisplayImage(new Uint8Array([1, 2, 3]), 'x.png'), { code: 'E_BAD_IMAGE' });
});
