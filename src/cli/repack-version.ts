import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { CxrError } from '../errors.js';
import { deriveVersion, readManifest } from '../ml/model-store/index.js';
import { halveExactFloatInitializers } from '../ml/onnx/half-initializers.js';
import { INT8_FILE } from '../ml/onnx/quantize/info.js';
import { decodeModel, encodeModel } from '../ml/onnx/quantize/proto.js';
import { mulberry32 } from '../data/rng.js';
import { openSession } from '../inference/session.js';

export interface RepackResult {
  source: string;
  written: { dir: string; version: string };
  file: string;
  bytes: { before: number; after: number };
  halved: number;
  /** random inputs both models were run on, every output equal bit for bit */
  checkedInputs: number;
}

/** Every output of both models on `inputs`, compared bit for bit; the first difference is an error. */
async function assertSameOutputs(a: Uint8Array, b: Uint8Array, inputs: readonly { data: Float32Array; dims: number[] }[], label: string): Promise<void> {
  // opened as the engine opens them: the folded Cast is what the service will run
  const [sa, sb] = (await Promise.all([openSession(a, `${label} before`), openSession(b, `${label} repacked`)])).map((o) => o.session);
  try {
    for (const x of inputs) {
      const feed = (s: ort.InferenceSession) => ({ [s.inputNames[0]]: new ort.Tensor('float32', x.data, x.dims) });
      const [oa, ob] = [await sa.run(feed(sa)), await sb.run(feed(sb))];
      for (const name of sa.outputNames) {
        const da = oa[name].data as Float32Array;
        const db = ob[name].data as Float32Array;
        const i = da.findIndex((v, k) => !Object.is(v, db[k]));
        if (da.length !== db.length || i >= 0)
          throw new CxrError('E_MODEL_INVALID', `${label}: the repacked model's '${name}' differs (${da[i]} vs ${db[i]}): nothing written`);
      }
    }
  } finally {
    await Promise.all([sa.release(), sb.release()]);
  }
}

/**
 * A new version whose int8 model stores its float16-exact float initializers as float16
 * (half-initializers.ts): the same outputs bit for bit, checked on random inputs before
 * anything is written, so its threshold, calibration and figures hold unchanged; fewer bytes.
 * The source version stays as it was.
 */
export async function repackVersion(versionDir: string, o: { version?: string; inputs?: number } = {}): Promise<RepackResult> {
  const dir = resolve(versionDir);
  const manifest = await readManifest(dir);
  const file = manifest.quantization?.file ?? INT8_FILE;
  if (!manifest.files[file]) throw new CxrError('E_BAD_ARGUMENT', `${manifest.name} ${manifest.version} has no int8 model (${file}) to repack`);
  const before = new Uint8Array(await readFile(join(dir, file)));
  const halved = halveExactFloatInitializers(decodeModel(before, file));
  if (halved.halved.length === 0)
    throw new CxrError('E_BAD_ARGUMENT', `${manifest.version}: ${file} holds no float tensor that float16 stores exactly: nothing to repack`);
  const after = encodeModel(halved.model);
  const side = manifest.inputSize ?? 224;
  const n = o.inputs ?? 3;
  const next = mulberry32(4_211);
  // two images per run, in [0, 1] like a windowed film: a batch exercises the batch dimension too
  const inputs = Array.from({ length: n }, () => ({ data: Float32Array.from({ length: 2 * side * side }, next), dims: [2, 1, side, side] }));
  await assertSameOutputs(before, after, inputs, `${manifest.version}/${file}`);
  const derived = await deriveVersion(dir, {
    version: o.version,
    reason: 'repack',
    change: async (stage, m) => {
      await writeFile(join(stage, file), after);
      return m.quantization
        ? { ...m, quantization: { ...m.quantization, bytes: { ...m.quantization.bytes, int8: after.length }, halvedInitializers: halved.halved.length } }
        : m;
    },
  });
  return {
    source: manifest.version,
    written: { dir: derived.dir, version: derived.manifest.version },
    file,
    bytes: { before: before.length, after: after.length },
    halved: halved.halved.length,
    checkedInputs: n,
  };
}
