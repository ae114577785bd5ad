import { resolve } from 'node:path';
import { readSplitFile, type SplitName } from '../data/split.js';
import { CxrError } from '../errors.js';
import { itemsInSubset, recalibratedThreshold } from '../ml/calibrate.js';
import { readManifest, writeManifest, type ModelManifest } from '../ml/manifest.js';
import { calibrateThreshold, type Calibration } from '../ml/metrics.js';
import { loadEvalItems } from '../ml/train/dataset-source.js';
import type { EngineOptions } from '../inference/engine.js';
import { scoreItems } from './score-items.js';

export interface RecalibrateOptions {
  dataDir: string;
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
}

/**
 * Re-picks a classifier's threshold on the probabilities the served pipeline (ONNX Runtime,
 * TTA views, the segmenter's crops) gives for one subset of a training split, and writes it
 * into the manifest with a record of how (`threshold.calibratedOn`). `calibrate` runs it on
 * a shipped version; `train` runs it on the version it has just exported.
 */
export async function recalibrate(o: RecalibrateOptions): Promise<RecalibrateResult> {
  const splitPath = resolve(o.splitPath);
  const split = await readSplitFile(splitPath);
  const items = itemsInSubset(await loadEvalItems(resolve(o.dataDir), { window: o.window }), split, o.subset);
  if (items.length === 0) throw new CxrError('E_BAD_DATASET', `${o.splitPath} assigns no images to '${o.subset}'`);
  if (!items.some((i) => i.label >= 0.5)) throw new CxrError('E_BAD_DATASET', `the ${o.subset} images hold no pneumonia case: recall is undefined there`);
  const result = await scoreItems(
    items,
    // manifest.threshold belongs to model.onnx; the int8 model's own is picked by `quantize`
    { ...o.engine, classifierDir: o.classifierDir, tta: o.views, precision: { classifier: 'float' } },
    { task: 'calibrate', verb: 'scoring', what: `${o.subset} images` },
  );
  const calibration = calibrateThreshold(
    result.images.map((i) => i.probability),
    result.images.map((i) => i.label),
    o.targetRecall,
  );
  const { files: _files, ...manifest } = await readManifest(o.classifierDir);
  if (!o.dryRun) {
    const threshold = recalibratedThreshold(calibration, {
      views: o.views,
      scorer: 'onnxruntime',
      subset: o.subset,
      n: items.length,
      split: splitPath,
      at: new Date().toISOString(),
    });
    // writeManifest re-hashes the folder, so the served model still passes assertManifest
    await writeManifest(o.classifierDir, { ...manifest, threshold });
  }
  return { version: manifest.version, calibration, previous: manifest.threshold, recallAtPrevious: result.recall, n: items.length };
}
