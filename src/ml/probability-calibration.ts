/**
 * Calibrated probabilities: a classifier trained with focal loss on one site's class mix does
 * not say "0.3" when about 30% of such films are pneumonia. Platt scaling (a logistic
 * regression on the logit of the served probability, `sigmoid(a * logit(p) + b)`) or
 * temperature scaling (b = 0, a = 1/T) fitted on the validation split maps the served
 * probability onto observed frequencies. Both are monotone, so AUC and the ranking, hence
 * the recall a threshold buys, are unchanged: only what the number means moves.
 *
 * The expected calibration error (ECE) is the image-weighted mean |observed - predicted|
 * over equal-width probability bins, the usual 10-bin form (Guo et al., 2017).
 */
import { CxrError } from '../errors.js';

export type CalibrationMethod = 'platt' | 'temperature';

/** What the manifest stores and the engine applies: p' = sigmoid(a * logit(p) + b). */
export interface ProbabilityCalibration {
  method: CalibrationMethod;
  a: number;
  b: number;
}

/** The smallest slope a fit may have: a calibration keeps the model's ranking. */
const MIN_SLOPE = 1e-3;

/** Probabilities are clamped this far from 0 and 1 before the logit, so it stays finite. */
const EPS = 1e-6;

export function logit(p: number): number {
  const q = p < EPS ? EPS : p > 1 - EPS ? 1 - EPS : p;
  return Math.log(q / (1 - q));
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

export function applyCalibration(cal: ProbabilityCalibration | null | undefined, p: number): number {
  if (!cal) return p;
  return sigmoid(cal.a * logit(p) + cal.b);
}

/**
 * The raw probability that a calibration maps to `p` (its inverse; a > 0, so it is monotone):
 * what lets thresholds on differently calibrated scales be compared.
 */
export function uncalibrate(cal: ProbabilityCalibration | null | undefined, p: number): number {
  if (!cal) return p;
  return sigmoid((logit(p) - cal.b) / cal.a);
}

/** Mean negative log-likelihood of `labels` under the calibrated probabilities. */
export function logLoss(probabilities: ArrayLike<number>, labels: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < probabilities.length; i++) {
    const p = Math.min(1 - 1e-12, Math.max(1e-12, probabilities[i]));
    s -= labels[i] >= 0.5 ? Math.log(p) : Math.log(1 - p);
  }
  return s / probabilities.length;
}

/**
 * Fits the calibration by maximum likelihood (Newton's method on the convex logistic loss,
 * with Platt's target smoothing: positives aim at (N+ + 1)/(N+ + 2), negatives at 1/(N- + 2),
 * which keeps a perfectly separated validation set from sending `a` to infinity).
 */
export function fitCalibration(probabilities: ArrayLike<number>, labels: ArrayLike<number>, method: CalibrationMethod = 'platt'): ProbabilityCalibration {
  const n = probabilities.length;
  if (n !== labels.length) throw new CxrError('E_BAD_ARGUMENT', `${n} probabilities for ${labels.length} labels`);
  let pos = 0;
  for (let i = 0; i < n; i++) if (labels[i] >= 0.5) pos++;
  if (pos === 0 || pos === n) throw new CxrError('E_BAD_DATASET', 'calibration needs both classes in the fitting set');
  const hi = (pos + 1) / (pos + 2);
  const lo = 1 / (n - pos + 2);
  const x = Array.from({ length: n }, (_, i) => logit(probabilities[i]));
  const t = Array.from({ length: n }, (_, i) => (labels[i] >= 0.5 ? hi : lo));
  let a = 1;
  let b = 0;
  const fitB = method === 'platt';
  const loss = (aa: number, bb: number): number => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const z = aa * x[i] + bb;
      // log(1 + e^z) - t z, computed stably
      s += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - t[i] * z;
    }
    return s;
  };
  let current = loss(a, b);
  for (let iter = 0; iter < 100; iter++) {
    let ga = 0;
    let gb = 0;
    let haa = 1e-9;
    let hab = 0;
    let hbb = 1e-9;
    for (let i = 0; i < n; i++) {
      const p = sigmoid(a * x[i] + b);
      const r = p - t[i];
      const w = p * (1 - p);
      ga += r * x[i];
      gb += r;
      haa += w * x[i] * x[i];
      hab += w * x[i];
      hbb += w;
    }
    let da: number;
    let db: number;
    if (fitB) {
      const det = haa * hbb - hab * hab;
      da = (hbb * ga - hab * gb) / det;
      db = (haa * gb - hab * ga) / det;
    } else {
      da = ga / haa;
      db = 0;
    }
    // backtracking: a Newton step on a flat stretch can overshoot
    let step = 1;
    let next = loss(a - step * da, b - step * db);
    while (next > current && step > 1e-6) {
      step /= 2;
      next = loss(a - step * da, b - step * db);
    }
    if (next > current) break;
    a -= step * da;
    b -= step * db;
    const gain = current - next;
    current = next;
    if (gain < 1e-12 * n) break;
  }
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw new CxrError('E_BAD_DATASET', 'the calibration fit did not converge');
  if (a < MIN_SLOPE) {
    // a model that ranks no better than chance (or backwards) on the fitting set: a calibration
    // must never reverse its ranking, so the slope is held at the floor and only b is fitted,
    // which says little more than the base rate
    a = MIN_SLOPE;
    b = 0;
    for (let iter = 0; iter < 100; iter++) {
      let g = 0;
      let h = 1e-9;
      for (let i = 0; i < n; i++) {
        const p = sigmoid(a * x[i] + b);
        g += p - t[i];
        h += p * (1 - p);
      }
      b -= g / h;
      if (Math.abs(g / h) < 1e-12) break;
    }
  }
  return { method, a, b };
}

export interface ReliabilityBin {
  /** [lo, hi) in predicted probability; the last bin includes 1 */
  lo: number;
  hi: number;
  n: number;
  /** mean predicted probability of the images in the bin (null when empty) */
  meanPredicted: number | null;
  /** fraction of the bin's images that are pneumonia (null when empty) */
  observed: number | null;
}

export interface CalibrationReport {
  ece: number;
  /** the largest |observed - predicted| over non-empty bins */
  mce: number;
  bins: ReliabilityBin[];
}

/** ECE, MCE and the reliability bins over `bins` equal-width probability bins. */
export function calibrationReport(probabilities: ArrayLike<number>, labels: ArrayLike<number>, bins = 10): CalibrationReport {
  if (!Number.isInteger(bins) || bins < 1) throw new CxrError('E_BAD_ARGUMENT', `bins must be a positive integer, got ${bins}`);
  const n = probabilities.length;
  if (n === 0) throw new CxrError('E_BAD_ARGUMENT', 'no probabilities to assess');
  const count = new Array<number>(bins).fill(0);
  const sumP = new Array<number>(bins).fill(0);
  const sumY = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    const p = probabilities[i];
    const k = Math.min(bins - 1, Math.max(0, Math.floor(p * bins)));
    count[k]++;
    sumP[k] += p;
    sumY[k] += labels[i] >= 0.5 ? 1 : 0;
  }
  let ece = 0;
  let mce = 0;
  const out: ReliabilityBin[] = [];
  for (let k = 0; k < bins; k++) {
    const c = count[k];
    const meanPredicted = c > 0 ? sumP[k] / c : null;
    const observed = c > 0 ? sumY[k] / c : null;
    if (c > 0) {
      const gap = Math.abs(observed! - meanPredicted!);
      ece += (c / n) * gap;
      mce = Math.max(mce, gap);
    }
    out.push({ lo: k / bins, hi: (k + 1) / bins, n: c, meanPredicted, observed });
  }
  return { ece, mce, bins: out };
}
