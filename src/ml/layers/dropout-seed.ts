/**
 * Seeded dropout. A tfjs Dropout layer without a seed draws its mask from an unseeded source,
 * so two runs with the same --seed differ (the classifier's epoch-1 loss did); with a fixed
 * seed it would draw the same mask at every step. So before every forward pass of training
 * the layers get a seed derived from the run's seed, the epoch, the batch and the share of
 * the batch a thread computes: reproducible, and a different mask per step, as it should be.
 * The seed is runtime state only: weights and the ONNX graph do not depend on it.
 */
import type * as tf from '@tensorflow/tfjs';

const DROPOUT_CLASSES = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianDropout', 'AlphaDropout', 'GaussianNoise']);

/** A 32-bit mix of integers (murmur3's finaliser over each part), so nearby inputs give unrelated seeds. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** The seed of one training forward pass: run seed, epoch, batch index within the epoch. */
export function stepSeed(runSeed: number, epoch: number, batch: number): number {
  return mixSeed(runSeed, epoch, batch);
}

/** Gives every dropout-like layer of `model` its own seed for the next pass (undefined: unseeded). */
export function seedDropout(model: tf.LayersModel, seed: number | undefined): void {
  model.layers.forEach((layer, i) => {
    if (!DROPOUT_CLASSES.has(layer.getClassName())) return;
    // `seed` is a private field of these layers; it is read on every call
    (layer as unknown as { seed?: number }).seed = seed === undefined ? undefined : mixSeed(seed, i);
  });
}

/** The seed for share `share` of a batch cut over threads (share 0 is the main thread's). */
export function shareSeed(seed: number | undefined, share: number): number | undefined {
  return seed === undefined ? undefined : mixSeed(seed, share + 1);
}
