import { storedAxis } from '../layout.js';
import { cfgNumber, cfgString, unsupported, type Converter, type LayerContext, type TensorRef } from '../context.js';

/**
 * Appends the nodes for a Keras activation (by its serialised name) to tensor `x`.
 * Returns the new tensor; 'linear' returns `x` itself.
 */
export function emitActivation(ctx: LayerContext, activation: string, x: TensorRef): TensorRef {
  const { g } = ctx;
  const base = ctx.layerName;
  const shape = ctx.outputShape;
  const input = ctx.materialize(x);
  const out = (name: string, nonNegative = false): TensorRef => ({ name, shape, nonNegative });
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return out(g.node('Relu', [input], `${base}/relu`), true);
    case 'sigmoid':
      return out(g.node('Sigmoid', [input], `${base}/sigmoid`), true);
    case 'tanh':
      return out(g.node('Tanh', [input], `${base}/tanh`));
    case 'elu':
      return out(g.node('Elu', [input], `${base}/elu`, { alpha: { float: 1 } }));
    case 'selu':
      // tf.selu's constants, not ONNX's defaults (they differ in the 8th digit)
      return out(g.node('Selu', [input], `${base}/selu`, { alpha: { float: 1.6732632423543772 }, gamma: { float: 1.0507009873554805 } }));
    case 'softplus':
      return out(g.node('Softplus', [input], `${base}/softplus`), true);
    case 'softsign':
      return out(g.node('Softsign', [input], `${base}/softsign`));
    case 'hardSigmoid':
      return out(g.node('HardSigmoid', [input], `${base}/hard_sigmoid`, { alpha: { float: 0.2 }, beta: { float: 0.5 } }), true);
    case 'softmax':
      return out(g.node('Softmax', [input], `${base}/softmax`, { axis: storedAxis(shape.length, -1) }), true);
    case 'swish': {
      const s = g.node('Sigmoid', [input], `${base}/swish_sigmoid`);
      return out(g.node('Mul', [input, s], `${base}/swish`));
    }
    case 'mish': {
      const sp = g.node('Softplus', [input], `${base}/mish_softplus`);
      const t = g.node('Tanh', [sp], `${base}/mish_tanh`);
      return out(g.node('Mul', [input, t], `${base}/mish`));
    }
    default:
      return unsupported(ctx, `activation '${activation}'`);
  }
}

function clip(ctx: LayerContext, input: string, lo: number, hi: number, base: string): string {
  const min = ctx.g.floatInit(`${base}/min`, Float32Array.of(lo), []);
  const max = ctx.g.floatInit(`${base}/max`, Float32Array.of(hi), []);
  return ctx.g.node('Clip', [input, min, max], base);
}

/** Keras `Activation` layer. */
export const activationLayer: Converter = (ctx) => emitActivation(ctx, cfgString(ctx, 'activation'), ctx.inputs[0]);

/** Keras `ReLU` layer (optionally capped at maxValue). */
export const reluLayer: Converter = (ctx) => {
  const maxValue = ctx.config.maxValue;
  if (maxValue == null) return emitActivation(ctx, 'relu', ctx.inputs[0]);
  if (typeof maxValue !== 'number') return unsupported(ctx, `maxValue ${JSON.stringify(maxValue)}`);
  const name = clip(ctx, ctx.materialize(ctx.inputs[0]), 0, maxValue, `${ctx.layerName}/relu`);
  return { name, shape: ctx.outputShape, nonNegative: true };
};

export const leakyReluLayer: Converter = (ctx) => {
  const alpha = cfgNumber(ctx, 'alpha', 0.3);
  const name = ctx.g.node('LeakyRelu', [ctx.materialize(ctx.inputs[0])], `${ctx.layerName}/leaky_relu`, { alpha: { float: alpha } });
  return { name, shape: ctx.outputShape };
};

export const eluLayer: Converter = (ctx) => {
  const alpha = cfgNumber(ctx, 'alpha', 1);
  const name = ctx.g.node('Elu', [ctx.materialize(ctx.inputs[0])], `${ctx.layerName}/elu`, { alpha: { float: alpha } });
  return { name, shape: ctx.outputShape };
};

export const softmaxLayer: Converter = (ctx) => {
  const axis = cfgNumber(ctx, 'axis', -1);
  const name = ctx.g.node('Softmax', [ctx.materialize(ctx.inputs[0])], `${ctx.layerName}/softmax`, {
    axis: storedAxis(ctx.outputShape.length, axis),
  });
  return { name, shape: ctx.outputShape, nonNegative: true };
};
