import { storedAxis } from '../layout.js';
import { cfgBool, cfgNumber, requireWeight, unsupported, type Converter, type LayerContext } from '../context.js';

/**
 * BatchNormalization at inference: y = (x - mean) / sqrt(var + eps) * gamma + beta, i.e.
 * y = x * scale + shift. Right after a linear convolution whose output nothing else reads,
 * it folds into that convolution's weights and bias (no node at all); otherwise it becomes
 * an ONNX BatchNormalization over the channel axis.
 */
export const batchNormalization: Converter = (ctx) => {
  const x = ctx.inputs[0];
  const rank = x.shape.length;
  const axis = cfgNumber(ctx, 'axis', -1);
  if (storedAxis(rank, axis) !== 1 || (rank !== 4 && rank !== 2)) unsupported(ctx, `axis ${axis} on rank ${rank}`);
  const { scale, shift, gamma, beta, mean, variance, eps } = bnParams(ctx);
  const channels = mean.length;

  const f = x.foldable;
  if (f && !x.pendingPad && ctx.soleConsumer(x)) {
    const w = ctx.g.getFloatInit(f.weight);
    const b = ctx.g.getFloatInit(f.bias);
    if (w && b && w.dims[f.channelAxis] === channels) {
      scaleAlongAxis(w.data, w.dims, f.channelAxis, scale);
      for (let c = 0; c < channels; c++) b.data[c] = b.data[c] * scale[c] + shift[c];
      return { name: x.name, shape: ctx.outputShape, foldable: f };
    }
  }
  const g = ctx.g;
  const base = ctx.layerName;
  const name = g.node(
    'BatchNormalization',
    [
      ctx.materialize(x),
      g.floatInit(`${base}/gamma`, gamma, [channels]),
      g.floatInit(`${base}/beta`, beta, [channels]),
      g.floatInit(`${base}/mean`, mean, [channels]),
      g.floatInit(`${base}/var`, variance, [channels]),
    ],
    `${base}/bn`,
    { epsilon: { float: eps } },
  );
  return { name, shape: ctx.outputShape };
};

function bnParams(ctx: LayerContext) {
  const mean = requireWeight(ctx, 'moving_mean').data;
  const variance = requireWeight(ctx, 'moving_variance').data;
  const channels = mean.length;
  const gamma = cfgBool(ctx, 'scale', true) ? Float32Array.from(requireWeight(ctx, 'gamma').data) : new Float32Array(channels).fill(1);
  const beta = cfgBool(ctx, 'center', true) ? Float32Array.from(requireWeight(ctx, 'beta').data) : new Float32Array(channels);
  const eps = cfgNumber(ctx, 'epsilon', 1e-3);
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    // float64 here: the folded weights carry one rounding instead of several
    const s = gamma[c] / Math.sqrt(variance[c] + eps);
    scale[c] = s;
    shift[c] = beta[c] - mean[c] * s;
  }
  return { scale, shift, gamma, beta, mean: Float32Array.from(mean), variance: Float32Array.from(variance), eps };
}

/** Multiplies every weight of output channel c (along `axis` of a row-major tensor) by s[c]. */
function scaleAlongAxis(data: Float32Array, dims: number[], axis: 0 | 1, s: Float32Array): void {
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = dims[axis];
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < channels; c++) {
      const k = s[c];
      const start = (o * channels + c) * inner;
      for (let i = start; i < start + inner; i++) data[i] *= k;
    }
}
