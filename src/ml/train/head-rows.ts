/**
 * A head fitted on feature-cache rows as refit-head fits the version's head: each set weighs
 * its share, each train row's first views share its weight, and the probability served is the
 * mean over the views of each view's sigmoid (the graph's own head does the same per view).
 * refit-head and fit-population-head both fit this way, so their heads agree with what is served.
 */
import type { FeatureRow } from './feature-cache.js';
import { fitHead, type HeadFit } from './head.js';

export interface LinearHead {
  weights: ArrayLike<number>;
  bias: number;
}

/** Per-row weights so that each set's rows together weigh its share; mean weight 1. */
export function setWeights(rows: readonly FeatureRow[], weights: Readonly<Record<string, number>>): number[] {
  const count = new Map<string, number>();
  for (const r of rows) count.set(r.source, (count.get(r.source) ?? 0) + 1);
  const total = [...count.keys()].reduce((s, k) => s + (weights[k] ?? 1), 0);
  return rows.map((r) => ((weights[r.source] ?? 1) / total) * (rows.length / count.get(r.source)!));
}

/** The head's logit for one view's features. */
export function headLogit(head: LinearHead, f: ArrayLike<number>): number {
  let z = head.bias;
  for (let c = 0; c < f.length; c++) z += head.weights[c] * f[c];
  return z;
}

/** The head's probability for each of the row's views, as the engine's classifier output gives them. */
export function viewProbabilities(head: LinearHead, row: Pick<FeatureRow, 'views'>): number[] {
  return row.views.map((f) => 1 / (1 + Math.exp(-headLogit(head, f))));
}

/** The served (uncalibrated) probability: the mean over the views. */
export function meanViewProbability(head: LinearHead, row: Pick<FeatureRow, 'views'>): number {
  const p = viewProbabilities(head, row);
  return p.reduce((a, b) => a + b, 0) / p.length;
}

/** fitHead on the rows' first `trainViews` views, each set weighing its share of `weights`. */
export function fitHeadOnRows(rows: readonly FeatureRow[], weights: Readonly<Record<string, number>>, l2: number, trainViews: number): Promise<HeadFit> {
  const sampleWeights = setWeights(rows, weights);
  const fitViews = rows.map((r) => r.views.slice(0, trainViews));
  return fitHead(
    fitViews.flat(),
    rows.flatMap((r, k) => fitViews[k].map(() => r.label)),
    { l2, sampleWeights: rows.flatMap((_, k) => fitViews[k].map(() => sampleWeights[k] / fitViews[k].length)) },
  );
}
