import { WEIGHT_QMAX } from './qdq.js';
import { decodeModel, graphOf, onnx } from './proto.js';

/**
 * The largest |value| among a quantized model's int8 initializers (its weights). Above
 * WEIGHT_QMAX (versions quantized before 7-bit weights) ONNX Runtime's uint8 x int8 kernels
 * on x86 CPUs without VNNI saturate, and the model scores differently there (see qdq.ts).
 */
export function int8WeightMax(bytes: Uint8Array, label = 'model'): number {
  let max = 0;
  for (const t of graphOf(decodeModel(bytes, label)).initializer) {
    if (t.dataType !== onnx.TensorProto.DataType.INT8 || !t.rawData) continue;
    const v = new Int8Array(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]));
  }
  return max;
}

/** Whether a model whose weights reach `weightMax` scores as calibrated on any x86 CPU. */
export function fitsWithoutVnni(weightMax: number): boolean {
  return weightMax <= WEIGHT_QMAX;
}
