/** The int8 model's file name, next to model.onnx in the version folder. */
export const INT8_FILE = 'model.int8.onnx';

/** The serving rule: int8 is served by default only when its validation AUC is this close to float's. */
export const MAX_AUC_LOSS = 0.005;
/** ... and, for the segmenter, when its masks agree with the float masks at least this well (mean Dice). */
export const MIN_MASK_AGREEMENT = 0.98;

export type { PipelineFigures, QuantizationComparison, QuantizationInfo } from '../../model-store/manifest.js';
