import * as ort from 'onnxruntime-node';
import { CxrError } from '../../../errors.js';
import { encodeModel, floatValueInfo, graphOf, type ModelProto } from './proto.js';

/**
 * Activation ranges for static quantization: the float model with the wanted intermediate
 * tensors exposed as extra outputs, run by ONNX Runtime on calibration inputs.
 *
 * - `minmax`: the smallest and largest value seen (ONNX Runtime's default).
 * - `percentile`: the range that keeps `percentile`% of the values, from a 2048-bin
 *   histogram over each tensor's min-max range (a second pass): a few extreme activations
 *   otherwise stretch the 256 levels over values that almost never occur.
 */
export type CalibrationMethod = 'minmax' | 'percentile';

export interface Range {
  min: number;
  max: number;
}

export interface CalibrateRangesOptions {
  method?: CalibrationMethod;
  /** share of values inside the range for `percentile` (default 99.99) */
  percentile?: number;
  threads?: number;
  /** called after each input of each pass */
  onProgress?: (done: number, total: number) => void;
}

/** One calibration input: the graph input's data and its NCHW shape. */
export interface CalibrationInput {
  data: Float32Array;
  dims: number[];
}

const BINS = 2048;

/** The model with `tensors` added as graph outputs (those that are outputs already stay). */
export function exposeTensors(model: ModelProto, tensors: readonly string[]): ModelProto {
  const copy = structuredClone(model) as ModelProto;
  const g = graphOf(copy);
  const present = new Set(g.output!.map((o) => o.name!));
  for (const t of tensors) if (!present.has(t)) g.output!.push(floatValueInfo(t));
  return copy;
}

export async function calibrateRanges(
  model: ModelProto,
  tensors: readonly string[],
  inputs: readonly CalibrationInput[],
  opts: CalibrateRangesOptions = {},
): Promise<Map<string, Range>> {
  if (inputs.length === 0) throw new CxrError('E_BAD_ARGUMENT', 'no calibration inputs');
  const method = opts.method ?? 'minmax';
  const pct = opts.percentile ?? 99.99;
  if (!(pct > 50 && pct <= 100)) throw new CxrError('E_BAD_ARGUMENT', `percentile must be in (50, 100], got ${pct}`);
  const bytes = encodeModel(exposeTensors(model, tensors));
  // 'basic': no layout transforms or fusions that could touch the exposed tensors
  const session = await ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: 'basic',
    intraOpNumThreads: opts.threads ?? 2,
    extra: { session: { 'intra_op.allow_spinning': '0' } },
  });
  const inputName = session.inputNames[0];
  const passes = method === 'percentile' ? 2 : 1;
  const total = inputs.length * passes;
  let done = 0;
  const run = async (x: CalibrationInput) => session.run({ [inputName]: new ort.Tensor('float32', x.data, x.dims) }, [...tensors]);
  try {
    const ranges = new Map<string, Range>(tensors.map((t) => [t, { min: Infinity, max: -Infinity }]));
    for (const x of inputs) {
      const out = await run(x);
      for (const t of tensors) {
        const r = ranges.get(t)!;
        const d = out[t].data as Float32Array;
        let lo = r.min;
        let hi = r.max;
        for (let i = 0; i < d.length; i++) {
          const v = d[i];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        r.min = lo;
        r.max = hi;
      }
      opts.onProgress?.(++done, total);
    }
    for (const [t, r] of ranges) {
      if (!Number.isFinite(r.min) || !Number.isFinite(r.max)) throw new CxrError('E_MODEL_INVALID', `calibration: tensor ${t} holds non-finite values`);
    }
    if (method === 'minmax') return ranges;

    const hist = new Map<string, Float64Array>(tensors.map((t) => [t, new Float64Array(BINS)]));
    for (const x of inputs) {
      const out = await run(x);
      for (const t of tensors) {
        const { min, max } = ranges.get(t)!;
        const h = hist.get(t)!;
        const d = out[t].data as Float32Array;
        const k = max > min ? BINS / (max - min) : 0;
        for (let i = 0; i < d.length; i++) h[Math.min(BINS - 1, Math.floor((d[i] - min) * k))]++;
      }
      opts.onProgress?.(++done, total);
    }
    const out = new Map<string, Range>();
    for (const t of tensors) out.set(t, percentileRange(hist.get(t)!, ranges.get(t)!, pct));
    return out;
  } finally {
    await session.release();
  }
}

/**
 * The narrowest histogram range holding `pct`% of the values, cutting the tails equally
 * ((100 - pct)/2 % each side; a tail at 0 after a ReLU is all in one bin and is never cut).
 */
export function percentileRange(h: Float64Array, full: Range, pct: number): Range {
  const total = h.reduce((a, b) => a + b, 0);
  if (total === 0 || full.max <= full.min) return { ...full };
  const cut = (total * (100 - pct)) / 200;
  const width = (full.max - full.min) / h.length;
  let lo = 0;
  for (let acc = 0; lo < h.length - 1 && acc + h[lo] <= cut; lo++) acc += h[lo];
  let hi = h.length - 1;
  for (let acc = 0; hi > lo && acc + h[hi] <= cut; hi--) acc += h[hi];
  return { min: lo === 0 ? full.min : full.min + lo * width, max: hi === h.length - 1 ? full.max : full.min + (hi + 1) * width };
}

/**
 * Shared ranges for uint8 data ops (plan.ts):
 *
 * - `same`: MaxPool and DepthToSpace input and output. ONNX Runtime moves their uint8 bytes
 *   without requantizing only when both sides have one scale.
 * - `concat`: each Concat's inputs and output. A DenseNet block's chain of concatenations
 *   then shares one scale, so QLinearConcat copies bytes instead of requantizing the whole
 *   tensor at every layer (rounding that compounds down a block), and each piece is rounded
 *   once, where its convolution writes it.
 * - `pinned`: tensors whose pair stands for a folded ReLU (zero point 0 is the ReLU). Their
 *   range must keep its floor at 0, so they (and whatever `same` ties to them) never join a
 *   concatenation's range; QLinearConcat requantizes them instead.
 *
 * Groups that share a tensor merge; each merged group gets the hull of its members' ranges.
 */
export function sharedRanges(
  ranges: ReadonlyMap<string, Range>,
  groups: { same: readonly string[][]; concat: readonly string[][]; pinned: ReadonlySet<string> },
): Map<string, Range> {
  const parent = new Map<string, string>();
  const find = (t: string): string => {
    if (!parent.has(t)) parent.set(t, t);
    let r = t;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(t, r);
    return r;
  };
  const union = (a: string, b: string) => {
    const [x, y] = [find(a), find(b)];
    if (x !== y) parent.set(y, x);
  };
  for (const g of groups.same) for (const t of g.slice(1)) union(g[0], t);
  const pinnedRoots = new Set([...groups.pinned].filter((t) => parent.has(t)).map(find));
  const isPinned = (t: string) => groups.pinned.has(t) || pinnedRoots.has(find(t));
  for (const g of groups.concat) {
    const free = g.filter((t) => !isPinned(t));
    for (const t of free.slice(1)) union(free[0], t);
  }
  const hull = new Map<string, Range>();
  for (const t of parent.keys()) {
    const r = ranges.get(t);
    if (!r) continue;
    const root = find(t);
    const h = hull.get(root);
    hull.set(root, h ? { min: Math.min(h.min, r.min), max: Math.max(h.max, r.max) } : { ...r });
  }
  const out = new Map(ranges);
  for (const t of parent.keys()) if (out.has(t)) out.set(t, hull.get(find(t))!);
  return out;
}
