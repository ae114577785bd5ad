import * as tf from '@tensorflow/tfjs';
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
