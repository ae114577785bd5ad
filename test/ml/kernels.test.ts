/**
 * The training kernels registered for the wasm backend (src/ml/kernels) against tfjs' cpu
 * backend, the reference implementation: both Conv2DBackpropFilter / Conv2DBackpropInput
 * implementations (composed wasm kernels, and onnxruntime native when its binding loads)
 * over strides, paddings, kernel sizes and odd/even shapes, the native forward
 * convolution, the faster Tile / Mean / Sum / FusedBatchNorm kernels, the batch-norm
 * gradient, and the gradients of small versions of both networks end to end.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { conv2dBackpropFilterConfig } from '../../src/ml/kernels/conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from '../../src/ml/kernels/conv2d-backprop-input.js';
import { nativeConv2DBackpropFilterConfig, nativeConv2DBackpropInputConfig, nativeConv2DConfig } from '../../src/ml/kernels/native/conv-kernels.js';
import { nativeConcatConfig, nativeSliceConfig, nativeSplitVConfig } from '../../src/ml/kernels/native/copy-kernels.js';
import { nativeRuntime, nativeRuntimeError } from '../../src/ml/kernels/native/ort-runtime.js';
import { nativeMaxPoolGradConfig } from '../../src/ml/kernels/native/pool-kernels.js';
import { reductionView } from '../../src/ml/kernels/reduce.js';
import { tileAxes } from '../../src/ml/kernels/tile.js';
import { buildDenseNet121SE } from '../../src/ml/densenet.js';
import { buildUNet } from '../../src/ml/unet.js';

type Pad = 'same' | 'valid';
/** [batch, height, width, in channels, out channels, kernel, stride, padding] */
type ConvCase = [number, number, number, number, number, number, number, Pad];
type Shape4 = [number, number, number, number];

const CASES: ConvCase[] = [
  [2, 9, 8, 3, 4, 3, 1, 'same'],
  [2, 9, 8, 3, 4, 3, 2, 'same'],
  [2, 9, 8, 3, 4, 3, 2, 'valid'],
  [2, 10, 10, 4, 4, 3, 2, 'same'],
  [1, 10, 10, 2, 5, 7, 2, 'same'],
  [2, 16, 15, 3, 4, 7, 2, 'same'],
  [2, 12, 12, 5, 3, 7, 1, 'valid'],
  [1, 16, 16, 2, 3, 3, 1, 'valid'],
  [3, 7, 7, 4, 6, 1, 1, 'same'],
  [3, 6, 6, 8, 8, 1, 1, 'valid'],
  [2, 11, 13, 3, 2, 1, 2, 'valid'],
  [2, 8, 8, 4, 3, 2, 2, 'valid'],
];

const label = ([n, h, w, ci, co, k, s, pad]: ConvCase) => `x ${n}x${h}x${w}x${ci}, ${k}x${k}x${ci}x${co}, stride ${s}, ${pad}`;

function values(shape: number[], seed: number): Float32Array {
  return tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array).slice();
}

/** Max |a-b| must stay below `rel` of the largest |b| (and of 1). */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-4, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  assert.ok(Number.isFinite(diff) && diff <= rel * scale, `${what}: max diff ${diff} > ${rel} * ${scale}`);
}

async function onCpu(f: () => tf.Tensor): Promise<{ data: Float32Array; shape: number[] }> {
  await tf.setBackend('cpu');
  return tf.tidy(() => {
    const y = f();
    return { data: (y.dataSync() as Float32Array).slice(), shape: y.shape };
  });
}

/** Runs one kernel implementation directly on the wasm backend. */
async function onWasm(kernel: KernelConfig['kernelFunc'], inputs: Record<string, tf.Tensor>, attrs: NamedAttrMap) {
  await tf.setBackend('wasm');
  const moved = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, tf.clone(t)]));
  const out = kernel({ inputs: moved as unknown as Record<string, TensorInfo>, backend: tf.backend(), attrs }) as TensorInfo;
  const y = tf.engine().makeTensorFromTensorInfo(out);
  const result = { data: (y.dataSync() as Float32Array).slice(), shape: y.shape };
  tf.dispose([y, ...Object.values(moved)]);
  return result;
}

const refuse: KernelConfig['kernelFunc'] = () => {
  throw new Error('fell back to the other implementation');
};

// One thread: the heap of the threaded wasm build cannot be shared with onnxruntime.
await initBackend({ threads: 1, log: () => {} });
const native = nativeRuntime();

function implementations(kind: 'filter' | 'input'): [string, KernelConfig['kernelFunc'] | null][] {
  const nativeKernel =
    native == null
      ? null
      : kind === 'filter'
        ? nativeConv2DBackpropFilterConfig(native, refuse).kernelFunc
        : nativeConv2DBackpropInputConfig(native, refuse).kernelFunc;
  const wasmKernel = kind === 'filter' ? conv2dBackpropFilterConfig.kernelFunc : conv2dBackpropInputConfig(refuse).kernelFunc;
  return [
    ['composed wasm kernels', wasmKernel],
    ['onnxruntime native', nativeKernel],
  ];
}

describe('Conv2DBackpropFilter on wasm matches the cpu backend', () => {
  for (const [impl, kernel] of implementations('filter')) {
    for (const c of CASES) {
      test(`${impl}: ${label(c)}`, { skip: kernel == null && `onnxruntime binding unavailable: ${nativeRuntimeError()}` }, async () => {
        const [n, h, w, ci, co, k, s, pad] = c;
        const xShape: Shape4 = [n, h, w, ci];
        const filterShape: Shape4 = [k, k, ci, co];
        const outShape = (await onCpu(() => tf.conv2d(tf.zeros(xShape) as tf.Tensor4D, tf.zeros(filterShape) as tf.Tensor4D, s, pad))).shape as Shape4;
        const xv = values(xShape, 1);
        const dyv = values(outShape, 2);
        const attrs = { strides: [s, s], pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape } as unknown as NamedAttrMap;
        const expected = await onCpu(
          () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor(xv, xShape), dy: tf.tensor(dyv, outShape) }, attrs) as tf.Tensor,
        );
        const actual = await onWasm(kernel!, { x: tf.tensor(xv, xShape), dy: tf.tensor(dyv, outShape) }, attrs);
        assert.deepEqual(actual.shape, filterShape);
        assertClose(actual.data, expected.data, 1e-4, label(c));
      });
    }
  }
});

describe('Conv2DBackpropInput on wasm matches the cpu backend', () => {
  for (const [impl, kernel] of implementations('input')) {
    for (const c of CASES) {
      test(`${impl}: ${label(c)}`, { skip: kernel == null && `onnxruntime binding unavailable: ${nativeRuntimeError()}` }, async () => {
        const [n, h, w, ci, co, k, s, pad] = c;
        const xShape: Shape4 = [n, h, w, ci];
        const filterShape: Shape4 = [k, k, ci, co];
        const outShape = (await onCpu(() => tf.conv2d(tf.zeros(xShape) as tf.Tensor4D, tf.zeros(filterShape) as tf.Tensor4D, s, pad))).shape as Shape4;
        const wv = values(filterShape, 3);
        const dyv = values(outShape, 4);
        const attrs = { strides: [s, s], pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: xShape } as unknown as NamedAttrMap;
        const expected = await onCpu(() =>
          tf.conv2dTranspose(tf.tensor(dyv, outShape) as tf.Tensor4D, tf.tensor(wv, filterShape) as tf.Tensor4D, xShape, s, pad),
        );
        const actual = await onWasm(kernel!, { dy: tf.tensor(dyv, outShape), filter: tf.tensor(wv, filterShape) }, attrs);
        assert.deepEqual(actual.shape, xShape);
        assertClose(actual.data, expected.data, 1e-4, label(c));
      });
    }
  }
});

describe('native forward convolution matches the cpu backend', () => {
  for (const c of CASES) {
    for (const activation of ['linear', 'relu'] as const) {
      test(`${label(c)}, bias, ${activation}`, { skip: native == null && `onnxruntime binding unavailable: ${nativeRuntimeError()}` }, async () => {
        const [n, h, w, ci, co, k, s, pad] = c;
        const xShape: Shape4 = [n, h, w, ci];
        const filterShape: Shape4 = [k, k, ci, co];
        const xv = values(xShape, 5);
        const wv = values(filterShape, 6);
        const bv = values([co], 7);
        const expected = await onCpu(() =>
          tf.fused.conv2d({
            x: tf.tensor(xv, xShape) as tf.Tensor4D,
            filter: tf.tensor(wv, filterShape) as tf.Tensor4D,
            strides: s,
            pad,
            bias: tf.tensor(bv),
            activation,
          }),
        );
        const kernel = nativeConv2DConfig(native!, refuse, true).kernelFunc;
        const attrs = { strides: [s, s], pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined, activation } as unknown as NamedAttrMap;
        const actual = await onWasm(kernel, { x: tf.tensor(xv, xShape), filter: tf.tensor(wv, filterShape), bias: tf.tensor(bv) }, attrs);
        assert.deepEqual(actual.shape, expected.shape);
        assertClose(actual.data, expected.data, 1e-4, label(c));
      });
    }
  }
});

describe('native Slice, SplitV and Concat match the cpu backend', () => {
  const skip = native == null && `onnxruntime binding unavailable: ${nativeRuntimeError()}`;
  const shape = [2, 16, 16, 40]; // above the size where the native copies take over
  const v = values(shape, 19);
  const w = values([2, 16, 16, 24], 20);

  test('Slice of inner channels and of a spatial window', { skip }, async () => {
    const kernel = nativeSliceConfig(native!, refuse).kernelFunc;
    for (const [begin, size] of [
      [
        [0, 0, 0, 8],
        [2, 16, 16, 32],
      ],
      [
        [0, 1, 0, 0],
        [2, 14, 16, 40],
      ],
    ]) {
      const expected = await onCpu(() => tf.slice(tf.tensor(v, shape), begin, size));
      const actual = await onWasm(kernel, { x: tf.tensor(v, shape) }, { begin, size } as unknown as NamedAttrMap);
      assert.deepEqual(actual.shape, size);
      assert.deepEqual(actual.data, expected.data);
    }
  });

  test('SplitV along channels into unequal parts', { skip }, async () => {
    const kernel = nativeSplitVConfig(native!, refuse).kernelFunc;
    await tf.setBackend('wasm');
    const x = tf.tensor(v, shape);
    const outs = kernel({
      inputs: { x } as unknown as Record<string, TensorInfo>,
      backend: tf.backend(),
      attrs: { numOrSizeSplits: [8, 32], axis: 3 } as unknown as NamedAttrMap,
    }) as TensorInfo[];
    const parts = outs.map((o) => tf.engine().makeTensorFromTensorInfo(o));
    const got = parts.map((p) => ({ data: (p.dataSync() as Float32Array).slice(), shape: p.shape }));
    tf.dispose([x, ...parts]);
    for (const [i, [begin, size]] of [
      [
        [0, 0, 0, 0],
        [2, 16, 16, 8],
      ],
      [
        [0, 0, 0, 8],
        [2, 16, 16, 32],
      ],
    ].entries()) {
      const expected = await onCpu(() => tf.slice(tf.tensor(v, shape), begin, size));
      assert.deepEqual(got[i].shape, size);
      assert.deepEqual(got[i].data, expected.data);
    }
  });

  test('Concat along channels and along rows', { skip }, async () => {
    const kernel = nativeConcatConfig(native!, refuse).kernelFunc;
    for (const axis of [3, 1]) {
      const a = axis === 3 ? w : values([2, 16, 16, 40], 21);
      const aShape = axis === 3 ? [2, 16, 16, 24] : shape;
      const expected = await onCpu(() => tf.concat([tf.tensor(v, shape), tf.tensor(a, aShape)], axis));
      await tf.setBackend('wasm');
      const ins = [tf.tensor(v, shape), tf.tensor(a, aShape)];
      const out = kernel({
        inputs: ins as unknown as Record<string, TensorInfo>,
        backend: tf.backend(),
        attrs: { axis } as unknown as NamedAttrMap,
      }) as TensorInfo;
      const y = tf.engine().makeTensorFromTensorInfo(out);
      assert.deepEqual(y.shape, expected.shape);
      assert.deepEqual((y.dataSync() as Float32Array).slice(), expected.data);
      tf.dispose([y, ...ins]);
    }
  });
});

describe('native MaxPoolGrad matches the cpu backend, ties included', () => {
  const skip = native == null && `onnxruntime binding unavailable: ${nativeRuntimeError()}`;
  for (const [shape, k, s, pad] of [
    [[2, 9, 8, 3], 3, 2, 'same'],
    [[2, 8, 8, 4], 2, 2, 'valid'],
    [[1, 7, 7, 2], 3, 1, 'same'],
  ] as [Shape4, number, number, Pad][]) {
    test(`${shape.join('x')}, ${k}x${k} stride ${s} ${pad}`, { skip }, async () => {
      // ReLU-like input: many zeros, so windows tie and the first maximum must win
      const xv = values(shape, 22).map((v) => Math.max(v, 0));
      const pooledShape = (await onCpu(() => tf.maxPool(tf.tensor(xv, shape) as tf.Tensor4D, k, s, pad))).shape as Shape4;
      const dy = Array.from({ length: tf.util.sizeFromShape(pooledShape) }, (_, i) => i + 1);
      // d/dx of sum(maxPool(x) * dy) is MaxPoolGrad(dy)
      const expected = await onCpu(() =>
        tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, k, s, pad), tf.tensor(dy, pooledShape))))(tf.tensor(xv, shape)),
      );
      const kernel = nativeMaxPoolGradConfig(native!, refuse).kernelFunc;
      const actual = await onWasm(kernel, { dy: tf.tensor(dy, pooledShape), input: tf.tensor(xv, shape), output: tf.zeros(pooledShape) }, {
        filterSize: [k, k],
        strides: [s, s],
        pad,
        dimRoundingMode: undefined,
      } as unknown as NamedAttrMap);
      assert.deepEqual(actual.data, expected.data);
    });
  }
});

describe('registered wasm kernels match the cpu backend', () => {
  async function both(f: () => tf.Tensor) {
    const expected = await onCpu(f);
    await tf.setBackend('wasm');
    const actual = tf.tidy(() => {
      const y = f();
      return { data: (y.dataSync() as Float32Array).slice(), shape: y.shape };
    });
    assert.deepEqual(actual.shape, expected.shape);
    return { actual, expected };
  }

  test('Tile broadcasts a per-channel vector and general tiles exactly', async () => {
    for (const [shape, reps] of [
      [
        [1, 1, 1, 5],
        [2, 3, 4, 1],
      ],
      [
        [2, 3],
        [2, 2],
      ],
      [[4], [3]],
      [
        [1, 3, 1, 2],
        [2, 1, 3, 2],
      ],
    ] as [number[], number[]][]) {
      const v = values(shape, 8);
      const { actual, expected } = await both(() => tf.tile(tf.tensor(v, shape), reps));
      assert.deepEqual(actual.data, expected.data);
    }
  });

  test('Mean and Sum over leading, middle and trailing axes, with and without keepDims', async () => {
    for (const [shape, axes, keepDims] of [
      [[2, 3, 4, 5], [0, 1, 2], false],
      [[2, 3, 4, 5], [1, 2], true],
      [[2, 3, 4, 5], [3], false],
      [[6, 7], [0], false],
      [[2, 3, 4, 5], [0, 2], false],
      [[3, 5, 2], [1], true],
    ] as [number[], number[], boolean][]) {
      const v = values(shape, 9);
      for (const op of ['mean', 'sum'] as const) {
        const { actual, expected } = await both(() => tf[op](tf.tensor(v, shape), axes, keepDims));
        assertClose(actual.data, expected.data, 1e-5, `${op} ${shape} over ${axes}`);
      }
    }
  });

  test('FusedBatchNorm with and without scale and offset', async () => {
    const shape = [2, 3, 4, 5];
    const x = values(shape, 10);
    const [mean, variance, offset, scale] = [11, 12, 13, 14].map((s) => values([5], s));
    const v = variance.map(Math.abs);
    for (const withParams of [true, false]) {
      const { actual, expected } = await both(() =>
        tf.batchNorm(
          tf.tensor(x, shape),
          tf.tensor(mean),
          tf.tensor(v),
          withParams ? tf.tensor(offset) : undefined,
          withParams ? tf.tensor(scale) : undefined,
          1e-3,
        ),
      );
      assertClose(actual.data, expected.data, 1e-5, `batchNorm params=${withParams}`);
    }
  });

  test('the FusedBatchNorm gradient equals the gradient of batch norm written out op by op', async () => {
    const shape = [2, 5, 5, 3];
    const xv = values(shape, 15);
    const dyv = values(shape, 16);
    const fused = (x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) => {
      const m = tf.moments(x, [0, 1, 2]);
      return tf.sum(tf.mul(tf.batchNorm(x, m.mean, m.variance, offset, scale, 1e-3), tf.tensor(dyv, shape)));
    };
    const written = (x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) => {
      const m = tf.moments(x, [0, 1, 2]);
      const y = tf.add(tf.mul(tf.div(tf.sub(x, m.mean), tf.sqrt(tf.add(m.variance, 1e-3))), scale), offset);
      return tf.sum(tf.mul(y, tf.tensor(dyv, shape)));
    };
    const grads = (f: typeof fused) => () => {
      const [gx, gs, go] = tf.grads(f)([tf.tensor(xv, shape), tf.tensor([0.5, 1, 2]), tf.tensor([0.1, 0.2, 0.3])]);
      return tf.concat([gx.flatten(), gs, go]);
    };
    const reference = await onCpu(grads(written));
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      const got = tf.tidy(() => (grads(fused)().dataSync() as Float32Array).slice());
      assertClose(got, reference.data, 1e-4, `batch-norm gradient on ${backend}`);
    }
  });

  test('reduction views and tile axes are computed as documented', () => {
    assert.deepEqual(reductionView([8, 56, 56, 128], [0, 1, 2]), { outer: 1, reduced: 8 * 56 * 56, inner: 128 });
    assert.deepEqual(reductionView([8, 7, 7, 1024], [1, 2]), { outer: 8, reduced: 49, inner: 1024 });
    assert.equal(reductionView([2, 3, 4], [2]), null); // innermost: tfjs' own kernel is fast
    assert.equal(reductionView([2, 3, 4], [0, 2]), null); // not one block
    assert.deepEqual(tileAxes([1, 1, 1, 5], [2, 3, 4, 1]), [
      { kind: 'rep', extent: 24 },
      { kind: 'data', extent: 5 },
    ]);
  });
});

describe('small versions of both networks get the same gradients on wasm as on cpu', () => {
  const nets = {
    'DenseNet-SE (2 blocks, growth 4)': () => buildDenseNet121SE({ inputSize: 32, blocks: [2, 2], growth: 4, stemFilters: 8, dropout: 0, seed: 3 }),
    'U-Net (depth 2, base 4)': () => buildUNet({ inputSize: 16, base: 4, depth: 2, seed: 4 }),
  };
  for (const [name, build] of Object.entries(nets)) {
    test(name, async () => {
      await tf.setBackend('cpu');
      const model = build();
      const size = model.inputs[0].shape[1] as number;
      const x = tf.tensor(values([2, size, size, 1], 17), [2, size, size, 1]);
      const outShape = (model.outputs[0].shape as number[]).map((d) => d ?? 2);
      const target = tf.tensor(values(outShape, 18), outShape);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const gradients = (): Float32Array[] =>
        tf.tidy(() => {
          const { grads } = tf.variableGrads(() => tf.sum(tf.mul(model.apply(x, { training: true }) as tf.Tensor, target)) as tf.Scalar, vars);
          return vars.map((v) => (grads[v.name].dataSync() as Float32Array).slice());
        });
      const expected = gradients();
      await tf.setBackend('wasm');
      const actual = gradients();
      expected.forEach((e, i) => assertClose(actual[i], e, 2e-3, `${name} ${vars[i].name}`));
      model.dispose();
      tf.dispose([x, target]);
    });
  }
});
