import * as tf from '@tensorflow/tfjs';
import type { FusedBatchNormAttrs, KernelBackend, KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { withScope } from './wasm-ops.js';

/**
 * FusedBatchNorm for NHWC float32 with per-channel parameters, as one XNNPACK pass: a 1x1
 * depthwise convolution with bias computes y = x·a + b with a = scale·rsqrt(variance+ε)
 * and b = offset - mean·a (folded on C-element vectors first). tfjs' wasm kernel runs a
 * scalar loop at about a quarter of that speed. Other shapes keep tfjs' kernel.
 */
export function batchNormConfig(fallback: KernelConfig['kernelFunc']): KernelConfig {
  return {
    kernelName: tf.FusedBatchNorm,
    backendName: 'wasm',
    kernelFunc: ((args: {
      inputs: { x: TensorInfo; mean: TensorInfo; variance: TensorInfo; offset?: TensorInfo; scale?: TensorInfo };
      backend: KernelBackend;
      attrs: FusedBatchNormAttrs;
    }) => {
      const { inputs, backend, attrs } = args;
      const { x, mean, variance, offset, scale } = inputs;
      const c = x.shape[x.shape.length - 1];
      const perChannel = (t: TensorInfo | undefined) =>
        t == null || (t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) === c && t.shape[t.shape.length - 1] === c);
      if (x.shape.length !== 4 || x.dtype !== 'float32' || ![mean, variance, offset, scale].every(perChannel)) {
        return fallback(args as never);
      }
      return withScope(backend, (s) => {
        const vec = (t: TensorInfo) => s.reshape(t, [c]);
        const eps = s.run('Fill', {}, { shape: [], value: attrs.varianceEpsilon, dtype: 'float32' });
        const rstd = s.run('Rsqrt', { x: s.run('Add', { a: vec(variance), b: eps }) });
        const a = scale == null ? rstd : s.run('Multiply', { a: rstd, b: vec(scale) });
        const shift = s.run('Multiply', { a: vec(mean), b: a });
        const b = offset == null ? s.run('Neg', { x: shift }) : s.run('Sub', { a: vec(offset), b: shift });
        return s.run('FusedDepthwiseConv2D', { x, filter: s.reshape(a, [1, 1, c, 1]), bias: b }, {
          strides: [1, 1],
          pad: 'valid',
          dataFormat: 'NHWC',
          dilations: [1, 1],
          dimRoundingMode: undefined,
          activation: 'linear',
        } as unknown as NamedAttrMap);
      });
    }) as unknown as KernelConfig['kernelFunc'],
  };
}
