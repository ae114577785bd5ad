import type { AppliedWindow, DicomMetadata, WindowPolicy } from '../dicom/index.js';
import type { GrayImage } from '../imaging/types.js';

/** QC flags a report can carry; any of them flags the study for a human. */
export type QcFlag = 'lung_area_low' | 'lung_area_high' | 'mask_touches_border' | 'not_frontal_chest' | 'image_too_small';

/** Why a study was flagged: positive, uncertain (TTA spread too wide), or a QC flag. */
export type FlagReason = 'positive' | 'uncertain' | `qc:${QcFlag}`;

export interface ModelRef {
  name: string;
  version: string;
  /** sha256 of the ONNX file that produced the numbers (model.onnx, or model.int8.onnx) */
  sha256: string;
  /** float (model.onnx) or int8 (model.int8.onnx); absent means float */
  precision?: 'float' | 'int8';
}

/**
 * The name a served model is recorded under (model_versions, predictions): the version,
 * with `+int8` for the quantized file, whose bytes and figures differ from the float one's.
 */
export function recordedVersion(ref: ModelRef): string {
  return ref.precision === 'int8' ? `${ref.version}+int8` : ref.version;
}

/** The precision a recorded version names: the inverse of recordedVersion's suffix. */
export function recordedPrecision(recorded: string): 'int8' | 'float' {
  return recorded.endsWith('+int8') ? 'int8' : 'float';
}

/** The recall-focused report stored for every prediction. */
export interface TriageReport {
  probability: number;
  threshold: number;
  targetRecall: number;
  decision: 'positive' | 'negative';
  flagged: boolean;
  flagReasons: FlagReason[];
  /** at the threshold, on the validation split; specificity null when that split had no negatives */
  validation: { sensitivity: number; specificity: number | null };
  /**
   * The study's population (from the DICOM patient age) and whose threshold `threshold` is:
   * a population's when the version has per-population thresholds (the lowest for an unknown
   * age), else the version's single one. Absent in reports stored before it existed.
   */
  population?: {
    name: 'adult' | 'pediatric' | null;
    ageYears: number | null;
    ageSource: 'PatientAge' | 'PatientBirthDate' | null;
    thresholdOf: 'adult' | 'pediatric' | 'version';
    reason: string;
    /** age unknown: the population the film was estimated as, and how sure (fit-population) */
    estimate?: { population: 'adult' | 'pediatric'; probability: number; confident: boolean };
    /** set when the population's own head scored the study in place of the graph's (fit-population-head); the TTA views stay the graph's */
    scoredBy?: 'adult' | 'pediatric';
  };
  tta: { views: number; probabilities: number[]; spread: number; uncertainBound: number };
  lungAreaFraction: number;
  lungBox: { x0: number; y0: number; x1: number; y1: number } | null;
  qcFlags: QcFlag[];
  window: AppliedWindow;
  models: { segmenter: ModelRef; classifier: ModelRef };
  image: { width: number; height: number };
  /**
   * The class activation map of the identity view, scaled to [0,1] (0 = no evidence for the
   * finding), row-major; it covers `lungBox` (the whole image when lungBox is null). Small
   * enough to store with the report, so a heatmap can be drawn again without the models.
   */
  cam?: { width: number; height: number; values: number[] };
  /**
   * The cleaned lung mask at the segmenter's resolution over the whole image, as run lengths
   * (src/imaging/mask-runs.ts), so the outline a reviewer sees is the one behind the decision.
   */
  mask?: { width: number; height: number; runs: number[] };
  /** per stage (decode, resize, segment, postprocess, crop, tta, classify, report) and total */
  timingsMs: Record<string, number>;
}

export interface TriageResult {
  report: TriageReport;
  meta: DicomMetadata;
  /** Present when asked for: images a reviewer looks at. */
  artifacts?: {
    windowed: GrayImage;
    /** lung mask at the windowed image's size, 0/1 */
    mask: GrayImage;
    /** class activation map at the windowed image's size, [0,1] */
    heatmap: GrayImage;
  };
}

export interface AnalyzeOptions {
  tta?: number;
  window?: WindowPolicy;
  artifacts?: boolean;
  /**
   * The caller is done with the bytes: an engine in another thread may take them without a copy
   * (an 8 MB film), after which the caller's array is empty. An engine on the calling thread
   * ignores it.
   */
  handOver?: boolean;
}

/** Loaded once (sessions created and warmed), then shared by every request. */
export interface TriageEngine {
  readonly models: { segmenter: ModelRef; classifier: ModelRef };
  /** engines in threads: how many are loaded and taking studies now (absent: the engine is always there) */
  readonly threadsReady?: number;
  analyze(bytes: Uint8Array, opts?: AnalyzeOptions): Promise<TriageResult>;
  close(): Promise<void>;
}
