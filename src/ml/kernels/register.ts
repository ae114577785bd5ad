import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { fusedBatchNormGradConfig } from './batch-norm-grad.js';
import { batchNormConfig } from './batch-norm-kernel.js';
import { fusedBatchNormTrainingActive, installFusedBatchNormTraining, SUPPORTED_LAYERS } from './batch-norm-layer.js';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input.js';
import { nativeConv2DBackpropFilterConfig, nativeConv2DBackpropInputConfig, nativeConv2DConfig } from './native/conv-kernels.js';
import { nativeConcatConfig, nativeSliceConfig, nativeSplitVConfig } from './native/copy-kernels.js';
import type { NativeRuntime } from './native/ort-runtime.js';
import { nativeMaxPoolGradConfig } from './native/pool-kernels.js';
import { meanConfig, sumConfig } from './reduce.js';
import { SUPPORTED_CORE, setStreamingBackprop, streamingBackpropActive } from './streaming-backprop.js';
import { tileConfig } from './tile.js';

let registered: { native: boolean } | null = null;
/** The kernels this module put in tfjs' registry, to check later that they are still the registered ones. */
const replaced: KernelConfig[] = [];

function replaceKernel(config: KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName) != null) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
  // a native kernel replaces the composed wasm one registered before it for the same op
  const earlier = replaced.findIndex((k) => k.kernelName === config.kernelName && k.backendName === config.backendName);
  if (earlier >= 0) replaced.splice(earlier, 1);
  replaced.push(config);
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

export interface PatchState {
  /** what is patched, e.g. `kernel Conv2DBackpropFilter (wasm)` */
  patch: string;
  active: boolean;
  /** why not, when inactive */
  reason?: string;
}

/**
 * Whether each patch of tfjs' internals made by registerWasmTrainingKernels is in effect
 * now: every replaced kernel is still the registered one, the FusedBatchNorm gradient is
 * ours, BatchNormalization layers run the fused training path, and the engine runs the
 * streaming backward pass. Empty before registerWasmTrainingKernels. A patch that silently
 * stopped applying (a tfjs release that moved what it patches) shows up here as inactive.
 */
export function trainingPatchStates(): PatchState[] {
  if (registered == null) return [];
  const states: PatchState[] = replaced.map((k) => {
    const now = tf.getKernel(k.kernelName, k.backendName);
    return {
      patch: `kernel ${k.kernelName} (${k.backendName})`,
      active: now?.kernelFunc === k.kernelFunc,
      reason: now == null ? 'no kernel registered' : 'another kernel is registered',
    };
  });
  states.push({
    patch: 'gradient of FusedBatchNorm',
    active: tf.getGradient(fusedBatchNormGradConfig.kernelName)?.gradFunc === fusedBatchNormGradConfig.gradFunc,
    reason: 'another gradient is registered',
  });
  states.push({
    patch: 'BatchNormalization.call (fused training mode)',
    active: fusedBatchNormTrainingActive(),
    reason: `needs @tensorflow/tfjs-layers ${SUPPORTED_LAYERS} (found ${tf.version_layers})`,
  });
  states.push({
    patch: 'engine.gradients (streaming backward pass)',
    active: streamingBackpropActive(),
    reason: `needs @tensorflow/tfjs-core ${SUPPORTED_CORE} (found ${tf.version_core})`,
  });
  return states.map((s) => (s.active ? { patch: s.patch, active: true } : s));
}
