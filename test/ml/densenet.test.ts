import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { buildDenseNet121SE, featuresModel, FEATURES_LAYER, HEAD_LAYER, withHeadTaps } from '../../src/ml/densenet.js';
import { paramCounts, setupBackend } from '../support/ml.js';

await setupBackend();

const small = { inputSize: 64, blocks: [1, 1, 1, 1], growth: 8, stemFilters: 16 };

test('DenseNet121-SE has the parameter count of the reference densenet121_se()', () => {
  const m = buildDenseNet121SE();
  // torchvision densenet121(num_classes=1) with a 1-channel stem and SE(256, 512, 1024, 1024)
  // of hidden width max(c//16, 4): 7,254,705 parameters; 83,648 BatchNorm running statistics
  assert.deepEqual(paramCounts(m), { trainable: 7_254_705, nonTrainable: 83_648 });
  assert.deepEqual(m.inputs[0].shape, [null, 224, 224, 1]);
  assert.deepEqual(m.outputs[0].shape, [null, 1]);
  assert.deepEqual(m.getLayer(FEATURES_LAYER).outputShape, [null, 7, 7, 1024]);
  // dense block channels 64+6*32=256, 128+12*32=512, 256+24*32=1024, 512+16*32=1024
  assert.deepEqual(
    [1, 2, 3, 4].map((b) => (m.getLayer(`block${b}_se_scale`).outputShape as number[])[3]),
    [256, 512, 1024, 1024],
  );
  assert.deepEqual(
    [1, 2, 3, 4].map((b) => (m.getLayer(`block${b}_se_fc1`).outputShape as number[])[1]),
    [16, 32, 64, 64],
  );
  m.dispose();
});

test('withFeatures gives [probability, 7x7 features] outputs sharing one set of weights', () => {
  const m = buildDenseNet121SE({ ...small, withFeatures: true });
  assert.equal(m.outputs.length, 2);
  const [p, f] = tf.tidy(() => m.predict(tf.randomUniform([3, 64, 64, 1], 0, 1, 'float32', 2)) as tf.Tensor[]);
  assert.deepEqual(p.shape, [3, 1]);
  // channels: stem 16, +8 = 24 -> 12, +8 = 20 -> 10, +8 = 18 -> 9, +8 = 17
  assert.deepEqual(f.shape, [3, 2, 2, 17]);
  tf.dispose([p, f]);
  m.dispose();
});

test('featuresModel of a trained single-output model reproduces its probability', () => {
  const m = buildDenseNet121SE(small);
  const both = featuresModel(m);
  const x = tf.randomUniform([2, 64, 64, 1], 0, 1, 'float32', 5);
  const p1 = (m.predict(x) as tf.Tensor).dataSync();
  const [p2, f] = both.predict(x) as tf.Tensor[];
  assert.deepEqual(Array.from(p2.dataSync()), Array.from(p1));
  // the head is sigmoid(mean over positions of features · kernel + bias): the CAM relation
  const [kernel, bias] = m.getLayer(HEAD_LAYER).getWeights();
  const logit = tf.tidy(() => tf.add(tf.matMul(tf.mean(f, [1, 2]), kernel), bias));
  const expected = tf.sigmoid(logit).dataSync();
  assert.ok(Math.abs(expected[0] - p1[0]) < 1e-5 && Math.abs(expected[1] - p1[1]) < 1e-5);
  tf.dispose([x, p2, f, logit]);
  m.dispose();
});

test('the networks use only standard Keras layer classes the ONNX exporter knows', () => {
  const m = buildDenseNet121SE(small);
  const classes = [...new Set(m.layers.map((l) => l.getClassName()))].sort();
  assert.deepEqual(classes, [
    'Activation',
    'AveragePooling2D',
    'BatchNormalization',
    'Concatenate',
    'Conv2D',
    'Dense',
    'Dropout',
    'GlobalAveragePooling2D',
    'InputLayer',
    'MaxPooling2D',
    'Multiply',
    'Reshape',
  ]);
  m.dispose();
});

test('DenseNet builder rejects an input size the transitions cannot halve', () => {
  assert.throws(() => buildDenseNet121SE({ inputSize: 100 }), /not divisible by 32/);
});

test('withHeadTaps pools the taps before the final features and scores exactly as the base until its head is refitted', () => {
  const base = buildDenseNet121SE(small);
  const tapped = withHeadTaps(base, ['transition2_relu', 'transition3_relu']);
  // transitions 2 and 3 read 20 and 18 channels; the final features are 17
  assert.deepEqual(tapped.getLayer('head_concat').outputShape, [null, 20 + 18 + 17]);
  const x = tf.randomUniform([2, 64, 64, 1], 0, 1, 'float32', 3);
  const [a, b] = [base.predict(x) as tf.Tensor, tapped.predict(x) as tf.Tensor];
  const [pa, pb] = [a.dataSync(), b.dataSync()];
  for (let i = 0; i < pa.length; i++) assert.ok(Math.abs(pa[i] - pb[i]) < 1e-6, `${pa[i]} vs ${pb[i]}`);
  assert.throws(() => withHeadTaps(base, ['nope']), /E_BAD_ARGUMENT|not a layer/);
  assert.throws(() => withHeadTaps(base, ['pool']), /not a feature map/);
  tf.dispose([x, a, b]);
  base.dispose();
});
