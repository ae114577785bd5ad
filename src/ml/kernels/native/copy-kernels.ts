import * as tf from '@tensorflow/tfjs';
import type { ConcatAttrs, KernelBackend, KernelConfig, SliceAttrs, SplitVAttrs, TensorInfo } from '@tensorflow/tfjs';
import type { NativeRuntime } from './ort-runtime.js';
import { runOnHeap } from './heap-run.js';

/**
 * Slice, SplitV and Concat along inner axes, on onnxruntime. tfjs' wasm versions are
 * JavaScript loops that first copy the whole input off the heap (readSync) and then copy
 * one innermost row at a time; for DenseNet's channel concatenations and their gradients
 * (SplitV over NHWC channels: tens of thousands of 32-float rows per call) that made
 * SplitV alone ~5% of a training step. Small tensors and outer-axis cases, where the
 * copies are contiguous, stay on the wasm kernels.
 */
const MIN_ELEMENTS = 16 * 1024;

type KernelFunc = KernelConfig['kernelFunc'];

/** True when every dimension before `axis` is 1: the pieces are contiguous blocks. */
function contiguous(shape: readonly number[], axis: number): boolean {
  return shape.slice(0, axis).every((d) => d === 1);
}

export function nativeSliceConfig(ort: NativeRuntime, fallback: KernelFunc): KernelConfig {
  const kernelFunc = ((args: { inputs: { x: TensorInfo }; backend: KernelBackend; attrs: SliceAttrs }) => {
    const { inputs, backend, attrs } = args;
    const { x } = inputs;
    const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, attrs.begin, attrs.size);
    if (x.dtype !== 'float32' || tf.util.sizeFromShape(size) < MIN_ELEMENTS || tf.slice_util.isSliceContinous(x.shape, begin, size)) {
      return fallback(args as never);
    }
    return (
      runOnHeap(ort, backend, `slice|${x.shape}|${begin}|${size}`, { x }, { y: size }, () => ({
        inputs: [{ name: 'x', shape: x.shape }],
        outputs: [{ name: 'y', shape: size }],
        constants: [
          { name: 'starts', values: begin },
          { name: 'ends', values: begin.map((b, i) => b + size[i]) },
        ],
        nodes: [{ op: 'Slice', inputs: ['x', 'starts', 'ends'], outputs: ['y'] }],
      }))?.[0] ?? fallback(args as never)
    );
  }) as unknown as KernelFunc;
  return { kernelName: tf.Slice, backendName: 'wasm', kernelFunc };
}

export function nativeSplitVConfig(ort: NativeRuntime, fallback: KernelFunc): KernelConfig {
  const kernelFunc = ((args: { inputs: { x: TensorInfo }; backend: KernelBackend; attrs: SplitVAttrs }) => {
    const { inputs, backend, attrs } = args;
    const { x } = inputs;
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
    if (x.dtype !== 'float32' || tf.util.sizeFromShape(x.shape) < MIN_ELEMENTS || contiguous(x.shape, axis)) return fallback(args as never);
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, attrs.numOrSizeSplits, axis);
    const shapes = sizes.map((s) => x.shape.map((d, i) => (i === axis ? s : d)));
    const names = shapes.map((_, i) => `y${i}`);
    return (
      runOnHeap(ort, backend, `split|${x.shape}|${axis}|${sizes}`, { x }, Object.fromEntries(names.map((name, i) => [name, shapes[i]])), () => ({
        inputs: [{ name: 'x', shape: x.shape }],
        outputs: names.map((name, i) => ({ name, shape: shapes[i] })),
        constants: [{ name: 'sizes', values: sizes }],
        nodes: [{ op: 'Split', inputs: ['x', 'sizes'], outputs: names, attrs: { axis } }],
      })) ?? fallback(args as never)
    );
  }) as unknown as KernelFunc;
  return { kernelName: tf.SplitV, backendName: 'wasm', kernelFunc };
}

export function nativeConcatConfig(ort: NativeRuntime, fallback: KernelFunc): KernelConfig {
  const kernelFunc = ((args: { inputs: TensorInfo[]; backend: KernelBackend; attrs: ConcatAttrs }) => {
    const { inputs, backend, attrs } = args;
    const nonEmpty = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    if (nonEmpty.length < 2 || nonEmpty.some((t) => t.dtype !== 'float32')) return fallback(args as never);
    const axis = tf.util.parseAxisParam(attrs.axis, nonEmpty[0].shape)[0];
    const outShape = tf.backend_util.computeOutShape(
      nonEmpty.map((t) => t.shape),
      axis,
    );
    if (tf.util.sizeFromShape(outShape) < MIN_ELEMENTS || contiguous(outShape, axis)) return fallback(args as never);
    const names = nonEmpty.map((_, i) => `x${i}`);
    return (
      runOnHeap(
        ort,
        backend,
        `concat|${nonEmpty.map((t) => t.shape).join(';')}|${axis}`,
        Object.fromEntries(nonEmpty.map((t, i) => [names[i], t])),
        { y: outShape },
        () => ({
          inputs: nonEmpty.map((t, i) => ({ name: names[i], shape: t.shape })),
          outputs: [{ name: 'y', shape: outShape }],
          nodes: [{ op: 'Concat', inputs: names, outputs: ['y'], attrs: { axis } }],
        }),
      )?.[0] ?? fallback(args as never)
    );
  }) as unknown as KernelFunc;
  return { kernelName: tf.Concat, backendName: 'wasm', kernelFunc };
}
