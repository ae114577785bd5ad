/**
 * A population's own head: its probability is the views' mean sigmoid as the graph's head
 * gives it, a blend is the same blend of weights and bias, and fitting one chooses the blend
 * with the best specificity at the target recall on out-of-fold train films and validation
 * films, with the threshold and calibration picked on those same films as the engine scores them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CxrError } from '../../src/errors.js';
import { float32ToBase64 } from '../../src/ml/float32-base64.js';
import { blendLinearHeads, loadPopulationHead, populationHeadProbability, populationHeads } from '../../src/ml/population-head.js';
import { applyCalibration } from '../../src/ml/probability-calibration.js';
import { calibrateThreshold } from '../../src/ml/metrics.js';
import type { FeatureRow } from '../../src/ml/train/feature-cache.js';
import { fitHeadOnRows } from '../../src/ml/train/head-rows.js';
import { fitPopulationHead } from '../../src/ml/train/population-head-fit.js';
import { populationProbability, populationRawProbability } from '../../src/inference/population.js';

test("a head's probability is the mean over the views of each view's sigmoid", () => {
  const head = { weights: Float32Array.from([1, -1]), bias: 0 };
  // logits 0 and 2
  assert.equal(populationHeadProbability(head, [Float32Array.from([0, 0]), Float32Array.from([3, 1])]), (0.5 + 1 / (1 + Math.exp(-2))) / 2);
  assert.throws(
    () => populationHeadProbability(head, [Float32Array.from([1, 2, 3])]),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID',
  );
  assert.throws(
    () => populationHeadProbability(head, []),
    (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT',
  );
});

test('a blend mixes weights and bias by the same share, so each view gets the same blend of the two logits', () => {
  const b = blendLinearHeads({ weights: [4, 0], bias: 2 }, { weights: [0, 8], bias: -2 }, 0.25);
  assert.deepEqual([Array.from(b.weights), b.bias], [[3, 2], 1]);
  assert.throws(() => blendLinearHeads({ weights: [1], bias: 0 }, { weights: [1, 2], bias: 0 }, 0.5), /differ in width/);
  assert.throws(() => blendLinearHeads({ weights: [1], bias: 0 }, { weights: [1], bias: 0 }, 1.5), /\[0,1\]/);
});

test('only populations that carry a head are loaded, and a head whose weights disagree with its width is E_MODEL_INVALID', () => {
  const info = (w: number[], inputs = w.length) => ({
    inputs,
    weights: float32ToBase64(Float32Array.from(w)),
    bias: 0.5,
    featurePrecision: 'float',
    blend: { own: 1, joint: 0 },
    fittedOn: { subset: 'train' as const, n: 1, views: 1, l2: { own: 1, joint: 1 }, jointSets: {}, sets: ['a'], at: '' },
    chosenOn: { folds: 2, deals: 1, seed: 0, n: 1, positives: 1, tried: [] },
  });
  const base = { value: 0.5, validationSensitivity: 1, validationSpecificity: 0, n: 1, positives: 1, datasets: ['a'] };
  const loaded = populationHeads({ populations: { adult: { ...base, head: info([1, 2]) }, pediatric: base } }, 'v');
  assert.deepEqual(
    loaded.map(([k, h]) => [k, Array.from(h.weights), h.bias]),
    [['adult', [1, 2], 0.5]],
  );
  assert.throws(() => loadPopulationHead(info([1, 2], 3), 'v: the adult head'), /v: the adult head: 2 weights for 3 inputs/);
});

test("a study of a population with a head is decided on the head's raw mean through that population's calibration; without one, as before", () => {
  const cal = { method: 'platt' as const, a: 2, b: 0 };
  const scored = { probability: 0.4, rawProbability: 0.3, populationRaw: { adult: 0.6 } };
  assert.equal(populationRawProbability(scored, 'adult'), 0.6);
  assert.equal(populationRawProbability(scored, 'pediatric'), 0.3);
  assert.equal(populationProbability(cal, scored, 'adult'), applyCalibration(cal, 0.6));
  assert.equal(populationProbability(cal, scored, 'pediatric'), applyCalibration(cal, 0.3));
  assert.equal(populationProbability(null, scored, 'version'), 0.4);
});

/** Seeded films: adults' pneumonia shows in channel 0, children's in channel 1; two views each. */
function films(): FeatureRow[] {
  let s = 12345;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const rows: FeatureRow[] = [];
  for (const [source, n, channel] of [
    ['adults', 60, 0],
    ['children', 120, 1],
  ] as const) {
    for (let i = 0; i < n; i++) {
      const label = i % 2;
      const split = i % 5 === 4 ? 'validation' : 'train';
      const views = [0, 1].map(() => {
        const f = Float32Array.from([rand() - 0.5, rand() - 0.5, rand() - 0.5]);
        f[channel] += label ? 0.35 : -0.35;
        return f;
      });
      rows.push({ id: `${source}/${i}`, label, source, split, views });
    }
  }
  return rows;
}

test("fitting a population's head: every blend is scored on its out-of-fold train and validation films, the best specificity wins, and the threshold holds the recall on those films as the engine scores them", async () => {
  const rows = films();
  const opts = {
    population: 'adult' as const,
    sets: new Map([
      ['adults', 'adult' as const],
      ['children', 'pediatric' as const],
    ]),
    jointWeights: { adults: 1, children: 3 },
    l2: { joint: 0.01, own: 0.01 },
    trainViews: 2,
    folds: 3,
    deals: 2,
    seed: 7,
    targetRecall: 0.9,
    // two films per patient
    patientOf: new Map(rows.map((r) => [r.id, `${r.source}:${Math.floor(Number(r.id.split('/')[1]) / 2)}`])),
    featurePrecision: 'float',
  };
  const fit = await fitPopulationHead(rows, { ...opts, blends: [0, 0.5, 1] });
  const adults = rows.filter((r) => r.source === 'adults');
  assert.equal(fit.threshold.n, adults.length);
  assert.equal(fit.threshold.positives, adults.filter((r) => r.label === 1).length);
  assert.deepEqual(
    fit.tried.map((t) => t.own),
    [0, 0.5, 1],
  );
  const best = Math.max(...fit.tried.map((t) => t.specificity ?? -1));
  assert.equal(fit.chosen.specificity, best);
  const head = fit.threshold.head!;
  assert.deepEqual(head.blend, { own: fit.chosen.own, joint: 1 - fit.chosen.own });
  assert.deepEqual(fit.threshold.datasets, ['adults']);
  // the threshold keeps the target recall on the films it was picked on, after the calibration
  const cal = fit.threshold.calibration!;
  const calibrated = fit.chosenOn.raw.map((p) => applyCalibration(cal, p));
  const again = calibrateThreshold(calibrated, fit.chosenOn.labels, 0.9);
  assert.equal(fit.threshold.value, again.threshold);
  assert.ok(fit.threshold.validationSensitivity >= 0.9);
  // a validation film's figure is what the stored head serves for it
  const loaded = loadPopulationHead(head, 'test');
  for (const r of adults.filter((x) => x.split === 'validation'))
    assert.equal(fit.chosenOn.raw[fit.chosenOn.ids.indexOf(r.id)], populationHeadProbability(loaded, r.views));
  // blend 0 is the version's recipe refitted on every train film
  const jointOnly = await fitPopulationHead(rows, { ...opts, blends: [0] });
  const joint = await fitHeadOnRows(
    rows.filter((r) => r.split === 'train'),
    opts.jointWeights,
    0.01,
    2,
  );
  assert.deepEqual(Array.from(loadPopulationHead(jointOnly.threshold.head!, 'test').weights), Array.from(Float32Array.from(joint.weights)));
  // here the adults' own signal is one the joint fit, three children to one adult, underweights: the own head ranks adults better
  const [j, own] = [fit.tried[0], fit.tried[2]];
  assert.ok(own.auc > j.auc, `own ${own.auc} vs joint ${j.auc}`);
});
