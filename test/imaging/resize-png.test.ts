import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grayImage, toGray, type IndexedImage } from '../../src/imaging/types.js';
import { resizeBilinear, resizeArea, crop } from '../../src/imaging/resize.js';
import { warpAffine, rotateScaleShift, IDENTITY } from '../../src/imaging/affine.js';
import { encodeGrayPng, decodeDisplayImage, toGray8 } from '../../src/imaging/png.js';

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

test('area resize of 9x9 to 2x2 weighs the shared middle pixel half to each side', () => {
  // each output pixel covers 4.5 source pixels per axis: rows/columns 0-3 whole, 4 at half weight
  const src = grayImage(
    9,
    9,
    Float32Array.from({ length: 81 }, (_, i) => i),
  );
  const r = resizeArea(src, 2, 2);
  // output 0 covers source 0..4.5 (pixel 4 at half weight), output 1 covers 4.5..9 (pixel 4 at half)
  const weight = (o: number, k: number): number => (k === 4 ? 0.5 : (o === 0 ? k < 4 : k > 4) ? 1 : 0);
  const expect = (ox: number, oy: number): number => {
    let acc = 0;
    for (let j = 0; j < 9; j++) for (let i = 0; i < 9; i++) acc += weight(oy, j) * weight(ox, i) * (j * 9 + i);
    return acc / (4.5 * 4.5);
  };
  for (const [ox, oy] of [
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
  ])
    assert.ok(Math.abs(r.data[oy * 2 + ox] - expect(ox, oy)) < 1e-5, `${ox},${oy}`);
  // by hand: the column mean of 0..3 and half of 4 is 8/4.5; rows add 9x that
  assert.ok(Math.abs(r.data[0] - (8 / 4.5) * 10) < 1e-5);
});

test('area resize of a region reads in place exactly as crop-then-resize', () => {
  const src = grayImage(
    97,
    83,
    Float32Array.from({ length: 97 * 83 }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5),
  );
  const region = { x0: 11, y0: 7, x1: 90, y1: 71 };
  const inPlace = resizeArea(src, 16, 12, region);
  const copied = resizeArea(crop(src, 11, 7, 90, 71), 16, 12);
  assert.deepEqual(Array.from(inPlace.data), Array.from(copied.data));
  // growing falls back to bilinear over the same region
  assert.deepEqual(Array.from(resizeArea(src, 100, 80, region).data), Array.from(resizeBilinear(crop(src, 11, 7, 90, 71), 100, 80).data));
  assert.throws(() => resizeArea(src, 4, 4, { x0: 0, y0: 0, x1: 98, y1: 10 }), RangeError);
});

test('an indexed image (codes plus their values) resizes to the same floats as its lookup', () => {
  const values = Float32Array.from({ length: 65536 }, (_, c) => (c % 4096) / 4095);
  for (const codes of [Uint16Array.from({ length: 61 * 45 }, (_, i) => (i * 7919) % 65536), Uint8Array.from({ length: 61 * 45 }, (_, i) => (i * 31) % 256)]) {
    const indexed: IndexedImage = { width: 61, height: 45, codes, values };
    const gray = toGray(indexed);
    assert.equal(gray.data[5], values[codes[5]]);
    assert.deepEqual(Array.from(resizeArea(indexed, 13, 9).data), Array.from(resizeArea(gray, 13, 9).data));
    const region = { x0: 3, y0: 2, x1: 50, y1: 40 };
    assert.deepEqual(Array.from(resizeArea(indexed, 7, 7, region).data), Array.from(resizeArea(gray, 7, 7, region).data));
  }
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
  assert.equal(
    turned.data.reduce((a, b) => a + b, 0),
    1,
  );
});

test('samples outside the source take the fill value', () => {
  const shifted = warpAffine(ramp, rotateScaleShift(4, 2, 0, 1, 10, 0), { fill: -1 });
  assert.ok(shifted.data.every((v) => v === -1));
});

test('gray PNG round-trips at round(255*y)', async () => {
  const img = grayImage(3, 1, Float32Array.from([0, 0.5, 1]));
  assert.deepEqual(Array.from(toGray8(img)), [0, 128, 255]);
  const back = await decodeDisplayImage(await encodeGrayPng(img));
  assert.deepEqual(
    Array.from(back.data).map((v) => Math.round(v * 255)),
    [0, 128, 255],
  );
});

test('an unreadable image is a typed E_BAD_IMAGE error', async () => {
  await assert.rejects(decodeDisplayImage(new Uint8Array([1, 2, 3]), 'x.png'), { code: 'E_BAD_IMAGE' });
});
