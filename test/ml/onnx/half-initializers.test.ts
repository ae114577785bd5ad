/**
 * Float initializers that float16 holds exactly are stored as float16 behind a Cast
 * (half-initializers.ts): fewer bytes, the same outputs bit for bit; anything else stays.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { exportLayersModel } from '../../../src/ml/onnx/export.js';
import { halveExactFloatInitializers, MIN_HALVED_ELEMENTS } from '../../../src/ml/onnx/half-initializers.js';
import { decodeModel, encodeModel, floatData, graphOf, onnx } from '../../../src/ml/onnx/quantize/proto.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../../src/ml/float16.js';
import { ap, randomInput, randomizeWeights } from './parity.js';

const L = tf.layers;
const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const toHalf = (v: number) => float16BitsToFloat32(float32ToFloat16Bits(v));

/** Dense 32 -> 16 (weights float16 numbers: 512 values) -> Dense 16 -> 4 (weights not: 64 values) -> Dense 4 -> 2 (float16, 8 values). */
function model(): Uint8Array {
  const x = tf.input({ shape: [32] });
  let y = ap(L.dense({ units: 16, activation: 'relu', name: 'exact' }), x);
  y = ap(L.dense({ units: 4, activation: 'relu', name: 'inexact' }), y);
  y = ap(L.dense({ units: 2, name: 'small' }), y);
  const m = tf.model({ inputs: x, outputs: y });
  randomizeWeights(m, 11);
  for (const name of ['exact', 'small']) {
    const layer = m.getLayer(name);
    layer.setWeights(layer.getWeights().map((w) => tf.tensor(Float32Array.from(w.dataSync(), toHalf), w.shape)));
  }
  const bytes = exportLayersModel(m, { outputNames: ['y'] }).bytes;
  m.dispose();
  return bytes;
}

async function outputs(bytes: Uint8Array, x: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [3, 32]) });
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

test('a tensor whose every value is a float16 number is stored as float16 behind a Cast; a tensor with any other value, or a small one, stays float32', () => {
  const src = decodeModel(model());
  const floats = graphOf(src).initializer.filter((t) => floatData(t));
  const exact = floats.filter((t) => floatData(t)!.every((v) => toHalf(v) === v) && floatData(t)!.length >= MIN_HALVED_ELEMENTS);
  assert.ok(exact.length >= 1, 'the float16 layer gives an exact tensor');
  assert.ok(floats.length > exact.length, 'and others stay');
  const h = halveExactFloatInitializers(src);
  assert.deepEqual([...h.halved].sort(), exact.map((t) => t.name!).sort());
  assert.equal(
    h.savedBytes,
    exact.reduce((s, t) => s + floatData(t)!.length * 2, 0),
  );
  const g = graphOf(h.model);
  for (const name of h.halved) {
    const cast = g.node.find((n) => n.opType === 'Cast' && n.output![0] === name)!;
    const half = g.initializer.find((t) => t.name === cast.input![0])!;
    assert.equal(half.dataType, FLOAT16);
    assert.ok(!g.initializer.some((t) => t.name === name), `${name} is no longer a float32 initializer`);
  }
  // the source model is not modified
  assert.equal(graphOf(src).initializer.filter((t) => t.dataType === FLOAT16).length, 0);
});

test('the halved model gives the same outputs bit for bit and is smaller by the bytes saved', async () => {
  const bytes = model();
  const h = halveExactFloatInitializers(decodeModel(bytes));
  const halved = encodeModel(h.model);
  assert.ok(halved.length <= bytes.length - h.savedBytes + 200 * h.halved.length, `${bytes.length} -> ${halved.length}`);
  const x = randomInput([3, 32], 5, 0, 1);
  const [a, b] = [await outputs(bytes, x), await outputs(halved, x)];
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `output ${i}: ${a[i]} vs ${b[i]}`);
});

test('an initializer also listed among the graph inputs (older IR) leaves the inputs when it becomes a Cast output, so the model still needs only its real input', async () => {
  const m = decodeModel(model());
  const g = graphOf(m);
  const exactName = halveExactFloatInitializers(m).halved[0];
  g.input = [...(g.input ?? []), { name: exactName, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }];
  const h = halveExactFloatInitializers(m);
  assert.ok(!(graphOf(h.model).input ?? []).some((i) => i.name === exactName));
  const x = randomInput([3, 32], 6, 0, 1);
  assert.deepEqual(await outputs(encodeModel(h.model), x), await outputs(encodeModel(m), x));
});
