/**
 * Folding a pre-activation batch norm into the convolutions after it (fold-preactivation.ts),
 * equalizing the channels a concatenation is made of (equalize.ts), one range per chain of
 * concatenations, and the uint8 Add/Concat that the int8 DenseNet keeps between its
 * convolutions.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { buildDenseNet121SE } from '../../../src/ml/densenet.js';
import { exportLayersModel } from '../../../src/ml/onnx/export.js';
import { foldPreactivationBatchNorm } from '../../../src/ml/onnx/quantize/fold-preactivation.js';
import { channelAbsMax, concatPieces, equalizeConcatPieces } from '../../../src/ml/onnx/quantize/equalize.js';
import { sharedRanges } from '../../../src/ml/onnx/quantize/ranges.js';
import { quantizeOnnx, type CalibrationInput } from '../../../src/ml/onnx/quantize/index.js';
import { decodeModel, encodeModel, graphOf, intAttr, toNumber } from '../../../src/ml/onnx/quantize/proto.js';
import { SMALL_DENSENET } from '../../../src/ml/random-models.js';
import { ap, randomizeWeights, randomInput } from './parity.js';

const L = tf.layers;

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

async function run(bytes: Uint8Array, input: Float32Array, dims: number[], level: 'basic' | 'all' = 'basic'): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level, intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', input, dims) });
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

function ops(bytes: Uint8Array): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of graphOf(decodeModel(bytes)).node) c[n.opType!] = (c[n.opType!] ?? 0) + 1;
  return c;
}

/**
 * DenseNet-style: concat -> [bn -> relu -> conv 3x3] -> concat -> [bn -> relu -> conv 1x1], the
 * second batch norm with `gammaSign` on its first channel. (A batch norm right after a conv is
 * folded into that conv by the exporter already: the concatenations keep these apart.)
 */
function preactivationModel(gammaSign: number, seed: number): Uint8Array {
  const x = tf.input({ shape: [6, 6, 3] });
  let c = ap(L.concatenate({}), [ap(L.conv2d({ filters: 5, kernelSize: 3, padding: 'same' }), x), x]);
  let y = ap(L.reLU({}), ap(L.batchNormalization({ name: 'bn_a' }), c));
  y = ap(L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv_a' }), y);
  c = ap(L.concatenate({}), [y, c]);
  y = ap(L.reLU({}), ap(L.batchNormalization({ name: 'bn_b' }), c));
  y = ap(L.conv2d({ filters: 2, kernelSize: 1, name: 'conv_b' }), y);
  const model = tf.model({ inputs: x, outputs: y });
  randomizeWeights(model, seed);
  const bn = model.getLayer('bn_b');
  const [gamma, ...rest] = bn.getWeights();
  const g = gamma.dataSync().slice();
  g[0] = gammaSign * Math.abs(g[0]);
  bn.setWeights([tf.tensor(g, gamma.shape), ...rest]);
  const bytes = exportLayersModel(model).bytes;
  model.dispose();
  return bytes;
}

test('folding BatchNormalization -> Relu -> Conv leaves an Add and scaled weights that compute the same (3x3 with zero padding too)', async () => {
  const bytes = preactivationModel(1, 11);
  const { model, folded } = foldPreactivationBatchNorm(decodeModel(bytes));
  assert.equal(folded.length, 2);
  const after = encodeModel(model);
  assert.equal(ops(after).BatchNormalization ?? 0, 0);
  assert.equal(ops(after).Add, 2);
  const dims = [1, 3, 6, 6];
  for (let s = 0; s < 3; s++) {
    const input = randomInput(dims, 70 + s);
    const [a, b] = [await run(bytes, input, dims), await run(after, input, dims)];
    for (const k of Object.keys(a)) {
      let worst = 0;
      for (let i = 0; i < a[k].length; i++) worst = Math.max(worst, Math.abs(a[k][i] - b[k][i]) / Math.max(1, Math.abs(a[k][i])));
      assert.ok(worst < 1e-5, `${k}: relative difference ${worst}`);
    }
  }
});

test('a batch norm with any scale <= 0 stays as it is (Relu(a x + b) = a Relu(x + b/a) needs a > 0)', () => {
  const { model, folded } = foldPreactivationBatchNorm(decodeModel(preactivationModel(-1, 12)));
  assert.equal(folded.length, 1);
  assert.equal(ops(encodeModel(model)).BatchNormalization, 1);
});

test('integer attributes still read right after a rewrite copied the model (structuredClone strips Long methods)', () => {
  const m = decodeModel(preactivationModel(1, 13));
  const conv = graphOf(m).node.find((n) => n.opType === 'Conv')!;
  const cloned = structuredClone(conv);
  assert.equal(intAttr(cloned, 'group', 0), 1);
  assert.equal(toNumber({ low: -1, high: 0, unsigned: false }), 4294967295);
  assert.equal(toNumber({ low: 5, high: 1 }), 4294967301);
});

/** A small random DenseNet121-SE as ONNX, and `count` random 32x32 calibration inputs. */
function smallDenseNet(seed: number, count: number, inputSeed: number): { floatBytes: Uint8Array; inputs: CalibrationInput[] } {
  const net = buildDenseNet121SE({ ...SMALL_DENSENET, seed });
  randomizeWeights(net, seed + 3);
  const floatBytes = exportLayersModel(net, { outputNames: ['probability', 'features'], cam: true }).bytes;
  net.dispose();
  const inputs = Array.from({ length: count }, (_, i) => ({ data: randomInput([1, 32, 32, 1], inputSeed + i, 0, 1), dims: [1, 1, 32, 32] }));
  return { floatBytes, inputs };
}

test('an int8 DenseNet keeps its concatenations and folded batch norms in uint8: ONNX Runtime runs QLinearConcat/QLinearAdd and no float BatchNormalization between blocks', async () => {
  const { floatBytes, inputs } = smallDenseNet(5, 8, 900);
  const q = await quantizeOnnx(floatBytes, inputs, { method: 'percentile', percentile: 99.99 });
  const bns = ops(floatBytes).BatchNormalization;
  // every batch norm but the last (it feeds the global pooling and CAM, not a conv) folds
  assert.equal(q.foldedBatchNorms.length, bns - 1);
  assert.ok(q.plan.data.some((p) => p.op === 'Concat') && q.plan.data.some((p) => p.op === 'Add'));
  const dir = mkdtempSync(join(tmpdir(), 'cxr-fold-'));
  try {
    const optimized = join(dir, 'optimized.onnx');
    const s = await ort.InferenceSession.create(q.bytes, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: 1,
      logSeverityLevel: 3,
      optimizedModelFilePath: optimized,
    });
    await s.release();
    const fused = ops(readFileSync(optimized));
    assert.equal(fused.QLinearConcat, q.plan.data.filter((p) => p.op === 'Concat').length);
    assert.equal(fused.QLinearAdd, q.plan.data.filter((p) => p.op === 'Add').length);
    assert.equal(fused.BatchNormalization ?? 0, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // agreement with float, the same bound as the quantizer's own DenseNet test
  for (const x of inputs) {
    const [a, b] = [await run(floatBytes, x.data, x.dims), await run(q.bytes, x.data, x.dims, 'all')];
    assert.ok(Math.abs(a.probability[0] - b.probability[0]) <= 0.05, `probability ${a.probability[0]} vs ${b.probability[0]}`);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < a.features.length; i++) {
      diff = Math.max(diff, Math.abs(a.features[i] - b.features[i]));
      scale = Math.max(scale, Math.abs(a.features[i]));
    }
    assert.ok(diff <= 0.05 * scale, `features: max |int8 - float| ${diff} > ${0.05 * scale}`);
  }
});

test('--data-scope limits the uint8 data ops, the batch norms folded and the pieces equalized to the named blocks; a prefix naming no node is E_BAD_ARGUMENT', async () => {
  const { floatBytes, inputs } = smallDenseNet(6, 4, 700);
  const scope = ['block1_', 'transition1_'];
  const whole = await quantizeOnnx(floatBytes, inputs);
  const early = await quantizeOnnx(floatBytes, inputs, { dataScope: scope });
  const inside = (id: string) => scope.some((p) => id.startsWith(p));
  assert.ok(early.plan.data.length > 0 && early.plan.data.every((p) => inside(p.id)));
  assert.deepEqual(
    early.plan.data.map((p) => p.id),
    whole.plan.data.filter((p) => inside(p.id)).map((p) => p.id),
  );
  assert.ok(early.foldedBatchNorms.length > 0 && early.foldedBatchNorms.every(inside));
  assert.deepEqual(early.foldedBatchNorms, whole.foldedBatchNorms.filter(inside));
  assert.ok(early.equalizedPieces.length > 0 && early.equalizedPieces.length < whole.equalizedPieces.length);
  // outside the scope the batch norms stay float ops, as in a graph quantized without data ops
  assert.equal(ops(early.bytes).BatchNormalization, ops(floatBytes).BatchNormalization - early.foldedBatchNorms.length);
  await assert.rejects(
    quantizeOnnx(floatBytes, inputs, { dataScope: ['block1_', 'blok2_'] }),
    (e: Error & { code?: string }) => e.code === 'E_BAD_ARGUMENT' && /--data-scope names no node: blok2_$/.test(e.message),
  );
});

test('equalizing concatenation pieces brings each piece channel to max |x| = 1 and leaves every output as it was', async () => {
  const net = buildDenseNet121SE({ ...SMALL_DENSENET, seed: 6 });
  randomizeWeights(net, 9);
  const floatBytes = exportLayersModel(net, { outputNames: ['probability', 'features'], cam: true }).bytes;
  net.dispose();
  const folded = foldPreactivationBatchNorm(decodeModel(floatBytes)).model;
  const inputs: CalibrationInput[] = Array.from({ length: 4 }, (_, i) => ({ data: randomInput([1, 32, 32, 1], 300 + i, 0, 1), dims: [1, 1, 32, 32] }));
  const pieces = concatPieces(folded);
  assert.ok(pieces.length >= 4, `pieces: ${pieces.join(', ')}`);
  const before = await channelAbsMax(folded, pieces, inputs, 1);
  assert.ok(
    [...before.values()].some((m) => m.some((v) => Math.abs(v - 1) > 0.1)),
    'the random net already had unit channels: the test would prove nothing',
  );
  const { model, equalized } = equalizeConcatPieces(folded, before);
  // the stem's max-pool, every layer's conv and the transition's average-pool all have a Conv behind them
  assert.deepEqual(equalized.sort(), [...pieces].sort());
  const after = await channelAbsMax(model, pieces, inputs, 1);
  for (const [t, m] of after) for (const v of m) assert.ok(v === 0 || Math.abs(v - 1) < 1e-4, `${t}: channel max ${v}`);
  const eqBytes = encodeModel(model);
  for (const x of inputs) {
    const [a, b] = [await run(floatBytes, x.data, x.dims), await run(eqBytes, x.data, x.dims)];
    for (const k of Object.keys(a)) {
      let worst = 0;
      for (let i = 0; i < a[k].length; i++) worst = Math.max(worst, Math.abs(a[k][i] - b[k][i]) / Math.max(1, Math.abs(a[k][i])));
      assert.ok(worst < 1e-4, `${k}: relative difference ${worst}`);
    }
  }
});

test('a chain of concatenations and their pieces share one range, the hull of theirs; a folded ReLU keeps its floor at 0; other tensors keep their own', () => {
  const ranges = new Map([
    ['a', { min: -1, max: 2 }],
    ['b', { min: 0, max: 3 }],
    ['c1', { min: -1, max: 3 }],
    ['d', { min: -4, max: 1 }],
    ['c2', { min: -4, max: 3 }],
    ['relu', { min: 0, max: 5 }],
    ['pooled', { min: 0, max: 4 }],
    ['other', { min: 0, max: 9 }],
  ]);
  const shared = sharedRanges(ranges, {
    // relu -> MaxPool -> pooled, a piece of the first concatenation
    same: [['relu', 'pooled']],
    concat: [
      ['pooled', 'a', 'b', 'c1'],
      ['c1', 'd', 'c2'],
    ],
    pinned: new Set(['relu']),
  });
  for (const t of ['a', 'b', 'c1', 'd', 'c2']) assert.deepEqual(shared.get(t), { min: -4, max: 3 }, t);
  // tied to the ReLU by the MaxPool: both keep [0, 5], out of the concatenation's range
  assert.deepEqual(shared.get('relu'), { min: 0, max: 5 });
  assert.deepEqual(shared.get('pooled'), { min: 0, max: 5 });
  assert.deepEqual(shared.get('other'), { min: 0, max: 9 });
  assert.deepEqual(ranges.get('a'), { min: -1, max: 2 }, 'the input map is not changed');
});
