import { dirname, resolve } from 'node:path';
import type { SplitName } from '../data/split.js';
import { CxrError } from '../errors.js';
import { loadSplitItems, recalibratedThreshold } from '../ml/calibrate.js';
import { deriveVersion, portablePath, readManifest, writeManifest, type CalibrationInfo, type ModelManifest } from '../ml/model-store/index.js';
import { driftReference } from '../ml/drift-reference.js';
import { calibrateThreshold, type Calibration } from '../ml/metrics.js';
import { applyCalibration, calibrationReport, fitCalibration, type CalibrationMethod } from '../ml/probability-calibration.js';
import type { EngineOptions } from '../inference/engine.js';
import { scoreItems } from './score-items.js';

export interface RecalibrateOptions {
  /** dataset folder(s) the split's rows come from */
  dataDir: string | readonly string[];
  /** split CSV as train writes it */
  splitPath: string;
  subset: SplitName;
  /** the classifier version folder scored */
  classifierDir: string;
  engine: Omit<EngineOptions, 'onWarning' | 'classifierDir'>;
  targetRecall: number;
  views: number;
  window?: string;
  /**
   * What becomes of the new threshold: 'derive' writes a new version beside the scored one
   * (which stays untouched: published versions are immutable), 'in-place' rewrites the folder's
   * manifest (only for a version still being built, e.g. by train in its staging folder),
   * 'none' only reports.
   */
  write: 'derive' | 'in-place' | 'none';
  /** with 'derive': the new version's name (default the next -rN revision) */
  version?: string;
  /** probability calibration fitted on the same images before the threshold is picked (default platt; none removes it) */
  fit?: CalibrationMethod | 'none';
}

export interface RecalibrateResult {
  /** the scored classifier's version name */
  version: string;
  /** the folder holding the new threshold (the derived version, or the scored one in place); null when nothing was written */
  written: { dir: string; version: string } | null;
  calibration: Calibration;
  /** the threshold block before */
  previous: ModelManifest['threshold'];
  /** the threshold block written (or that would be) */
  threshold: NonNullable<ModelManifest['threshold']>;
  /** recall on the subset at the previous threshold */
  recallAtPrevious: number | null;
  n: number;
  /** the probability calibration fitted (null with fit 'none') */
  probabilityCalibration: CalibrationInfo | null;
}

/**
 * Re-picks a classifier's threshold on the probabilities the served pipeline (ONNX Runtime,
 * TTA views, the segmenter's crops) gives for one subset of a training split, with a record of
 * how (`threshold.calibratedOn`). `calibrate` derives a new version from a published one;
 * `train` runs it in place on the version it is still building.
 */
export async function recalibrate(o: RecalibrateOptions): Promise<RecalibrateResult> {
  const splitPath = resolve(o.splitPath);
  const classifierDir = resolve(o.classifierDir);
  const dirs = (typeof o.dataDir === 'string' ? [o.dataDir] : o.dataDir).map((d) => resolve(d));
  const items = await loadSplitItems(dirs, splitPath, o.subset, { window: o.window });
  if (items.length === 0) throw new CxrError('E_BAD_DATASET', `${o.splitPath} assigns no images to '${o.subset}'`);
  if (!items.some((i) => i.label >= 0.5)) throw new CxrError('E_BAD_DATASET', `the ${o.subset} images hold no pneumonia case: recall is undefined there`);
  // manifest.threshold belongs to model.onnx; the int8 model's own is picked by `quantize`
  const engine = { ...o.engine, classifierDir, tta: o.views, precision: { classifier: 'float' as const } };
  const result = await scoreItems(items, engine, { task: 'calibrate', verb: 'scoring', what: `${o.subset} images` });
  const labels = result.images.map((i) => i.label);
  // fitted on the uncalibrated probabilities, whatever calibration the version had before
  const raw = result.images.map((i) => i.rawProbability ?? i.probability);
  const at = new Date().toISOString();
  // the split usually sits in the version folder (and is copied into a derived one)
  const splitRef = portablePath(splitPath, { version: classifierDir, models: dirname(dirname(classifierDir)) });
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
  const { files: _files, calibration: _previousCalibration, ...manifest } = await readManifest(classifierDir);
  const threshold = recalibratedThreshold(calibration, { views: o.views, scorer: 'onnxruntime', subset: o.subset, n: items.length, split: splitRef, at });
  const withCalibration = {
    ...(probabilityCalibration ? { calibration: probabilityCalibration } : {}),
    drift: driftReference(
      o.subset,
      probabilities,
      result.images.map((i) => i.lungAreaFraction),
    ),
  };
  let written: RecalibrateResult['written'] = null;
  if (o.write === 'in-place') {
    // writeManifest re-hashes the folder, so the served model still passes assertManifest
    await writeManifest(classifierDir, { ...manifest, threshold, ...withCalibration });
    written = { dir: classifierDir, version: manifest.version };
  } else if (o.write === 'derive') {
    const derived = await deriveVersion(classifierDir, {
      version: o.version,
      reason: 'calibrate',
      change: async (_dir, m) => {
        const { calibration: _old, ...rest } = m;
        return { ...rest, threshold, ...withCalibration };
      },
    });
    written = { dir: derived.dir, version: derived.manifest.version };
  }
  return {
    version: manifest.version,
    written,
    calibration,
    previous: manifest.threshold,
    threshold,
    recallAtPrevious: result.recall,
    n: items.length,
    probabilityCalibration,
  };
}
