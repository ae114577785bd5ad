import { layoutsAgree, storedShape } from '../layout.js';
import { cfgPair, cfgString, requireChannelsLast, requireRank, unsupported, type Converter, type LayerContext } from '../context.js';

/** Keras' ((top, bottom), (left, right)) from an int, a pair or a pair of pairs. */
function padPairs(ctx: LayerContext, key: string): [number, number, number, number] {
  const v = ctx.config[key];
  if (typeof v === 'number') return [v, v, v, v];
  if (Array.isArray(v) && v.length === 2) {
    const [a, b] = v as unknown[];
    if (typeof a === 'number' && typeof b === 'number') return [a, a, b, b];
    if (Array.isArray(a) && Array.isArray(b) && [...a, ...b].every((n) => typeof n === 'number')) {
      return [a[0] as number, a[1] as number, b[0] as number, b[1] as number];
    }
  }
  return unsupported(ctx, `${key}=${JSON.stringify(v)}`);
}

/** Lazy: the pad only becomes a node if a consumer cannot take it into its own pads. */
export const zeroPadding2d: Converter = (ctx) => {
  requireChannelsLast(ctx);
  const x = ctx.inputs[0];
  requireRank(ctx, x, 4);
  const pads = padPairs(ctx, 'padding');
  const source = x.pendingPad ? { ...x, pendingPad: undefined, name: ctx.materialize(x) } : x;
  return { name: source.name, shape: ctx.outputShape, pendingPad: { source, pads } };
};

export const cropping2d: Converter = (ctx) => {
  requireChannelsLast(ctx);
  const x = ctx.inputs[0];
  requireRank(ctx, x, 4);
  const [top, bottom, left, right] = padPairs(ctx, 'cropping');
  const h = x.shape[1] as number;
  const w = x.shape[2] as number;
  const g = ctx.g;
  const base = ctx.layerName;
  const name = g.node(
    'Slice',
    [ctx.materialize(x), g.int64Init(`${base}/starts`, [top, left]), g.int64Init(`${base}/ends`, [h - bottom, w - right]), g.int64Init(`${base}/axes`, [2, 3])],
    `${base}/crop`,
  );
  return { name, shape: ctx.outputShape, nonNegative: x.nonNegative };
};

/**
 * Reshape follows tfjs element order (NHWC). When the input and output layouts hold their
 * elements in the same order (one channel, or 1x1 spatial, e.g. the SE block's
 * [N,C] -> [N,1,1,C]) a single Reshape to the stored shape does it; otherwise the data goes
 * through NHWC and back.
 */
export const reshape: Converter = (ctx) => {
  const x = ctx.inputs[0];
  const g = ctx.g;
  const base = ctx.layerName;
  const target = storedShape(ctx.outputShape).map((d) => (typeof d === 'number' ? d : 0)); // 0 keeps the batch
  if (layoutsAgree(x.shape) && layoutsAgree(ctx.outputShape)) {
    const name = g.node('Reshape', [ctx.materialize(x), g.int64Init(`${base}/shape`, target)], `${base}/reshape`);
    return { name, shape: ctx.outputShape, nonNegative: x.nonNegative };
  }
  let input = ctx.materialize(x);
  if (x.shape.length === 4) input = g.node('Transpose', [input], `${base}/to_nhwc`, { perm: [0, 2, 3, 1] });
  const tfTarget = ctx.outputShape.map((d) => (d == null ? 0 : d));
  let name = g.node('Reshape', [input, g.int64Init(`${base}/shape`, tfTarget)], `${base}/reshape`);
  if (ctx.outputShape.length === 4) name = g.node('Transpose', [name], `${base}/to_nchw`, { perm: [0, 3, 1, 2] });
  return { name, shape: ctx.outputShape, nonNegative: x.nonNegative };
};

export const flatten: Converter = (ctx) => {
  const x = ctx.inputs[0];
  let input = ctx.materialize(x);
  if (!layoutsAgree(x.shape)) input = ctx.g.node('Transpose', [input], `${ctx.layerName}/to_nhwc`, { perm: [0, 2, 3, 1] });
  const name = ctx.g.node('Flatten', [input], `${ctx.layerName}/flatten`, { axis: 1 });
  return { name, shape: ctx.outputShape, nonNegative: x.nonNegative };
};

export const upSampling2d: Converter = (ctx) => {
  requireChannelsLast(ctx);
  const x = ctx.inputs[0];
  requireRank(ctx, x, 4);
  const [sh, sw] = cfgPair(ctx, 'size', [2, 2]);
  const interpolation = cfgString(ctx, 'interpolation', 'nearest');
  if (interpolation !== 'nearest' && interpolation !== 'bilinear') unsupported(ctx, `interpolation '${interpolation}'`);
  const g = ctx.g;
  const base = ctx.layerName;
  // tfjs resizes with alignCorners=false and no half-pixel centres: ONNX 'asymmetric'.
  const attrs: Record<string, string> =
    interpolation === 'nearest'
      ? { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }
      : { mode: 'linear', coordinate_transformation_mode: 'asymmetric' };
  const name = g.node('Resize', [ctx.materialize(x), '', g.floatInit(`${base}/scales`, Float32Array.of(1, 1, sh, sw), [4])], `${base}/upsample`, attrs);
  return { name, shape: ctx.outputShape, nonNegative: x.nonNegative };
};
