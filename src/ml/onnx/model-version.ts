import { writeFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { CxrError } from '../../errors.js';
import { deriveVersion, ONNX_FILE, readManifest, writeManifest, type ModelManifest, type OnnxInfo } from '../model-store/index.js';
import { loadModel } from '../model-io.js';
import { exportLayersModel, type ExportResult } from './export.js';
import { nchwToNhwc } from './layout.js';

export interface ExportVersionResult {
  dir: string;
  kind: 'segmenter' | 'classifier';
  info: OnnxInfo;
  manifest: ModelManifest & { onnx: OnnxInfo };
}

/** Parity worse than this means the export is wrong, not float rounding. */
export const PARITY_LIMIT = 1e-3;

function kindOf(m: Pick<ModelManifest, 'name' | 'architecture'>): 'segmenter' | 'classifier' {
  if (m.name === 'segmenter' || m.architecture.toLowerCase().includes('unet')) return 'segmenter';
  if (m.name === 'classifier' || m.architecture.toLowerCase().includes('densenet')) return 'classifier';
  throw new CxrError('E_MODEL_INVALID', `cannot tell whether ${m.name} (${m.architecture}) is the segmenter or the classifier`);
}

/**
 * Converts a version folder's tfjs artifacts to model.onnx in place and rewrites its manifest
 * (ONNX description, fresh sha256 of every file). Only for a version being built (a staging
 * folder, random test models): a published version is never rewritten — `exportNewRevision`
 * writes a revision of it instead.
 */
export async function exportModelVersion(dir: string, log: (line: string) => void = () => {}): Promise<ExportVersionResult> {
  const r = await exportInto(dir, await readManifest(dir), log);
  const written = await writeManifest(dir, r.manifest);
  return { dir, kind: r.kind, info: r.info, manifest: { ...written, onnx: r.info } };
}

/**
 * export-onnx on a published version: a new revision (`<version>-rN`, or `version`) with the
 * source's files, a fresh model.onnx and `derivedFrom` (reason 'export-onnx'), published
 * atomically; the source stays byte for byte as it was (predictions name it and its hash).
 */
export async function exportNewRevision(
  sourceDir: string,
  o: { version?: string; log?: (line: string) => void } = {},
): Promise<ExportVersionResult & { source: string }> {
  const out: { r?: Exported } = {};
  const { dir, manifest } = await deriveVersion(sourceDir, {
    version: o.version,
    reason: 'export-onnx',
    change: async (stage, base) => {
      out.r = await exportInto(stage, base, o.log ?? (() => {}));
      return out.r.manifest;
    },
  });
  const r = out.r as Exported;
  return { dir, kind: r.kind, info: r.info, manifest: { ...manifest, onnx: r.info }, source: sourceDir };
}

interface Exported {
  kind: 'segmenter' | 'classifier';
  info: OnnxInfo;
  manifest: Omit<ModelManifest, 'files'>;
}

/**
 * Writes model.onnx into `dir` (checked against tfjs on a random input) and returns the
 * manifest with the ONNX description; the caller writes it (which re-hashes every file).
 */
async function exportInto(dir: string, manifest: Omit<ModelManifest, 'files'>, log: (line: string) => void): Promise<Exported> {
  const kind = kindOf(manifest);
  log(`loading ${kind} ${manifest.version} (${manifest.architecture}) from ${dir}`);
  const model = await loadModel(dir);
  try {
    const result = exportGraph(model, kind, { name: manifest.name, version: manifest.version, architecture: manifest.architecture });
    log(`exported ${result.stats.layers} layers to ${result.stats.nodes} ONNX nodes (${result.stats.foldedBatchNorms} batch norms folded)`);
    const parityMaxAbsDiff = await checkParity(model, result.bytes, result);
    log(`parity tfjs (${tf.getBackend()}) vs onnxruntime on every output: max |diff| ${parityMaxAbsDiff.toExponential(2)} (relative to scale >= 1)`);
    if (!(parityMaxAbsDiff <= PARITY_LIMIT)) {
      throw new CxrError('E_MODEL_INVALID', `${dir}: ONNX export differs from tfjs by ${parityMaxAbsDiff} (limit ${PARITY_LIMIT})`);
    }
    const path = join(dir, ONNX_FILE);
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, result.bytes);
    await rename(tmp, path);
    const info: OnnxInfo = {
      file: ONNX_FILE,
      opset: result.opset,
      inputs: result.inputs,
      outputs: result.outputs,
      parityMaxAbsDiff,
      foldedBatchNorms: result.stats.foldedBatchNorms,
      nodes: result.stats.nodes,
      exportedAt: new Date().toISOString(),
    };
    // an int8 model quantized from the previous model.onnx no longer matches it
    const { files: _old, quantization, ...rest } = manifest as ModelManifest;
    if (quantization) await rm(join(dir, quantization.file), { force: true });
    return { kind, info, manifest: { ...rest, onnx: info } };
  } finally {
    model.dispose();
  }
}

function exportGraph(model: tf.LayersModel, kind: 'segmenter' | 'classifier', metadata: Record<string, string>): ExportResult {
  const outputNames = kind === 'segmenter' ? ['mask'] : model.outputs.length === 2 ? ['probability', 'features'] : ['probability'];
  return exportLayersModel(model, { outputNames, cam: kind === 'classifier', metadata });
}

/**
 * The bytes export-onnx would write for a version folder, with the given graph metadata,
 * without writing anything: a version that ships only its int8 model rebuilds its float
 * model from the tfjs weights this way (the export is deterministic; the caller checks the
 * bytes against the sha256 recorded when the float model was dropped).
 */
export async function exportOnnxBytes(dir: string, kind: 'segmenter' | 'classifier', metadata: Record<string, string>): Promise<Uint8Array> {
  const model = await loadModel(dir);
  try {
    return exportGraph(model, kind, metadata).bytes;
  } finally {
    model.dispose();
  }
}

/**
 * Runs tfjs and onnxruntime on the same random image and compares every output tfjs can
 * compute (probability or mask, and the CAM features). The error is relative to each
 * output's scale (max |tfjs|, at least 1), so trained weights with large activations are
 * judged like the unit-scale parity tests.
 */
async function checkParity(model: tf.LayersModel, bytes: Uint8Array, result: ExportResult): Promise<number> {
  const shape = [1, ...(model.inputs[0].shape.slice(1) as number[])];
  if (shape.length !== 4 || shape[3] !== 1) throw new CxrError('E_MODEL_INVALID', `expected a one-channel image input, got ${shape.join('x')}`);
  const n = shape.reduce((a, b) => a * b, 1);
  const input = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    input[i] = s / 2147483648;
  }
  const compared = result.outputs.map((o, i) => ({ io: o, source: result.outputSources[i] })).filter((x) => x.source !== null);
  const probe = tf.model({ inputs: model.inputs, outputs: compared.map((x) => x.source!) });
  const predicted = tf.tidy(() => {
    const out = probe.predict(tf.tensor(input, shape));
    return (Array.isArray(out) ? out : [out]).map((t) => t.dataSync() as Float32Array);
  });
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
  try {
    const res = await session.run({ [result.inputs[0].name]: new ort.Tensor('float32', input, [1, 1, shape[1], shape[2]]) });
    let worst = 0;
    compared.forEach(({ io, source }, i) => {
      let got = res[io.name].data as Float32Array;
      if (source!.shape.length === 4) {
        const [, h, w, c] = source!.shape as number[];
        got = nchwToNhwc(got, 1, c, h, w);
      }
      const want = predicted[i];
      if (got.length !== want.length) {
        worst = Infinity;
        return;
      }
      let scale = 1;
      let diff = 0;
      for (let k = 0; k < want.length; k++) {
        scale = Math.max(scale, Math.abs(want[k]));
        diff = Math.max(diff, Math.abs(got[k] - want[k]));
      }
      worst = Math.max(worst, diff / scale);
    });
    return worst;
  } finally {
    await session.release();
  }
}
