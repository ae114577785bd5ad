import * as ort from 'onnxruntime-node';
import { encodeModel, floatValueInfo, node, type ModelProto } from '../onnx/quantize/proto.js';

/**
 * X^T diag(q) X for n rows of width m, as one ONNX Runtime matrix product in float32 (MLAS
 * GEMM): the Hessian of a wide head's Newton step. Plain loops take minutes for 13,000 rows
 * of 2,561 and tfjs's wasm product most of one (measured 40 s for 2,000 rows); this takes
 * about a second.
 */
const GRAM: ModelProto = {
  irVersion: 8,
  opsetImport: [{ domain: '', version: 13 }],
  graph: {
    name: 'weighted_gram',
    node: [node('Mul', ['x', 'q'], ['xq'], 'scale_rows'), node('Transpose', ['xq'], ['xqt'], 'transpose'), node('MatMul', ['xqt', 'x'], ['gram'], 'product')],
    input: [floatValueInfo('x'), floatValueInfo('q')],
    output: [floatValueInfo('gram')],
  },
};

let session: Promise<ort.InferenceSession> | undefined;

export async function weightedGram(rows: readonly Float64Array[], q: Float64Array, m: number): Promise<Float64Array> {
  session ??= ort.InferenceSession.create(encodeModel(GRAM), { intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
  const n = rows.length;
  const x = new Float32Array(n * m);
  for (let i = 0; i < n; i++) x.set(rows[i], i * m);
  const out = await (await session).run({ x: new ort.Tensor('float32', x, [n, m]), q: new ort.Tensor('float32', Float32Array.from(q), [n, 1]) });
  const g = Float64Array.from(out.gram.data as Float32Array);
  // exactly symmetric, as the Cholesky solve reads one triangle
  for (let a = 0; a < m; a++) for (let b = 0; b < a; b++) g[b * m + a] = g[a * m + b];
  return g;
}
