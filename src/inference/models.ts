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
  if (!existsSync(join(dir, ONNX_FILE))) {
    // a folder without model.onnx is served only when its int8 model is
    const m = await readManifest(dir).catch(() => null);
    if (!m || servedFile(m, dir, precision).file === ONNX_FILE) {
      throw new CxrError('E_MODEL_MISSING', `${dir} has no ${ONNX_FILE}: run \`cxr-triage export-onnx --model ${dir}\``);
    }
  }
  // every file must match the manifest: a model that is not the one measured is not served
  const manifest = await assertManifest(dir);
  const served = servedFile(manifest, dir, precision);
  const sha256 = manifest.files[served.file];
  if (!sha256) throw new CxrError('E_MODEL_INVALID', `${dir}: ${served.file} is not listed in manifest.json`);
  const bytes = new Uint8Array(await readFile(join(dir, served.file)));
  return { ref: { name, version: manifest.version, sha256, precision: served.precision }, dir, manifest, bytes, served };
}
