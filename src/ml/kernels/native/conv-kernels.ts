import * as tf from '@tensorflow/tfjs';
import type {
  Conv2DAttrs,
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  FusedConv2DAttrs,
  KernelBackend,
  KernelConfig,
  TensorInfo,
} from '@tensorflow/tfjs';
import type { OnnxGraph, OnnxNode } from './onnx-graph.js';
import type { NativeRuntime } from './ort-runtime.js';
import { runOnHeap } from './heap-run.js';

/**
 * Convolution kernels of the wasm backend executed by onnxruntime's native CPU kernels
 * (MLAS: AVX2/FMA, multi-threaded), reading and writing tensors in place on the wasm heap.
 * tfjs keeps NHWC; each graph transposes to ONNX's NCHW and back around the convolution.
 *
 *  - Conv2D / FusedConv2D (bias, linear or relu): 1x1 as one Gemm over the pixels (in
 *    NHWC a pointwise convolution needs no layout change); otherwise Conv.
 *  - Conv2DBackpropInput: 1x1 as one Gemm (dY·Wᵀ); stride 1 as a Conv with the filter
 *    rotated 180° and its in/out channels swapped; larger strides as ConvTranspose.
 *  - Conv2DBackpropFilter: 1x1 as one Gemm, dW = Xᵀ·dY (transA: MLAS reads the
 *    transposed operand itself); otherwise per filter tap, dW[a,b]ᵀ = dYᵀ·X[a::s, b::s]
 *    with dY transposed once. (Measured against an im2col concat + one Gemm, which
 *    copies the input kh·kw times and ran 1.5-4x slower, and against folding the taps
 *    into one Gemm by shifting dY, which only wins when Cout·kh·kw < ~2·Cin.)
 *
 * Anything outside these cases (other activations, NCHW, crops from negative padding)
 * runs `fallback`, the pure-wasm kernel.
 */
type KernelFunc = KernelConfig['kernelFunc'];

function isNHWC(dataFormat: string | undefined): boolean {
  return dataFormat == null || dataFormat === 'NHWC' || dataFormat === 'channelsLast';
}

/** 1x1, stride 1, no padding, no dilation: a matrix product in NHWC. */
function isPointwise(info: tf.backend_util.Conv2DInfo): boolean {
  const p = info.padInfo;
  return (
    info.filterHeight === 1 &&
    info.filterWidth === 1 &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    p.top === 0 &&
    p.bottom === 0 &&
    p.left === 0 &&
    p.right === 0
  );
}

const toNCHW = [0, 3, 1, 2];
const toNHWC = [0, 2, 3, 1];
const HWIOtoOIHW = [3, 2, 0, 1];

function convInfo(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Conv2DAttrs['pad'],
  rounding: Conv2DAttrs['dimRoundingMode'],
) {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    pad,
    rounding,
    false,
    'channelsLast',
  );
}

function convAttrs(info: tf.backend_util.Conv2DInfo) {
  const p = info.padInfo;
  return {
    kernel_shape: [info.filterHeight, info.filterWidth],
    strides: [info.strideHeight, info.strideWidth],
    dilations: [info.dilationHeight, info.dilationWidth],
    pads: [p.top, p.left, p.bottom, p.right],
  };
}

export function nativeConv2DConfig(ort: NativeRuntime, fallback: KernelFunc, fused: boolean): KernelConfig {
  const kernelFunc = ((args: {
    inputs: { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    backend: KernelBackend;
    attrs: Conv2DAttrs & Partial<FusedConv2DAttrs>;
  }) => {
    const { inputs, backend, attrs } = args;
    const { x, filter, bias, preluActivationWeights } = inputs;
    const activation = attrs.activation ?? 'linear';
    const co = filter.shape[3];
    const biasOk = bias == null || tf.util.sizeFromShape(bias.shape) === co;
    if (!isNHWC(attrs.dataFormat) || preluActivationWeights != null || !biasOk || (activation !== 'linear' && activation !== 'relu')) {
      return fallback(args as never);
    }
    const info = convInfo(x.shape, filter.shape, attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode);
    const key = `conv|${x.shape}|${filter.shape}|${JSON.stringify(convAttrs(info))}|${bias != null}|${activation}`;
    const ins: Record<string, TensorInfo> = bias != null ? { x, w: filter, b: bias } : { x, w: filter };
    const graphInputs = [{ name: 'x', shape: x.shape }, { name: 'w', shape: filter.shape }, ...(bias != null ? [{ name: 'b', shape: [co] }] : [])];
    return (
      runOnHeap(ort, backend, key, ins, { y: info.outShape }, (): OnnxGraph => {
        if (isPointwise(info)) {
          // NHWC 1x1 stride 1: a plain matrix product over pixels, no layout change.
          const m = info.batchSize * info.outHeight * info.outWidth;
          const nodes: OnnxNode[] = [
            { op: 'Reshape', inputs: ['x', 'xShape'], outputs: ['x2'] },
            { op: 'Reshape', inputs: ['w', 'wShape'], outputs: ['w2'] },
            { op: 'Gemm', inputs: bias != null ? ['x2', 'w2', 'b'] : ['x2', 'w2'], outputs: ['y2'] },
          ];
          if (activation === 'relu') nodes.push({ op: 'Relu', inputs: ['y2'], outputs: ['y2r'] });
          nodes.push({ op: 'Reshape', inputs: [activation === 'relu' ? 'y2r' : 'y2', 'yShape'], outputs: ['y'] });
          return {
            inputs: graphInputs,
            outputs: [{ name: 'y', shape: info.outShape }],
            constants: [
              { name: 'xShape', values: [m, info.inChannels] },
              { name: 'wShape', values: [info.inChannels, co] },
              { name: 'yShape', values: info.outShape },
            ],
            nodes,
          };
        }
        const nodes: OnnxNode[] = [
          { op: 'Transpose', inputs: ['x'], outputs: ['xc'], attrs: { perm: toNCHW } },
          { op: 'Transpose', inputs: ['w'], outputs: ['wc'], attrs: { perm: HWIOtoOIHW } },
          { op: 'Conv', inputs: bias != null ? ['xc', 'wc', 'b'] : ['xc', 'wc'], outputs: ['yc'], attrs: convAttrs(info) },
        ];
        if (activation === 'relu') nodes.push({ op: 'Relu', inputs: ['yc'], outputs: ['yr'] });
        nodes.push({ op: 'Transpose', inputs: [activation === 'relu' ? 'yr' : 'yc'], outputs: ['y'], attrs: { perm: toNHWC } });
        return {
          inputs: graphInputs,
          outputs: [{ name: 'y', shape: info.outShape }],
          nodes,
        };
      })?.[0] ?? (fallback(args as never) as TensorInfo)
    );
  }) as unknown as KernelFunc;
  return { kernelName: fused ? tf.FusedConv2D : tf.Conv2D, backendName: 'wasm', kernelFunc };
}

export function nativeConv2DBackpropInputConfig(ort: NativeRuntime, fallback: KernelFunc): KernelConfig {
  const kernelFunc = ((args: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: KernelBackend; attrs: Conv2DBackpropInputAttrs }) => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs;
    if (!isNHWC(attrs.dataFormat)) return fallback(args as never);
    const info = convInfo(attrs.inputShape, filter.shape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
    const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo } = info;
    const { top, left, bottom, right } = info.padInfo;
    let key: string;
    let nodes: OnnxNode[];
    let constants: OnnxGraph['constants'] = [];
    if (isPointwise(info)) {
      // NHWC 1x1 stride 1: dX = dY·Wᵀ over pixels, no layout change.
      const m = info.batchSize * ho * wo;
      key = `dx1|${dy.shape}|${filter.shape}`;
      constants = [
        { name: 'dyShape', values: [m, info.outChannels] },
        { name: 'wShape', values: [info.inChannels, info.outChannels] },
        { name: 'dxShape', values: attrs.inputShape },
      ];
      nodes = [
        { op: 'Reshape', inputs: ['dy', 'dyShape'], outputs: ['dy2'] },
        { op: 'Reshape', inputs: ['w', 'wShape'], outputs: ['w2'] },
        { op: 'Gemm', inputs: ['dy2', 'w2'], outputs: ['dx2'], attrs: { transB: 1 } },
        { op: 'Reshape', inputs: ['dx2', 'dxShape'], outputs: ['dx'] },
      ];
    } else {
      let node: OnnxNode[];
      if (sh === 1 && sw === 1) {
        const pads = [kh - 1 - top, kw - 1 - left, h + kh - 1 - (kh - 1 - top) - ho, w + kw - 1 - (kw - 1 - left) - wo];
        if (pads.some((p) => p < 0)) return fallback(args as never);
        constants = [
          { name: 'starts', values: [-1, -1] },
          { name: 'ends', values: [-kh - 1, -kw - 1] },
          { name: 'axes', values: [2, 3] },
          { name: 'steps', values: [-1, -1] },
        ];
        node = [
          // [kh, kw, cin, cout] -> [cin, cout, kh, kw], then rotate the taps by 180°
          { op: 'Transpose', inputs: ['w'], outputs: ['wt'], attrs: { perm: [2, 3, 0, 1] } },
          { op: 'Slice', inputs: ['wt', 'starts', 'ends', 'axes', 'steps'], outputs: ['wf'] },
          { op: 'Conv', inputs: ['dyc', 'wf'], outputs: ['dxc'], attrs: { kernel_shape: [kh, kw], pads } },
        ];
      } else {
        const outPad = [h - ((ho - 1) * sh + kh - top - bottom), w - ((wo - 1) * sw + kw - left - right)];
        if (outPad[0] < 0 || outPad[0] >= sh || outPad[1] < 0 || outPad[1] >= sw) return fallback(args as never);
        node = [
          { op: 'Transpose', inputs: ['w'], outputs: ['wt'], attrs: { perm: HWIOtoOIHW } },
          {
            op: 'ConvTranspose',
            inputs: ['dyc', 'wt'],
            outputs: ['dxc'],
            attrs: { kernel_shape: [kh, kw], strides: [sh, sw], pads: [top, left, bottom, right], output_padding: outPad },
          },
        ];
      }
      key = `dx|${dy.shape}|${filter.shape}|${attrs.inputShape}|${sh},${sw}|${top},${left},${bottom},${right}`;
      nodes = [
        { op: 'Transpose', inputs: ['dy'], outputs: ['dyc'], attrs: { perm: toNCHW } },
        ...node,
        { op: 'Transpose', inputs: ['dxc'], outputs: ['dx'], attrs: { perm: toNHWC } },
      ];
    }
    return (
      runOnHeap(ort, backend, key, { dy, w: filter }, { dx: attrs.inputShape }, () => ({
        inputs: [
          { name: 'dy', shape: dy.shape },
          { name: 'w', shape: filter.shape },
        ],
        outputs: [{ name: 'dx', shape: attrs.inputShape }],
        constants,
        nodes,
      }))?.[0] ?? (fallback(args as never) as TensorInfo)
    );
  }) as unknown as KernelFunc;
  return { kernelName: tf.Conv2DBackpropInput, backendName: 'wasm', kernelFunc };
}

export function nativeConv2DBackpropFilterConfig(ort: NativeRuntime, fallback: KernelFunc): KernelConfig {
  const kernelFunc = ((args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: KernelBackend; attrs: Conv2DBackpropFilterAttrs }) => {
    const { inputs, backend, attrs } = args;
    const { x, dy } = inputs;
    if (!isNHWC(attrs.dataFormat)) return fallback(args as never);
    const info = convInfo(x.shape, attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
    const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outChannels: cout } = info;
    const { outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
    const { top, left } = info.padInfo;
    // Rows the taps read below/right of the input; negative means the last rows are never
    // read, which the tap slices' ends already respect.
    const bottom = Math.max((ho - 1) * sh + kh - (h + top), 0);
    const right = Math.max((wo - 1) * sw + kw - (w + left), 0);
    const m = n * ho * wo;
    const pointwise = kh === 1 && kw === 1 && sh === 1 && sw === 1 && top === 0 && left === 0 && bottom === 0 && right === 0;
    const key = `dw|${x.shape}|${dy.shape}|${attrs.filterShape}|${sh},${sw}|${top},${left},${bottom},${right}`;
    return (
      runOnHeap(ort, backend, key, { x, dy }, { dw: attrs.filterShape }, (): OnnxGraph => {
        const constants: NonNullable<OnnxGraph['constants']> = [{ name: 'dyShape', values: [m, cout] }];
        const nodes: OnnxNode[] = [{ op: 'Reshape', inputs: ['dy', 'dyShape'], outputs: ['dy2'] }];
        if (pointwise) {
          constants.push({ name: 'xShape', values: [m, cin] }, { name: 'wShape', values: [kh, kw, cin, cout] });
          nodes.push(
            { op: 'Reshape', inputs: ['x', 'xShape'], outputs: ['x2'] },
            { op: 'Gemm', inputs: ['x2', 'dy2'], outputs: ['g'], attrs: { transA: 1 } },
            { op: 'Reshape', inputs: ['g', 'wShape'], outputs: ['dw'] },
          );
        } else {
          let src = 'x';
          if (top > 0 || left > 0 || bottom > 0 || right > 0) {
            constants.push({ name: 'pads', values: [0, top, left, 0, 0, bottom, right, 0] });
            nodes.push({ op: 'Pad', inputs: ['x', 'pads'], outputs: ['xp'] });
            src = 'xp';
          }
          constants.push(
            { name: 'axes', values: [1, 2] },
            { name: 'steps', values: [sh, sw] },
            { name: 'tapShape', values: [m, cin] },
            { name: 'wtShape', values: [kh, kw, cout, cin] },
          );
          nodes.push({ op: 'Transpose', inputs: ['dy2'], outputs: ['dyT'], attrs: { perm: [1, 0] } });
          const parts: string[] = [];
          for (let a = 0; a < kh; a++) {
            for (let b = 0; b < kw; b++) {
              const t = `t${a}_${b}`;
              constants.push({ name: `s${a}_${b}`, values: [a, b] }, { name: `e${a}_${b}`, values: [a + (ho - 1) * sh + 1, b + (wo - 1) * sw + 1] });
              nodes.push(
                { op: 'Slice', inputs: [src, `s${a}_${b}`, `e${a}_${b}`, 'axes', 'steps'], outputs: [t] },
                { op: 'Reshape', inputs: [t, 'tapShape'], outputs: [`${t}_2d`] },
                { op: 'MatMul', inputs: ['dyT', `${t}_2d`], outputs: [`${t}_g`] }, // [cout, cin]
              );
              parts.push(`${t}_g`);
            }
          }
          nodes.push(
            { op: 'Concat', inputs: parts, outputs: ['gt'], attrs: { axis: 0 } },
            { op: 'Reshape', inputs: ['gt', 'wtShape'], outputs: ['gt4'] },
            { op: 'Transpose', inputs: ['gt4'], outputs: ['dw'], attrs: { perm: [0, 1, 3, 2] } },
          );
        }
        return {
          inputs: [
            { name: 'x', shape: x.shape },
            { name: 'dy', shape: dy.shape },
          ],
          outputs: [{ name: 'dw', shape: attrs.filterShape }],
          constants,
          nodes,
        };
      })?.[0] ?? (fallback(args as never) as TensorInfo)
    );
  }) as unknown as KernelFunc;
  return { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc };
}
