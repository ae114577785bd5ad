import { basename, relative, resolve } from 'node:path';
import type { SplitName } from '../data/split.js';
import { CxrError } from '../errors.js';
import { loadSplitItems, recalibratedThreshold } from '../ml/calibrate.js';
import { readManifest, writeManifest, type CalibrationInfo, type ModelManifest } from '../ml/manifest.js';
import { applyCalibration, calibrationReport, fitCalibration, type CalibrationMethod } from '../ml/probability-calibration.js';
import { calibrateThreshold, type Calibration } from '../ml/metrics.js';
import type { EngineOptions } from '../inference/engine.js';
import { scoreItems } from './score-items.js';

export interface RecalibrateOptions {
  /** dataset folder(s) the split's rows come from */
  dataDir: string | readonly string[];
  /** split CSV as train writes it */
  splitPath: string;
  subset: SplitName;
  /** the classifier version folder scored and rewritten */
  classifierDir: string;
  engine: Omit<EngineOptions, 'onWarning' | 'classifierDir'>;
  targetRecall: number;
  views: number;
  window?: string;
  /** score and report, but leave the manifest as it is */
  dryRun?: boolean;
  /** probability calibration fitted on the same images before the threshold is picked (default platt; none removes it) */
  fit?: CalibrationMethod | 'none';
}

export interface RecalibrateResult {
  /** the classifier's version name */
  version: string;
  calibration: Calibration;
  /** the threshold block before */
  previous: ModelManifest['threshold'];
  /** recall on the subset at the previous threshold */
  recallAtPrevious: number | null;
  n: number;
  /** the probability calibration fitted (null with fit 'none') */
  probabilityCalibration: CalibrationInfo | null;
}

/** Where a split file is, as the manifest records it: its name when it sits in the version folder, else relative to the working directory (never an absolute path). */
function splitReference(splitPath: string, classifierDir: string): string {
  const inside = relative(resolve(classifierDir), splitPath);
  return inside === basename(splitPath) ? inside : relative(process.cwd(), splitPath);
}

/**
 * Re-picks a classifier's threshold on the probabilities the served pipeline (ONNX Runtime,
 * TTA views, the segmenter's crops) gives for one subset of a training split, and writes it
 * into the manifest with a record of how (`threshold.calibratedOn`). `calibrate` runs it on
 * a shipped version; `train` runs it on the version it has just exported.
 */
export async function recalibrate(o: RecalibrateOptions): Promise<RecalibrateResult> {
  const splitPath = resolve(o.splitPath);
  const dirs = (typeof o.dataDir === 'string' ? [o.dataDir] : o.dataDir).map((d) => resolve(d));
  const items = await loadSplitItems(dirs, splitPath, o.subset, { window: o.window });
  if (items.length === 0) throw new CxrError('E_BAD_DATASET', `${o.splitPath} assigns no images to '${o.subset}'`);
  if (!items.some((i) => i.label >= 0.5)) throw new CxrError('E_BAD_DATASET', `the ${o.subset} images hold no pneumonia case: recall is undefined there`);
  const result = await scoreItems(
    items,
    { ...o.engine, classifierDir: o.classifierDir, tta: o.views },
    { task: 'calibrate', verb: 'scoring', what: `${o.subset} images` },
  );
  const labels = result.images.map((i) => i.label);
  // fitted on the uncalibrated probabilities, whatever calibration the version had before
  const raw = result.images.map((i) => i.rawProbability ?? i.probability);
  const at = new Date().toISOString();
  const splitRef = splitReference(splitPath, o.classifierDir);
  const method = o.fit ?? 'platt';
  let probabilityCalibration: CalibrationInfo | null = null;
  let probabilities = raw;
  if (method !== 'none') {
    const fitted = fitCalibration(raw, labels, method);
    probabilities = raw.map((p) => applyCalibration(fitted, p));
    probabilityCalibration = {
      ...fitted,
      fittedOn: { views: o.views, subset: o.subset, n: items.length, split: splitRef, at },
      eceBefore: calibrationReport(raw, labels).ece,
      eceAfter: calibrationReport(probabilities, labels).ece,
    };
  }
  // the threshold is picked on what the engine will compare with it: the calibrated probability
  const calibration = calibrateThreshold(probabilities, labels, o.targetRecall);
  const { files: _files, calibration: _previousCalibration, ...manifest } = await readManifest(o.classifierDir);
  if (!o.dryRun) {
    const threshold = recalibratedThreshold(calibration, { views: o.views, scorer: 'onnxruntime', subset: o.subset, n: items.length, split: splitRef, at });
    // writeManifest re-hashes the folder, so the served model still passes assertManifest
    await writeManifest(o.classifierDir, { ...manifest, threshold, ...(probabilityCalibration ? { calibration: probabilityCalibration } : {}) });
  }
  return {
    version: manifest.version,
    calibration,
    previous: manifest.threshold,
    recallAtPrevious: result.recall,
    n: items.length,
    probabilityCalibration,
  };
}
