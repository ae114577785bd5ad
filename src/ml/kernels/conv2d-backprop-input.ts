import * as tf from '@tensorflow/tfjs';
import type { Conv2DBackpropInputAttrs, KernelBackend, KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { withScope, type WasmKernelScope } from './wasm-ops.js';

/**
 * Conv2DBackpropInput (the input gradient of a convolution, and the forward pass of a
 * transposed convolution) for wasm. tfjs' own wasm kernel is a plain C++ loop, about 20x
 * slower than the XNNPACK convolution of the same size; this one hands the work to
 * XNNPACK:
 *
 *  - kernel == stride with no padding (the U-Net's 2x2/2 up-convolutions): the output
 *    blocks do not overlap, so dX = dY·Wᵀ as one matrix product [N·Ho·Wo, Cout] x
 *    [Cout, kh·kw·Cin], then a transpose puts each kh x kw block in place.
 *  - stride 1: dX is a convolution of dY with the filter rotated 180° and its in/out
 *    channels swapped, padded by kh-1-top on top (and to match the input size below);
 *  - larger strides: a sub-pixel convolution (see `subPixel`).
 */
export function conv2dBackpropInputWasm(
  args: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: KernelBackend; attrs: Conv2DBackpropInputAttrs },
  fallback: KernelConfig['kernelFunc'],
): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  if (dataFormat !== 'NHWC') return fallback(args as never) as TensorInfo;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight: h, inWidth: w } = info;
  const { top, left, bottom, right } = info.padInfo;
  if (kh === sh && kw === sw && top === 0 && left === 0 && bottom === 0 && right === 0 && h === info.outHeight * sh && w === info.outWidth * sw) {
    return withScope(backend, (s) => blocks(s, dy, filter, info));
  }
  if (sh === 1 && sw === 1) {
    return withScope(backend, (s) => unitStride(s, dy, filter, info));
  }
  return withScope(backend, (s) => subPixel(s, dy, filter, info));
}

/** Stride 1: dX = conv(dY, W rotated 180° with in/out swapped), padded to give H x W. */
function unitStride(s: WasmKernelScope, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo } = info;
  const { top, left } = info.padInfo;
  const padTop = kh - 1 - top;
  const padLeft = kw - 1 - left;
  const padBottom = h + kh - 1 - padTop - ho;
  const padRight = w + kw - 1 - padLeft - wo;
  // W'[a, b, o, c] = W[kh-1-a, kw-1-b, c, o]
  const flipped = s.reverseTaps(s.transpose(filter, [0, 1, 3, 2]), kh * kw);
  return conv(s, dy, flipped, [padTop, padBottom, padLeft, padRight]);
}

function conv(s: WasmKernelScope, x: TensorInfo, filter: TensorInfo, [t, b, l, r]: number[]): TensorInfo {
  if (t < 0 || b < 0 || l < 0 || r < 0) {
    // Negative padding crops the input first (a forward padding wider than the kernel).
    const [n, h, w, c] = x.shape;
    x = s.slice(x, [0, Math.max(-t, 0), Math.max(-l, 0), 0], [n, h - Math.max(-t, 0) - Math.max(-b, 0), w - Math.max(-l, 0) - Math.max(-r, 0), c]);
    [t, b, l, r] = [t, b, l, r].map((p) => Math.max(p, 0));
  }
  return s.run('Conv2D', { x, filter }, {
    strides: [1, 1],
    pad: [
      [0, 0],
      [t, b],
      [l, r],
      [0, 0],
    ],
    dataFormat: 'NHWC',
    dilations: [1, 1],
    dimRoundingMode: undefined,
  } as unknown as NamedAttrMap);
}

/**
 * Stride s > 1, as a sub-pixel convolution: output pixel q = s·u + r (per axis) only
 * receives filter taps a ≡ r (mod s), so dX for all s·s phases is one stride-1
 * convolution of dY with a T x T kernel (T = ceil(k/s)) and s·s·Cin output channels,
 * K[jy, jx, o, (ry, rx, c)] = W[s(T-1-jy)+ry, s(T-1-jx)+rx, c, o] (zero past the kernel),
 * over dY padded by T-1; interleaving the phases gives dX shifted by the forward padding.
 * No zeros are inserted into dY, so no multiply is wasted on them.
 */
function subPixel(s: WasmKernelScope, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outChannels: cout, outHeight: ho, outWidth: wo } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo;
  const th = Math.ceil(kh / sh);
  const tw = Math.ceil(kw / sw);
  const phases = sh * sw * cin;
  const kernel = s.build([th, tw, cout, phases], (out) => {
    const src = s.heap(filter); // [kh, kw, cin, cout]
    out.fill(0);
    for (let jy = 0; jy < th; jy++)
      for (let jx = 0; jx < tw; jx++)
        for (let ry = 0; ry < sh; ry++)
          for (let rx = 0; rx < sw; rx++) {
            const a = sh * (th - 1 - jy) + ry;
            const b = sw * (tw - 1 - jx) + rx;
            if (a >= kh || b >= kw) continue;
            for (let c = 0; c < cin; c++) {
              const from = ((a * kw + b) * cin + c) * cout;
              const to = (jy * tw + jx) * cout * phases + (ry * sw + rx) * cin + c;
              for (let o = 0; o < cout; o++) out[to + o * phases] = src[from + o];
            }
          }
  });
  const z = conv(s, dy, kernel, [th - 1, th - 1, tw - 1, tw - 1]); // [n, u, v, sh*sw*cin]
  const u = ho + th - 1;
  const v = wo + tw - 1;
  const placed = s.transpose(s.reshape(z, [n, u, v, sh, sw, cin]), [0, 1, 3, 2, 4, 5]);
  let full = s.reshape(placed, [n, u * sh, v * sw, cin]);
  // Rows/columns past the last phase block receive no contribution: zeros.
  const missingH = Math.max(top + h - u * sh, 0);
  const missingW = Math.max(left + w - v * sw, 0);
  if (missingH > 0 || missingW > 0) {
    full = s.pad(full, [
      [0, 0],
      [0, missingH],
      [0, missingW],
      [0, 0],
    ]);
  }
  return s.slice(full, [0, top, left, 0], [n, h, w, cin]);
}

function blocks(s: WasmKernelScope, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: n, outHeight: ho, outWidth: wo, filterHeight: kh, filterWidth: kw, inChannels: cin, outChannels: cout } = info;
  // filter [kh, kw, cin, cout] -> [cout, kh*kw*cin]
  const wt = s.transpose(s.reshape(filter, [kh * kw * cin, cout]), [1, 0]);
  const cols = s.matMul(s.reshape(dy, [n * ho * wo, cout]), wt); // [n*ho*wo, kh*kw*cin]
  const placed = s.transpose(s.reshape(cols, [n, ho, wo, kh, kw, cin]), [0, 1, 3, 2, 4, 5]);
  return s.reshape(placed, [n, ho * kh, wo * kw, cin]);
}

export function conv2dBackpropInputConfig(fallback: KernelConfig['kernelFunc']): KernelConfig {
  return {
    kernelName: tf.Conv2DBackpropInput,
    backendName: 'wasm',
    kernelFunc: ((args: Parameters<typeof conv2dBackpropInputWasm>[0]) => conv2dBackpropInputWasm(args, fallback)) as unknown as KernelConfig['kernelFunc'],
  };
}
