/**
 * Which population a film looks like, for a study whose header gives no age. A child of one
 * to five and an adult differ on a chest film in proportions, heart size and positioning, and a
 * linear head on the classifier's own pooled features tells them apart; the threshold of the
 * wrong population costs a child's film most of its specificity (the adult threshold) or an
 * adult's most of its recall (the pediatric one). The engine trusts an estimate only at the
 * version's minConfidence; below it, recall first as before.
 */
import { CxrError } from '../errors.js';
import { base64ToFloat32 } from './float32-base64.js';
import type { Population, PopulationEstimatorInfo } from './model-store/index.js';

export interface PopulationEstimate {
  population: Population;
  /** the probability of `population` (>= 0.5) */
  probability: number;
  /** probability >= the estimator's minConfidence: the engine decides at this population */
  confident: boolean;
}

/** The weights as floats, checked against the width the estimator says it reads. */
export function estimatorWeights(e: PopulationEstimatorInfo): Float32Array {
  const w = base64ToFloat32(e.weights);
  if (w.length !== e.inputs) throw new CxrError('E_MODEL_INVALID', `populationEstimator: ${w.length} weights for ${e.inputs} inputs`);
  return w;
}

/** The estimate from a study's per-view features: the logits' mean over the views, through the sigmoid. */
export function estimatePopulation(e: PopulationEstimatorInfo, weights: Float32Array, views: readonly Float32Array[]): PopulationEstimate {
  if (views.length === 0) throw new CxrError('E_BAD_ARGUMENT', 'a population estimate needs at least one view');
  let z = 0;
  for (const f of views) {
    if (f.length !== weights.length)
      throw new CxrError('E_MODEL_INVALID', `populationEstimator reads ${weights.length} features, the classifier gives ${f.length}`);
    let s = e.bias;
    for (let c = 0; c < f.length; c++) s += weights[c] * f[c];
    z += s / views.length;
  }
  const pAbove = 1 / (1 + Math.exp(-z));
  const population = pAbove >= 0.5 ? e.above : e.below;
  const probability = pAbove >= 0.5 ? pAbove : 1 - pAbove;
  return { population, probability, confident: probability >= e.minConfidence };
}
