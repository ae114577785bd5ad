import { encodeFloat16, float16BitsToFloat32 } from '../float16.js';
import { floatData, graphOf, nameAllocator, node, onnx, type ModelProto, type TensorProto } from './quantize/proto.js';

/**
 * Float initializers stored as float16 behind a Cast to float, where that loses nothing: every
 * value of the tensor is a float16 number. A version's weights ship as float16 (model-io.ts), so
 * what an exported network carries straight from them (the SE blocks' Gemm weights, the batch
 * norms an int8 graph keeps in float, the head) is exactly representable; what the exporter or
 * the quantizer computed (folded biases, scales) usually is not and stays float32.
 *
 * At run time nothing changes: ONNX Runtime folds Cast(initializer) into a float32 initializer
 * when it loads the model, holding the very values the float32 tensor held, so outputs are
 * identical bit for bit. On disk each such tensor takes half the bytes: about 0.9 MB of an int8
 * DenseNet121-SE's 9 MB, what keeps a version folder under 25 MB.
 */
export interface HalvedInitializers {
  model: ModelProto;
  /** names of the initializers now stored as float16 */
  halved: string[];
  /** bytes of tensor data saved */
  savedBytes: number;
}

/** Initializers smaller than this stay as they are: a Cast node costs more bytes than it saves. */
export const MIN_HALVED_ELEMENTS = 64;

/** The tensor's float16 bits when every value survives the trip exactly, else null. */
function exactFloat16(values: Float32Array): Uint16Array | null {
  const bits = encodeFloat16(values);
  for (let i = 0; i < values.length; i++) if (float16BitsToFloat32(bits[i]) !== values[i]) return null;
  return bits;
}

export function halveExactFloatInitializers(model: ModelProto, minElements = MIN_HALVED_ELEMENTS): HalvedInitializers {
  const out = structuredClone(model) as ModelProto;
  const g = graphOf(out);
  const fresh = nameAllocator(g);
  const casts = [];
  const halved: string[] = [];
  const kept: TensorProto[] = [];
  let savedBytes = 0;
  for (const t of g.initializer) {
    const values = floatData(t);
    const bits = values && values.length >= minElements ? exactFloat16(values) : null;
    if (!values || !bits) {
      kept.push(t);
      continue;
    }
    const name = fresh(`${t.name}/float16`);
    kept.push({ name, dims: t.dims, dataType: onnx.TensorProto.DataType.FLOAT16, rawData: new Uint8Array(bits.buffer) });
    casts.push(node('Cast', [name], [t.name!], fresh(`${t.name}/cast`), { to: onnx.TensorProto.DataType.FLOAT }));
    halved.push(t.name!);
    savedBytes += values.length * 2;
  }
  g.initializer = kept;
  // an older IR lists initializers among the graph inputs too: the Cast's output is not one
  const gone = new Set(halved);
  g.input = (g.input ?? []).filter((i) => !gone.has(i.name ?? ''));
  // no inputs but initializers: first in the graph is topological order
  g.node = [...casts, ...g.node];
  return { model: out, halved, savedBytes };
}
