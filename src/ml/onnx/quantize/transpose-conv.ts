import { dimsOf, floatData, floatTensor, graphOf, intAttr, nameAllocator, node, toNumber, type ModelProto, type NodeProto, type TensorProto } from './proto.js';

/**
 * Rewrites a ConvTranspose whose kernel equals its stride (no overlap: the U-Net's 2x2 stride-2
 * up-sampling) as a 1x1 Conv to s*s*O channels followed by DepthToSpace (DCR):
 *
 *   y[o, s*i + dy, s*j + dx] = sum_c x[c, i, j] W[c, o, dy, dx] + b[o]
 *                            = conv1x1(x)[(dy*s + dx)*O + o, i, j]  rearranged by DepthToSpace.
 *
 * Why: ONNX Runtime's CPU provider has no int8 ConvTranspose, so the U-Net's four up-samplings
 * stayed float, with their layout transposes, a fifth of its int8 time. The 1x1 Conv runs as
 * QLinearConv and DepthToSpace moves uint8 bytes. Exact in real arithmetic.
 */
export interface TransposeConvResult {
  model: ModelProto;
  /** names of the ConvTranspose nodes replaced */
  rewritten: string[];
}

function ints(n: NodeProto, name: string): number[] | undefined {
  const a = n.attribute?.find((x) => x.name === name);
  return a?.ints?.map(toNumber);
}

export function convTransposeAsDepthToSpace(model: ModelProto): TransposeConvResult {
  const out = structuredClone(model) as ModelProto;
  const g = graphOf(out);
  const inits = new Map(g.initializer.map((t) => [t.name!, t]));
  const fresh = nameAllocator(g);
  const replaced = new Map<NodeProto, NodeProto[]>();
  const rewritten: string[] = [];
  for (const n of g.node) {
    if (n.opType !== 'ConvTranspose') continue;
    const [x, wName, bName] = n.input ?? [];
    const w = inits.get(wName);
    const b = bName ? inits.get(bName) : undefined;
    const wd = w ? floatData(w) : undefined;
    if (!w || !wd || (bName && (!b || !floatData(b)))) continue;
    const dims = dimsOf(w);
    if (dims.length !== 4 || dims[2] !== dims[3]) continue;
    const s = dims[2];
    const [cin, cout] = dims;
    const same = (v: number[] | undefined, want: number[]) => v === undefined || (v.length === want.length && v.every((q, i) => q === want[i]));
    if (
      intAttr(n, 'group', 1) !== 1 ||
      !same(ints(n, 'kernel_shape'), [s, s]) ||
      ints(n, 'strides')?.join() !== [s, s].join() ||
      !same(ints(n, 'pads'), [0, 0, 0, 0]) ||
      !same(ints(n, 'output_padding'), [0, 0]) ||
      !same(ints(n, 'dilations'), [1, 1]) ||
      ints(n, 'output_shape') !== undefined ||
      n.attribute?.some((a) => a.name === 'auto_pad' && a.s && new TextDecoder().decode(a.s) !== 'NOTSET')
    )
      continue;
    const k = s * s * cout;
    const w1 = new Float32Array(k * cin);
    for (let c = 0; c < cin; c++)
      for (let o = 0; o < cout; o++)
        for (let dy = 0; dy < s; dy++) for (let dx = 0; dx < s; dx++) w1[((dy * s + dx) * cout + o) * cin + c] = wd[((c * cout + o) * s + dy) * s + dx];
    const base = n.name || n.output![0];
    const wNew = fresh(`${base}/as_conv/W`);
    const t: TensorProto = floatTensor(wNew, w1, [k, cin, 1, 1]);
    g.initializer.push(t);
    const inputs = [x, wNew];
    if (b) {
      const bd = floatData(b)!;
      const b1 = new Float32Array(k);
      for (let q = 0; q < k; q++) b1[q] = bd[q % cout];
      const bNew = fresh(`${base}/as_conv/B`);
      g.initializer.push(floatTensor(bNew, b1, [k]));
      inputs.push(bNew);
    }
    const mid = fresh(`${base}/as_conv`);
    const conv = node('Conv', inputs, [mid], fresh(`${base}/as_conv/Conv`));
    const T = 7; // AttributeProto.INTS
    conv.attribute = [
      { name: 'kernel_shape', type: T, ints: [1, 1] },
      { name: 'strides', type: T, ints: [1, 1] },
    ];
    const d2s = node('DepthToSpace', [mid], [n.output![0]], fresh(`${base}/DepthToSpace`), { blocksize: s });
    d2s.attribute!.push({ name: 'mode', type: 3, s: new TextEncoder().encode('DCR') });
    replaced.set(n, [conv, d2s]);
    rewritten.push(base);
  }
  g.node = g.node.flatMap((n) => replaced.get(n) ?? [n]);
  const read = new Set(g.node.flatMap((n) => n.input ?? []));
  g.initializer = g.initializer.filter((t) => read.has(t.name!));
  return { model: out, rewritten };
}
