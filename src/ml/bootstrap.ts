/**
 * Percentile bootstrap intervals over images: resample the scored images with replacement,
 * recompute the figure, and take the 2.5th and 97.5th percentiles of the figures. Seeded,
 * so a report is reproducible. Resamples where the figure is undefined (one class only)
 * are skipped.
 */
import { mulberry32 } from '../data/rng.js';

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
