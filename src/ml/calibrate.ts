/**
 * Recalibrating a shipped classifier's threshold on the probabilities the served pipeline
 * produces (TTA-averaged ONNX Runtime), not the single-view ones training saw: the two differ,
 * and a threshold picked on one does not hold its recall on the other.
 */
import type { DatasetSplit, SplitName } from '../data/split.js';
import { CxrError } from '../errors.js';
import type { EvalItem } from './evaluate.js';
import type { ThresholdInfo } from './model-store/index.js';
import type { Calibration } from './metrics.js';

/** The items the split assigns to `subset`, in dataset order; every file the split lists there must be in the dataset. */
export function itemsInSubset<T extends Pick<EvalItem, 'id'>>(items: readonly T[], split: DatasetSplit, subset: SplitName): T[] {
  const wanted = new Set(split[subset]);
  const present = new Set(items.map((i) => i.id));
  const missing = [...wanted].filter((f) => !present.has(f));
  if (missing.length > 0) {
    const shown = missing.slice(0, 3).join(', ') + (missing.length > 3 ? `, … (${missing.length} in all)` : '');
    throw new CxrError('E_BAD_DATASET', `the split's ${subset} files are not all in the dataset folder: ${shown}`);
  }
  return items.filter((i) => wanted.has(i.id));
}

/** Below this many positive images a threshold's recall is too uncertain to trust unremarked. */
export const MIN_CALIBRATION_POSITIVES = 20;

/** The warning a threshold picked on `positives` positive images carries, or null when there are enough. */
export function fewPositivesWarning(positives: number): string | null {
  return positives < MIN_CALIBRATION_POSITIVES
    ? `calibrated on ${positives} positive image${positives === 1 ? '' : 's'} (fewer than ${MIN_CALIBRATION_POSITIVES}): the recall it promises is uncertain`
    : null;
}

/** The manifest's threshold block after a calibration, with a record of what it was calibrated on. */
export function recalibratedThreshold(cal: Calibration, calibratedOn: NonNullable<ThresholdInfo['calibratedOn']>): ThresholdInfo {
  const positives = cal.confusion.tp + cal.confusion.fn;
  const warning = fewPositivesWarning(positives);
  return {
    value: cal.threshold,
    targetRecall: cal.targetRecall,
    validationSensitivity: cal.sensitivity,
    validationSpecificity: cal.specificity,
    calibratedOn: { ...calibratedOn, positives },
    ...(warning ? { warnings: [warning] } : {}),
  };
}
