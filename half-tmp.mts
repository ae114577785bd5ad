import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { decodeModel, encodeModel } from './src/ml/onnx/quantize/proto.js';
import { halveExactFloatInitializers } from './src/ml/onnx/half-initializers.js';
import { sessionOptions } from './src/inference/session.js';
const src = readFileSync(process.argv[2]);
const h = halveExactFloatInitializers(decodeModel(new Uint8Array(src)));
const bytes = encodeModel(h.model);
writeFileSync('/work/scratch/halved.onnx', bytes);
console.log(src.length, '->', bytes.length, 'halved', h.halved.length, 'saved', h.savedBytes);
const [a, b] = await Promise.all([src, bytes].map((m) => ort.InferenceSession.create(m, sessionOptions(2, ['cpu'], false, false))));
let maxd = 0;
for (let k = 0; k < 3; k++) {
  const x = new Float32Array(4 * 224 * 224).map((_, i) => ((i * 2654435761 + k * 977) % 1000) / 1000);
  const feeds = (s: ort.InferenceSession) => ({ [s.inputNames[0]]: new ort.Tensor('float32', x, [4, 1, 224, 224]) });
  const [oa, ob] = [await a.run(feeds(a)), await b.run(feeds(b))];
  for (const name of a.outputNames) { const da = oa[name].data as Float32Array, db = ob[name].data as Float32Array; for (let i = 0; i < da.length; i++) maxd = Math.max(maxd, Math.abs(da[i] - db[i])); }
}
console.log('max |diff| over outputs', maxd);
