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

/** The rows as one row-major float32 matrix, built once per fit: only q changes between Newton steps. */
export function packRows(rows: readonly Float64Array[], m: number): Float32Array {
  const x = new Float32Array(rows.length * m);
  for (let i = 0; i < rows.length; i++) x.set(rows[i], i * m);
  return x;
}

/** X^T diag(q) X for `x` packed by packRows (n rows of m). */
export async function weightedGram(x: Float32Array, q: Float64Array, m: number): Promise<Float64Array> {
  session ??= ort.InferenceSession.create(encodeModel(GRAM), { intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
  const n = q.length;
  const out = await (await session).run({ x: new ort.Tensor('float32', x, [n, m]), q: new ort.Tensor('float32', Float32Array.from(q), [n, 1]) });
  const g = Float64Array.from(out.gram.data as Float32Array);
  // exactly symmetric, as the Cholesky solve reads one triangle
  for (let a = 0; a < m; a++) for (let b = 0; b < a; b++) g[b * m + a] = g[a * m + b];
  return g;
}
