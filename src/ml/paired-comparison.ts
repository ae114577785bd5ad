/**
 * Two versions scored on the same films, compared as paired data: whether the difference
 * between them is larger than what the films themselves can tell apart.
 *
 * Why paired: a candidate and the served version are evaluated on one validation split, so
 * their errors are correlated (the hard films are hard for both). Two separate bootstrap
 * intervals overlap even when one model is better on nearly every film, and reading two point
 * estimates says nothing about chance: on 55 adult films one film moves specificity by 0.04.
 * DeLong's method (DeLong, DeLong & Clarke-Pearson 1988, "Comparing the areas under two or more
 * correlated ROC curves", Biometrics 44:837) gives the variance of the AUC difference from the
 * films' own placement values; McNemar's exact test compares two sets of decisions on the
 * same films through the films they disagree on. pROC's roc.test(paired = TRUE) and
 * scikit-learn-style DeLong code compute the same quantities.
 */
import { CxrError } from '../errors.js';
import type { Labels, Scores } from './metrics.js';

/** two-sided 95%: the normal quantile 0.975 */
export const Z_95 = 1.959963984540054;

/**
 * The standard normal CDF through erfc (Numerical Recipes' Chebyshev fit, fractional error
 * below 1.2e-7 everywhere): enough for p-values reported to three digits.
 */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

export interface PairedAuc {
  aucA: number;
  aucB: number;
  /** aucB - aucA */
  difference: number;
  /** DeLong standard error of the difference */
  se: number;
  /** 95% interval of the difference (normal, DeLong variance) */
  ci: [number, number];
  /** two-sided p-value of "no difference"; 1 when the two rank every pair alike */
  p: number;
  positives: number;
  negatives: number;
}

/** ψ(x, y): a positive's score above a negative's counts 1, a tie one half. */
function psi(x: number, y: number): number {
  return x > y ? 1 : x === y ? 0.5 : 0;
}

/**
 * Placement values: for each positive, the share of negatives it outranks (V10); for each
 * negative, the share of positives that outrank it (V01). Their means are the AUC.
 */
function placements(pos: readonly number[], neg: readonly number[]): { v10: Float64Array; v01: Float64Array } {
  const v10 = new Float64Array(pos.length);
  const v01 = new Float64Array(neg.length);
  for (let i = 0; i < pos.length; i++) {
    for (let j = 0; j < neg.length; j++) {
      const s = psi(pos[i], neg[j]);
      v10[i] += s;
      v01[j] += s;
    }
  }
  for (let i = 0; i < pos.length; i++) v10[i] /= neg.length;
  for (let j = 0; j < neg.length; j++) v01[j] /= pos.length;
  return { v10, v01 };
}

function meanOf(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x;
  return s / v.length;
}

/** sample covariance (denominator n - 1) of two equally long series */
function covariance(a: Float64Array, b: Float64Array): number {
  const ma = meanOf(a);
  const mb = meanOf(b);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - ma) * (b[i] - mb);
  return s / (a.length - 1);
}

/**
 * DeLong's test of two correlated AUCs: model A's and model B's scores of the same films.
 * Null when a class has fewer than two films (no variance can be estimated).
 */
export function pairedAucDelong(labels: Labels, scoresA: Scores, scoresB: Scores): PairedAuc | null {
  if (scoresA.length !== labels.length || scoresB.length !== labels.length)
    throw new RangeError(`labels (${labels.length}) and the two score lists (${scoresA.length}, ${scoresB.length}) differ in length`);
  const split = (s: Scores) => {
    const pos: number[] = [];
    const neg: number[] = [];
    for (let i = 0; i < labels.length; i++) (labels[i] >= 0.5 ? pos : neg).push(s[i]);
    return { pos, neg };
  };
  const a = split(scoresA);
  const b = split(scoresB);
  const m = a.pos.length;
  const n = a.neg.length;
  if (m < 2 || n < 2) return null;
  const pa = placements(a.pos, a.neg);
  const pb = placements(b.pos, b.neg);
  const aucA = meanOf(pa.v10);
  const aucB = meanOf(pb.v10);
  const variance =
    (covariance(pa.v10, pa.v10) + covariance(pb.v10, pb.v10) - 2 * covariance(pa.v10, pb.v10)) / m +
    (covariance(pa.v01, pa.v01) + covariance(pb.v01, pb.v01) - 2 * covariance(pa.v01, pb.v01)) / n;
  // rounding can leave a tiny negative where the two rank identically
  const se = Math.sqrt(Math.max(0, variance));
  const difference = aucB - aucA;
  const p = se === 0 ? (difference === 0 ? 1 : 0) : 2 * (1 - normalCdf(Math.abs(difference) / se));
  return { aucA, aucB, difference, se, ci: [difference - Z_95 * se, difference + Z_95 * se], p: Math.min(1, p), positives: m, negatives: n };
}

/**
 * McNemar's exact test: of the films two decision rules disagree on, `onlyA` went A's way and
 * `onlyB` B's; under "no difference" each disagreement is a fair coin. Two-sided p-value
 * (twice the smaller tail, capped at 1).
 */
export function mcnemarExact(onlyA: number, onlyB: number): number {
  if (!Number.isInteger(onlyA) || !Number.isInteger(onlyB) || onlyA < 0 || onlyB < 0)
    throw new RangeError(`counts must be whole numbers >= 0, got ${onlyA}, ${onlyB}`);
  const n = onlyA + onlyB;
  if (n === 0) return 1;
  const k = Math.min(onlyA, onlyB);
  // P(X <= k) for X ~ Binomial(n, 1/2), summed in logs so that large n does not overflow
  let logC = 0; // log C(n, 0)
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logC - n * Math.LN2);
  }
  return Math.min(1, 2 * tail);
}

export interface PairedRate {
  /** films of this class (positives for recall, negatives for specificity) */
  n: number;
  /** films each rule got right */
  rightA: number;
  rightB: number;
  /** right by A only, by B only */
  onlyA: number;
  onlyB: number;
  /** rightB/n - rightA/n */
  difference: number;
  p: number;
}

/**
 * Recall (on positives) or specificity (on negatives) of two decision lists on the same films,
 * with McNemar's exact p-value. `correctA[i]`: rule A decided film i right.
 */
export function pairedRate(correctA: readonly boolean[], correctB: readonly boolean[]): PairedRate {
  if (correctA.length !== correctB.length) throw new RangeError(`decision lists differ in length (${correctA.length}, ${correctB.length})`);
  let rightA = 0;
  let rightB = 0;
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < correctA.length; i++) {
    if (correctA[i]) rightA++;
    if (correctB[i]) rightB++;
    if (correctA[i] && !correctB[i]) onlyA++;
    if (correctB[i] && !correctA[i]) onlyB++;
  }
  const n = correctA.length;
  return { n, rightA, rightB, onlyA, onlyB, difference: n === 0 ? 0 : (rightB - rightA) / n, p: mcnemarExact(onlyA, onlyB) };
}

export type AucVerdict = 'better' | 'worse' | 'non-inferior' | 'inconclusive';

/**
 * What the AUC interval allows one to say about B against A. With a margin: B is
 * non-inferior when the interval's lower end is above -margin (and not better outright).
 */
export function aucVerdict(r: Pick<PairedAuc, 'ci'>, margin?: number): AucVerdict {
  if (r.ci[0] > 0) return 'better';
  if (r.ci[1] < 0) return 'worse';
  if (margin !== undefined && r.ci[0] > -margin) return 'non-inferior';
  return 'inconclusive';
}

/** One film as an evaluation's per-image CSV gives it (see evaluation-files.ts). */
export interface ScoredFilm {
  file: string;
  label: number;
  probability: number;
  decision?: 'positive' | 'negative';
}

export interface PairedComparison {
  films: number;
  auc: PairedAuc | null;
  /** on the pneumonia films, each evaluation's own decisions; null where a file has no decision column */
  recall: PairedRate | null;
  /** on the normal films */
  specificity: PairedRate | null;
  verdict: AucVerdict | null;
  margin?: number;
}

/**
 * Pairs two evaluations of the same films by file name and compares them (A the baseline, B
 * the candidate). Both must hold exactly the same films with the same labels: a comparison
 * over different films is not paired, so that is E_BAD_ARGUMENT naming what differs.
 */
export function comparePairedFilms(a: readonly ScoredFilm[], b: readonly ScoredFilm[], margin?: number): PairedComparison {
  if (margin !== undefined && !(margin >= 0 && margin <= 1)) throw new CxrError('E_BAD_ARGUMENT', `margin must be between 0 and 1, got ${margin}`);
  const index = (rows: readonly ScoredFilm[], which: string) => {
    const m = new Map<string, ScoredFilm>();
    for (const r of rows) {
      if (m.has(r.file)) throw new CxrError('E_BAD_ARGUMENT', `${which} lists ${r.file} twice`);
      m.set(r.file, r);
    }
    return m;
  };
  const ia = index(a, 'the baseline');
  const ib = index(b, 'the candidate');
  const onlyA = [...ia.keys()].filter((f) => !ib.has(f));
  const onlyB = [...ib.keys()].filter((f) => !ia.has(f));
  if (onlyA.length || onlyB.length) {
    const name = (fs: string[]) => (fs.length ? `${fs.length} (e.g. ${fs[0]})` : '0');
    throw new CxrError('E_BAD_ARGUMENT', `not the same films: ${name(onlyA)} only in the baseline, ${name(onlyB)} only in the candidate`);
  }
  if (ia.size === 0) throw new CxrError('E_BAD_ARGUMENT', 'no films to compare');
  const files = [...ia.keys()].sort();
  for (const f of files) if (ia.get(f)!.label !== ib.get(f)!.label) throw new CxrError('E_BAD_ARGUMENT', `${f} is labelled differently in the two evaluations`);
  const labels = files.map((f) => ia.get(f)!.label);
  const auc = pairedAucDelong(
    labels,
    files.map((f) => ia.get(f)!.probability),
    files.map((f) => ib.get(f)!.probability),
  );
  const decided = files.every((f) => ia.get(f)!.decision && ib.get(f)!.decision);
  const rate = (label: number) => {
    const fs = files.filter((f) => ia.get(f)!.label === label);
    const right = (r: ScoredFilm) => (r.decision === 'positive') === (label === 1);
    return pairedRate(
      fs.map((f) => right(ia.get(f)!)),
      fs.map((f) => right(ib.get(f)!)),
    );
  };
  return {
    films: files.length,
    auc,
    recall: decided ? rate(1) : null,
    specificity: decided ? rate(0) : null,
    verdict: auc ? aucVerdict(auc, margin) : null,
    ...(margin !== undefined ? { margin } : {}),
  };
}
