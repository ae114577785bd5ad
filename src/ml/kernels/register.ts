import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { fusedBatchNormGradConfig } from './batch-norm-grad.js';
import { batchNormConfig } from './batch-norm-kernel.js';
import { installFusedBatchNormTraining } from './batch-norm-layer.js';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input.js';
import { nativeConv2DBackpropFilterConfig, nativeConv2DBackpropInputConfig, nativeConv2DConfig } from './native/conv-kernels.js';
import { nativeConcatConfig, nativeSliceConfig, nativeSplitVConfig } from './native/copy-kernels.js';
import type { NativeRuntime } from './native/ort-runtime.js';
import { nativeMaxPoolGradConfig } from './native/pool-kernels.js';
import { meanConfig, sumConfig } from './reduce.js';
import { setStreamingBackprop } from './streaming-backprop.js';
import { tileConfig } from './tile.js';

let registered: { native: boolean } | null = null;

function replaceKernel(config: KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName) != null) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

function current(kernelName: string): KernelConfig['kernelFunc'] {
  const k = tf.getKernel(kernelName, 'wasm');
  if (k == null) throw new Error(`wasm kernel ${kernelName} is missing`);
  return k.kernelFunc;
}

/**
 * Registers what training needs on top of tfjs' wasm kernels (once per process): the
 * missing Conv2DBackpropFilter, faster Conv2DBackpropInput, Tile, Mean, Sum and
 * FusedBatchNorm (all composed from XNNPACK-backed wasm kernels), and a FusedBatchNorm
 * gradient without full-size Tile, and training-mode BatchNormalization layers as one
 * custom-gradient op (see batch-norm-layer.ts). The engine's backward pass is switched to
 * one that frees gradients and saved tensors as soon as they are used (same values; see
 * streaming-backprop.ts). With `native` (onnxruntime, needs the non-threaded
 * wasm heap) the convolutions and their two gradients, MaxPoolGrad, and inner-axis Slice /
 * SplitV / Concat run on ORT's native kernels, each falling back to the wasm version for cases it does not cover. The gradient override
 * is global (every backend) and computes the same values as tfjs-core's.
 */
export function registerWasmTrainingKernels(native: NativeRuntime | null = null): { native: boolean } {
  if (registered) return registered;
  replaceKernel(conv2dBackpropFilterConfig);
  replaceKernel(conv2dBackpropInputConfig(current(tf.Conv2DBackpropInput)));
  replaceKernel(tileConfig(current(tf.Tile)));
  replaceKernel(meanConfig(current(tf.Mean)));
  replaceKernel(sumConfig(current(tf.Sum)));
  replaceKernel(batchNormConfig(current(tf.FusedBatchNorm)));
  if (native != null) {
    replaceKernel(nativeConv2DConfig(native, current(tf.Conv2D), false));
    replaceKernel(nativeConv2DConfig(native, current(tf.FusedConv2D), true));
    replaceKernel(nativeConv2DBackpropInputConfig(native, current(tf.Conv2DBackpropInput)));
    replaceKernel(nativeConv2DBackpropFilterConfig(native, current(tf.Conv2DBackpropFilter)));
    replaceKernel(nativeSliceConfig(native, current(tf.Slice)));
    replaceKernel(nativeSplitVConfig(native, current(tf.SplitV)));
    replaceKernel(nativeConcatConfig(native, current(tf.Concat)));
    replaceKernel(nativeMaxPoolGradConfig(native, current(tf.MaxPoolGrad)));
  }
  tf.registerGradient(fusedBatchNormGradConfig);
  installFusedBatchNormTraining();
  setStreamingBackprop(true);
  registered = { native: native != null };
  return registered;
}
