import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectedFlagRate, operatingPointOf, PSI_FLOOR, psi } from '../../src/service/drift.js';

test('PSI is 0 for the same distribution, whatever the counts', () => {
  assert.equal(psi([10, 20, 70], [1, 2, 7]), 0);
});

test('PSI sums (actual - expected) * ln(actual / expected) over shares', () => {
  // shares 0.5/0.5 against 0.8/0.2: 0.3*ln(1.6) + (-0.3)*ln(0.4)
  const want = (0.8 - 0.5) * Math.log(0.8 / 0.5) + (0.2 - 0.5) * Math.log(0.2 / 0.5);
  assert.equal(psi([1, 1], [8, 2]), want);
  assert.ok(Math.abs(want - 0.41589) < 1e-5);
});

test('an empty bin counts as the floor share, so PSI stays finite', () => {
  const v = psi([1, 1], [1, 0]);
  const want = (1 - 0.5) * Math.log(1 / 0.5) + (PSI_FLOOR - 0.5) * Math.log(PSI_FLOOR / 0.5);
  assert.equal(v, want);
  assert.ok(Number.isFinite(v));
});

test('PSI refuses histograms of different bins or with nothing in them', () => {
  assert.throws(() => psi([1, 2], [1, 2, 3]), RangeError);
  assert.throws(() => psi([0, 0], [1, 2]), RangeError);
});

test('the expected flag rate is prevalence x sensitivity + (1 - prevalence) x (1 - specificity)', () => {
  assert.equal(expectedFlagRate({ prevalence: 0.5, sensitivity: 1, specificity: 0.5 }), 0.75);
  assert.equal(expectedFlagRate({ prevalence: 0.25, sensitivity: 0.8, specificity: 0.9 }), 0.25 * 0.8 + 0.75 * 0.1);
});

test("a manifest's operating point comes from its threshold and validation confusion; missing parts give none", () => {
  const manifest = {
    threshold: { value: 0.27, validationSensitivity: 0.9, validationSpecificity: 0.4 },
    metrics: { validation: { confusion: { tp: 27, fn: 3, tn: 10, fp: 15 } } },
  };
  assert.deepEqual(operatingPointOf(manifest), { prevalence: 30 / 55, sensitivity: 0.9, specificity: 0.4 });
  assert.equal(operatingPointOf({ threshold: { validationSensitivity: 0.9, validationSpecificity: null } }), null);
  assert.equal(operatingPointOf({}), null);
});
