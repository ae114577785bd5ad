import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitHead, headProbability, solveSpd } from '../../src/ml/train/head.js';
import { mulberry32 } from '../../src/ml/train/rng.js';
import { rocAuc } from '../../src/ml/metrics.js';

test('solveSpd solves a symmetric positive definite system exactly', async () => {
  // [[4,2],[2,3]] x = [2,1] -> x = [0.5, 0]
  const x = solveSpd(Float64Array.from([4, 2, 2, 3]), Float64Array.from([2, 1]), 2);
  assert.ok(Math.abs(x[0] - 0.5) < 1e-12 && Math.abs(x[1]) < 1e-12, String(x));
});

test('the refitted head separates features that carry the label, and sits at the optimum of its objective', async () => {
  const rand = mulberry32(11);
  const d = 6;
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < 400; i++) {
    const y = rand() < 0.5 ? 1 : 0;
    // channel 2 carries the label (shifted and scaled), the others are noise on other scales
    const f = Float32Array.from({ length: d }, (_, c) => (c === 2 ? 5 + 3 * y + rand() : 10 * c * rand()));
    rows.push(f);
    labels.push(y);
  }
  const fit = await fitHead(rows, labels, { l2: 1e-3 });
  const p = rows.map((f) => headProbability(fit, f));
  assert.ok(rocAuc(p, labels)! > 0.95);
  // per unit of spread, the label channel outweighs every noise channel
  for (const c of [1, 3, 4, 5]) assert.ok(Math.abs(fit.weights[2]) > Math.abs(fit.weights[c] * 10 * c), String(fit.weights));
  // at the optimum the bias gradient is zero: mean predicted = mean label
  const meanP = p.reduce((a, b) => a + b, 0) / p.length;
  const meanY = labels.reduce((a, b) => a + b, 0) / labels.length;
  assert.ok(Math.abs(meanP - meanY) < 1e-6, `${meanP} vs ${meanY}`);
});

test('sample weights give a small set its share: up-weighted rows pull the head their way', async () => {
  // two rows with opposite labels at the same feature value: the weights decide the probability
  const rows = [Float32Array.from([1, 0]), Float32Array.from([1, 0]), Float32Array.from([0, 1])];
  const labels = [1, 0, 0];
  const even = await fitHead(rows, labels, { l2: 1e-6 });
  const heavy = await fitHead(rows, labels, { l2: 1e-6, sampleWeights: [3, 1, 1] });
  assert.ok(Math.abs(headProbability(even, rows[0]) - 0.5) < 0.01);
  assert.ok(Math.abs(headProbability(heavy, rows[0]) - 0.75) < 0.01, String(headProbability(heavy, rows[0])));
});

test('a wide head, its Hessian from a float32 ONNX Runtime product, lands on the same optimum as the float64 loops', async () => {
  const rand = mulberry32(5);
  const d = 40;
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < 300; i++) {
    const y = rand() < 0.4 ? 1 : 0;
    // correlated channels on different scales, a few carrying the label: an ill-conditioned Hessian
    const common = rand();
    rows.push(Float32Array.from({ length: d }, (_, c) => (c % 7 === 0 ? y * 0.8 : 0) + common * (c + 1) + rand() * (1 + (c % 5))));
    labels.push(y);
  }
  const weights = rows.map((_, i) => 1 + (i % 3));
  const exact = await fitHead(rows, labels, { l2: 1e-3, sampleWeights: weights });
  const wide = await fitHead(rows, labels, { l2: 1e-3, sampleWeights: weights, loopLimit: 0 });
  for (let c = 0; c < d; c++)
    assert.ok(
      Math.abs(exact.weights[c] - wide.weights[c]) < 1e-6 * (1 + Math.abs(exact.weights[c])),
      `channel ${c}: ${exact.weights[c]} vs ${wide.weights[c]}`,
    );
  assert.ok(Math.abs(exact.bias - wide.bias) < 1e-6 * (1 + Math.abs(exact.bias)));
});
