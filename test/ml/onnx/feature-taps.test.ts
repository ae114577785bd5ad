/**
 * tapPooledFeatures on an int8 graph pools what the quantized version itself pools: a tapped
 * layer's quantized-dequantized values, not its float output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { tapPooledFeatures } from '../../../src/ml/onnx/feature-taps.js';
import { encodeModel, floatTensor, floatValueInfo, node, uint8Tensor, type ModelProto } from '../../../src/ml/onnx/quantize/proto.js';

/** x -> Relu (layer 'tap') -> Quantize (scale 0.5) -> Dequantize -> Identity = 'features' [1, 1, 2, 2]. */
function int8Graph(): Uint8Array {
  const m: ModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tapped',
      node: [
        node('Relu', ['x'], ['tap/relu'], 'tap/relu/Relu'),
        node('QuantizeLinear', ['tap/relu', 's', 'z'], ['tap/relu/q'], 'tap/relu/QuantizeLinear'),
        node('DequantizeLinear', ['tap/relu/q', 's', 'z'], ['tap/relu/dq'], 'tap/relu/DequantizeLinear'),
        node('Identity', ['tap/relu/dq'], ['features'], 'features/Identity'),
      ],
      initializer: [floatTensor('s', Float32Array.of(0.5), []), uint8Tensor('z', Uint8Array.of(0), [])],
      input: [floatValueInfo('x')],
      output: [floatValueInfo('features')],
    },
  };
  return encodeModel(m);
}

test('an int8 graph’s tapped layer is pooled after its quantize-dequantize, as the served version pools it', async () => {
  const session = await ort.InferenceSession.create(tapPooledFeatures(int8Graph(), ['tap']));
  // float mean 0.4; rounded to the 0.5 grid: 0, 0.5, 0.5, 0.5 -> 0.375
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(0.2, 0.3, 0.4, 0.7), [1, 1, 2, 2]) });
  await session.release();
  // [tap, features], both the dequantized values' mean
  assert.deepEqual(Array.from(out.pooled.data as Float32Array), [0.375, 0.375]);
});
