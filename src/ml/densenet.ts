import * as tf from '@tensorflow/tfjs';
import { CxrError } from '../errors.js';
import { batchNorm, bnRelu, glorotUniform, heNormal, SeedSequence, squeezeExcite, type SymbolicTensor } from './layers/blocks.js';

export interface DenseNetOptions {
  /** square input side (default 224) */
  inputSize?: number;
  /** dense layers per block (default DenseNet121: [6, 12, 24, 16]) */
  blocks?: number[];
  /** channels each dense layer adds (default 32) */
  growth?: number;
  /** bottleneck width as a multiple of growth (default 4) */
  bnSize?: number;
  /** channel factor of each transition (default 0.5) */
  compression?: number;
  /** stem convolution filters (default 64) */
  stemFilters?: number;
  /** SE reduction ratio (default 16) and the smallest SE hidden width (default 4, as torchvision's reference) */
  seReduction?: number;
  seMinHidden?: number;
  /** dropout before the head (default 0.5) */
  dropout?: number;
  /** initializer seed (default 0) */
  seed?: number;
  /** also output the final feature maps for the class activation map: outputs [probability, features] */
  withFeatures?: boolean;
}

export interface DenseNetConfig {
  inputSize: number;
  blocks: number[];
  growth: number;
  bnSize: number;
  compression: number;
  stemFilters: number;
  seReduction: number;
  seMinHidden: number;
  dropout: number;
  seed: number;
}

/** Name of the layer whose output is the CAM feature map (final BN-ReLU, 7x7x1024 at 224). */
export const FEATURES_LAYER = 'features_relu';
/** Name of the sigmoid head; its kernel weights the feature channels in the CAM. */
export const HEAD_LAYER = 'probability';

/** The network's total downsampling: the stem's /4, then one 2x2 pool per transition. */
export function densenetStride(blocks: readonly number[]): number {
  return 4 * 2 ** (blocks.length - 1);
}

export function densenetConfig(opts: DenseNetOptions = {}): DenseNetConfig {
  const cfg: DenseNetConfig = {
    inputSize: opts.inputSize ?? 224,
    blocks: opts.blocks ?? [6, 12, 24, 16],
    growth: opts.growth ?? 32,
    bnSize: opts.bnSize ?? 4,
    compression: opts.compression ?? 0.5,
    stemFilters: opts.stemFilters ?? 64,
    seReduction: opts.seReduction ?? 16,
    seMinHidden: opts.seMinHidden ?? 4,
    dropout: opts.dropout ?? 0.5,
    seed: opts.seed ?? 0,
  };
  if (cfg.blocks.length < 1 || cfg.blocks.some((b) => !Number.isInteger(b) || b < 1)) {
    throw new RangeError(`densenet blocks must be positive integers, got ${cfg.blocks.join(',')}`);
  }
  const reduction = densenetStride(cfg.blocks);
  if (cfg.inputSize % reduction !== 0) throw new RangeError(`densenet input size ${cfg.inputSize} is not divisible by ${reduction}`);
  if (!(cfg.compression > 0 && cfg.compression <= 1)) throw new RangeError(`compression must be in (0,1], got ${cfg.compression}`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new RangeError(`dropout must be in [0,1), got ${cfg.dropout}`);
  return cfg;
}

function channelsOf(x: SymbolicTensor): number {
  const c = x.shape[x.shape.length - 1];
  if (c == null) throw new RangeError('channel dimension must be known');
  return c;
}

function conv(filters: number, kernelSize: number, name: string, seeds: SeedSequence, strides = 1): tf.layers.Layer {
  return tf.layers.conv2d({ filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: heNormal(seeds), name });
}

/**
 * DenseNet121 with a squeeze-and-excitation block after every dense block (DESIGN
 * "Models"), one input channel and one sigmoid output. Layer for layer the same as
 * `densenet121_se()` in shared/bench/reference_pipeline.py (torchvision DenseNet121), except
 * for the 0.5 dropout before the head that the DESIGN asks for (no parameters) and TF-style
 * 'same' padding on the strided stem (same output sizes).
 */
export function buildDenseNet121SE(opts: DenseNetOptions = {}): tf.LayersModel {
  const cfg = densenetConfig(opts);
  const seeds = new SeedSequence(cfg.seed);
  const input = tf.input({ shape: [cfg.inputSize, cfg.inputSize, 1], name: 'image' });

  let x = conv(cfg.stemFilters, 7, 'stem_conv', seeds, 2).apply(input) as SymbolicTensor;
  x = bnRelu(x, 'stem');
  x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'stem_pool' }).apply(x) as SymbolicTensor;

  cfg.blocks.forEach((layers, b) => {
    for (let l = 0; l < layers; l++) {
      const name = `block${b + 1}_layer${l + 1}`;
      let y = bnRelu(x, `${name}_a`);
      y = conv(cfg.bnSize * cfg.growth, 1, `${name}_conv1`, seeds).apply(y) as SymbolicTensor;
      y = bnRelu(y, `${name}_b`);
      y = conv(cfg.growth, 3, `${name}_conv2`, seeds).apply(y) as SymbolicTensor;
      x = tf.layers.concatenate({ axis: -1, name: `${name}_concat` }).apply([x, y]) as SymbolicTensor;
    }
    x = squeezeExcite(x, `block${b + 1}_se`, { reduction: cfg.seReduction, minHidden: cfg.seMinHidden, seeds });
    if (b < cfg.blocks.length - 1) {
      const name = `transition${b + 1}`;
      const filters = Math.floor(channelsOf(x) * cfg.compression);
      x = bnRelu(x, name);
      x = conv(filters, 1, `${name}_conv`, seeds).apply(x) as SymbolicTensor;
      x = tf.layers.averagePooling2d({ poolSize: 2, strides: 2, name: `${name}_pool` }).apply(x) as SymbolicTensor;
    }
  });

  const features = tf.layers.activation({ activation: 'relu', name: FEATURES_LAYER }).apply(batchNorm('features_bn').apply(x)) as SymbolicTensor;
  let h = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(features) as SymbolicTensor;
  h = tf.layers.dropout({ rate: cfg.dropout, name: 'dropout' }).apply(h) as SymbolicTensor;
  const probability = tf.layers
    .dense({ units: 1, activation: 'sigmoid', kernelInitializer: glorotUniform(seeds), name: HEAD_LAYER })
    .apply(h) as SymbolicTensor;
  return tf.model({
    inputs: input,
    outputs: opts.withFeatures ? [probability, features] : probability,
    name: 'densenet121_se',
  });
}

/**
 * A model sharing `model`'s weights that outputs [probability, features] for the class
 * activation map: cam = relu(sum_c features[..., c] * head.kernel[c]) (+ bias before the
 * sigmoid, a constant that does not change where the map is high).
 */
export function featuresModel(model: tf.LayersModel): tf.LayersModel {
  if (model.outputs.length === 2) return model;
  const features = model.getLayer(FEATURES_LAYER).output as SymbolicTensor;
  return tf.model({ inputs: model.inputs, outputs: [model.outputs[0], features], name: `${model.name}_with_features` });
}

/** The layers a multi-scale head pools by default: dense blocks 2 and 3, normalised (BN-ReLU), as the next transition reads them. */
export const DEFAULT_HEAD_TAPS = ['transition2_relu', 'transition3_relu'] as const;

/**
 * The same network with a multi-scale head: the globally pooled outputs of `taps` (rank-4
 * layers, e.g. the BN-ReLU before a transition) concatenated, in that order, before the
 * final features' pooling, then dropout and Dense(1, sigmoid). Why: a network trained on one
 * hospital's films ends in features specialised to them; the earlier blocks' texture and
 * shape channels carry over to other films better, and a head refitted on frozen features
 * can use them. The new head's kernel starts at zero on the taps and as `model`'s on the
 * final features, so the new model scores exactly as `model` until the head is refitted.
 */
export function withHeadTaps(model: tf.LayersModel, taps: readonly string[]): tf.LayersModel {
  if (taps.length === 0) throw new CxrError('E_BAD_ARGUMENT', 'no head taps given');
  const names = new Set(model.layers.map((l) => l.name));
  const pooledFinal = model.getLayer('pool').output as SymbolicTensor;
  const pooledTaps = taps.map((t) => {
    if (!names.has(t)) throw new CxrError('E_BAD_ARGUMENT', `head tap '${t}' is not a layer of ${model.name}`);
    const out = model.getLayer(t).output as SymbolicTensor;
    if (Array.isArray(out) || out.shape.length !== 4) throw new CxrError('E_BAD_ARGUMENT', `head tap '${t}' is not a feature map`);
    return tf.layers.globalAveragePooling2d({ name: `${t}_pool` }).apply(out) as SymbolicTensor;
  });
  let h = tf.layers.concatenate({ axis: -1, name: 'head_concat' }).apply([...pooledTaps, pooledFinal]) as SymbolicTensor;
  const rate = (model.getLayer('dropout').getConfig() as { rate?: number }).rate ?? 0;
  h = tf.layers.dropout({ rate, name: 'dropout' }).apply(h) as SymbolicTensor;
  const dense = tf.layers.dense({ units: 1, activation: 'sigmoid', name: HEAD_LAYER });
  const probability = dense.apply(h) as SymbolicTensor;
  const [kernel, bias] = model.getLayer(HEAD_LAYER).getWeights();
  const inputs = h.shape[1]!;
  const k = new Float32Array(inputs);
  k.set(kernel.dataSync() as Float32Array, inputs - kernel.shape[0]);
  dense.setWeights([tf.tensor2d(k, [inputs, 1]), bias.clone()]);
  return tf.model({ inputs: model.inputs, outputs: probability, name: model.name });
}
