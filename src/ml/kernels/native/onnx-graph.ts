import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/**
 * Just enough ONNX to describe one kernel as a small graph (a convolution with the
 * layout changes around it): float32 inputs/outputs of fixed shape, int64 constants, and
 * nodes with int / ints / string attributes.
 */
export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, number | number[] | string>;
}

export interface OnnxGraph {
  /** default opset 13 */
  opset?: number;
  inputs: { name: string; shape: number[] }[];
  outputs: { name: string; shape: number[] }[];
  constants?: { name: string; values: number[] }[];
  nodes: OnnxNode[];
}

const FLOAT = 1;
const INT64 = 7;
const ATTR_INT = 2;
const ATTR_INTS = 7;
const ATTR_STRING = 3;

function valueInfo(name: string, shape: number[]) {
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } };
}

export function encodeGraph(g: OnnxGraph): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 7,
    producerName: 'cxr-triage-kernels',
    opsetImport: [{ domain: '', version: g.opset ?? 13 }],
    graph: {
      name: 'kernel',
      input: g.inputs.map((i) => valueInfo(i.name, i.shape)),
      output: g.outputs.map((o) => valueInfo(o.name, o.shape)),
      initializer: (g.constants ?? []).map((c) => ({ name: c.name, dims: [c.values.length], dataType: INT64, int64Data: c.values })),
      node: g.nodes.map((n, i) => ({
        name: `${n.op}_${i}`,
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([name, v]) =>
          typeof v === 'string'
            ? { name, type: ATTR_STRING, s: new TextEncoder().encode(v) }
            : Array.isArray(v)
              ? { name, type: ATTR_INTS, ints: v }
              : { name, type: ATTR_INT, i: v },
        ),
      })),
    },
  }).finish();
}
