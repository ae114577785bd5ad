import { CxrError } from '../../../errors.js';
import { nodeId, type DataNodePlan, type NodePlan, type QuantizationPlan } from './plan.js';
import type { Range } from './ranges.js';
import {
  dimsOf,
  floatData,
  floatTensor,
  graphOf,
  indexGraph,
  nameAllocator,
  int32Tensor,
  int8Tensor,
  node,
  uint8Tensor,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto.js';

/**
 * Rewrites a float ONNX graph into ONNX Runtime's QDQ format:
 *
 * - every activation read by a quantized node goes through QuantizeLinear -> DequantizeLinear
 *   (uint8, per tensor, asymmetric: scale and zero point from its calibrated range, which
 *   always includes 0 so that zero padding stays exact);
 * - weights become int8 initializers, symmetric per output channel, read through a
 *   DequantizeLinear with `axis`; biases int32 with scale input_scale x weight_scale[c].
 *   They use 7 bits ([-63, 63], ONNX Runtime's `reduce_range`): on x86 CPUs without VNNI
 *   (AVX2, and AVX-512 before Cascade Lake) MLAS multiplies uint8 x int8 with VPMADDUBSW,
 *   whose int16 pair sums saturate once 255 x |w| x 2 passes 32767. Full 8-bit weights
 *   scored differently there than on a VNNI machine (features off by 2.6x the tolerance);
 *   7-bit weights score the same on both;
 * - a node's output goes through its own Q/DQ pair; a ReLU right after it is dropped and its
 *   output takes the pair instead (uint8 with zero point 0 saturates below 0 exactly as
 *   ReLU does), so ONNX Runtime sees DQ -> Conv -> Q and fuses it into QLinearConv.
 *
 * - a planned data op (plan.ts DATA_OPS: Add, Concat, MaxPool, DepthToSpace) reads its inputs'
 *   pairs and writes through its own, so ONNX Runtime keeps it in uint8; an Add's constant
 *   operand becomes a uint8 initializer (per tensor) read through a DequantizeLinear.
 *
 * Everything else stays float and reads the dequantized tensors, so the graph computes what
 * the int8 kernels will.
 */

export interface TensorQuant {
  scale: number;
  zeroPoint: number;
}

export interface QdqResult {
  model: ModelProto;
  /** per quantized node: the largest relative weight rounding error over its channels */
  weightError: Record<string, number>;
  /** activation quantization parameters by tensor */
  activations: Record<string, TensorQuant & Range>;
}

/** uint8 asymmetric parameters covering [min, max] and 0. */
export function activationQuant(r: Range): TensorQuant {
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  if (!(hi > lo)) return { scale: 1, zeroPoint: 0 };
  const scale = (hi - lo) / 255;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** Largest weight magnitude: 7 bits, so that uint8 x int8 pair sums fit int16 without VNNI. */
export const WEIGHT_QMAX = 63;

/** Symmetric int8 per channel along `axis` (-1: one scale for the whole tensor), in ±`qmax`. */
export function quantizeWeights(
  w: Float32Array,
  dims: number[],
  axis: number,
  qmax = WEIGHT_QMAX,
): { q: Int8Array; scales: Float32Array; maxRelError: number } {
  const channels = axis < 0 ? 1 : dims[axis];
  const inner = axis < 0 ? w.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = axis < 0 ? 1 : dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const absMax = new Float64Array(channels);
  const at = (o: number, c: number) => (o * channels + c) * inner;
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < channels; c++) {
      const s = at(o, c);
      for (let i = s; i < s + inner; i++) absMax[c] = Math.max(absMax[c], Math.abs(w[i]));
    }
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scales[c] = absMax[c] > 0 ? absMax[c] / qmax : 1;
  const q = new Int8Array(w.length);
  let maxRelError = 0;
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < channels; c++) {
      const s = at(o, c);
      const k = scales[c];
      for (let i = s; i < s + inner; i++) {
        const v = Math.max(-qmax, Math.min(qmax, Math.round(w[i] / k)));
        q[i] = v;
        if (absMax[c] > 0) maxRelError = Math.max(maxRelError, Math.abs(v * k - w[i]) / absMax[c]);
      }
    }
  return { q, scales, maxRelError };
}

export function applyQdq(model: ModelProto, plan: QuantizationPlan, ranges: ReadonlyMap<string, Range>): QdqResult {
  const out = structuredClone(model) as ModelProto;
  const g = graphOf(out);
  const inits = new Map(g.initializer.map((t) => [t.name!, t]));
  const fresh = nameAllocator(g);
  const addInit = (t: TensorProto) => {
    g.initializer.push(t);
    inits.set(t.name!, t);
  };

  const activations: QdqResult['activations'] = {};
  const quantOf = (t: string): TensorQuant => {
    const r = ranges.get(t);
    if (!r) throw new CxrError('E_MODEL_INVALID', `quantize: no calibrated range for tensor ${t}`);
    const q = activationQuant(r);
    activations[t] = { ...q, ...r };
    return q;
  };

  // Q/DQ pairs, one per logical tensor; `source` is what the Q reads (a folded ReLU's input)
  const pairs = new Map<string, { dq: string; scaleName: string; scale: number }>();
  const renames = new Map<string, string>(); // logical tensor -> its DQ output, for float readers
  const created: NodeProto[] = [];
  const atStart: NodeProto[] = [];
  const { producer } = indexGraph(g);
  const producedBy = new Map<NodeProto, NodeProto[]>(); // nodes to insert right after a node
  const qdq = (t: string, source: string, after: NodeProto | undefined): { dq: string; scaleName: string; scale: number } => {
    const have = pairs.get(t);
    if (have) return have;
    const { scale, zeroPoint } = quantOf(t);
    const scaleName = fresh(`${t}/q_scale`);
    const zpName = fresh(`${t}/q_zero_point`);
    addInit(floatTensor(scaleName, Float32Array.of(scale), []));
    addInit(uint8Tensor(zpName, Uint8Array.of(zeroPoint), []));
    const qName = fresh(`${t}/q`);
    const dqName = fresh(`${t}/dq`);
    const nodes = [
      node('QuantizeLinear', [source, scaleName, zpName], [qName], fresh(`${t}/QuantizeLinear`)),
      node('DequantizeLinear', [qName, scaleName, zpName], [dqName], fresh(`${t}/DequantizeLinear`)),
    ];
    created.push(...nodes);
    // after the producer; a graph input's pair goes first
    if (after) producedBy.set(after, [...(producedBy.get(after) ?? []), ...nodes]);
    else atStart.push(...nodes);
    const pair = { dq: dqName, scaleName, scale };
    pairs.set(t, pair);
    renames.set(t, dqName);
    return pair;
  };

  const removed = new Set<NodeProto>();
  const weightError: Record<string, number> = {};

  // a folded ReLU's output already has its pair (made by the node that folded it, earlier in order)
  const ensureInput = (t: string) => pairs.get(t) ?? qdq(t, t, producer.get(t));

  // the plan names nodes of `model`; this rewrite edits its copy
  const byIndex = new Map<NodeProto, NodeProto>(graphOf(model).node.map((orig, i) => [orig, g.node[i]]));
  const mine = (n: NodeProto) => {
    const c = byIndex.get(n);
    if (!c) throw new CxrError('E_MODEL_INVALID', `quantize: the plan's node ${nodeId(n)} is not in this model`);
    return c;
  };
  // output: Q reads the node's own output; with a folded ReLU the pair stands for the ReLU's output
  const pairOutput = (p: NodePlan | DataNodePlan, n: NodeProto) => {
    const y = n.output![0];
    if (p.relu) {
      removed.add(mine(p.relu));
      qdq(p.output, y, n);
    } else {
      qdq(y, y, n);
    }
  };

  const quantizeConv = (p: NodePlan) => {
    const n = mine(p.node);
    const xin = ensureInput(p.input);
    const w = p.weight;
    const wData = floatData(w)!;
    const wDims = dimsOf(w);
    const { q, scales, maxRelError } = quantizeWeights(wData, wDims, p.channelAxis);
    weightError[p.id] = maxRelError;
    const perChannel = p.channelAxis >= 0;
    const wq = fresh(`${w.name}/int8`);
    const ws = fresh(`${w.name}/scale`);
    const wz = fresh(`${w.name}/zero_point`);
    addInit(int8Tensor(wq, q, wDims));
    addInit(floatTensor(ws, perChannel ? scales : Float32Array.of(scales[0]), perChannel ? [scales.length] : []));
    addInit(int8Tensor(wz, new Int8Array(perChannel ? scales.length : 1), perChannel ? [scales.length] : []));
    const wdq = fresh(`${w.name}/dq`);
    const dqW = node('DequantizeLinear', [wq, ws, wz], [wdq], fresh(`${w.name}/DequantizeLinear`), perChannel ? { axis: p.channelAxis } : {});
    atStart.push(dqW);
    const inputs = [...(n.input ?? [])];
    inputs[0] = xin.dq;
    inputs[1] = wdq;
    if (p.bias) {
      const b = floatData(p.bias)!;
      const channels = b.length;
      const bScale = new Float32Array(channels);
      const bq = new Int32Array(channels);
      for (let c = 0; c < channels; c++) {
        bScale[c] = xin.scale * (perChannel ? scales[c] : scales[0]);
        bq[c] = Math.max(-2147483647, Math.min(2147483647, Math.round(b[c] / bScale[c])));
      }
      const bqName = fresh(`${p.bias.name}/int32`);
      const bsName = fresh(`${p.bias.name}/scale`);
      const bzName = fresh(`${p.bias.name}/zero_point`);
      addInit(int32Tensor(bqName, bq, [channels]));
      addInit(floatTensor(bsName, bScale, [channels]));
      addInit(int32Tensor(bzName, new Int32Array(channels), [channels]));
      const bdq = fresh(`${p.bias.name}/dq`);
      atStart.push(node('DequantizeLinear', [bqName, bsName, bzName], [bdq], fresh(`${p.bias.name}/DequantizeLinear`), { axis: 0 }));
      inputs[2] = bdq;
    }
    n.input = inputs;
    pairOutput(p, n);
  };

  const quantizeData = (p: DataNodePlan) => {
    const n = mine(p.node);
    for (const i of p.inputs) ensureInput(i);
    if (p.constant) {
      const c = floatData(p.constant)!;
      let min = 0;
      let max = 0;
      for (const v of c) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      const { scale, zeroPoint } = activationQuant({ min, max });
      const q = new Uint8Array(c.length);
      for (let i = 0; i < c.length; i++) q[i] = Math.max(0, Math.min(255, Math.round(c[i] / scale) + zeroPoint));
      const base = p.constant.name!;
      const qName = fresh(`${base}/uint8`);
      const sName = fresh(`${base}/scale`);
      const zName = fresh(`${base}/zero_point`);
      addInit(uint8Tensor(qName, q, dimsOf(p.constant)));
      addInit(floatTensor(sName, Float32Array.of(scale), []));
      addInit(uint8Tensor(zName, Uint8Array.of(zeroPoint), []));
      const dq = fresh(`${base}/dq`);
      atStart.push(node('DequantizeLinear', [qName, sName, zName], [dq], fresh(`${base}/DequantizeLinear`)));
      n.input = (n.input ?? []).map((i) => (i === base ? dq : i));
    }
    pairOutput(p, n);
  };

  // in graph order, so that a node's output pair exists before any reader asks for it (a
  // reader asking first would pair a ReLU the producer is about to fold away)
  const convPlans = new Map(plan.quantized.map((p) => [p.node, p]));
  const dataPlans = new Map(plan.data.map((p) => [p.node, p]));
  for (const orig of graphOf(model).node) {
    const c = convPlans.get(orig);
    if (c) quantizeConv(c);
    const d = dataPlans.get(orig);
    if (d) quantizeData(d);
  }

  // float readers (and quantized nodes) read the dequantized tensors; Q nodes read the originals
  const qNodes = new Set(created.filter((c) => c.opType === 'QuantizeLinear'));
  const dqInputs = new Set(created.filter((c) => c.opType === 'DequantizeLinear'));
  const nodes: NodeProto[] = [...atStart];
  for (const n of g.node) {
    if (removed.has(n)) continue;
    nodes.push(n);
    nodes.push(...(producedBy.get(n) ?? []));
  }
  for (const n of nodes) {
    if (qNodes.has(n) || dqInputs.has(n)) continue;
    n.input = (n.input ?? []).map((i) => renames.get(i) ?? i);
  }
  // a graph output that a folded ReLU produced is never folded (plan.ts); others keep their float producer
  for (const o of g.output ?? [])
    if (!nodes.some((n) => n.output?.includes(o.name!))) {
      throw new CxrError('E_MODEL_INVALID', `quantize: graph output ${o.name} lost its producer`);
    }
  g.node = nodes;
  // float weights and biases no graph node reads any more
  const read = new Set(nodes.flatMap((n) => n.input ?? []));
  g.initializer = g.initializer.filter((t) => read.has(t.name!));
  return { model: out, weightError, activations };
}

/** For tests and reports: nodes of the plan that fold a ReLU. */
export function foldedRelus(plan: QuantizationPlan): NodePlan[] {
  return plan.quantized.filter((p) => p.relu);
}
