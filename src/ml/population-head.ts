/**
 * A population's own head (manifest `threshold.populations.<name>.head`): the linear head that
 * replaces the graph's for a study decided at that population. Its probability is formed as the
 * graph's head forms its own: each TTA view's sigmoid, then the mean over the views.
 */
import { CxrError } from '../errors.js';
import { base64ToFloat32 } from './float32-base64.js';
import type { Population, PopulationHeadInfo, PopulationThreshold, ThresholdInfo } from './model-store/index.js';

export interface LoadedPopulationHead {
  weights: Float32Array;
  bias: number;
}

/** The weights as floats, checked against the width the head says it reads. */
export function loadPopulationHead(h: PopulationHeadInfo, where: string): LoadedPopulationHead {
  const weights = base64ToFloat32(h.weights);
  if (weights.length !== h.inputs) throw new CxrError('E_MODEL_INVALID', `${where}: ${weights.length} weights for ${h.inputs} inputs`);
  return { weights, bias: h.bias };
}

/** The head's raw (uncalibrated) probability for a study's per-view features. */
export function populationHeadProbability(head: LoadedPopulationHead, views: readonly Float32Array[]): number {
  if (views.length === 0) throw new CxrError('E_BAD_ARGUMENT', 'a population head needs at least one view');
  let sum = 0;
  for (const f of views) {
    if (f.length !== head.weights.length)
      throw new CxrError('E_MODEL_INVALID', `a population head reads ${head.weights.length} features, the classifier gives ${f.length}`);
    let z = head.bias;
    for (let c = 0; c < f.length; c++) z += head.weights[c] * f[c];
    sum += 1 / (1 + Math.exp(-z));
  }
  return sum / views.length;
}

/** (1 - own) x joint + own x ownHead, weights and bias alike: per view, the same blend of the two logits. */
export function blendLinearHeads(
  joint: { weights: ArrayLike<number>; bias: number },
  ownHead: { weights: ArrayLike<number>; bias: number },
  own: number,
): { weights: Float64Array; bias: number } {
  if (joint.weights.length !== ownHead.weights.length) throw new CxrError('E_BAD_ARGUMENT', 'blended heads differ in width');
  if (!(own >= 0 && own <= 1)) throw new CxrError('E_BAD_ARGUMENT', `a blend share must be in [0,1], got ${own}`);
  const weights = new Float64Array(joint.weights.length);
  for (let c = 0; c < weights.length; c++) weights[c] = (1 - own) * joint.weights[c] + own * ownHead.weights[c];
  return { weights, bias: (1 - own) * joint.bias + own * ownHead.bias };
}

/** The populations of a threshold block that carry their own head, loaded. */
export function populationHeads(t: Pick<ThresholdInfo, 'populations'>, where: string): [Population, LoadedPopulationHead][] {
  return Object.entries(t.populations ?? {})
    .filter((e): e is [Population, PopulationThreshold & { head: PopulationHeadInfo }] => e[1]?.head != null)
    .map(([k, p]) => [k, loadPopulationHead(p.head, `${where}: the ${k} head`)]);
}
