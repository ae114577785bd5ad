/**
 * Cross-fitting for choices made on few films. A set of 55 adult validation films decides a
 * head's L2 strength by one or two films at the high-recall end; the 352 adult train films
 * can vote too if each is scored by a head that never saw it: split the train patients into
 * k folds, fit on k-1, score the one left out. Those out-of-fold probabilities join the
 * validation ones for choosing; thresholds and calibration stay on validation only.
 */
import { rngFor } from '../data/rng.js';
import { CxrError } from '../errors.js';

export interface FoldMember {
  patient: string;
  /** the dataset the row belongs to: each fold gets its share of every group's patients */
  group: string;
}

/**
 * A fold in [0, k) for each row. Whole patients go to one fold (a patient's films never sit on
 * both sides of a fit), and each group's patients are dealt round-robin in a seeded order, so
 * every fold holds about 1/k of every group: a small set is not left out of a fit entirely.
 */
export function patientFolds(rows: readonly FoldMember[], k: number, seed: number): number[] {
  if (!Number.isInteger(k) || k < 2) throw new CxrError('E_BAD_ARGUMENT', `cross-fitting needs at least 2 folds, got ${k}`);
  const fold = new Map<string, number>();
  let dealt = 0;
  for (const group of [...new Set(rows.map((r) => r.group))].sort()) {
    const patients = [...new Set(rows.filter((r) => r.group === group).map((r) => r.patient))].sort();
    if (patients.length < k)
      throw new CxrError('E_BAD_ARGUMENT', `${k} folds need at least ${k} patients in every set; ${group} has ${patients.length} in train`);
    // continuing the count across groups spreads the remainders over different folds
    for (const p of rngFor(['cross-fit', seed, group]).shuffle(patients)) fold.set(`${group}\u0000${p}`, dealt++ % k);
  }
  return rows.map((r) => fold.get(`${r.group}\u0000${r.patient}`)!);
}

/**
 * Out-of-fold scores: for each fold, `fit` on the rows outside it and `score` the rows inside
 * it with that fit. Every row is scored exactly once, by a model that did not see it.
 */
export async function outOfFold<R, M>(
  rows: readonly R[],
  folds: readonly number[],
  fit: (rows: R[]) => Promise<M>,
  score: (model: M, row: R) => number,
  /** called after each fold is scored, with the folds done and their number */
  onFold?: (done: number, total: number) => void,
): Promise<number[]> {
  if (folds.length !== rows.length) throw new CxrError('E_BAD_ARGUMENT', `${rows.length} rows but ${folds.length} fold labels`);
  const out = new Array<number>(rows.length).fill(Number.NaN);
  const ks = [...new Set(folds)].sort((a, b) => a - b);
  for (const [done, k] of ks.entries()) {
    const model = await fit(rows.filter((_, i) => folds[i] !== k));
    rows.forEach((r, i) => {
      if (folds[i] === k) out[i] = score(model, r);
    });
    onFold?.(done + 1, ks.length);
  }
  return out;
}
