import {
  dimsOf,
  floatAttr,
  floatData,
  floatTensor,
  graphOf,
  indexGraph,
  intAttr,
  nameAllocator,
  node,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto.js';

/**
 * Folds a pre-activation batch norm (BatchNormalization -> Relu -> Conv, as in every DenseNet
 * layer and transition) into the convolutions that read it, leaving a per-channel Add:
 *
 *   Relu(a*x + b) = a * Relu(x + b/a)   for a > 0,
 *   Conv(W, a * r) = Conv(W * a (along input channels), r).
 *
 * Why: in the int8 graph the batch norm runs in float between a dequantized concatenation and
 * the next convolution's quantization, and measured on the DenseNet it cost more than the
 * int8 convolutions themselves (BatchNormalization 23%, QuantizeLinear 10%, Concat 13%,
 * Transpose 7% of a view's time; QLinearConv 40%). A per-channel Add whose inputs and output
 * are quantized becomes ONNX Runtime's QLinearAdd on uint8 (its Relu folds into the output's
 * zero point), and the Concat it reads can then stay uint8 too.
 *
 * The rewrite is exact in real arithmetic; only channels with a > 0 qualify (a batch norm with
 * any a <= 0 is left as it is, as is one whose Relu feeds anything but group-1 convolutions).
 */
export interface FoldResult {
  model: ModelProto;
  /** names of the batch-norm nodes replaced by an Add */
  folded: string[];
}

export function foldPreactivationBatchNorm(model: ModelProto, inScope: (id: string) => boolean = () => true): FoldResult {
  const out = structuredClone(model) as ModelProto;
  const g = graphOf(out);
  const { inits, consumers, outputs } = indexGraph(g);
  const fresh = nameAllocator(g);
  // a weight shared by several convolutions would be scaled twice: each conv gets its own copy
  const replaced = new Map<NodeProto, NodeProto>();
  const folded: string[] = [];

  for (const bn of g.node) {
    if (bn.opType !== 'BatchNormalization' || (bn.output ?? []).length !== 1 || !inScope(bn.name || bn.output![0])) continue;
    const y = bn.output![0];
    const cs = consumers.get(y) ?? [];
    if (cs.length !== 1 || cs[0].opType !== 'Relu' || outputs.has(y)) continue;
    const relu = cs[0];
    const r = relu.output![0];
    const convs = consumers.get(r) ?? [];
    if (outputs.has(r) || convs.length === 0) continue;
    if (
      !convs.every((c) => c.opType === 'Conv' && c.input![0] === r && intAttr(c, 'group', 1) === 1 && inits.has(c.input![1]) && !c.input!.slice(1).includes(r))
    )
      continue;
    const [x, gammaN, betaN, meanN, varN] = bn.input!;
    const [gamma, beta, mean, variance] = [gammaN, betaN, meanN, varN].map((n) => inits.get(n));
    if (!gamma || !beta || !mean || !variance) continue;
    const [gd, bd, md, vd] = [gamma, beta, mean, variance].map((t) => floatData(t));
    if (!gd || !bd || !md || !vd) continue;
    const eps = floatAttr(bn, 'epsilon', 1e-5);
    const channels = gd.length;
    const a = new Float32Array(channels);
    const shift = new Float32Array(channels);
    let ok = true;
    for (let c = 0; c < channels; c++) {
      a[c] = gd[c] / Math.sqrt(vd[c] + eps);
      if (!(a[c] > 0) || !Number.isFinite(a[c])) ok = false;
      // b/a with b = beta - mean*a
      shift[c] = bd[c] / a[c] - md[c];
    }
    if (!ok) continue;
    const weights = convs.map((c) => inits.get(c.input![1])!);
    if (!weights.every((w) => floatData(w) && dimsOf(w).length >= 2 && dimsOf(w)[1] === channels)) continue;

    for (let k = 0; k < convs.length; k++) {
      const conv = convs[k];
      const w = weights[k];
      const dims = dimsOf(w);
      const data = floatData(w)!;
      const inner = dims.slice(2).reduce((p, q) => p * q, 1);
      const scaled = new Float32Array(data.length);
      for (let o = 0; o < dims[0]; o++)
        for (let c = 0; c < channels; c++) {
          const base = (o * channels + c) * inner;
          for (let i = 0; i < inner; i++) scaled[base + i] = data[base + i] * a[c];
        }
      const name = fresh(`${w.name}/bn_folded`);
      const t: TensorProto = floatTensor(name, scaled, dims);
      g.initializer.push(t);
      inits.set(name, t);
      conv.input = [conv.input![0], name, ...conv.input!.slice(2)];
    }
    const shiftName = fresh(`${bn.name || y}/shift`);
    const shiftT = floatTensor(shiftName, shift, [channels, 1, 1]);
    g.initializer.push(shiftT);
    inits.set(shiftName, shiftT);
    replaced.set(bn, node('Add', [x, shiftName], [y], fresh(`${bn.name || y}/folded_add`)));
    folded.push(bn.name || y);
  }
  g.node = g.node.map((n) => replaced.get(n) ?? n);
  const read = new Set(g.node.flatMap((n) => n.input ?? []));
  g.initializer = g.initializer.filter((t) => read.has(t.name!));
  return { model: out, folded };
}
