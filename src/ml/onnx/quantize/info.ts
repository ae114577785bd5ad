import type { ThresholdInfo } from '../../manifest.js';

/** The int8 model's file name, next to model.onnx in the version folder. */
export const INT8_FILE = 'model.int8.onnx';

/** The serving rule: int8 is served by default only when its validation AUC is this close to float's. */
export const MAX_AUC_LOSS = 0.005;
/** ... and, for the segmenter, when its masks agree with the float masks at least this well (mean Dice). */
export const MIN_MASK_AGREEMENT = 0.98;

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
  floatNodes: { id: string; op: string; reason: string }[];
  bytes: { float: number; int8: number };
  comparison: QuantizationComparison | null;
  /** the engine serves the int8 model unless told otherwise (CXR_PRECISION=float) */
  served: boolean;
  /** why served is what it is, in words */
  decision: string;
  /** classifier: the int8 model's own threshold, picked like `threshold` on its probabilities */
  threshold?: ThresholdInfo;
  quantizedAt: string;
}
