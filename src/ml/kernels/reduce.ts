import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, KernelConfig, MeanAttrs, SumAttrs, TensorInfo } from '@tensorflow/tfjs';
import { withScope } from './wasm-ops.js';

/**
 * Mean and Sum for wasm when the reduced axes are followed by kept ones, e.g. the
 * per-channel statistics of batch norm (axes 0,1,2 of NHWC) and global average pooling
 * (axes 1,2). tfjs' wasm kernels transpose the reduced axes to the end first, and that
 * transpose costs 10-20x the reduction. Here the input is viewed as [A, P, C] (P: the
 * reduced block, C: the kept trailing dims) and reduced by XNNPACK:
 *  - A = 1: a matrix product ones[1, P] · X[P, C] (1/P instead of 1 for the mean);
 *  - A > 1: an average pool with a P x 1 window over [A, P, 1, C] (times P for the sum).
 * Reductions over the innermost axes (already fast) and other dtypes keep tfjs' kernels.
 */
export interface ReductionView {
  outer: number;
  reduced: number;
  inner: number;
}

/** [A, P, C] for `axes` of `shape`, or null when they are not one block followed by kept dims. */
export function reductionView(shape: readonly number[], axes: readonly number[]): ReductionView | null {
  if (axes.length === 0) return null;
  const sorted = [...axes].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) if (sorted[i] !== sorted[i - 1] + 1) return null;
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  const prod = (a: number, b: number) => shape.slice(a, b).reduce((p, d) => p * d, 1);
  const view = { outer: prod(0, first), reduced: prod(first, last + 1), inner: prod(last + 1, shape.length) };
  return view.inner > 1 && view.reduced > 1 ? view : null;
}

function reduceKernel(kind: 'mean' | 'sum', fallback: KernelConfig['kernelFunc']): KernelConfig['kernelFunc'] {
  return ((args: { inputs: { x: TensorInfo }; backend: KernelBackend; attrs: MeanAttrs | SumAttrs }) => {
    const { inputs, backend, attrs } = args;
    const { x } = inputs;
    const axes = tf.util.parseAxisParam(attrs.axis, x.shape);
    const view = x.dtype === 'float32' ? reductionView(x.shape, axes) : null;
    if (view == null) return fallback(args as never);
    const [outShape] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
    const finalShape = attrs.keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    const { outer, reduced, inner } = view;
    return withScope(backend, (s) => {
      const pooled = s.run('AvgPool', { x: s.reshape(x, [outer, reduced, 1, inner]) }, {
        filterSize: [reduced, 1],
        strides: [1, 1],
        pad: 'valid',
        dimRoundingMode: undefined,
      } as never);
      const total = kind === 'sum' ? s.run('Multiply', { a: pooled, b: s.run('Fill', {}, { shape: [], value: reduced, dtype: 'float32' }) }) : pooled;
      return s.reshape(total, finalShape);
    });
  }) as unknown as KernelConfig['kernelFunc'];
}

export function meanConfig(fallback: KernelConfig['kernelFunc']): KernelConfig {
  return { kernelName: tf.Mean, backendName: 'wasm', kernelFunc: reduceKernel('mean', fallback) };
}

export function sumConfig(fallback: KernelConfig['kernelFunc']): KernelConfig {
  return { kernelName: tf.Sum, backendName: 'wasm', kernelFunc: reduceKernel('sum', fallback) };
}
