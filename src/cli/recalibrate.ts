import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { SplitName } from '../data/split.js';
import { CxrError } from '../errors.js';
import {
  fitCalibrationInfo,
  fitPopulationCalibrations,
  loadSplitItems,
  populationThresholds,
  recalibratedThreshold,
  splitItemSet,
  type PopulationRow,
} from '../ml/calibrate.js';
import { readPerImageCsv } from '../ml/evaluation-files.js';
import {
  deriveVersion,
  portablePath,
  readManifest,
  servedCalibration,
  writeManifest,
  type CalibrationInfo,
  type ModelManifest,
  type Population,
  type ThresholdInfo,
} from '../ml/model-store/index.js';
import { driftReference } from '../ml/drift-reference.js';
import { uncertaintyBound } from '../ml/uncertainty-bound.js';
import { calibrateThreshold, type Calibration } from '../ml/metrics.js';
import type { CalibrationMethod } from '../ml/probability-calibration.js';
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
  /** dataset folder name -> population: also pick one threshold per population on its own sets' rows */
  populations?: ReadonlyMap<string, Population>;
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
  /** each scored image: its set, label and the pooled (calibrated) probability the threshold was picked on */
  rows: { dataset: string; label: number; probability: number }[];
}

/**
 * A population's own head (fit-population-head) was chosen together with its threshold and
 * calibration on out-of-fold train films and validation films; re-picking them here, on
 * validation alone and without the head, would drop it or leave it at a threshold not its own.
 */
function refuseOwnHeads(t: ThresholdInfo | null | undefined, where: string): void {
  const headed = Object.entries(t?.populations ?? {}).filter(([, p]) => p?.head);
  if (headed.length > 0)
    throw new CxrError(
      'E_BAD_ARGUMENT',
      `${where}: the ${headed.map(([k]) => k).join(' and ')} population has its own head (fit-population-head), picked with its threshold and calibration; ` +
        'calibrate the version it was derived from, then run fit-population-head again',
    );
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
  refuseOwnHeads((await readManifest(classifierDir)).threshold, o.classifierDir);
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
  // one folder's items carry no set name: the folder's is theirs
  const datasets = items.map((item) => splitItemSet(item, dirs));
  const fittedOn = (n: number) => ({ views: o.views, subset: o.subset, n, split: splitRef, at });
  let probabilityCalibration: CalibrationInfo | null = null;
  let populationCalibrations: Partial<Record<Population, CalibrationInfo>> = {};
  let probabilities = raw;
  // each row on the scale its population is decided on
  let rowProbabilities = raw;
  if (method !== 'none') {
    if (o.populations?.size) {
      // the version's, and one per population, as calibrate --scores fits them: one fit for
      // adults and children pulls one of them the wrong way
      const fitted = fitPopulationCalibrations(
        raw,
        labels,
        datasets.map((d) => o.populations!.get(d)),
        method,
        fittedOn,
      );
      probabilities = fitted.pooled.calibrated;
      probabilityCalibration = fitted.pooled.info;
      populationCalibrations = fitted.populations;
      rowProbabilities = fitted.rowProbabilities;
    } else {
      const fitted = fitCalibrationInfo(raw, labels, method, fittedOn(items.length));
      probabilities = rowProbabilities = fitted.calibrated;
      probabilityCalibration = fitted.info;
    }
  }
  // the threshold is picked on what the engine will compare with it: the calibrated probability
  const calibration = calibrateThreshold(probabilities, labels, o.targetRecall);
  const { files: _files, calibration: _previousCalibration, ...manifest } = await readManifest(classifierDir);
  const uncertainty = uncertaintyBound(result.images.map((i) => i.spread ?? Number.NaN));
  const pooled = {
    ...recalibratedThreshold(calibration, { views: o.views, scorer: 'onnxruntime', subset: o.subset, n: items.length, split: splitRef, at }),
    ...(uncertainty ? { uncertainty } : {}),
  };
  const threshold = o.populations?.size
    ? {
        ...pooled,
        populations: populationThresholds(
          result.images.map((img, i) => ({ dataset: datasets[i], label: img.label, probability: rowProbabilities[i] })),
          o.populations,
          o.targetRecall,
          populationCalibrations,
        ),
      }
    : pooled;
  const withCalibration = {
    ...(probabilityCalibration ? { calibration: probabilityCalibration } : {}),
    // what the service stores for each study: its population's probability
    drift: driftReference(
      o.subset,
      rowProbabilities,
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
    rows: labels.map((label, i) => ({ dataset: datasets[i], label, probability: probabilities[i] })),
  };
}

export interface PopulationsFromScoresOptions {
  /** the classifier version the scores are of (stays untouched) */
  classifierDir: string;
  /** per-image CSVs of that version's evaluations (evaluate --save / --per-image) on the subset */
  scores: readonly string[];
  populations: ReadonlyMap<string, Population>;
  targetRecall: number;
  /** which threshold block the scores belong to: the precision they were served at */
  precision: 'float' | 'int8';
  /** what the scores are, for calibratedOn (e.g. 'validation') */
  subset: string;
  write: 'derive' | 'none';
  version?: string;
  /**
   * Fit that precision's probability calibration on the saved raw probabilities first, and pick
   * every threshold (pooled and per population) on the calibrated ones; 'none' removes it;
   * absent keeps the calibration the version has, and its pooled value.
   */
  fit?: CalibrationMethod | 'none';
}

function withoutWarnings(t: ThresholdInfo): ThresholdInfo {
  const { warnings: _w, ...rest } = t;
  return rest;
}

/** A per-image CSV row's set: the first folder of its path in a pool ('nih-cxr8-pneumonia/images/x.png'). */
export function rowDataset(file: string): string {
  const parts = file.split('/');
  return parts.length > 2 ? parts[0] : '';
}

/**
 * Per-population thresholds picked on probabilities already served and saved (evaluate's
 * per-image CSVs), without scoring again: for an int8 version the block written is the int8
 * model's own (quantization.threshold), as the engine reads it for that precision. Without
 * `fit` the pooled `value` and the probability calibration are kept; with it, that precision's
 * calibration is fitted on the saved raw probabilities (int8: quantization.probabilityCalibration)
 * and the pooled value is picked again with the populations. The uncertainty bound is set anew
 * when the CSVs carry every image's TTA spread.
 */
export async function populationsFromScores(o: PopulationsFromScoresOptions): Promise<{
  version: string;
  written: { dir: string; version: string } | null;
  threshold: ThresholdInfo;
  n: number;
  /** the calibration fitted (null: removed; absent: kept as it was) */
  probabilityCalibration?: CalibrationInfo | null;
}> {
  const classifierDir = resolve(o.classifierDir);
  const manifest = await readManifest(classifierDir);
  for (const path of o.scores) await checkScoresSubset(resolve(path), o.subset);
  const saved = (await Promise.all(o.scores.map((path) => readPerImageCsv(resolve(path))))).flat();
  if (saved.length === 0) throw new CxrError('E_BAD_DATASET', `no rows in ${o.scores.join(', ')}`);
  const previous = o.precision === 'int8' ? manifest.quantization?.threshold : manifest.threshold;
  if (!previous) throw new CxrError('E_MODEL_INVALID', `${classifierDir} has no ${o.precision} threshold to add populations to`);
  refuseOwnHeads(previous, o.classifierDir);
  const labels = saved.map((r) => r.label);
  const at = new Date().toISOString();
  const views = previous.calibratedOn?.views ?? 4;
  const split = previous.calibratedOn?.split ?? 'split.csv';
  const datasets = saved.map((r) => rowDataset(r.file));
  let probabilities = saved.map((r) => r.probability);
  // undefined: kept as the version has them; null: removed
  let probabilityCalibration: CalibrationInfo | null | undefined;
  let populationCalibrations: Partial<Record<Population, CalibrationInfo>> | null | undefined;
  // each row on the scale its population is decided on
  let rowProbabilities = probabilities;
  if (o.fit !== undefined) {
    // a calibration is fitted on raw probabilities: a saved probability is raw only when no calibration was applied to it
    const applied = servedCalibration(manifest, o.precision) ?? Object.values(previous.populations ?? {}).find((p) => p?.calibration)?.calibration;
    const raw = saved.map((r) => r.rawProbability ?? (applied ? Number.NaN : r.probability));
    if (raw.some((p) => Number.isNaN(p)))
      throw new CxrError(
        'E_BAD_DATASET',
        `the scores have no raw_probability column and the ${o.precision} model applies a calibration: evaluate --save again`,
      );
    if (o.fit === 'none') {
      probabilities = rowProbabilities = raw;
      probabilityCalibration = populationCalibrations = null;
    } else {
      // the version's, and one per population: one fit for adults and children pulls one of them the wrong way
      const fitted = fitPopulationCalibrations(
        raw,
        labels,
        datasets.map((d) => o.populations.get(d)),
        o.fit,
        (n) => ({ views, subset: o.subset, n, split, at }),
      );
      probabilities = fitted.pooled.calibrated;
      probabilityCalibration = fitted.pooled.info;
      populationCalibrations = fitted.populations;
      rowProbabilities = fitted.rowProbabilities;
    }
  }
  const rows: PopulationRow[] = saved.map((r, i) => ({ dataset: datasets[i], label: r.label, probability: rowProbabilities[i] }));
  const spreads = saved.map((r) => r.spread ?? Number.NaN);
  const models = dirname(dirname(classifierDir));
  // a new calibration moves every probability, so the pooled value is picked again on them
  const pooled =
    probabilityCalibration === undefined
      ? previous
      : {
          // the warnings belonged to the previous pick
          ...withoutWarnings(previous),
          ...recalibratedThreshold(calibrateThreshold(probabilities, labels, o.targetRecall), {
            views,
            scorer: previous.calibratedOn?.scorer ?? `onnxruntime ${o.precision}`,
            subset: o.subset,
            n: saved.length,
            split,
            at,
          }),
        };
  // each population on its own calibration: the one just fitted, else (no --fit) the one it had
  const calibrations =
    populationCalibrations === undefined
      ? Object.fromEntries(Object.entries(previous.populations ?? {}).flatMap(([k, p]) => (p?.calibration ? [[k, p.calibration]] : [])))
      : (populationCalibrations ?? {});
  const threshold: ThresholdInfo = {
    ...pooled,
    populations: populationThresholds(rows, o.populations, o.targetRecall, calibrations),
  };
  // scores saved with their TTA spreads (evaluate since 2026-12-02) also set the uncertainty bound
  const uncertainty = uncertaintyBound(spreads);
  if (uncertainty) threshold.uncertainty = uncertainty;
  const pickedOn = { subset: o.subset, precision: o.precision, scores: o.scores.map((s) => portablePath(resolve(s), { models })) };
  threshold.populations = Object.fromEntries(Object.entries(threshold.populations!).map(([k, p]) => [k, { ...p, pickedOn }]));
  let written: { dir: string; version: string } | null = null;
  if (o.write === 'derive') {
    const derived = await deriveVersion(classifierDir, {
      version: o.version,
      reason: 'calibrate --population',
      change: async (_dir, m) => {
        // the drift reference holds what the service stores for each study (its population's
        // probability) on the subset: the scores are that when they are of the served model
        const servedPrecision = m.quantization?.served ? 'int8' : 'float';
        if (servedPrecision === o.precision)
          m = {
            ...m,
            drift: {
              ...m.drift,
              ...driftReference(
                o.subset,
                rowProbabilities,
                saved.map((r) => r.lungAreaFraction),
              ),
            },
          };
        if (o.precision === 'int8') {
          const { probabilityCalibration: kept, ...q } = m.quantization!;
          const cal = probabilityCalibration === undefined ? kept : probabilityCalibration;
          return { ...m, quantization: { ...q, threshold, ...(cal ? { probabilityCalibration: cal } : {}) } };
        }
        const { calibration: kept, ...rest } = m;
        const cal = probabilityCalibration === undefined ? kept : probabilityCalibration;
        return { ...rest, threshold, ...(cal ? { calibration: cal } : {}) };
      },
    });
    written = { dir: derived.dir, version: derived.manifest.version };
  }
  return { version: manifest.version, written, threshold, n: rows.length, ...(probabilityCalibration !== undefined ? { probabilityCalibration } : {}) };
}

/**
 * Saved scores are an evaluation's per-image CSV; the summary.json beside it (evaluate --save)
 * says which subset it scored. A threshold is picked on validation films: scores of another
 * subset (the test films, above all) are refused rather than recorded as validation. A CSV with
 * no summary beside it (evaluate --per-image) cannot say, and is taken as the caller says.
 */
async function checkScoresSubset(path: string, subset: string): Promise<void> {
  const summaryPath = join(dirname(path), 'summary.json');
  if (!existsSync(summaryPath)) return;
  let scored: unknown;
  try {
    scored = (JSON.parse(await readFile(summaryPath, 'utf8')) as { subset?: unknown }).subset;
  } catch {
    return;
  }
  if (typeof scored === 'string' && scored !== subset)
    throw new CxrError(
      'E_BAD_ARGUMENT',
      `${path} scored the ${scored} films (${summaryPath}); thresholds are picked on ${subset} scores: pass that evaluation's per-image.csv`,
    );
}
