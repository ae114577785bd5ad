/**
 * Bootstrap bands for ROC and precision-recall curves: the curve recomputed on resamples (with
 * replacement, seeded) of the evaluated images, and at each point of a fixed x grid the 2.5th
 * and 97.5th percentile of the curve's height. With a test split of ~100 images the band is
 * wide, which is the point: a reader should see how little one curve says.
 */
import { mulberry32 } from '../data/rng.js';
import { binaryMetrics, confusionAt, operatingPoints, rocAuc, type CurvePoint } from './metrics.js';

export interface CurveBand {
  x: number[];
  lo: number[];
  hi: number[];
  /** resamples that had both classes (the others have no curve) */
  samples: number;
}

/** ROC: best TPR at FPR <= x. PR: interpolated precision, the best precision at recall >= x. */
function heightAt(points: readonly CurvePoint[], kind: 'roc' | 'pr', x: number): number {
  let y = 0;
  for (const p of points) {
    if (kind === 'roc' ? p.fpr <= x + 1e-12 : p.recall >= x - 1e-12 && p.precision != null) y = Math.max(y, kind === 'roc' ? p.tpr : (p.precision ?? 0));
  }
  return y;
}

export function bootstrapBand(
  scores: readonly number[],
  labels: readonly number[],
  kind: 'roc' | 'pr',
  opts: { samples?: number; seed?: number; grid?: number; level?: number } = {},
): CurveBand {
  const samples = opts.samples ?? 200;
  const gridN = opts.grid ?? 41;
  const x = Array.from({ length: gridN }, (_, i) => i / (gridN - 1));
  const rand = mulberry32(opts.seed ?? 1);
  const heights: number[][] = x.map(() => []);
  let used = 0;
  const n = scores.length;
  for (let s = 0; s < samples; s++) {
    const sc: number[] = [];
    const lb: number[] = [];
    for (let i = 0; i < n; i++) {
      const k = Math.floor(rand() * n);
      sc.push(scores[k]);
      lb.push(labels[k]);
    }
    const pos = lb.filter((l) => l >= 0.5).length;
    if (pos === 0 || pos === n) continue;
    used++;
    const pts = operatingPoints(sc, lb);
    x.forEach((xv, i) => heights[i].push(heightAt(pts, kind, xv)));
  }
  const q = (arr: number[], p: number) => {
    if (arr.length === 0) return Number.NaN;
    const a = [...arr].sort((u, v) => u - v);
    return a[Math.min(a.length - 1, Math.max(0, Math.round(p * (a.length - 1))))];
  };
  const tail = (1 - (opts.level ?? 0.95)) / 2;
  return { x, lo: heights.map((h) => q(h, tail)), hi: heights.map((h) => q(h, 1 - tail)), samples: used };
}

/**
 * Percentile bootstrap intervals over images: resample the scored images with replacement,
 * recompute the figure, and take the 2.5th and 97.5th percentiles of the figures. Seeded,
 * so a report is reproducible. Resamples where the figure is undefined (one class only)
 * are skipped.
 */
export interface Interval {
  lo: number;
  hi: number;
  /** resamples where the figure was defined */
  n: number;
}

export function bootstrapInterval(
  count: number,
  statistic: (indices: Int32Array) => number | null,
  opts: { resamples?: number; seed?: number; level?: number } = {},
): Interval | null {
  const resamples = opts.resamples ?? 2000;
  const rand = mulberry32(opts.seed ?? 1);
  const values: number[] = [];
  const idx = new Int32Array(count);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < count; i++) idx[i] = Math.floor(rand() * count);
    const v = statistic(idx);
    if (v != null && Number.isFinite(v)) values.push(v);
  }
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  const alpha = (1 - (opts.level ?? 0.95)) / 2;
  const at = (q: number): number => values[Math.min(values.length - 1, Math.max(0, Math.round(q * (values.length - 1))))];
  return { lo: at(alpha), hi: at(1 - alpha), n: values.length };
}

/** The figures `bootstrapFigures` gives intervals for, in the order reports print them. */
export const INTERVAL_FIGURES = ['auc', 'accuracy', 'recall', 'specificity'] as const;
export type IntervalFigure = (typeof INTERVAL_FIGURES)[number];

/**
 * 95% percentile-bootstrap intervals of AUC, and of accuracy, recall and specificity at
 * `threshold`, over resamples of the scored images, flattened as manifests store them
 * (`aucLo`, `aucHi`, ...). A figure undefined on every resample (one class only) is left out.
 * Seeded (default 1000 resamples, seed 7, what refit-head, evaluate and the model cards use),
 * so the same probabilities always give the same intervals.
 */
export function bootstrapFigures(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
  opts: { resamples?: number; seed?: number; level?: number } = {},
): Record<string, number> {
  const n = scores.length;
  const p = new Float64Array(n);
  const y = new Float64Array(n);
  const stat = (fig: IntervalFigure) => (idx: Int32Array) => {
    for (let i = 0; i < idx.length; i++) {
      p[i] = scores[idx[i]];
      y[i] = labels[idx[i]];
    }
    if (fig === 'auc') return rocAuc(p, y);
    return binaryMetrics(confusionAt(p, y, threshold))[fig];
  };
  const out: Record<string, number> = {};
  for (const fig of INTERVAL_FIGURES) {
    const iv = bootstrapInterval(n, stat(fig), { resamples: opts.resamples ?? 1000, seed: opts.seed ?? 7, level: opts.level });
    if (iv) {
      out[`${fig}Lo`] = iv.lo;
      out[`${fig}Hi`] = iv.hi;
    }
  }
  return out;
}
