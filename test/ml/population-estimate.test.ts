/**
 * The population a film of unknown age is estimated as: the estimator's arithmetic, its use by
 * chooseThreshold (only when the age is unknown, only when sure), and its fit on cache rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CxrError } from '../../src/errors.js';
import { chooseThreshold } from '../../src/inference/population.js';
import { base64ToFloat32, float32ToBase64 } from '../../src/ml/float32-base64.js';
import type { PopulationEstimatorInfo, ThresholdInfo } from '../../src/ml/model-store/index.js';
import { estimatePopulation, estimatorWeights } from '../../src/ml/population-estimate.js';
import type { FeatureRow } from '../../src/ml/train/feature-cache.js';
import { fitPopulationEstimator } from '../../src/ml/train/population-fit.js';

const info = (weights: number[], bias: number, minConfidence = 0.99): PopulationEstimatorInfo => ({
  above: 'pediatric',
  below: 'adult',
  inputs: weights.length,
  weights: float32ToBase64(Float32Array.from(weights)),
  bias,
  minConfidence,
  featurePrecision: 'float',
  fittedOn: { subset: 'train', n: 0, views: 1, l2: 0.01, sets: {}, at: '2026-12-04T00:00:00.000Z' },
  validation: { n: 0, accuracy: 0, decided: 0, decidedWrong: 0, perSet: {} },
});

test('the estimate is the sigmoid of the mean logit over the views, naming the likelier population with its probability', () => {
  const e = info([1, -1], 0.5);
  const w = estimatorWeights(e);
  // logits 1.5 and -0.5: mean 0.5
  const a = estimatePopulation(e, w, [Float32Array.from([1, 0]), Float32Array.from([0, 1])]);
  assert.deepEqual(a, { population: 'pediatric', probability: 1 / (1 + Math.exp(-0.5)), confident: false });
  // logit -5.5: adult at 1 - sigmoid(-5.5), above 0.99
  const b = estimatePopulation(e, w, [Float32Array.from([0, 6])]);
  assert.equal(b.population, 'adult');
  assert.equal(b.probability, 1 - 1 / (1 + Math.exp(5.5)));
  assert.equal(b.confident, true);
});

test('estimator weights round-trip through base64 and a width that does not match is E_MODEL_INVALID', () => {
  assert.deepEqual(Array.from(base64ToFloat32(float32ToBase64(Float32Array.from([0.5, -2, 3])))), [0.5, -2, 3]);
  assert.throws(
    () => estimatorWeights({ ...info([1, 2], 0), inputs: 3 }),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID',
  );
  const e = info([1, 2], 0);
  assert.throws(
    () => estimatePopulation(e, estimatorWeights(e), [Float32Array.from([1, 2, 3])]),
    (err: unknown) => err instanceof CxrError && err.code === 'E_MODEL_INVALID' && /reads 2 features, the classifier gives 3/.test(err.message),
  );
});

const thresholds: ThresholdInfo = {
  value: 0.4,
  targetRecall: 0.95,
  validationSensitivity: 0.95,
  validationSpecificity: 0.6,
  populations: {
    adult: { value: 0.2, validationSensitivity: 0.96, validationSpecificity: 0.4, n: 55, positives: 30, datasets: ['nih'] },
    pediatric: { value: 0.6, validationSensitivity: 0.95, validationSpecificity: 0.9, n: 476, positives: 342, datasets: ['kermany'] },
  },
};
const noAge = { patientAge: null, patientBirthDate: null, studyDate: null };

test("an unknown age is decided at the estimated population's threshold when the estimate is sure, else at the lowest (recall first); a known age ignores it", () => {
  const sure = chooseThreshold(thresholds, noAge, null, { population: 'pediatric', probability: 0.999, confident: true });
  assert.deepEqual([sure.value, sure.population, sure.thresholdOf], [0.6, 'pediatric', 'pediatric']);
  assert.match(sure.reason, /age unknown .*, estimated pediatric from the film \(0\.999 >= the version's minimum confidence\): pediatric threshold/);
  assert.deepEqual(sure.estimate, { population: 'pediatric', probability: 0.999, confident: true });
  const unsure = chooseThreshold(thresholds, noAge, null, { population: 'pediatric', probability: 0.8, confident: false });
  assert.deepEqual([unsure.value, unsure.population, unsure.thresholdOf], [0.2, null, 'adult']);
  assert.match(
    unsure.reason,
    /the film looks pediatric at 0\.800, below the version's minimum confidence; the lowest of the population thresholds \(adult\) applies, recall first/,
  );
  const aged = chooseThreshold(thresholds, { patientAge: '045Y' }, null, { population: 'pediatric', probability: 0.999, confident: true });
  assert.deepEqual([aged.value, aged.population, aged.estimate], [0.2, 'adult', undefined]);
});

/** rows whose feature 0 says the population (children +, adults -), feature 1 noise */
function rows(): FeatureRow[] {
  const out: FeatureRow[] = [];
  for (let i = 0; i < 40; i++) {
    const child = i % 2 === 0;
    const split = i < 28 ? 'train' : 'validation';
    const x = (child ? 3 : -3) + ((i * 7) % 5) * 0.1;
    out.push({
      id: `f${i}`,
      label: i % 3 === 0 ? 1 : 0,
      source: child ? 'kids' : 'grown',
      split,
      views: [Float32Array.from([x, (i % 4) - 1.5]), Float32Array.from([x + 0.2, 0])],
    });
  }
  out.push({ id: 'other', label: 0, source: 'unnamed', split: 'train', views: [Float32Array.from([0, 0]), Float32Array.from([0, 0])] });
  return out;
}

test("fitPopulationEstimator fits on the named sets' train films and reports their validation films as the engine estimates them", async () => {
  const sets = new Map([
    ['kids', 'pediatric' as const],
    ['grown', 'adult' as const],
  ]);
  const e = await fitPopulationEstimator(rows(), { sets, l2: 0.01, minConfidence: 0.9, featurePrecision: 'float', now: new Date('2026-12-04T00:00:00Z') });
  assert.deepEqual([e.above, e.below, e.inputs, e.fittedOn.n, e.fittedOn.views], ['pediatric', 'adult', 2, 28, 2]);
  assert.deepEqual(e.fittedOn.sets, { kids: 'pediatric', grown: 'adult' });
  assert.deepEqual(e.validation, {
    n: 12,
    accuracy: 1,
    decided: 12,
    decidedWrong: 0,
    perSet: { grown: { n: 6, accuracy: 1, decided: 6, decidedWrong: 0 }, kids: { n: 6, accuracy: 1, decided: 6, decidedWrong: 0 } },
  });
  await assert.rejects(
    fitPopulationEstimator(rows(), { sets: new Map([['kids', 'pediatric' as const]]), l2: 0.01, minConfidence: 0.9, featurePrecision: 'float' }),
    (err: unknown) => err instanceof CxrError && err.code === 'E_BAD_ARGUMENT' && /two populations/.test(err.message),
  );
});
