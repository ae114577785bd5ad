import * as ort from 'onnxruntime-node';
import {
  dimsOf,
  encodeModel,
  floatAttr,
  floatData,
  floatTensor,
  graphOf,
  indexGraph,
  intAttr,
  type GraphIndex,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto.js';
import { exposeTensors, type CalibrationInput } from './ranges.js';

/**
 * Channel equalization for uint8 concatenations. A DenseNet's concatenated features come from
 * many convolutions whose channels differ in scale by an order of magnitude (the batch norms
 * that read them divide by standard deviations from 0.15 to 1.8 here); one uint8 scale per
 * concatenated tensor then leaves the small channels a few levels (measured: mean |Δp| 0.05
 * with the concatenations in uint8, against 0.005 with them in float).
 *
 * Every channel of a piece (a tensor a Concat reads that is not itself a concatenation) is
 * multiplied by k = 1 / max|x| over the calibration inputs: its producing Conv's weights and
 * bias are scaled (through ReLU, MaxPool and AveragePool, which commute with a positive
 * per-channel scale), and every reader of the channel divides it out again: a folded batch
 * norm's Add shift (x k), the Conv after its ReLU (weights / k), an SE block's squeeze (its
 * first Gemm / k) and gate (Mul carries the scale on), a batch norm (mean x k, variance
 * k^2 (var + eps) - eps). Exact in real arithmetic; a piece with any other reader is left as
 * it is.
 */
export interface EqualizeResult {
  model: ModelProto;
  /** pieces whose channels were rescaled */
  equalized: string[];
}

interface Graph extends GraphIndex {
  g: ReturnType<typeof graphOf>;
  /** initializers being edited, decoded once: several pieces edit the same one */
  edited: Map<string, Float32Array>;
}

function index(model: ModelProto): Graph {
  const g = graphOf(model);
  return { g, ...indexGraph(g), edited: new Map() };
}

/** Channel count of a tensor, from the weights that made it; undefined when unknown. */
function channelsOf(G: Graph, t: string, seen = new Set<string>()): number | undefined {
  if (seen.has(t)) return undefined;
  seen.add(t);
  const p = G.producer.get(t);
  if (!p) return undefined;
  switch (p.opType) {
    case 'Conv': {
      const w = G.inits.get(p.input![1]);
      return w ? dimsOf(w)[0] : undefined;
    }
    case 'Concat': {
      if (intAttr(p, 'axis', 1) !== 1) return undefined;
      let sum = 0;
      for (const i of p.input!) {
        const c = channelsOf(G, i, seen);
        if (c === undefined) return undefined;
        sum += c;
      }
      return sum;
    }
    case 'Relu':
    case 'MaxPool':
    case 'AveragePool':
    case 'Add':
    case 'Mul':
    case 'BatchNormalization':
      return channelsOf(G, p.input![0], seen);
    default:
      return undefined;
  }
}

/** One edit, recorded first and applied only when the whole piece can be compensated. */
type Edit = () => void;

/** Edits an initializer's decoded values in place; equalizeConcatPieces writes them back once. */
const scaled = (G: Graph, t: TensorProto, f: (data: Float32Array, dims: number[]) => void): void => {
  let data = G.edited.get(t.name!);
  if (!data) {
    data = floatData(t)!;
    G.edited.set(t.name!, data);
  }
  f(data, dimsOf(t));
};

/** The Conv whose output channels become the piece's (through positively homogeneous ops). */
function producerEdits(G: Graph, piece: string, k: Float32Array): Edit[] | null {
  let t = piece;
  for (;;) {
    const p = G.producer.get(t);
    if (!p) return null;
    if ((G.consumers.get(t) ?? []).length !== 1 && t !== piece) return null;
    if (p.opType === 'Relu' || p.opType === 'MaxPool' || p.opType === 'AveragePool') {
      t = p.input![0];
      continue;
    }
    if (p.opType !== 'Conv' || G.outputs.has(t)) return null;
    const w = G.inits.get(p.input![1]);
    const b = p.input![2] ? G.inits.get(p.input![2]) : undefined;
    if (!w || !floatData(w) || dimsOf(w)[0] !== k.length || (p.input![2] && (!b || !floatData(b)))) return null;
    return [
      () => {
        scaled(G, w, (d, dims) => {
          const inner = d.length / dims[0];
          for (let o = 0; o < dims[0]; o++) for (let i = 0; i < inner; i++) d[o * inner + i] *= k[o];
        });
        if (b) scaled(G, b, (d) => d.forEach((v, o) => (d[o] = v * k[o])));
      },
    ];
  }
}

/** Edits that divide `k` (on channels offset..offset+k.length of `t`) out again in every reader. */
function readerEdits(G: Graph, t: string, offset: number, k: Float32Array, depth = 0): Edit[] | null {
  if (G.outputs.has(t) || depth > 64) return null;
  const edits: Edit[] = [];
  for (const r of G.consumers.get(t) ?? []) {
    const e = readerEdit(G, r, t, offset, k, depth);
    if (!e) return null;
    edits.push(...e);
  }
  return edits;
}

function readerEdit(G: Graph, r: NodeProto, t: string, offset: number, k: Float32Array, depth: number): Edit[] | null {
  const y = r.output![0];
  switch (r.opType) {
    case 'Concat': {
      if (intAttr(r, 'axis', 1) !== 1) return null;
      let at = 0;
      for (const i of r.input!) {
        if (i === t) break;
        const c = channelsOf(G, i);
        if (c === undefined) return null;
        at += c;
      }
      return readerEdits(G, y, at + offset, k, depth + 1);
    }
    case 'Add': {
      // a folded batch norm: x + shift[C,1,1], then ReLU, then convolutions
      const shiftName = r.input!.find((i) => i !== t);
      const shift = shiftName ? G.inits.get(shiftName) : undefined;
      // one shift per channel of t (a broadcast scalar cannot carry a per-channel scale)
      if (!shift || floatData(shift)?.length !== channelsOf(G, t) || r.input![0] === r.input![1]) return null;
      const rs = G.consumers.get(y) ?? [];
      if (rs.length !== 1 || rs[0].opType !== 'Relu' || G.outputs.has(y)) return null;
      const convs = G.consumers.get(rs[0].output![0]) ?? [];
      if (convs.length === 0 || G.outputs.has(rs[0].output![0])) return null;
      const channels = channelsOf(G, t);
      if (
        !convs.every(
          (c) => c.opType === 'Conv' && intAttr(c, 'group', 1) === 1 && G.inits.has(c.input![1]) && dimsOf(G.inits.get(c.input![1])!)[1] === channels,
        )
      )
        return null;
      return [
        () => scaled(G, shift, (d) => k.forEach((kc, c) => (d[offset + c] *= kc))),
        ...convs.map((c) => () => {
          scaled(G, G.inits.get(c.input![1])!, (d, dims) => {
            const inner = dims.slice(2).reduce((a, b) => a * b, 1);
            for (let o = 0; o < dims[0]; o++)
              for (let ci = 0; ci < k.length; ci++) {
                const base = (o * dims[1] + offset + ci) * inner;
                for (let i = 0; i < inner; i++) d[base + i] /= k[ci];
              }
          });
        }),
      ];
    }
    case 'Mul': {
      // an SE gate: x * s with s per channel from the squeeze; the product keeps the scale
      const other = r.input!.find((i) => i !== t);
      if (!other || G.inits.has(other) || r.input![0] === r.input![1]) return null;
      return readerEdits(G, y, offset, k, depth + 1);
    }
    case 'GlobalAveragePool': {
      // the SE squeeze: GAP -> Flatten -> Gemm; the Gemm's input rows divide k out
      const fl = G.consumers.get(y) ?? [];
      if (fl.length !== 1 || fl[0].opType !== 'Flatten') return null;
      const gemms = G.consumers.get(fl[0].output![0]) ?? [];
      if (gemms.length !== 1 || gemms[0].opType !== 'Gemm' || intAttr(gemms[0], 'transA', 0) !== 0) return null;
      const gemm = gemms[0];
      const w = G.inits.get(gemm.input![1]);
      if (!w || !floatData(w) || dimsOf(w).length !== 2 || G.outputs.has(y) || G.outputs.has(fl[0].output![0])) return null;
      const transB = intAttr(gemm, 'transB', 0) === 1;
      if (dimsOf(w)[transB ? 1 : 0] < offset + k.length) return null;
      return [
        () =>
          scaled(G, w, (d, dims) => {
            // [in, out], or [out, in] with transB
            const [rows, cols] = dims;
            for (let ci = 0; ci < k.length; ci++) {
              const i = offset + ci;
              if (transB) for (let o = 0; o < rows; o++) d[o * cols + i] /= k[ci];
              else for (let o = 0; o < cols; o++) d[i * cols + o] /= k[ci];
            }
          }),
      ];
    }
    case 'BatchNormalization': {
      const [, , , meanN, varN] = r.input!;
      const mean = G.inits.get(meanN);
      const variance = G.inits.get(varN);
      if (!mean || !variance || (floatData(mean)?.length ?? 0) < offset + k.length || (floatData(variance)?.length ?? 0) < offset + k.length) return null;
      const eps = floatAttr(r, 'epsilon', 1e-5);
      return [
        () => scaled(G, mean, (d) => k.forEach((kc, c) => (d[offset + c] *= kc))),
        // (k x - k m) / sqrt(v' + eps) = (x - m) / sqrt(v + eps) when v' = k^2 (v + eps) - eps
        () => scaled(G, variance, (d) => k.forEach((kc, c) => (d[offset + c] = kc * kc * (d[offset + c] + eps) - eps))),
      ];
    }
    default:
      return null;
  }
}

/** Tensors a Concat (within `inScope`, by node id) reads that are not concatenations themselves. */
export function concatPieces(model: ModelProto, inScope: (id: string) => boolean = () => true): string[] {
  const G = index(model);
  const pieces = new Set<string>();
  for (const n of G.g.node) {
    if (n.opType !== 'Concat' || !inScope(n.name || n.output![0])) continue;
    for (const i of n.input ?? []) if (i && G.producer.get(i)?.opType !== 'Concat' && !G.inits.has(i)) pieces.add(i);
  }
  return [...pieces];
}

/**
 * The pieces equalizeConcatPieces can rescale: a Conv behind them and every reader able to
 * compensate. Only these are worth measuring (a U-Net's skip tensors, read by a MaxPool, are not).
 */
export function equalizablePieces(model: ModelProto, inScope: (id: string) => boolean = () => true): string[] {
  const G = index(model);
  return concatPieces(model, inScope).filter((piece) => {
    const channels = channelsOf(G, piece);
    if (channels === undefined) return false;
    const ones = new Float32Array(channels).fill(1);
    return producerEdits(G, piece, ones) !== null && readerEdits(G, piece, 0, ones) !== null;
  });
}

/** max |x| per channel (axis 1) of each tensor over the inputs, with ONNX Runtime. */
export async function channelAbsMax(
  model: ModelProto,
  tensors: readonly string[],
  inputs: readonly CalibrationInput[],
  threads = 2,
): Promise<Map<string, Float32Array>> {
  const session = await ort.InferenceSession.create(encodeModel(exposeTensors(model, tensors)), {
    graphOptimizationLevel: 'basic',
    intraOpNumThreads: threads,
    extra: { session: { 'intra_op.allow_spinning': '0' } },
  });
  const out = new Map<string, Float32Array>();
  try {
    for (const x of inputs) {
      const r = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.dims) }, [...tensors]);
      for (const t of tensors) {
        const [n, c, ...rest] = r[t].dims as number[];
        const plane = rest.reduce((a, b) => a * b, 1);
        const d = r[t].data as Float32Array;
        const m = out.get(t) ?? new Float32Array(c);
        for (let b = 0; b < n; b++)
          for (let ch = 0; ch < c; ch++) {
            const base = (b * c + ch) * plane;
            let v = m[ch];
            for (let i = 0; i < plane; i++) v = Math.max(v, Math.abs(d[base + i]));
            m[ch] = v;
          }
        out.set(t, m);
      }
    }
  } finally {
    await session.release();
  }
  return out;
}

/** Rescales every concatenation piece's channels to max |x| = 1 where every reader can compensate. */
export function equalizeConcatPieces(model: ModelProto, absMax: ReadonlyMap<string, Float32Array>): EqualizeResult {
  const out = structuredClone(model) as ModelProto;
  const G = index(out);
  const equalized: string[] = [];
  for (const [piece, m] of absMax) {
    // a dead channel (never non-zero) keeps k = 1
    const k = Float32Array.from(m, (v) => (v > 1e-6 ? 1 / v : 1));
    const edits = [producerEdits(G, piece, k), readerEdits(G, piece, 0, k)];
    if (edits.some((e) => e === null)) continue;
    for (const e of edits) for (const f of e!) f();
    equalized.push(piece);
  }
  G.g.initializer = G.g.initializer.map((t) => {
    const data = G.edited.get(t.name!);
    return data ? floatTensor(t.name!, data, dimsOf(t)) : t;
  });
  return { model: out, equalized };
}
