import { samePadding } from '../layout.js';
import { cfgPair, cfgString, dim, requireChannelsLast, requireRank, unsupported, type Converter, type LayerContext, type TensorRef } from '../context.js';

function pool(ctx: LayerContext, op: 'MaxPool' | 'AveragePool'): TensorRef {
  requireChannelsLast(ctx);
  let x = ctx.inputs[0];
  requireRank(ctx, x, 4);
  const kernel = cfgPair(ctx, 'poolSize', [2, 2]);
  const strides = cfgPair(ctx, 'strides', kernel);
  const padding = cfgString(ctx, 'padding', 'valid');
  if (padding !== 'same' && padding !== 'valid') unsupported(ctx, `padding '${padding}'`);
  // TF's 'same' pooling ignores the padded cells: -inf for max, excluded from the mean for
  // average (ONNX count_include_pad=0), so explicit ONNX pads reproduce it.
  const same = (size: number | null, k: number, s: number): [number, number] => (padding === 'same' ? samePadding(dim(ctx, size), k, s) : [0, 0]);
  const [st, sb] = same(x.shape[1], kernel[0], strides[0]);
  const [sl, sr] = same(x.shape[2], kernel[1], strides[1]);
  let zero: [number, number, number, number] = [0, 0, 0, 0];
  let borderBias: string | undefined;
  if (x.pendingPad && op === 'MaxPool') {
    // A ZeroPadding2D before max-pooling: pool the unpadded map with -inf pads, then a
    // window that covered zero padding takes max(.., 0). For non-negative values that
    // max is a no-op. (An explicit Pad node is not an option: onnxruntime's Pad fusion
    // turns Pad -> MaxPool into MaxPool pads, i.e. -inf padding, and changes the result.)
    zero = x.pendingPad.pads;
    const source = x.pendingPad.source;
    if (!source.nonNegative) borderBias = zeroWindowBias(ctx, x, kernel, strides, [st, sl], zero);
    x = source;
  }
  const pads = [zero[0] + st, zero[2] + sl, zero[1] + sb, zero[3] + sr];
  if (pads.some((p, i) => p >= kernel[i % 2])) unsupported(ctx, 'zero padding as wide as the pooling window');
  const attrs = { kernel_shape: kernel, strides, pads };
  const base = `${ctx.layerName}/${op === 'MaxPool' ? 'maxpool' : 'avgpool'}`;
  let name = ctx.g.node(op, [ctx.materialize(x)], base, op === 'AveragePool' ? { ...attrs, count_include_pad: 0 } : attrs);
  if (borderBias) name = ctx.g.node('Max', [name, borderBias], `${base}/zero_pad_max`);
  return { name, shape: ctx.outputShape, nonNegative: x.nonNegative };
}

/**
 * [1,1,Ho,Wo] constant: 0 where the pooling window overlaps the zero padding, the lowest
 * float elsewhere, so Max(pooled, bias) equals pooling the zero-padded map.
 */
function zeroWindowBias(
  ctx: LayerContext,
  padded: TensorRef,
  kernel: [number, number],
  strides: [number, number],
  samePads: [number, number],
  zero: [number, number, number, number],
): string {
  const [, ho, wo] = ctx.outputShape as number[];
  const h = dim(ctx, padded.shape[1]);
  const w = dim(ctx, padded.shape[2]);
  // coordinates in the zero-padded map; zero cells are < zero[0] or >= h - zero[1]
  const touches = (i: number, k: number, s: number, pad: number, lo: number, hi: number, size: number) => {
    const a = Math.max(i * s - pad, 0);
    const b = Math.min(i * s - pad + k, size);
    return a < lo || b > hi;
  };
  const bias = new Float32Array(ho * wo);
  for (let y = 0; y < ho; y++) {
    const ty = touches(y, kernel[0], strides[0], samePads[0], zero[0], h - zero[1], h);
    for (let x = 0; x < wo; x++) {
      const tx = touches(x, kernel[1], strides[1], samePads[1], zero[2], w - zero[3], w);
      bias[y * wo + x] = ty || tx ? 0 : -3.4028234663852886e38;
    }
  }
  return ctx.g.floatInit(`${ctx.layerName}/zero_pad_bias`, bias, [1, 1, ho, wo]);
}

export const maxPooling2d: Converter = (ctx) => pool(ctx, 'MaxPool');
export const averagePooling2d: Converter = (ctx) => pool(ctx, 'AveragePool');

function globalPool(ctx: LayerContext, op: 'GlobalAveragePool' | 'GlobalMaxPool'): TensorRef {
  requireChannelsLast(ctx);
  const x = ctx.inputs[0];
  requireRank(ctx, x, 4);
  const pooled = ctx.g.node(op, [ctx.materialize(x)], `${ctx.layerName}/${op === 'GlobalMaxPool' ? 'gmp' : 'gap'}`);
  if (ctx.outputShape.length === 4) return { name: pooled, shape: ctx.outputShape, nonNegative: x.nonNegative }; // keepDims
  const name = ctx.g.node('Flatten', [pooled], `${ctx.layerName}/flatten`, { axis: 1 });
  return { name, shape: ctx.outputShape, nonNegative: x.nonNegative };
}

export const globalAveragePooling2d: Converter = (ctx) => globalPool(ctx, 'GlobalAveragePool');
export const globalMaxPooling2d: Converter = (ctx) => globalPool(ctx, 'GlobalMaxPool');
