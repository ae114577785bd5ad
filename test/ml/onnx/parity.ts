/**
 * Shared by the exporter tests: random weights for any tfjs layer, and a comparison of a
 * tfjs model's predictions with onnxruntime-node running the exported graph.
 */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { exportLayersModel, type ExportOptions, type ExportResult } from '../../../src/ml/onnx/export.js';
import { nchwToNhwc, nhwcToNchw } from '../../../src/ml/onnx/layout.js';
import { mulberry32 as rng } from '../../../src/ml/train/rng.js';

/** Applies a layer to symbolic tensors (the functional model-building the tests use). */
export const ap = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;

/** Deterministic uniform [0,1) stream (training's mulberry32). */
export { rng };

/**
 * Replaces every weight with random values, batch-norm statistics included (the initial
 * mean 0 / variance 1 would make a folding bug invisible). Variances and gammas stay
 * positive and near 1 so activations keep a sane scale through deep stacks.
 */
export function randomizeWeights(model: tf.LayersModel, seed: number): void {
  const r = rng(seed);
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.weights.map((v) => {
      const dims = v.shape as number[];
      const n = dims.reduce((a, b) => a * b, 1);
      const name = v.originalName ?? v.name;
      const data = new Float32Array(n);
      if (/moving_variance/.test(name)) for (let i = 0; i < n; i++) data[i] = 0.5 + r();
      else if (/gamma/.test(name)) for (let i = 0; i < n; i++) data[i] = 0.6 + 0.8 * r();
      else if (/moving_mean|beta|bias/.test(name)) for (let i = 0; i < n; i++) data[i] = 0.4 * (r() - 0.5);
      else {
        // kernels: uniform with variance ~ 1/fan_in keeps outputs O(1)
        const fanIn = dims.length === 4 ? dims[0] * dims[1] * dims[2] : dims[0];
        const s = Math.sqrt(3 / Math.max(1, fanIn));
        for (let i = 0; i < n; i++) data[i] = (2 * r() - 1) * s;
      }
      return tf.tensor(data, dims);
    });
    layer.setWeights(values);
    values.forEach((t) => t.dispose());
  }
}

export function randomInput(shape: number[], seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

export interface ParityResult {
  export: ExportResult;
  /** max |tfjs - onnx| per model output */
  maxAbsDiff: number[];
  onnxOutputs: Record<string, ort.Tensor>;
  tfOutputs: Float32Array[];
}

/** Runs `model` on NHWC `input` in tfjs and through its ONNX export in onnxruntime. */
export async function parity(model: tf.LayersModel, input: Float32Array, batch: number, opts: ExportOptions = {}): Promise<ParityResult> {
  const inShape = [batch, ...(model.inputs[0].shape.slice(1) as number[])];
  const result = exportLayersModel(model, opts);
  const x = tf.tensor(input, inShape);
  const predicted = model.predict(x);
  const tfTensors = Array.isArray(predicted) ? predicted : [predicted];
  const tfOutputs = tfTensors.map((t) => t.dataSync() as Float32Array);
  x.dispose();
  tfTensors.forEach((t) => t.dispose());

  const session = await ort.InferenceSession.create(result.bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  const [n, h, w, c] = inShape;
  const feed = inShape.length === 4 ? nhwcToNchw(input, n, h, w, c) : input;
  const stored = inShape.length === 4 ? [n, c, h, w] : inShape;
  const onnxOutputs = await session.run({ [result.inputs[0].name]: new ort.Tensor('float32', feed, stored) });
  await session.release();

  const maxAbsDiff = model.outputs.map((o, i) => {
    const got = onnxOutputs[result.outputs[i].name];
    let data = got.data as Float32Array;
    if (o.shape.length === 4) {
      const [, oh, ow, oc] = o.shape as number[];
      data = nchwToNhwc(data, batch, oc, oh, ow);
    }
    const want = tfOutputs[i];
    if (data.length !== want.length) throw new Error(`output ${i}: ${data.length} values from ONNX, ${want.length} from tfjs`);
    let m = 0;
    for (let k = 0; k < want.length; k++) m = Math.max(m, Math.abs(data[k] - want[k]));
    return m;
  });
  return { export: result, maxAbsDiff, onnxOutputs, tfOutputs };
}
