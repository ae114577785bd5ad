/**
 * The TTA spread above which a study is sent to a human as 'uncertain', set per threshold
 * block on the same images the threshold was picked on: a high quantile of the spreads the
 * served pipeline gave there, so that about (1 - quantile) of studies like those are flagged
 * for it. A fixed number cannot serve every version: a head refitted on frozen features
 * moved ten times more between views than the network it came from (0.40 against 0.08).
 */

import { CxrError } from '../errors.js';

/** A threshold block's uncertainty bound and where it came from. */
export interface UncertaintyBound {
  /** a study whose TTA spread (sample standard deviation of the views) exceeds it is 'uncertain' */
  bound: number;
  /** the quantile of the spreads it is */
  quantile: number;
  /** images the spreads came from */
  n: number;
  /** the largest spread among them */
  largest: number;
}

/** About one study in a hundred like the calibration images is flagged for its spread. */
export const UNCERTAINTY_QUANTILE = 0.99;

/**
 * The nearest-rank quantile of the spreads: the smallest value with at least `quantile` of
 * them at or below it. Null without spreads, or when one is not a finite non-negative number.
 */
export function uncertaintyBound(spreads: readonly number[], quantile = UNCERTAINTY_QUANTILE): UncertaintyBound | null {
  if (!(quantile > 0 && quantile <= 1)) throw new CxrError('E_BAD_ARGUMENT', `quantile must be in (0, 1], got ${quantile}`);
  if (spreads.length === 0 || spreads.some((s) => !Number.isFinite(s) || s < 0)) return null;
  const sorted = [...spreads].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(quantile * sorted.length - 1e-9));
  return { bound: sorted[rank - 1], quantile, n: sorted.length, largest: sorted[sorted.length - 1] };
}
