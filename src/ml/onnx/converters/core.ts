import { transpose2d } from '../layout.js';
import { cfgBool, cfgString, requireWeight, unsupported, type Converter } from '../context.js';
import { emitActivation } from './activation.js';

/**
 * Dense on [N, in] is a Gemm. On a rank-4 (NHWC) input Keras applies it to the channel
 * axis at every pixel, which in NCHW is a 1x1 convolution.
 */
export const dense: Converter = (ctx) => {
  const x = ctx.inputs[0];
  const kernel = requireWeight(ctx, 'kernel');
  const [cin, cout] = kernel.shape;
  const g = ctx.g;
  const base = ctx.layerName;
  const bias = cfgBool(ctx, 'useBias', true) ? Float32Array.from(requireWeight(ctx, 'bias').data) : new Float32Array(cout);
  const input = ctx.materialize(x);
  let name: string;
  if (x.shape.length === 2) {
    const w = g.floatInit(`${base}/W`, Float32Array.from(kernel.data), [cin, cout]);
    const b = g.floatInit(`${base}/B`, bias, [cout]);
    name = g.node('Gemm', [input, w, b], `${base}/gemm`, { transB: 0 });
  } else if (x.shape.length === 4) {
    const w = g.floatInit(`${base}/W`, transpose2d(kernel.data, cin, cout), [cout, cin, 1, 1]);
    const b = g.floatInit(`${base}/B`, bias, [cout]);
    name = g.node('Conv', [input, w, b], `${base}/conv1x1`, { kernel_shape: [1, 1] });
  } else if (x.shape.length === 3) {
    const w = g.floatInit(`${base}/W`, Float32Array.from(kernel.data), [cin, cout]);
    const b = g.floatInit(`${base}/B`, bias, [cout]);
    name = g.node('Add', [g.node('MatMul', [input, w], `${base}/matmul`), b], `${base}/bias`);
  } else {
    return unsupported(ctx, `input of rank ${x.shape.length}`);
  }
  return emitActivation(ctx, cfgString(ctx, 'activation', 'linear'), { name, shape: ctx.outputShape });
};

/** Dropout and noise layers are the identity at inference. */
export const identity: Converter = (ctx) => ({ ...ctx.inputs[0], shape: ctx.outputShape, foldable: undefined });
