import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkImportedWeights, expectedWeightBytes, graphAtInputSize, type WeightSpec } from '../../src/ml/imported-weights.js';
import { densenetStride } from '../../src/ml/densenet.js';
import { CxrError } from '../../src/errors.js';

const specs: WeightSpec[] = [
  { name: 'conv/kernel', shape: [3, 3, 1, 2], dtype: 'float32', quantization: { dtype: 'float16' } },
  { name: 'dense/bias', shape: [2], dtype: 'float32' },
];

/** 18 float16 values (1.0) then 2 float32 values (0.5). */
function weights(): Uint8Array {
  const b = new Uint8Array(18 * 2 + 2 * 4);
  const v = new DataView(b.buffer);
  for (let k = 0; k < 18; k++) v.setUint16(2 * k, 0x3c00, true);
  v.setFloat32(36, 0.5, true);
  v.setFloat32(40, 0.5, true);
  return b;
}

test('a float16-quantized weight takes 2 bytes a value and a float32 one 4', () => {
  assert.equal(expectedWeightBytes(specs), 18 * 2 + 2 * 4);
});

test('weights in the layout of the manifest, all finite, are accepted with their counts', () => {
  assert.deepEqual(checkImportedWeights(specs, weights()), { values: 20, bytes: 44 });
});

test('a weights file of another length is E_MODEL_INVALID naming both lengths', () => {
  assert.throws(
    () => checkImportedWeights(specs, weights().subarray(0, 40)),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && /has 40 bytes, the graph's manifest needs 44/.test(e.message),
  );
});

test('a float16 NaN or infinity, or a float32 one, is E_MODEL_INVALID naming the weight', () => {
  const half = weights();
  new DataView(half.buffer).setUint16(2 * 5, 0x7e00, true); // float16 NaN
  assert.throws(
    () => checkImportedWeights(specs, half),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && /weight conv\/kernel .*value 5 of 18/.test(e.message),
  );
  const inf = weights();
  new DataView(inf.buffer).setUint16(0, 0xfc00, true); // float16 -Inf
  assert.throws(() => checkImportedWeights(specs, inf), /conv\/kernel/);
  const single = weights();
  new DataView(single.buffer).setFloat32(40, Number.POSITIVE_INFINITY, true);
  assert.throws(() => checkImportedWeights(specs, single), /weight dense\/bias .*value 1 of 2/);
});

test('int8-quantized weights are refused: only float32 and float16 layouts are imported', () => {
  assert.throws(
    () => checkImportedWeights([{ name: 'q', shape: [4], dtype: 'float32', quantization: { dtype: 'uint8' } }], new Uint8Array(4)),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && /uint8 weights cannot be imported/.test(e.message),
  );
});

const tinyGraph = JSON.stringify({
  modelTopology: {
    config: {
      layers: [
        { class_name: 'InputLayer', config: { batch_input_shape: [null, 224, 224, 1], name: 'image' } },
        { class_name: 'Conv2D', config: { name: 'stem_conv' } },
      ],
    },
  },
  weightsManifest: [{ paths: ['weights.bin'], weights: [] }],
});

test("a graph at another input size changes only its InputLayer's side, keeping batch and channels", () => {
  const out = JSON.parse(graphAtInputSize(tinyGraph, 160, 32));
  const want = JSON.parse(tinyGraph);
  want.modelTopology.config.layers[0].config.batch_input_shape = [null, 160, 160, 1];
  assert.deepEqual(out, want);
});

test("an input size that is not a multiple of the network's stride is E_BAD_ARGUMENT; a graph without an image InputLayer is E_MODEL_INVALID", () => {
  for (const side of [150, 0, 16, 160.5])
    assert.throws(
      () => graphAtInputSize(tinyGraph, side, 32),
      (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT' && /multiple of the network's stride 32/.test(e.message),
    );
  const noInput = JSON.stringify({ modelTopology: { config: { layers: [{ class_name: 'Conv2D', config: {} }] } } });
  assert.throws(
    () => graphAtInputSize(noInput, 160, 32),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID',
  );
});

test("DenseNet121's stride is 32 (the stem's 4 and three transitions' 2); two blocks give 8", () => {
  assert.equal(densenetStride([6, 12, 24, 16]), 32);
  assert.equal(densenetStride([2, 2]), 8);
});
