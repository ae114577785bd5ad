import * as tf from '@tensorflow/tfjs';

type Initializer = ReturnType<typeof tf.initializers.heNormal>;

/**
 * Building blocks shared by the two networks. They are made only of standard Keras layer
 * classes (no custom layers) so that the ONNX exporter and model.json loaders need no
 * registration step.
 */

export type SymbolicTensor = tf.SymbolicTensor;

/**
 * Hands out distinct seeds so that every layer's initializer is deterministic for a
 * model seed, yet no two layers of the same shape start with identical weights.
 */
export class SeedSequence {
  private next: number;
  constructor(seed: number) {
    this.next = Math.abs(Math.trunc(seed)) * 7919 + 1;
  }
  take(): number {
    this.next = (this.next * 1103515245 + 12345) % 2147483647;
    return this.next;
  }
}

export function heNormal(seeds: SeedSequence): Initializer {
  return tf.initializers.heNormal({ seed: seeds.take() });
}

export function glorotUniform(seeds: SeedSequence): Initializer {
  return tf.initializers.glorotUniform({ seed: seeds.take() });
}

/**
 * PyTorch's BatchNorm2d defaults (momentum 0.1 in its convention, i.e. 0.9 here; epsilon
 * 1e-5): with the small datasets and few epochs this project trains on, Keras' 0.99 leaves
 * the moving statistics near their initial values and inference then disagrees with training.
 */
export function batchNorm(name: string): tf.layers.Layer {
  return tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5, name });
}

export function relu(name: string): tf.layers.Layer {
  return tf.layers.activation({ activation: 'relu', name });
}

/** BN → ReLU applied to `x` (the pre-activation order DenseNet uses). */
export function bnRelu(x: SymbolicTensor, name: string): SymbolicTensor {
  const y = batchNorm(`${name}_bn`).apply(x) as SymbolicTensor;
  return relu(`${name}_relu`).apply(y) as SymbolicTensor;
}

/**
 * Squeeze-and-excitation (Hu et al. 2018) from standard layers: global average pool →
 * Dense(relu) → Dense(sigmoid) → Reshape to 1x1xC → channel-wise Multiply. The hidden width
 * is max(C / reduction, minHidden), as in the PyTorch reference.
 */
export function squeezeExcite(x: SymbolicTensor, name: string, opts: { reduction: number; minHidden: number; seeds: SeedSequence }): SymbolicTensor {
  const channels = x.shape[x.shape.length - 1];
  if (channels == null) throw new RangeError(`${name}: channel dimension must be known`);
  const hidden = Math.max(Math.floor(channels / opts.reduction), opts.minHidden);
  let s = tf.layers.globalAveragePooling2d({ name: `${name}_squeeze` }).apply(x) as SymbolicTensor;
  s = tf.layers.dense({ units: hidden, activation: 'relu', kernelInitializer: heNormal(opts.seeds), name: `${name}_fc1` }).apply(s) as SymbolicTensor;
  s = tf.layers.dense({ units: channels, activation: 'sigmoid', kernelInitializer: glorotUniform(opts.seeds), name: `${name}_fc2` }).apply(s) as SymbolicTensor;
  s = tf.layers.reshape({ targetShape: [1, 1, channels], name: `${name}_reshape` }).apply(s) as SymbolicTensor;
  return tf.layers.multiply({ name: `${name}_scale` }).apply([x, s]) as SymbolicTensor;
}
