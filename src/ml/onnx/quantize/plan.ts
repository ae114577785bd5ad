import { CxrError } from '../../../errors.js';
import { floatAttr, floatData, graphOf, intAttr, type ModelProto, type NodeProto, type TensorProto } from './proto.js';

/**
 * Which nodes of a float graph get int8 arithmetic, and which activation tensors need a
 * calibrated range for that. ONNX Runtime turns DequantizeLinear -> {Conv, ConvTranspose,
 * Gemm, MatMul} -> QuantizeLinear into its integer kernels (QLinearConv, ...); every other op
 * stays float and reads the dequantized tensors.
 */

export const QUANTIZABLE_OPS = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'] as const;
export type QuantizableOp = (typeof QUANTIZABLE_OPS)[number];
/**
 * Conv only by default. Gemm/MatMul in these networks are the SE blocks' and the head's few
 * thousand MACs: int8 buys nothing there. ONNX Runtime 1.30's CPU provider has no fused int8
 * ConvTranspose: in QDQ form it dequantizes and runs the float kernel, which adds rounding
 * and no speed (measured: the U-Net's 4 ConvTranspose stay float either way).
 */
export const DEFAULT_OPS: QuantizableOp[] = ['Conv'];

export interface NodePlan {
  node: NodeProto;
  /** the node's name (its first output when unnamed): how --keep-float names it */
  id: string;
  op: QuantizableOp;
  /** the activation input */
  input: string;
  weight: TensorProto;
  /** axis of `weight` holding the output channels (one scale per channel) */
  channelAxis: number;
  bias?: TensorProto;
  /** the tensor whose range quantizes the output: the node's own, or the ReLU after it */
  output: string;
  /** a ReLU folded into the output quantization (uint8 with zero point 0 clamps at 0 the same way) */
  relu?: NodeProto;
}

export interface QuantizationPlan {
  quantized: NodePlan[];
  /** quantizable ops left in float, and why */
  float: { id: string; op: string; reason: string }[];
  /** activation tensors that need a calibrated range */
  tensors: string[];
}

export interface PlanOptions {
  ops?: readonly QuantizableOp[];
  /** node names (or their first output's name) to keep in float */
  keepFloat?: readonly string[];
  /**
   * keep in float a node whose output (directly or through one element-wise activation)
   * is a graph output: the mask, the probability head and the CAM (default true)
   */
  keepOutputHeads?: boolean;
}

export function nodeId(n: NodeProto): string {
  return n.name || (n.output?.[0] ?? '');
}

const ACTIVATIONS = new Set(['Relu', 'Sigmoid', 'Tanh', 'Softmax', 'LeakyRelu', 'Elu', 'Clip', 'HardSigmoid', 'Softplus']);

export function planQuantization(model: ModelProto, opts: PlanOptions = {}): QuantizationPlan {
  const g = graphOf(model);
  const ops = new Set<string>(opts.ops ?? DEFAULT_OPS);
  const keep = new Set(opts.keepFloat ?? []);
  const keepHeads = opts.keepOutputHeads ?? true;
  const inits = new Map(g.initializer.map((t) => [t.name!, t]));
  const outputs = new Set((g.output ?? []).map((o) => o.name!));
  const consumers = new Map<string, NodeProto[]>();
  for (const n of g.node) for (const i of n.input ?? []) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);

  const reachesOutput = (t: string): boolean => {
    if (outputs.has(t)) return true;
    const cs = consumers.get(t) ?? [];
    return cs.length === 1 && ACTIVATIONS.has(cs[0].opType!) && outputs.has(cs[0].output![0]);
  };

  const quantized: NodePlan[] = [];
  const float: QuantizationPlan['float'] = [];
  const matched = new Set<string>();
  for (const n of g.node) {
    const op = n.opType!;
    if (!(QUANTIZABLE_OPS as readonly string[]).includes(op)) continue;
    const id = nodeId(n);
    const skip = (reason: string) => float.push({ id, op, reason });
    if (keep.has(id) || keep.has(n.output![0])) {
      matched.add(keep.has(id) ? id : n.output![0]);
      skip('kept in float (--keep-float)');
      continue;
    }
    if (!ops.has(op)) {
      skip(`${op} not in the quantized op set`);
      continue;
    }
    const [x, w, b] = n.input ?? [];
    const weight = inits.get(w);
    if (inits.has(x) || !weight || !floatData(weight)) {
      skip('its weight is not a float initializer, or its input is a constant');
      continue;
    }
    const bias = b ? inits.get(b) : undefined;
    if (b && (!bias || !floatData(bias))) {
      skip('its bias is not a float initializer');
      continue;
    }
    const y = n.output![0];
    if (keepHeads && reachesOutput(y)) {
      skip('produces a graph output (head kept in float)');
      continue;
    }
    const wdims = (weight.dims ?? []).length;
    let channelAxis = 0;
    if (op === 'ConvTranspose') {
      // [in, out/group, kh, kw]: per output channel only when there is one group
      channelAxis = intAttr(n, 'group', 1) === 1 ? 1 : -1;
    } else if (op === 'Gemm') {
      if (floatAttr(n, 'alpha', 1) !== 1 || floatAttr(n, 'beta', 1) !== 1 || intAttr(n, 'transA', 0) !== 0 || wdims !== 2) {
        skip('Gemm with alpha/beta != 1, transA, or a weight that is not 2-D');
        continue;
      }
      channelAxis = intAttr(n, 'transB', 0) === 1 ? 0 : 1;
    } else if (op === 'MatMul') {
      if (wdims !== 2) {
        skip('MatMul weight is not 2-D');
        continue;
      }
      channelAxis = 1;
    }
    if (bias && op !== 'Conv' && op !== 'ConvTranspose' && op !== 'Gemm') {
      skip('bias on an op without one');
      continue;
    }
    const cs = consumers.get(y) ?? [];
    const relu = cs.length === 1 && cs[0].opType === 'Relu' && !outputs.has(y) ? cs[0] : undefined;
    quantized.push({
      node: n,
      id,
      op: op as QuantizableOp,
      input: x,
      weight,
      channelAxis,
      bias,
      output: relu ? relu.output![0] : y,
      relu,
    });
  }
  const unknown = [...keep].filter((k) => !matched.has(k));
  if (unknown.length > 0) {
    // a name that matches nothing is a typo: say so instead of quietly quantizing everything
    throw new CxrError('E_BAD_ARGUMENT', `--keep-float names no quantizable node: ${unknown.join(', ')}`);
  }
  const tensors = new Set<string>();
  for (const p of quantized) {
    tensors.add(p.input);
    tensors.add(p.output);
  }
  return { quantized, float, tensors: [...tensors] };
}
