import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CxrError } from '../errors.js';
import { encodeFloat16 } from './float16.js';

/** File names of a tfjs layers model on disk (the layout tfjs' own file:// handler writes). */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

export interface SaveModelOptions {
  /** store float32 weights as IEEE half precision (tfjs dequantizes them on load) */
  float16?: boolean;
  /** extra JSON stored under model.json's userDefinedMetadata */
  metadata?: Record<string, string | number | boolean | object>;
}

export interface SavedModelInfo {
  files: string[];
  weightBytes: number;
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function joinWeightData(data: tf.io.WeightData | undefined): ArrayBuffer {
  if (data == null) return new ArrayBuffer(0);
  return tf.io.CompositeArrayBuffer.join(data);
}

/** Re-encodes every float32 weight as float16 and marks its spec so tfjs dequantizes on load. */
function toFloat16(specs: tf.io.WeightsManifestEntry[], data: ArrayBuffer): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const parts: Uint8Array[] = [];
  const out: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype === 'float32' && spec.quantization == null) {
      const values = new Float32Array(data.slice(offset, offset + size * 4));
      const half = encodeFloat16(values);
      parts.push(new Uint8Array(half.buffer));
      out.push({ ...spec, quantization: { dtype: 'float16' } });
      offset += size * 4;
    } else {
      const bytes = spec.dtype === 'int32' || spec.dtype === 'float32' ? 4 : 1;
      parts.push(new Uint8Array(data.slice(offset, offset + size * bytes)));
      out.push(spec);
      offset += size * bytes;
    }
  }
  const total = parts.reduce((s, p) => s + p.byteLength, 0);
  const joined = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.byteLength;
  }
  return { specs: out, data: joined.buffer };
}

/**
 * An IOHandler that reads and writes `model.json` + `weights.bin` in a folder with
 * node:fs, so models save and load without tfjs-node (whose native library cannot be
 * installed on these machines).
 */
export function fileSystemHandler(dir: string, opts: SaveModelOptions = {}): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new CxrError('E_MODEL_INVALID', 'only layers models with a JSON topology can be saved');
      }
      await mkdir(dir, { recursive: true });
      let specs = artifacts.weightSpecs ?? [];
      let data = joinWeightData(artifacts.weightData);
      if (opts.float16) ({ specs, data } = toFloat16(specs, data));
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        format: 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: null,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: specs }],
        ...(opts.metadata ? { userDefinedMetadata: opts.metadata } : {}),
      };
      await writeAtomic(join(dir, WEIGHTS_BIN), new Uint8Array(data));
      await writeAtomic(join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          weightDataBytes: data.byteLength,
        },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = join(dir, MODEL_JSON);
      if (!existsSync(jsonPath)) throw new CxrError('E_MODEL_MISSING', `no ${MODEL_JSON} in ${dir}`);
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (e) {
        throw new CxrError('E_MODEL_INVALID', `${jsonPath}: not valid JSON (${(e as Error).message})`);
      }
      if (modelJson.modelTopology == null) throw new CxrError('E_MODEL_INVALID', `${jsonPath}: no modelTopology`);
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const file = join(dir, p);
            if (!existsSync(file)) throw new CxrError('E_MODEL_MISSING', `weights file ${p} listed in ${jsonPath} is missing`);
            const b = await readFile(file);
            buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
          }
        }
        const data = tf.io.CompositeArrayBuffer.join(buffers);
        const expected = specs.reduce((s, w) => {
          const n = w.shape.reduce((a, b) => a * b, 1);
          const bytes = w.quantization ? (w.quantization.dtype === 'uint8' ? 1 : 2) : w.dtype === 'bool' ? 1 : 4;
          return s + n * bytes;
        }, 0);
        if (expected !== data.byteLength) {
          throw new CxrError('E_MODEL_INVALID', `${dir}: weights hold ${data.byteLength} bytes, model.json describes ${expected}`);
        }
        return [specs, data];
      });
    },
  };
}

export async function saveModel(model: tf.LayersModel, dir: string, opts: SaveModelOptions = {}): Promise<SavedModelInfo> {
  const result = await model.save(fileSystemHandler(dir, opts));
  return { files: [MODEL_JSON, WEIGHTS_BIN], weightBytes: result.modelArtifactsInfo.weightDataBytes ?? 0 };
}

/** Loads a layers model from `dir` (model.json + weights). Errors are E_MODEL_MISSING / E_MODEL_INVALID. */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  try {
    return await tf.loadLayersModel(fileSystemHandler(dir));
  } catch (e) {
    if (e instanceof CxrError) throw e;
    throw new CxrError('E_MODEL_INVALID', `${dir}: cannot load the tfjs model (${(e as Error).message})`);
  }
}
