import type { DriftReference } from '../drift-reference.js';
import type { UncertaintyBound } from '../uncertainty-bound.js';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { CxrError } from '../../errors.js';
import { isQuantileFunction, type IntensityMatch } from '../../imaging/intensity-match.js';
import type { ProbabilityCalibration } from '../probability-calibration.js';
import { findAbsolutePaths, type PortablePath, type RunEnvironment } from './provenance.js';

/**
 * The model store's file format. A model version is a folder `models/<name>/<version>/`
 * described by manifest.json; it is immutable once published: anything that changes a
 * decision rule (threshold, calibration, quantization) is written as a new version whose
 * manifest names the one it came from (`derivedFrom`).
 */
export const MANIFEST_FILE = 'manifest.json';
/** The exported graph the service runs (defined here once; the exporter and the engine use it). */
export const ONNX_FILE = 'model.onnx';

export type ModelName = 'segmenter' | 'classifier';
export const MODEL_NAMES: readonly ModelName[] = ['segmenter', 'classifier'];

/** A graph dimension: a size, or a symbolic name such as 'N'. */
export type Dim = number | string;

export interface GraphIo {
  name: string;
  shape: Dim[];
  /** NCHW for rank-4 tensors; 'NC' etc. for the rest */
  layout: string;
}

/** What manifest.json says about the exported graph (key `onnx`). */
export interface OnnxInfo {
  file: string;
  opset: number;
  /**
   * Rank-4 tensors are NCHW. The image input is [N,1,H,W]; with one channel its bytes are
   * those of an NHWC [N,H,W,1] array, so either layout can be fed as is.
   */
  inputs: GraphIo[];
  outputs: GraphIo[];
  /** max |tfjs - onnxruntime| / max(1, max |tfjs|) over the outputs, on a random image at export time */
  parityMaxAbsDiff: number;
  foldedBatchNorms: number;
  nodes: number;
  exportedAt: string;
}

/**
 * The classifier's decision rule. Two thresholds can appear in a manifest: this one, which the
 * service applies (`value`), and `metrics.*.threshold`, the single-view tfjs threshold training
 * picked and scored its splits with. They differ when `calibratedOn` says the rule was
 * re-picked on the served pipeline (ONNX Runtime, TTA views, the segmenter's crops).
 */
export interface ThresholdInfo {
  /** a study is positive when its probability is >= value */
  value: number;
  targetRecall: number;
  validationSensitivity: number;
  validationSpecificity: number | null;
  /** set by `calibrate`: how the probabilities the threshold was picked on were produced */
  calibratedOn?: { views: number; scorer: string; subset: string; n: number; split: PortablePath | string; at: string; positives?: number };
  /** why a reader should not trust it blindly (e.g. calibrated on fewer than 20 positives) */
  warnings?: string[];
  /**
   * Per-population operating points (`calibrate --population SET=POP`): each picked by the same
   * rule (highest threshold keeping targetRecall) on its own sets' rows. The engine applies the
   * study's population's value (from the DICOM patient age); a study of unknown age gets the
   * lowest of them (recall first). `value` stays the pooled threshold, for readers of one number.
   */
  populations?: Partial<Record<Population, PopulationThreshold>>;
  /**
   * The TTA spread above which the engine calls a study 'uncertain', measured on the images
   * the threshold was picked on, through the same pipeline (src/ml/uncertainty-bound.ts).
   * Absent in versions calibrated before 2026-12-02: the engine then uses its default.
   */
  uncertainty?: UncertaintyBound;
}

export const POPULATIONS = ['adult', 'pediatric'] as const;
export type Population = (typeof POPULATIONS)[number];

export function isPopulation(v: string): v is Population {
  return (POPULATIONS as readonly string[]).includes(v);
}

/**
 * A linear head on the classifier's features (the `pooled` output of a multi-scale head, else
 * the globally pooled final features) saying which population a film looks like: logit =
 * w . f + b, averaged over the TTA views, above 0 meaning `above`. Fitted by `fit-population`
 * on train films of sets whose population is known; the engine uses it only for a study whose
 * age the header does not give, and only at `minConfidence` or more.
 */
export interface PopulationEstimatorInfo {
  above: Population;
  below: Population;
  /** the feature width it reads */
  inputs: number;
  /** float32 little-endian weights, base64, `inputs` of them */
  weights: string;
  bias: number;
  /** the probability of the population it names at which an estimate decides */
  minConfidence: number;
  /** the precision whose features it was fitted on (int8 and float features differ a little) */
  featurePrecision: string;
  fittedOn: { subset: 'train'; n: number; views: number; l2: number; sets: Record<string, Population>; at: string };
  /** validation films of the same sets: how often it is right, and how often sure and wrong */
  validation: {
    n: number;
    accuracy: number;
    /** films with an estimate at minConfidence or more */
    decided: number;
    decidedWrong: number;
    perSet: Record<string, { n: number; accuracy: number; decided: number; decidedWrong: number }>;
  };
}

/** One population's operating point (manifest threshold.populations.<name>). */
export interface PopulationThreshold {
  value: number;
  validationSensitivity: number;
  validationSpecificity: number | null;
  /** images and pneumonia cases of that population the value was picked on */
  n: number;
  positives: number;
  /** the dataset folder names whose rows are this population */
  datasets: string[];
  /** set when picked on saved scores (calibrate --scores): which, and at which precision */
  pickedOn?: { subset: string; precision: string; scores: (PortablePath | string)[] };
  warnings?: string[];
  /**
   * The population's own probability calibration (`calibrate --scores … --population … --fit`),
   * fitted on its rows alone; `value` is on the probabilities it gives. The engine applies it to
   * a study of that population in place of the block's. One fit for adults and children pulled
   * the adult films the wrong way; each population's own does not.
   */
  calibration?: CalibrationInfo;
  /**
   * The population's own head (`fit-population-head`): a linear head on the served features
   * that replaces the graph's head for a study decided at this population; `value` and
   * `calibration` are on its probabilities.
   */
  head?: PopulationHeadInfo;
}

/**
 * A population's own linear head on the classifier's served features (the `pooled` output of a
 * multi-scale head): logit = w . f + b per TTA view, the probability the views' mean of its
 * sigmoid, as the graph's own head gives it. The version's head was fitted on every population
 * at once; a head that leans toward one population's own films (`blend`: the share of a head
 * fitted on that population alone, the rest the version's recipe on every set) can rank them
 * better. Its threshold and calibration are picked on the train films scored out of fold and
 * the validation films together, because one population's validation films alone are too few
 * at the high-recall end (`chosenOn`).
 */
export interface PopulationHeadInfo {
  /** the feature width it reads */
  inputs: number;
  /** float32 little-endian weights, base64, `inputs` of them */
  weights: string;
  bias: number;
  /** the precision whose features it was fitted on */
  featurePrecision: string;
  /** own: the head fitted on this population's sets alone; joint: the version's recipe on every set */
  blend: { own: number; joint: number };
  fittedOn: {
    subset: 'train';
    n: number;
    views: number;
    l2: { own: number; joint: number };
    /** the sets and their weights in the joint fit (the version's recipe) */
    jointSets: Record<string, number>;
    /** the sets of this population */
    sets: string[];
    at: string;
  };
  /** how the threshold and calibration were picked: out-of-fold train films and validation films */
  chosenOn: {
    folds: number;
    deals: number;
    seed: number;
    n: number;
    positives: number;
    /** every blend tried, on the same films: AUC and specificity at the target recall */
    tried: { own: number; auc: number; specificity: number | null }[];
  };
}

export interface PipelineFigures {
  auc: number | null;
  /** the threshold picked for the target recall on these probabilities */
  threshold: number | null;
  sensitivity: number | null;
  specificity: number | null;
}

/** Float vs int8 through the served pipeline on one labelled subset (manifest `quantization.comparison`). */
export interface QuantizationComparison {
  subset: string;
  /** dataset folder names (no machine paths) and the split files' names */
  data: string[];
  n: number;
  views: number;
  targetRecall: number;
  /** the other network of the pipeline, as served during the comparison */
  otherModel: { name: string; version: string; precision: 'float' | 'int8' };
  float: PipelineFigures;
  int8: PipelineFigures;
  aucDelta: number | null;
  /** |p_int8 - p_float| over the subset's images (TTA-mean probabilities) */
  probabilityDiff: { max: number; mean: number };
  /** segmenter: mean and lowest Dice between the float and int8 cleaned masks */
  maskAgreement?: { mean: number; min: number };
}

/** What `cxr-triage quantize` records in manifest.json (key `quantization`). */
export interface QuantizationInfo {
  file: string;
  format: 'QDQ';
  weights: string;
  activations: string;
  method: 'minmax' | 'percentile';
  percentile?: number;
  calibration: { images: number; inputsPerImage: number; data: string[]; subset: string | null };
  ops: string[];
  quantizedNodes: number;
  /** weightless ops kept in uint8 between int8 nodes (absent in versions quantized before 2026-12-02) */
  dataOps?: string[];
  /** node-name prefixes the data ops were limited to (absent: the whole graph) */
  dataScope?: string[];
  dataNodes?: number;
  /** batch norms folded into the convolution after them, leaving a uint8 Add */
  foldedBatchNorms?: number;
  /** float tensors stored as float16 behind a Cast, every value exact (half-initializers.ts; absent before stop 23) */
  halvedInitializers?: number;
  floatNodes: { id: string; op: string; reason: string }[];
  bytes: { float: number; int8: number };
  comparison: QuantizationComparison | null;
  /** the engine serves the int8 model unless told otherwise (CXR_PRECISION=float) */
  served: boolean;
  /** why served is what it is, in words */
  decision: string;
  /** classifier: the int8 model's own threshold, picked like `threshold` on its probabilities */
  threshold?: ThresholdInfo;
  /**
   * classifier: the int8 model's own probability calibration (`calibrate --scores … --fit`),
   * applied to its TTA-mean probability before its threshold, as `calibration` is to
   * model.onnx's. Absent: the int8 model serves its raw probabilities.
   */
  probabilityCalibration?: CalibrationInfo;
  /**
   * The float model. `shipped: false` (quantize --drop-float, to keep the folder small): the
   * folder has no model.onnx; the engine rebuilds it from the tfjs weights when float is asked
   * for (export-onnx with this graph metadata) and serves it only if its sha256 matches.
   */
  float?: { file: string; sha256: string; bytes: number; shipped: boolean; metadata: Record<string, string> };
  quantizedAt: string;
}

/** Where a version came from when it is not a fresh training run. */
export interface DerivedFrom {
  name: string;
  version: string;
  /** manifestDigest of the source version: the exact rule it replaced */
  digest: string;
  /** 'calibrate', 'quantize', ... */
  reason: string;
  at: string;
}

/** The version a fine-tuning run started from. */
export interface InitFrom {
  name?: string;
  version?: string;
  location: PortablePath;
  /**
   * Test images of this run whose patients trained (or validated) the initial model, from its
   * split.csv: its test metrics are optimistic by that much. Absent when it had no split.csv.
   */
  testOverlap?: { images: number; patients: number; of: number };
}

export interface TrainingInfo {
  /** the training folder relative to a named data root (never an absolute path) */
  data: PortablePath;
  /** datasetHash of the training folder (labels, images, masks) */
  dataHash: string;
  /** number of images in the dataset folder used for training */
  dataSize: number;
  /** the exact training configuration */
  config: Record<string, unknown>;
  epochs: number;
  /** images per split, plus where the split list was written */
  split: { train: number; validation: number; test: number; seed?: number; file?: string };
  /** the epoch whose weights were kept (best validation metric) */
  bestEpoch?: number;
  /** where the classifier's lung crops came from: 'ground truth' masks or a segmenter version */
  maskSource?: string;
  backend?: string;
  runId?: string;
  /** gradient worker threads besides the main one (data-parallel training) */
  workers?: number;
  /** the model version whose weights the run started from (fine-tuning), when not random */
  initFrom?: InitFrom;
  /** rows of labels.csv left out by `train --skip-bad` (listed in the run's skipped.csv) */
  skippedRows?: number;
  /** code and library versions, the command line */
  environment?: RunEnvironment;
  /** a pool of dataset folders: each set's name, images, sampling weight and split counts */
  datasets?: { name: string; data?: PortablePath; images: number; weight: number; train: number; validation: number; test: number }[];
}

/**
 * The probability calibration the engine applies to the served (TTA-mean) probability before
 * the threshold: p' = sigmoid(a * logit(p) + b), fitted on `fittedOn` by `calibrate`.
 */
export interface CalibrationInfo extends ProbabilityCalibration {
  fittedOn: { views: number; subset: string; n: number; split: string | PortablePath; at: string };
  /** expected calibration error (10 bins) on the fitting set before and after */
  eceBefore: number;
  eceAfter: number;
}

export type MetricValues = Record<string, number | null | Record<string, number>>;

export interface ModelManifest {
  name: string;
  version: string;
  /** e.g. 'unet' or 'densenet121-se', with the builder options in architectureConfig */
  architecture: string;
  architectureConfig: Record<string, unknown>;
  /** square input side in pixels */
  inputSize: number;
  createdAt: string;
  training: TrainingInfo;
  metrics: {
    validation: MetricValues;
    test: MetricValues;
    /** a pool: each set's figures on its own rows, at the same (pooled) threshold */
    sets?: Record<string, { validation: MetricValues; test: MetricValues }>;
  };
  /** classifier decision threshold; null for the segmenter (its masks are cut at 0.5) */
  threshold: ThresholdInfo | null;
  /** classifier: probability calibration applied before the threshold (absent: none; the threshold is then on raw probabilities) */
  calibration?: CalibrationInfo;
  /** classifier: validation's served probabilities and lung areas, the reference of the service's drift PSI */
  drift?: DriftReference;
  /** sha256 (hex) of every file in the version folder except manifest.json, keyed by relative path */
  files: Record<string, string>;
  /** the exported graph, once `export-onnx` has written model.onnx */
  onnx?: OnnxInfo;
  /** the int8 model next to model.onnx, once `quantize` has written it */
  quantization?: QuantizationInfo;
  /** set when this version re-used another's weights with a new decision rule */
  derivedFrom?: DerivedFrom;
  /** classifier: which population a film of unknown age looks like (`fit-population`) */
  populationEstimator?: PopulationEstimatorInfo;
  /** classifier: the reference its lung crops are quantile-matched to (imaging/intensity-match.ts); absent: crops as cut */
  intensity?: IntensityInfo;
  /** plain-language notes for a reader of this file (what the two thresholds mean, ...) */
  notes?: Record<string, string>;
}

/**
 * A classifier's intensity reference: its lung crops are quantile-matched to `quantiles` (a
 * quantile function at ranks (k + 0.5) / length) before the TTA views, so a site's look-up
 * curve, contrast or brightness does not reach the network. 'quantile-match' ranks each pixel
 * within its crop (and `quantiles` is the mean of train crops'); 'film-quantile-match' within
 * its whole film (the mean of train films'), which keeps a lung field denser than its film so.
 */
export interface IntensityInfo {
  method: IntensityMethod;
  quantiles: number[];
  /** the train crops (or films) whose mean quantile function it is */
  fittedOn: { films: number; sets: Record<string, number>; subset: 'train'; segmenter: string; at: string };
}

export type IntensityMethod = 'quantile-match' | 'film-quantile-match';
export const INTENSITY_METHODS: readonly IntensityMethod[] = ['quantile-match', 'film-quantile-match'];

/**
 * What identifies a reference in a decision rule and a feature cache's tag: the quantiles of a
 * crop-scope one (the shape it had before film scope existed, so registered rules and caches
 * stay valid), the method with them otherwise.
 */
export function intensityIdentity(info: Pick<IntensityInfo, 'method' | 'quantiles'>): number[] | { method: IntensityMethod; quantiles: number[] } {
  return info.method === 'quantile-match' ? info.quantiles : { method: info.method, quantiles: info.quantiles };
}

/** What the engine applies for a version's reference: the quantiles and whose ranks they are taken over. */
export function intensityMatchOf(info: IntensityInfo | undefined | null): IntensityMatch | null {
  return info ? { quantiles: info.quantiles, scope: info.method === 'film-quantile-match' ? 'film' : 'crop' } : null;
}

/** Printed into every classifier manifest: the two thresholds confuse a reader otherwise. */
export const THRESHOLD_NOTES: Record<string, string> = {
  threshold:
    'threshold.value is the decision rule the service applies: a study is positive when its probability is >= it. ' +
    'threshold.calibratedOn, when present, says it was re-picked on the served pipeline (ONNX Runtime, TTA views, segmenter crops).',
  'metrics.threshold':
    'metrics.validation.threshold and metrics.test.threshold are the single-view tfjs threshold training picked on validation; ' +
    'the split metrics were computed at it. It equals threshold.value unless the threshold was re-calibrated.',
};

/**
 * A digest of the whole manifest (keys sorted), i.e. of the decision rule and of every file's
 * hash: two versions with the same weights but different thresholds have different digests.
 */
export function manifestDigest(m: ModelManifest | Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(m)).digest('hex');
}

export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return hash.digest('hex');
}

/**
 * Evaluations run after a version is published (`evaluate --save`) are added under this folder;
 * they describe the version and do not change it, so they are not part of its hashes.
 */
export const EVALUATIONS_DIR = 'evaluations';
/**
 * The model card and its pictures and notes (src/ml/model-card.ts): documentation generated
 * from the version, left out of the hashes like evaluations/, so writing a card does not
 * change the version it describes.
 */
export const MODEL_CARD_FILE = 'MODEL_CARD.md';
export const CARD_DIR = 'card';

/** Relative paths ('/'-separated, sorted) of every regular file under dir except the manifest, the model card, card/ and evaluations/. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) {
        if (d !== dir || (entry.name !== EVALUATIONS_DIR && entry.name !== CARD_DIR)) await walk(p);
      } else if (entry.isFile()) {
        const rel = relative(dir, p).split(sep).join('/');
        if (rel !== MANIFEST_FILE && rel !== MODEL_CARD_FILE && !rel.includes('.tmp-')) out.push(rel);
      }
    }
  }
  await walk(dir);
  return out.sort();
}

export async function hashFiles(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const rel of await listFiles(dir)) files[rel] = await sha256File(join(dir, rel));
  return files;
}

function fail(path: string, why: string): never {
  throw new CxrError('E_MODEL_INVALID', `${path}: ${why}`);
}

function validate(raw: unknown, path: string): ModelManifest {
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, 'not a JSON object');
  const m = raw as Record<string, unknown>;
  for (const key of ['name', 'version', 'architecture', 'createdAt'] as const) {
    if (typeof m[key] !== 'string' || (m[key] as string).length === 0) fail(path, `'${key}' must be a non-empty string`);
  }
  if (typeof m.inputSize !== 'number' || !Number.isInteger(m.inputSize) || m.inputSize < 1) fail(path, "'inputSize' must be a positive integer");
  if (m.files == null || typeof m.files !== 'object') fail(path, "'files' must map file names to sha256");
  for (const [f, h] of Object.entries(m.files as Record<string, unknown>)) {
    if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) fail(path, `files['${f}'] is not a sha256 hex digest`);
  }
  if (m.threshold != null) {
    const t = m.threshold as Record<string, unknown>;
    if (typeof t.value !== 'number' || typeof t.targetRecall !== 'number') fail(path, "'threshold' needs numeric value and targetRecall");
    checkPopulations(path, 'threshold', t.populations);
  }
  const q = m.quantization as Record<string, unknown> | undefined;
  if (q?.threshold != null) checkPopulations(path, 'quantization.threshold', (q.threshold as Record<string, unknown>).populations);
  // a bound that is not a number would compare false with every spread: no study ever uncertain
  for (const [where, t] of [
    ['threshold', m.threshold],
    ['quantization.threshold', q?.threshold],
  ] as const) {
    const u = (t as Record<string, unknown> | null | undefined)?.uncertainty as Record<string, unknown> | undefined;
    if (u != null && !(typeof u.bound === 'number' && u.bound >= 0)) fail(path, `'${where}.uncertainty' needs a number bound >= 0`);
  }
  checkCalibration(path, 'calibration', m.calibration);
  checkCalibration(path, 'quantization.probabilityCalibration', q?.probabilityCalibration);
  checkPopulationEstimator(path, m.populationEstimator);
  checkIntensity(path, m.intensity);
  if (m.training == null || typeof m.training !== 'object') fail(path, "'training' is missing");
  if (m.metrics == null || typeof m.metrics !== 'object') fail(path, "'metrics' is missing");
  return raw as ModelManifest;
}

function checkPopulations(path: string, where: string, raw: unknown): void {
  if (raw == null) return;
  if (typeof raw !== 'object' || Array.isArray(raw)) fail(path, `'${where}.populations' must be an object`);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!isPopulation(k)) fail(path, `'${where}.populations.${k}': unknown population (known: ${POPULATIONS.join(', ')})`);
    const value = (v as Record<string, unknown> | null)?.value;
    if (typeof value !== 'number' || !Number.isFinite(value)) fail(path, `'${where}.populations.${k}' needs a numeric value`);
    checkCalibration(path, `${where}.populations.${k}.calibration`, (v as Record<string, unknown>).calibration);
    checkPopulationHead(path, `${where}.populations.${k}.head`, (v as Record<string, unknown>).head);
  }
}

function checkPopulationHead(path: string, where: string, raw: unknown): void {
  if (raw == null) return;
  const h = raw as Record<string, unknown>;
  if (!(Number.isInteger(h.inputs) && (h.inputs as number) > 0) || typeof h.weights !== 'string' || typeof h.bias !== 'number' || !Number.isFinite(h.bias))
    fail(path, `'${where}' needs a positive integer inputs, base64 weights and a finite bias`);
}

function checkPopulationEstimator(path: string, raw: unknown): void {
  if (raw == null) return;
  const e = raw as Record<string, unknown>;
  if (!isPopulation(String(e.above)) || !isPopulation(String(e.below)) || e.above === e.below)
    fail(path, "'populationEstimator' needs two different populations above and below");
  if (!(Number.isInteger(e.inputs) && (e.inputs as number) > 0) || typeof e.weights !== 'string' || typeof e.bias !== 'number' || !Number.isFinite(e.bias))
    fail(path, "'populationEstimator' needs a positive integer inputs, base64 weights and a finite bias");
  if (!(typeof e.minConfidence === 'number' && e.minConfidence > 0.5 && e.minConfidence <= 1))
    fail(path, "'populationEstimator.minConfidence' must be in (0.5, 1]");
}

function checkIntensity(path: string, raw: unknown): void {
  if (raw == null) return;
  const i = raw as Record<string, unknown>;
  if (!INTENSITY_METHODS.includes(i.method as IntensityMethod)) fail(path, `'intensity.method' must be one of ${INTENSITY_METHODS.join(', ')}`);
  if (!Array.isArray(i.quantiles) || !isQuantileFunction(i.quantiles as number[]))
    fail(path, "'intensity.quantiles' must be at least two nondecreasing numbers in [0, 1]");
  // the model card and `models show` describe the reference from it
  const f = i.fittedOn as Record<string, unknown> | null | undefined;
  if (
    !f ||
    typeof f !== 'object' ||
    !(Number.isInteger(f.films) && (f.films as number) > 0) ||
    !f.sets ||
    typeof f.sets !== 'object' ||
    !Object.values(f.sets).every((n) => Number.isInteger(n) && (n as number) >= 0) ||
    f.subset !== 'train' ||
    typeof f.segmenter !== 'string' ||
    typeof f.at !== 'string'
  )
    fail(path, "'intensity.fittedOn' must give films (a positive integer), sets (film counts), subset 'train', segmenter and at");
}

function checkCalibration(path: string, where: string, c: unknown): void {
  if (c == null) return;
  const { a, b } = c as Record<string, unknown>;
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b) || !(a > 0))
    fail(path, `'${where}' needs finite numbers a > 0 and b`);
}

export async function readManifest(dir: string): Promise<ModelManifest> {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) throw new CxrError('E_MODEL_MISSING', `no ${MANIFEST_FILE} in ${dir}`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    fail(path, `not valid JSON (${(e as Error).message})`);
  }
  return validate(raw, path);
}

/**
 * Writes manifest.json with `files` recomputed from what is in the folder now, so the hashes
 * always describe the bytes on disk. Returns the manifest as written.
 */
export async function writeManifest(dir: string, manifest: Omit<ModelManifest, 'files'>): Promise<ModelManifest> {
  // through JSON so the returned object equals what readManifest gives back (no undefined fields)
  const full = JSON.parse(JSON.stringify({ ...manifest, files: await hashFiles(dir) })) as ModelManifest;
  validate(full, join(dir, MANIFEST_FILE));
  // a manifest travels to other machines: paths of this one would mislead there
  const absolute = findAbsolutePaths(full);
  if (absolute.length > 0) fail(join(dir, MANIFEST_FILE), `holds absolute paths (${absolute.join(', ')}): record them relative to a named root`);
  const path = join(dir, MANIFEST_FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(full, null, 2)}\n`);
  await rename(tmp, path);
  return full;
}

/** Re-hashes every file after files were added or replaced (e.g. model.onnx by export-onnx). */
export async function refreshFileHashes(dir: string): Promise<ModelManifest> {
  const { files: _old, ...rest } = await readManifest(dir);
  return writeManifest(dir, rest);
}

export interface ManifestCheck {
  ok: boolean;
  /** listed files whose bytes no longer match */
  modified: string[];
  /** listed files that are gone */
  missing: string[];
  /** files in the folder the manifest does not list */
  unlisted: string[];
}

export async function verifyManifest(dir: string): Promise<ManifestCheck> {
  const manifest = await readManifest(dir);
  const present = new Set(await listFiles(dir));
  const check: ManifestCheck = { ok: true, modified: [], missing: [], unlisted: [] };
  for (const [rel, expected] of Object.entries(manifest.files)) {
    if (!present.has(rel)) check.missing.push(rel);
    else if ((await sha256File(join(dir, rel))) !== expected) check.modified.push(rel);
  }
  for (const rel of present) if (!(rel in manifest.files)) check.unlisted.push(rel);
  check.ok = check.modified.length === 0 && check.missing.length === 0 && check.unlisted.length === 0;
  return check;
}

/** verifyManifest that throws E_MODEL_INVALID naming what differs. */
export async function assertManifest(dir: string): Promise<ModelManifest> {
  const check = await verifyManifest(dir);
  if (!check.ok) {
    const parts = [
      check.modified.length ? `modified: ${check.modified.join(', ')}` : '',
      check.missing.length ? `missing: ${check.missing.join(', ')}` : '',
      check.unlisted.length ? `not in manifest: ${check.unlisted.join(', ')}` : '',
    ].filter(Boolean);
    throw new CxrError('E_MODEL_INVALID', `${dir}: files do not match ${MANIFEST_FILE} (${parts.join('; ')})`);
  }
  return readManifest(dir);
}

/**
 * The parts of a manifest that decide what the service answers: the architecture, the bytes of
 * every file, which file `auto` serves, the thresholds, the probability calibrations, the
 * uncertainty bounds, each population's own head and the population estimator (which decides
 * the threshold of a study without an age). Provenance (paths, notes, how a head was fitted)
 * may be reworded without a new version; these may not.
 */
export function decisionRule(m: Partial<ModelManifest>): Record<string, unknown> {
  const t = m.threshold;
  const q = m.quantization;
  const e = m.populationEstimator;
  return {
    name: m.name,
    version: m.version,
    architecture: m.architecture,
    architectureConfig: m.architectureConfig,
    inputSize: m.inputSize,
    files: m.files,
    threshold: t ? { value: t.value, targetRecall: t.targetRecall, ...populationValues(t) } : null,
    ...(m.calibration ? { calibration: calibrationValues(m.calibration) } : {}),
    ...(q ? { int8Served: { served: q.served, file: q.file } } : {}),
    ...(q?.threshold ? { int8Threshold: { value: q.threshold.value, ...populationValues(q.threshold) } } : {}),
    ...(q?.probabilityCalibration ? { int8Calibration: calibrationValues(q.probabilityCalibration) } : {}),
    ...(e
      ? { populationEstimator: { above: e.above, below: e.below, inputs: e.inputs, weights: e.weights, bias: e.bias, minConfidence: e.minConfidence } }
      : {}),
    // what the network is fed decides as much as the threshold does
    ...(m.intensity ? { intensity: intensityIdentity(m.intensity) } : {}),
  };
}

type PopulationRule = number | { value: number; calibration?: object; head?: object };

function populationValues(t: ThresholdInfo): { populations?: Record<string, PopulationRule>; uncertaintyBound?: number } {
  const rule = (p: PopulationThreshold): PopulationRule =>
    p.calibration || p.head
      ? {
          value: p.value,
          ...(p.calibration ? { calibration: calibrationValues(p.calibration) } : {}),
          ...(p.head ? { head: { inputs: p.head.inputs, weights: p.head.weights, bias: p.head.bias } } : {}),
        }
      : p.value;
  return {
    ...(t.populations ? { populations: Object.fromEntries(Object.entries(t.populations).map(([k, p]) => [k, rule(p!)])) } : {}),
    ...(t.uncertainty ? { uncertaintyBound: t.uncertainty.bound } : {}),
  };
}

function calibrationValues(c: CalibrationInfo): { method: string; a: number; b: number } {
  return { method: c.method, a: c.a, b: c.b };
}

/** The probability calibration the engine applies to a version served at `precision` (null: raw probabilities). */
export function servedCalibration(m: Pick<ModelManifest, 'calibration' | 'quantization'>, precision: 'float' | 'int8'): CalibrationInfo | null {
  return (precision === 'float' ? m.calibration : m.quantization?.probabilityCalibration) ?? null;
}

/** What differs between two manifests' decision rules, as 'key: a -> b' lines (empty when they agree). */
export function decisionDifferences(a: Partial<ModelManifest>, b: Partial<ModelManifest>): string[] {
  return valueChanges(decisionRule(a), decisionRule(b)).map(formatChange);
}

export interface ValueChange {
  /** dotted path, e.g. threshold.value */
  key: string;
  from: unknown;
  to: unknown;
}

/** Leaf-by-leaf differences of two JSON values (objects are walked, arrays and scalars compared whole). */
export function valueChanges(a: unknown, b: unknown, at = ''): ValueChange[] {
  if (canonicalJson(a) === canonicalJson(b)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => valueChanges(a[k], b[k], at ? `${at}.${k}` : k));
  }
  return [{ key: at || '(value)', from: a, to: b }];
}

export function formatChange(c: ValueChange): string {
  const show = (v: unknown) => (v === undefined ? '(none)' : typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? `${v.slice(0, 12)}…` : JSON.stringify(v));
  return `${c.key}: ${show(c.from)} -> ${show(c.to)}`;
}

/** The manifest sections `models diff` compares (what a reviewer of a new version asks about). */
export const DIFF_SECTIONS = ['threshold', 'metrics', 'architecture', 'architectureConfig', 'inputSize', 'derivedFrom', 'files', 'training'] as const;

/** Differences between two versions' manifests, section by section (createdAt, version and notes left out). */
export function manifestChanges(a: ModelManifest, b: ModelManifest): ValueChange[] {
  // the int8 model's own threshold is a decision rule too (the one served when int8 is)
  const pick = (m: ModelManifest) => ({
    ...Object.fromEntries(DIFF_SECTIONS.map((k) => [k, m[k]])),
    ...(m.calibration ? { calibration: m.calibration } : {}),
    ...(m.quantization?.threshold ? { 'quantization.threshold': m.quantization.threshold } : {}),
    ...(m.quantization?.probabilityCalibration ? { 'quantization.probabilityCalibration': m.quantization.probabilityCalibration } : {}),
  });
  return valueChanges(pick(a), pick(b));
}
