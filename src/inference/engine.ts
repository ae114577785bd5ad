import * as ort from 'onnxruntime-node';
import { readWindowedFrame, type WindowPolicy } from '../dicom/index.js';
import { CxrError } from '../errors.js';
import { maskArea, touchesBorder, type BinaryMask } from '../imaging/components.js';
import type { LungBox } from '../imaging/lung-crop.js';
import { classifierCrop, lungMask, segmenterInput, ttaBatch, ttaViews, type TtaView } from '../imaging/pixel-contract.js';
import { encodeRuns } from '../imaging/mask-runs.js';
import { grayImage, toGray, type GrayImage, type SampledImage } from '../imaging/types.js';
import { applyCalibration, type ProbabilityCalibration } from '../ml/probability-calibration.js';
import { intensityMatchOf, servedCalibration, type Population, type ThresholdInfo } from '../ml/model-store/index.js';
import type { IntensityMatch } from '../imaging/intensity-match.js';
import { tapPooledFeatures } from '../ml/onnx/feature-taps.js';
import { camToImage, normalizeCam } from './cam.js';
import { decide, meanAndSpread } from './decision.js';
import { chooseThreshold, populationProbability, studyAge } from './population.js';
import { populationHeadProbability, populationHeads } from '../ml/population-head.js';
import { estimatePopulation, estimatorWeights, type PopulationEstimate } from '../ml/population-estimate.js';
import { loadServedModel, type ServedModel } from './models.js';
import { DEFAULT_QC_LIMITS, qcFlags, type QcLimits } from './qc.js';
import { requestedPrecision, type Precision } from './precision.js';
import { openSession, type ExecutionProvider, type OpenSession } from './session.js';
import type { AnalyzeOptions, ModelRef, TriageEngine, TriageReport, TriageResult } from './types.js';

export interface EngineOptions {
  /** folder holding segmenter/<version>/ and classifier/<version>/ (default 'models') */
  modelsDir?: string;
  /** version folders to serve instead of the ones modelsDir selects */
  segmenterDir?: string;
  classifierDir?: string;
  /** intra-op threads per ONNX Runtime session (default 2) */
  threads?: number;
  /** let idle ONNX Runtime threads spin (default false: see SessionConfig.allowSpinning) */
  allowSpinning?: boolean;
  /** test-time views per study (default 4) */
  tta?: number;
  /** execution providers in order of preference (default ['cpu']) */
  providers?: ExecutionProvider[];
  /**
   * TTA standard deviation above which a study is 'uncertain' (default: the served threshold
   * block's `uncertainty.bound`, else DEFAULT_UNCERTAIN_BOUND)
   */
  uncertainBound?: number;
  /** QC limits (defaults in qc.ts) */
  qc?: Partial<QcLimits>;
  /** lung box margin as a fraction of the box size (default: lung-crop's) */
  lungMargin?: number;
  /** the segmenter's probability cut (default 0.5) */
  maskThreshold?: number;
  /**
   * float or int8 models, for both or per model (default: $CXR_PRECISION, else auto = int8
   * where its manifest says to serve it; precision.ts)
   */
  precision?: Precision | { segmenter?: Precision; classifier?: Precision };
  /**
   * layers (tfjs names) whose pooled outputs the classifier's features also carry, before the
   * final features' (`refit-head --head-taps`: ml/onnx/feature-taps.ts); the served
   * probability does not change
   */
  featureTaps?: readonly string[];
  /**
   * the reference the classifier's crops are quantile-matched to, in place of its manifest's
   * `intensity` (null: none); refit-head extracts a new version's features with the one it
   * fitted before the version exists
   */
  intensity?: IntensityMatch | null;
  onWarning?: (message: string) => void;
}

export const DEFAULT_TTA = 4;
/**
 * The TTA spread above which a study is 'uncertain' for a version whose threshold block has
 * no `uncertainty` (calibrated before 2026-12-02). The bound belongs to a version and is set
 * with its threshold on validation (src/ml/uncertainty-bound.ts): 0.08 suited
 * v20261129-152734, 0.40 its refitted heads, whose views disagree more. 0.40, the 99th
 * percentile over 240 real films for v20261202-refit-r2 (bench/qc-limits.ts), because a bound
 * too low for a version marks most of its studies uncertain, and so flagged: 0.08 did so to
 * more than half of them when r2 shipped.
 */
export const DEFAULT_UNCERTAIN_BOUND = 0.4;

/** The engine the service and the CLI share; extends TriageEngine with what it was built with. */
export interface OnnxTriageEngine extends TriageEngine {
  readonly providers: { segmenter: ExecutionProvider[]; classifier: ExecutionProvider[] };
  /** engines: scoring threads of an engine pool (engine-pool.ts); absent for one engine on the calling thread */
  readonly settings: { threads: number; tta: number; uncertainBound: number; qc: QcLimits; engines?: number };
  /**
   * calibration: the served model's, which probabilities and thresholds of populations without
   * their own are on; estimatesPopulation: the classifier carries a population estimator
   * (scoreImage with features returns its estimate)
   */
  readonly threshold: {
    value: number;
    targetRecall: number;
    populations?: ThresholdInfo['populations'];
    calibration: ProbabilityCalibration | null;
    estimatesPopulation: boolean;
  };
  /**
   * The model part of analyze() on an already windowed image (a dataset's PNG, say): what
   * `evaluate` runs, so its decisions are the ones `analyze` and the service make.
   */
  scoreImage(image: GrayImage, opts?: { tta?: number; features?: boolean }): Promise<ImageScore>;
}

/** What the models say about one windowed image. */
export interface ImageScore {
  /** mean over the TTA views, through the manifest's probability calibration when it has one */
  probability: number;
  /** mean over the TTA views before calibration (what a calibration is fitted on) */
  rawProbability: number;
  /** sample standard deviation over the views */
  spread: number;
  probabilities: number[];
  /** cleaned lung mask at the segmenter's resolution */
  mask: BinaryMask;
  lungAreaFraction: number;
  /** in image pixels; null when no lung was found (the whole image was classified) */
  box: LungBox | null;
  /** with `features`: each view's globally average-pooled features (what the head reads), identity first */
  features?: Float32Array[];
  /** with `features`, when the version has a population estimator: which population the film looks like */
  populationEstimate?: PopulationEstimate;
  /** the raw TTA mean of each population with its own head (fit-population-head), from the same views' features */
  populationRaw?: Partial<Record<Population, number>>;
  /** identity view's CAM scaled to [0,1], covering the box */
  cam: { width: number; height: number; values: Float32Array };
}

/** Runs one ONNX session at a time: two sessions sharing two cores would only thrash. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

interface GraphNames {
  input: string;
  output: string;
  cam?: string;
}

function graphNames(s: ort.InferenceSession, label: string, output: string, cam?: string): GraphNames {
  const need = [output, ...(cam ? [cam] : [])];
  for (const n of need) {
    if (!s.outputNames.includes(n)) {
      throw new CxrError('E_MODEL_INVALID', `${label}: model.onnx has no '${n}' output (outputs: ${s.outputNames.join(', ')}); re-run export-onnx`);
    }
  }
  return { input: s.inputNames[0], output, cam };
}

function inputSide(m: ServedModel, fallback: number): number {
  return Number.isInteger(m.manifest.inputSize) && m.manifest.inputSize > 0 ? m.manifest.inputSize : fallback;
}

/**
 * Loads both served models (hash-checked against their manifests), opens one ONNX Runtime
 * session each, and warms them up, so the first study pays no start-up cost.
 */
export async function loadEngine(opts: EngineOptions = {}): Promise<OnnxTriageEngine> {
  const modelsDir = opts.modelsDir ?? 'models';
  const threads = opts.threads ?? 2;
  const defaultTta = opts.tta ?? DEFAULT_TTA;
  ttaViews(defaultTta); // validates
  if (opts.uncertainBound !== undefined && !(opts.uncertainBound >= 0))
    throw new CxrError('E_BAD_ARGUMENT', `uncertainBound must be >= 0, got ${opts.uncertainBound}`);
  const qc: QcLimits = { ...DEFAULT_QC_LIMITS, ...opts.qc };
  const maskThreshold = opts.maskThreshold ?? 0.5;

  const per = typeof opts.precision === 'object' ? opts.precision : { segmenter: opts.precision, classifier: opts.precision };
  const [seg, cls] = await Promise.all([
    loadServedModel(modelsDir, 'segmenter', opts.segmenterDir, requestedPrecision(per.segmenter)),
    loadServedModel(modelsDir, 'classifier', opts.classifierDir, requestedPrecision(per.classifier)),
  ]);
  // the int8 classifier has its own threshold, picked on its own probabilities
  const threshold = cls.served.threshold;
  // each model has its own calibration, as it has its own threshold: manifest.calibration goes
  // with model.onnx, quantization.probabilityCalibration (when calibrate fitted one) with the int8 model
  const calibration = servedCalibration(cls.manifest, cls.served.precision);
  if (!threshold) throw new CxrError('E_MODEL_INVALID', `${cls.dir}: the classifier manifest has no calibrated threshold`);
  // set with the threshold, on the same images through the same precision
  const uncertainBound = opts.uncertainBound ?? threshold.uncertainty?.bound ?? DEFAULT_UNCERTAIN_BOUND;
  const segSize = inputSide(seg, 256);
  const clsSize = inputSide(cls, 224);
  const intensity = opts.intensity !== undefined ? opts.intensity : intensityMatchOf(cls.manifest.intensity);

  const sessionCfg = { threads, providers: opts.providers, onWarning: opts.onWarning, allowSpinning: opts.allowSpinning };
  const segSession: OpenSession = await openSession(seg.bytes, `segmenter ${seg.ref.version}`, sessionCfg);
  const clsBytes = opts.featureTaps?.length ? tapPooledFeatures(cls.bytes, opts.featureTaps, `classifier ${cls.ref.version}`) : cls.bytes;
  const clsSession: OpenSession = await openSession(clsBytes, `classifier ${cls.ref.version}`, sessionCfg);
  const segNames = graphNames(segSession.session, 'segmenter', 'mask');
  const clsNames = graphNames(clsSession.session, 'classifier', 'probability', 'cam');
  const serial = new Serial();
  const models: { segmenter: ModelRef; classifier: ModelRef } = { segmenter: seg.ref, classifier: cls.ref };

  const runSegmenter = (img: Float32Array) =>
    serial.run(() => segSession.session.run({ [segNames.input]: new ort.Tensor('float32', img, [1, 1, segSize, segSize]) }, [segNames.output]));
  const hasFeatures = clsSession.session.outputNames.includes('features');
  // a multi-scale head's input, already pooled: what its head refit fits on
  const pooledOutput = clsSession.session.outputNames.includes('pooled');
  const runClassifier = (batch: Float32Array, n: number, features = false) =>
    serial.run(() =>
      clsSession.session.run({ [clsNames.input]: new ort.Tensor('float32', batch, [n, 1, clsSize, clsSize]) }, [
        clsNames.output,
        clsNames.cam!,
        ...(features ? [pooledOutput ? 'pooled' : 'features'] : []),
      ]),
    );

  // a population estimator reads the served features; not with extraction taps, which change them
  const estimator = opts.featureTaps?.length ? null : (cls.manifest.populationEstimator ?? null);
  const estimatorW = estimator ? estimatorWeights(estimator) : null;

  // warm-up: the first run plans memory and packs weights for the batch size served
  await runSegmenter(new Float32Array(segSize * segSize));
  // populations with their own head: every study needs the features they read
  const heads = opts.featureTaps?.length ? [] : populationHeads(threshold, `classifier ${cls.ref.version}`);
  const needsFeatures = estimator !== null || heads.length > 0;
  const warm = await runClassifier(new Float32Array(defaultTta * clsSize * clsSize), defaultTta, needsFeatures && hasFeatures);
  if (estimator) {
    const f = pooledOutput ? warm.pooled : warm.features;
    const width = f?.dims[1];
    if (width !== estimator.inputs)
      throw new CxrError(
        'E_MODEL_INVALID',
        `classifier ${cls.ref.version}: its populationEstimator reads ${estimator.inputs} features, the graph gives ${width ?? 'none'}`,
      );
  }
  const estimate = (features: readonly Float32Array[]): PopulationEstimate => estimatePopulation(estimator!, estimatorW!, features);
  if (heads.length > 0) {
    const f = pooledOutput ? warm.pooled : warm.features;
    for (const [k, h] of heads)
      if (f?.dims[1] !== h.weights.length)
        throw new CxrError(
          'E_MODEL_INVALID',
          `classifier ${cls.ref.version}: its ${k} head reads ${h.weights.length} features, the graph gives ${f?.dims[1] ?? 'none'}`,
        );
  }

  let closed = false;

  /** Everything after decoding: segment, clean, crop, TTA batch, classify. */
  async function score(image: SampledImage, views: TtaView[], lap: (stage: string) => void, askedFeatures = false): Promise<ImageScore> {
    const wantFeatures = askedFeatures || heads.length > 0;
    if (wantFeatures && !hasFeatures)
      throw new CxrError('E_MODEL_INVALID', `classifier ${cls.ref.version}: model.onnx has no 'features' output; re-run export-onnx`);
    // the pixel contract (src/imaging/pixel-contract.ts): the same steps as training and `evaluate`
    const small = segmenterInput(image, segSize);
    lap('resize');
    const segOut = await runSegmenter(small.data);
    const prob = segOut[segNames.output].data as Float32Array;
    lap('segment');
    const mask = lungMask(prob, segSize, maskThreshold);
    const area = maskArea(mask);
    lap('postprocess');
    const { crop, box } = classifierCrop(image, mask, clsSize, opts.lungMargin, intensity);
    lap('crop');
    const batch = ttaBatch(crop, views);
    lap('tta');
    const clsOut = await runClassifier(batch, views.length, wantFeatures);
    const probabilities = Array.from(clsOut[clsNames.output].data as Float32Array);
    const camAll = clsOut[clsNames.cam!];
    const [, , camH, camW] = camAll.dims as number[];
    // the identity view's map: the other views are rotated and do not line up with the crop
    const cam = normalizeCam((camAll.data as Float32Array).subarray(0, camH * camW));
    lap('classify');
    let features: Float32Array[] | undefined;
    if (wantFeatures) {
      // [N, C, h, w]: each view's maps, averaged over h x w as the head's pooling does
      // ([N, D] from a multi-scale head: pooled already, h = w = 1)
      const f = pooledOutput ? clsOut.pooled : clsOut.features;
      const [n, channels, fh = 1, fw = 1] = f.dims as number[];
      const data = f.data as Float32Array;
      const plane = fh * fw;
      features = [];
      for (let v = 0; v < n; v++) {
        const pooled = new Float32Array(channels);
        for (let c = 0; c < channels; c++) {
          const o = (v * channels + c) * plane;
          let s = 0;
          for (let k = 0; k < plane; k++) s += data[o + k];
          pooled[c] = s / plane;
        }
        features.push(pooled);
      }
    }
    // the TTA spread stays on the raw views: the uncertainty bound was set on those
    const { mean, spread } = meanAndSpread(probabilities);
    return {
      probability: applyCalibration(calibration, mean),
      rawProbability: mean,
      spread,
      probabilities,
      mask,
      lungAreaFraction: area / (segSize * segSize),
      box,
      cam: { width: camW, height: camH, values: cam },
      ...(features && askedFeatures ? { features } : {}),
      ...(features && estimator ? { populationEstimate: estimate(features) } : {}),
      ...(features && heads.length > 0 ? { populationRaw: Object.fromEntries(heads.map(([k, h]) => [k, populationHeadProbability(h, features)])) } : {}),
    };
  }

  function stopwatch() {
    const timings: Record<string, number> = {};
    const t0 = performance.now();
    let t = t0;
    return {
      timings,
      lap(stage: string) {
        const now = performance.now();
        timings[stage] = Math.round((now - t) * 100) / 100;
        t = now;
      },
      total() {
        timings.total = Math.round((performance.now() - t0) * 100) / 100;
      },
    };
  }

  function open(): void {
    if (closed) throw new CxrError('E_BACKEND', 'the triage engine is closed');
  }

  async function analyze(bytes: Uint8Array, aopts: AnalyzeOptions = {}): Promise<TriageResult> {
    open();
    const views = ttaViews(aopts.tta ?? defaultTta);
    const sw = stopwatch();
    // words plus their window table: resize and crop read the film in place, no float copy of it
    const win = await readWindowedFrame(bytes, { window: aopts.window ?? ({ kind: 'auto' } satisfies WindowPolicy) });
    const image: SampledImage = win.codes
      ? { width: win.width, height: win.height, codes: win.codes, values: win.values }
      : grayImage(win.width, win.height, win.data);
    sw.lap('decode');
    // the film's population is estimated only when the header gives no age and the version can
    const needEstimate = estimator !== null && studyAge(win.meta).years === null;
    const s = await score(image, views, sw.lap, needEstimate);

    const flags = qcFlags(
      {
        lungAreaFraction: s.lungAreaFraction,
        maskTouchesBorder: touchesBorder(s.mask),
        width: image.width,
        height: image.height,
        viewPosition: win.meta.viewPosition,
        bodyPartExamined: win.meta.bodyPartExamined,
      },
      qc,
    );
    // the study's own operating point: its population's threshold when the version has them
    const chosen = chooseThreshold(threshold!, win.meta, calibration, s.populationEstimate ?? null);
    // and its population's own calibration, when it has one
    const probability = populationProbability(chosen.calibration, s, chosen.thresholdOf);
    const scoredBy = chosen.thresholdOf !== 'version' && s.populationRaw?.[chosen.thresholdOf] !== undefined ? chosen.thresholdOf : null;
    const d = decide(probability, chosen.value, s.spread, uncertainBound, flags);
    const report: TriageReport = {
      probability,
      threshold: chosen.value,
      targetRecall: threshold!.targetRecall,
      decision: d.decision,
      flagged: d.flagged,
      flagReasons: d.flagReasons,
      validation: { sensitivity: chosen.validationSensitivity, specificity: chosen.validationSpecificity },
      population: {
        name: chosen.population,
        ageYears: chosen.ageYears,
        ageSource: chosen.ageSource,
        thresholdOf: chosen.thresholdOf,
        reason: scoredBy ? `${chosen.reason}; scored by the ${scoredBy} population's own head` : chosen.reason,
        ...(chosen.estimate ? { estimate: chosen.estimate } : {}),
        ...(scoredBy ? { scoredBy } : {}),
      },
      tta: { views: views.length, probabilities: s.probabilities, spread: s.spread, uncertainBound },
      lungAreaFraction: s.lungAreaFraction,
      lungBox: s.box,
      qcFlags: flags,
      window: win.window,
      models,
      image: { width: image.width, height: image.height },
      cam: { width: s.cam.width, height: s.cam.height, values: Array.from(s.cam.values, (v) => Math.round(v * 1e4) / 1e4) },
      mask: { width: s.mask.width, height: s.mask.height, runs: encodeRuns(s.mask.data) },
      timingsMs: sw.timings,
    };
    sw.lap('report');
    const result: TriageResult = { report, meta: win.meta };
    if (aopts.artifacts) {
      result.artifacts = { windowed: toGray(image), ...scoreOverlays(s, image.width, image.height) };
      sw.lap('artifacts');
    }
    sw.total();
    return result;
  }

  return {
    models,
    providers: { segmenter: segSession.providers, classifier: clsSession.providers },
    settings: { threads, tta: defaultTta, uncertainBound, qc },
    threshold: {
      value: threshold.value,
      targetRecall: threshold.targetRecall,
      populations: threshold.populations,
      calibration,
      estimatesPopulation: estimator !== null,
    },
    analyze,
    async scoreImage(image: GrayImage, sopts: { tta?: number; features?: boolean } = {}): Promise<ImageScore> {
      open();
      return score(image, ttaViews(sopts.tta ?? defaultTta), () => {}, sopts.features);
    },

    async close() {
      if (closed) return;
      closed = true;
      await serial.run(async () => {
        await segSession.session.release();
        await clsSession.session.release();
      });
    },
  };
}

/** A score's lung mask and CAM heatmap at the image's size: what a reviewer's overlays are drawn from. */
export function scoreOverlays(s: Pick<ImageScore, 'mask' | 'box' | 'cam'>, width: number, height: number): { mask: GrayImage; heatmap: GrayImage } {
  const box = s.box ?? { x0: 0, y0: 0, x1: width, y1: height };
  return { mask: maskToImage(s.mask, width, height), heatmap: camToImage(s.cam.values, s.cam.width, s.cam.height, box, width, height) };
}

/** The segmenter-frame mask scaled (nearest) to the image, as 0/1 floats. */
function maskToImage(mask: BinaryMask, width: number, height: number): GrayImage {
  const out = grayImage(width, height);
  const xs = new Int32Array(width);
  for (let x = 0; x < width; x++) xs[x] = Math.min(mask.width - 1, Math.floor(((x + 0.5) * mask.width) / width));
  for (let y = 0; y < height; y++) {
    const my = Math.min(mask.height - 1, Math.floor(((y + 0.5) * mask.height) / height));
    const row = my * mask.width;
    const o = y * width;
    for (let x = 0; x < width; x++) out.data[o + x] = mask.data[row + xs[x]];
  }
  return out;
}
