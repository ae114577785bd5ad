import type { BinaryMask } from '../imaging/components.js';
import { resizeArea } from '../imaging/resize.js';
import type { GrayImage } from '../imaging/types.js';
import { bootstrapFigures } from './bootstrap.js';
import { calibrationReport, type CalibrationReport } from './probability-calibration.js';
import { calibrateThreshold, classificationReport, dice, iou, mean, type ClassificationReport } from './metrics.js';

/** What the pipeline says about one image: the classifier probability and the cleaned lung mask. */
export interface ScoredImage {
  probability: number;
  /** the probability before the version's calibration, when the scorer applies one */
  rawProbability?: number;
  /** lung mask at the segmenter's resolution, after clean-up (what the crop was taken from) */
  mask: BinaryMask;
  /** the lung area share the service records for QC and drift, when the scorer reports it */
  lungAreaFraction?: number;
  /** the TTA spread the engine compares with the uncertainty bound, when the scorer reports it */
  spread?: number;
  /**
   * The threshold this image is decided at when the scorer decides images at different ones
   * (each film at the population it was estimated as); absent: the scorer's `threshold`.
   */
  threshold?: number;
}

/**
 * The "score one image" step of evaluation. An interface because src/ml sits below
 * src/inference: `evaluate` plugs in the ONNX Runtime engine `analyze` and the service use
 * (src/inference/scorer.ts), so it reports the decisions they make.
 */
export interface ScoredModel {
  name: string;
  version: string;
  precision?: 'float' | 'int8';
}

export interface ImageScorer {
  readonly description: string;
  /** each model's version, and the precision it ran at where the scorer knows it (float or int8) */
  readonly models: { segmenter: ScoredModel; classifier: ScoredModel };
  /**
   * The classifier's calibrated decision threshold and the recall it was calibrated for. Read
   * after scoring: a scorer deciding images at their own thresholds names the most common one.
   */
  readonly threshold: number;
  readonly targetRecall: number | null;
  /** set when `threshold` is one population's (image sets carry no ages) */
  readonly population?: { name: string; why: string };
  /** the populations the version has thresholds of its own for when none of them decides (no `population`) */
  readonly unusedPopulations?: readonly string[];
  /** known before any image is scored: the populations that will go unused (no population chosen, none estimated per film) */
  readonly pooledBeforeScoring?: readonly string[];
  score(image: GrayImage): Promise<ScoredImage>;
  dispose(): Promise<void> | void;
}

export interface EvalItem {
  id: string;
  /** the set the image belongs to in a pool of datasets ('' or absent for one folder) */
  source?: string;
  label: number;
  image(): Promise<GrayImage>;
  /** ground-truth lung mask at any size (compared at the scorer's mask resolution), when the dataset has one */
  mask?: () => Promise<GrayImage | null>;
}

export interface EvaluationResult extends ClassificationReport {
  /** mean Dice / IoU over images with a ground-truth mask; absent when the dataset has no masks */
  dice?: number | null;
  iou?: number | null;
  targetRecall: number | null;
  /** the threshold a recalibration on this set would pick for the same target recall (null without positives) */
  calibratedHere: number | null;
  models: ImageScorer['models'];
  scorer: string;
  /** whose threshold decided (ImageScorer.population) */
  population?: { name: string; why: string };
  /** ImageScorer.unusedPopulations, when there are any */
  unusedPopulations?: readonly string[];
  images: {
    id: string;
    label: number;
    probability: number;
    rawProbability?: number;
    lungAreaFraction?: number;
    spread?: number;
    dice?: number;
    /** ScoredImage.threshold: where this image was decided at a threshold of its own */
    threshold?: number;
  }[];
  /** expected calibration error and reliability bins of the probabilities (10 bins) */
  calibration: CalibrationReport;
  /** 95% bootstrap intervals over the images (bootstrapFigures: aucLo, aucHi, recallLo, ...) */
  ci95: Record<string, number>;
  /** a pool of sets: each set's figures on its own images, at the same threshold */
  sets?: Record<string, SetFigures>;
}

/** One set's figures in a pooled evaluation. */
export interface SetFigures extends ClassificationReport {
  ece: number;
  ci95: Record<string, number>;
}

/** Figures of some scored images at a threshold: the report, ECE and 95% bootstrap intervals. */
export function setFigures(scores: readonly number[], labels: readonly number[], threshold: number): SetFigures {
  return {
    ...classificationReport(scores, labels, threshold),
    ece: calibrationReport(scores, labels).ece,
    ci95: bootstrapFigures(scores, labels, threshold),
  };
}

/** A ground-truth mask on the predicted mask's grid: area-resized and cut at 0.5, as training's targets are. */
export function maskOnGrid(mask: GrayImage, width: number, height: number): Uint8Array {
  const small = mask.width === width && mask.height === height ? mask : resizeArea(mask, width, height);
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = small.data[i] >= 0.5 ? 1 : 0;
  return out;
}

/**
 * Runs the scorer over every item and summarises: AUC, the confusion matrix and its ratios at
 * the scorer's threshold, and Dice/IoU of the lung masks where ground truth exists.
 */
export async function evaluateItems(
  items: readonly EvalItem[],
  scorer: ImageScorer,
  onProgress?: (done: number, total: number) => void,
): Promise<EvaluationResult> {
  const scores: number[] = [];
  const labels: number[] = [];
  const dices: number[] = [];
  const ious: number[] = [];
  let withMasks = 0;
  const images: EvaluationResult['images'] = [];
  const sources: string[] = [];
  const own: (number | undefined)[] = [];
  for (const item of items) {
    sources.push(item.source ?? '');
    const image = await item.image();
    const scored = await scorer.score(image);
    scores.push(scored.probability);
    own.push(scored.threshold);
    labels.push(item.label);
    const row: EvaluationResult['images'][number] = {
      id: item.id,
      label: item.label,
      probability: scored.probability,
      ...(scored.rawProbability !== undefined ? { rawProbability: scored.rawProbability } : {}),
      ...(scored.lungAreaFraction !== undefined ? { lungAreaFraction: scored.lungAreaFraction } : {}),
      ...(scored.spread !== undefined ? { spread: scored.spread } : {}),
      ...(scored.threshold !== undefined ? { threshold: scored.threshold } : {}),
    };
    const truth = item.mask ? await item.mask() : null;
    if (truth) {
      withMasks++;
      const gt = maskOnGrid(truth, scored.mask.width, scored.mask.height);
      const d = dice(scored.mask.data, gt);
      dices.push(d);
      ious.push(iou(scored.mask.data, gt));
      row.dice = d;
    }
    images.push(row);
    onProgress?.(images.length, items.length);
  }
  // images decided at their own thresholds: each score shifted by its threshold's distance from
  // the scorer's, so one comparison decides every image as its own threshold does (the shift is
  // zero where they agree, and the reported probabilities stay unshifted)
  const threshold = scorer.threshold;
  const decided = own.some((t) => t !== undefined && t !== threshold) ? scores.map((p, i) => p - (own[i] ?? threshold) + threshold) : scores;
  let calibratedHere: number | null = null;
  if (scorer.targetRecall != null && labels.some((l) => l >= 0.5)) {
    calibratedHere = calibrateThreshold(decided, labels, scorer.targetRecall).threshold;
  }
  const names = [...new Set(sources)].sort();
  let sets: Record<string, SetFigures> | undefined;
  if (names.length > 1) {
    sets = {};
    for (const name of names) {
      const mine = sources.flatMap((s, i) => (s === name ? [i] : []));
      sets[name] = {
        ...setFigures(
          mine.map((i) => decided[i]),
          mine.map((i) => labels[i]),
          threshold,
        ),
        ece: calibrationReport(
          mine.map((i) => scores[i]),
          mine.map((i) => labels[i]),
        ).ece,
      };
    }
  }
  return {
    ...classificationReport(decided, labels, threshold),
    ...(withMasks > 0 ? { dice: mean(dices), iou: mean(ious) } : {}),
    targetRecall: scorer.targetRecall,
    calibratedHere,
    calibration: calibrationReport(scores, labels),
    ci95: bootstrapFigures(decided, labels, threshold),
    ...(sets ? { sets } : {}),
    models: scorer.models,
    scorer: scorer.description,
    ...(scorer.population ? { population: scorer.population } : {}),
    ...(scorer.unusedPopulations?.length ? { unusedPopulations: scorer.unusedPopulations } : {}),
    images,
  };
}
