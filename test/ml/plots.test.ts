import { test } from 'node:test';
import assert from 'node:assert/strict';
import { operatingPoints } from '../../src/ml/metrics.js';
import { precisionRecallPlot, rocPlot } from '../../src/ml/plots.js';
import { bootstrapBand } from '../../src/ml/bootstrap.js';
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

test('with its context a PR plot carries the no-skill line at the prevalence, a bootstrap band, a legend and n, prevalence and version', () => {
  const scores = [0.95, 0.9, 0.85, 0.7, 0.65, 0.6, 0.4, 0.35, 0.3, 0.2, 0.15, 0.1];
  const labels = [1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0];
  const band = bootstrapBand(scores, labels, 'pr', { samples: 100, seed: 3 });
  assert.ok(band.samples > 90);
  band.lo.forEach((lo, i) => assert.ok(lo <= band.hi[i], `band at ${band.x[i]}`));
  const plain = precisionRecallPlot(operatingPoints(scores, labels), 0.7, 0.6);
  const img = precisionRecallPlot(operatingPoints(scores, labels), 0.7, 0.6, { n: 12, prevalence: 5 / 12, version: 'v-test', band });
  // the no-skill line: grey across the plot at precision 5/12 (y = 430 - 390 * 5/12), where the plain plot is background
  const y = Math.round(430 - (430 - 40) * (5 / 12));
  assert.deepEqual(colourAt(img, 300, y), [160, 160, 160]);
  assert.ok(count(img, [205, 222, 245]) > 500, 'band drawn');
  assert.equal(count(plain, [205, 222, 245]), 0);
  // more ink: the legend and the subtitle
  assert.ok(count(img, [0, 0, 0]) > count(plain, [0, 0, 0]) + 300);
});
