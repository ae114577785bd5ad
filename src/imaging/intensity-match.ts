/**
 * Quantile matching of the classifier's lung crop to a reference intensity distribution.
 * Sites render the same chest with different look-up curves, contrast and brightness (all
 * monotone maps of the pixel values), and `robustness` measured the shipped classifier's
 * adult AUC falling from 0.880 to 0.735 under a lighter look-up curve alone. Replacing each
 * pixel by the reference's quantile at the pixel's rank in its own crop undoes any strictly
 * increasing map: the ranks do not change, so the crop the network sees does not either. The
 * reference is the mean quantile function of training crops, so a typical film is changed
 * little and the network keeps seeing what it learnt from.
 *
 * Ranks come from a histogram of HISTOGRAM_BINS bins over [0, 1] (each pixel at the middle
 * of its bin's share of the crop), so ties (8-bit sources) map alike and the cost is one pass.
 */
import { grayImage, type GrayImage } from './types.js';

/** Points of a stored quantile function: the values at ranks (k + 0.5) / QUANTILE_LEVELS. */
export const QUANTILE_LEVELS = 256;
export const HISTOGRAM_BINS = 4096;

const binOf = (v: number): number => Math.min(HISTOGRAM_BINS - 1, Math.floor(Math.min(1, Math.max(0, v)) * HISTOGRAM_BINS));

/**
 * The quantile function of `values` at ranks (k + 0.5) / levels, k = 0..levels-1: linear
 * between order statistics (the i-th smallest of n sits at rank (i + 0.5) / n).
 */
export function quantileFunction(values: ArrayLike<number>, levels = QUANTILE_LEVELS): Float64Array {
  const n = values.length;
  if (n === 0) throw new RangeError('no values to take quantiles of');
  const sorted = Float64Array.from(values).sort();
  const out = new Float64Array(levels);
  for (let k = 0; k < levels; k++) {
    const pos = ((k + 0.5) / levels) * n - 0.5;
    const i = Math.floor(pos);
    if (i < 0) out[k] = sorted[0];
    else if (i >= n - 1) out[k] = sorted[n - 1];
    else out[k] = sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]);
  }
  return out;
}

/** The pointwise mean of quantile functions of one length (itself a quantile function: nondecreasing). */
export function meanQuantiles(functions: readonly ArrayLike<number>[]): Float64Array {
  if (functions.length === 0) throw new RangeError('no quantile functions to average');
  const levels = functions[0].length;
  const out = new Float64Array(levels);
  for (const f of functions) {
    if (f.length !== levels) throw new RangeError(`quantile functions of ${levels} and ${f.length} points`);
    for (let k = 0; k < levels; k++) out[k] += f[k];
  }
  for (let k = 0; k < levels; k++) out[k] /= functions.length;
  return out;
}

/** True when `q` can serve as a reference: finite, within [0, 1], nondecreasing, at least two points. */
export function isQuantileFunction(q: ArrayLike<number>): boolean {
  if (q.length < 2) return false;
  for (let k = 0; k < q.length; k++) {
    if (!Number.isFinite(q[k]) || q[k] < 0 || q[k] > 1) return false;
    if (k > 0 && q[k] < q[k - 1]) return false;
  }
  return true;
}

/**
 * `image` with each pixel replaced by `reference`'s value at the pixel's rank in `image`
 * (reference: a quantile function at ranks (k + 0.5) / length, linear between them).
 */
export function matchIntensity(image: GrayImage, reference: ArrayLike<number>): GrayImage {
  const d = image.data;
  const n = d.length;
  const levels = reference.length;
  const counts = new Uint32Array(HISTOGRAM_BINS);
  for (let i = 0; i < n; i++) counts[binOf(d[i])]++;
  // each bin's pixels sit at the middle of the bin's share of the ranks
  const valueOfBin = new Float32Array(HISTOGRAM_BINS);
  let below = 0;
  for (let b = 0; b < HISTOGRAM_BINS; b++) {
    const c = counts[b];
    if (c === 0) continue;
    const pos = ((below + c / 2) / n) * levels - 0.5;
    const k = Math.floor(pos);
    valueOfBin[b] = k < 0 ? reference[0] : k >= levels - 1 ? reference[levels - 1] : reference[k] + (pos - k) * (reference[k + 1] - reference[k]);
    below += c;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = valueOfBin[binOf(d[i])];
  return grayImage(image.width, image.height, out);
}
