import { test } from 'node:test';
import assert from 'node:assert/strict';
import { driftReference, histogram } from '../../src/ml/drift-reference.js';
import { driftFeatures, expectedFlagRate, expectedPositiveRate, operatingPointOf, PSI_FLOOR, psi } from '../../src/service/drift.js';

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

test('validation histograms put each value in its equal-width bin, the top value and beyond in the last', () => {
  assert.deepEqual(histogram([0, 0.05, 0.1, 0.55, 0.99, 1], 0, 1), [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]);
  assert.deepEqual(histogram([-0.1, 0.06, 0.3, 0.6, 0.9], 0, 0.6), [1, 1, 0, 0, 0, 1, 0, 0, 0, 2]);
});

test('a drift reference keeps the lung-area histogram only when every image reported its area', () => {
  const full = driftReference('validation', [0.1, 0.9], [0.3, 0.31]);
  assert.deepEqual(full, {
    subset: 'validation',
    n: 2,
    probabilityHistogram: [0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
    lungAreaHistogram: [0, 0, 0, 0, 0, 2, 0, 0, 0, 0],
  });
  assert.equal(driftReference('validation', [0.1, 0.9], [0.3, undefined]).lungAreaHistogram, undefined);
});

test('drift features: positive rate always, probability and lung area against the manifest histograms', () => {
  const manifest = {
    threshold: { validationSensitivity: 1, validationSpecificity: 0.5 },
    metrics: { validation: { confusion: { tp: 5, fn: 0, tn: 5, fp: 5 } } },
    drift: { probabilityHistogram: [1, 1, 0, 0, 0, 0, 0, 0, 0, 0], lungAreaHistogram: [0, 0, 0, 0, 1, 1, 0, 0, 0, 0] },
  };
  // validation: prevalence 1/3, so 1/3 x 1 + 2/3 x 0.5 = 2/3 positive
  const recent = {
    recent: 10,
    recentPositive: 8,
    recentHistogram: [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    recentLungHistogram: [0, 0, 0, 0, 8, 2, 0, 0, 0, 0],
  };
  const got = driftFeatures(recent, manifest);
  assert.deepEqual(
    got.map((d) => d.feature),
    ['positive_rate', 'probability', 'lung_area'],
  );
  const e = expectedFlagRate({ prevalence: 1 / 3, sensitivity: 1, specificity: 0.5 });
  assert.ok(Math.abs(e - 2 / 3) < 1e-12);
  assert.equal(got[0].psi, psi([e, 1 - e], [8, 2]));
  assert.equal(got[1].psi, 0, 'the same probability distribution');
  assert.equal(got[2].psi, psi([1, 1], [8, 2]));
  assert.deepEqual(driftFeatures({ ...recent, recent: 0 }, manifest), [], 'nothing recent, nothing to compare');
  assert.deepEqual(
    driftFeatures(recent, { drift: { probabilityHistogram: [1, 2] } }).map((d) => d.feature),
    [],
    'no operating point, and a histogram of other bins is ignored',
  );
});

test("a site's prevalence replaces validation's in the operating point, the expected rate and the positive-rate PSI", () => {
  const manifest = {
    threshold: { validationSensitivity: 0.95, validationSpecificity: 0.8 },
    // a pooled validation split that is 70% pneumonia
    metrics: { validation: { confusion: { tp: 665, fn: 35, tn: 240, fp: 60 } } },
  };
  assert.deepEqual(operatingPointOf(manifest, 0.1), { prevalence: 0.1, sensitivity: 0.95, specificity: 0.8 });
  // a site with 10% pneumonia, where the model works exactly as validated: 0.1 x 0.95 + 0.9 x 0.2 = 0.275 positive
  const e = expectedFlagRate({ prevalence: 0.1, sensitivity: 0.95, specificity: 0.8 });
  assert.ok(Math.abs(e - 0.275) < 1e-12);
  const recent = { recent: 400, recentPositive: 110, recentHistogram: new Array(10).fill(0), recentLungHistogram: new Array(10).fill(0) };
  const atSite = driftFeatures(recent, manifest, 0.1);
  assert.equal(atSite[0].feature, 'positive_rate');
  assert.ok(Math.abs(atSite[0].psi) < 1e-12, 'no drift at the prevalence the site declared');
  // against validation's 70% the same studies look like a major shift (0.7 x 0.95 + 0.3 x 0.2 = 0.725 expected)
  const atValidation = driftFeatures(recent, manifest);
  const ev = expectedFlagRate({ prevalence: 0.7, sensitivity: 0.95, specificity: 0.8 });
  assert.ok(Math.abs(ev - 0.725) < 1e-12);
  assert.equal(atValidation[0].psi, psi([ev, 1 - ev], [110, 290]));
  assert.ok(atValidation[0].psi > 0.25);
});

test('each group of studies counts at the operating point that decided it: int8 or float, a population threshold or the version one', () => {
  const manifest = {
    threshold: { validationSensitivity: 0.95, validationSpecificity: 0.86, calibratedOn: { n: 100, positives: 70 } },
    quantization: {
      served: true,
      threshold: {
        validationSensitivity: 0.95,
        validationSpecificity: 0.88,
        calibratedOn: { n: 100, positives: 70 },
        populations: {
          adult: { validationSensitivity: 0.96, validationSpecificity: 0.36, n: 50, positives: 25 },
          pediatric: { validationSensitivity: 0.95, validationSpecificity: 0.93, n: 400, positives: 300 },
        },
      },
    },
  };
  assert.deepEqual(operatingPointOf(manifest), { prevalence: 0.7, sensitivity: 0.95, specificity: 0.88 }, 'int8 is served: its version rule');
  assert.deepEqual(
    operatingPointOf(manifest, null, { precision: null, thresholdOf: null }, 'float'),
    { prevalence: 0.7, sensitivity: 0.95, specificity: 0.86 },
    'predictions that do not record their precision, under the float registry row: the float rule',
  );
  assert.equal(
    expectedPositiveRate(manifest, [], null, 'float'),
    expectedFlagRate({ prevalence: 0.7, sensitivity: 0.95, specificity: 0.86 }),
    'nothing recent, float row: the float rule',
  );
  assert.deepEqual(operatingPointOf(manifest, null, { precision: 'float', thresholdOf: 'version' }), {
    prevalence: 0.7,
    sensitivity: 0.95,
    specificity: 0.86,
  });
  assert.deepEqual(operatingPointOf(manifest, null, { precision: 'int8', thresholdOf: 'adult' }), { prevalence: 0.5, sensitivity: 0.96, specificity: 0.36 });
  assert.deepEqual(operatingPointOf(manifest, 0.1, { precision: 'int8', thresholdOf: 'adult' }), { prevalence: 0.1, sensitivity: 0.96, specificity: 0.36 });
  assert.deepEqual(
    operatingPointOf(manifest, null, { precision: 'float', thresholdOf: 'adult' }),
    { prevalence: 0.7, sensitivity: 0.95, specificity: 0.86 },
    'a float rule without populations falls back to its version rule',
  );

  const adult = expectedFlagRate({ prevalence: 0.1, sensitivity: 0.96, specificity: 0.36 });
  const pediatric = expectedFlagRate({ prevalence: 0.1, sensitivity: 0.95, specificity: 0.93 });
  const groups = [
    { precision: 'int8', thresholdOf: 'adult', n: 30 },
    { precision: 'int8', thresholdOf: 'pediatric', n: 10 },
    { precision: 'int8', thresholdOf: 'other', n: 0 },
  ];
  assert.equal(expectedPositiveRate(manifest, groups, 0.1), (30 * adult + 10 * pediatric) / 40);
  assert.equal(
    expectedPositiveRate(manifest, [], 0.1),
    expectedFlagRate({ prevalence: 0.1, sensitivity: 0.95, specificity: 0.88 }),
    'nothing recent: the default rule',
  );
  assert.equal(expectedPositiveRate({}, groups), null);
  // the positive-rate PSI is taken against the same mixed rate
  const recent = { recent: 40, recentPositive: 20, recentHistogram: new Array(10).fill(0), recentLungHistogram: new Array(10).fill(0), recentGroups: groups };
  const e = (30 * adult + 10 * pediatric) / 40;
  assert.equal(driftFeatures(recent, manifest, 0.1)[0].psi, psi([e, 1 - e], [20, 20]));
});
