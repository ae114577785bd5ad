import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CxrError } from '../errors.js';
import {
  assertManifest,
  locateModelVersion,
  MANIFEST_FILE,
  notAVersion,
  ONNX_FILE,
  readManifest,
  type ModelManifest,
  type ModelName,
} from '../ml/model-store/index.js';
import { fitsWithoutVnni, int8WeightMax } from '../ml/onnx/quantize/weight-range.js';
import { int8SaturatesHere } from './cpu-features.js';
import { servedFile, type Precision, type ServedFile } from './precision.js';
import type { ModelRef } from './types.js';

export interface ServedModel {
  ref: ModelRef;
  dir: string;
  manifest: ModelManifest;
  /** the served ONNX file's bytes (model.onnx or model.int8.onnx), already checked against the manifest's sha256 */
  bytes: Uint8Array;
  /** which file, and the classifier threshold that goes with it */
  served: ServedFile;
}

/**
 * Finds (the ACTIVE one, else the newest, or takes `versionDir`), hash-checks and reads the
 * ONNX model of `name`: model.onnx, or model.int8.onnx when `precision` (precision.ts) says so.
 */
export async function loadServedModel(modelsDir: string, name: ModelName, versionDir?: string, precision: Precision = 'auto'): Promise<ServedModel> {
  const dir = versionDir ? resolve(versionDir) : await locateModelVersion(modelsDir, name);
  if (versionDir && !existsSync(join(dir, MANIFEST_FILE))) throw notAVersion(dir, name, modelsDir);
  const float = (await readManifest(dir).catch(() => null))?.quantization?.float;
  const rebuild = float?.shipped === false;
  if (!existsSync(join(dir, ONNX_FILE)) && !rebuild) {
    throw new CxrError(
      'E_MODEL_MISSING',
      `${dir} has no ${ONNX_FILE}: run \`cxr-triage export-onnx --model ${dir}\` (it writes a revision of it with model.onnx) and activate that`,
    );
  }
  // every file must match the manifest: a model that is not the one measured is not served
  const manifest = await assertManifest(dir);
  const served = servedFile(manifest, dir, precision);
  if (served.file === ONNX_FILE && rebuild && float) {
    const bytes = await rebuildFloat(dir, name, float);
    return { ref: { name, version: manifest.version, sha256: float.sha256, precision: 'float' }, dir, manifest, bytes, served };
  }
  const sha256 = manifest.files[served.file];
  if (!sha256) throw new CxrError('E_MODEL_INVALID', `${dir}: ${served.file} is not listed in manifest.json`);
  const bytes = new Uint8Array(await readFile(join(dir, served.file)));
  if (served.precision === 'int8') refuseSaturatingInt8(dir, bytes);
  return { ref: { name, version: manifest.version, sha256, precision: served.precision }, dir, manifest, bytes, served };
}

/**
 * An int8 model quantized with 8-bit weights scores differently on an x86 CPU without VNNI
 * (probabilities moved by up to 0.27 on real films), so its threshold no longer holds: such a
 * machine refuses it rather than triage with scores it was not calibrated on.
 */
function refuseSaturatingInt8(dir: string, bytes: Uint8Array): void {
  if (!int8SaturatesHere()) return;
  const max = int8WeightMax(bytes, dir);
  if (fitsWithoutVnni(max)) return;
  throw new CxrError(
    'E_MODEL_INVALID',
    `${dir}: its int8 model has 8-bit weights (up to ±${max}) and this CPU has AVX2 without VNNI, where ONNX Runtime's int8 kernels ` +
      `saturate and the scores differ from those its threshold was picked on; quantize the version again (\`cxr-triage quantize\` now ` +
      `writes 7-bit weights) or serve float (CXR_PRECISION=float)`,
  );
}

/**
 * A version shipped without model.onnx (quantize --drop-float) rebuilds it from its tfjs
 * weights (already hash-checked) and serves it only when it is byte for byte the one measured.
 */
async function rebuildFloat(dir: string, kind: ModelName, float: { sha256: string; metadata: Record<string, string> }): Promise<Uint8Array> {
  // loaded only here: serving int8 never pays for tfjs
  const { exportOnnxBytes } = await import('../ml/onnx/model-version.js');
  const bytes = await exportOnnxBytes(dir, kind, float.metadata);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== float.sha256) {
    throw new CxrError(
      'E_MODEL_INVALID',
      `${dir}: the float model rebuilt from the tfjs weights (sha256 ${sha256.slice(0, 12)}…) is not the one measured (${float.sha256.slice(0, 12)}…); serve int8, or quantize the source version again without --drop-float`,
    );
  }
  return bytes;
}
