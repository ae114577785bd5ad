import type * as tf from '@tensorflow/tfjs';
import { CxrError } from '../../errors.js';
import { buildDenseNet121SE, densenetConfig, type DenseNetOptions } from '../densenet.js';
import { buildUNet, unetConfig, type UNetOptions } from '../unet.js';
import type { Task } from './types.js';

/** Everything that decides a training run; saved verbatim next to the run and in the manifest. */
export interface TrainConfig {
  task: Task;
  /** square network input (segmenter 256, classifier 224 by default) */
  inputSize: number;
  /** builder options other than inputSize and seed (test-size variants shrink these) */
  architecture: Omit<UNetOptions, 'inputSize' | 'seed'> | Omit<DenseNetOptions, 'inputSize' | 'seed' | 'withFeatures'>;
  epochs: number;
  /** images per forward/backward pass */
  batchSize: number;
  /** passes whose gradients are averaged into one optimizer step (effective batch = batchSize * accumulate) */
  accumulate: number;
  /** initial Adam learning rate, decayed by a cosine to lr * lrMinFactor over all steps */
  lr: number;
  lrMinFactor: number;
  /** coupled L2 on every kernel: l2 * sum(w^2) */
  l2: number;
  seed: number;
  /** epochs without a better validation metric before stopping (0 = never stop early) */
  patience: number;
  focalAlpha: number;
  focalGamma: number;
  /** classifier class weights [negative, positive]; 'balanced' derives them from the train split */
  classWeights: [number, number] | 'balanced' | null;
  /** recall the decision threshold is calibrated for on the validation split */
  targetRecall: number;
  /** store the version's weights as float16 */
  float16: boolean;
  /**
   * classifier: the stem and the first N dense blocks (with their transitions) are kept as
   * initialised (fine-tuning: the early filters see edges and textures any film has), so the
   * backward pass stops at block N+1: about 1.7x (N=2) to 2.5x (N=3) cheaper per image.
   * Their batch-norm statistics still follow the new data. 0 or absent: everything trains.
   */
  freezeBlocks?: number;
}

export function defaultConfig(task: Task): TrainConfig {
  return {
    task,
    inputSize: task === 'segmenter' ? 256 : 224,
    architecture: {},
    epochs: task === 'segmenter' ? 20 : 30,
    // what fits the 4 GiB wasm heap with room to spare (measured high-water marks: U-Net 256
    // batch 4 ~2.9 GB, DenseNet121-SE 224 batch 2 ~2.9 GB); both give an effective batch of 8
    batchSize: task === 'segmenter' ? 4 : 2,
    accumulate: task === 'segmenter' ? 2 : 4,
    lr: task === 'segmenter' ? 1e-3 : 3e-4,
    lrMinFactor: 0.01,
    l2: 1e-3,
    seed: 1,
    patience: task === 'segmenter' ? 5 : 8,
    focalAlpha: 0.25,
    focalGamma: 2,
    classWeights: null,
    targetRecall: 0.95,
    float16: true,
  };
}

export function validateConfig(c: TrainConfig): TrainConfig {
  const bad = (why: string): never => {
    throw new CxrError('E_BAD_ARGUMENT', why);
  };
  if (c.task !== 'segmenter' && c.task !== 'classifier') bad(`unknown task '${String(c.task)}'`);
  for (const k of ['epochs', 'batchSize', 'accumulate', 'inputSize'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (!Number.isInteger(c.patience) || c.patience < 0) bad(`patience must be an integer >= 0, got ${c.patience}`);
  if (!(c.lr > 0)) bad(`lr must be > 0, got ${c.lr}`);
  if (!(c.lrMinFactor >= 0 && c.lrMinFactor <= 1)) bad(`lrMinFactor must be in [0,1], got ${c.lrMinFactor}`);
  if (!(c.l2 >= 0)) bad(`l2 must be >= 0, got ${c.l2}`);
  if (!(c.targetRecall > 0 && c.targetRecall <= 1)) bad(`target recall must be in (0,1], got ${c.targetRecall}`);
  if (!(c.focalAlpha >= 0 && c.focalAlpha <= 1)) bad(`focal alpha must be in [0,1], got ${c.focalAlpha}`);
  if (!(c.focalGamma >= 0)) bad(`focal gamma must be >= 0, got ${c.focalGamma}`);
  if (c.freezeBlocks != null && (!Number.isInteger(c.freezeBlocks) || c.freezeBlocks < 0)) bad(`freezeBlocks must be an integer >= 0, got ${c.freezeBlocks}`);
  if (c.freezeBlocks && c.task !== 'classifier') bad('freezeBlocks is for the classifier');
  if (Array.isArray(c.classWeights) && (c.classWeights.length !== 2 || c.classWeights.some((w) => !(w > 0)))) {
    bad('class weights must be two positive numbers');
  }
  try {
    architectureOptions(c);
  } catch (e) {
    bad(`architecture: ${(e as Error).message}`);
  }
  return c;
}

export function architectureName(task: Task): string {
  return task === 'segmenter' ? 'unet' : 'densenet121-se';
}

/** The full builder options (defaults filled in) for the manifest. */
export function architectureOptions(c: TrainConfig): Record<string, unknown> {
  const opts = { ...c.architecture, inputSize: c.inputSize, seed: c.seed };
  return c.task === 'segmenter' ? { ...unetConfig(opts) } : { ...densenetConfig(opts) };
}

export function buildModel(c: TrainConfig): tf.LayersModel {
  const opts = { ...c.architecture, inputSize: c.inputSize, seed: c.seed };
  return c.task === 'segmenter' ? buildUNet(opts) : buildDenseNet121SE({ ...opts, withFeatures: false });
}

/** Marks the classifier's stem and first `blocks` dense blocks (and their transitions) not trainable; returns how many layers it froze. */
export function freezeBlocks(model: tf.LayersModel, blocks: number): number {
  if (blocks <= 0) return 0;
  const frozen = (name: string): boolean => {
    if (name.startsWith('stem')) return true;
    const m = /^(block|transition)(\d+)_/.exec(name);
    return m != null && Number(m[2]) <= blocks;
  };
  let n = 0;
  for (const layer of model.layers) {
    if (frozen(layer.name)) {
      layer.trainable = false;
      n++;
    }
  }
  return n;
}

/** Balanced weights N / (2 N_c), so each class contributes equally to the loss. */
export function balancedClassWeights(labels: ArrayLike<number>): [number, number] {
  let pos = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] >= 0.5) pos++;
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return [1, 1];
  return [labels.length / (2 * neg), labels.length / (2 * pos)];
}
