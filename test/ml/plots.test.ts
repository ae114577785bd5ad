import { test } from 'node:test';
import assert from 'node:assert/strict';
import { operatingPoints } from '../../src/ml/metrics.js';
import { precisionRecallPlot, rocPlot } from '../../src/ml/plots.js';
import { decodeDisplayImage, encodeRgbPng } from '../../src/imaging/png.js';

function colourAt(img: { width: number; data: Uint8Array }, x: number, y: number): [number, number, number] {
  const o = (y * img.width + x) * 3;
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
}

function count(img: { data: Uint8Array }, rgb: [number, number, number]): number {
  let n = 0;
  for (let i = 0; i < img.data.length; i += 3) if (img.data[i] === rgb[0] && img.data[i + 1] === rgb[1] && img.data[i + 2] === rgb[2]) n++;
  return n;
}

const CURVE: [number, number, number] = [31, 90, 200];
const MARK: [number, number, number] = [215, 40, 40];

test('a perfect classifier ROC runs up the left axis to the top-left corner', () => {
  const pts = operatingPoints([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]);
  const img = rocPlot(pts, 1, 0.8);
  assert.equal(img.width, 480);
  assert.equal(img.height, 480);
  // plot area: x from 56 (FPR 0) to 460 (FPR 1), y from 430 (TPR 0) up to 40 (TPR 1)
  assert.deepEqual(colourAt(img, 56 + 1, 235), CURVE);
  assert.deepEqual(colourAt(img, 258, 40), CURVE);
  // the threshold 0.8 operating point (FPR 0, TPR 1) is marked
  assert.deepEqual(colourAt(img, 56, 40), MARK);
  // nothing is drawn along the lower right (a perfect curve never goes there)
  assert.deepEqual(colourAt(img, 400, 400), [255, 255, 255]);
});

test('the PR plot encodes as an RGB PNG of its size with curve and marker drawn', async () => {
  const pts = operatingPoints([0.9, 0.6, 0.5, 0.3, 0.1], [1, 0, 1, 1, 0]);
  const img = precisionRecallPlot(pts, 0.8, 0.5);
  assert.ok(count(img, CURVE) > 100);
  assert.ok(count(img, MARK) > 20);
  const png = await encodeRgbPng(img.data, img.width, img.height);
  const back = await decodeDisplayImage(png);
  assert.equal(back.width, 480);
  assert.equal(back.height, 480);
});
