import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCalibration, calibrationReport, fitCalibration, logit, sigmoid, uncalibrate } from '../../src/ml/probability-calibration.js';
import { mulberry32 } from '../../src/ml/train/rng.js';
import { rocAuc } from '../../src/ml/metrics.js';
import { isCxrError } from '../../src/errors.js';

/** n images whose true pneumonia probability is q; the model says sigmoid(3 logit(q) + 1): overconfident and biased. */
function miscalibrated(n: number, seed: number): { p: number[]; y: number[] } {
  const rand = mulberry32(seed);
  const p: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const q = 0.02 + 0.96 * rand();
    y.push(rand() < q ? 1 : 0);
    p.push(sigmoid(3 * logit(q) + 1));
  }
  return { p, y };
}

test('ECE and reliability bins match a hand count', () => {
  // bin [0.1,0.2): 0.15, 0.15 (one positive) -> gap |0.5 - 0.15| = 0.35, weight 2/4
  // bin [0.9,1.0]: 0.95, 1.0 (both positive) -> gap |1 - 0.975| = 0.025, weight 2/4
  const r = calibrationReport([0.15, 0.15, 0.95, 1], [1, 0, 1, 1]);
  assert.ok(Math.abs(r.ece - (0.5 * 0.35 + 0.5 * 0.025)) < 1e-12, String(r.ece));
  assert.ok(Math.abs(r.mce - 0.35) < 1e-12);
  assert.equal(r.bins.length, 10);
  assert.deepEqual(r.bins[1], { lo: 0.1, hi: 0.2, n: 2, meanPredicted: 0.15, observed: 0.5 });
  assert.equal(r.bins[9].n, 2);
  assert.equal(r.bins[5].meanPredicted, null);
  // perfectly calibrated within each bin
  assert.equal(calibrationReport([0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]).ece, 0);
});

test('Platt scaling fitted on a miscalibrated validation set cuts ECE on fresh images, ranking unchanged', () => {
  const val = miscalibrated(4000, 7);
  const fresh = miscalibrated(4000, 8);
  const cal = fitCalibration(val.p, val.y, 'platt');
  // the truth is logit(q) = (logit(p) - 1) / 3
  assert.ok(Math.abs(cal.a - 1 / 3) < 0.05, `a ${cal.a}`);
  assert.ok(Math.abs(cal.b + 1 / 3) < 0.1, `b ${cal.b}`);
  const before = calibrationReport(fresh.p, fresh.y).ece;
  const calibrated = fresh.p.map((p) => applyCalibration(cal, p));
  const after = calibrationReport(calibrated, fresh.y).ece;
  assert.ok(before > 0.1, `ECE before ${before}`);
  assert.ok(after < 0.03, `ECE after ${after}`);
  assert.equal(rocAuc(calibrated, fresh.y), rocAuc(fresh.p, fresh.y));
});

test('temperature scaling keeps b at 0 and still helps an overconfident model', () => {
  const rand = mulberry32(3);
  const p: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const q = 0.02 + 0.96 * rand();
    y.push(rand() < q ? 1 : 0);
    p.push(sigmoid(2.5 * logit(q)));
  }
  const cal = fitCalibration(p, y, 'temperature');
  assert.equal(cal.b, 0);
  assert.ok(Math.abs(cal.a - 0.4) < 0.06, `a ${cal.a}`);
  assert.ok(
    calibrationReport(
      p.map((v) => applyCalibration(cal, v)),
      y,
    ).ece <
      calibrationReport(p, y).ece / 2,
  );
});

test('a calibration needs both classes, and no calibration leaves the probability alone', () => {
  assert.throws(
    () => fitCalibration([0.2, 0.4], [1, 1]),
    (e: unknown) => isCxrError(e) && e.code === 'E_BAD_DATASET',
  );
  assert.equal(applyCalibration(null, 0.37), 0.37);
  // a model that ranks backwards gets a flat calibration at about the base rate, never a reversed one
  const backwards = fitCalibration([0.9, 0.8, 0.7, 0.2, 0.1, 0.3], [0, 0, 0, 1, 1, 0]);
  assert.ok(backwards.a > 0 && backwards.a <= 1e-3, String(backwards.a));
  // mean of the smoothed targets: (2 x 3/4 + 4 x 1/6) / 6 = 0.361
  assert.ok(Math.abs(applyCalibration(backwards, 0.5) - 0.361) < 0.02, String(applyCalibration(backwards, 0.5)));
  // a perfectly separated set still gives a finite fit (Platt's smoothed targets)
  const sep = fitCalibration([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]);
  assert.ok(Number.isFinite(sep.a) && Number.isFinite(sep.b));
});

test('uncalibrate inverts a calibration: the raw probability each calibrated one stands for', () => {
  const cal = { method: 'platt' as const, a: 1.7, b: -0.3 };
  for (const p of [0.01, 0.2, 0.5, 0.93]) assert.ok(Math.abs(uncalibrate(cal, applyCalibration(cal, p)) - p) < 1e-12, `${p}`);
  assert.equal(uncalibrate(null, 0.42), 0.42);
});
