import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  averagePrecision,
  binaryMetrics,
  calibrateThreshold,
  classificationReport,
  confusionAt,
  dice,
  iou,
  operatingPoints,
  rocAuc,
} from '../../src/ml/metrics.js';

test('AUC counts correctly ordered positive/negative pairs, ties as one half', () => {
  // positives 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) = 3/4
  assert.equal(rocAuc([0.9, 0.5, 0.4, 0.1], [1, 0, 1, 0]), 0.75);
  // a tie between a positive and a negative counts 1/2: (1 + 0.5) / 2
  assert.equal(rocAuc([0.8, 0.5, 0.5], [1, 1, 0]), 0.75);
  assert.equal(rocAuc([0.1, 0.2, 0.9], [0, 0, 1]), 1);
  assert.equal(rocAuc([0.9, 0.8], [0, 1]), 0);
});

test('AUC is null when only one class is present', () => {
  assert.equal(rocAuc([0.2, 0.7], [1, 1]), null);
  assert.equal(rocAuc([], []), null);
});

test('confusion counts a score equal to the threshold as positive', () => {
  assert.deepEqual(confusionAt([0.5, 0.49, 0.7, 0.2], [1, 1, 0, 0], 0.5), { tp: 1, fn: 1, fp: 1, tn: 1 });
});

test('binary metrics from a confusion matrix, undefined ratios as null', () => {
  const m = binaryMetrics({ tp: 6, fp: 2, tn: 8, fn: 4 });
  assert.deepEqual(m, { accuracy: 14 / 20, precision: 6 / 8, recall: 6 / 10, specificity: 8 / 10, f1: 12 / 18 });
  const none = binaryMetrics({ tp: 0, fp: 0, tn: 5, fn: 0 });
  assert.equal(none.precision, null);
  assert.equal(none.recall, null);
  assert.equal(none.f1, null);
  assert.equal(none.specificity, 1);
});

test('calibration picks the highest threshold whose recall reaches the target', () => {
  const scores = [0.95, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3, 0.2];
  const labels = [1, 1, 0, 1, 1, 0, 1, 0, 0, 0];
  // 5 positives at 0.95, 0.9, 0.7, 0.6, 0.5. Target 0.8 needs 4 -> threshold 0.6 (recall 0.8);
  // anything above 0.6 keeps only 3 (recall 0.6).
  const c = calibrateThreshold(scores, labels, 0.8);
  assert.equal(c.threshold, 0.6);
  assert.equal(c.sensitivity, 0.8);
  // at 0.6 the negative at 0.8 is a false positive, the other four are below: specificity 4/5
  assert.equal(c.specificity, 0.8);
  assert.deepEqual(c.confusion, { tp: 4, fp: 1, tn: 4, fn: 1 });
  // target 0.95 needs all five positives -> the lowest positive score
  assert.equal(calibrateThreshold(scores, labels, 0.95).threshold, 0.5);
  assert.equal(calibrateThreshold(scores, labels, 0.2).threshold, 0.95);
});

test('calibration is exact where target * positives is a float like 57.00000000000001', () => {
  // 60 positives scored 1..60 (/100): target 0.95 needs exactly 57 -> the 57th highest, 0.04
  const scores = Array.from({ length: 60 }, (_, i) => (i + 1) / 100);
  const c = calibrateThreshold(scores, new Array(60).fill(1), 0.95);
  assert.equal(c.threshold, 0.04);
  assert.equal(c.sensitivity, 0.95);
});

test('calibration without positives is refused', () => {
  assert.throws(() => calibrateThreshold([0.1, 0.2], [0, 0]), /without positive/);
});

test('operating points run from nothing positive to everything positive', () => {
  const pts = operatingPoints([0.9, 0.5, 0.5, 0.1], [1, 0, 1, 0]);
  assert.deepEqual(
    pts.map((p) => [p.threshold, p.fpr, p.tpr]),
    [
      [Infinity, 0, 0],
      [0.9, 0, 0.5],
      [0.5, 0.5, 1],
      [0.1, 1, 1],
    ],
  );
  assert.deepEqual(
    pts.map((p) => p.precision),
    [null, 1, 2 / 3, 0.5],
  );
});

test('Dice and IoU of binary masks, two empty masks agreeing fully', () => {
  const a = [1, 1, 0, 0];
  const b = [1, 0, 1, 0];
  assert.equal(dice(a, b), 0.5);
  assert.equal(iou(a, b), 1 / 3);
  assert.equal(dice([0.7, 0.2], [1, 0]), 1);
  assert.equal(dice([0, 0], [0, 0]), 1);
  assert.equal(iou([0, 0], [0, 0]), 1);
});

test('classification report carries every key evaluate --json prints', () => {
  const r = classificationReport([0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1], 0.5);
  assert.deepEqual(Object.keys(r).sort(), ['accuracy', 'auc', 'confusion', 'f1', 'n', 'precision', 'recall', 'specificity', 'threshold']);
  assert.equal(r.auc, 0.75);
  assert.deepEqual(r.confusion, { tp: 1, fp: 1, tn: 1, fn: 1 });
});

test('average precision sums recall steps times precision, tied scores as one step', () => {
  // points: t=0.9 (R 0.5, P 1), t=0.5 (R 1, P 2/3), t=0.1 (R 1, P 0.5): 0.5*1 + 0.5*2/3
  assert.equal(averagePrecision([0.9, 0.5, 0.5, 0.1], [1, 0, 1, 0]), 0.5 + 0.5 * (2 / 3));
  assert.equal(averagePrecision([0.1, 0.2], [0, 0]), null);
});
