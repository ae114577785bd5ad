/**
 * The int8 quantizer (src/ml/onnx/quantize/): exact quantization arithmetic, every layer the
 * exporter converts surviving the QDQ rewrite, ONNX Runtime fusing the pairs into integer
 * kernels, and quantized outputs that agree with float within stated tolerances.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { CxrError } from '../../../src/errors.js';
import { buildDenseNet121SE } from '../../../src/ml/densenet.js';
import { exportLayersModel } from '../../../src/ml/onnx/export.js';
import { quantizeOnnx, planQuantization, QUANTIZABLE_OPS, type CalibrationInput } from '../../../src/ml/onnx/quantize/index.js';
import { decodeModel, graphOf } from '../../../src/ml/onnx/quantize/proto.js';
import { activationQuant, quantizeWeights, WEIGHT_QMAX } from '../../../src/ml/onnx/quantize/qdq.js';
import { percentileRange } from '../../../src/ml/onnx/quantize/ranges.js';
import { buildUNet } from '../../../src/ml/unet.js';
import { SMALL_DENSENET, SMALL_UNET } from '../../../src/ml/random-models.js';
import { ap, randomizeWeights, randomInput } from './parity.js';

type ST = tf.SymbolicTensor;
const L = tf.layers;

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

async function session(bytes: Uint8Array, optimizedPath?: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: 1,
    logSeverityLevel: 3,
    ...(optimizedPath ? { optimizedModelFilePath: optimizedPath } : {}),
  });
}

/** max |a - b| over every output, and the largest |float| value (the scale errors are judged against). */
async function compare(floatBytes: Uint8Array, int8Bytes: Uint8Array, inputs: CalibrationInput[]) {
  const f = await session(floatBytes);
  const q = await session(int8Bytes);
  let maxDiff = 0;
  let scale = 0;
  const outs: { float: Float32Array; int8: Float32Array; name: string }[] = [];
  try {
    for (const x of inputs) {
      const feeds = { [f.inputNames[0]]: new ort.Tensor('float32', x.data, x.dims) };
      const a = await f.run(feeds);
      const b = await q.run(feeds);
      for (const name of f.outputNames) {
        const da = a[name].data as Float32Array;
        const db = b[name].data as Float32Array;
        assert.equal(db.length, da.length, `output ${name} changed size`);
        for (let i = 0; i < da.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(da[i] - db[i]));
          scale = Math.max(scale, Math.abs(da[i]));
        }
        outs.push({ float: da, int8: db, name });
      }
    }
  } finally {
    await f.release();
    await q.release();
  }
  return { maxDiff, scale, outs };
}

function inputsFor(shape: number[], n: number, seed: number, lo = 0, hi = 1): CalibrationInput[] {
  return Array.from({ length: n }, (_, i) => ({ data: randomInput([1, ...shape], seed + i, lo, hi), dims: [1, shape[2], shape[0], shape[1]] }));
}

function opCounts(bytes: Uint8Array): Record<string, number> {
  const ops: Record<string, number> = {};
  for (const n of graphOf(decodeModel(bytes)).node) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
  return ops;
}

test('weights: symmetric 7-bit per output channel, scale = max|w|/63, an all-zero channel keeps scale 1', () => {
  // Conv weight [2 out, 1 in, 1, 2]
  const w = Float32Array.of(0.5, -1.26, 0, 0);
  const { q, scales, maxRelError } = quantizeWeights(w, [2, 1, 1, 2], 0);
  assert.deepEqual([...scales], [Math.fround(1.26 / 63), 1]);
  assert.deepEqual([...q], [25, -63, 0, 0]);
  assert.ok(maxRelError < 0.5 / 63 + 1e-6);
  // ConvTranspose weight [1 in, 2 out, 1, 1]: channels on axis 1
  const t = quantizeWeights(Float32Array.of(2, -0.5), [1, 2, 1, 1], 1);
  assert.deepEqual([...t.q], [63, -63]);
  assert.deepEqual([...t.scales], [Math.fround(2 / 63), Math.fround(0.5 / 63)]);
  // the full 8-bit range stays available to callers that know their CPU has VNNI
  assert.deepEqual([...quantizeWeights(Float32Array.of(2, -0.5), [1, 2, 1, 1], 1, 127).q], [127, -127]);
});

test('weights stay below the VPMADDUBSW saturation bound: two uint8 x weight products fit int16', () => {
  assert.ok(2 * 255 * WEIGHT_QMAX <= 32767, `2 x 255 x ${WEIGHT_QMAX} overflows int16`);
});

test('activations: uint8 ranges always hold 0 exactly (zero padding stays exact); a ReLU range has zero point 0', () => {
  const r = activationQuant({ min: 0, max: 2.55 });
  assert.equal(r.zeroPoint, 0);
  assert.ok(Math.abs(r.scale - 0.01) < 1e-12);
  const a = activationQuant({ min: -1, max: 3 });
  assert.equal(a.zeroPoint, 64);
  assert.ok(Math.abs(a.scale - 4 / 255) < 1e-12);
  // a range that excludes 0 is widened to include it
  assert.equal(activationQuant({ min: 2, max: 4 }).zeroPoint, 0);
  assert.equal(activationQuant({ min: -4, max: -2 }).zeroPoint, 255);
  assert.deepEqual(activationQuant({ min: 0, max: 0 }), { scale: 1, zeroPoint: 0 });
});

test('percentile ranges cut equal tails from the histogram and keep a tail that is all in its edge bin', () => {
  const h = new Float64Array(10);
  h[0] = 5000; // ReLU zeros
  for (let i = 1; i < 9; i++) h[i] = 100;
  h[9] = 1; // one outlier at the top
  const r = percentileRange(h, { min: 0, max: 10 }, 99.9);
  assert.equal(r.min, 0);
  assert.equal(r.max, 9); // the outlier bin is cut
  assert.deepEqual(percentileRange(h, { min: 0, max: 10 }, 100), { min: 0, max: 10 });
});

/** Small models covering every layer class the exporter converts (src/ml/onnx/converters/index.ts). */
/**
 * Tolerance: max |int8 - float| over the outputs <= tolerance x max(1, output scale). Measured:
 * 0.002 for the convolution stack; 0.06 for the merge/dense model, where 4- to 10-wide dense
 * layers and five-way merges of differently scaled maps share one uint8 scale per tensor.
 */
const EVERY_LAYER: { name: string; shape: number[]; tolerance: number; body: (x: ST) => ST }[] = [
  {
    name: 'convolutions, batch norm, activations, pooling, padding',
    shape: [12, 12, 2],
    tolerance: 0.01,
    body: (x) => {
      let y = ap(L.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }), x);
      y = ap(L.batchNormalization({}), ap(L.conv2d({ filters: 6, kernelSize: 1, useBias: false }), y));
      y = ap(L.reLU({}), y);
      y = ap(L.zeroPadding2d({ padding: 1 }), y);
      y = ap(L.maxPooling2d({ poolSize: 2 }), y);
      y = ap(L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' }), y);
      y = ap(L.batchNormalization({}), ap(L.activation({ activation: 'elu' }), y));
      y = ap(L.leakyReLU({ alpha: 0.2 }), y);
      y = ap(L.averagePooling2d({ poolSize: 2, padding: 'same' }), y);
      y = ap(L.conv2dTranspose({ filters: 4, kernelSize: 2, strides: 2, padding: 'same', activation: 'relu' }), y);
      y = ap(L.elu({}), ap(L.conv2d({ filters: 4, kernelSize: 3, dilationRate: 2, padding: 'same' }), y));
      return ap(L.activation({ activation: 'sigmoid' }), ap(L.conv2d({ filters: 1, kernelSize: 1 }), y));
    },
  },
  {
    name: 'merges, reshaping, resizing, dense on every rank',
    shape: [8, 8, 3],
    tolerance: 0.1,
    body: (x) => {
      const a = ap(L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'tanh' }), x);
      const b = ap(L.conv2d({ filters: 4, kernelSize: 1, activation: 'softplus' }), x);
      let y = ap(L.concatenate({}), [
        ap(L.add({}), [a, b]),
        ap(L.multiply({}), [a, b]),
        ap(L.maximum({}), [a, b]),
        ap(L.minimum({}), [a, b]),
        ap(L.average({}), [a, b]),
      ]);
      y = ap(
        L.cropping2D({
          cropping: [
            [1, 1],
            [1, 1],
          ],
        }),
        y,
      );
      y = ap(L.upSampling2d({ size: [2, 2] }), y);
      y = ap(L.upSampling2d({ size: [1, 1], interpolation: 'bilinear' }), y);
      y = ap(L.dense({ units: 5, activation: 'swish' }), y); // rank 4: a 1x1 convolution
      const gap = ap(L.globalAveragePooling2d({}), y);
      const gmp = ap(L.globalMaxPooling2d({}), y);
      let v = ap(L.concatenate({}), [gap, gmp]);
      v = ap(L.dropout({ rate: 0.5 }), ap(L.dense({ units: 6, activation: 'relu' }), v));
      const seq = ap(L.reshape({ targetShape: [2, 3] }), v);
      const m = ap(L.flatten({}), ap(L.dense({ units: 4, activation: 'mish' }), seq)); // rank 3: MatMul + Add
      const s = ap(L.softmax({}), ap(L.dense({ units: 3 }), m));
      return ap(L.dense({ units: 2, activation: 'hardSigmoid' }), s);
    },
  },
];

for (const [i, c] of EVERY_LAYER.entries()) {
  test(`every exported op survives quantization of all its Conv/ConvTranspose/Gemm/MatMul nodes: ${c.name}`, async () => {
    const input = tf.input({ shape: c.shape });
    const model = tf.model({ inputs: input, outputs: c.body(input) });
    randomizeWeights(model, 40 + i);
    const floatBytes = exportLayersModel(model).bytes;
    model.dispose();
    const inputs = inputsFor(c.shape, 8, 500 + 10 * i, -1, 1);
    const q = await quantizeOnnx(floatBytes, inputs, { ops: QUANTIZABLE_OPS, keepOutputHeads: false });
    const ops = opCounts(floatBytes);
    const planned = q.plan.quantized.length;
    const quantizable = QUANTIZABLE_OPS.reduce((n, op) => n + (ops[op] ?? 0), 0);
    assert.equal(planned + q.plan.float.length, quantizable);
    assert.ok(planned >= quantizable - 1, `only ${planned} of ${quantizable} quantizable nodes quantized: ${JSON.stringify(q.plan.float)}`);
    // the float ops around them are all still there, reading dequantized tensors
    const qOps = opCounts(q.bytes);
    for (const [op, n] of Object.entries(ops)) {
      if (op === 'Relu') assert.ok((qOps.Relu ?? 0) <= n);
      else assert.equal(qOps[op], n, `${op} count changed`);
    }
    assert.ok(qOps.QuantizeLinear > 0 && qOps.DequantizeLinear > qOps.QuantizeLinear);
    // 8-bit steps through a dozen random layers, judged on the inputs calibrated on
    const { maxDiff, scale } = await compare(floatBytes, q.bytes, inputs);
    assert.ok(maxDiff <= c.tolerance * Math.max(1, scale), `max |int8 - float| ${maxDiff} (output scale ${scale})`);
  });
}

test('ONNX Runtime fuses the QDQ pairs of a U-Net into QLinearConv (its up-samplings too, as Conv + DepthToSpace); a ReLU after a conv folds into its uint8 output', async () => {
  const model = buildUNet({ ...SMALL_UNET, seed: 3 });
  const floatBytes = exportLayersModel(model, { outputNames: ['mask'] }).bytes;
  model.dispose();
  const inputs = inputsFor([64, 64, 1], 6, 77);
  const q = await quantizeOnnx(floatBytes, inputs);
  const floatOps = opCounts(floatBytes);
  // every 2x2 stride-2 ConvTranspose became a 1x1 Conv + DepthToSpace
  assert.equal(q.rewrittenConvTransposes.length, floatOps.ConvTranspose);
  assert.equal(opCounts(q.bytes).ConvTranspose ?? 0, 0);
  assert.equal(opCounts(q.bytes).DepthToSpace, floatOps.ConvTranspose);
  const convs = floatOps.Conv + floatOps.ConvTranspose;
  // the 1x1 output conv (under the sigmoid mask) stays float; every other conv is int8
  assert.equal(q.plan.quantized.length, convs - 1);
  // the pooling and up-sampling move uint8 bytes between them
  assert.ok(q.plan.data.some((p) => p.op === 'MaxPool') && q.plan.data.some((p) => p.op === 'DepthToSpace'));
  assert.ok(q.plan.float.some((f) => /graph output/.test(f.reason)));
  // every conv but the mask head and the up-sampling ones (no ReLU after a ConvTranspose) folds its ReLU
  assert.ok(q.plan.quantized.filter((p) => p.relu).length >= convs - 2 - floatOps.ConvTranspose, 'conv -> relu pairs fold');
  assert.equal(opCounts(q.bytes).Relu ?? 0, 0);
  const dir = mkdtempSync(join(tmpdir(), 'cxr-qdq-'));
  try {
    const optimized = join(dir, 'optimized.onnx');
    await (await session(q.bytes, optimized)).release();
    assert.ok(existsSync(optimized));
    const fused = graphOf(decodeModel(readFileSync(optimized))).node.filter((n) => n.opType === 'QLinearConv').length;
    assert.equal(fused, q.plan.quantized.length, 'every quantized conv runs as QLinearConv');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // mask agreement on the calibration images: the cut at 0.5 moves at most a few border pixels
  const { outs } = await compare(floatBytes, q.bytes, inputs);
  for (const o of outs) {
    let differ = 0;
    for (let i = 0; i < o.float.length; i++) if (o.float[i] >= 0.5 !== o.int8[i] >= 0.5) differ++;
    assert.ok(differ / o.float.length <= 0.02, `${differ} of ${o.float.length} mask pixels change side`);
  }
});

test('a small DenseNet121-SE: the quantized probability, features and CAM agree with float within 0.05 of their scale', async () => {
  const model = buildDenseNet121SE({ ...SMALL_DENSENET, seed: 5 });
  randomizeWeights(model, 8);
  const floatBytes = exportLayersModel(model, { outputNames: ['probability', 'features'], cam: true }).bytes;
  model.dispose();
  const inputs = inputsFor([32, 32, 1], 8, 900);
  const q = await quantizeOnnx(floatBytes, inputs, { method: 'percentile', percentile: 99.99 });
  // the head (Gemm) and the CAM conv stay float: they produce graph outputs
  assert.ok(q.plan.float.some((f) => f.op === 'Conv' && /graph output/.test(f.reason)));
  assert.equal(q.plan.quantized.filter((p) => p.op !== 'Conv').length, 0);
  const { outs } = await compare(floatBytes, q.bytes, inputs);
  for (const name of ['probability', 'features', 'cam']) {
    let diff = 0;
    let scale = 0;
    for (const o of outs.filter((x) => x.name === name)) {
      for (let i = 0; i < o.float.length; i++) {
        diff = Math.max(diff, Math.abs(o.float[i] - o.int8[i]));
        scale = Math.max(scale, Math.abs(o.float[i]));
      }
    }
    const tol = name === 'probability' ? 0.05 : 0.05 * scale;
    assert.ok(diff <= tol, `${name}: max |int8 - float| ${diff} > ${tol}`);
  }
});

test('--keep-float keeps named nodes in float; a name that matches no quantizable node is E_BAD_ARGUMENT', () => {
  const model = buildUNet({ ...SMALL_UNET, seed: 3 });
  const m = decodeModel(exportLayersModel(model, { outputNames: ['mask'] }).bytes);
  model.dispose();
  const first = graphOf(m).node.find((n) => n.opType === 'Conv')!;
  const plan = planQuantization(m, { keepFloat: [first.name!] });
  assert.ok(plan.float.some((f) => f.id === first.name && /keep-float/.test(f.reason)));
  assert.ok(!plan.quantized.some((p) => p.id === first.name));
  assert.throws(
    () => planQuantization(m, { keepFloat: ['no_such_node'] }),
    (e) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT',
  );
});
