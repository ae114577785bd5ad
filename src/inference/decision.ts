import type { FlagReason, QcFlag } from './types.js';

export interface Decision {
  decision: 'positive' | 'negative';
  uncertain: boolean;
  flagged: boolean;
  flagReasons: FlagReason[];
}

/**
 * Positive at or above the calibrated threshold (the manifest's rule). A study is flagged
 * for a human when positive, when the TTA views disagree by more than `uncertainBound`,
 * or when any QC check failed: a triage system must not quietly clear what it could not read.
 */
export function decide(probability: number, threshold: number, spread: number, uncertainBound: number, qc: QcFlag[]): Decision {
  const positive = probability >= threshold;
  const uncertain = spread > uncertainBound;
  const flagReasons: FlagReason[] = [];
  if (positive) flagReasons.push('positive');
  if (uncertain) flagReasons.push('uncertain');
  for (const f of qc) flagReasons.push(`qc:${f}`);
  return { decision: positive ? 'positive' : 'negative', uncertain, flagged: flagReasons.length > 0, flagReasons };
}

/** Mean and sample standard deviation (n-1, as torch.std in the reference); spread 0 for one view. */
export function meanAndSpread(values: ArrayLike<number>): { mean: number; spread: number } {
  const n = values.length;
  if (n === 0) throw new RangeError('no values');
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  if (n === 1) return { mean, spread: 0 };
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  return { mean, spread: Math.sqrt(ss / (n - 1)) };
}
