import { CxrError } from '../errors.js';
import { ONNX_FILE, type ModelManifest, type ThresholdInfo } from '../ml/model-store/index.js';
import { INT8_FILE } from '../ml/onnx/quantize/info.js';

/**
 * Which of a version's ONNX models the engine serves:
 * - `auto` (default): the int8 model when `cxr-triage quantize` recorded the decision to serve
 *   it (manifest `quantization.served`: its validation AUC within 0.005 of float's), else float;
 * - `float`: model.onnx always (`CXR_PRECISION=float`);
 * - `int8`: model.int8.onnx, an error when the version has none.
 */
export const PRECISIONS = ['auto', 'float', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];
export type ServedPrecision = 'float' | 'int8';

export const FLOAT_FILE = ONNX_FILE;
export const PRECISION_ENV = 'CXR_PRECISION';

export function parsePrecision(value: string, what = '--precision'): Precision {
  const v = value.trim().toLowerCase();
  if (!(PRECISIONS as readonly string[]).includes(v)) {
    throw new CxrError('E_BAD_ARGUMENT', `${what} must be one of ${PRECISIONS.join(', ')}, got '${value}'`);
  }
  return v as Precision;
}

/** The precision asked for: the option, else $CXR_PRECISION, else auto. */
export function requestedPrecision(option?: Precision): Precision {
  if (option) return option;
  const env = process.env[PRECISION_ENV];
  return env ? parsePrecision(env, PRECISION_ENV) : 'auto';
}

export interface ServedFile {
  file: string;
  precision: ServedPrecision;
  /** the classifier's threshold for this file (the int8 model has its own) */
  threshold: ThresholdInfo | null;
}

export function servedFile(manifest: ModelManifest, dir: string, precision: Precision): ServedFile {
  const q = manifest.quantization;
  const float: ServedFile = { file: FLOAT_FILE, precision: 'float', threshold: manifest.threshold };
  if (precision === 'float') return float;
  if (!q) {
    if (precision === 'int8') throw new CxrError('E_MODEL_MISSING', `${dir} has no int8 model: run \`cxr-triage quantize ${dir} --calib DATA_DIR\``);
    return float;
  }
  if (precision === 'auto' && !q.served) return float;
  if (manifest.name === 'classifier' && !q.threshold) {
    throw new CxrError('E_MODEL_INVALID', `${dir}: the int8 classifier has no threshold of its own (manifest quantization.threshold); re-run quantize`);
  }
  return { file: q.file || INT8_FILE, precision: 'int8', threshold: q.threshold ?? null };
}
