/**
 * Refitting the classifier's head on frozen features: the network up to global average
 * pooling stays as it is, and the final Dense(1, sigmoid) is refitted as an L2-regularised,
 * weighted logistic regression on the pooled features of the new training images. On a CPU
 * shared with other work this is what a site can afford: one forward pass per image instead
 * of many backward passes, and the served graph is unchanged apart from the head.
 *
 * Features are standardised internally (so one L2 strength suits every channel) and the
 * solution is mapped back to raw features: logit = w . f + b.
 */
import { CxrError } from '../../errors.js';
import { packRows, weightedGram } from './gram.js';

export interface HeadFit {
  /** one weight per feature channel, on the raw (unstandardised) features */
  weights: Float64Array;
  bias: number;
  /** the L2 strength used (on standardised features, per unit of sample weight) */
  l2: number;
  iterations: number;
}

export interface HeadFitOptions {
  /** L2 strength on standardised features (default 1e-2) */
  l2?: number;
  /** per-sample weights (default 1 each), e.g. to give a small set its share */
  sampleWeights?: ArrayLike<number>;
  maxIterations?: number;
  /** widest head (features + bias) whose Hessian is built in float64 loops; wider ones use an ONNX Runtime product (default LOOP_HESSIAN_LIMIT) */
  loopLimit?: number;
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Solves A x = b for a symmetric positive definite A (n x n, row-major) by Cholesky; A is overwritten. */
export function solveSpd(a: Float64Array, b: Float64Array, n: number): Float64Array {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) throw new CxrError('E_TRAINING_DIVERGED', 'the head fit is not positive definite (raise the L2 strength)');
    const l = Math.sqrt(d);
    a[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      const ri = i * n;
      const rj = j * n;
      for (let k = 0; k < j; k++) s -= a[ri + k] * a[rj + k];
      a[ri + j] = s / l;
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= a[i * n + k] * y[k];
    y[i] = s / a[i * n + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= a[k * n + i] * x[k];
    x[i] = s / a[i * n + i];
  }
  return x;
}

/**
 * Widths up to this many features (plus the bias) build the Newton step's Hessian in plain
 * loops, as every head before 2026-12-03 was fitted; wider heads (a multi-scale head reads
 * 2,560 pooled channels) get it from one ONNX Runtime matrix product in float32 (gram.ts):
 * in loops it costs n*m^2/2 multiply-adds streamed through a 50 MB matrix per row, minutes
 * per step for 13,000 rows of 2,561. The gradient stays float64, so both land on the same
 * optimum (the objective is strictly convex); a float32 Hessian only shapes the path.
 */
export const LOOP_HESSIAN_LIMIT = 1200;

/** H = X^T diag(q) X + l2 (not on the bias), X the standardised rows with a trailing 1 (`packed`: the same rows for the GEMM, else loops). */
async function hessian(x: readonly Float64Array[], packed: Float32Array | null, q: Float64Array, l2: number, d: number): Promise<Float64Array> {
  const m = d + 1;
  const h = packed ? await weightedGram(packed, q, m) : loopGram(x, q, m);
  for (let c = 0; c < d; c++) h[c * m + c] += l2;
  h[d * m + d] += 1e-9;
  return h;
}

function loopGram(x: readonly Float64Array[], q: Float64Array, m: number): Float64Array {
  const h = new Float64Array(m * m);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    for (let a = 0; a < m; a++) {
      const qa = q[i] * xi[a];
      if (qa === 0) continue;
      const row = a * m;
      for (let b = 0; b <= a; b++) h[row + b] += qa * xi[b];
    }
  }
  for (let a = 0; a < m; a++) for (let b = 0; b < a; b++) h[b * m + a] = h[a * m + b];
  return h;
}

/**
 * Weighted L2 logistic regression by Newton's method (IRLS with a Cholesky solve per step),
 * minimising sum_i s_i [log(1 + e^z_i) - y_i z_i] / sum_i s_i + l2/2 |w|^2 over standardised
 * features (the bias is not penalised).
 */
export async function fitHead(features: readonly Float32Array[], labels: ArrayLike<number>, opts: HeadFitOptions = {}): Promise<HeadFit> {
  const n = features.length;
  if (n === 0 || n !== labels.length) throw new CxrError('E_BAD_ARGUMENT', `${n} feature rows for ${labels.length} labels`);
  const d = features[0].length;
  if (features.some((f) => f.length !== d)) throw new CxrError('E_BAD_ARGUMENT', 'feature rows differ in length');
  const l2 = opts.l2 ?? 1e-2;
  const s = opts.sampleWeights ?? new Float64Array(n).fill(1);
  let total = 0;
  for (let i = 0; i < n; i++) total += s[i];
  // standardise: weighted mean and standard deviation per channel
  const mu = new Float64Array(d);
  const sd = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mu[c] += s[i] * features[i][c];
  for (let c = 0; c < d; c++) mu[c] /= total;
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) sd[c] += s[i] * (features[i][c] - mu[c]) ** 2;
  for (let c = 0; c < d; c++) sd[c] = Math.sqrt(sd[c] / total) || 1;
  const x = features.map((f) => {
    const z = new Float64Array(d + 1);
    for (let c = 0; c < d; c++) z[c] = (f[c] - mu[c]) / sd[c];
    z[d] = 1;
    return z;
  });
  const m = d + 1;
  let w = new Float64Array(m);
  const objective = (v: Float64Array): number => {
    let loss = 0;
    for (let i = 0; i < n; i++) {
      let z = 0;
      for (let c = 0; c < m; c++) z += v[c] * x[i][c];
      loss += s[i] * ((z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - (labels[i] >= 0.5 ? z : 0));
    }
    let reg = 0;
    for (let c = 0; c < d; c++) reg += v[c] * v[c];
    return loss / total + (l2 / 2) * reg;
  };
  let current = objective(w);
  let iterations = 0;
  // a wide head's rows as one float32 matrix for the GEMM, once per fit
  const packed = m <= (opts.loopLimit ?? LOOP_HESSIAN_LIMIT) ? null : packRows(x, m);
  for (let iter = 0; iter < (opts.maxIterations ?? 25); iter++) {
    iterations++;
    const g = new Float64Array(m);
    // each row's Hessian weight p(1-p)
    const q = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const xi = x[i];
      let z = 0;
      for (let c = 0; c < m; c++) z += w[c] * xi[c];
      const p = sigmoid(z);
      const r = (s[i] * (p - (labels[i] >= 0.5 ? 1 : 0))) / total;
      q[i] = (s[i] * Math.max(p * (1 - p), 1e-10)) / total;
      for (let a = 0; a < m; a++) g[a] += r * xi[a];
    }
    for (let c = 0; c < d; c++) g[c] += l2 * w[c];
    const step = solveSpd(await hessian(x, packed, q, l2, d), g, m);
    let t = 1;
    let next = w.map((v, c) => v - t * step[c]);
    let value = objective(next);
    while (value > current && t > 1e-4) {
      t /= 2;
      next = w.map((v, c) => v - t * step[c]);
      value = objective(next);
    }
    if (value > current) break;
    const gain = current - value;
    w = next;
    current = value;
    if (gain < 1e-10) break;
  }
  // back to raw features: w_c (f_c - mu_c) / sd_c + b
  const weights = new Float64Array(d);
  let bias = w[d];
  for (let c = 0; c < d; c++) {
    weights[c] = w[c] / sd[c];
    bias -= (w[c] * mu[c]) / sd[c];
  }
  return { weights, bias, l2, iterations };
}

/** The head's probability for one feature row. */
export function headProbability(fit: Pick<HeadFit, 'weights' | 'bias'>, f: ArrayLike<number>): number {
  let z = fit.bias;
  for (let c = 0; c < f.length; c++) z += fit.weights[c] * f[c];
  return sigmoid(z);
}
