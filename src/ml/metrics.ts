/**
 * Classification and segmentation metrics as pure functions over plain arrays. A sample is
 * called positive when its score is at or above the threshold (`score >= t`), everywhere:
 * calibration, evaluation and the inference decision use the same rule.
 */

export type Labels = ArrayLike<number>; // 1 = positive (pneumonia / lung), 0 = negative
export type Scores = ArrayLike<number>;

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface BinaryMetrics {
  accuracy: number | null;
  precision: number | null;
  recall: number | null;
  specificity: number | null;
  f1: number | null;
}

function checkLengths(scores: Scores, labels: Labels): void {
  if (scores.length !== labels.length) {
    throw new RangeError(`scores (${scores.length}) and labels (${labels.length}) differ in length`);
  }
}

function isPositive(label: number): boolean {
  return label >= 0.5;
}

export function confusionAt(scores: Scores, labels: Labels, threshold: number): Confusion {
  checkLengths(scores, labels);
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < scores.length; i++) {
    const predicted = scores[i] >= threshold;
    if (isPositive(labels[i])) predicted ? c.tp++ : c.fn++;
    else predicted ? c.fp++ : c.tn++;
  }
  return c;
}

/** A ratio whose denominator is zero is undefined and reported as null, not as 0 or 1. */
function ratio(num: number, den: number): number | null {
  return den === 0 ? null : num / den;
}

export function binaryMetrics(c: Confusion): BinaryMetrics {
  const precision = ratio(c.tp, c.tp + c.fp);
  const recall = ratio(c.tp, c.tp + c.fn);
  return {
    accuracy: ratio(c.tp + c.tn, c.tp + c.tn + c.fp + c.fn),
    precision,
    recall,
    specificity: ratio(c.tn, c.tn + c.fp),
    f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
  };
}

/**
 * Area under the ROC curve as the Mann-Whitney statistic: the probability that a random
 * positive scores above a random negative, ties counting one half. Null when only one
 * class is present (the area is undefined).
 */
export function rocAuc(scores: Scores, labels: Labels): number | null {
  checkLengths(scores, labels);
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let nPos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avgRank = (i + j) / 2 + 1; // 1-based average rank of the tie group
    for (let k = i; k <= j; k++) {
      if (isPositive(labels[idx[k]])) {
        nPos++;
        rankSumPos += avgRank;
      }
    }
    i = j + 1;
  }
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) return null;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface CurvePoint {
  threshold: number;
  fpr: number;
  tpr: number;
  precision: number | null;
  recall: number;
}

/**
 * Operating points at every distinct score used as the threshold, from the highest down,
 * preceded by the point at threshold +Infinity (nothing predicted positive).
 */
export function operatingPoints(scores: Scores, labels: Labels): CurvePoint[] {
  checkLengths(scores, labels);
  let P = 0;
  for (let i = 0; i < labels.length; i++) if (isPositive(labels[i])) P++;
  const N = labels.length - P;
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const pts: CurvePoint[] = [{ threshold: Infinity, fpr: 0, tpr: 0, precision: null, recall: 0 }];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < idx.length; ) {
    const t = scores[idx[i]];
    while (i < idx.length && scores[idx[i]] === t) {
      isPositive(labels[idx[i]]) ? tp++ : fp++;
      i++;
    }
    pts.push({
      threshold: t,
      fpr: N === 0 ? 0 : fp / N,
      tpr: P === 0 ? 0 : tp / P,
      precision: tp / (tp + fp),
      recall: P === 0 ? 0 : tp / P,
    });
  }
  return pts;
}

export interface Calibration {
  threshold: number;
  targetRecall: number;
  /** recall (sensitivity) and specificity on the calibration set at the chosen threshold */
  sensitivity: number;
  specificity: number | null;
  confusion: Confusion;
}

/**
 * The highest threshold whose recall is at least `targetRecall`: the k-th highest positive
 * score, k being the fewest positives that reach the target. Any higher threshold drops
 * that positive and falls below the target. Throws when there is no positive to calibrate on.
 */
export function calibrateThreshold(scores: Scores, labels: Labels, targetRecall = 0.95): Calibration {
  checkLengths(scores, labels);
  if (!(targetRecall > 0 && targetRecall <= 1)) throw new RangeError(`target recall must be in (0,1], got ${targetRecall}`);
  const pos: number[] = [];
  for (let i = 0; i < scores.length; i++) if (isPositive(labels[i])) pos.push(scores[i]);
  if (pos.length === 0) throw new RangeError('cannot calibrate a threshold without positive samples');
  pos.sort((a, b) => b - a);
  let k = Math.ceil(targetRecall * pos.length);
  // guard against float products such as 0.95 * 60 = 57.00000000000001
  while (k > 1 && (k - 1) / pos.length >= targetRecall) k--;
  const threshold = pos[k - 1];
  const confusion = confusionAt(scores, labels, threshold);
  const m = binaryMetrics(confusion);
  return { threshold, targetRecall, sensitivity: m.recall ?? 0, specificity: m.specificity, confusion };
}

/** Dice 2|A∩B|/(|A|+|B|) of two binary masks (values >= 0.5 are inside); two empty masks agree fully. */
export function dice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const { inter, sa, sb } = overlap(a, b);
  return sa + sb === 0 ? 1 : (2 * inter) / (sa + sb);
}

/** Intersection over union of two binary masks; two empty masks agree fully. */
export function iou(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const { inter, sa, sb } = overlap(a, b);
  const union = sa + sb - inter;
  return union === 0 ? 1 : inter / union;
}

function overlap(a: ArrayLike<number>, b: ArrayLike<number>): { inter: number; sa: number; sb: number } {
  if (a.length !== b.length) throw new RangeError(`masks differ in size: ${a.length} vs ${b.length}`);
  let inter = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] >= 0.5;
    const y = b[i] >= 0.5;
    if (x) sa++;
    if (y) sb++;
    if (x && y) inter++;
  }
  return { inter, sa, sb };
}

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** The classification summary `evaluate --json` prints and manifests store. */
export interface ClassificationReport extends BinaryMetrics {
  auc: number | null;
  threshold: number;
  confusion: Confusion;
  n: number;
}

export function classificationReport(scores: Scores, labels: Labels, threshold: number): ClassificationReport {
  const confusion = confusionAt(scores, labels, threshold);
  return { auc: rocAuc(scores, labels), ...binaryMetrics(confusion), threshold, confusion, n: scores.length };
}

/**
 * Average precision: sum over operating points of (recall step) x precision, the
 * step-wise area under the precision-recall curve (as scikit-learn computes it).
 * Null without positives.
 */
export function averagePrecision(scores: Scores, labels: Labels): number | null {
  const pts = operatingPoints(scores, labels);
  let P = 0;
  for (let i = 0; i < labels.length; i++) if (isPositive(labels[i])) P++;
  if (P === 0) return null;
  let ap = 0;
  for (let i = 1; i < pts.length; i++) ap += (pts[i].recall - pts[i - 1].recall) * (pts[i].precision ?? 0);
  return ap;
}
