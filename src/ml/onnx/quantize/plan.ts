import { CxrError } from '../../../errors.js';
import { floatAttr, floatData, graphOf, indexGraph, intAttr, type ModelProto, type NodeProto, type TensorProto } from './proto.js';

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

/**
 * Weightless ops kept in uint8 between quantized convolutions (ONNX Runtime fuses DQ -> op ->
 * Q into QLinearAdd / QLinearConcat, and drops the pair around a MaxPool whose input and
 * output share one scale, and around DepthToSpace): a DenseNet's concatenations and its folded
 * batch norms' per-channel shifts (fold-preactivation.ts), and a U-Net's pooling and
 * up-sampling (transpose-conv.ts), then never leave uint8.
 */
export const DATA_OPS = ['Add', 'Concat', 'MaxPool', 'DepthToSpace'] as const;
export type DataOp = (typeof DATA_OPS)[number];

export interface DataNodePlan {
  node: NodeProto;
  id: string;
  op: DataOp;
  /** activation inputs, each read through its own Q/DQ pair */
  inputs: string[];
  /** Add's constant operand, quantized as a uint8 initializer */
  constant?: TensorProto;
  /** the tensor whose range quantizes the output: the node's own, or the ReLU after it */
  output: string;
  relu?: NodeProto;
}

export interface QuantizationPlan {
  quantized: NodePlan[];
  /** weightless ops in uint8 (graph order) */
  data: DataNodePlan[];
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
  /** weightless ops kept in uint8 between quantized nodes (default DATA_OPS) */
  dataOps?: readonly DataOp[];
  /**
   * node-name prefixes the data ops are limited to (default: the whole graph), e.g. a
   * DenseNet's early blocks, where the tensors are largest and moving them costs most
   */
  dataScope?: readonly string[];
}

/** Whether a node (by id) is inside a data scope: no scope is the whole graph. */
export function inDataScope(scope: readonly string[] | undefined, id: string): boolean {
  return !scope || scope.some((prefix) => id.startsWith(prefix));
}

/** A data-scope prefix that names no node is a typo: said before any work, not after. */
export function assertDataScope(model: ModelProto, scope: readonly string[] | undefined): void {
  const nodes = graphOf(model).node;
  const unmatched = (scope ?? []).filter((prefix) => !nodes.some((n) => nodeId(n).startsWith(prefix)));
  if (unmatched.length > 0) throw new CxrError('E_BAD_ARGUMENT', `--data-scope names no node: ${unmatched.join(', ')}`);
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
  const { inits, outputs, consumers } = indexGraph(g);

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
  assertDataScope(model, opts.dataScope);
  const tensors = new Set<string>();
  for (const p of quantized) {
    tensors.add(p.input);
    tensors.add(p.output);
  }
  // data ops go where they sit between the tensors quantized convolutions read and write
  const data = planDataOps(
    g.node.filter((n) => inDataScope(opts.dataScope, nodeId(n))),
    new Set(opts.dataOps ?? DATA_OPS),
    tensors,
    inits,
    consumers,
    outputs,
  );
  for (const p of data) {
    for (const i of p.inputs) tensors.add(i);
    tensors.add(p.output);
  }
  return { quantized, data, float, tensors: [...tensors] };
}

/**
 * - Add: one activation and one float constant (a folded batch norm's shift), or two
 *   activations, whose output (through an optional ReLU) a quantized node reads anyway: the
 *   Q/DQ pair there exists already, so the Add costs nothing but becomes uint8.
 * - Concat: every input an activation (a constant would need its own range). Its output's
 *   readers then read it dequantized, as they read any quantized node's output.
 * - MaxPool, DepthToSpace (a ConvTranspose rewritten by transpose-conv.ts): its input is uint8
 *   already (a quantized node's output or input) and a quantized node reads its output; both
 *   then share one range (ranges.ts sharedRanges), so ONNX Runtime moves uint8 bytes directly.
 * A graph output is never produced in uint8.
 */
function planDataOps(
  nodes: readonly NodeProto[],
  ops: ReadonlySet<string>,
  convTensors: ReadonlySet<string>,
  inits: ReadonlyMap<string, TensorProto>,
  consumers: ReadonlyMap<string, NodeProto[]>,
  outputs: ReadonlySet<string>,
): DataNodePlan[] {
  const plans: DataNodePlan[] = [];
  const planned = new Set<string>(); // tensors a planned data node reads or writes
  const quantizedIn = (t: string) => convTensors.has(t) || planned.has(t);
  // read by a quantized conv, or by a Concat (planned later: it takes every activation input)
  const quantizedOut = (t: string) => convTensors.has(t) || (ops.has('Concat') && (consumers.get(t) ?? []).some((c) => c.opType === 'Concat'));
  for (const n of nodes) {
    const op = n.opType!;
    if (!ops.has(op)) continue;
    const before = plans.length;
    planOne(n, op);
    if (plans.length > before) for (const t of [...plans[before].inputs, plans[before].output]) planned.add(t);
  }
  return plans;

  function planOne(n: NodeProto, op: string): void {
    const y = n.output![0];
    if (outputs.has(y)) return;
    const cs = consumers.get(y) ?? [];
    const relu = cs.length === 1 && cs[0].opType === 'Relu' && !outputs.has(cs[0].output![0]) ? cs[0] : undefined;
    const output = relu ? relu.output![0] : y;
    const ins = (n.input ?? []).filter(Boolean);
    if (op === 'Add') {
      if (ins.length !== 2 || !convTensors.has(output)) return;
      const consts = ins.filter((i) => inits.has(i));
      if (consts.length > 1) return;
      const constant = consts.length === 1 ? inits.get(consts[0]) : undefined;
      if (constant && !floatData(constant)) return;
      plans.push({ node: n, id: nodeId(n), op, inputs: ins.filter((i) => !inits.has(i)), constant, output, relu });
    } else if (op === 'Concat') {
      if (ins.length < 2 || ins.some((i) => inits.has(i))) return;
      plans.push({ node: n, id: nodeId(n), op, inputs: ins, output, relu });
    } else if (op === 'MaxPool' || op === 'DepthToSpace') {
      // only between tensors that are uint8 anyway; a second output (indices) cannot be
      if ((n.output ?? []).length !== 1 || ins.length !== 1 || !quantizedIn(ins[0]) || !quantizedOut(y) || relu) return;
      plans.push({ node: n, id: nodeId(n), op, inputs: ins, output: y });
    }
  }
}
