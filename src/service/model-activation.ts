/**
 * Model activation: models/<name>/ACTIVE names the version the engine serves (read by
 * src/inference at load). Activating writes that file atomically, loads a new engine, and
 * swaps it in; if the new version does not load, the previous ACTIVE is put back.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CxrError, isCxrError } from '../errors.js';
import { ACTIVE_FILE } from '../inference/models.js';
import type { ModelRef, TriageEngine } from '../inference/types.js';
import { MANIFEST_FILE, readManifest, type ModelName } from '../ml/manifest.js';
import type { ManifestReader, TriageService } from './triage.js';

const MODEL_NAMES: readonly ModelName[] = ['segmenter', 'classifier'];

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new CxrError('E_CONFLICT', `cannot record the active version in ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

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
  if (!(MODEL_NAMES as readonly string[]).includes(name)) throw new CxrError('E_NOT_FOUND', `no model '${name}' (models are ${MODEL_NAMES.join(', ')})`);
  const dir = join(d.modelsDir, name, version);
  if (!existsSync(join(dir, MANIFEST_FILE))) throw new CxrError('E_NOT_FOUND', `no ${name} version '${version}' in ${d.modelsDir}`);
  // Every model's ACTIVE is written: without one the newest version would load, and activating
  // the classifier must not quietly change the segmenter too.
  const wanted = new Map<ModelName, string>(MODEL_NAMES.map((n) => [n, n === name ? version : d.service.models[n].version]));
  const previous = new Map<ModelName, string | null>();
  const restore = async () => {
    for (const [n, text] of previous) {
      const path = join(d.modelsDir, n, ACTIVE_FILE);
      if (text === null) await rm(path, { force: true });
      else await writeAtomic(path, text);
    }
  };
  let engine: TriageEngine;
  try {
    for (const [n, v] of wanted) {
      const path = join(d.modelsDir, n, ACTIVE_FILE);
      previous.set(n, existsSync(path) ? await readFile(path, 'utf8') : null);
      await writeAtomic(path, `${v}\n`);
    }
    engine = await d.loadEngine();
  } catch (e) {
    await restore();
    const why = isCxrError(e) ? `${e.code}: ${e.message}` : String(e);
    throw new CxrError('E_CONFLICT', `${name}@${version} cannot be served, the active version stays: ${why}`);
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
