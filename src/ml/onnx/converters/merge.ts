import { storedAxis } from '../layout.js';
import { cfgNumber, unsupported, type Converter, type LayerContext, type TensorRef } from '../context.js';

export const concatenate: Converter = (ctx) => {
  const rank = ctx.outputShape.length;
  const axis = storedAxis(rank, cfgNumber(ctx, 'axis', -1));
  const inputs = ctx.inputs.map((t) => ctx.materialize(t));
  const name = ctx.g.node('Concat', inputs, `${ctx.layerName}/concat`, { axis });
  return { name, shape: ctx.outputShape, nonNegative: ctx.inputs.every((t) => t.nonNegative) };
};

/**
 * Element-wise merges broadcast like NumPy. With every operand rank 4 the NHWC -> NCHW
 * permutation is applied to all of them alike, so the broadcast is unchanged (the SE
 * block's [N,H,W,C] * [N,1,1,C] becomes [N,C,H,W] * [N,C,1,1]).
 */
function elementwise(ctx: LayerContext, op: 'Add' | 'Mul' | 'Max' | 'Min', nonNegative: boolean): TensorRef {
  const ranks = new Set(ctx.inputs.map((t) => t.shape.length));
  if (ranks.size !== 1) unsupported(ctx, 'merging tensors of different ranks');
  let acc = ctx.materialize(ctx.inputs[0]);
  for (let i = 1; i < ctx.inputs.length; i++) {
    acc = ctx.g.node(op, [acc, ctx.materialize(ctx.inputs[i])], `${ctx.layerName}/${op.toLowerCase()}`);
  }
  return { name: acc, shape: ctx.outputShape, nonNegative };
}

const allNonNegative = (ctx: LayerContext) => ctx.inputs.every((t) => t.nonNegative === true);

export const add: Converter = (ctx) => elementwise(ctx, 'Add', allNonNegative(ctx));
export const multiply: Converter = (ctx) => elementwise(ctx, 'Mul', allNonNegative(ctx));
export const maximum: Converter = (ctx) =>
  elementwise(
    ctx,
    'Max',
    ctx.inputs.some((t) => t.nonNegative === true),
  );
export const minimum: Converter = (ctx) => elementwise(ctx, 'Min', allNonNegative(ctx));

export const average: Converter = (ctx) => {
  const sum = elementwise(ctx, 'Add', allNonNegative(ctx));
  const k = ctx.g.floatInit(`${ctx.layerName}/inv_n`, Float32Array.of(1 / ctx.inputs.length), []);
  return { ...sum, name: ctx.g.node('Mul', [sum.name, k], `${ctx.layerName}/average`) };
};
