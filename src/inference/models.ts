import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CxrError } from '../errors.js';
import { assertManifest, locateModelVersion, MANIFEST_FILE, notAVersion, ONNX_FILE, type ModelManifest, type ModelName } from '../ml/model-store/index.js';
import type { ModelRef } from './types.js';

export interface ServedModel {
  ref: ModelRef;
  dir: string;
  manifest: ModelManifest;
  /** model.onnx bytes, already checked against the manifest's sha256 */
  bytes: Uint8Array;
}

/** Finds (the ACTIVE one, else the newest, or takes `versionDir`), hash-checks and reads the ONNX model of `name`. */
export async function loadServedModel(modelsDir: string, name: ModelName, versionDir?: string): Promise<ServedModel> {
  const dir = versionDir ? resolve(versionDir) : await locateModelVersion(modelsDir, name);
  if (versionDir && !existsSync(join(dir, MANIFEST_FILE))) throw notAVersion(dir, name, modelsDir);
  if (!existsSync(join(dir, ONNX_FILE))) {
    throw new CxrError('E_MODEL_MISSING', `${dir} has no ${ONNX_FILE}: run \`cxr-triage export-onnx --model ${dir}\``);
  }
  // every file must match the manifest: a model that is not the one measured is not served
  const manifest = await assertManifest(dir);
  const sha256 = manifest.files[ONNX_FILE];
  if (!sha256) throw new CxrError('E_MODEL_INVALID', `${dir}: ${ONNX_FILE} is not listed in manifest.json`);
  const bytes = new Uint8Array(await readFile(join(dir, ONNX_FILE)));
  return { ref: { name, version: manifest.version, sha256 }, dir, manifest, bytes };
}
