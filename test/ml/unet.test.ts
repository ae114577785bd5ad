import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { buildUNet } from '../../src/ml/unet.js';
import { paramCounts, setupBackend } from '../support/ml.js';

await setupBackend();

test('full U-Net has the parameter count of the PyTorch reference UNet()', () => {
  const m = buildUNet();
  // torch: sum(p.numel() for p in UNet().parameters()) = 1,943,761 trainable; the 2,944
  // non-trainable values are BatchNorm running mean/variance (torch buffers)
  assert.deepEqual(paramCounts(m), { trainable: 1_943_761, nonTrainable: 2_944 });
  assert.deepEqual(m.inputs[0].shape, [null, 256, 256, 1]);
  assert.deepEqual(m.outputs[0].shape, [null, 256, 256, 1]);
  m.dispose();
});

test('U-Net down path doubles filters per level and the bottleneck is base*2^depth', () => {
  const m = buildUNet({ inputSize: 32, base: 4, depth: 2 });
  assert.deepEqual(m.getLayer('down0_conv1').outputShape, [null, 32, 32, 4]);
  assert.deepEqual(m.getLayer('down1_conv2').outputShape, [null, 16, 16, 8]);
  assert.deepEqual(m.getLayer('mid_conv2').outputShape, [null, 8, 8, 16]);
  // the skip is concatenated after the upsampled map: 8 + 8 channels at 16x16
  assert.deepEqual(m.getLayer('up1_concat').outputShape, [null, 16, 16, 16]);
  m.dispose();
});

test('small U-Net maps an image batch to per-pixel probabilities of the same size', () => {
  const m = buildUNet({ inputSize: 16, base: 2, depth: 2 });
  const y = tf.tidy(() => m.predict(tf.randomUniform([2, 16, 16, 1], 0, 1, 'float32', 1)) as tf.Tensor);
  assert.deepEqual(y.shape, [2, 16, 16, 1]);
  const v = y.dataSync();
  assert.ok(v.every((p) => p > 0 && p < 1));
  y.dispose();
  m.dispose();
});

test('U-Net builder rejects sizes the pooling cannot halve', () => {
  assert.throws(() => buildUNet({ inputSize: 20, depth: 3 }), /not divisible by 2\^3/);
});

test('the same seed builds the same weights, another seed different ones', () => {
  const w = (seed: number) => {
    const m = buildUNet({ inputSize: 16, base: 2, depth: 1, seed });
    const v = Array.from(m.getLayer('down0_conv1').getWeights()[0].dataSync());
    m.dispose();
    return v;
  };
  assert.deepEqual(w(3), w(3));
  assert.notDeepEqual(w(3), w(4));
});
