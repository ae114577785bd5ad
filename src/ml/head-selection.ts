/**
 * How refit-head chooses among heads fitted with different L2 strengths, on validation only.
 * 'auc' ranks them by the mean of the per-set AUCs. 'specificity' ranks them by what the
 * service is judged on: the mean over sets of the specificity each set reaches at its own
 * threshold for the target recall (one threshold per population is what the engine applies),
 * the mean AUC breaking ties. AUC rewards ranking everywhere, but only the high-recall end of
 * the curve is ever used.
 */
import { CxrError } from '../errors.js';
import { calibrateThreshold, rocAuc } from './metrics.js';

export const HEAD_SELECTIONS = ['auc', 'specificity'] as const;
export type HeadSelection = (typeof HEAD_SELECTIONS)[number];

export function parseHeadSelection(v: string): HeadSelection {
  const s = HEAD_SELECTIONS.find((x) => x === v);
  if (!s) throw new CxrError('E_BAD_ARGUMENT', `--select must be one of ${HEAD_SELECTIONS.join(', ')}, got '${v}'`);
  return s;
}

/** One set's served validation probabilities. */
export interface SetScores {
  probabilities: readonly number[];
  labels: readonly number[];
}

export interface SelectionScore {
  /** what is maximised: the mean AUC, or the mean specificity at the target recall */
  score: number;
  meanAuc: number;
  meanSpecificity: number;
  perSet: Record<string, { auc: number | null; specificity: number | null; threshold: number | null }>;
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Scores one head's validation probabilities; sets without both labels add nothing to a mean. */
export function selectionScore(sets: Readonly<Record<string, SetScores>>, by: HeadSelection, targetRecall: number): SelectionScore {
  const perSet: SelectionScore['perSet'] = {};
  for (const [name, s] of Object.entries(sets)) {
    const hasPositive = s.labels.some((l) => l >= 0.5);
    const cal = hasPositive ? calibrateThreshold(s.probabilities, s.labels, targetRecall) : null;
    perSet[name] = { auc: rocAuc(s.probabilities, s.labels), specificity: cal?.specificity ?? null, threshold: cal?.threshold ?? null };
  }
  const values = Object.values(perSet);
  const meanAuc = mean(values.flatMap((v) => (v.auc == null ? [] : [v.auc])));
  const meanSpecificity = mean(values.flatMap((v) => (v.specificity == null ? [] : [v.specificity])));
  return { score: by === 'auc' ? meanAuc : meanSpecificity, meanAuc, meanSpecificity, perSet };
}

/** True when `a` ranks above `b`: a higher score, or the same score and a higher mean AUC. */
export function ranksAbove(a: SelectionScore, b: SelectionScore): boolean {
  return a.score > b.score || (a.score === b.score && a.meanAuc > b.meanAuc);
}
