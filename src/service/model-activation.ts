/**
 * Model activation in a running service: models/<name>/ACTIVE names the version the engine
 * serves (the model store's format). Activating writes it through the store (the same step
 * `cxr-triage models activate` takes), loads a new engine, and swaps it in; if the new version
 * does not load, every ACTIVE is put back.
 */
import { join } from 'node:path';
import { CxrError, isCxrError } from '../errors.js';
import type { ModelRef, TriageEngine } from '../inference/types.js';
import { activateOnDisk, readManifest, type ModelName } from '../ml/model-store/index.js';
import type { ManifestReader, TriageService } from './triage.js';

export interface ActivationDeps {
  modelsDir: string;
  service: TriageService;
  /** loads an engine from modelsDir as it now stands */
  loadEngine: () => Promise<TriageEngine>;
}

/** Serialises activations: two at once would race on ACTIVE and on the swap. */
let pending: Promise<unknown> = Promise.resolve();

export function activateModelVersion(d: ActivationDeps, name: string, version: string): Promise<void> {
  const run = pending.then(() => activate(d, name, version));
  pending = run.catch(() => undefined);
  return run;
}

async function activate(d: ActivationDeps, name: string, version: string): Promise<void> {
  const served = d.service.models;
  // the other model stays what is served now, whatever the folder's newest is
  const refuse = (e: unknown): never => {
    if (isCxrError(e) && e.code === 'E_NOT_FOUND') throw e;
    const why = isCxrError(e) ? `${e.code}: ${e.message}` : String(e);
    throw new CxrError('E_CONFLICT', `${name}@${version} cannot be served, the active version stays: ${why}`);
  };
  const { restore } = await activateOnDisk(d.modelsDir, name, version, { segmenter: served.segmenter.version, classifier: served.classifier.version }).catch(
    refuse,
  );
  let engine: TriageEngine;
  try {
    engine = await d.loadEngine();
  } catch (e) {
    await restore();
    return refuse(e);
  }
  await d.service.swapEngine(engine);
}

/** Reads a served model's manifest for the model_versions table. */
export function manifestReader(modelsDir: string): ManifestReader {
  return async (ref: ModelRef) => {
    const kind: ModelName = ref.name === 'segmenter' ? 'segmenter' : 'classifier';
    try {
      const m = await readManifest(join(modelsDir, ref.name, ref.version));
      return { kind, manifest: m as unknown as Record<string, unknown> };
    } catch {
      return { kind, manifest: {} };
    }
  };
}
