import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/**
 * A small builder for ONNX graphs: named tensors, float/int64 initializers kept as typed
 * arrays until serialisation (so a later pass such as batch-norm folding can still rewrite
 * a convolution's weights), nodes with typed attributes, and graph inputs/outputs.
 */

/** A dimension: a fixed size, or a symbolic name (the batch). */
export type Dim = number | string;

export type AttrValue = number | string | number[] | { floats: number[] } | { float: number };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
  name: string;
}

export interface FloatInit {
  kind: 'float';
  name: string;
  dims: number[];
  data: Float32Array;
}

export interface Int64Init {
  kind: 'int64';
  name: string;
  dims: number[];
  data: number[];
}

/** ONNX opset this exporter targets; onnxruntime-node 1.x implements it fully. */
export const OPSET = 13;
/** IR version 7 is the one that goes with opset 13. */
export const IR_VERSION = 7;

export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers = new Map<string, FloatInit | Int64Init>();
  private readonly inputs: { name: string; shape: Dim[] }[] = [];
  private readonly outputs: { name: string; shape: Dim[] }[] = [];
  private readonly used = new Set<string>();

  /** A fresh tensor or node name derived from `base`. */
  unique(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_./:-]/g, '_') || 't';
    let name = clean;
    for (let i = 1; this.used.has(name); i++) name = `${clean}_${i}`;
    this.used.add(name);
    return name;
  }

  /** Reserves an exact name (graph inputs/outputs keep the names callers chose). */
  reserve(name: string): string {
    if (this.used.has(name)) throw new Error(`duplicate ONNX name ${name}`);
    this.used.add(name);
    return name;
  }

  addInput(name: string, shape: Dim[]): void {
    this.inputs.push({ name, shape });
  }

  addOutput(name: string, shape: Dim[]): void {
    this.outputs.push({ name, shape });
  }

  floatInit(base: string, data: Float32Array, dims: number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new Error(`initializer ${base}: ${data.length} values for dims ${dims.join('x')}`);
    const name = this.unique(base);
    this.initializers.set(name, { kind: 'float', name, dims: [...dims], data });
    return name;
  }

  int64Init(base: string, values: number[]): string {
    const name = this.unique(base);
    this.initializers.set(name, { kind: 'int64', name, dims: [values.length], data: [...values] });
    return name;
  }

  getFloatInit(name: string): FloatInit | undefined {
    const init = this.initializers.get(name);
    return init?.kind === 'float' ? init : undefined;
  }

  /** Adds a node producing one fresh output named after `base`; returns that name. */
  node(op: string, inputs: string[], base: string, attrs?: Record<string, AttrValue>): string {
    const out = this.unique(base);
    this.nodes.push({ op, inputs, outputs: [out], attrs, name: this.unique(`${base}/${op}`) });
    return out;
  }

  /** Adds a node whose output name is already chosen (a graph output). */
  nodeTo(op: string, inputs: string[], output: string, attrs?: Record<string, AttrValue>): void {
    this.nodes.push({ op, inputs, outputs: [output], attrs, name: this.unique(`${output}/${op}`) });
  }

  /** Renames a produced tensor everywhere (used to give graph outputs their public names). */
  rename(from: string, to: string): void {
    for (const n of this.nodes) {
      n.inputs = n.inputs.map((x) => (x === from ? to : x));
      n.outputs = n.outputs.map((x) => (x === from ? to : x));
    }
  }

  producerOf(tensor: string): NodeSpec | undefined {
    return this.nodes.find((n) => n.outputs.includes(tensor));
  }

  toModel(meta: { producer: string; docString?: string; metadata?: Record<string, string> }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: meta.producer,
      producerVersion: '1',
      docString: meta.docString ?? '',
      metadataProps: Object.entries(meta.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: 'main',
        node: this.nodes.map((n) => ({
          name: n.name,
          opType: n.op,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
        })),
        initializer: [...this.initializers.values()].map(tensorProto),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo({ name, shape }: { name: string; shape: Dim[] }): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function tensorProto(init: FloatInit | Int64Init): onnxProto.onnx.ITensorProto {
  if (init.kind === 'float') {
    // raw_data is little-endian; so is every platform onnxruntime-node ships for.
    const raw = new Uint8Array(init.data.buffer.slice(init.data.byteOffset, init.data.byteOffset + init.data.byteLength));
    return { name: init.name, dims: init.dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw };
  }
  return { name: init.name, dims: init.dims, dataType: onnx.TensorProto.DataType.INT64, int64Data: init.data };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (use { float })`);
    return { name, type: T.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.FLOAT, f: v.float };
}
