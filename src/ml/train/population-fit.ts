/**
 * Fitting a population estimator (ml/population-estimate.ts) on a feature cache: the train
 * films of sets whose population is known, every view a sample, the two populations weighed
 * equally (4,759 children against 508 adults would otherwise make "pediatric" the safe
 * answer), then checked on the validation films of the same sets as the engine uses it.
 */
import { CxrError } from '../../errors.js';
import type { Population, PopulationEstimatorInfo } from '../model-store/index.js';
import { float32ToBase64 } from '../float32-base64.js';
import { estimatePopulation } from '../population-estimate.js';
import type { FeatureRow } from './feature-cache.js';
import { fitHead } from './head.js';

export interface PopulationFitOptions {
  /** dataset name → its population; rows of other sets are left out */
  sets: ReadonlyMap<string, Population>;
  l2: number;
  minConfidence: number;
  featurePrecision: string;
  now?: Date;
}

export async function fitPopulationEstimator(rows: readonly FeatureRow[], o: PopulationFitOptions): Promise<PopulationEstimatorInfo> {
  const known = rows.filter((r) => o.sets.has(r.source));
  const populations = [...new Set(known.map((r) => o.sets.get(r.source)!))].sort();
  if (populations.length !== 2)
    throw new CxrError('E_BAD_ARGUMENT', `a population estimator needs films of two populations, the cache has ${populations.join(', ') || 'none'}`);
  const [below, above] = populations as [Population, Population];
  const train = known.filter((r) => r.split === 'train');
  const validation = known.filter((r) => r.split === 'validation');
  for (const p of populations)
    if (!train.some((r) => o.sets.get(r.source) === p)) throw new CxrError('E_BAD_ARGUMENT', `no train films of the ${p} population in the cache`);
  const count = (p: Population) => train.filter((r) => o.sets.get(r.source) === p).length;
  const perPopulation = { [below]: count(below), [above]: count(above) } as Record<Population, number>;
  // each population half the weight, each film's views sharing its film's
  const features = train.flatMap((r) => r.views);
  const labels = train.flatMap((r) => r.views.map(() => (o.sets.get(r.source) === above ? 1 : 0)));
  const weights = train.flatMap((r) => r.views.map(() => train.length / (2 * perPopulation[o.sets.get(r.source)!] * r.views.length)));
  const fit = await fitHead(features, labels, { l2: o.l2, sampleWeights: weights });
  const w = Float32Array.from(fit.weights);
  const info: PopulationEstimatorInfo = {
    above,
    below,
    inputs: w.length,
    weights: float32ToBase64(w),
    bias: fit.bias,
    minConfidence: o.minConfidence,
    featurePrecision: o.featurePrecision,
    fittedOn: {
      subset: 'train',
      n: train.length,
      views: Math.max(...train.map((r) => r.views.length)),
      l2: o.l2,
      sets: Object.fromEntries([...o.sets].filter(([s]) => known.some((r) => r.source === s))),
      at: (o.now ?? new Date()).toISOString(),
    },
    validation: { n: 0, accuracy: 0, decided: 0, decidedWrong: 0, perSet: {} },
  };
  // checked as served: the stored (float32) weights, the mean logit over each film's views
  const perSet: PopulationEstimatorInfo['validation']['perSet'] = {};
  let right = 0;
  for (const r of validation) {
    const e = estimatePopulation(info, w, r.views);
    const ok = e.population === o.sets.get(r.source);
    const s = (perSet[r.source] ??= { n: 0, accuracy: 0, decided: 0, decidedWrong: 0 });
    s.n++;
    s.accuracy += ok ? 1 : 0;
    if (e.confident) {
      s.decided++;
      if (!ok) s.decidedWrong++;
    }
    right += ok ? 1 : 0;
  }
  for (const s of Object.values(perSet)) s.accuracy = s.n ? s.accuracy / s.n : 0;
  const sets = Object.values(perSet);
  info.validation = {
    n: validation.length,
    accuracy: validation.length ? right / validation.length : 0,
    decided: sets.reduce((a, s) => a + s.decided, 0),
    decidedWrong: sets.reduce((a, s) => a + s.decidedWrong, 0),
    perSet,
  };
  return info;
}
