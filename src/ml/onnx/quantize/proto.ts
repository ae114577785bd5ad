import onnxProto from 'onnx-proto';
import { CxrError } from '../../../errors.js';

/**
 * Reading and writing an ONNX model as protobuf objects for graph rewrites (the quantizer):
 * decode, float initializers as typed arrays, new typed initializers, attributes as numbers.
 */
export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.IModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;

const DT = onnx.TensorProto.DataType;

export function decodeModel(bytes: Uint8Array, label = 'model'): ModelProto {
  try {
    const m = onnx.ModelProto.decode(bytes);
    if (!m.graph) throw new Error('no graph');
    return m;
  } catch (e) {
    throw new CxrError('E_MODEL_INVALID', `${label} is not an ONNX model (${(e as Error).message})`);
  }
}

export function encodeModel(m: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(m as Record<string, unknown>)).finish();
}

export function graphOf(m: ModelProto): GraphProto & { node: NodeProto[]; initializer: TensorProto[] } {
  const g = m.graph!;
  g.node ??= [];
  g.initializer ??= [];
  g.input ??= [];
  g.output ??= [];
  return g as GraphProto & { node: NodeProto[]; initializer: TensorProto[] };
}

/** Who reads and who writes each tensor of a graph, its initializers and its outputs by name. */
export interface GraphIndex {
  inits: Map<string, TensorProto>;
  /** the nodes reading a tensor, in graph order */
  consumers: Map<string, NodeProto[]>;
  producer: Map<string, NodeProto>;
  outputs: Set<string>;
}

export function indexGraph(g: GraphProto): GraphIndex {
  const consumers = new Map<string, NodeProto[]>();
  const producer = new Map<string, NodeProto>();
  for (const n of g.node ?? []) {
    for (const i of n.input ?? []) {
      if (!i) continue;
      const list = consumers.get(i);
      if (list) list.push(n);
      else consumers.set(i, [n]);
    }
    for (const o of n.output ?? []) producer.set(o, n);
  }
  return {
    inits: new Map((g.initializer ?? []).map((t) => [t.name!, t])),
    consumers,
    producer,
    outputs: new Set((g.output ?? []).map((o) => o.name!)),
  };
}

/**
 * Fresh tensor and node names for a graph rewrite: `base`, else `base_1`, `base_2`, ... not
 * yet used by any initializer, node, input or output of `g`.
 */
export function nameAllocator(g: GraphProto): (base: string) => string {
  const taken = new Set<string>([
    ...(g.initializer ?? []).map((t) => t.name ?? ''),
    ...(g.node ?? []).flatMap((n) => [...(n.input ?? []), ...(n.output ?? []), n.name ?? '']),
  ]);
  return (base) => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
}

/** protobufjs gives int64 values as Long objects when the `long` package is present. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof (v as { toNumber?: unknown }).toNumber === 'function') return (v as { toNumber(): number }).toNumber();
  // a Long that went through structuredClone (graph rewrites copy the model) keeps its fields only
  if (v && typeof v === 'object' && typeof (v as { low?: unknown }).low === 'number' && typeof (v as { high?: unknown }).high === 'number') {
    const { low, high, unsigned } = v as { low: number; high: number; unsigned?: boolean };
    return (unsigned ? high >>> 0 : high) * 4294967296 + (low >>> 0);
  }
  return Number(v);
}

export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map(toNumber);
}

/** A float initializer's values (raw little-endian bytes or float_data); undefined for other types. */
export function floatData(t: TensorProto): Float32Array | undefined {
  if (t.dataType !== DT.FLOAT) return undefined;
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    // copy: the decoded bytes may not be 4-byte aligned
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  }
  return Float32Array.from(t.floatData ?? []);
}

function rawBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

export function floatTensor(name: string, data: Float32Array, dims: number[]): TensorProto {
  return { name, dims, dataType: DT.FLOAT, rawData: rawBytes(data) };
}

export function int8Tensor(name: string, data: Int8Array, dims: number[]): TensorProto {
  return { name, dims, dataType: DT.INT8, rawData: rawBytes(data) };
}

export function uint8Tensor(name: string, data: Uint8Array, dims: number[]): TensorProto {
  return { name, dims, dataType: DT.UINT8, rawData: rawBytes(data) };
}

export function int32Tensor(name: string, data: Int32Array, dims: number[]): TensorProto {
  return { name, dims, dataType: DT.INT32, rawData: rawBytes(data) };
}

/** An attribute's integer value (INT), or `fallback` when the node does not set it. */
export function intAttr(n: NodeProto, name: string, fallback: number): number {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? toNumber(a.i) : fallback;
}

export function floatAttr(n: NodeProto, name: string, fallback: number): number {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? (a.f ?? fallback) : fallback;
}

export function node(opType: string, inputs: string[], outputs: string[], name: string, attrs: Record<string, number> = {}): NodeProto {
  const T = onnx.AttributeProto.AttributeType;
  return {
    opType,
    input: inputs,
    output: outputs,
    name,
    attribute: Object.entries(attrs).map(([k, i]) => ({ name: k, type: T.INT, i })),
  };
}

/** A graph output (or extra calibration output) of float type with unknown shape. */
export function floatValueInfo(name: string): onnxProto.onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: DT.FLOAT } } };
}
