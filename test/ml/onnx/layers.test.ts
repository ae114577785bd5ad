/**
 * Exporter parity, one Keras layer class at a time: the tfjs cpu backend (the reference
 * implementation) against onnxruntime-node on the exported graph, max |diff| <= 1e-4.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { parity, randomizeWeights, randomInput } from './parity.js';
import { exportLayersModel } from '../../../src/ml/onnx/export.js';
import { CxrError } from '../../../src/errors.js';

const TOL = 1e-4;
type ST = tf.SymbolicTensor;

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** A model of `shape` input through `body`, random weights, checked on a batch of 2. */
async function check(shape: number[], body: (x: ST) => ST | ST[], seed = 1, range: [number, number] = [-1, 1]) {
  const input = tf.input({ shape });
  const out = body(input);
  const model = tf.model({ inputs: input, outputs: out });
  randomizeWeights(model, seed);
  const r = await parity(model, randomInput([2, ...shape], seed + 100, ...range), 2);
  for (const d of r.maxAbsDiff) assert.ok(d <= TOL, `max abs diff ${d} > ${TOL}`);
  return r;
}

const L = tf.layers;
const ap = (layer: tf.layers.Layer, x: ST | ST[]) => layer.apply(x) as ST;

test('Conv2D valid, stride 1, relu, three input channels', async () => {
  await check([7, 6, 3], (x) => ap(L.conv2d({ filters: 5, kernelSize: 3, activation: 'relu' }), x));
});

test('Conv2D same with stride 2 on an odd size pads the extra pixel at the end like TF', async () => {
  const r = await check([9, 8, 2], (x) => ap(L.conv2d({ filters: 4, kernelSize: [3, 4], strides: 2, padding: 'same' }), x));
  assert.equal(r.export.stats.ops.Conv, 1);
});

test('Conv2D same with dilation 2 and no bias', async () => {
  await check([8, 8, 2], (x) => ap(L.conv2d({ filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same', useBias: false }), x));
});

test('DepthwiseConv2D with depth multiplier 2', async () => {
  await check([6, 6, 3], (x) => ap(L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' }), x));
});

test('BatchNormalization right after a linear conv folds into it (no BN node)', async () => {
  const r = await check([6, 6, 2], (x) => ap(L.batchNormalization({ epsilon: 1e-5 }), ap(L.conv2d({ filters: 4, kernelSize: 3, useBias: false }), x)));
  assert.equal(r.export.stats.foldedBatchNorms, 1);
  assert.equal(r.export.stats.ops.BatchNormalization, undefined);
});

test('BatchNormalization after an activation, or on a conv output read twice, stays a BN node', async () => {
  const r = await check([6, 6, 2], (x) => {
    const c = ap(L.conv2d({ filters: 4, kernelSize: 1 }), x);
    const bn = ap(L.batchNormalization({}), c);
    const act = ap(L.batchNormalization({}), ap(L.activation({ activation: 'relu' }), c));
    return ap(L.add(), [bn, act]);
  });
  assert.equal(r.export.stats.foldedBatchNorms, 0);
  assert.equal(r.export.stats.ops.BatchNormalization, 2);
});

test('BatchNormalization on a rank-2 tensor (after Dense)', async () => {
  await check([5], (x) => ap(L.batchNormalization({}), ap(L.dense({ units: 3 }), x)));
});

test('Conv2DTranspose 2x2 stride 2 valid (the U-Net up path) and folded BN', async () => {
  const r = await check([5, 4, 3], (x) => ap(L.batchNormalization({}), ap(L.conv2dTranspose({ filters: 2, kernelSize: 2, strides: 2 }), x)));
  assert.equal(r.export.stats.foldedBatchNorms, 1);
});

test('Conv2DTranspose 3x3 stride 2 same and 3x3 stride 1 valid', async () => {
  await check([5, 4, 2], (x) => ap(L.conv2dTranspose({ filters: 3, kernelSize: 3, strides: 2, padding: 'same' }), x));
  await check([5, 4, 2], (x) => ap(L.conv2dTranspose({ filters: 3, kernelSize: 3, padding: 'valid', activation: 'sigmoid' }), x));
});

for (const activation of ['relu', 'sigmoid', 'tanh', 'elu', 'selu', 'softplus', 'softsign', 'hardSigmoid', 'softmax', 'swish', 'mish', 'linear']) {
  test(`Activation '${activation}'`, async () => {
    await check([3, 4, 5], (x) => ap(L.activation({ activation: activation as 'relu' }), x), 3, [-4, 4]);
  });
}

test('ReLU (plain and capped), LeakyReLU, ELU and Softmax layers', async () => {
  await check([4, 4, 2], (x) => ap(L.reLU({}), x), 1, [-3, 3]);
  await check([4, 4, 2], (x) => ap(L.reLU({ maxValue: 1.5 }), x), 1, [-3, 3]);
  await check([4, 4, 2], (x) => ap(L.leakyReLU({ alpha: 0.2 }), x), 1, [-3, 3]);
  await check([4, 4, 2], (x) => ap(L.elu({}), x), 1, [-3, 3]);
  await check([4, 4, 3], (x) => ap(L.softmax({ axis: -1 }), x), 1, [-3, 3]);
});

test('MaxPooling2D valid and same (odd sizes, -inf padding)', async () => {
  await check([7, 6, 2], (x) => ap(L.maxPooling2d({ poolSize: 2, strides: 2 }), x));
  await check([7, 7, 2], (x) => ap(L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }), x), 1, [-2, -1]);
});

test('AveragePooling2D valid and same (padding excluded from the mean)', async () => {
  await check([6, 6, 2], (x) => ap(L.averagePooling2d({ poolSize: 2, strides: 2 }), x));
  await check([7, 5, 2], (x) => ap(L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }), x));
});

test('ZeroPadding2D before a valid conv folds into the conv pads (no Pad node)', async () => {
  const r = await check([6, 5, 2], (x) => ap(L.conv2d({ filters: 3, kernelSize: 7, strides: 2 }), ap(L.zeroPadding2d({ padding: 3 }), x)));
  assert.equal(r.export.stats.ops.Pad, undefined);
});

test("ZeroPadding2D before pooling matches tfjs, folded into the pool's pads where it can", async () => {
  const folded = await check([6, 6, 2], (x) =>
    ap(L.maxPooling2d({ poolSize: 3, strides: 2 }), ap(L.zeroPadding2d({ padding: 1 }), ap(L.activation({ activation: 'relu' }), x))),
  );
  assert.equal(folded.export.stats.ops.Pad, undefined);
  // negative inputs: the zero padding wins at the border windows
  const kept = await check([6, 6, 2], (x) => ap(L.maxPooling2d({ poolSize: 3, strides: 2 }), ap(L.zeroPadding2d({ padding: 1 }), x)), 2, [-2, -1]);
  assert.equal(kept.export.stats.ops.Max, 1);
  await check(
    [7, 6, 2],
    (x) =>
      ap(
        L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
        ap(
          L.zeroPadding2d({
            padding: [
              [1, 0],
              [1, 1],
            ],
          }),
          x,
        ),
      ),
    3,
    [-2, -1],
  );
  await check([6, 6, 2], (x) => ap(L.averagePooling2d({ poolSize: 3, strides: 2 }), ap(L.zeroPadding2d({ padding: 1 }), x)), 4, [-2, -1]);
});

test('asymmetric ZeroPadding2D as a model output, and Cropping2D', async () => {
  await check([4, 5, 2], (x) =>
    ap(
      L.zeroPadding2d({
        padding: [
          [1, 2],
          [0, 3],
        ],
      }),
      x,
    ),
  );
  await check([6, 7, 2], (x) =>
    ap(
      L.cropping2D({
        cropping: [
          [1, 2],
          [3, 0],
        ],
      }),
      x,
    ),
  );
});

test('Concatenate on the channel axis of feature maps and on vectors', async () => {
  await check([4, 4, 2], (x) => ap(L.concatenate({ axis: -1 }), [ap(L.conv2d({ filters: 3, kernelSize: 1 }), x), x]));
  await check([4, 4, 2], (x) => ap(L.concatenate({ axis: 2 }), [x, x]));
  await check([6], (x) => ap(L.concatenate({}), [ap(L.dense({ units: 2 }), x), x]));
});

test('GlobalAveragePooling2D and GlobalMaxPooling2D', async () => {
  await check([5, 3, 4], (x) => ap(L.globalAveragePooling2d({}), x));
  await check([5, 3, 4], (x) => ap(L.globalMaxPooling2d({}), x));
});

test('Dense on vectors (with sigmoid) and on feature maps (per pixel)', async () => {
  await check([7], (x) => ap(L.dense({ units: 3, activation: 'sigmoid' }), x));
  await check([3, 4, 5], (x) => ap(L.dense({ units: 2, useBias: false }), x));
});

test('Dropout is the identity at inference', async () => {
  await check([4, 4, 2], (x) => ap(L.dropout({ rate: 0.5 }), ap(L.conv2d({ filters: 2, kernelSize: 1 }), x)));
});

test('Reshape when layouts agree ([N,C] -> [N,1,1,C]) and when they do not ([N,4,4,2] -> [N,2,8,2])', async () => {
  const se = await check([6], (x) => ap(L.reshape({ targetShape: [1, 1, 6] }), x));
  assert.equal(se.export.stats.ops.Transpose, undefined);
  await check([4, 4, 2], (x) => ap(L.reshape({ targetShape: [2, 8, 2] }), x));
  await check([4, 4, 2], (x) => ap(L.reshape({ targetShape: [32] }), x));
});

test('Flatten follows the NHWC element order', async () => {
  await check([3, 4, 2], (x) => ap(L.dense({ units: 3 }), ap(L.flatten(), x)));
});

test('Multiply broadcasts the squeeze-and-excitation scale over the map', async () => {
  await check([5, 5, 8], (x) => {
    let s = ap(L.globalAveragePooling2d({}), x);
    s = ap(L.dense({ units: 4, activation: 'relu' }), s);
    s = ap(L.dense({ units: 8, activation: 'sigmoid' }), s);
    s = ap(L.reshape({ targetShape: [1, 1, 8] }), s);
    return ap(L.multiply(), [x, s]);
  });
});

test('Add, Maximum, Minimum, Average', async () => {
  const two = (x: ST): [ST, ST] => [ap(L.conv2d({ filters: 2, kernelSize: 1 }), x), x];
  await check([3, 3, 2], (x) => ap(L.add(), two(x)));
  await check([3, 3, 2], (x) => ap(L.maximum(), two(x)));
  await check([3, 3, 2], (x) => ap(L.minimum(), two(x)));
  await check([3, 3, 2], (x) => ap(L.average(), two(x)));
});

test('UpSampling2D nearest and bilinear', async () => {
  await check([3, 4, 2], (x) => ap(L.upSampling2d({ size: [2, 3] }), x));
  await check([3, 4, 2], (x) => ap(L.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }), x));
});

test('several outputs keep their order and public names', async () => {
  const r = await check([4, 4, 1], (x) => {
    const c = ap(L.conv2d({ filters: 2, kernelSize: 3, padding: 'same', activation: 'relu' }), x);
    return [ap(L.globalAveragePooling2d({}), c), c];
  });
  assert.deepEqual(
    r.export.outputs.map((o) => o.name),
    ['output_0', 'output_1'],
  );
  assert.deepEqual(r.export.outputs[1].shape, ['N', 2, 4, 4]);
  assert.deepEqual(r.export.inputs[0].shape, ['N', 1, 4, 4]);
});

test('a layer class without a converter is a typed error naming it', () => {
  const input = tf.input({ shape: [4, 4, 2] });
  const out = L.separableConv2d({ filters: 2, kernelSize: 3 }).apply(input) as ST;
  assert.throws(
    () => exportLayersModel(tf.model({ inputs: input, outputs: out })),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && /SeparableConv2D/.test(e.message),
  );
});
