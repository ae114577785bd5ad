import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeSynthDataset } from '../../src/data/synth-dataset.js';
import { randomModels } from './random-models.js';
import { initBackend } from '../../src/ml/backend.js';

/** The backend the project would pick here (CXR_BACKEND overrides), started quietly. */
export async function setupBackend(): Promise<string> {
  return initBackend({ log: () => {} });
}

export function paramCounts(model: tf.LayersModel): { trainable: number; nonTrainable: number } {
  const size = (w: tf.LayerVariable) => w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
  return {
    trainable: model.trainableWeights.reduce((s, w) => s + size(w), 0),
    nonTrainable: model.nonTrainableWeights.reduce((s, w) => s + size(w), 0),
  };
}

export function closeTo(actual: number, expected: number, tol: number, what = 'value'): void {
  if (!(Math.abs(actual - expected) <= tol)) throw new Error(`${what}: expected ${expected} ± ${tol}, got ${actual}`);
}

/**
 * A scratch folder for CLI tests: small random-weight models (seed 4) in `models`, a synthetic
 * dataset in `data` (folder `dataName`: evaluations name the set after it; tfjs on cpu). The caller removes `root`.
 */
export async function scratchModelsAndData(
  prefix: string,
  synth: { count: number; seed: number; sizeMin: number; sizeMax: number; workSize: number },
  dataName = 'data',
): Promise<{ root: string; models: string; data: string; segmenterDir: string; classifierDir: string }> {
  await tf.setBackend('cpu');
  const root = await mkdtemp(join(tmpdir(), prefix));
  const models = join(root, 'models');
  const data = join(root, dataName);
  const dirs = await randomModels(models, { size: 'small', seed: 4 });
  await writeSynthDataset({ out: data, ...synth });
  return { root, models, data, segmenterDir: dirs.segmenter, classifierDir: dirs.classifier };
}

/**
 * `import-weights` of `weights` for a scratch version (scratchModelsAndData) on its data and
 * split, calibrated for recall 0.75 (the synthetic validation sets have few pneumonias), plus `extra`.
 */
export function importWeightsArgs(weights: string, o: { from: string; split: string; data: string; segmenter: string }, ...extra: string[]): string[] {
  return ['import-weights', weights, '--from', o.from, '--split', o.split, '--data', o.data, '--segmenter', o.segmenter, '--target-recall', '0.75', ...extra];
}
