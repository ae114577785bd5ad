import * as tf from '@tensorflow/tfjs';
import { batchNorm, heNormal, glorotUniform, relu, SeedSequence, type SymbolicTensor } from './layers/blocks.js';

export interface UNetOptions {
  /** square input side in pixels; must be divisible by 2^depth (default 256) */
  inputSize?: number;
  /** filters at the first level, doubled at each level below (default 16) */
  base?: number;
  /** number of down levels (default 4: 16-32-64-128, bottleneck 256) */
  depth?: number;
  /** initializer seed (default 0) */
  seed?: number;
}

export interface UNetConfig {
  inputSize: number;
  base: number;
  depth: number;
  seed: number;
}

export function unetConfig(opts: UNetOptions = {}): UNetConfig {
  const cfg = { inputSize: opts.inputSize ?? 256, base: opts.base ?? 16, depth: opts.depth ?? 4, seed: opts.seed ?? 0 };
  if (!Number.isInteger(cfg.depth) || cfg.depth < 1) throw new RangeError(`unet depth must be a positive integer, got ${cfg.depth}`);
  if (!Number.isInteger(cfg.base) || cfg.base < 1) throw new RangeError(`unet base must be a positive integer, got ${cfg.base}`);
  if (cfg.inputSize % 2 ** cfg.depth !== 0) {
    throw new RangeError(`unet input size ${cfg.inputSize} is not divisible by 2^${cfg.depth}`);
  }
  return cfg;
}

/** Two 3x3 conv + BN + ReLU, as `block()` in the PyTorch reference (convs keep their bias). */
function doubleConv(x: SymbolicTensor, filters: number, name: string, seeds: SeedSequence): SymbolicTensor {
  let y = x;
  for (const i of [1, 2]) {
    y = tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', kernelInitializer: heNormal(seeds), name: `${name}_conv${i}` }).apply(y) as SymbolicTensor;
    y = batchNorm(`${name}_bn${i}`).apply(y) as SymbolicTensor;
    y = relu(`${name}_relu${i}`).apply(y) as SymbolicTensor;
  }
  return y;
}

/**
 * Lung-field U-Net (DESIGN "Models"): windowed image in, per-pixel lung probability out.
 * Same shapes and parameter count as `UNet` in shared/bench/reference_pipeline.py:
 * levels of two conv-BN-ReLU, 2x2 max pooling, a bottleneck of base*2^depth filters,
 * 2x2 stride-2 transposed convolutions up, skips concatenated after the upsampled map,
 * and a 1x1 conv with sigmoid.
 */
export function buildUNet(opts: UNetOptions = {}): tf.LayersModel {
  const cfg = unetConfig(opts);
  const seeds = new SeedSequence(cfg.seed);
  const ch = Array.from({ length: cfg.depth + 1 }, (_, i) => cfg.base * 2 ** i);
  const input = tf.input({ shape: [cfg.inputSize, cfg.inputSize, 1], name: 'image' });
  const skips: SymbolicTensor[] = [];
  let x: SymbolicTensor = input;
  for (let i = 0; i < cfg.depth; i++) {
    x = doubleConv(x, ch[i], `down${i}`, seeds);
    skips.push(x);
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `down${i}_pool` }).apply(x) as SymbolicTensor;
  }
  x = doubleConv(x, ch[cfg.depth], 'mid', seeds);
  for (let i = cfg.depth - 1; i >= 0; i--) {
    const up = tf.layers
      .conv2dTranspose({ filters: ch[i], kernelSize: 2, strides: 2, padding: 'valid', kernelInitializer: glorotUniform(seeds), name: `up${i}_tconv` })
      .apply(x) as SymbolicTensor;
    x = tf.layers.concatenate({ axis: -1, name: `up${i}_concat` }).apply([up, skips[i]]) as SymbolicTensor;
    x = doubleConv(x, ch[i], `up${i}`, seeds);
  }
  const mask = tf.layers
    .conv2d({ filters: 1, kernelSize: 1, activation: 'sigmoid', kernelInitializer: glorotUniform(seeds), name: 'mask' })
    .apply(x) as SymbolicTensor;
  return tf.model({ inputs: input, outputs: mask, name: 'unet' });
}
