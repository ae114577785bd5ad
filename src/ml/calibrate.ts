/**
 * Recalibrating a shipped classifier's threshold on the probabilities the served pipeline
 * produces (TTA-averaged ONNX Runtime), not the single-view ones training saw: the two differ,
 * and a threshold picked on one does not hold its recall on the other.
 */
import { datasetName } from '../data/multi-dataset.js';
import { readSplitFile, type DatasetSplit, type SplitName } from '../data/split.js';
import { CxrError } from '../errors.js';
import type { EvalItem } from './evaluate.js';
import { isPopulation, POPULATIONS, type CalibrationInfo, type Population, type PopulationThreshold, type ThresholdInfo } from './model-store/index.js';
import {
  applyCalibration,
  calibrationReport,
  fitCalibration,
  uncalibrate,
  type CalibrationMethod,
  type ProbabilityCalibration,
} from './probability-calibration.js';
import { calibrateThreshold, type Calibration } from './metrics.js';
import { loadEvalItems } from './train/dataset-source.js';

/** The items the split assigns to `subset`, in dataset order; every file the split lists there must be in the dataset. */
export function itemsInSubset<T extends Pick<EvalItem, 'id'>>(items: readonly T[], split: DatasetSplit, subset: SplitName, sets?: ReadonlySet<string>): T[] {
  // a pool's split, read with only some of its folders: the rows of those sets
  const wanted = new Set(sets ? split.assignments.filter((a) => a.split === subset && sets.has(a.dataset ?? '')).map((a) => a.file) : split[subset]);
  const present = new Set(items.map((i) => i.id));
  const missing = [...wanted].filter((f) => !present.has(f));
  if (missing.length > 0) {
    const shown = missing.slice(0, 3).join(', ') + (missing.length > 3 ? `, … (${missing.length} in all)` : '');
    throw new CxrError('E_BAD_DATASET', `the split's ${subset} files are not all in the dataset folder: ${shown}`);
  }
  return items.filter((i) => wanted.has(i.id));
}

/**
 * The images of one or several dataset folders that a split file assigns to `subset`. A
 * pool's split (with a `dataset` column) may be read with any of its folders: the rows of
 * the sets given are kept, so `--data adult --split pool.csv` scores the adult rows only.
 */
export async function loadSplitItems(dataDirs: readonly string[], splitPath: string, subset: SplitName, opts: { window?: string } = {}): Promise<EvalItem[]> {
  const split = await readSplitFile(splitPath);
  const pooled = split.assignments.some((a) => a.dataset !== undefined);
  const items = await loadEvalItems(dataDirs, { window: opts.window, pooled });
  if (!pooled) return itemsInSubset(items, split, subset);
  const names = new Set(dataDirs.map(datasetName));
  const known = new Set(split.assignments.map((a) => a.dataset ?? ''));
  const unknown = [...names].filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new CxrError('E_BAD_DATASET', `${splitPath} names no images of ${unknown.join(', ')} (its sets: ${[...known].join(', ')})`);
  }
  return itemsInSubset(items, split, subset, names);
}

/** The set a split item belongs to: its pool set, or the one folder's name when the items came from one folder; '' otherwise. */
export function splitItemSet(item: Pick<EvalItem, 'source'>, dataDirs: readonly string[]): string {
  return item.source || (dataDirs.length === 1 ? datasetName(dataDirs[0]) : '');
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

/** One scored row for per-population picking: its dataset folder name, label (1 pneumonia) and served probability. */
export interface PopulationRow {
  dataset: string;
  label: number;
  probability: number;
}

/**
 * `SET=POP` pairs (calibrate --population) as a map from dataset folder name to population;
 * a set named twice, or an unknown population, is an input error.
 */
export function parsePopulationMap(pairs: readonly string[]): Map<string, Population> {
  const out = new Map<string, Population>();
  for (const pair of pairs) {
    const m = /^([^=]+)=([^=]+)$/.exec(pair.trim());
    const pop = m?.[2].trim().toLowerCase();
    if (!m || !isPopulation(pop!)) {
      throw new CxrError('E_BAD_ARGUMENT', `--population must be SET=${POPULATIONS.join('|')}, got '${pair}'`);
    }
    const set = m[1].trim();
    if (out.has(set)) throw new CxrError('E_BAD_ARGUMENT', `--population names ${set} twice`);
    out.set(set, pop as Population);
  }
  return out;
}

/**
 * One threshold per population, each picked by calibrateThreshold (the highest threshold keeping
 * the target recall) on the rows of that population's sets only, with the few-positives warning,
 * and the population's own calibration (`calibrations`, the scale its rows' probabilities are on)
 * when it has one. Every row's set must be mapped: a row silently left out would be a population
 * mis-measured.
 */
export function populationThresholds(
  rows: readonly PopulationRow[],
  map: ReadonlyMap<string, Population>,
  targetRecall: number,
  calibrations: Partial<Record<Population, CalibrationInfo>> = {},
): Partial<Record<Population, PopulationThreshold>> {
  const unmapped = [...new Set(rows.map((r) => r.dataset).filter((d) => !map.has(d)))];
  if (unmapped.length) throw new CxrError('E_BAD_ARGUMENT', `no --population for set(s) ${unmapped.join(', ')}`);
  const out: Partial<Record<Population, PopulationThreshold>> = {};
  for (const pop of POPULATIONS) {
    const datasets = [...map].filter(([, p]) => p === pop).map(([d]) => d);
    const mine = rows.filter((r) => map.get(r.dataset) === pop);
    if (datasets.length === 0) continue;
    if (mine.length === 0) throw new CxrError('E_BAD_DATASET', `no scored rows of ${datasets.join(', ')} (population ${pop})`);
    const labels = mine.map((r) => r.label);
    if (!labels.some((l) => l >= 0.5)) throw new CxrError('E_BAD_DATASET', `the ${pop} rows hold no pneumonia case: recall is undefined there`);
    const cal = calibrateThreshold(
      mine.map((r) => r.probability),
      labels,
      targetRecall,
    );
    const positives = cal.confusion.tp + cal.confusion.fn;
    const warning = fewPositivesWarning(positives);
    out[pop] = {
      value: cal.threshold,
      validationSensitivity: cal.sensitivity,
      validationSpecificity: cal.specificity,
      n: mine.length,
      positives,
      datasets,
      ...(warning ? { warnings: [warning] } : {}),
      ...(calibrations[pop] ? { calibration: calibrations[pop] } : {}),
    };
  }
  return out;
}

/** A probability calibration fitted on raw probabilities, recorded as a manifest holds it, with the probabilities it gives. */
export function fitCalibrationInfo(
  raw: readonly number[],
  labels: readonly number[],
  method: CalibrationMethod,
  fittedOn: CalibrationInfo['fittedOn'],
): { info: CalibrationInfo; calibrated: number[] } {
  const fitted = fitCalibration(raw, labels, method);
  const calibrated = raw.map((p) => applyCalibration(fitted, p));
  return {
    info: { ...fitted, fittedOn, eceBefore: calibrationReport(raw, labels).ece, eceAfter: calibrationReport(calibrated, labels).ece },
    calibrated,
  };
}

/**
 * The population whose threshold a study of unknown age gets: the most sensitive one, i.e. the
 * lowest threshold once each is taken back to the raw probability it stands for (its own
 * calibration, else `calibration`, the one its model applies). Null without populations.
 */
export function mostSensitivePopulation(
  t: Pick<ThresholdInfo, 'populations'>,
  calibration: ProbabilityCalibration | null,
): [Population, PopulationThreshold] | null {
  const pops = Object.entries(t.populations ?? {}).filter((e): e is [Population, PopulationThreshold] => e[1] != null);
  if (pops.length === 0) return null;
  const raw = (p: PopulationThreshold) => uncalibrate(p.calibration ?? calibration, p.value);
  return pops.reduce((a, b) => (raw(b[1]) < raw(a[1]) ? b : a));
}

/**
 * Calibrations fitted on saved raw probabilities: one on every row (the version's), and one per
 * population on its rows alone (rows of no population keep the version's), with the probability
 * each row is then decided on.
 */
export function fitPopulationCalibrations(
  raw: readonly number[],
  labels: readonly number[],
  populationOf: readonly (Population | undefined)[],
  method: CalibrationMethod,
  fittedOn: (n: number) => CalibrationInfo['fittedOn'],
): { pooled: { info: CalibrationInfo; calibrated: number[] }; populations: Partial<Record<Population, CalibrationInfo>>; rowProbabilities: number[] } {
  const pooled = fitCalibrationInfo(raw, labels, method, fittedOn(raw.length));
  const populations: Partial<Record<Population, CalibrationInfo>> = {};
  const rowProbabilities = [...pooled.calibrated];
  for (const pop of POPULATIONS) {
    const mine = populationOf.flatMap((p, i) => (p === pop ? [i] : []));
    if (mine.length === 0) continue;
    const own = fitCalibrationInfo(
      mine.map((i) => raw[i]),
      mine.map((i) => labels[i]),
      method,
      fittedOn(mine.length),
    );
    populations[pop] = own.info;
    mine.forEach((i, k) => {
      rowProbabilities[i] = own.calibrated[k];
    });
  }
  return { pooled, populations, rowProbabilities };
}
