import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CxrError } from '../errors.js';
import { assertManifest, readManifest, resolveModelVersion, type ModelManifest, type ModelName } from '../ml/manifest.js';
import { FLOAT_FILE, servedFile, type Precision, type ServedFile } from './precision.js';
import type { ModelRef } from './types.js';

export const ONNX_FILE = FLOAT_FILE;
/** models/<name>/ACTIVE names the version to serve; without it the newest version is used. */
export const ACTIVE_FILE = 'ACTIVE';

export interface ServedModel {
  ref: ModelRef;
  dir: string;
  manifest: ModelManifest;
  /** the served ONNX file's bytes (model.onnx or model.int8.onnx), already checked against the manifest's sha256 */
  bytes: Uint8Array;
  /** which file, and the classifier threshold that goes with it */
  served: ServedFile;
}

function howToShip(name: ModelName, modelsDir: string): string {
  return (
    `train one with \`cxr-triage train ${name} --data DIR --out ${join(modelsDir, name)}\`, ` +
    `then \`cxr-triage export-onnx --model ${join(modelsDir, name, '<version>')}\` writes its model.onnx`
  );
}

/** The version folder to serve: the one ACTIVE names, else the newest. */
export async function locateModelVersion(modelsDir: string, name: ModelName): Promise<string> {
  const root = resolve(modelsDir);
  const activeFile = join(root, name, ACTIVE_FILE);
  let version: string | undefined;
  if (existsSync(activeFile)) {
    version = (await readFile(activeFile, 'utf8')).trim();
    if (!version) throw new CxrError('E_MODEL_INVALID', `${activeFile} is empty: write the version to serve into it`);
  }
  try {
    return await resolveModelVersion(root, name, version);
  } catch (e) {
    if (e instanceof CxrError && e.code === 'E_MODEL_MISSING') {
      const what = version ? `the ${name} version '${version}' named in ${activeFile} is not` : `no ${name} model version is`;
      throw new CxrError('E_MODEL_MISSING', `${what} under ${root} (a folder with model.json, model.onnx and manifest.json): ${howToShip(name, modelsDir)}`);
    }
    throw e;
  }
}

/**
 * Finds (or takes `versionDir`), hash-checks and reads the ONNX model of `name`: model.onnx,
 * or model.int8.onnx when `precision` (see precision.ts) says so.
 */
export async function loadServedModel(modelsDir: string, name: ModelName, versionDir?: string, precision: Precision = 'auto'): Promise<ServedModel> {
  const dir = versionDir ? resolve(versionDir) : await locateModelVersion(modelsDir, name);
  if (versionDir && !existsSync(join(dir, 'manifest.json'))) {
    throw new CxrError('E_MODEL_MISSING', `${dir} is not a model version folder (no manifest.json): ${howToShip(name, modelsDir)}`);
  }
  if (!existsSync(join(dir, 'manifest.json')) || !existsSync(join(dir, ONNX_FILE))) {
    // a folder with a manifest but no model.onnx is served only when its int8 model is
    const m = existsSync(join(dir, 'manifest.json')) ? await readManifest(dir).catch(() => null) : null;
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
