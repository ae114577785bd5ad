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
 *
 * Two scopes. 'crop' takes each pixel's rank within the crop: every matched crop then has the
 * reference's histogram, whatever the lungs hold, so a denser (whiter) lung field is no longer
 * whiter than a clear one. 'film' takes the rank within the whole film: any increasing map of
 * the film is still undone, while lungs whiter than the rest of their film stay whiter.
 */
import { grayImage, isIndexed, type GrayImage, type SampledImage } from './types.js';

/** Whose ranks decide a crop pixel's matched value: the crop's own, or the whole film's. */
export type MatchScope = 'crop' | 'film';

/** A reference and the scope its ranks are taken over (a version's manifest.intensity, as the engine applies it). */
export interface IntensityMatch {
  quantiles: ArrayLike<number>;
  scope: MatchScope;
}

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

/** Pixel counts per histogram bin of `values`. */
function histogramOf(values: ArrayLike<number>): Uint32Array {
  const counts = new Uint32Array(HISTOGRAM_BINS);
  for (let i = 0; i < values.length; i++) counts[binOf(values[i])]++;
  return counts;
}

/** Pixel counts per histogram bin of a film, read in place when it is indexed (a count per code, then per value). */
export function filmHistogram(image: SampledImage): Uint32Array {
  if (!isIndexed(image)) return histogramOf(image.data);
  const perCode = new Uint32Array(image.values.length);
  const n = image.width * image.height;
  for (let i = 0; i < n; i++) perCode[image.codes[i]]++;
  const counts = new Uint32Array(HISTOGRAM_BINS);
  for (let c = 0; c < perCode.length; c++) if (perCode[c] > 0) counts[binOf(image.values[c])] += perCode[c];
  return counts;
}

/** The quantile function of a film's pixels from its histogram (each bin's pixels at the bin's middle value). */
export function filmQuantileFunction(image: SampledImage, levels = QUANTILE_LEVELS): Float64Array {
  const counts = filmHistogram(image);
  // the pixels the histogram holds (a NaN pixel has no bin): the ranks are theirs
  const n = counts.reduce((a, c) => a + c, 0);
  if (n === 0) throw new RangeError('no values to take quantiles of');
  const out = new Float64Array(levels);
  let b = 0;
  let below = 0;
  for (let k = 0; k < levels; k++) {
    const rank = ((k + 0.5) / levels) * n;
    while (b < HISTOGRAM_BINS - 1 && below + counts[b] < rank) below += counts[b++];
    out[k] = (b + 0.5) / HISTOGRAM_BINS;
  }
  return out;
}

/** The matched value of each histogram bin: the reference at the middle of the bin's share of the ranks. */
function binValues(counts: Uint32Array, reference: ArrayLike<number>): Float32Array {
  let n = 0;
  for (let b = 0; b < HISTOGRAM_BINS; b++) n += counts[b];
  const levels = reference.length;
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
  return valueOfBin;
}

/**
 * `image` with each pixel replaced by `reference`'s value at the pixel's rank (reference: a
 * quantile function at ranks (k + 0.5) / length, linear between them): its rank in `image`
 * itself, or, given `ranksFrom` (a film's histogram, filmHistogram), in that film. A value the
 * film does not hold (a crop's resampled edge) takes its bin's place among the film's ranks.
 */
export function matchIntensity(image: GrayImage, reference: ArrayLike<number>, ranksFrom?: Uint32Array): GrayImage {
  const d = image.data;
  const n = d.length;
  const counts = ranksFrom ?? histogramOf(d);
  let valueOfBin = binValues(counts, reference);
  // a crop resampled from an 8-bit film holds values between the film's: bins the film leaves
  // empty are interpolated between the filled bins either side (held flat beyond the ends)
  if (ranksFrom) valueOfBin = fillEmptyBins(valueOfBin, counts);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = valueOfBin[binOf(d[i])];
  return grayImage(image.width, image.height, out);
}

function fillEmptyBins(valueOfBin: Float32Array, counts: Uint32Array): Float32Array {
  const out = Float32Array.from(valueOfBin);
  const filled: number[] = [];
  for (let b = 0; b < HISTOGRAM_BINS; b++) if (counts[b] > 0) filled.push(b);
  if (filled.length === 0) return out;
  const first = filled[0];
  const last = filled[filled.length - 1];
  out.fill(out[first], 0, first);
  out.fill(out[last], last + 1);
  for (let j = 1; j < filled.length; j++) {
    const [lo, hi] = [filled[j - 1], filled[j]];
    for (let e = lo + 1; e < hi; e++) out[e] = out[lo] + ((e - lo) / (hi - lo)) * (out[hi] - out[lo]);
  }
  return out;
}

/** A lung crop matched as `match` says: by its own ranks, or by its film's. */
export function matchCrop(crop: GrayImage, film: SampledImage, match: IntensityMatch): GrayImage {
  return matchIntensity(crop, match.quantiles, match.scope === 'film' ? filmHistogram(film) : undefined);
}
