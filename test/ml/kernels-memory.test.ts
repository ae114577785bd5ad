/**
 * Memory behaviour of training on wasm: tf.memory() is flat over repeated training steps,
 * and the streaming backward pass (src/ml/kernels/streaming-backprop.ts) gives the same
 * gradients as tfjs' own with a lower peak.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { setStreamingBackprop } from '../../src/ml/kernels/streaming-backprop.js';
import { buildDenseNet121SE } from '../../src/ml/densenet.js';
import { buildUNet } from '../../src/ml/unet.js';

before(async () => {
  await initBackend({ prefer: 'wasm', threads: 1, log: () => {} });
  assert.equal(tf.getBackend(), 'wasm');
});

function trainSteps(model: tf.LayersModel, steps: number, x: tf.Tensor, y: tf.Tensor): void {
  const optimizer = tf.train.adam(1e-3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = () =>
    tf.tidy(() => {
      optimizer.minimize(() => tf.mean(tf.square(tf.sub(model.apply(x, { training: true }) as tf.Tensor, y))) as tf.Scalar, false, vars);
    });
  step(); // the optimizer creates its moment variables on the first step
  const before = tf.memory();
  for (let i = 0; i < steps; i++) step();
  const after = tf.memory();
  assert.equal(after.numTensors, before.numTensors, 'tensors');
  assert.equal(after.numBytes, before.numBytes, 'bytes');
  optimizer.dispose();
}

test('tf.memory() is flat over training steps of a small DenseNet-SE on wasm', () => {
  const model = buildDenseNet121SE({ inputSize: 32, blocks: [2, 2], growth: 4, stemFilters: 8, seed: 1 });
  const x = tf.randomUniform([2, 32, 32, 1], 0, 1, 'float32', 1);
  const y = tf.tensor2d([[0], [1]]);
  trainSteps(model, 4, x, y);
  tf.dispose([x, y]);
  model.dispose();
});

test('tf.memory() is flat over training steps of a small U-Net on wasm', () => {
  const model = buildUNet({ inputSize: 16, base: 4, depth: 2, seed: 2 });
  const x = tf.randomUniform([2, 16, 16, 1], 0, 1, 'float32', 2);
  const y = tf.cast(tf.greater(tf.randomUniform([2, 16, 16, 1], 0, 1, 'float32', 3), 0.5), 'float32');
  trainSteps(model, 4, x, y);
  tf.dispose([x, y]);
  model.dispose();
});

test('the streaming backward pass gives the same gradients as tfjs with a lower peak', () => {
  const model = buildDenseNet121SE({ inputSize: 32, blocks: [2, 2], growth: 4, stemFilters: 8, dropout: 0, seed: 3 });
  const x = tf.randomUniform([4, 32, 32, 1], 0, 1, 'float32', 4);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  // Peak bytes seen after any kernel, through a wrapper around every wasm kernel.
  let peak = 0;
  const originals: KernelConfig[] = [];
  for (const k of tf.getKernelsForBackend('wasm')) {
    originals.push(k);
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel({
      ...k,
      kernelFunc: ((args: Parameters<typeof k.kernelFunc>[0]) => {
        const out = k.kernelFunc(args);
        peak = Math.max(peak, tf.memory().numBytes);
        return out;
      }) as typeof k.kernelFunc,
    });
  }
  const run = (streaming: boolean) => {
    setStreamingBackprop(streaming);
    peak = 0;
    const grads = tf.tidy(() => {
      const { grads: g } = tf.variableGrads(() => tf.sum(model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      return vars.map((v) => (g[v.name].dataSync() as Float32Array).slice());
    });
    return { grads, peak };
  };
  try {
    const plain = run(false);
    const streamed = run(true);
    plain.grads.forEach((g, i) => assert.deepEqual(streamed.grads[i], g, vars[i].name));
    assert.ok(streamed.peak < plain.peak, `peak ${streamed.peak} not below ${plain.peak}`);
  } finally {
    setStreamingBackprop(true);
    for (const k of originals) {
      tf.unregisterKernel(k.kernelName, 'wasm');
      tf.registerKernel(k);
    }
    tf.dispose(x);
    model.dispose();
  }
});
