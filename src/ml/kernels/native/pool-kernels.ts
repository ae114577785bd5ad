import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, KernelConfig, MaxPoolGradAttrs, TensorInfo } from '@tensorflow/tfjs';
import type { OnnxGraph } from './onnx-graph.js';
import type { NativeRuntime } from './ort-runtime.js';
import { runOnHeap } from './heap-run.js';

/**
 * MaxPoolGrad on onnxruntime: MaxPool again with its Indices output (the first maximum of
 * each window in row-major order, as tfjs picks it), then the output gradient
 * scatter-added to those positions. tfjs' wasm kernel is a scalar loop that took ~0.3 s
 * for DenseNet's single stem pooling at batch 8.
 */
export function nativeMaxPoolGradConfig(ort: NativeRuntime, fallback: KernelConfig['kernelFunc']): KernelConfig {
  const kernelFunc = ((args: { inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo }; backend: KernelBackend; attrs: MaxPoolGradAttrs }) => {
    const { inputs, backend, attrs } = args;
    const { dy, input } = inputs;
    if (input.dtype !== 'float32' || input.shape.length !== 4) return fallback(args as never);
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const [n, h, w, c] = input.shape;
    const total = n * h * w * c;
    const p = info.padInfo;
    return (
      runOnHeap(
        ort,
        backend,
        `maxpoolgrad|${input.shape}|${dy.shape}|${info.filterHeight},${info.filterWidth}|${info.strideHeight},${info.strideWidth}|${p.top},${p.left},${p.bottom},${p.right}`,
        { x: input, dy },
        { dx: input.shape },
        (): OnnxGraph => ({
          opset: 16,
          inputs: [
            { name: 'x', shape: input.shape },
            { name: 'dy', shape: dy.shape },
          ],
          outputs: [{ name: 'dx', shape: input.shape }],
          constants: [
            { name: 'flat', values: [-1] },
            { name: 'total', values: [total] },
            { name: 'nchw', values: [n, c, h, w] },
          ],
          nodes: [
            { op: 'Transpose', inputs: ['x'], outputs: ['xc'], attrs: { perm: [0, 3, 1, 2] } },
            {
              op: 'MaxPool',
              inputs: ['xc'],
              outputs: ['pooled', 'idx'],
              attrs: {
                kernel_shape: [info.filterHeight, info.filterWidth],
                strides: [info.strideHeight, info.strideWidth],
                pads: [p.top, p.left, p.bottom, p.right],
              },
            },
            { op: 'Transpose', inputs: ['dy'], outputs: ['dyc'], attrs: { perm: [0, 3, 1, 2] } },
            { op: 'Reshape', inputs: ['idx', 'flat'], outputs: ['idx1'] },
            { op: 'Reshape', inputs: ['dyc', 'flat'], outputs: ['dy1'] },
            { op: 'ConstantOfShape', inputs: ['total'], outputs: ['zeros'] },
            { op: 'ScatterElements', inputs: ['zeros', 'idx1', 'dy1'], outputs: ['dx1'], attrs: { axis: 0, reduction: 'add' } },
            { op: 'Reshape', inputs: ['dx1', 'nchw'], outputs: ['dxc'] },
            { op: 'Transpose', inputs: ['dxc'], outputs: ['dx'], attrs: { perm: [0, 2, 3, 1] } },
          ],
        }),
      )?.[0] ?? fallback(args as never)
    );
  }) as unknown as KernelConfig['kernelFunc'];
  return { kernelName: tf.MaxPoolGrad, backendName: 'wasm', kernelFunc };
}
