/**
 * Exporter parity on the project's two networks, small variants and full size: tfjs (wasm
 * backend) against onnxruntime-node, every output, max |diff| <= 1e-4, with random weights
 * including batch-norm statistics.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { parity, randomizeWeights, randomInput } from './parity.js';
import { buildUNet } from '../../../src/ml/unet.js';
import * as ort from 'onnxruntime-node';
import { buildDenseNet121SE, featuresModel, withHeadTaps } from '../../../src/ml/densenet.js';
import { exportLayersModel } from '../../../src/ml/onnx/export.js';
import { tapPooledFeatures } from '../../../src/ml/onnx/feature-taps.js';
import { classActivationMap } from '../../../src/inference/cam.js';

const TOL = 1e-4;

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

async function unet(opts: Parameters<typeof buildUNet>[0], size: number) {
  const model = buildUNet(opts);
  randomizeWeights(model, 11);
  const r = await parity(model, randomInput([2, size, size, 1], 5, 0, 1), 2, { outputNames: ['mask'] });
  model.dispose();
  assert.ok(r.maxAbsDiff[0] <= TOL, `mask max abs diff ${r.maxAbsDiff[0]}`);
  // every conv's batch norm folds away: the graph has no BatchNormalization node
  assert.equal(r.export.stats.ops.BatchNormalization, undefined);
  return r;
}

async function densenet(opts: Parameters<typeof buildDenseNet121SE>[0], size: number) {
  const model = buildDenseNet121SE({ ...opts, withFeatures: true });
  randomizeWeights(model, 13);
  const r = await parity(model, randomInput([2, size, size, 1], 6, 0, 1), 2, { outputNames: ['probability', 'features'], cam: true });
  assert.ok(r.maxAbsDiff[0] <= TOL, `probability max abs diff ${r.maxAbsDiff[0]}`);
  assert.ok(r.maxAbsDiff[1] <= TOL, `features max abs diff ${r.maxAbsDiff[1]}`);
  assert.deepEqual(
    r.export.outputs.map((o) => o.name),
    ['probability', 'features', 'cam'],
  );
  // the in-graph CAM against the definition, on ONNX's own features (NCHW), first image
  const [, c, h, w] = r.onnxOutputs.features.dims as number[];
  const kernel = model.getLayer('probability').getWeights()[0].dataSync();
  const want = classActivationMap((r.onnxOutputs.features.data as Float32Array).subarray(0, c * h * w), c, h, w, kernel);
  const got = r.onnxOutputs.cam.data as Float32Array;
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= TOL, `cam[${i}] ${got[i]} vs ${want[i]}`);
  model.dispose();
  return r;
}

test('U-Net, small variant (3 levels, base 4)', async () => {
  await unet({ inputSize: 64, base: 4, depth: 3 }, 64);
});

test('U-Net, full size (256, 4 levels, base 16)', async () => {
  const r = await unet({}, 256);
  assert.deepEqual(r.export.inputs[0].shape, ['N', 1, 256, 256]);
});

test('DenseNet121-SE, small variant (two blocks) with features and CAM outputs', async () => {
  await densenet({ inputSize: 32, blocks: [2, 3], growth: 8, stemFilters: 16 }, 32);
});

test('DenseNet121-SE, full size (224, blocks 6-12-24-16) with features and CAM outputs', async () => {
  const r = await densenet({}, 224);
  assert.deepEqual(r.export.outputs[1].shape, ['N', 1024, 7, 7]);
  assert.equal(r.export.stats.parameters > 7e6, true);
});

test('a multi-scale head exports its pooled input and weighs the CAM with the final features’ rows; tapping the plain export gives the same pooled features', async () => {
  const opts = { inputSize: 64, blocks: [1, 1, 1, 1], growth: 8, stemFilters: 16 };
  const base = buildDenseNet121SE(opts);
  randomizeWeights(base, 17);
  const taps = ['transition2_relu', 'transition3_relu'];
  const tapped = withHeadTaps(base, taps);
  // a head that reads the taps too, with random rows for them
  const [k, b] = tapped.getLayer('probability').getWeights();
  const kr = Float32Array.from(k.dataSync(), (_, i) => Math.sin(i + 1) * 0.3);
  tapped.getLayer('probability').setWeights([tf.tensor2d(kr, k.shape as [number, number]), b]);
  const withFeatures = featuresModel(tapped);
  const input = randomInput([2, 64, 64, 1], 8, 0, 1);
  const r = await parity(withFeatures, input, 2, { outputNames: ['probability', 'features'], cam: true });
  assert.ok(r.maxAbsDiff[0] <= TOL && r.maxAbsDiff[1] <= TOL, String(r.maxAbsDiff));
  assert.deepEqual(
    r.export.outputs.map((o) => o.name),
    ['probability', 'features', 'pooled', 'cam'],
  );
  // pooled: [N, taps' channels then the final 9]; with them the head's logit is exact
  const pooled = r.onnxOutputs.pooled;
  const [n, dims] = pooled.dims as number[];
  assert.equal(dims, kr.length);
  const pd = pooled.data as Float32Array;
  const prob = r.onnxOutputs.probability.data as Float32Array;
  for (let i = 0; i < n; i++) {
    let z = b.dataSync()[0];
    for (let c = 0; c < dims; c++) z += kr[c] * pd[i * dims + c];
    assert.ok(Math.abs(1 / (1 + Math.exp(-z)) - prob[i]) <= TOL);
  }
  // the CAM weighs the final features with their own rows of the kernel (the last ones)
  const [, c, h, w] = r.onnxOutputs.features.dims as number[];
  const want = classActivationMap((r.onnxOutputs.features.data as Float32Array).subarray(0, c * h * w), c, h, w, kr.subarray(dims - c));
  const got = r.onnxOutputs.cam.data as Float32Array;
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= TOL, `cam[${i}] ${got[i]} vs ${want[i]}`);

  // the plain network's export, tapped in ONNX (what refit-head extracts from a base version)
  const plain = exportLayersModel(featuresModel(base), { outputNames: ['probability', 'features'], cam: true });
  const session = await ort.InferenceSession.create(tapPooledFeatures(plain.bytes, taps), { intraOpNumThreads: 1 });
  const out = await session.run({ input: new ort.Tensor('float32', input, [2, 1, 64, 64]) });
  await session.release();
  const tp = out.pooled.data as Float32Array;
  assert.equal(tp.length, pd.length);
  for (let i = 0; i < tp.length; i++) assert.ok(Math.abs(tp[i] - pd[i]) <= TOL, `pooled[${i}] ${tp[i]} vs ${pd[i]}`);
  assert.throws(() => tapPooledFeatures(plain.bytes, ['no_such_layer']), /E_BAD_ARGUMENT|names no layer/);
  // a multi-scale version is refitted as it is: tapping it again is refused
  assert.throws(() => tapPooledFeatures(r.export.bytes, taps), /already outputs pooled features/);
  base.dispose();
});
