import { convKernelToOihw, deconvKernelToIohw, depthwiseKernelToOihw, samePadding } from '../layout.js';
import {
  cfgBool,
  cfgPair,
  cfgString,
  dim,
  requireChannelsLast,
  requireRank,
  requireWeight,
  unsupported,
  type Converter,
  type LayerContext,
  type TensorRef,
} from '../context.js';
import { emitActivation } from './activation.js';

/**
 * The input to feed a convolution and the explicit ONNX pads [top, left, bottom, right].
 * A pending ZeroPadding2D folds into the pads; 'same' padding adds TF's split on top
 * (both pad with zeros, so they add up).
 */
function convInput(ctx: LayerContext, kernel: [number, number], strides: [number, number], dilation: [number, number]) {
  const x = ctx.inputs[0];
  requireRank(ctx, x, 4);
  let source = x;
  let [top, bottom, left, right] = [0, 0, 0, 0];
  if (x.pendingPad) {
    source = x.pendingPad.source;
    [top, bottom, left, right] = x.pendingPad.pads;
  }
  const padding = cfgString(ctx, 'padding', 'valid');
  if (padding === 'same') {
    const [t, b] = samePadding(dim(ctx, x.shape[1]), kernel[0], strides[0], dilation[0]);
    const [l, r] = samePadding(dim(ctx, x.shape[2]), kernel[1], strides[1], dilation[1]);
    top += t;
    bottom += b;
    left += l;
    right += r;
  } else if (padding !== 'valid') {
    unsupported(ctx, `padding '${padding}'`);
  }
  return { input: ctx.materialize(source), pads: [top, left, bottom, right] };
}

function biasOrZeros(ctx: LayerContext, channels: number): Float32Array {
  // A zero bias is still emitted so that a following batch norm can fold its shift into it.
  const b = cfgBool(ctx, 'useBias', true) ? requireWeight(ctx, 'bias').data : undefined;
  return b ? Float32Array.from(b) : new Float32Array(channels);
}

function finish(ctx: LayerContext, out: string, weight: string, bias: string, channelAxis: 0 | 1): TensorRef {
  const activation = cfgString(ctx, 'activation', 'linear');
  const raw: TensorRef = { name: out, shape: ctx.outputShape, foldable: { weight, bias, channelAxis } };
  return activation === 'linear' ? raw : emitActivation(ctx, activation, { name: out, shape: ctx.outputShape });
}

export const conv2d: Converter = (ctx) => {
  requireChannelsLast(ctx);
  const kernel = requireWeight(ctx, 'kernel');
  const [kh, kw, cin, cout] = kernel.shape;
  const strides = cfgPair(ctx, 'strides', [1, 1]);
  const dilations = cfgPair(ctx, 'dilationRate', [1, 1]);
  const { input, pads } = convInput(ctx, [kh, kw], strides, dilations);
  const w = ctx.g.floatInit(`${ctx.layerName}/W`, convKernelToOihw(kernel.data, kh, kw, cin, cout), [cout, cin, kh, kw]);
  const b = ctx.g.floatInit(`${ctx.layerName}/B`, biasOrZeros(ctx, cout), [cout]);
  const out = ctx.g.node('Conv', [input, w, b], `${ctx.layerName}/conv`, {
    kernel_shape: [kh, kw],
    strides,
    dilations,
    pads,
    group: 1,
  });
  return finish(ctx, out, w, b, 0);
};

export const depthwiseConv2d: Converter = (ctx) => {
  requireChannelsLast(ctx);
  const kernel = requireWeight(ctx, 'depthwise_kernel');
  const [kh, kw, c, m] = kernel.shape;
  const strides = cfgPair(ctx, 'strides', [1, 1]);
  const dilations = cfgPair(ctx, 'dilationRate', [1, 1]);
  const { input, pads } = convInput(ctx, [kh, kw], strides, dilations);
  const w = ctx.g.floatInit(`${ctx.layerName}/W`, depthwiseKernelToOihw(kernel.data, kh, kw, c, m), [c * m, 1, kh, kw]);
  const b = ctx.g.floatInit(`${ctx.layerName}/B`, biasOrZeros(ctx, c * m), [c * m]);
  const out = ctx.g.node('Conv', [input, w, b], `${ctx.layerName}/dwconv`, {
    kernel_shape: [kh, kw],
    strides,
    dilations,
    pads,
    group: c,
  });
  return finish(ctx, out, w, b, 0);
};

export const conv2dTranspose: Converter = (ctx) => {
  requireChannelsLast(ctx);
  const x = ctx.inputs[0];
  requireRank(ctx, x, 4);
  const kernel = requireWeight(ctx, 'kernel');
  const [kh, kw, cout, cin] = kernel.shape;
  const [sh, sw] = cfgPair(ctx, 'strides', [1, 1]);
  const [dh, dw] = cfgPair(ctx, 'dilationRate', [1, 1]);
  if (dh !== 1 || dw !== 1) unsupported(ctx, 'dilated transposed convolution');
  const padding = cfgString(ctx, 'padding', 'valid');
  if (padding !== 'same' && padding !== 'valid') unsupported(ctx, `padding '${padding}'`);
  // The output size tfjs computed fixes the padding: a transposed conv is the gradient of
  // a forward conv from `out` to `in`, so 'same' uses that forward conv's TF padding split.
  const axis = (inSize: number, outSize: number, k: number, s: number): [number, number, number] => {
    const total = padding === 'same' ? Math.max((inSize - 1) * s + k - outSize, 0) : 0;
    const begin = Math.floor(total / 2);
    const outputPadding = outSize - (s * (inSize - 1) + k - total);
    if (outputPadding < 0 || outputPadding >= s) unsupported(ctx, `output size ${outSize} from ${inSize}`);
    return [begin, total - begin, outputPadding];
  };
  const [pt, pb, oph] = axis(dim(ctx, x.shape[1]), dim(ctx, ctx.outputShape[1]), kh, sh);
  const [pl, pr, opw] = axis(dim(ctx, x.shape[2]), dim(ctx, ctx.outputShape[2]), kw, sw);
  const w = ctx.g.floatInit(`${ctx.layerName}/W`, deconvKernelToIohw(kernel.data, kh, kw, cout, cin), [cin, cout, kh, kw]);
  const b = ctx.g.floatInit(`${ctx.layerName}/B`, biasOrZeros(ctx, cout), [cout]);
  const out = ctx.g.node('ConvTranspose', [ctx.materialize(x), w, b], `${ctx.layerName}/deconv`, {
    kernel_shape: [kh, kw],
    strides: [sh, sw],
    pads: [pt, pl, pb, pr],
    output_padding: [oph, opw],
    group: 1,
  });
  return finish(ctx, out, w, b, 1);
};
