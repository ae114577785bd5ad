/**
 * The training kernels patch tfjs' and onnxruntime-node's internals (src/ml/kernels). Each
 * patch checks what it patches and quietly stands down when that changed, which keeps
 * training correct but slow or memory-hungry. This file is where that is loud: it fails
 * when any patch is not in effect, and when the patched packages are not pinned exactly to
 * the versions the patches were written against.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { SUPPORTED_LAYERS } from '../../src/ml/kernels/batch-norm-layer.js';
import { nativeRuntime, nativeRuntimeError } from '../../src/ml/kernels/native/ort-runtime.js';
import { trainingPatchStates } from '../../src/ml/kernels/register.js';
import { SUPPORTED_CORE, setStreamingBackprop } from '../../src/ml/kernels/streaming-backprop.js';
import { wasmHeap } from '../../src/ml/kernels/wasm-heap.js';

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
const installed = (name: string) => (require(`${name}/package.json`) as { version: string }).version;

process.env.CXR_BACKEND = 'wasm';
delete process.env.CXR_NATIVE_KERNELS;
delete process.env.CXR_WASM_THREADS;
const ready = initBackend({ log: () => {} });

test('the packages whose internals are patched are pinned to exact versions, and those are installed', () => {
  for (const name of ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', 'onnxruntime-node']) {
    const range = pkg.dependencies[name];
    assert.match(range ?? '', /^\d+\.\d+\.\d+$/, `${name} must be pinned exactly in package.json (got '${range}'): src/ml/kernels patches its internals`);
    assert.equal(installed(name), range, `${name} ${installed(name)} is installed but package.json pins ${range}: run npm ci`);
  }
  assert.equal(pkg.dependencies['@tensorflow/tfjs'], SUPPORTED_CORE, 'streaming-backprop.ts follows another tfjs-core than the pinned tfjs');
  assert.equal(pkg.dependencies['@tensorflow/tfjs'], SUPPORTED_LAYERS, 'batch-norm-layer.ts follows another tfjs-layers than the pinned tfjs');
});

test('every training patch is in effect on the wasm backend, the onnxruntime one included', async () => {
  assert.equal(await ready, 'wasm');
  assert.notEqual(nativeRuntime(), null, `onnxruntime-node's internal binding did not load: ${nativeRuntimeError()}`);
  assert.doesNotThrow(() => wasmHeap(tf.backend()));
  const states = trainingPatchStates();
  const inactive = states.filter((s) => !s.active).map((s) => `${s.patch}: ${s.reason}`);
  assert.deepEqual(inactive, [], `patches not in effect:\n${inactive.join('\n')}`);
  const names = states.map((s) => s.patch);
  for (const expected of [
    'kernel Conv2DBackpropFilter (wasm)',
    'kernel FusedBatchNorm (wasm)',
    'kernel Conv2D (wasm)',
    'kernel MaxPoolGrad (wasm)',
    'gradient of FusedBatchNorm',
    'BatchNormalization.call (fused training mode)',
    'engine.gradients (streaming backward pass)',
  ]) {
    assert.ok(names.includes(expected), `${expected} is not among the patches: ${names.join(', ')}`);
  }
});

test('a patch that stops being the registered one is reported as inactive', async () => {
  await ready;
  const ours = tf.getKernel(tf.Tile, 'wasm');
  assert.ok(ours);
  tf.unregisterKernel(tf.Tile, 'wasm');
  tf.registerKernel({ ...ours, kernelFunc: ((args: never) => ours.kernelFunc(args)) as typeof ours.kernelFunc });
  setStreamingBackprop(false);
  try {
    const inactive = trainingPatchStates()
      .filter((s) => !s.active)
      .map((s) => s.patch);
    assert.deepEqual(inactive, ['kernel Tile (wasm)', 'engine.gradients (streaming backward pass)']);
  } finally {
    tf.unregisterKernel(tf.Tile, 'wasm');
    tf.registerKernel(ours);
    setStreamingBackprop(true);
  }
  assert.deepEqual(
    trainingPatchStates().filter((s) => !s.active),
    [],
  );
});
