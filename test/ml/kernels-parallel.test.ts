/**
 * Data-parallel gradients (src/ml/parallel): a worker thread with its own replica computes
 * part of each batch; the result must be exactly the sample-weighted mean of the shares'
 * gradients and losses computed in one thread, moving BN statistics the weighted mean of
 * the shares' updates, and no tensors may accumulate over steps.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { dataParallelEngine, dataParallelGradients, split, type GradientEngine } from '../../src/ml/parallel/data-parallel.js';
import { buildDenseNet121SE } from '../../src/ml/densenet.js';
import { meanSquaredError } from './kernels-parallel-loss.js';

const lossModule = fileURLToPath(new URL('./kernels-parallel-loss.ts', import.meta.url));
const loss = meanSquaredError();
let model: tf.LayersModel;
let engine: GradientEngine;
const n = 5;
const size = 32;

function batch(seed: number) {
  return tf.tidy(() => ({
    x: tf.randomUniform([n, size, size, 1], 0, 1, 'float32', seed).dataSync() as Float32Array,
    y: tf.randomUniform([n, 1], 0, 1, 'float32', seed + 1).dataSync() as Float32Array,
    n,
  }));
}

function shareGradients(x: Float32Array, y: Float32Array, from: number, count: number) {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const xs = tf.tensor(x.subarray(from * size * size, (from + count) * size * size), [count, size, size, 1]);
      const ys = tf.tensor(y.subarray(from, from + count), [count, 1]);
      return loss(ys, model.apply(xs, { training: true }) as tf.Tensor);
    }, vars);
    return { loss: value.dataSync()[0], grads: vars.map((v) => (grads[v.name].dataSync() as Float32Array).slice()) };
  });
}

before(async () => {
  await initBackend({ threads: 1, log: () => {} });
  model = buildDenseNet121SE({ inputSize: size, blocks: [2, 2], growth: 4, stemFilters: 8, dropout: 0, seed: 5 });
  engine = await dataParallelGradients(model, { loss: { module: lossModule, name: 'meanSquaredError' }, localLoss: loss, workers: 1 });
});

after(() => engine?.dispose());

test('a batch is cut into contiguous shares differing by at most one sample', () => {
  assert.deepEqual(split(8, 2), [4, 4]);
  assert.deepEqual(split(5, 2), [3, 2]);
  assert.deepEqual(split(5, 3), [2, 2, 1]);
  assert.deepEqual(split(1, 3), [1, 0, 0]);
});

test('gradients, loss and moving statistics are the sample-weighted means over the shares', async () => {
  const { x, y } = batch(7);
  const [n0, n1] = split(n, 2);
  const stats0 = model.nonTrainableWeights.map((w) => w.read().clone());
  const a = shareGradients(x, y, 0, n0);
  const statsA = model.nonTrainableWeights.map((w) => (w.read().dataSync() as Float32Array).slice());
  model.nonTrainableWeights.forEach((w, i) => w.write(stats0[i].clone()));
  const b = shareGradients(x, y, n0, n1);
  const statsB = model.nonTrainableWeights.map((w) => (w.read().dataSync() as Float32Array).slice());
  model.nonTrainableWeights.forEach((w, i) => w.write(stats0[i]));

  const result = await engine.gradients({ x, y, n });
  assert.ok(Math.abs(result.loss - (a.loss * n0 + b.loss * n1) / n) < 1e-6, `loss ${result.loss}`);
  result.grads.forEach((g, i) => {
    const got = g.dataSync();
    let diff = 0;
    let scale = 1e-6;
    for (let j = 0; j < got.length; j++) {
      const want = (a.grads[i][j] * n0 + b.grads[i][j] * n1) / n;
      diff = Math.max(diff, Math.abs(got[j] - want));
      scale = Math.max(scale, Math.abs(want));
    }
    assert.ok(diff <= 1e-4 * scale, `${model.trainableWeights[i].name}: diff ${diff} at scale ${scale}`);
  });
  tf.dispose(result.grads);
  model.nonTrainableWeights.forEach((w, i) => {
    const got = w.read().dataSync();
    for (let j = 0; j < got.length; j++) {
      const want = (statsA[i][j] * n0 + statsB[i][j] * n1) / n;
      assert.ok(Math.abs(got[j] - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${w.name}[${j}]: ${got[j]} vs ${want}`);
    }
  });
});

test('repeated steps leave no tensors behind in the training thread', async () => {
  const b = batch(11);
  const step = async () => tf.dispose((await engine.gradients(b)).grads);
  await step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await step();
  assert.equal(tf.memory().numTensors, before);
});

test('the training loop factory starts its workers on the first batch and gives the same gradients', async () => {
  const b = batch(13);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const lazy = dataParallelEngine({ module: lossModule, name: 'meanSquaredError' }, 1)(model, vars, loss);
  try {
    const stats = model.nonTrainableWeights.map((w) => w.read().clone());
    const fromLazy = await lazy.gradients(b);
    model.nonTrainableWeights.forEach((w, i) => w.write(stats[i]));
    const direct = await engine.gradients(b);
    assert.equal(fromLazy.loss, direct.loss);
    fromLazy.grads.forEach((g, i) => assert.deepEqual(g.dataSync(), direct.grads[i].dataSync(), vars[i].name));
    tf.dispose([...fromLazy.grads, ...direct.grads]);
  } finally {
    lazy.dispose();
  }
});
